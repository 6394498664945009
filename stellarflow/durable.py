"""
Independent progress for durable consumers (PostgreSQL, Redis): they never hold up the live flow.

A pipeline's live flow (the source, the processors and every consumer attached to it) moves at
the pace of its live consumers.  A durable consumer keeps its own checkpoint with its data
(it provides L{ICheckpointStore}) and is in one of three states:

  - C{waiting}: its own position is not known yet (the database does not answer);
  - C{attached}: it receives the live batches, and the live checkpoint waits for it;
  - C{catching_up}: it is fed by a second reader of the source, started at its own position,
    through the same processors, with its own bound on batches in flight.

When an attached durable consumer holds C{max_in_flight} unacknowledged batches (it is down or
slower than the live flow), it is detached: what it holds is forgotten (it will be read again),
the live flow goes on without it, and a catch-up reader starts at its last acknowledged
position.  While the consumer is down, that reader waits on its backpressure, holding at most
C{max_in_flight} batches.  Once the consumer has acknowledged a batch of the reader that ends at
or after the live flow's newest position (acknowledged, not merely handed over: a consumer that is
still down must not rejoin), the reader stops and the consumer rejoins the live flow, skipping the
live batches the reader already handed it: neither gap nor duplicate (a batch that overlaps is redelivered whole; consumers
are idempotent per message id).  A consumer whose position follows one of the live flow's recent
batches (a restart, most often) rejoins from those batches held in memory, without reading the
source again.

A position older than the source's retention is the source's own gap policy (``on_gap``): the
catch-up reader logs the exact range lost and counts it, like the live source does.
"""

from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.logger import Logger

from stellarflow.checkpoint import Checkpoint
from stellarflow.lanes import ConsumerLane
from stellarflow.positions import ledgerOf, split

WAITING, CATCHING_UP, ATTACHED = "waiting", "catching_up", "attached"

#: Seconds before a catch-up reader whose source failed for good is tried again.
RETRY_CATCH_UP = 30.0


def notBefore(cursor, other):
    """
    Whether C{cursor} is at or after C{other} (positions compared in chain order).
    """
    a, b = split(cursor), split(other)
    if a is None or b is None:
        return cursor >= other
    return a >= b


class LiveMember:
    """
    A consumer that is always part of the live flow (a WebSocket server, a test consumer): when
    it holds C{max_in_flight} batches the source pauses.
    """

    durable = False
    state = ATTACHED

    def __init__(self, pipeline, name, consumer):
        self.pipeline = pipeline
        self.name = name
        self.consumer = consumer
        self.position = None
        self.lane = ConsumerLane(consumer, name, pipeline.clock, self._acked)

    @property
    def full(self):
        return len(self.lane) >= self.pipeline.maxInFlight

    def offer(self, batch):
        """
        Take a live batch; returns whether the live checkpoint must wait for its ack.
        """
        self.lane.submit(batch)
        return True

    def _acked(self, lane, batch):
        if batch.cursor is not None:
            self.position = batch.cursor
        self.pipeline.acked(self, batch)

    def begin(self):
        pass

    def drained(self):
        return self.lane.drained()

    def stop(self):
        self.lane.stop()

    def settled(self):
        return self.lane.drained()

    def stats(self):
        return {}


class DurableMember:
    """
    A durable consumer's place in the pipeline (see the module docstring).

    @ivar position: the newest cursor the consumer acknowledged (or loaded), or C{None}.
    @ivar joinedAt: where it joined the live flow when it had no position of its own (the live
        flow's start): what it needs is after there until it acknowledges something.
    @ivar joinCredit: how many of the recent batches it joined with are not acknowledged yet.
    """

    durable = True
    full = False
    log = Logger()

    def __init__(self, pipeline, name, consumer):
        self.pipeline = pipeline
        self.name = name
        self.consumer = consumer
        self.state = WAITING
        self.position = None
        self.joinedAt = None
        self.skipThrough = None
        self.joinCredit = 0
        self.lane = ConsumerLane(consumer, name, pipeline.clock, self._liveAcked)
        self.catchUp = None
        self.finishing = []  # catch-up readers stopped, their lanes still draining
        self.detaches = 0
        self.caughtUp = 0
        self.catchUpEvents = 0
        self.failure = None
        self._settledWaiters = []
        self._stopped = False
        self._retry = None

    # -- the live flow -------------------------------------------------------------

    def offer(self, batch):
        """
        Take a live batch when attached; returns whether the live checkpoint waits for it.
        """
        if self.state != ATTACHED:
            return False
        if self.skipThrough is not None:
            if batch.cursor is not None and notBefore(self.skipThrough, batch.cursor):
                return False  # the catch-up reader delivered it already
            self.skipThrough = None
        if len(self.lane) >= self.pipeline.maxInFlight + self.joinCredit:
            self._detach()
            return False
        self.lane.submit(batch)
        return True

    def _liveAcked(self, lane, batch):
        if self.joinCredit:
            self.joinCredit -= 1  # acknowledged in order: the batches it joined with come first
        self._advanced(batch.cursor)
        self.pipeline.acked(self, batch)
        self._checkSettled()

    def _advanced(self, cursor):
        if cursor is not None and (self.position is None or notBefore(cursor, self.position)):
            self.position = cursor

    def _detach(self):
        self.detaches += 1
        self.log.warn(
            "Consumer {consumer} of pipeline {pipeline} holds {count} unacknowledged batches: "
            "detached from the live flow at {position}; it catches up on its own from there",
            consumer=self.name,
            pipeline=self.pipeline.name,
            count=len(self.lane),
            position=self.resumePosition,
        )
        self.lane.reset()
        self.joinCredit = 0
        self.pipeline.release(self)
        self._catchUpFrom(self.resumePosition)

    @property
    def resumePosition(self):
        """
        Where a catch-up reader starts: after the newest acknowledged cursor, or, before the
        first acknowledgement, where the consumer joined.  Never C{None} once it joined: a
        reader without a position starts where its source is configured to (the RPC's latest
        ledger, say), and what lay between would never be stored.
        """
        return self.position if self.position is not None else self.joinedAt

    @property
    def owedFrom(self):
        """
        While the consumer has no position of its own, where it must start (kept in the live
        flow's checkpoint, L{Checkpoint.owed}): where it joined, else where an earlier run said
        it must start, else where the live flow started this run.  C{None} once it has one.
        """
        if self.position is not None:
            return None
        if self.joinedAt is not None:
            return self.joinedAt
        owed = self.pipeline.owed.get(self.name)
        if owed is not None:
            return owed
        return self.pipeline.origin if self.pipeline.originKnown else None

    # -- rejoining ---------------------------------------------------------------------

    def begin(self):
        """
        The live flow started: find out where the consumer is, then rejoin from there.
        """
        d = maybeDeferred(self.consumer.load, self.pipeline.name)
        d.addCallbacks(self._loaded, self._loadFailed)

    def _loaded(self, value):
        if self._stopped:
            return
        checkpoint = Checkpoint.of(value)
        self.position = checkpoint.cursor if checkpoint is not None else None
        self.log.info(
            "Consumer {consumer} of pipeline {pipeline} is at {position}",
            consumer=self.name,
            pipeline=self.pipeline.name,
            position=self.position or "the start (no checkpoint of its own)",
        )
        self._rejoin()

    def _loadFailed(self, failure):
        self.log.failure("Consumer {consumer} cannot tell its position; retrying", failure, consumer=self.name)
        if not self._stopped:
            self._retry = self.pipeline.clock.callLater(RETRY_CATCH_UP, self.begin)

    def _rejoin(self):
        """
        Rejoin the live flow from L{position}: from the live flow's recent batches when they
        continue it, else through a catch-up reader.  A consumer without a position starts
        where an earlier run's checkpoint says it must (L{owedFrom}: it never got that run's
        events), else where the live flow started this run.
        """
        if self._stopped:
            return
        owed = self.pipeline.owed.get(self.name)
        if self.position is None and owed is None and not self.pipeline.originKnown:
            self.pipeline.whenOriginKnown(self._rejoin)
            return
        start = self.position
        if start is None:
            start = self.joinedAt = owed if owed is not None else self.pipeline.origin
        recent = self.pipeline.batchesAfter(start)
        if recent is None:
            self._catchUpFrom(start)
            return
        self.state = ATTACHED
        self.skipThrough = start if not recent else None
        self._joinWith(recent)
        self._checkSettled()
        self.log.info(
            "Consumer {consumer} of pipeline {pipeline} joins the live flow at {position}",
            consumer=self.name,
            pipeline=self.pipeline.name,
            position=start,
        )

    def _joinWith(self, recent):
        """
        Hand over the live flow's recent batches the consumer lacks.  They do not count
        towards its limit until acknowledged (L{joinCredit}): joining with C{max_in_flight} of
        them must not detach it on the next live batch (a database that answered late at
        start-up would then be read for again from the source, for nothing).  The pipeline
        holds them anyway (its recent batches): memory stays bounded.
        """
        self.joinCredit = len(recent)
        for batch in recent:
            self.lane.submit(batch)

    def _catchUpFrom(self, start):
        self.state = CATCHING_UP
        source = self.pipeline.newSource("{} catch-up for {}".format(self.pipeline.name, self.name))
        self.catchUp = CatchUp(self, source, start)
        self.catchUp.start()

    def _rejoinIfCaughtUp(self, catchUp):
        """
        The consumer acknowledged one of C{catchUp}'s batches, so it is up.  Once the reader has
        handed it everything up to the live flow's newest position, or up to where the live
        flow's recent batches (held in memory) reach back, switch to the live flow: skip the live
        batches the reader already handed over, or hand over the recent ones it lacks.

        Deciding on an acknowledgement keeps a consumer that is still down out of the live flow
        (a reader whose one page reaches the tip must not make it rejoin, only to be detached
        again); accepting the recent batches lets a reader at the tip rejoin although it and the
        live flow poll at different moments, so that neither is ever ahead for good.
        """
        last = catchUp.last
        if catchUp is not self.catchUp or last is None:
            return
        recent = self.pipeline.batchesAfter(last)
        if recent is None:
            return
        self.catchUp = None
        self._finishing(catchUp)
        catchUp.stop()
        self.state = ATTACHED
        self.skipThrough = last if not recent else None
        self._joinWith(recent)
        self.caughtUp += 1
        self.log.info(
            "Consumer {consumer} of pipeline {pipeline} caught up at {cursor}; back in the live flow",
            consumer=self.name,
            pipeline=self.pipeline.name,
            cursor=self.position,
        )
        self._checkSettled()

    def catchUpEnded(self, catchUp, failure):
        """
        The reader's source ended by itself: it delivered everything (a backfill's end), or it
        cannot go on (C{failure}), in which case it is tried again later.
        """
        if catchUp is not self.catchUp or self._stopped:
            return
        if failure is None:
            self.catchUp = None
            self._finishing(catchUp)
            self.state = ATTACHED
            self.skipThrough = catchUp.last
            self._checkSettled()
            return
        self.failure = failure.getErrorMessage()
        self.log.critical(
            "Consumer {consumer} of pipeline {pipeline} cannot catch up from {position}: {error}; "
            "trying again in {delay:.0f}s",
            consumer=self.name,
            pipeline=self.pipeline.name,
            position=self.position,
            error=self.failure,
            delay=RETRY_CATCH_UP,
        )
        self.catchUp = None
        catchUp.stop()
        self._retry = self.pipeline.clock.callLater(RETRY_CATCH_UP, self._catchUpFrom, self.resumePosition)

    def catchUpAcked(self, catchUp, batch):
        self._advanced(batch.cursor)
        self.catchUpEvents += len(batch.messages or ())
        if catchUp in self.finishing and not len(catchUp.lane):
            self.finishing.remove(catchUp)
            self._checkSettled()
        self._rejoinIfCaughtUp(catchUp)

    def _finishing(self, catchUp):
        """
        C{catchUp} stopped reading; its batches still on their way are waited for.
        """
        if len(catchUp.lane):
            self.finishing.append(catchUp)

    # -- lifecycle -----------------------------------------------------------------------

    def drained(self):
        lanes = [self.lane] + [c.lane for c in self.finishing] + ([self.catchUp.lane] if self.catchUp else [])
        return DeferredList([lane.drained() for lane in lanes])

    def settled(self):
        """
        A Deferred firing once the consumer is attached with nothing outstanding (a finished
        backfill waits for it).
        """
        d = Deferred()
        self._settledWaiters.append(d)
        self._checkSettled()
        return d

    def _checkSettled(self):
        if self._settledWaiters and self.state == ATTACHED and not len(self.lane) and not self.finishing:
            waiters, self._settledWaiters = self._settledWaiters, []
            for d in waiters:
                d.callback(None)

    def stop(self):
        """
        Stop reading for the consumer and retrying; returns Deferreds firing once the catch-up
        readers' sources stopped.
        """
        self._stopped = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self.lane.stop()
        stops = []
        for catchUp in [self.catchUp] + self.finishing:
            if catchUp is not None:
                catchUp.lane.stop()
                stops.append(catchUp.stop())
        return stops

    def stats(self):
        lag = None
        live = ledgerOf(self.pipeline.lastCursor)
        mine = ledgerOf(self.position)
        if live is not None and mine is not None:
            lag = max(0, live - mine)
        return {
            "attached": self.state == ATTACHED,
            "catching_up": self.state == CATCHING_UP,
            "position_ledger": mine,
            "lag_ledgers": lag,
            "detaches_total": self.detaches,
            "catch_ups_total": self.caughtUp,
            "catch_up_events_total": self.catchUpEvents,
        }


class CatchUp:
    """
    A second reader of the pipeline's source that feeds one durable consumer from its own
    position, with at most C{max_in_flight} batches unacknowledged.
    """

    def __init__(self, member, source, start):
        self.member = member
        self.source = source
        self.startAt = start
        self.pipeline = member.pipeline
        self.lane = ConsumerLane(member.consumer, member.name + " (catch-up)", self.pipeline.clock, self._acked)
        self.last = None
        self.stopped = False
        self._waiter = None

    def start(self):
        checkpoint = Checkpoint(self.startAt) if self.startAt is not None else None
        try:
            ended = self.source.start(self._deliver, checkpoint)
        except Exception:
            ended = fail()
        if isinstance(ended, Deferred):
            ended.addCallbacks(self._ended, self._failed)

    def _deliver(self, batch):
        if self.stopped:
            return Deferred()  # never: the source is being stopped
        messages = self.pipeline.process(batch.items)
        if isinstance(messages, Deferred):
            return messages.addCallback(self._processed, batch)
        return self._processed(messages, batch)

    def _processed(self, messages, batch):
        if self.stopped:
            return Deferred()
        batch.messages = messages
        if batch.cursor is not None:
            self.last = batch.cursor
        self.lane.submit(batch)
        if self.stopped:
            return Deferred()  # acknowledged at once, it caught up: the member rejoined
        if len(self.lane) < self.pipeline.maxInFlight:
            return succeed(None)
        self._waiter = Deferred()
        return self._waiter

    def _acked(self, lane, batch):
        self.member.catchUpAcked(self, batch)
        waiter = self._waiter
        if waiter is not None and len(lane) < self.pipeline.maxInFlight:
            self._waiter = None
            waiter.callback(None)

    def _ended(self, _):
        if not self.stopped:
            self.member.catchUpEnded(self, None)

    def _failed(self, failure):
        if not self.stopped:
            self.member.catchUpEnded(self, failure)

    def stop(self):
        if self.stopped:
            return succeed(None)
        self.stopped = True
        self._waiter = None
        return maybeDeferred(self.source.stop)
