"""
The recent events of a pipeline, kept so that a WebSocket client can resume after a reconnect.

Positions are RPC event ids and cursors, C{%019d-%010d} (the TOID and the event index): they
sort as strings in chain order, and a position is exclusive (C{resume_after} X means the
events with C{id > X}), like the RPC's cursor.

L{HistoryWindow} holds the newest events (bounded by count and, optionally, by ledgers) as the
broadcaster already has them: the id, the filter keys and the frame shared with live clients,
so an event held costs no extra copy of its payload.  It knows its I{floor}: every event after
that position that the pipeline produced is in the window (older ones were evicted, or came
before this process started).  L{IEventHistory} is the durable store (PostgreSQL) that answers
for positions older than the floor.
"""

from bisect import bisect_right

import attr

from stellarflow.positions import before, isPosition, ledgerOf


@attr.s(slots=True, eq=False, weakref_slot=False)
class Event:
    """
    One event as the WebSocket server holds it, shared by every client and by the history.

    @ivar id: its id (the resume token).
    @ivar keys: its L{EventKeys}, or C{None} when no filter needs them (replayed unfiltered).
    @ivar frame: its frame, framed once.
    """

    id = attr.ib()
    keys = attr.ib()
    frame = attr.ib()


class HistoryWindow:
    """
    The newest events, in id order, bounded by C{size} events and, when C{ledgers} is set, by
    the newest C{ledgers} ledgers.

    Events are numbered by sequence (0 for the first ever appended): a reader keeps a sequence
    number and finds it evicted when it is below L{first}.

    @ivar floor: every event after this position is in the window; C{None} until known.
    @ivar evicted: how many events were dropped from the window so far.
    """

    def __init__(self, size=10000, ledgers=0):
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self.ledgers = ledgers
        self.floor = None
        self.evicted = 0
        self.skipped = 0
        self._events = []
        self._start = 0  # index in _events of the oldest event still held
        self._offset = 0  # sequence number of _events[0]
        self._last = None  # id of the newest event

    def __len__(self):
        return len(self._events) - self._start

    @property
    def first(self):
        """The sequence number of the oldest event held."""
        return self._offset + self._start

    @property
    def end(self):
        """The sequence number the next event will get."""
        return self._offset + len(self._events)

    @property
    def newest(self):
        """The id of the newest event appended, or C{None}."""
        return self._last

    def at(self, seq):
        """The event with sequence number C{seq} (C{first <= seq < end})."""
        return self._events[seq - self._offset]

    def append(self, event):
        """
        Add the next event; one whose id is missing, malformed or not after the newest is
        not kept (it cannot be placed) and counted in C{skipped}.  Returns whether it was kept.
        """
        id = event.id
        if not isPosition(id) or (self._last is not None and id <= self._last):
            self.skipped += 1
            return False
        if self.floor is None:
            self.floor = before(id)
        self._events.append(event)
        self._last = id
        return True

    def advance(self, cursor):
        """
        The batch just appended ended at C{cursor} (a batch may be empty: the position still
        moves).  Then evict what exceeds the bounds.
        """
        if self.floor is None and isPosition(cursor):
            # Nothing before this cursor was seen, nothing after it will be missed.
            self.floor = cursor
        self._evict()

    def _evict(self):
        excess = len(self) - self.size
        if self.ledgers and len(self):
            oldest = ledgerOf(self._last) - self.ledgers + 1
            events, i, stop = self._events, self._start, len(self._events)
            while i < stop and ledgerOf(events[i].id) < oldest:
                i += 1
            excess = max(excess, i - self._start)
        if excess <= 0:
            return
        events = self._events
        stop = self._start + excess
        self.floor = events[stop - 1].id
        for i in range(self._start, stop):
            events[i] = None
        self._start = stop
        self.evicted += excess
        if self._start > 1024 and self._start * 2 > len(events):
            del events[: self._start]
            self._offset += self._start
            self._start = 0

    def seqAfter(self, position):
        """
        The sequence number of the first event held whose id is after C{position} (L{end}
        when there is none).
        """
        index = bisect_right(self._events, position, lo=self._start, key=_idOf)
        return self._offset + index

    def countAfter(self, position):
        """How many events held have an id after C{position}."""
        return self.end - self.seqAfter(position)


def _idOf(event):
    return event.id
