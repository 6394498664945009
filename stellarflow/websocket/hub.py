"""
The hub of the WebSocket server, without sockets: its clients' sessions, their registration,
resumes, timeouts and shutdown.

The Autobahn protocol (L{stellarflow.websocket.protocol}) only forwards connection events here
(L{ClientHub.connect}, L{ClientHub.received}, L{ClientHub.disconnected}) and writes
what it is told to.  Each client is a L{Session}; the fan-out of the pipeline's events is the
L{Broadcaster}'s, replays to resuming clients the L{Replayer}'s (which talks to the hub as its
L{IReplayHost}), C{cursor} messages the L{CursorTicker}'s.  Everything runs on an injected
clock, so it is tested with fake connections and a L{twisted.internet.task.Clock}.

A client's life: connected and unregistered (events queued, a registration deadline), then
registered and live (in the fan-out), or resuming (its resume prepared, then replayed, then
live), until it closes.  Every event keeps its C{id}, the resume token.
"""

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from stellarflow.interfaces import IReplayHost
from stellarflow.logs import RateLimitedLog
from stellarflow.websocket import messages
from stellarflow.websocket.auth import OPEN
from stellarflow.websocket.broadcaster import Broadcaster
from stellarflow.websocket.cursors import CursorTicker
from stellarflow.websocket.history import HistoryWindow
from stellarflow.websocket.register import RegisterError, parseRegister
from stellarflow.websocket.replay import Replayer
from stellarflow.websocket.session import Session

log = Logger()


@attr.s(slots=True)
class Counters:
    """
    The hub's counters, shared with its sessions and its broadcaster (for metrics).

    @ivar delivered: events written to clients.
    @ivar dropped: events dropped from unregistered clients' queues.
    @ivar closedQueueFull: clients closed for not reading (during a replay too).
    @ivar errorsSent: C{error} replies.
    @ivar connections: connections accepted.
    """

    delivered = attr.ib(default=0)
    dropped = attr.ib(default=0)
    closedQueueFull = attr.ib(default=0)
    errorsSent = attr.ib(default=0)
    connections = attr.ib(default=0)
    registersLimited = attr.ib(default=0)
    filtersRefused = attr.ib(default=0)
    tokensExpired = attr.ib(default=0)


@implementer(IReplayHost)
class ClientHub:
    """
    Clients' sessions, registration and resumes; fans the pipeline's events out to them.

    @param clock: an L{IReactorTime} for timeouts, replays, cursor messages and log rate limits.
    @param prepare: C{prepare(payload_bytes) -> frame}, framing a text message once for any
        number of clients (L{stellarflow.compat.autobahn.prepareTextFrame}); frames go to
        L{IClientConnection.send} and C{sendMany}.  Defaults to the payload itself (tests).
    @param maxQueueSize: most events queued for an unregistered client and most messages held
        for a paused one.
    @param registrationTimeout: seconds a client has to send C{register}.
    @param maxConnections: beyond this many clients L{full} is true (new ones are refused).
    @param logInterval: at most one "message queue full" line per client per this many seconds.
    @param historySize: most recent events kept for resuming clients (0: no history, and
        C{resume_after} is refused).
    @param historyLedgers: also keep only the events of the newest this many ledgers (0: no
        ledger bound).
    @param maxReplay: most events one resume may need replayed.
    @param cursorInterval: seconds between C{cursor} messages to clients that received nothing
        (0: none).
    @param queueFullDrain: seconds a client closed for a full queue has to read what was already
        written to it, then its C{error} and close frame, before its TCP connection is dropped.
    @param store: the durable L{IEventHistory} older positions are replayed from, or C{None}.
    @param replayOptions: more keyword arguments for the L{Replayer} (tests, benchmarks).
    @param maxRegistersPerMinute: C{register} messages a client may send per minute (a
        bucket of that many, refilled continuously); one more closes it with 4429.
    @param maxFilterEntries: most entries (types, account_ids and asset_codes together) in
        one client's filters, unless its token grants another number.
    @param clientLog: the L{RateLimitedLog} for lines caused by clients.
    @param producedTypes: the message types the pipeline produces (C{None}: not known): what
        C{payment} means and the C{registered} reply's C{available_types}.

    @ivar sessions: every connected session (a dict used as an insertion-ordered set).
    @ivar counters: the L{Counters}.
    """

    def __init__(
        self,
        clock,
        prepare=None,
        maxQueueSize=1000,
        registrationTimeout=10.0,
        maxConnections=10000,
        logInterval=10.0,
        historySize=10000,
        historyLedgers=0,
        maxReplay=100000,
        cursorInterval=30.0,
        queueFullDrain=30.0,
        store=None,
        replayOptions=None,
        maxRegistersPerMinute=30,
        maxFilterEntries=2000,
        clientLog=None,
        producedTypes=None,
    ):
        self.clock = clock
        self.producedTypes = producedTypes
        self.prepare = prepare if prepare is not None else (lambda payload: payload)
        self.maxQueueSize = maxQueueSize
        self.registrationTimeout = registrationTimeout
        self.maxConnections = maxConnections
        self.logInterval = logInterval
        self.maxRegistersPerMinute = maxRegistersPerMinute
        self.maxFilterEntries = maxFilterEntries
        self.clientLog = clientLog if clientLog is not None else RateLimitedLog(clock, logInterval)
        self.queueFullDrain = queueFullDrain
        self.counters = Counters()
        # per session, kept small (one float for most): the register rate as a GCRA
        # "theoretical arrival time", and for token holders their grant and expiry timer.
        self._registerAt = {}
        self._grants = {}
        self._expiries = {}
        self.sessions = {}
        self.history = HistoryWindow(historySize, historyLedgers) if historySize else None
        self.broadcaster = Broadcaster(self.prepare, self.counters, self.history)
        self.replayer = Replayer(
            self, self.history, clock, self.prepare, store=store, maxReplay=maxReplay, **(replayOptions or {})
        )
        self.cursors = CursorTicker(clock, cursorInterval, self.broadcaster, self.prepare)
        self._welcome = self.prepare(messages.welcome())
        self._deadlines = {}  # session -> its registration timeout
        self._stopping = False
        self._drained = []

    # -- state ---------------------------------------------------------------------------

    @property
    def connected(self):
        """
        How many clients are connected now.
        """
        return len(self.sessions)

    @property
    def registered(self):
        """
        How many clients are live (registered, not replaying) now.
        """
        return len(self.broadcaster.index)

    @property
    def full(self):
        """
        Whether a new connection must be refused (C{maxConnections} reached).
        """
        return len(self.sessions) >= self.maxConnections

    @property
    def position(self):
        """
        The newest position processed (last event id or batch cursor), or C{None}.
        """
        return self.broadcaster.position

    def stats(self):
        """
        The counters, for metrics.
        """
        counters = self.counters
        return {
            "connected": self.connected,
            "registered": self.registered,
            "connections": counters.connections,
            "delivered": counters.delivered,
            "dropped": counters.dropped,
            "closed_queue_full": counters.closedQueueFull,
            "errors_sent": counters.errorsSent,
            "replaying": self.replayer.replaying,
            "replays": self.replayer.started,
            "replays_refused": self.replayer.refused,
            "replayed": self.replayer.replayed,
            "history_events": len(self.history) if self.history is not None else 0,
            "registers_limited": counters.registersLimited,
            "filters_refused": counters.filtersRefused,
            "tokens_expired": counters.tokensExpired,
        }

    # -- the pipeline's events -----------------------------------------------------------

    def broadcast(self, events, cursor=None):
        """
        Fan a batch out (see L{Broadcaster.broadcast}); the first batch tells the resumes
        that waited for it where the stream is, and each batch the resumes waiting for the
        position to reach theirs.
        """
        known = self.broadcaster.position is not None
        self.broadcaster.broadcast(events, cursor)
        if not known and self.broadcaster.position is not None:
            self.replayer.headKnown()
        else:
            self.replayer.headAdvanced()

    # -- connection events ---------------------------------------------------------------

    def connect(self, connection, grant=OPEN):
        """
        A WebSocket connection opened: register its session as the transport's producer, send
        the welcome and start the registration timer (and its token's expiry timer).

        @param connection: its L{IClientConnection}.
        @param grant: what its token allows (L{stellarflow.websocket.auth.Grant}).
        @return: its L{Session}.
        """
        session = Session(self, connection)
        self.sessions[session] = None
        self._registerAt[session] = 0.0
        if grant is not OPEN:
            self._grants[session] = grant
        self.counters.connections += 1
        connection.registerProducer(session, True)
        if session.closing:  # the transport was already gone: it called stopProducing
            return session
        if self._stopping:
            session.close(messages.CLOSE_GOING_AWAY, messages.REASON_GOING_AWAY)
            return session
        self.broadcaster.addUnregistered(session)
        self._startDeadline(session)
        if grant.expiresAt is not None:
            self._expiries[session] = self.clock.callLater(
                max(0.0, grant.expiresAt - self.clock.seconds()), self._tokenExpired, session
            )
        session.write(self._welcome)
        log.debug("WebSocket client {peer} connected", peer=session.peer)
        return session

    def disconnected(self, session):
        """
        The connection is gone (closed, lost or aborted); forget its session.  Idempotent.
        """
        if session not in self.sessions:
            return
        del self.sessions[session]
        self._forget(session)
        session.lost()
        log.debug("WebSocket client {peer} disconnected", peer=session.peer)
        if not self.sessions and self._drained:
            # a turn later: the transport calls stopProducing before the protocol's own
            # connectionLost, which must finish before a waiting shutdown() moves on.
            self.clock.callLater(0, self._fireDrained)

    def received(self, session, payload, isBinary):
        """
        A message from the client.  Bad input gets an C{error} reply and changes nothing.
        """
        if session.closing:
            return
        if not self._registerAllowed(session):
            return self._rateLimited(session)
        try:
            registration = parseRegister(payload, isBinary, self.producedTypes)
            if not isinstance(registration, RegisterError):
                registration = self._allowed(self._grants.get(session, OPEN), registration)
            self._handle(session, registration)
        except Exception:
            log.failure("Unexpected error handling a message from WebSocket client {peer}", peer=session.peer)
            session.error(messages.INTERNAL_ERROR, "the server could not process this message")

    def _registerAllowed(self, session):
        """
        Whether the session may send one more message: at most C{maxRegistersPerMinute} in
        any minute, as a burst or spread (the generic cell rate algorithm: one number per
        client, the time its allowance is spent until).
        """
        at = self._registerAt.get(session)
        if at is None:
            return True
        now = self.clock.seconds()
        interval = 60.0 / self.maxRegistersPerMinute
        at = max(at, now)
        if at - now > 60.0 - interval + 1e-9:
            return False
        self._registerAt[session] = at + interval
        return True

    def _allowed(self, grant, registration):
        """
        The registration, or a L{RegisterError} when its filters are larger than the client's
        limit or ask for types or accounts its token does not allow.
        """
        filters = registration.filters
        limit = grant.maxFilterEntries if grant.maxFilterEntries is not None else self.maxFilterEntries
        entries = len(filters.types) + len(filters.account_ids) + len(filters.asset_codes)
        if entries > limit:
            self.counters.filtersRefused += 1
            return RegisterError(
                messages.TOO_MANY_FILTER_ENTRIES,
                "filters have {} entries (types, account_ids and asset_codes together); at most {} "
                "are allowed".format(entries, limit),
                "filters",
            )
        for name, allowed in (("types", grant.types), ("account_ids", grant.accountIds)):
            if allowed is None:
                continue
            asked = getattr(filters, name)
            if not asked or not asked <= allowed:
                self.counters.filtersRefused += 1
                return RegisterError(
                    messages.FILTER_NOT_ALLOWED,
                    "your token allows only these {}: {}; list some of them (and no others)".format(
                        name, ", ".join(sorted(allowed)[:20]) + (" ..." if len(allowed) > 20 else "")
                    ),
                    "filters." + name,
                )
        return registration

    def _rateLimited(self, session):
        self.counters.registersLimited += 1
        self.clientLog.warn(
            log,
            "register-rate",
            "Closing WebSocket client {peer}: more than {limit} register messages per minute",
            peer=session.peer,
            limit=self.maxRegistersPerMinute,
        )
        session.error(
            messages.RATE_LIMITED,
            "more than {} register messages per minute; register once and re-register only to "
            "change filters".format(self.maxRegistersPerMinute),
        )
        session.close(messages.CLOSE_RATE_LIMITED, messages.REASON_RATE_LIMITED)

    def _tokenExpired(self, session):
        self._expiries.pop(session, None)
        if session.closing:
            return
        self.counters.tokensExpired += 1
        self.clientLog.info(log, "token-expired", "Closing WebSocket client {peer}: its token expired", peer=session.peer)
        session.error(messages.TOKEN_EXPIRED, "your token expired; reconnect with a new one")
        session.close(messages.CLOSE_TOKEN_EXPIRED, messages.REASON_TOKEN_EXPIRED)

    def _handle(self, session, registration):
        if isinstance(registration, RegisterError):
            return session.error(registration.code, registration.message, registration.field)
        if self.replayer.isPreparing(session):
            return session.error(
                messages.RESUME_IN_PROGRESS,
                "a resume is being prepared; wait for its registered reply before registering again",
            )
        if registration.resumeAfter is not None and self.history is None:
            return session.error(
                messages.RESUME_NOT_AVAILABLE,
                "this server keeps no history (history_size is 0); register without resume_after",
                "resume_after",
            )
        if registration.cursorUpdates is not None:
            session.wantsCursors = registration.cursorUpdates
        if registration.resumeAfter is None:
            return self.register(session, registration.filters)
        self.resume(session, registration.filters, registration.resumeAfter)

    def register(self, session, filters):
        """
        Set (or replace) the session's filters: reply C{registered}, then, the first time, send
        the events queued while it was unregistered that match, in order.
        """
        if session.closing:
            return
        self._cancelDeadline(session)
        first = session.register(filters)
        session.write(self.prepare(messages.registered(filters, producedTypes=self.producedTypes)))
        if session.closing:
            return
        if self.replayer.isReplaying(session):
            # Replaying: the replay goes on with the new filters and makes the session live.
            log.debug("WebSocket client {peer} changed filters while replaying", peer=session.peer)
            return
        if first:
            session.releasePending()
            if session.closing:
                return
        self.broadcaster.addRegistered(session, filters)
        self.cursors.start()
        log.debug("WebSocket client {peer} registered with filters {filters}", peer=session.peer, filters=filters.toJSON())

    def resume(self, session, filters, resumeAfter):
        """
        Register the session with C{filters}, replaying the matching events after
        C{resumeAfter} first.  The reply (C{registered} with C{resumed}, or an C{error}) may
        wait for the store; meanwhile the session keeps its previous state.
        """
        if session.closing:
            return
        self._cancelDeadline(session)
        self.replayer.prepare(session, filters, resumeAfter)

    # -- IReplayHost -----------------------------------------------------------------

    def replayStarted(self, session, filters, resume):
        if session.closing:
            return False
        self._cancelDeadline(session)
        session.register(filters)
        self.broadcaster.remove(session)
        session.discardPending()
        session.write(self.prepare(messages.registered(filters, resume, self.producedTypes)))
        return not session.closing

    def replayFinished(self, session):
        if session.closing:
            return
        session.forgetCursor()
        self.broadcaster.addRegistered(session, session.filters)
        self.cursors.start()

    def resumeRefused(self, session, code, message, field):
        if session.closing:
            return
        session.error(code, message, field)
        if not session.registered and not session.closing and session not in self._deadlines:
            self._startDeadline(session)

    def replayFailed(self, session):
        session.error(messages.INTERNAL_ERROR, "the replay failed; reconnect with resume_after")
        session.close(messages.CLOSE_INTERNAL_ERROR, messages.REASON_REPLAY_FAILED)

    def replayOverrun(self, session):
        self.counters.closedQueueFull += 1
        log.warn(
            "Closing WebSocket client {peer}: its replay fell more than history_size ({size}) events behind",
            peer=session.peer,
            size=self.history.size,
        )
        session.error(
            messages.REPLAY_OVERRUN,
            "the replay fell behind the events this server keeps (history_size {}); reconnect with "
            "resume_after set to your last event id".format(self.history.size),
        )
        session.close(messages.CLOSE_QUEUE_FULL, messages.REASON_REPLAY_OVERRUN)

    # -- what sessions tell their hub ---------------------------------------------------

    def sessionClosing(self, session):
        """
        C{session} stopped sending (closing, or its connection broke): hand it nothing more.
        """
        self._forget(session)

    def sessionDrained(self, session):
        """
        C{session}'s transport drained and nothing is held: a replay waiting for it goes on.
        """
        self.replayer.drained(session)

    def _forget(self, session):
        self.broadcaster.remove(session)
        self.replayer.cancel(session)
        self._cancelDeadline(session)
        self._registerAt.pop(session, None)
        self._grants.pop(session, None)
        expiry = self._expiries.pop(session, None)
        if expiry is not None and expiry.active():
            expiry.cancel()

    # -- registration timeouts -----------------------------------------------------------

    def _startDeadline(self, session):
        self._deadlines[session] = self.clock.callLater(self.registrationTimeout, self._expire, session)

    def _cancelDeadline(self, session):
        call = self._deadlines.pop(session, None)
        if call is not None and call.active():
            call.cancel()

    def _expire(self, session):
        self._deadlines.pop(session, None)
        if session.closing or session.registered:
            return
        self.clientLog.info(
            log,
            "registration-timeout",
            "Closing WebSocket client {peer}: no register message within {timeout}s",
            peer=session.peer,
            timeout=self.registrationTimeout,
        )
        session.error(
            messages.REGISTRATION_TIMEOUT,
            'no "register" message within {:g} seconds of connecting; send one right after the '
            "welcome".format(self.registrationTimeout),
        )
        session.close(messages.CLOSE_REGISTRATION_TIMEOUT, messages.REASON_REGISTRATION_TIMEOUT)

    # -- shutdown ------------------------------------------------------------------------

    def shutdown(self, timeout):
        """
        Close every client with 1001 (going away) and refuse new ones.

        @return: a Deferred firing once all are gone, or after C{timeout} seconds, when the
            rest are aborted.
        """
        self._stopping = True
        self.clientLog.stop()
        self.replayer.stop()
        self.cursors.stop()
        for session in list(self.sessions):
            if not session.closing:
                session.close(messages.CLOSE_GOING_AWAY, messages.REASON_GOING_AWAY)
        if not self.sessions:
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
        if self.sessions:
            return
        waiters, self._drained = self._drained, []
        for d in waiters:
            if not d.called:
                d.callback(None)

    def _abortAll(self, waiter):
        remaining = list(self.sessions)
        log.warn("{count} WebSocket client(s) did not close in time; aborting them", count=len(remaining))
        for session in remaining:
            connection = session.connection
            self.disconnected(session)
            if connection is not None:
                try:
                    connection.abort()
                except Exception:
                    pass
        if not waiter.called:
            if waiter in self._drained:
                self._drained.remove(waiter)
            waiter.callback(None)
