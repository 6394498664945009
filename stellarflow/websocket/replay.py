"""
Replaying history to WebSocket clients that resume (C{register} with C{resume_after}).

A resuming client is not in the live fan-out index: live events reach it through the history
window, which the replay reads up to its newest event.  Once the replay has sent everything the
window holds, the client joins the index in that same reactor turn, so nothing is missed and
nothing is sent twice (positions are totally ordered; a replay only moves forward).

Positions older than the window come from the durable store (L{IEventHistory}, PostgreSQL) in
pages, in id order, up to the window's floor; then the window takes over.  A replay that falls
out of the window while the client reads slowly goes back to the store, or, without one, ends
the connection (the client reconnects and is told about the gap).

Replays never hold up live traffic: one scheduler runs the ready replays round-robin, each
turn bounded by a work budget, and yields to the reactor between turns; a replay only runs
while its client's transport is not paused (flow control) and while no store read is in flight.

The replayer talks to its hub through L{IReplayHost} and to each client through
L{IClientSession}; what a resume needs is decided by L{stellarflow.websocket.resume}.
"""

import json
from collections import deque

import attr
from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from stellarflow.backoff import Backoff
from stellarflow.websocket import messages
from stellarflow.websocket.history import Event
from stellarflow.websocket.matching import eventKeys, matches
from stellarflow.websocket.resume import Refused, errorText, gapOf, planResume

log = Logger()

PREPARING, DATABASE, MEMORY = "preparing", "database", "memory"

#: Work units (about 0.7 us of CPU each, measured): scanning an event held in memory, framing
#: one read from the store, parsing one for filters that need its keys, sending one.
SCAN_COST = 1
DECODE_COST = 3
PARSE_COST = 25
SEND_COST = 3


@attr.s(slots=True, eq=False)
class Replay:
    """
    One session's replay: from C{after} (exclusive) up to the live stream.

    @ivar session: the L{IClientSession} replayed to.
    @ivar filters: the filters of the C{register} that asked for it (the replay then follows
        the session's current filters).
    @ivar position: every event up to here was sent (if it matched) or is not available.
    @ivar seq: in the L{MEMORY} phase, the window sequence number of the next event.
    @ivar page: in the L{DATABASE} phase, events read from the store and not yet scanned.
    @ivar fetching: the replay waits for a store read (or its retry) and cannot run.
    @ivar reading: C{(token, after, upto)} of the store read in flight, or C{None}.
    @ivar ready: C{(after, upto, result)} of a finished read not used yet, or C{None}.
    """

    session = attr.ib()
    filters = attr.ib()
    after = attr.ib()
    phase = attr.ib(default=PREPARING)
    position = attr.ib(default=None)
    seq = attr.ib(default=None)
    page = attr.ib(default=None)
    pageIndex = attr.ib(default=0)
    queued = attr.ib(default=False)
    fetching = attr.ib(default=False)
    reading = attr.ib(default=None)
    ready = attr.ib(default=None)
    cancelled = attr.ib(default=False)
    call = attr.ib(default=None)
    sent = attr.ib(default=0)
    backoff = attr.ib(default=None)
    lagging = attr.ib(default=False)

    def __attrs_post_init__(self):
        self.position = self.after

    def cancel(self):
        self.cancelled = True
        call, self.call = self.call, None
        if call is not None and call.active():
            call.cancel()
        self.page = self.reading = self.ready = None


class Replayer:
    """
    Prepares and runs the replays of one hub's clients.

    @param host: the L{ClientHub} (an L{IReplayHost}).
    @param window: its L{HistoryWindow}.
    @param clock: an L{IReactorTime}.
    @param prepareFrame: frames an event read from the store (see L{Broadcaster}'s C{prepare}).
    @param store: the durable L{IEventHistory} for positions older than the window, or C{None}.
    @param maxReplay: most events a replay may need (counted before filtering).
    @param chunk: most work units one replay does per reactor turn.
    @param turnBudget: most work units all replays together do per reactor turn.
    @param pageSize: events per store read.
    @param lagDelay: seconds to wait before asking the store again when it has not written
        events the replay needs yet.
    @param aheadWait: seconds a resume whose C{resume_after} is ahead of the newest position
        processed waits for this server to get there before it is refused (a client moving
        from a server a moment ahead, e.g. another edge of the same stream).
    """

    def __init__(
        self,
        host,
        window,
        clock,
        prepareFrame,
        store=None,
        maxReplay=100000,
        chunk=2000,
        turnBudget=6000,
        pageSize=1000,
        lagDelay=0.2,
        aheadWait=2.0,
    ):
        self.host = host
        self.window = window
        self.clock = clock
        self.prepareFrame = prepareFrame
        self.store = store
        self.maxReplay = maxReplay
        self.chunk = chunk
        self.turnBudget = turnBudget
        self.pageSize = pageSize
        self.lagDelay = lagDelay
        self.aheadWait = aheadWait
        self.active = {}  # session -> Replay, for replays past their registered reply
        self._preparing = {}  # session -> Replay, for resumes waiting for their reply
        self._waitingHead = []
        self._waitingAhead = []  # resumes ahead of the position, until it gets there
        self._ready = deque()
        self._call = None
        # counters for metrics
        self.started = 0
        self.completed = 0
        self.refused = 0
        self.replayed = 0

    @property
    def replaying(self):
        """
        How many sessions are replaying now.
        """
        return len(self.active)

    def isPreparing(self, session):
        """
        Whether a resume of C{session} waits for its reply.
        """
        return session in self._preparing

    def isReplaying(self, session):
        """
        Whether C{session} is replaying (its reply sent, not live yet).
        """
        return session in self.active

    # -- preparing -------------------------------------------------------------------

    def prepare(self, session, filters, resumeAfter):
        """
        Start serving C{session}'s register with C{resumeAfter}: check it, count what it needs
        (the store may be asked), then reply and start replaying.  Until then
        L{isPreparing} is true and the session's state is unchanged.
        """
        replay = Replay(session, filters, resumeAfter)
        self._preparing[session] = replay
        if self.host.position is None:
            # Nothing processed yet (just started): "ahead" cannot be told before the first
            # batch arrives.
            self._waitingHead.append(replay)
            return
        self._evaluateOrWait(replay)

    def headKnown(self):
        """
        The hub processed its first batch: evaluate the resumes waiting for it.
        """
        waiting, self._waitingHead = self._waitingHead, []
        for replay in waiting:
            if not replay.cancelled:
                self._evaluateOrWait(replay)

    def headAdvanced(self):
        """
        The hub processed a batch: evaluate the resumes that waited for its position to reach
        their C{resume_after}.
        """
        if not self._waitingAhead:
            return
        position = self.host.position
        waiting, self._waitingAhead = self._waitingAhead, []
        for replay in waiting:
            if replay.cancelled:
                continue
            if replay.after <= position:
                call, replay.call = replay.call, None
                if call is not None and call.active():
                    call.cancel()
                self._evaluate(replay)
            else:
                self._waitingAhead.append(replay)

    def _evaluateOrWait(self, replay):
        if replay.after > self.host.position and self.aheadWait > 0:
            replay.call = self.clock.callLater(self.aheadWait, self._aheadExpired, replay)
            self._waitingAhead.append(replay)
            return
        self._evaluate(replay)

    def _aheadExpired(self, replay):
        """
        The position did not reach C{replay}'s C{resume_after} in time: evaluate it (refused).
        """
        replay.call = None
        if replay in self._waitingAhead:
            self._waitingAhead.remove(replay)
        if not replay.cancelled:
            self._evaluate(replay)

    def _evaluate(self, replay):
        d = maybeDeferred(planResume, replay, self.host.position, self.window, self.store, self.maxReplay)
        d.addCallbacks(self._accepted, self._refused, callbackArgs=(replay,), errbackArgs=(replay,))

    def _accepted(self, plan, replay):
        session = replay.session
        if replay.cancelled or plan is None or self._preparing.get(session) is not replay:
            return
        del self._preparing[session]
        start, gap = plan.start, plan.gap
        floor = self.window.floor
        if not plan.useStore and start < floor:
            # The window moved on while the store was asked: the gap grows with it.
            start, gap = floor, gapOf(replay.after, floor)
        previous = self.active.pop(session, None)
        if previous is not None:
            previous.cancel()
        resume = {"resume_after": replay.after, "resumed": gap is None}
        if gap is not None:
            resume["gap"] = gap
        replay.position = start
        if plan.useStore and start < floor:
            replay.phase = DATABASE
        else:
            replay.phase = MEMORY
            replay.seq = self.window.seqAfter(start)
        if not self.host.replayStarted(session, replay.filters, resume):
            return
        self.active[session] = replay
        self.started += 1
        (log.info if gap is not None else log.debug)(
            "WebSocket client {peer} resumes after {after}{gap}; replaying from {source}",
            peer=session.peer,
            after=replay.after,
            gap="" if gap is None else " (cannot replay up to {})".format(gap["to"]),
            source="the database" if replay.phase == DATABASE else "memory",
        )
        self.wake(replay)

    def _refused(self, failure, replay):
        session = replay.session
        if self._preparing.get(session) is replay:
            del self._preparing[session]
        if replay.cancelled:
            return
        self.refused += 1
        if failure.check(Refused):
            e = failure.value
            self.host.resumeRefused(session, e.code, e.message, e.field)
            return
        log.failure("Unexpected error preparing a resume for WebSocket client {peer}", failure, peer=session.peer)
        self.host.resumeRefused(session, messages.INTERNAL_ERROR, "the server could not prepare the resume", None)

    # -- running -----------------------------------------------------------------------

    def drained(self, session):
        """
        C{session}'s transport drained: its replay, if any, may go on.
        """
        replay = self.active.get(session)
        if replay is not None:
            self.wake(replay)

    def wake(self, replay):
        """
        C{replay} may make progress (started, client drained, page arrived): queue it.
        """
        if replay.queued or replay.cancelled or replay.fetching or replay.phase == PREPARING:
            return
        replay.queued = True
        self._ready.append(replay)
        if self._call is None:
            self._call = self.clock.callLater(0, self._turn)

    def _turn(self):
        """
        One reactor turn of replaying: the ready replays round-robin within the turn budget.
        """
        self._call = None
        ready = self._ready
        budget = self.turnBudget
        for _ in range(len(ready)):
            if budget <= 0:
                break
            replay = ready.popleft()
            replay.queued = False
            if replay.cancelled:
                continue
            try:
                used, more = self._step(replay, min(self.chunk, budget))
            except Exception:
                log.failure("Replay to WebSocket client {peer} failed", peer=replay.session.peer)
                self.host.replayFailed(replay.session)
                continue
            budget -= used
            if more and not replay.queued:
                replay.queued = True
                ready.append(replay)
        if ready and self._call is None:
            self._call = self.clock.callLater(0, self._turn)

    def _step(self, replay, budget):
        """
        Replay up to C{budget} work units.  Returns C{(used, more)}: C{more} is false once the
        replay waits (paused client, store read) or ended.
        """
        session = replay.session
        window = self.window
        used = 0
        sent = 0
        try:
            while used < budget:
                if replay.cancelled or session.closing:
                    return used, False
                if session.paused:
                    return used, False  # woken by drained() once the client drained
                filters = session.filters
                if replay.phase == MEMORY:
                    seq = replay.seq
                    if seq < window.first:
                        if self.store is not None:
                            replay.phase = DATABASE
                            continue
                        self.host.replayOverrun(session)
                        return used, False
                    if seq >= window.end:
                        self._finish(replay)
                        return used, False
                    event = window.at(seq)
                    replay.seq = seq + 1
                    replay.position = event.id
                    used += SCAN_COST
                    if filters.isEmpty or matches(filters, event.keys):
                        session.deliver(event)
                        sent += 1
                        used += SEND_COST
                    continue
                # DATABASE
                page = replay.page
                if page is not None and replay.pageIndex < len(page):
                    id, payload = page[replay.pageIndex]
                    replay.pageIndex += 1
                    replay.position = id
                    used += DECODE_COST if filters.isEmpty else DECODE_COST + PARSE_COST
                    event = self._decode(id, payload, filters)
                    if event is not None:
                        session.deliver(event)
                        sent += 1
                        used += SEND_COST
                    continue
                replay.page = None
                ready, replay.ready = replay.ready, None
                if ready is not None and ready[0] == replay.position:
                    if self._apply(replay, *ready):
                        continue
                    return used, False
                floor = window.floor
                if replay.position >= floor:
                    replay.phase = MEMORY
                    replay.seq = window.seqAfter(replay.position)
                    replay.reading = None
                    continue
                replay.fetching = True  # before reading: a store may answer at once
                reading = replay.reading
                if reading is None or reading[1] != replay.position:
                    self._read(replay, replay.position, floor)
                return used, False
            return used, True
        finally:
            replay.sent += sent
            self.replayed += sent

    def _decode(self, id, payload, filters):
        """
        An event read from the store as the live one: its frame, and its keys when the
        filters need them; C{None} when it does not match (or cannot be read).
        """
        keys = None
        if not filters.isEmpty:
            try:
                keys = eventKeys(json.loads(payload))
            except (ValueError, TypeError, AttributeError):
                log.warn("Stored event {id} cannot be decoded; not replayed", id=id)
                return None
            if not matches(filters, keys):
                return None
        return Event(id, keys, self.prepareFrame(payload))

    def _read(self, replay, after, upto):
        """
        Ask the store for the page after C{after}; the result waits in C{replay.ready} (or
        wakes the replay if it is waiting for it).
        """
        token = object()
        replay.reading = (token, after, upto)
        d = maybeDeferred(self.store.read, after, upto, self.pageSize)

        def done(result):
            reading = replay.reading
            if replay.cancelled or reading is None or reading[0] is not token:
                return None  # cancelled, or no longer wanted
            replay.reading = None
            replay.ready = (after, upto, result)
            if replay.fetching:
                replay.fetching = False
                self.wake(replay)
            return None

        d.addBoth(done)

    def _apply(self, replay, after, upto, result):
        """
        Use a finished read.  Returns false when the replay must wait (a retry is scheduled).
        """
        if isinstance(result, Failure):
            if replay.backoff is None:
                replay.backoff = Backoff(initial=0.5, maximum=30.0)
            delay = replay.backoff.next()
            log.warn(
                "Cannot read the event history for WebSocket client {peer}: {error}; retrying in {delay:.1f}s",
                peer=replay.session.peer,
                error=errorText(result.value),
                delay=delay,
            )
            return self._waitThenRetry(replay, delay)
        events, complete = result
        replay.backoff = None
        if events:
            replay.page, replay.pageIndex = events, 0
            replay.lagging = False
            last = events[-1][0]
            if len(events) >= self.pageSize and last < self.window.floor:
                self._read(replay, last, self.window.floor)  # the next page, while this one goes out
            return True
        if complete:
            replay.position = upto  # no event up to there
            replay.lagging = False
            return True
        # The store has not written these events yet: ask again shortly.
        if not replay.lagging:
            replay.lagging = True
            log.info(
                "Replay to WebSocket client {peer} waits for the database to store events after {position}",
                peer=replay.session.peer,
                position=replay.position,
            )
        return self._waitThenRetry(replay, self.lagDelay)

    def _waitThenRetry(self, replay, delay):
        replay.fetching = True
        replay.call = self.clock.callLater(delay, self._retry, replay)
        return False

    def _retry(self, replay):
        replay.call = None
        replay.fetching = False
        self.wake(replay)

    def _finish(self, replay):
        session = replay.session
        self.active.pop(session, None)
        self.completed += 1
        log.debug(
            "WebSocket client {peer} caught up after replaying {count} event(s); now live",
            peer=session.peer,
            count=replay.sent,
        )
        self.host.replayFinished(session)

    # -- ending ------------------------------------------------------------------------

    def cancel(self, session):
        """
        Forget C{session}'s replay and any resume being prepared (it is gone or closing).
        """
        replay = self._preparing.pop(session, None)
        if replay is not None:
            replay.cancel()
            if replay in self._waitingAhead:
                self._waitingAhead.remove(replay)
        replay = self.active.pop(session, None)
        if replay is not None:
            replay.cancel()

    def stop(self):
        """
        Cancel every replay and the scheduler (shutdown).
        """
        for replay in list(self.active.values()) + list(self._preparing.values()) + self._waitingHead:
            replay.cancel()
        for replay in self._waitingAhead:
            replay.cancel()
        self.active.clear()
        self._preparing.clear()
        self._waitingHead = []
        self._waitingAhead = []
        self._ready.clear()
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
