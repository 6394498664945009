"""
The fan-out: each event of the pipeline, to every client session that wants it.

Each event is sealed (its JSON encoded) once by the pipeline, reduced to its filter keys once
and framed once here, whoever receives it; L{FilterIndex} picks the registered sessions it
matches.  Each of those is written once per chunk of L{CHUNK_EVENTS} events (one write for the
chunk's frames), or holds the events while its transport is paused
(L{stellarflow.websocket.session}).  Every unregistered session queues the batch's events, in
one call per batch.  The framed event is also kept in the L{HistoryWindow}, for clients that
resume.

Which sessions are registered, unregistered or neither (replaying, closing) is the hub's
decision (L{stellarflow.websocket.hub}); this module only fans out, synchronously and
without sockets.
"""

from twisted.logger import Logger

from stellarflow.message import seal
from stellarflow.positions import isPosition
from stellarflow.websocket.history import Event
from stellarflow.websocket.index import FilterIndex
from stellarflow.websocket.matching import eventKeys

log = Logger()

#: Events fanned out before their frames are written: each client then gets one write per chunk
#: (not one per event), and no event waits for more than a chunk before going out.  A client
#: whose transport pauses gets at most one chunk past its pause threshold.
CHUNK_EVENTS = 10


class Broadcaster:
    """
    Hands each event to the sessions that want it.

    @param prepare: C{prepare(payload_bytes) -> frame}, framing a text message once for any
        number of clients; frames go to L{IClientConnection.send} and C{sendMany}.
    @param counters: the hub's L{Counters} (C{delivered} is counted here).
    @param history: the L{HistoryWindow} every event is kept in, or C{None}.

    @ivar index: the registered sessions that are live, by filters (a L{FilterIndex}).
    @ivar unregistered: the sessions whose events are queued until they register (a dict used
        as an ordered set).
    @ivar position: the newest position processed (last event id or batch cursor), or C{None}.
    """

    def __init__(self, prepare, counters, history=None):
        self.prepare = prepare
        self.counters = counters
        self.history = history
        self.index = FilterIndex()
        self.unregistered = {}
        self.position = None

    def addUnregistered(self, session):
        """
        Queue every event for C{session} until it registers.
        """
        self.unregistered[session] = None

    def addRegistered(self, session, filters):
        """
        Send C{session} the events that match C{filters} (replacing earlier filters).
        """
        self.unregistered.pop(session, None)
        self.index.add(session, filters)

    def remove(self, session):
        """
        Hand C{session} nothing more (it replays, closes or is gone).
        """
        self.unregistered.pop(session, None)
        self.index.remove(session)

    def broadcast(self, events, cursor=None):
        """
        Hand each event to every registered session whose filters match and to every
        unregistered session's queue, synchronously, and keep it in the history.  Without
        history, an event nobody takes is not framed.

        @param events: the batch's messages (sealed L{Message}s, or plain dicts).
        @param cursor: the batch's end position (a batch may be empty and still move it).
        """
        history = self.history
        index = self.index
        unregistered = self.unregistered
        if not len(index) and not unregistered and history is None:
            self._advance(_idOf(events[-1]) if events else None, cursor)
            return
        prepare = self.prepare
        delivered = 0
        chunk = {}  # session -> the frames of the current chunk for it, written as one write
        chunked = 0
        queued = [] if unregistered else None  # the events every unregistered session queues
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
            frame = event.frame
            for session in targets:
                if session.holding:
                    session.deliver(event)
                    continue
                held = chunk.get(session)
                if held is None:
                    chunk[session] = [frame]
                else:
                    held.append(frame)
                delivered += 1
            chunked += 1
            if chunked >= CHUNK_EVENTS:
                _writeChunk(chunk)
                chunked = 0
            if queued is not None:
                queued.append(event)
        _writeChunk(chunk)
        self.counters.delivered += delivered
        if queued:
            for session in unregistered:
                session.queue(queued)
        if history is not None:
            history.advance(cursor)
        self._advance(_idOf(events[-1]) if events else None, cursor)

    def _advance(self, lastId, cursor):
        """
        Move L{position} to the newest of the batch's last event id and its cursor.
        """
        position = self.position
        for candidate in (lastId, cursor):
            if isPosition(candidate) and (position is None or candidate > position):
                position = candidate
        self.position = position


def _writeChunk(chunk):
    """
    Write each session's frames of a chunk at once (one write per session per chunk, not one
    per event), then forget them.
    """
    for session, frames in chunk.items():
        session.sendFrames(frames)
    chunk.clear()


def _idOf(message):
    try:
        return message.get("id")
    except Exception:
        return None
