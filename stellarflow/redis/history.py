"""
The stream read back with XRANGE: an L{IEventHistory} for an edge's WebSocket clients that
resume with a position older than the edge's memory (most often: they were on another edge).

The stream is complete only along an unbroken chain of predecessors.  The edge's source checks
every entry it reads and marks a break here (L{chainBroken}); entries written before the edge
started reading are checked once, backwards from where it started (at most C{verifyLimit}),
before the first resume is served.  L{oldest} is then the first entry of the unbroken chain
that ends at the newest entry: a resume from before it is told the exact gap.  A page whose
first entry does not follow the requested position (trimmed meanwhile) fails the read rather
than skipping events.
"""

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger
from zope.interface import implementer

from stellarflow.interfaces import IEventHistory
from stellarflow.positions import before
from stellarflow.redis import entries as E
from stellarflow.redis.connection import RedisConnection, RedisUnavailable

#: Entries per XREVRANGE page while verifying the chain.
_VERIFY_PAGE = 1000

_COUNT_SCRIPT = "return #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])"


class HistoryUnavailable(Exception):
    """
    The history cannot be read right now (Redis unreachable, the stream changed under a read).
    """


@implementer(IEventHistory)
class RedisHistory:
    """
    Reads stream C{stream} in id order over a connection of its own (opened on first use).
    """

    log = Logger()

    def __init__(self, reactor, address, stream, commandTimeout=5.0, connectTimeout=5.0, verifyLimit=100000, retryPolicy=None):
        self.stream = stream
        self.verifyLimit = verifyLimit
        self.connection = RedisConnection(
            reactor,
            address,
            name="history reads of " + stream,
            commandTimeout=commandTimeout,
            connectTimeout=connectTimeout,
            retryPolicy=retryPolicy,
        )
        self.chainStart = None
        self._liveFrom = None
        self._liveKnown = False
        self._verified = False

    # -- what the source tells ---------------------------------------------------------------

    def liveFrom(self, position):
        """
        The source checks every entry after C{position} (C{None}: from the stream's start).
        """
        self._liveFrom = position
        self._liveKnown = True

    def chainBroken(self, entryId):
        """
        The entry C{entryId} does not follow the one before it: nothing before it is replayed.
        """
        if E.later(entryId, self.chainStart):
            self.chainStart = entryId

    # -- IEventHistory -----------------------------------------------------------------------

    def oldest(self):
        return self._run(self._oldest)

    def count(self, after, upto, limit):
        return self._run(self._count, after, upto, limit)

    def read(self, after, upto, limit):
        return self._run(self._read, after, upto, limit)

    @inlineCallbacks
    def _oldest(self):
        if not self._verified:
            yield self._verify()
        first = yield self.connection.execute("XRANGE", self.stream, "-", "+", "COUNT", "1")
        if not first:
            return None
        oldest = E.positionOf(first[0][0])
        return self.chainStart if E.later(self.chainStart, oldest) else oldest

    @inlineCallbacks
    def _verify(self):
        """
        Check the predecessors of the entries up to where the source started checking,
        newest first, until a break, the stream's start or C{verifyLimit} entries.
        """
        if not self._liveKnown:
            raise HistoryUnavailable("the stream reader has not started yet")
        end = E.streamId(self._liveFrom) if self._liveFrom is not None else None
        if end is None:
            self._verified = True  # the source checks the stream from its start
            return
        checked, newer = 0, None  # newer: the entry after the current one, already seen
        while checked < self.verifyLimit:
            page = yield self.connection.execute(
                "XREVRANGE", self.stream, end, "-", "COUNT", min(_VERIFY_PAGE, self.verifyLimit - checked)
            )
            entries = E.parseEntries(page)
            if not entries:
                break
            for entry in entries:
                if checked >= self.verifyLimit:
                    break
                if newer is not None and newer.previous != entry.id:
                    self.chainBroken(newer.id)
                    self._verified = True
                    return
                newer = entry
                checked += 1
            end = "(" + E.streamId(entries[-1].id)
            if len(entries) < _VERIFY_PAGE or checked >= self.verifyLimit:
                break
        if newer is not None and checked >= self.verifyLimit:
            self.chainBroken(newer.id)  # not checked further back: not replayed
        self._verified = True

    @inlineCallbacks
    def _count(self, after, upto, limit):
        n = yield self.connection.execute(
            "EVAL", _COUNT_SCRIPT, 1, self.stream, "(" + E.streamId(after), E.streamId(upto), limit
        )
        return int(n)

    @inlineCallbacks
    def _read(self, after, upto, limit):
        raw = yield self.connection.execute(
            "XRANGE", self.stream, "(" + E.streamId(after), E.streamId(upto), "COUNT", limit
        )
        entries = E.parseEntries(raw)
        events = []
        expected = after
        for entry in entries:
            follows = before(entry.id) == expected or (
                entry.previous is not None and not E.later(entry.previous, expected)
            )
            if not follows:
                if not events:
                    raise HistoryUnavailable(
                        "stream {} no longer holds the entries after {} (trimmed or lost); the client "
                        "resumes and is told the gap".format(self.stream, after)
                    )
                break  # served up to the break; the next read fails
            if entry.json is not None:
                events.append((entry.id, entry.json))
            expected = entry.id
        return events, True

    # -- connection ----------------------------------------------------------------------------

    def close(self):
        self.connection.stop()

    def _run(self, work, *args):
        d = self.connection.whenReady(failAfterFailures=1)
        d.addCallback(lambda _: work(*args))

        def failed(f):
            if f.check(HistoryUnavailable):
                return f
            if f.check(RedisUnavailable):
                raise HistoryUnavailable(str(f.value))
            raise HistoryUnavailable("stream {}: {}".format(self.stream, f.getErrorMessage()))

        return d.addErrback(failed)
