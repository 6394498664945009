"""
One WebSocket client's session: its connection, its filters, its two bounded queues and the flow
control between them.

A session is its transport's push producer: the transport pauses it when its write buffer
passes 64 KiB (the client is not reading) and resumes it once drained.  It holds:

  - the I{pending} queue: events seen while it is unregistered (L{Session.queue}); beyond
    C{maxQueueSize} the oldest are dropped.  On its first registration the queue is filtered
    and what matches is sent (L{Session.releasePending});
  - the I{backlog}: messages held while it is paused, and whatever comes after them
    (L{Session.deliver}, L{Session.write}), sent in order on resume.  One more than
    C{maxQueueSize} held closes the client (4029).

Everything is sent through its public methods; nothing else touches its queues.  Its hub
(L{stellarflow.websocket.hub.ClientHub}) supplies the clock, the limits, the counters and the
framing, and is told when the session stops sending (C{sessionClosing}), when its transport is
gone (C{disconnected}) and when it drained (C{sessionDrained}).
"""

from collections import deque

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from stellarflow.interfaces import IClientSession
from stellarflow.websocket import messages
from stellarflow.websocket.history import Event
from stellarflow.websocket.matching import matches

log = Logger()


@implementer(IPushProducer, IClientSession)
class Session:
    """
    One connected client.

    @ivar connection: its L{IClientConnection}; C{None} once the connection is gone.
    @ivar filters: its L{Filters}, or C{None} while it has not registered.
    @ivar paused: its transport paused it.
    @ivar holding: messages must be held rather than written: it is paused, or messages held
        before are still waiting (the fan-out reads this one flag per delivery).
    @ivar closing: it is closing or gone; nothing more is sent.
    @ivar active: an event was handed to it since the last cursor tick.
    @ivar cursorAt: the position of the last C{cursor} message sent, or C{None}.
    @ivar wantsCursors: it asked for C{cursor} messages (C{cursor_updates}, or by resuming);
        a client that sends exactly the guide's C{register} gets none.
    """

    __slots__ = (
        "connection", "peer", "filters", "paused", "holding", "closing", "active", "cursorAt", "wantsCursors",
        "_hub", "_limit", "_pending", "_backlog", "_unlogged", "_loggedAt",
    )

    def __init__(self, hub, connection):
        self._hub = hub
        self._limit = hub.maxQueueSize
        self.connection = connection
        self.peer = connection.peer
        self.filters = None
        self.paused = False
        self.holding = False
        self.closing = False
        self.active = False
        self.cursorAt = None
        self.wantsCursors = False
        self._pending = None
        self._backlog = None
        self._unlogged = 0
        self._loggedAt = None

    def __repr__(self):
        return "<Session {} {}>".format(self.peer, "registered" if self.filters is not None else "unregistered")

    @property
    def registered(self):
        """
        Whether it has registered filters.
        """
        return self.filters is not None

    @property
    def queued(self):
        """
        How many events are queued for it while unregistered.
        """
        return len(self._pending) if self._pending is not None else 0

    @property
    def held(self):
        """
        How many messages are held for it (its backlog).
        """
        return len(self._backlog) if self._backlog is not None else 0

    # -- registration --------------------------------------------------------------------

    def register(self, filters):
        """
        Set (or replace) its filters.

        @return: whether this is its first registration.
        """
        first = self.filters is None
        self.filters = filters
        return first

    def releasePending(self):
        """
        Send the events queued while it was unregistered that match its filters, in order,
        then forget the queue (its first registration).
        """
        pending, self._pending = self._pending, None
        self._logDrops()
        if not pending:
            return
        filters = self.filters
        for event in pending:
            if matches(filters, event.keys):
                self.deliver(event)
                if self.closing:
                    return

    def discardPending(self):
        """
        Forget the events queued while it was unregistered (a replay covers them).
        """
        self._pending = None
        self._logDrops()

    # -- sending -------------------------------------------------------------------------

    def queue(self, events):
        """
        Events seen while it is unregistered (a batch's, in order): queue them.  Beyond
        C{maxQueueSize} queued, the oldest are dropped (counted; logged at most once per
        C{logInterval}).
        """
        pending = self._pending
        if pending is None:
            pending = self._pending = deque(maxlen=self._limit)
        before = len(pending)
        pending.extend(events)
        dropped = before + len(events) - self._limit
        if dropped > 0:
            self._dropped(dropped)

    def deliver(self, event):
        """
        Send an L{Event} now, or hold it (see L{IClientSession.deliver}).
        """
        if self.closing:
            return
        self.active = True
        if self.holding:
            self._hold(event)
            return
        try:
            self.connection.send(event.frame)
        except Exception:
            self._broken()
            return
        self._hub.counters.delivered += 1

    def sendFrames(self, frames):
        """
        Write the frames of one fan-out chunk's events in one write.  The fan-out calls this
        only while it is not holding, and counts the deliveries itself; a transport that pauses
        it during this write still takes the whole chunk.
        """
        if self.closing:
            return
        self.active = True
        try:
            self.connection.sendMany(frames)
        except Exception:
            self._broken()

    def write(self, frame):
        """
        Send one of the hub's own messages (welcome, replies, cursor), keeping its place
        behind what is held.
        """
        if self.closing:
            return
        if self.holding:
            self._hold(frame)
            return
        try:
            self.connection.send(frame)
        except Exception:
            self._broken()

    def error(self, code, text, field=None):
        """
        Send an C{error} reply (counted).
        """
        hub = self._hub
        hub.counters.errorsSent += 1
        log.debug("WebSocket client {peer}: {code}: {text}", peer=self.peer, code=code, text=text)
        self.write(hub.prepare(messages.error(code, text, field)))

    def _hold(self, item):
        """
        Add an L{Event} or a frame to the backlog; one more than C{maxQueueSize} closes it.
        """
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = deque()
        elif len(backlog) >= self._limit:
            self._overflow()
            return
        backlog.append(item)

    # -- flow control (IPushProducer) ----------------------------------------------------

    def pauseProducing(self):
        """
        The transport's write buffer is full: hold what comes, and stop reading from the
        client (so that it cannot make us produce more replies).
        """
        if self.paused or self.closing:
            return
        self.paused = self.holding = True
        self.connection.pauseReading()

    def resumeProducing(self):
        """
        The transport drained: send what is held, in order, until it pauses again; once all
        is sent, read from the client again and tell the hub.
        """
        if not self.paused or self.closing:
            return
        self.paused = False
        backlog = self._backlog
        connection = self.connection
        delivered = 0
        try:
            while backlog and not self.paused:
                item = backlog.popleft()
                if item.__class__ is Event:
                    connection.send(item.frame)
                    delivered += 1
                else:
                    connection.send(item)
        except Exception:
            self._broken()
            return
        finally:
            self._hub.counters.delivered += delivered
        if not backlog:
            self._backlog = None
        self.holding = self.paused or self._backlog is not None
        if not self.paused:
            connection.resumeReading()
            self._hub.sessionDrained(self)

    def stopProducing(self):
        """
        The transport is gone.
        """
        self._hub.disconnected(self)

    # -- cursor messages -----------------------------------------------------------------

    def cursorTick(self, position):
        """
        The cursor timer ticked: whether to send it C{position} now.  Not when an event was
        handed to it since the previous tick (that is forgotten for the next one), when it was
        told this position already, while it is holding messages or closing, nor when it did
        not ask for cursor messages.
        """
        if not self.wantsCursors:
            return False
        if self.active:
            self.active = False
            return False
        return not (self.cursorAt == position or self.holding or self.closing)

    def sendCursor(self, position, frame):
        """
        Send the C{cursor} message C{frame}, which says C{position}.
        """
        self.cursorAt = position
        self.write(frame)

    def forgetCursor(self):
        """
        Forget which position it was told (it may be told the same one again).
        """
        self.cursorAt = None

    # -- ending --------------------------------------------------------------------------

    def close(self, code, reason, drainTimeout=None):
        """
        Stop sending and start the closing handshake with C{code} and C{reason}.  The hub
        forgets it at once; it stays connected until its connection is gone.

        @param drainTimeout: see L{IClientConnection.close}.
        """
        connection = self.connection
        self._stop()
        if connection is None:
            return
        try:
            connection.close(code, reason, drainTimeout)
        except Exception:
            log.failure("Cannot close WebSocket client {peer}", peer=self.peer)
            connection.abort()

    def lost(self):
        """
        Its connection is gone (closed, lost or aborted): drop everything held.
        """
        self.closing = True
        self._logDrops()
        self._pending = self._backlog = None
        self.connection = None

    def _stop(self):
        self.closing = True
        self._pending = self._backlog = None
        self._hub.sessionClosing(self)

    def _broken(self):
        log.failure("Cannot write to WebSocket client {peer}; dropping it", peer=self.peer)
        connection = self.connection
        self._stop()
        try:
            connection.abort()
        except Exception:
            pass

    def _overflow(self):
        """
        It is paused with C{maxQueueSize} messages held: it is not reading.  Close it: drop its
        backlog, so that the C{error} and the 4029 close frame come right after what its
        transport already holds, and give it C{hub.queueFullDrain} seconds to read them (a
        client that resumes reading late learns why it was closed, rather than seeing only a
        dropped connection).
        """
        hub = self._hub
        hub.counters.closedQueueFull += 1
        log.warn(
            "message queue full: closing WebSocket client {peer}, which stopped reading "
            "({limit} messages waiting)",
            peer=self.peer,
            limit=self._limit,
        )
        self._backlog = None
        try:
            self.connection.send(
                hub.prepare(
                    messages.error(
                        messages.QUEUE_FULL,
                        "message queue full: more than {} messages waiting; reconnect and read "
                        "faster or narrow your filters".format(self._limit),
                    )
                )
            )
            hub.counters.errorsSent += 1
        except Exception:
            pass
        connection = self.connection
        self.close(messages.CLOSE_QUEUE_FULL, messages.REASON_QUEUE_FULL, hub.queueFullDrain)
        try:
            # read again, so that its answer to the close frame ends the connection at once;
            # whatever else it sends is ignored now that it is closing.
            connection.resumeReading()
        except Exception:
            pass

    def _dropped(self, count):
        """
        Its pending queue was full: its C{count} oldest events were dropped.
        """
        hub = self._hub
        hub.counters.dropped += count
        self._unlogged += count
        now = hub.clock.seconds()
        if self._loggedAt is None or now - self._loggedAt >= hub.logInterval:
            self._logDrops()

    def _logDrops(self):
        if not self._unlogged:
            return
        log.warn(
            "message queue full: dropped {count} oldest event(s) queued for unregistered "
            "WebSocket client {peer} (max_queue_size {limit})",
            count=self._unlogged,
            peer=self.peer,
            limit=self._limit,
        )
        self._unlogged = 0
        self._loggedAt = self._hub.clock.seconds()
