"""
Replaying history to WebSocket clients that resume (``register`` with ``resume_after``).

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
"""

import json
from collections import deque

from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from stellarflow.backoff import Backoff
from stellarflow.positions import after, before, ledgerOf
from stellarflow.websocket import messages
from stellarflow.websocket.history import Event
from stellarflow.websocket.matching import eventKeys, matches

log = Logger()

PREPARING, DATABASE, MEMORY = "preparing", "database", "memory"

#: Work units (about 0.7 us of CPU each, measured): scanning an event held in memory, framing
#: one read from the store, parsing one for filters that need its keys, sending one.
SCAN_COST = 1
DECODE_COST = 3
PARSE_COST = 25
SEND_COST = 3


class Refused(Exception):
    """
    A resume cannot be served: C{code} and C{message} go to the client as an C{error}.
    """

    def __init__(self, code, message, field=None):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.field = field


class Replay:
    """
    One client's replay: from C{after} (exclusive) up to the live stream.

    @ivar position: every event up to here was sent (if it matched) or is not available.
    @ivar seq: in the L{MEMORY} phase, the window sequence number of the next event.
    @ivar page: in the L{DATABASE} phase, events read from the store and not yet scanned.
    @ivar fetching: the replay waits for a store read (or its retry) and cannot run.
    @ivar reading: C{(token, after, upto)} of the store read in flight, or C{None}.
    @ivar ready: C{(after, upto, result)} of a finished read not used yet, or C{None}.
    """

    __slots__ = (
        "client", "filters", "after", "phase", "position", "seq", "page", "pageIndex",
        "queued", "fetching", "reading", "ready", "cancelled", "call", "sent", "backoff", "lagging",
    )

    def __init__(self, client, filters, after):
        self.client = client
        self.filters = filters
        self.after = after
        self.phase = PREPARING
        self.position = after
        self.seq = None
        self.page = None
        self.pageIndex = 0
        self.queued = False
        self.fetching = False
        self.reading = None
        self.ready = None
        self.cancelled = False
        self.call = None
        self.sent = 0
        self.backoff = None
        self.lagging = False

    def cancel(self):
        self.cancelled = True
        call, self.call = self.call, None
        if call is not None and call.active():
            call.cancel()
        self.page = self.reading = self.ready = None


def gapOf(resumeAfter, lower):
    """
    The ``gap`` of a ``registered`` reply: events with ``from_after < id <= to`` cannot be
    replayed; ``ledgers`` is the inclusive ledger range they would lie in.
    """
    return {
        "from_after": resumeAfter,
        "to": lower,
        "ledgers": [ledgerOf(after(resumeAfter)), ledgerOf(lower)],
    }


class Replayer:
    """
    Prepares and runs the replays of one broadcaster.

    @param broadcaster: the L{Broadcaster} (it sends, registers and closes clients).
    @param window: its L{HistoryWindow}.
    @param max_replay: most events a replay may need (counted before filtering).
    @param chunk: most work units one replay does per reactor turn.
    @param turn_budget: most work units all replays together do per reactor turn.
    @param page_size: events per store read.
    @param lag_delay: seconds to wait before asking the store again when it has not written
        events the replay needs yet.
    """

    def __init__(
        self,
        broadcaster,
        window,
        clock,
        max_replay=100000,
        chunk=2000,
        turn_budget=6000,
        page_size=1000,
        lag_delay=0.2,
    ):
        self.broadcaster = broadcaster
        self.window = window
        self.clock = clock
        self.max_replay = max_replay
        self.chunk = chunk
        self.turn_budget = turn_budget
        self.page_size = page_size
        self.lag_delay = lag_delay
        self.store = None
        self.active = {}  # client -> Replay, for replays past their registered reply
        self._waitingHead = []
        self._ready = deque()
        self._call = None
        # counters for metrics
        self.started = 0
        self.completed = 0
        self.refused = 0
        self.replayed = 0

    # -- preparing -------------------------------------------------------------------

    def prepare(self, client, filters, resumeAfter):
        """
        Start serving C{client}'s register with C{resumeAfter}: check it, count what it needs
        (the store may be asked), then reply and start replaying.  Until then
        C{client.preparing} is set and the client's state is unchanged.
        """
        session = Replay(client, filters, resumeAfter)
        client.preparing = session
        if self.broadcaster.position is None:
            # Nothing processed yet (just started): "ahead" cannot be told before the first
            # batch arrives.
            self._waitingHead.append(session)
            return
        self._evaluate(session)

    def headKnown(self):
        """
        The broadcaster processed its first batch: evaluate the resumes waiting for it.
        """
        waiting, self._waitingHead = self._waitingHead, []
        for session in waiting:
            if not session.cancelled:
                self._evaluate(session)

    def _evaluate(self, session):
        d = maybeDeferred(self._plan, session)
        d.addCallbacks(self._accepted, self._refused, callbackArgs=(session,), errbackArgs=(session,))

    @inlineCallbacks
    def _plan(self, session):
        """
        Where the replay starts, the gap if any, and whether it reads the store first.
        """
        window = self.window
        resumeAfter = session.after
        head = self.broadcaster.position
        if resumeAfter > head:
            raise Refused(
                messages.RESUME_AFTER_AHEAD,
                "resume_after {} is ahead of the newest position this server has processed ({})".format(
                    resumeAfter, head
                ),
                "resume_after",
            )
        floor = window.floor
        start, gap, useStore, stored = resumeAfter, None, False, 0
        if resumeAfter < floor:
            lower = floor
            store = self.store
            if store is not None:
                try:
                    oldest = yield store.oldest()
                    if oldest is not None and before(oldest) < floor:
                        lower = max(before(oldest), resumeAfter)
                        useStore = True
                    if useStore:
                        stored = yield store.count(lower, floor, self.max_replay + 1)
                except Exception as e:
                    log.warn(
                        "Cannot read the event history for WebSocket client {peer}'s resume: {error}",
                        peer=session.client.peer,
                        error=_text(e),
                    )
                    raise Refused(
                        messages.HISTORY_UNAVAILABLE,
                        "the stored history cannot be read right now ({}); retry later".format(
                            type(e).__name__
                        ),
                    ) from None
            if resumeAfter < lower:
                gap = gapOf(resumeAfter, lower)
            start = lower
        if session.cancelled:
            return None
        total = stored + window.countAfter(max(start, window.floor))
        if total > self.max_replay:
            raise Refused(
                messages.REPLAY_TOO_LARGE,
                "resuming after {} needs more than max_replay ({}) events replayed; resume from "
                "a later position, or register without resume_after".format(resumeAfter, self.max_replay),
                "resume_after",
            )
        return start, gap, useStore

    def _accepted(self, plan, session):
        client = session.client
        if session.cancelled or plan is None or client.preparing is not session:
            return
        client.preparing = None
        start, gap, useStore = plan
        floor = self.window.floor
        if not useStore and start < floor:
            # The window moved on while the store was asked: the gap grows with it.
            start, gap = floor, gapOf(session.after, floor)
        previous = self.active.pop(client, None)
        if previous is not None:
            previous.cancel()
        resume = {"resume_after": session.after, "resumed": gap is None}
        if gap is not None:
            resume["gap"] = gap
        session.position = start
        if useStore and start < floor:
            session.phase = DATABASE
        else:
            session.phase = MEMORY
            session.seq = self.window.seqAfter(start)
        if not self.broadcaster._startReplay(client, session.filters, resume):
            return
        client.replay = session
        self.active[client] = session
        self.started += 1
        (log.info if gap is not None else log.debug)(
            "WebSocket client {peer} resumes after {after}{gap}; replaying from {source}",
            peer=client.peer,
            after=session.after,
            gap="" if gap is None else " (cannot replay up to {})".format(gap["to"]),
            source="the database" if session.phase == DATABASE else "memory",
        )
        self.wake(session)

    def _refused(self, failure, session):
        client = session.client
        if client.preparing is session:
            client.preparing = None
        if session.cancelled:
            return
        self.refused += 1
        if failure.check(Refused):
            e = failure.value
            self.broadcaster._resumeRefused(client, e.code, e.message, e.field)
            return
        log.failure("Unexpected error preparing a resume for WebSocket client {peer}", failure, peer=client.peer)
        self.broadcaster._resumeRefused(client, messages.INTERNAL_ERROR, "the server could not prepare the resume")

    # -- running -----------------------------------------------------------------------

    def wake(self, session):
        """
        C{session} may make progress (started, client drained, page arrived): queue it.
        """
        if session.queued or session.cancelled or session.fetching or session.phase == PREPARING:
            return
        session.queued = True
        self._ready.append(session)
        if self._call is None:
            self._call = self.clock.callLater(0, self._turn)

    def _turn(self):
        """
        One reactor turn of replaying: the ready replays round-robin within the turn budget.
        """
        self._call = None
        ready = self._ready
        budget = self.turn_budget
        for _ in range(len(ready)):
            if budget <= 0:
                break
            session = ready.popleft()
            session.queued = False
            if session.cancelled:
                continue
            try:
                used, more = self._step(session, min(self.chunk, budget))
            except Exception:
                log.failure("Replay to WebSocket client {peer} failed", peer=session.client.peer)
                self.broadcaster._replayFailed(session.client)
                continue
            budget -= used
            if more and not session.queued:
                session.queued = True
                ready.append(session)
        if ready and self._call is None:
            self._call = self.clock.callLater(0, self._turn)

    def _step(self, session, budget):
        """
        Replay up to C{budget} work units.  Returns C{(used, more)}: C{more} is false once the
        replay waits (paused client, store read) or ended.
        """
        client = session.client
        broadcaster = self.broadcaster
        window = self.window
        used = 0
        sent = 0
        try:
            while used < budget:
                if session.cancelled or client.closing:
                    return used, False
                if client.paused:
                    return used, False  # resumed by the broadcaster when the client drained
                filters = client.filters
                if session.phase == MEMORY:
                    seq = session.seq
                    if seq < window.first:
                        if self.store is not None:
                            session.phase = DATABASE
                            continue
                        broadcaster._replayOverrun(client)
                        return used, False
                    if seq >= window.end:
                        self._finish(session)
                        return used, False
                    event = window.at(seq)
                    session.seq = seq + 1
                    session.position = event.id
                    used += SCAN_COST
                    if filters.isEmpty or matches(filters, event.keys):
                        broadcaster._hold(client, event)
                        sent += 1
                        used += SEND_COST
                    continue
                # DATABASE
                page = session.page
                if page is not None and session.pageIndex < len(page):
                    id, payload = page[session.pageIndex]
                    session.pageIndex += 1
                    session.position = id
                    used += DECODE_COST if filters.isEmpty else DECODE_COST + PARSE_COST
                    event = self._decode(id, payload, filters)
                    if event is not None:
                        broadcaster._hold(client, event)
                        sent += 1
                        used += SEND_COST
                    continue
                session.page = None
                ready, session.ready = session.ready, None
                if ready is not None and ready[0] == session.position:
                    if self._apply(session, *ready):
                        continue
                    return used, False
                floor = window.floor
                if session.position >= floor:
                    session.phase = MEMORY
                    session.seq = window.seqAfter(session.position)
                    session.reading = None
                    continue
                session.fetching = True  # before reading: a store may answer at once
                reading = session.reading
                if reading is None or reading[1] != session.position:
                    self._read(session, session.position, floor)
                return used, False
            return used, True
        finally:
            session.sent += sent
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
        return Event(id, keys, self.broadcaster.prepare(payload))

    def _read(self, session, after, upto):
        """
        Ask the store for the page after C{after}; the result waits in C{session.ready} (or
        wakes the replay if it is waiting for it).
        """
        token = object()
        session.reading = (token, after, upto)
        d = maybeDeferred(self.store.read, after, upto, self.page_size)

        def done(result):
            reading = session.reading
            if session.cancelled or reading is None or reading[0] is not token:
                return None  # cancelled, or no longer wanted
            session.reading = None
            session.ready = (after, upto, result)
            if session.fetching:
                session.fetching = False
                self.wake(session)
            return None

        d.addBoth(done)

    def _apply(self, session, after, upto, result):
        """
        Use a finished read.  Returns false when the replay must wait (a retry is scheduled).
        """
        if isinstance(result, Failure):
            if session.backoff is None:
                session.backoff = Backoff(initial=0.5, maximum=30.0)
            delay = session.backoff.next()
            log.warn(
                "Cannot read the event history for WebSocket client {peer}: {error}; retrying in {delay:.1f}s",
                peer=session.client.peer,
                error=_text(result.value),
                delay=delay,
            )
            return self._waitThenRetry(session, delay)
        events, complete = result
        session.backoff = None
        if events:
            session.page, session.pageIndex = events, 0
            session.lagging = False
            last = events[-1][0]
            if len(events) >= self.page_size and last < self.window.floor:
                self._read(session, last, self.window.floor)  # the next page, while this one goes out
            return True
        if complete:
            session.position = upto  # no event up to there
            session.lagging = False
            return True
        # The store has not written these events yet: ask again shortly.
        if not session.lagging:
            session.lagging = True
            log.info(
                "Replay to WebSocket client {peer} waits for the database to store events after {position}",
                peer=session.client.peer,
                position=session.position,
            )
        return self._waitThenRetry(session, self.lag_delay)

    def _waitThenRetry(self, session, delay):
        session.fetching = True
        session.call = self.clock.callLater(delay, self._retry, session)
        return False

    def _retry(self, session):
        session.call = None
        session.fetching = False
        self.wake(session)

    def _finish(self, session):
        client = session.client
        self.active.pop(client, None)
        client.replay = None
        self.completed += 1
        log.debug(
            "WebSocket client {peer} caught up after replaying {count} event(s); now live",
            peer=client.peer,
            count=session.sent,
        )
        self.broadcaster._replayDone(client)

    # -- ending ------------------------------------------------------------------------

    def cancel(self, client):
        """
        Forget C{client}'s replay and any resume being prepared (it is gone or closing).
        """
        session = client.preparing
        if session is not None:
            client.preparing = None
            session.cancel()
        session = self.active.pop(client, None)
        if session is not None:
            session.cancel()
        client.replay = None

    def stop(self):
        """
        Cancel every replay and the scheduler (shutdown).
        """
        for session in list(self.active.values()) + self._waitingHead:
            session.cancel()
        self.active.clear()
        self._waitingHead = []
        self._ready.clear()
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    @property
    def replaying(self):
        """How many clients are replaying now."""
        return len(self.active)


def _text(error):
    """
    An exception as one short line for logs.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]
