"""
The WebSocket server's state without sockets: clients, registration, queues and fan-out.

The broadcaster is the single owner of client state; the Autobahn protocol (L{protocol}) only
forwards connection events to it and writes what it is told to.  Everything here runs on an
injected clock, so it is tested with fake connections and a L{twisted.internet.task.Clock}.

Each event is reduced to its filter keys and serialised and framed once, whoever receives it;
L{FilterIndex} picks the registered clients it matches.  A client has two bounded queues:

  - C{pending}: events seen while it was unregistered (oldest dropped at C{max_queue_size}),
    filtered and sent after the C{registered} reply when it registers;
  - C{backlog}: frames held while its transport is paused (write buffer over 64 KiB: it is
    not reading); sent on resume.  At C{max_queue_size} the client is closed (4029).

Every event keeps its ``id``, the resume token: a client that comes back registers with
``resume_after`` and is replayed what it missed from the L{HistoryWindow} of recent events (and
from the durable store, for older positions) before it goes live again (see L{replay}).
Registered clients whose filters match rarely get a ``cursor`` message now and then, so that
they can resume from where the server was rather than from their last event.
"""

from collections import deque

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from stellarflow.message import seal
from stellarflow.positions import isPosition, parsePosition
from stellarflow.websocket import messages
from stellarflow.websocket.filters import FilterError, jsonType, parseFilters
from stellarflow.websocket.history import Event, HistoryWindow
from stellarflow.websocket.index import FilterIndex
from stellarflow.websocket.matching import eventKeys, matches
from stellarflow.websocket.replay import Replayer

log = Logger()

#: Events fanned out before their frames are written: each client then gets one write per chunk
#: (not one per event), and no event waits for more than a chunk before going out.  A client
#: whose transport pauses gets at most one chunk past its pause threshold.
CHUNK_EVENTS = 10

#: Keys a ``register`` message may carry.
REGISTER_FIELDS = ("type", "filters", "resume_after")



@implementer(IPushProducer)
class Client:
    """
    One connected client.  Only the broadcaster changes it; as the transport's push producer
    it forwards pause/resume/stop to the broadcaster.

    @ivar filters: the client's L{Filters}, or C{None} while it has not registered.
    @ivar pending: a deque of L{Event}s queued while unregistered, or C{None}.
    @ivar backlog: a deque of frames / L{Event}s held while paused, or C{None}.
    @ivar preparing: the L{Replay} of a resume being prepared (no reply sent yet), or C{None}.
    @ivar replay: the L{Replay} running for the client (it is not live yet), or C{None}.
    @ivar active: an event was sent since the last cursor tick.
    @ivar cursorAt: the position of the last ``cursor`` message sent, or C{None}.
    """

    __slots__ = (
        "broadcaster", "connection", "peer", "filters", "pending", "backlog", "paused",
        "closing", "timer", "unlogged", "loggedAt", "preparing", "replay", "active", "cursorAt",
    )

    def __init__(self, broadcaster, connection):
        self.broadcaster = broadcaster
        self.connection = connection
        self.peer = connection.peer
        self.filters = None
        self.pending = None
        self.backlog = None
        self.paused = False
        self.closing = False
        self.timer = None
        self.unlogged = 0
        self.loggedAt = None
        self.preparing = None
        self.replay = None
        self.active = False
        self.cursorAt = None

    @property
    def registered(self):
        return self.filters is not None

    def pauseProducing(self):
        self.broadcaster._pause(self)

    def resumeProducing(self):
        self.broadcaster._resume(self)

    def stopProducing(self):
        self.broadcaster.disconnected(self)

    def __repr__(self):
        return "<Client {} {}>".format(self.peer, "registered" if self.filters is not None else "unregistered")


class Broadcaster:
    """
    Clients and their filters; fans events out to them.

    @param clock: an L{IReactorTime} for registration timeouts and log rate limits.
    @param prepare: C{prepare(payload_bytes) -> frame}, framing a text message once for any
        number of clients (Autobahn's C{factory.prepareMessage}); frames go to
        L{IClientConnection.send}.  Defaults to the payload itself (tests).
    @param max_queue_size: most events queued for an unregistered client and most messages held
        for a paused one.
    @param registration_timeout: seconds a client has to send ``register``.
    @param max_connections: beyond this many clients L{full} is true (new ones are refused).
    @param log_interval: at most one "message queue full" line per client per this many seconds.
    @param history_size: most recent events kept for resuming clients (0: no history, and
        ``resume_after`` is refused).
    @param history_ledgers: also keep only the events of the newest this many ledgers (0: no
        ledger bound).
    @param max_replay: most events one resume may need replayed.
    @param cursor_interval: seconds between ``cursor`` messages to clients that received nothing
        (0: none).
    @param replay_options: keyword arguments for the L{Replayer} (tests, benchmarks).

    @ivar position: the newest position processed (last event id or batch cursor), or C{None}.
    """

    def __init__(
        self,
        clock,
        prepare=None,
        max_queue_size=1000,
        registration_timeout=10.0,
        max_connections=10000,
        log_interval=10.0,
        history_size=10000,
        history_ledgers=0,
        max_replay=100000,
        cursor_interval=30.0,
        replay_options=None,
    ):
        self.clock = clock
        self.prepare = prepare if prepare is not None else (lambda payload: payload)
        self.max_queue_size = max_queue_size
        self.registration_timeout = registration_timeout
        self.max_connections = max_connections
        self.log_interval = log_interval
        self.clients = {}  # every connected client (insertion-ordered set)
        self.unregistered = {}  # clients that have not registered yet
        self.index = FilterIndex()  # registered clients by filters
        self._welcome = self.prepare(messages.welcome())
        self._stopping = False
        self._drained = []
        self.position = None
        self.history = HistoryWindow(history_size, history_ledgers) if history_size else None
        self.replayer = Replayer(self, self.history, clock, max_replay=max_replay, **(replay_options or {}))
        self.cursor_interval = cursor_interval
        self._cursorLoop = None
        # counters for metrics
        self.delivered = 0
        self.dropped = 0
        self.closed_queue_full = 0
        self.errors_sent = 0
        self.connections = 0

    # -- state ---------------------------------------------------------------------

    @property
    def connected(self):
        """How many clients are connected now."""
        return len(self.clients)

    @property
    def registered(self):
        """How many clients have registered filters now."""
        return len(self.index)

    @property
    def full(self):
        """Whether a new connection must be refused (C{max_connections} reached)."""
        return len(self.clients) >= self.max_connections

    def stats(self):
        """The counters, for metrics."""
        return {
            "connected": self.connected,
            "registered": self.registered,
            "connections": self.connections,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "closed_queue_full": self.closed_queue_full,
            "errors_sent": self.errors_sent,
            "replaying": self.replayer.replaying,
            "replays": self.replayer.started,
            "replays_refused": self.replayer.refused,
            "replayed": self.replayer.replayed,
            "history_events": len(self.history) if self.history is not None else 0,
        }

    def attachHistory(self, store):
        """
        Read positions older than the window from C{store} (an L{IEventHistory}).
        """
        self.replayer.store = store

    # -- connection events -----------------------------------------------------------

    def connect(self, connection):
        """
        A WebSocket connection opened: register as its transport's producer, send the welcome
        and start the registration timer.  Returns its L{Client}.
        """
        client = Client(self, connection)
        self.clients[client] = None
        self.connections += 1
        connection.registerProducer(client, True)
        if client.closing:  # the transport was already gone: it called stopProducing
            return client
        if self._stopping:
            self._close(client, messages.CLOSE_GOING_AWAY, messages.REASON_GOING_AWAY)
            return client
        self.unregistered[client] = None
        client.timer = self.clock.callLater(self.registration_timeout, self._expire, client)
        self._write(client, self._welcome)
        log.debug("WebSocket client {peer} connected", peer=client.peer)
        return client

    def disconnected(self, client):
        """
        The connection is gone (closed, lost or aborted); forget the client.  Idempotent.
        """
        if client not in self.clients:
            return
        del self.clients[client]
        self.unregistered.pop(client, None)
        self.index.remove(client)
        self.replayer.cancel(client)
        self._cancelTimer(client)
        if client.unlogged:
            self._logDropped(client)
        client.closing = True
        client.pending = client.backlog = None
        client.connection = None
        log.debug("WebSocket client {peer} disconnected", peer=client.peer)
        if not self.clients and self._drained:
            # a turn later: the transport calls stopProducing before the protocol's own
            # connectionLost, which must finish before a waiting stop() moves on.
            self.clock.callLater(0, self._fireDrained)

    def received(self, client, payload, isBinary):
        """
        A message from the client.  Bad input gets an C{error} reply and changes nothing.
        """
        if client.closing:
            return
        try:
            self._handle(client, payload, isBinary)
        except Exception:
            log.failure("Unexpected error handling a message from WebSocket client {peer}", peer=client.peer)
            self._error(client, messages.INTERNAL_ERROR, "the server could not process this message")

    def _handle(self, client, payload, isBinary):
        if isBinary:
            return self._error(
                client, messages.BINARY_NOT_SUPPORTED, "binary messages are not supported; send JSON text"
            )
        try:
            message = messages.decode(payload)
        except (ValueError, RecursionError) as e:
            return self._error(client, messages.INVALID_JSON, "message is not valid JSON: {}".format(e))
        if not isinstance(message, dict):
            return self._error(
                client, messages.INVALID_MESSAGE, 'a message must be a JSON object with a "type" field'
            )
        kind = message.get("type")
        if kind is None:
            return self._error(client, messages.INVALID_MESSAGE, 'message has no "type" field', "type")
        if not isinstance(kind, str):
            return self._error(
                client,
                messages.INVALID_FIELD_TYPE,
                '"type" must be a string, not {}'.format(jsonType(kind)),
                "type",
            )
        if kind != "register":
            return self._error(
                client,
                messages.UNKNOWN_MESSAGE_TYPE,
                "unknown message type {}; the only message a client sends is 'register'".format(
                    messages.shown(kind)
                ),
                "type",
            )
        unknown = [k for k in message if k not in REGISTER_FIELDS]
        if unknown:
            return self._error(
                client,
                messages.UNKNOWN_FIELD,
                "unknown field(s) in register message: {}; known fields: type, filters, resume_after".format(
                    ", ".join(messages.shown(k) for k in unknown[:10])
                ),
                unknown[0][:100],
            )
        try:
            filters = parseFilters(message.get("filters"))
        except FilterError as e:
            field = None if e.field is None else "filters." + e.field
            return self._error(client, e.code, e.message, field)
        resumeAfter = message.get("resume_after")
        if resumeAfter is not None:
            try:
                resumeAfter = parsePosition(resumeAfter)
            except ValueError as e:
                return self._error(client, messages.INVALID_RESUME_AFTER, "resume_after: {}".format(e), "resume_after")
        if client.preparing is not None:
            return self._error(
                client,
                messages.RESUME_IN_PROGRESS,
                "a resume is being prepared; wait for its registered reply before registering again",
            )
        if resumeAfter is None:
            return self.register(client, filters)
        if self.history is None:
            return self._error(
                client,
                messages.RESUME_NOT_AVAILABLE,
                "this server keeps no history (history_size is 0); register without resume_after",
                "resume_after",
            )
        self.resume(client, filters, resumeAfter)

    def resume(self, client, filters, resumeAfter):
        """
        Register C{client} with C{filters}, replaying the matching events after C{resumeAfter}
        first.  The reply (C{registered} with C{resumed}, or an C{error}) may wait for the
        store; meanwhile the client keeps its previous state.
        """
        if client.closing:
            return
        self._cancelTimer(client)
        self.replayer.prepare(client, filters, resumeAfter)

    def register(self, client, filters):
        """
        Set (or replace) the client's filters: reply C{registered}, then, the first time, send the
        events queued while it was unregistered that match, in order.
        """
        if client.closing:
            return
        self._cancelTimer(client)
        first = client.filters is None
        client.filters = filters
        self._write(client, self.prepare(messages.registered(filters)))
        if client.closing:
            return
        if client.replay is not None:
            # Replaying: the replay goes on with the new filters and makes the client live.
            log.debug("WebSocket client {peer} changed filters while replaying", peer=client.peer)
            return
        if first:
            self.unregistered.pop(client, None)
            pending, client.pending = client.pending, None
            if client.unlogged:
                self._logDropped(client)
            if pending:
                for event in pending:
                    if matches(filters, event.keys):
                        self._hold(client, event)
                        if client.closing:
                            return
        self.index.add(client, filters)
        self._startCursors()
        log.debug(
            "WebSocket client {peer} registered with filters {filters}",
            peer=client.peer,
            filters=filters.toJSON(),
        )

    # -- resuming (called by the Replayer) ---------------------------------------------

    def _startReplay(self, client, filters, resume):
        """
        A resume was accepted: reply C{registered} (with C{resume}'s keys) and take the client
        out of the live fan-out until its replay catches up.  Returns whether it is still open.
        """
        if client.closing:
            return False
        self._cancelTimer(client)
        client.filters = filters
        self.index.remove(client)
        self.unregistered.pop(client, None)
        client.pending = None  # the replay covers what was queued
        if client.unlogged:
            self._logDropped(client)
        self._write(client, self.prepare(messages.registered(filters, resume)))
        return not client.closing

    def _replayDone(self, client):
        """
        The replay sent everything the window holds: the client is live from this turn on.
        """
        if client.closing:
            return
        client.cursorAt = None
        self.index.add(client, client.filters)
        self._startCursors()

    def _resumeRefused(self, client, code, text, field=None):
        """
        A resume cannot be served: say why; the client keeps its previous state (and an
        unregistered one has C{registration_timeout} again to register).
        """
        if client.closing:
            return
        self._error(client, code, text, field)
        if client.filters is None and client.timer is None and not client.closing:
            client.timer = self.clock.callLater(self.registration_timeout, self._expire, client)

    def _replayOverrun(self, client):
        """
        The replay fell out of the window (the client read too slowly) and there is no store
        to read from: close it; it reconnects and is told about the gap.
        """
        self.closed_queue_full += 1
        log.warn(
            "Closing WebSocket client {peer}: its replay fell more than history_size ({size}) "
            "events behind",
            peer=client.peer,
            size=self.history.size,
        )
        self._error(
            client,
            messages.REPLAY_OVERRUN,
            "the replay fell behind the events this server keeps (history_size {}); reconnect with "
            "resume_after set to your last event id".format(self.history.size),
        )
        self._close(client, messages.CLOSE_QUEUE_FULL, messages.REASON_REPLAY_OVERRUN)

    def _replayFailed(self, client):
        """
        A bug stopped the client's replay (logged): close it (1011) rather than leave it
        neither replaying nor live; it reconnects with resume_after.
        """
        self._error(client, messages.INTERNAL_ERROR, "the replay failed; reconnect with resume_after")
        self._close(client, messages.CLOSE_INTERNAL_ERROR, messages.REASON_REPLAY_FAILED)

    # -- fan-out ---------------------------------------------------------------------

    def broadcast(self, events, cursor=None):
        """
        Hand each event to every client whose filters match (registered) and to every
        unregistered client's queue, synchronously, and keep it in the history.  Without
        history, an event nobody takes is not serialised.  C{cursor} is the batch's end
        position (a batch may be empty and still move it).
        """
        history = self.history
        if not self.clients and history is None:
            self._advance(_idOf(events[-1]) if events else None, cursor)
            return
        index = self.index
        unregistered = self.unregistered
        prepare = self.prepare
        limit = self.max_queue_size
        delivered = 0
        chunk = {}  # client -> the frames of the current chunk for it, written as one write
        chunked = 0
        for message in events:
            try:
                message = seal(message)
                if message.json is None:
                    log.warn("Cannot send event {id} to WebSocket clients: {error}", id=message.id, error=message.encodeError)
                    continue
                keys = eventKeys(message)
                targets = index.match(keys) if len(index) else ()
                if not targets and not unregistered and history is None:
                    continue
                event = Event(message.id, keys, prepare(message.json))
            except Exception:
                log.failure("Cannot send event {id} to WebSocket clients", id=_idOf(message))
                continue
            if history is not None:
                history.append(event)
            for client in targets:
                client.active = True
                if client.paused or client.backlog is not None:
                    self._hold(client, event)
                    continue
                held = chunk.get(client)
                if held is None:
                    chunk[client] = [event]
                else:
                    held.append(event)
                delivered += 1
            chunked += 1
            if chunked >= CHUNK_EVENTS:
                self._writeChunk(chunk)
                chunked = 0
            for client in unregistered:
                pending = client.pending
                if pending is None:
                    pending = client.pending = deque()
                elif len(pending) >= limit:
                    pending.popleft()
                    self._dropped(client)
                pending.append(event)
        self._writeChunk(chunk)
        self.delivered += delivered
        if history is not None:
            history.advance(cursor)
        self._advance(_idOf(events[-1]) if events else None, cursor)

    def _writeChunk(self, chunk):
        """
        Write each client's events of a chunk at once (one write per client per chunk, not one
        per event), then forget them.  A connection without C{sendMany} gets them one by one,
        and what comes after a pause is held, as for live events.
        """
        for client, events in chunk.items():
            if client.closing:
                continue
            connection = client.connection
            try:
                sendMany = getattr(connection, "sendMany", None)
                if sendMany is not None:
                    sendMany([event.frame for event in events])
                    continue
                for event in events:
                    if client.paused or client.backlog is not None:
                        self._hold(client, event)
                    else:
                        connection.send(event.frame)
            except Exception:
                self._broken(client)
        chunk.clear()

    def _advance(self, lastId, cursor):
        """
        Move L{position} to the newest of the batch's last event id and its cursor.
        """
        first = self.position is None
        position = self.position
        for candidate in (lastId, cursor):
            if isPosition(candidate) and (position is None or candidate > position):
                position = candidate
        self.position = position
        if first and position is not None:
            self.replayer.headKnown()

    def _hold(self, client, event):
        """
        Send C{event} to a registered client now, or hold it while the client is paused.
        """
        client.active = True
        if client.paused or client.backlog is not None:
            self._enqueue(client, event)
            return
        try:
            client.connection.send(event.frame)
        except Exception:
            self._broken(client)
            return
        self.delivered += 1

    def _write(self, client, frame):
        """
        Send one of our own messages (welcome, replies), keeping its place behind a backlog.
        """
        if client.closing:
            return
        if client.paused or client.backlog is not None:
            self._enqueue(client, frame)
            return
        try:
            client.connection.send(frame)
        except Exception:
            self._broken(client)

    def _enqueue(self, client, item):
        backlog = client.backlog
        if backlog is None:
            backlog = client.backlog = deque()
        elif len(backlog) >= self.max_queue_size:
            self._overflow(client)
            return
        backlog.append(item)

    def _pause(self, client):
        if client.paused or client.closing:
            return
        client.paused = True
        client.connection.pauseReading()

    def _resume(self, client):
        if not client.paused or client.closing:
            return
        client.paused = False
        backlog = client.backlog
        connection = client.connection
        delivered = 0
        try:
            while backlog and not client.paused:
                item = backlog.popleft()
                if item.__class__ is Event:
                    connection.send(item.frame)
                    delivered += 1
                else:
                    connection.send(item)
        except Exception:
            self._broken(client)
            return
        finally:
            self.delivered += delivered
        if not backlog:
            client.backlog = None
        if not client.paused:
            connection.resumeReading()
            if client.replay is not None:
                self.replayer.wake(client.replay)

    # -- limits ------------------------------------------------------------------------

    def _dropped(self, client):
        """
        An unregistered client's queue was full: its oldest event was dropped.
        """
        self.dropped += 1
        client.unlogged += 1
        now = self.clock.seconds()
        if client.loggedAt is None or now - client.loggedAt >= self.log_interval:
            self._logDropped(client)

    def _logDropped(self, client):
        log.warn(
            "message queue full: dropped {count} oldest event(s) queued for unregistered "
            "WebSocket client {peer} (max_queue_size {limit})",
            count=client.unlogged,
            peer=client.peer,
            limit=self.max_queue_size,
        )
        client.unlogged = 0
        client.loggedAt = self.clock.seconds()

    def _overflow(self, client):
        """
        A paused client has C{max_queue_size} messages waiting: it is not reading.  Close it.
        """
        self.closed_queue_full += 1
        log.warn(
            "message queue full: closing WebSocket client {peer}, which stopped reading "
            "({limit} messages waiting)",
            peer=client.peer,
            limit=self.max_queue_size,
        )
        client.backlog = None
        connection = client.connection
        try:
            connection.send(
                self.prepare(
                    messages.error(
                        messages.QUEUE_FULL,
                        "message queue full: more than {} messages waiting; reconnect and read "
                        "faster or narrow your filters".format(self.max_queue_size),
                    )
                )
            )
            self.errors_sent += 1
        except Exception:
            pass
        self._close(client, messages.CLOSE_QUEUE_FULL, messages.REASON_QUEUE_FULL)

    def _expire(self, client):
        client.timer = None
        if client.closing or client.filters is not None:
            return
        log.info(
            "Closing WebSocket client {peer}: no register message within {timeout}s",
            peer=client.peer,
            timeout=self.registration_timeout,
        )
        self._error(
            client,
            messages.REGISTRATION_TIMEOUT,
            'no "register" message within {:g} seconds of connecting; send one right after the '
            "welcome".format(self.registration_timeout),
        )
        self._close(client, messages.CLOSE_REGISTRATION_TIMEOUT, messages.REASON_REGISTRATION_TIMEOUT)

    def _error(self, client, code, text, field=None):
        self.errors_sent += 1
        log.debug("WebSocket client {peer}: {code}: {text}", peer=client.peer, code=code, text=text)
        self._write(client, self.prepare(messages.error(code, text, field)))

    def _broken(self, client):
        log.failure("Cannot write to WebSocket client {peer}; dropping it", peer=client.peer)
        connection = client.connection
        self._forget(client)
        try:
            connection.abort()
        except Exception:
            pass

    def _close(self, client, code, reason):
        """
        Stop sending to the client and start closing it; it stays in C{clients} until its
        connection is gone.
        """
        connection = client.connection
        self._forget(client)
        if connection is None:
            return
        try:
            connection.close(code, reason)
        except Exception:
            log.failure("Cannot close WebSocket client {peer}", peer=client.peer)
            connection.abort()

    def _forget(self, client):
        client.closing = True
        self.unregistered.pop(client, None)
        self.index.remove(client)
        self.replayer.cancel(client)
        self._cancelTimer(client)
        client.pending = client.backlog = None

    def _cancelTimer(self, client):
        timer, client.timer = client.timer, None
        if timer is not None and timer.active():
            timer.cancel()

    # -- cursor messages ---------------------------------------------------------------

    def _startCursors(self):
        """
        Start the one timer that sends ``cursor`` messages (once a client is live).
        """
        if self._cursorLoop is not None or not self.cursor_interval or self._stopping:
            return
        loop = self._cursorLoop = LoopingCall(self._cursorTick)
        loop.clock = self.clock
        loop.start(self.cursor_interval, now=False)

    def _stopCursors(self):
        loop, self._cursorLoop = self._cursorLoop, None
        if loop is not None and loop.running:
            loop.stop()

    def _cursorTick(self):
        """
        Tell each live client that received no event since the last tick, and has not been
        told this position yet, how far the server has got.  One frame for all of them.
        """
        position = self.position
        if position is None:
            return
        frame = None
        try:
            for client in self.index:
                if client.active:
                    client.active = False
                    continue
                if client.cursorAt == position or client.paused or client.backlog is not None or client.closing:
                    continue
                if frame is None:
                    frame = self.prepare(messages.cursor(position))
                client.cursorAt = position
                self._write(client, frame)
        except Exception:
            log.failure("Cannot send cursor messages to WebSocket clients")

    # -- shutdown --------------------------------------------------------------------

    def shutdown(self, timeout):
        """
        Close every client with 1001 (going away) and refuse new ones.  Returns a Deferred
        firing once all are gone, or after C{timeout} seconds, when the rest are aborted.
        """
        self._stopping = True
        self.replayer.stop()
        self._stopCursors()
        for client in list(self.clients):
            if not client.closing:
                self._close(client, messages.CLOSE_GOING_AWAY, messages.REASON_GOING_AWAY)
        if not self.clients:
            return succeed(None)
        d = Deferred()
        self._drained.append(d)
        timer = self.clock.callLater(timeout, self._abortAll, d)

        def done(result):
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(done)

    def _fireDrained(self):
        if self.clients:
            return
        waiters, self._drained = self._drained, []
        for d in waiters:
            if not d.called:
                d.callback(None)

    def _abortAll(self, waiter):
        remaining = list(self.clients)
        log.warn("{count} WebSocket client(s) did not close in time; aborting them", count=len(remaining))
        for client in remaining:
            connection = client.connection
            self.disconnected(client)
            if connection is not None:
                try:
                    connection.abort()
                except Exception:
                    pass
        if not waiter.called:
            if waiter in self._drained:
                self._drained.remove(waiter)
            waiter.callback(None)


def _idOf(message):
    try:
        return message.get("id")
    except Exception:
        return None
