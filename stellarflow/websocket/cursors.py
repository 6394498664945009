"""
The cursor heartbeat: C{cursor} messages to live clients that received no event for a while.

One timer for all clients, every C{interval} seconds: each live (registered, not replaying)
session that received no event since the previous tick, has not been told the current
position yet and is not holding messages gets C{{"type": "cursor", "cursor": <position>}},
framed once per tick for all of them.  A client whose filters match rarely stores it as its
resume token, so that after a reconnect its replay starts from where the server was.
"""

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from stellarflow.websocket import messages

log = Logger()


class CursorTicker:
    """
    Sends C{cursor} messages to a broadcaster's live sessions.

    @param clock: an L{IReactorTime}.
    @param interval: seconds between ticks (0: no cursor messages).
    @param broadcaster: the L{Broadcaster} whose C{index} holds the live sessions and whose
        C{position} is the position to tell.
    @param prepare: frames a message (see L{Broadcaster}).
    """

    def __init__(self, clock, interval, broadcaster, prepare):
        self.clock = clock
        self.interval = interval
        self.broadcaster = broadcaster
        self.prepare = prepare
        self._loop = None
        self._stopped = False

    @property
    def running(self):
        """
        Whether the timer runs.
        """
        return self._loop is not None

    def start(self):
        """
        Start the timer (once a client is live); a no-op when it runs, is disabled or was
        stopped.
        """
        if self._loop is not None or not self.interval or self._stopped:
            return
        loop = self._loop = LoopingCall(self.tick)
        loop.clock = self.clock
        loop.start(self.interval, now=False)

    def stop(self):
        """
        Stop the timer for good (shutdown).
        """
        self._stopped = True
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    def tick(self):
        """
        Tell each live session that is due how far the server has got (one frame for all).
        """
        position = self.broadcaster.position
        if position is None:
            return
        frame = None
        try:
            for session in self.broadcaster.index:
                if not session.cursorTick(position):
                    continue
                if frame is None:
                    frame = self.prepare(messages.cursor(position))
                session.sendCursor(position, frame)
        except Exception:
            log.failure("Cannot send cursor messages to WebSocket clients")
