"""
The roles of a pipeline, as zope interfaces, and the delivery contract between them.

A pipeline is ``source -> processors -> consumers``:

1. The source produces L{Batch}es (for the RPC source, one ``getEvents`` page).  It hands each
   batch to the pipeline by calling ``deliver(batch)``; the returned Deferred fires when the
   source may produce the next batch.  A source never has two deliveries outstanding.
2. Each processor maps the batch's items to messages (``process(items) -> list``), in order.
   Processors are synchronous and must not raise for a single bad item: they emit a message
   describing it instead (see L{IProcessor}).
3. Every consumer of the pipeline receives every message, batch by batch, in order.
   ``consume(batch)`` returns a Deferred that fires once the consumer has safely handled the
   batch (a database: committed; a WebSocket server: handed to its clients' queues).
4. The pipeline checkpoints the batch's ``cursor`` (the live flow's state file) only after every
   consumer of the live flow acknowledged it and every earlier batch, so a crash redelivers at
   most the unacknowledged batches.
5. The pipeline holds at most ``max_in_flight`` unacknowledged batches per consumer.  While a
   live consumer (WebSocket) is at that limit the source's ``deliver`` Deferred does not fire
   (backpressure).  A durable consumer (one that keeps its own checkpoint: an
   L{ICheckpointStore}) at that limit is instead detached from the live flow and catches up on
   its own from its own position, then rejoins (L{stellarflow.durable}): a database never holds
   up the live stream, and nothing is dropped for it.
6. A consumer whose ``consume`` fails is logged; the pipeline retries that batch for that consumer
   with backoff (consumers must therefore be idempotent per message ``id``).  A failing consumer
   never stops other consumers or other pipelines.  Data is held or read again, never dropped,
   unless the consumer itself documents a drop policy (the WebSocket consumer drops for slow
   clients, never for the pipeline).
"""

from zope.interface import Attribute, Interface


class IStatsProvider(Interface):
    """
    Optional for sources, consumers and pipelines: counters for ``/metrics`` and ``/healthz``.
    """

    def stats():
        """
        A flat mapping of name to number (or bool).  Names ending in ``_total`` are counters.
        Sources report ``polling`` (bool), ``latestLedger`` and ``lagLedgers`` for health.
        """


class IComponentFactory(Interface):
    """
    A component class as found by its ``type`` name in the registry.

    ``configSchema`` describes its ``config`` mapping (a L{stellarflow.schema.Schema});
    ``fromConfig(config, context)`` builds the component from the validated config.
    """

    configSchema = Attribute("A stellarflow.schema.Schema for the component's config mapping.")

    def fromConfig(config, context):
        """
        Build a component from validated config.

        @param config: the dict produced by ``configSchema.validate``.
        @param context: a L{stellarflow.pipeline.ComponentContext} (reactor, pipeline name, state dir).
        """


class ISource(Interface):
    """
    Produces batches of raw items for one pipeline.
    """

    network = Attribute(
        "The network passphrase the source follows, as far as it knows (C{None} when it does not): "
        "recorded with each checkpoint, so that a checkpoint from another network is recognised."
    )

    def start(deliver, checkpoint):
        """
        Begin producing.

        @param deliver: a callable taking a L{stellarflow.batch.Batch} and returning a Deferred
            that fires when the source may produce the next batch.  Never call it again before
            that Deferred fired.
        @param checkpoint: the last committed L{stellarflow.checkpoint.Checkpoint} (its
            C{cursor} and the C{network} it was taken on, C{None} when unknown), or C{None} to
            start where the source is configured to start.
        @return: a Deferred that fires with C{None} once the source has delivered everything
            it ever will (a backfill reached its end), or fails with the reason it cannot go on
            (rejected parameters, an unusable checkpoint); it fires with C{None} when L{stop}
            is called first.  An endless source's Deferred fires only then.
        """

    def stop():
        """
        Stop producing: no further ``deliver`` calls.  Returns a Deferred firing once any
        request in flight has finished or been cancelled.
        """


class IProcessor(Interface):
    """
    Maps a batch's items to messages.
    """

    producedTypes = Attribute(
        "The message C{type} values this processor emits (a frozenset), or C{None} when it passes "
        "on the types of what it is given (a filter, an enricher).  The pipeline tells its "
        "consumers what the last declaring processor produces (C{ComponentContext} "
        "C{produced_types}), so the WebSocket server can say which filter types can match."
    )

    def process(items):
        """
        Return a list of messages for C{items} (a list), keeping order, or a Deferred firing
        with that list when the work is done elsewhere (ledgers are decoded in worker
        processes, never on the reactor thread); the source waits for it.  Must not raise for
        one bad item: represent it (e.g. with a ``decode_error`` field) instead of dropping it.
        """


class IConsumer(Interface):
    """
    Receives every message of its pipeline, batch by batch, in order.
    """

    def start():
        """
        Prepare (listen, connect).  Returns a Deferred.  A failure that makes the consumer
        unusable (port in use) fails the Deferred and stops the daemon; a transient one
        (database down) is logged and retried by the consumer while start succeeds.
        """

    def consume(batch):
        """
        Handle a L{stellarflow.batch.Batch} whose ``messages`` are set.  Returns a Deferred that
        fires once the batch is safely handled.  Called again for the same batch after a failure.
        """

    def stop():
        """
        Flush what was accepted and close.  Returns a Deferred that fires when done.
        """


class ICheckpointStore(Interface):
    """
    Where progress (the source cursor) is kept between runs.

    The live flow's checkpoint is the state file.  A consumer that stores its checkpoint
    atomically with its data (PostgreSQL) also provides this interface: it is then a I{durable}
    consumer with a position of its own, which the pipeline reads with C{load} to rejoin the
    live flow from there, or to catch up from there on its own (L{stellarflow.durable}).  Such a
    consumer writes its checkpoint itself, with each batch's data.
    """

    def load(pipeline):
        """
        Return a Deferred firing with the last saved checkpoint for C{pipeline} (a
        L{stellarflow.checkpoint.Checkpoint}, or a bare cursor string), or C{None}.
        """

    def save(pipeline, checkpoint):
        """
        Durably record C{checkpoint} (a L{stellarflow.checkpoint.Checkpoint}) for
        C{pipeline}.  Returns a Deferred.
        """


class IEventHistorySource(Interface):
    """
    A consumer that stores its pipeline's events durably and lends them, read back in id
    order, to the pipeline's other consumers (WebSocket clients resuming from a position older
    than the server's memory).  The daemon builds such consumers first and hands their history
    to the others in the L{stellarflow.pipeline.ComponentContext}.
    """

    def eventHistory():
        """
        The L{IEventHistory} of this consumer's store: one instance, closed when it stops.
        """


class IEventHistory(Interface):
    """
    A durable store of a pipeline's events, read back in id order (the PostgreSQL consumer's
    table).  Every method returns a Deferred; positions are exclusive lower / inclusive upper
    bounds.
    """

    def oldest():
        """
        The oldest event id stored, or C{None} when there is none.  Every event after
        the position just before C{oldest} that the pipeline produced is stored (or will be, once written).
        """

    def count(after, upto, limit):
        """
        How many events have C{after < id <= upto}, counting at most C{limit}.
        """

    def read(after, upto, limit):
        """
        The first C{limit} events with C{after < id <= upto}, in id order: fires with
        C{(events, complete)}, C{events} a list of C{(id, payload)} (C{payload} the event as
        compact JSON bytes, as sent live), C{complete} true when the store has written every
        event up to C{upto} (so fewer than C{limit} events means there are no more).
        """


class IEventQuerySource(Interface):
    """
    A consumer whose stored events can be queried with a WebSocket filter and a range (the
    admin endpoint's ``GET /events``).
    """

    def eventQuery():
        """
        The L{IEventQuery} of this consumer's store, or C{None} when it is not to be served:
        one instance, closed when the consumer stops.
        """


class IEventQuery(Interface):
    """
    Stored events read with a WebSocket filter and a range, in id order, a page at a time.
    """

    pipeline = Attribute("The pipeline whose events are read.")
    maxLimit = Attribute("The largest page served.")

    def page(filters, after=None, fromLedger=None, toLedger=None, since=None, until=None, limit=100):
        """
        A Deferred firing with a page (C{events}: C{[(id, message JSON bytes)]} in id order,
        C{next}: the id to pass as C{after} for the next page or C{None}, C{stored_through}:
        the position up to which every event is stored).
        """


class IClientConnection(Interface):
    """
    What a client's session (L{stellarflow.websocket.session.Session}) needs from its WebSocket
    connection (the Autobahn protocol).
    """

    peer = Attribute("The client's address as text, for logs (e.g. 'tcp4:10.0.0.7:51234').")

    def registerProducer(producer, streaming):
        """
        Register C{producer} (an L{IPushProducer}) with the transport, which then pauses it
        while its write buffer is full and resumes it once drained.
        """

    def send(frame):
        """
        Write one prepared frame if the connection is still open; never raises for a closed one.
        """

    def sendMany(frames):
        """
        Write several prepared frames, in order, as one write (the fan-out calls it once per
        chunk of events); like L{send}, a no-op on a closed connection.  Whatever the socket
        does not take at once is kept by the transport and sent when it drains.
        """

    def close(code, reason, drainTimeout=None):
        """
        Start the WebSocket closing handshake with C{code} and C{reason}.

        @param drainTimeout: seconds the client has to read what was already written, then the
            close frame, before the TCP connection is dropped (C{None}: the configured close
            timeout).
        """

    def abort():
        """
        Drop the TCP connection now.
        """

    def pauseReading():
        """
        Stop reading from the client (it is not reading what we send).
        """

    def resumeReading():
        """
        Read from the client again.
        """


class IConnectionKeeper(Interface):
    """
    Keeps one database connection for its user, in the spirit of Twisted's C{ClientService}:
    connects, reconnects with backoff while started, bounds every piece of work by a timeout,
    and says when a connection became ready or was lost (L{IConnectionListener}).
    """

    ready = Attribute("Whether a connection is open (and prepared) right now.")
    failures = Attribute("Connection attempts that failed in a row since the last one that worked.")
    retries = Attribute("Connection attempts that failed, in total.")
    backoff = Attribute("The stellarflow.backoff.Backoff between attempts.")

    def start():
        """
        Keep a connection from now on: connect, and again with backoff whenever an attempt
        fails or the connection is lost.  Calling it again does nothing.
        """

    def stop():
        """
        Close the connection for good, abandoning work in flight; returns a Deferred.
        """

    def whenReady(failAfterFailures=None):
        """
        A Deferred firing with C{None} once a connection is ready (at once when one is).  It
        fails with L{stellarflow.postgres.keeper.DatabaseUnavailable} after C{failAfterFailures}
        failed attempts (C{None}: never, while started), or once stopped.  On a keeper that was
        not started it starts one attempt and fails after it if it fails.
        """

    def run(work, *args):
        """
        Run C{work(cursor, *args)} on the connection, one piece of work at a time, and fire
        with its result.  Fails at once with C{DatabaseUnavailable} when no connection is
        ready; a failure of the work other than the errors it is told to pass on costs the
        connection (it is closed and, while started, rebuilt with backoff).
        """

    def reconnect(reason):
        """
        Give up the current connection (its user cannot get past a failure on it) and, while
        started, connect again after the backoff.
        """

    def addListener(listener):
        """
        Tell C{listener} (an L{IConnectionListener}) about connections from now on.
        """


class IConnectionListener(Interface):
    """
    Told by an L{IConnectionKeeper} how its connection fares; C{error} is one line of text
    without secrets, C{delay} the seconds until the next attempt (C{None}: none planned).
    """

    def connectionReady(prepared):
        """
        A connection is open; C{prepared} is what the keeper's preparation returned.
        """

    def connectionFailed(error, delay):
        """
        An attempt to connect (or to prepare the connection) failed.
        """

    def connectionLost(error, delay):
        """
        The open connection was lost or given up.
        """


class IClientSession(Interface):
    """
    One connected WebSocket client as the fan-out and the replayer see it (its
    L{stellarflow.websocket.session.Session}): they read its state and hand it events; only
    the session changes its own state.
    """

    peer = Attribute("The client's address as text, for logs (e.g. 'tcp4:10.0.0.7:51234').")
    filters = Attribute("The client's current Filters, or None while it has not registered.")
    paused = Attribute(
        "Whether its transport paused it (its write buffer is full, the client is not reading): "
        "nothing more should be produced for it until it is resumed."
    )
    closing = Attribute("Whether it is closing or gone: nothing more is sent to it.")

    def deliver(event):
        """
        Send C{event} (a L{stellarflow.websocket.history.Event}) now, or hold it while the
        client is paused or has messages held, keeping their order.  A client that has more
        than its limit held is closed (4029); a closing one drops it.  Never raises.
        """


class IReplayHost(Interface):
    """
    What a WebSocket server offers the replayer that serves its resuming clients
    (L{stellarflow.websocket.replay.Replayer}).  The replayer decides when a resume is accepted
    or refused and when a replay ends or fails; the host answers the client and moves it in or
    out of the live fan-out.  Clients are L{IClientSession}s; none of these methods raises.
    """

    position = Attribute(
        "The newest position the server has processed (the last event id or batch cursor), or None "
        "before its first batch."
    )

    def replayStarted(session, filters, resume):
        """
        A resume was accepted: reply C{registered} with C{filters} and the keys of C{resume}
        (C{resume_after}, C{resumed} and, when not resumed, C{gap}), make C{filters} the
        session's and keep the session out of the live fan-out until its replay catches up
        (what it queued while unregistered is dropped: the replay covers it).

        @return: whether the session is still open (the replay may start).
        """

    def replayFinished(session):
        """
        The replay sent everything the history holds: the session joins the live fan-out now,
        in the same reactor turn, before any further event is fanned out.
        """

    def resumeRefused(session, code, message, field):
        """
        A resume cannot be served: reply with an C{error} (C{code}, C{message}, C{field}); the
        session keeps its previous state.
        """

    def replayFailed(session):
        """
        A bug stopped the session's replay (logged): close it (1011) rather than leave it
        neither replaying nor live.
        """

    def replayOverrun(session):
        """
        The replay fell out of the history window and there is no durable store to read from:
        close the session (4029); it reconnects and is told about the gap.
        """
