"""
Tests for L{stellarflow.redis.source.RedisStreamSource} and L{stellarflow.redis.history.RedisHistory}
against the real Redis (a stream of each test's own), written by the real L{SaveToRedis}.
"""

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import IEventHistory, IEventHistorySource, ISource, IStatsProvider
from stellarflow.positions import before
from stellarflow.redis.consumer import SaveToRedis
from stellarflow.redis.history import HistoryUnavailable
from stellarflow.redis.source import RedisStreamSource, StreamGap
from stellarflow.redis.testing import PrivateRedis, redisCLI, requireRedis, sleep, testRedisURL, uniqueStream, waitUntil
from tests.test_redis_consumer import FAST, batch, chained


class Collector:
    """
    The pipeline's side of a source: records batches; C{hold()} makes deliveries wait.
    """

    def __init__(self):
        self.batches = []
        self.waiting = None
        self.holding = False

    def __call__(self, b):
        self.batches.append(b)
        if self.holding:
            self.waiting = Deferred()
            return self.waiting
        return succeed(None)

    def release(self):
        self.holding = False
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            waiting.callback(None)

    @property
    def ids(self):
        return [m.id for b in self.batches for m in b.items]


class SourceTestMixin:
    timeout = 60

    def url(self):
        return testRedisURL()

    def writer(self, **kwargs):
        c = SaveToRedis(reactor, redis_url=self.url(), stream=self.stream, pipeline="ingest", retryPolicy=FAST, **kwargs)
        self.addCleanup(c.stop)
        c.start()
        return c

    def source(self, **kwargs):
        kwargs.setdefault("block", 0.1)
        kwargs.setdefault("command_timeout", 1.0)
        s = RedisStreamSource(reactor, redis_url=self.url(), stream=self.stream, pipeline="edge", retryPolicy=FAST, **kwargs)
        self.addCleanup(s.stop)
        return s

    @inlineCallbacks
    def write(self, writer, batches):
        for b in batches:
            yield writer.consume(b)


class RedisStreamSourceTests(SourceTestMixin, TestCase):
    def setUp(self):
        requireRedis()
        self.stream = uniqueStream(self)

    def test_interfaces(self):
        s = self.source()
        verifyObject(ISource, s)
        verifyObject(IEventHistorySource, s)
        verifyObject(IStatsProvider, s)
        verifyObject(IEventHistory, s.eventHistory())

    @inlineCallbacks
    def test_followsFromOldestWithExactBytes(self):
        """
        Every message arrives in order, its JSON the bytes the ingest sealed, and the batches
        chain (each C{previous} is the cursor before).
        """
        w = self.writer()
        batches = chained(100, 104)
        yield self.write(w, batches)
        got = Collector()
        s = self.source(start="oldest", count=4)
        s.start(got, None)
        expected = [m for b in batches for m in b.messages]
        yield waitUntil(reactor, lambda: len(got.ids) == 15, what="15 events")
        self.assertEqual(got.ids, [m.id for m in expected])
        self.assertEqual([m.json for b in got.batches for m in b.items], [m.json for m in expected])
        self.assertEqual(got.batches[0].items[0]["data"], {"v": "007"})
        for a, b in zip(got.batches, got.batches[1:]):
            self.assertEqual(b.previous, a.cursor)
        # the last read took everything: the cursor is the stream's recorded position
        yield waitUntil(reactor, lambda: got.batches[-1].cursor == batches[-1].cursor, what="final cursor")
        self.assertEqual(s.stats()["gaps_total"], 0)

    @inlineCallbacks
    def test_latestStartsAtTheTopAndFollows(self):
        w = self.writer()
        yield self.write(w, chained(100, 101))
        got = Collector()
        s = self.source(start="latest")
        s.start(got, None)
        yield waitUntil(reactor, lambda: s.position is not None, what="start")
        yield sleep(reactor, 0.2)
        self.assertEqual(got.ids, [])
        new = batch(102)
        yield w.consume(new)
        yield waitUntil(reactor, lambda: len(got.ids) == 3, what="new events")
        self.assertEqual(got.ids, [m.id for m in new.messages])
        self.assertEqual(s.stats()["gaps_total"], 0)

    @inlineCallbacks
    def test_resumesAfterCheckpoint(self):
        w = self.writer()
        batches = chained(100, 103)
        yield self.write(w, batches)
        got = Collector()
        s = self.source()
        s.start(got, Checkpoint(batches[1].messages[-1].id))
        yield waitUntil(reactor, lambda: len(got.ids) == 6, what="the rest")
        self.assertEqual(got.ids, [m.id for b in batches[2:] for m in b.messages])
        self.assertEqual(s.stats()["gaps_total"], 0)

    @inlineCallbacks
    def test_trimmingIsAnExactGap(self):
        """
        Entries trimmed past a reader are reported exactly: from its position to the
        predecessor of the first entry kept.  Mid-run with C{on_gap: stop}, the batch before
        the gap is delivered and the source ends with L{StreamGap}.
        """
        w = self.writer(max_length=0)
        batches = chained(100, 109)
        yield self.write(w, batches[:2])
        got = Collector()
        s = self.source(start="oldest")
        ended = s.start(got, None)
        yield waitUntil(reactor, lambda: len(got.ids) == 6, what="first events")
        got.holding = True
        yield self.write(w, [batches[2]])
        yield waitUntil(reactor, lambda: got.waiting is not None, what="a held delivery")
        yield self.write(w, batches[3:])
        redisCLI("XTRIM", self.stream, "MAXLEN", "=", "9")  # keeps ledgers 107-109
        got.release()
        failure = yield self.assertFailure(ended, StreamGap)
        # the reader is at ledger 102's last entry (or its cursor, when the read saw it recorded)
        lastLost = batches[6].messages[-1].id
        self.assertIn(s.lastGap, [(batches[2].messages[-1].id, lastLost), (batches[2].cursor, lastLost)])
        self.assertIn(lastLost, str(failure))
        self.assertEqual(s.stats()["gaps_total"], 1)
        self.assertEqual(s.eventHistory().chainStart, batches[7].messages[0].id)

    @inlineCallbacks
    def test_gapAtFirstReadContinues(self):
        """
        A gap between the checkpoint and the stream (an edge restarting after trimming) is
        reported, and the run goes on: this run's clients have seen nothing before it.
        """
        w = self.writer(max_length=0)
        batches = chained(100, 105)
        yield self.write(w, batches)
        redisCLI("XTRIM", self.stream, "MAXLEN", "=", "6")
        got = Collector()
        s = self.source()
        s.start(got, Checkpoint(batches[0].cursor))
        yield waitUntil(reactor, lambda: len(got.ids) == 6, what="what is left")
        self.assertEqual(s.lastGap, (batches[0].cursor, batches[3].messages[-1].id))
        self.assertEqual(got.ids, [m.id for b in batches[4:] for m in b.messages])

    @inlineCallbacks
    def test_continueOnGap(self):
        w = self.writer(max_length=0)
        batches = chained(100, 105)
        yield self.write(w, batches[:1])
        got = Collector()
        s = self.source(start="oldest", on_gap="continue")
        ended = s.start(got, None)
        yield waitUntil(reactor, lambda: len(got.ids) == 3, what="first")
        got.holding = True
        yield self.write(w, batches[1:2])
        yield waitUntil(reactor, lambda: got.waiting is not None, what="a held delivery")
        yield self.write(w, batches[2:])
        redisCLI("XTRIM", self.stream, "MAXLEN", "=", "3")
        got.release()
        yield waitUntil(reactor, lambda: len(got.ids) == 9, what="after the gap")
        self.assertNoResult(ended)
        self.assertEqual(s.stats()["gaps_total"], 1)

    @inlineCallbacks
    def test_unknownPredecessorIsAGap(self):
        """
        An entry whose writer did not know its predecessor (the ingest's source skipped) is
        treated as a gap up to just before it.
        """
        w = self.writer()
        yield w.consume(batch(100))
        got = Collector()
        s = self.source(start="oldest", on_gap="continue")
        s.start(got, None)
        yield waitUntil(reactor, lambda: len(got.ids) == 3, what="first")
        late = batch(110)
        yield w.consume(late)
        yield waitUntil(reactor, lambda: len(got.ids) == 6, what="second")
        self.assertEqual(s.lastGap, (batch(100).cursor, before(late.messages[0].id)))

    @inlineCallbacks
    def test_stopInterruptsABlockedRead(self):
        s = self.source(block=30)
        got = Collector()
        ended = s.start(got, None)
        yield waitUntil(reactor, lambda: s.position is not None or s.stats()["polling"], what="reading")
        yield sleep(reactor, 0.1)
        started = reactor.seconds()
        yield s.stop()
        yield ended
        self.assertLess(reactor.seconds() - started, 2)


class RedisHistoryTests(SourceTestMixin, TestCase):
    def setUp(self):
        requireRedis()
        self.stream = uniqueStream(self)

    @inlineCallbacks
    def startEdge(self, checkpoint=None, **kwargs):
        got = Collector()
        s = self.source(**kwargs)
        s.start(got, checkpoint)
        yield waitUntil(reactor, lambda: s.eventHistory()._liveKnown, what="start")
        return s, got

    @inlineCallbacks
    def test_readsWhatTheStreamHolds(self):
        w = self.writer()
        batches = chained(100, 104)
        yield self.write(w, batches)
        s, got = yield self.startEdge()
        h = s.eventHistory()
        ids = [m.id for b in batches for m in b.messages]
        self.assertEqual((yield h.oldest()), ids[0])
        self.assertEqual((yield h.count(ids[2], ids[10], 100)), 8)
        self.assertEqual((yield h.count(ids[2], ids[10], 5)), 5)
        events, complete = yield h.read(before(ids[0]), ids[-1], 4)
        self.assertTrue(complete)
        self.assertEqual(events, [(m.id, m.json) for b in batches for m in b.messages][:4])
        events, _ = yield h.read(ids[3], ids[5], 100)
        self.assertEqual([e[0] for e in events], ids[4:6])

    @inlineCallbacks
    def test_oldestStopsAtABreakBeforeTheEdgeStarted(self):
        """
        A break in the chain before this edge started (found by the backward check) is where
        the history starts.
        """
        w = self.writer()
        yield self.write(w, chained(100, 101))
        yield w.consume(batch(105))  # the source skipped 102-104: no predecessor
        yield w.consume(batch(106, previous=batch(105).cursor))
        s, got = yield self.startEdge()
        self.assertEqual((yield s.eventHistory().oldest()), batch(105).messages[0].id)

    @inlineCallbacks
    def test_verifyLimit(self):
        w = self.writer()
        yield self.write(w, chained(100, 104))
        s, got = yield self.startEdge(history_verify_limit=4)
        # the newest 4 entries are checked: the oldest of them is where replays may start
        self.assertEqual((yield s.eventHistory().oldest()), batch(103).messages[2].id)

    @inlineCallbacks
    def test_readAfterTrimmingFails(self):
        """
        Entries trimmed between a resume's plan and its read are not skipped silently: the
        read fails.
        """
        w = self.writer(max_length=0)
        batches = chained(100, 104)
        yield self.write(w, batches)
        s, got = yield self.startEdge()
        redisCLI("XTRIM", self.stream, "MAXLEN", "=", "6")
        yield self.assertFailure(s.eventHistory().read(batches[0].messages[0].id, batches[4].cursor, 100), HistoryUnavailable)
        events, _ = yield s.eventHistory().read(before(batches[3].messages[0].id), batches[4].cursor, 100)
        self.assertEqual(len(events), 6)


class SourceOutageTests(SourceTestMixin, TestCase):
    def setUp(self):
        self.redis = PrivateRedis(self)
        self.stream = "stellarflow:test:edge"

    def url(self):
        return self.redis.url

    @inlineCallbacks
    def test_waitsForRedisThenFollows(self):
        """
        Unreachable at start: the source is not polling, nothing is delivered; then it follows.
        """
        got = Collector()
        s = self.source(start="oldest")
        s.start(got, None)
        yield sleep(reactor, 0.3)
        self.assertFalse(s.stats()["polling"])
        self.assertEqual(got.batches, [])
        self.redis.start()
        w = self.writer()
        yield self.write(w, chained(100, 101))
        yield waitUntil(reactor, lambda: len(got.ids) == 6, what="events")
        self.assertTrue(s.stats()["polling"])

    @inlineCallbacks
    def test_redisRestartWithoutPersistence(self):
        """
        Redis loses the stream while an edge is behind: the ingest refills what it holds, the
        edge reports the exact gap of what it could not get.
        """
        self.redis.start()
        w = self.writer(refill_size=3)
        batches = chained(100, 104)
        yield self.write(w, batches[:1])
        got = Collector()
        s = self.source(start="oldest", on_gap="continue")
        s.start(got, None)
        yield waitUntil(reactor, lambda: len(got.ids) == 3, what="first")
        got.holding = True
        yield self.write(w, batches[1:2])
        yield waitUntil(reactor, lambda: got.waiting is not None, what="held")
        yield self.write(w, batches[2:4])
        self.redis.stop()
        self.redis.start()
        yield self.write(w, batches[4:])
        got.release()
        # refilled: ledger 103's three entries; ledger 102 and 101 are gone from the stream
        yield waitUntil(reactor, lambda: len(got.ids) == 12, what="refilled and new")
        lost = batches[2].messages[-1].id
        self.assertIn(s.lastGap, [(batches[1].messages[-1].id, lost), (batches[1].cursor, lost)])
        self.assertEqual(
            got.ids, [m.id for b in batches[:2] for m in b.messages] + [m.id for b in batches[3:] for m in b.messages]
        )
