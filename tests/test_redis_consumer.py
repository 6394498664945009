"""
Tests for L{stellarflow.redis.consumer.SaveToRedis} against the real Redis (127.0.0.1:6379, a
stream key of each test's own) and, for outages, a private C{redis-server} the test stops and
starts again.
"""

import json
import socket

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from stellarflow.batch import Batch
from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import ICheckpointStore, IConsumer, IStatsProvider
from stellarflow.message import sealAll
from stellarflow.positions import position, toid
from stellarflow.redis.connection import RedisConnection, RedisTimeout, RedisUnavailable, retryDelay
from stellarflow.redis.consumer import SaveToRedis
from stellarflow.redis.testing import (
    PrivateRedis,
    freePort,
    redisCLI,
    requireRedis,
    sleep,
    testRedisURL,
    uniqueStream,
    waitUntil,
)
from stellarflow.redis.url import parseRedisURL

FAST = retryDelay(initial=0.05, maximum=0.2)


def eventId(ledger, n=0):
    return position(toid(ledger, 1, n), 0)


def batch(ledger, count=3, previous="prev", cursor="auto"):
    """
    C{count} messages in C{ledger}; C{previous} defaults to the end of the ledger before.
    """
    ids = [eventId(ledger, i) for i in range(count)]
    messages = sealAll({"type": "contract_event", "id": i, "ledger": ledger, "data": {"v": "007"}} for i in ids)
    if previous == "prev":
        previous = position(toid(ledger), 0) if ledger else None
    if cursor == "auto":
        cursor = position(toid(ledger + 1), 0)
    return Batch(items=[], messages=messages, cursor=cursor, previous=previous)


def chained(first, last, count=3):
    return [batch(ledger, count) for ledger in range(first, last + 1)]


def readStream(key, url=None):
    """
    The stream's entries as C{[(id, message, predecessor)]} through redis-cli (raw output).
    """
    import subprocess

    from stellarflow.redis.testing import _hostPort

    host, port = _hostPort(url or testRedisURL())
    out = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port), "--json", "XRANGE", key, "-", "+"],
        capture_output=True, text=True, timeout=10,
    ).stdout
    entries = []
    for entryId, fields in json.loads(out or "[]"):
        values = dict(zip(fields[::2], fields[1::2]))
        entries.append((entryId, values["m"], values["p"]))
    return entries


def streamId(value):
    a, b = value.split("-")
    return "{}-{}".format(int(a), int(b))


class SaveToRedisTests(TestCase):
    timeout = 60

    def setUp(self):
        requireRedis()
        self.stream = uniqueStream(self)

    def consumer(self, url=None, **kwargs):
        kwargs.setdefault("command_timeout", 2.0)
        kwargs.setdefault("connect_timeout", 2.0)
        c = SaveToRedis(reactor, redis_url=url or testRedisURL(), stream=self.stream, pipeline="test",
                        network="Test SDF Network ; September 2015", retryPolicy=FAST, **kwargs)
        c.backoff.initial, c.backoff.maximum = 0.05, 0.2
        self.addCleanup(c.stop)
        return c

    def test_interfaces(self):
        c = self.consumer()
        verifyObject(IConsumer, c)
        verifyObject(ICheckpointStore, c)
        verifyObject(IStatsProvider, c)

    @inlineCallbacks
    def test_appendsEveryMessageOnceWithItsPredecessor(self):
        """
        Entry ids are the event ids, the message bytes are the sealed JSON exactly, and each
        entry names the one before it; the position hash holds the last cursor.
        """
        c = self.consumer()
        yield c.start()
        b1, b2 = chained(100, 101)
        b1.previous = None  # the very first batch: no predecessor known
        yield c.consume(b1)
        yield c.consume(b2)
        entries = readStream(self.stream)
        ids = [m.id for m in b1.messages + b2.messages]
        self.assertEqual([e[0] for e in entries], [streamId(i) for i in ids])
        self.assertEqual([e[1].encode() for e in entries], [m.json for m in b1.messages + b2.messages])
        self.assertIn('"v":"007"', entries[0][1])
        self.assertEqual([e[2] for e in entries], [""] + [streamId(i) for i in ids[:-1]])
        self.assertEqual(redisCLI("HGET", self.stream + ":position", "cursor"), b2.cursor)
        self.assertEqual(redisCLI("HGET", self.stream + ":position", "last"), ids[-1])
        self.assertEqual(c.stats()["appended_total"], 6)
        loaded = yield c.load("test")
        self.assertEqual(loaded, Checkpoint(b2.cursor, network="Test SDF Network ; September 2015"))

    @inlineCallbacks
    def test_redeliveryAddsNothing(self):
        """
        A batch delivered again (after a restart, a retry) is acknowledged and adds nothing;
        neither does a new consumer (the ingest restarted) given the same batches.
        """
        c = self.consumer()
        yield c.start()
        batches = chained(200, 203)
        for b in batches[:3]:
            yield c.consume(b)
        yield c.consume(batches[1])
        self.assertEqual(c.stats()["duplicates_total"], 3)
        yield c.stop()
        again = self.consumer()
        yield again.start()
        loaded = yield again.load("test")
        self.assertEqual(loaded.cursor, batches[2].cursor)
        for b in batches[2:]:
            yield again.consume(b)
        entries = readStream(self.stream)
        self.assertEqual(len(entries), 12)
        self.assertEqual(len({e[0] for e in entries}), 12)
        # the chain goes on across the restart
        self.assertEqual(entries[9][2], entries[8][0])
        self.assertEqual(again.stats()["duplicates_total"], 3)

    @inlineCallbacks
    def test_brokenSourceChainHasNoPredecessor(self):
        """
        A batch that does not start where the stream is complete (its source skipped a gap)
        gets an empty predecessor, so readers see the gap.
        """
        c = self.consumer()
        yield c.start()
        yield c.consume(batch(300))
        yield c.consume(batch(305))  # previous: end of 304, but the stream is complete to 301
        entries = readStream(self.stream)
        self.assertEqual([e[2] for e in entries][3], "")
        self.assertEqual(entries[4][2], entries[3][0])

    @inlineCallbacks
    def test_cursorOnlyBatchMovesThePosition(self):
        c = self.consumer()
        yield c.start()
        yield c.consume(batch(400))
        empty = batch(401, count=0)
        yield c.consume(empty)
        self.assertEqual(redisCLI("HGET", self.stream + ":position", "cursor"), empty.cursor)
        yield c.consume(batch(402))
        entries = readStream(self.stream)
        # the first entry after the empty ledger names the last entry as its predecessor
        self.assertEqual(entries[3][2], entries[2][0])

    @inlineCallbacks
    def test_trimByLength(self):
        c = self.consumer(max_length=10)
        yield c.start()
        for b in chained(500, 560, count=5):
            yield c.consume(b)
        length = int(redisCLI("XLEN", self.stream))
        self.assertLess(length, 305)
        self.assertGreaterEqual(length, 10)

    @inlineCallbacks
    def test_trimByLedgers(self):
        """
        C{max_ledgers: 2} trims entries older than the newest two ledgers (MINID, approximate:
        Redis removes whole nodes, so the test writes enough to fill some).
        """
        c = self.consumer(max_ledgers=2, max_length=0)
        yield c.start()
        for b in chained(600, 700, count=50):
            yield c.consume(b)
        first = readStream(self.stream)[0][0]
        self.assertGreater(int(first.split("-")[0]) >> 32, 650)

    @inlineCallbacks
    def test_messagesWithoutPositionIdsAreSkipped(self):
        c = self.consumer()
        yield c.start()
        b = batch(800, count=2)
        b.messages.insert(1, sealAll([{"type": "x", "id": "not-an-id"}])[0])
        yield c.consume(b)
        self.assertEqual(len(readStream(self.stream)), 2)
        self.assertEqual(c.stats()["skipped_total"], 1)


class OutageTests(TestCase):
    """
    Redis unreachable at start, and killed mid-stream and started again without persistence.
    """

    timeout = 60

    def setUp(self):
        self.redis = PrivateRedis(self)
        self.stream = "stellarflow:test:outage"

    def consumer(self, **kwargs):
        kwargs.setdefault("command_timeout", 1.0)
        kwargs.setdefault("connect_timeout", 1.0)
        c = SaveToRedis(reactor, redis_url=self.redis.url, stream=self.stream, pipeline="test", retryPolicy=FAST, **kwargs)
        c.backoff.initial, c.backoff.maximum = 0.05, 0.2
        self.addCleanup(c.stop)
        return c

    @inlineCallbacks
    def test_unreachableAtStart(self):
        """
        start() succeeds; load() and the acknowledgements wait until Redis answers.
        """
        c = self.consumer()
        yield c.start()
        loaded = c.load("test")
        first = c.consume(batch(100))
        yield sleep(reactor, 0.3)
        self.assertNoResult(loaded)
        self.assertNoResult(first)
        self.assertFalse(c.stats()["connected"])
        self.redis.start()
        position = yield loaded
        yield first
        # load() answered either before or after the held batch was written
        self.assertIn(position and position.cursor, (None, batch(100).cursor))
        self.assertEqual(len(readStream(self.stream, self.redis.url)), 3)

    @inlineCallbacks
    def test_killedMidStreamRefillsAndLosesNothing(self):
        """
        Redis dies (losing everything) while batches are held: acknowledgements wait; once it
        is back the consumer refills what it holds in memory and writes the held batches: the
        stream has every entry once, chained as before.
        """
        self.redis.start()
        c = self.consumer()
        yield c.start()
        batches = chained(100, 105)
        for b in batches[:3]:
            yield c.consume(b)
        self.redis.stop()
        held = [c.consume(b) for b in batches[3:]]
        yield sleep(reactor, 0.3)
        for d in held:
            self.assertNoResult(d)
        self.redis.start()
        for d in held:
            yield d
        entries = readStream(self.stream, self.redis.url)
        ids = [m.id for b in batches for m in b.messages]
        self.assertEqual([e[0] for e in entries], [streamId(i) for i in ids])
        self.assertEqual([e[2] for e in entries], [""] + [streamId(i) for i in ids[:-1]])
        stats = c.stats()
        self.assertEqual(stats["data_losses_total"], 1)
        self.assertEqual(stats["refilled_total"], 9)

    @inlineCallbacks
    def test_refillLimitedToWhatIsHeld(self):
        """
        With C{refill_size} smaller than what Redis lost, the refilled entries keep their
        original predecessors, so a reader sees exactly which ones are gone.
        """
        self.redis.start()
        c = self.consumer(refill_size=4)
        yield c.start()
        batches = chained(100, 103)
        for b in batches:
            yield c.consume(b)
        self.redis.stop()
        self.redis.start()
        yield waitUntil(reactor, lambda: c.stats()["data_losses_total"] == 1 and c._known, what="refill")
        entries = readStream(self.stream, self.redis.url)
        ids = [m.id for b in batches for m in b.messages]
        self.assertEqual([e[0] for e in entries], [streamId(i) for i in ids[-4:]])
        self.assertEqual(entries[0][2], streamId(ids[-5]))  # names the lost one before it


class SilentServer(Protocol):
    """Accepts and never answers."""


class ConnectionTests(TestCase):
    """
    L{RedisConnection}: every command has a timeout; a command while disconnected fails at once.
    """

    timeout = 30

    @inlineCallbacks
    def test_commandTimeoutCostsTheConnection(self):
        port = reactor.listenTCP(0, Factory.forProtocol(SilentServer), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = "redis://127.0.0.1:{}/0".format(port.getHost().port)
        c = RedisConnection(reactor, parseRedisURL(url), commandTimeout=0.2, retryPolicy=FAST)
        self.addCleanup(c.stop)
        yield c.whenReady()
        started = reactor.seconds()
        with self.assertRaises(RedisTimeout):
            yield c.execute("PING")
        self.assertLess(reactor.seconds() - started, 1.5)
        yield waitUntil(reactor, lambda: c.retries == 0 and not c.ready or c.ready, what="reconnect")

    @inlineCallbacks
    def test_commandWhileDisconnectedFailsAtOnce(self):
        url = "redis://127.0.0.1:{}/0".format(freePort())
        c = RedisConnection(reactor, parseRedisURL(url), retryPolicy=FAST)
        self.addCleanup(c.stop)
        c.start()
        with self.assertRaises(RedisUnavailable):
            yield c.execute("PING")
        with self.assertRaises(RedisUnavailable):
            yield c.whenReady(failAfterFailures=1)

    @inlineCallbacks
    def test_numbersStayText(self):
        requireRedis()
        c = RedisConnection(reactor, parseRedisURL(testRedisURL()))
        self.addCleanup(c.stop)
        yield c.whenReady()
        key = "stellarflow:test:numbers:" + socket.gethostname()
        self.addCleanup(redisCLI, "DEL", key)
        yield c.execute("SET", key, "007")
        self.assertEqual((yield c.execute("GET", key)), b"007")


class SentinelTests(TestCase):
    """
    redis+sentinel://: the master is found through a (private) Sentinel.
    """

    timeout = 60

    @inlineCallbacks
    def test_writesThroughSentinel(self):
        import os
        import subprocess

        master = PrivateRedis(self)
        master.start()
        port = freePort()
        conf = os.path.join(master.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port {}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {} 1\n".format(port, master.port))
        sentinel = subprocess.Popen(["redis-server", conf, "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (sentinel.kill(), sentinel.wait(10)))
        url = "redis://127.0.0.1:{}/0".format(port)
        yield waitUntil(reactor, lambda: "mymaster" in redisCLI("SENTINEL", "masters", url=url), what="sentinel")
        c = SaveToRedis(reactor, redis_url="redis+sentinel://127.0.0.1:{}/mymaster/0".format(port),
                        stream="s", pipeline="test", retryPolicy=FAST, command_timeout=2, connect_timeout=2)
        self.addCleanup(c.stop)
        yield c.start()
        yield c.consume(batch(100))
        self.assertEqual(len(readStream("s", master.url)), 3)


class ForeignNetworkTests(TestCase):
    timeout = 30

    def setUp(self):
        requireRedis()
        self.stream = uniqueStream(self)

    @inlineCallbacks
    def test_streamOfAnotherNetworkIsRefused(self):
        """
        After a testnet reset the new ids sort below the stream's top and would be taken for
        duplicates: a consumer of another network appends nothing and acknowledges nothing.
        """
        first = SaveToRedis(reactor, redis_url=testRedisURL(), stream=self.stream, network="Public Global Stellar Network ; September 2015")
        self.addCleanup(first.stop)
        yield first.start()
        yield first.consume(batch(500))
        other = SaveToRedis(reactor, redis_url=testRedisURL(), stream=self.stream, network="Test SDF Network ; September 2015")
        self.addCleanup(other.stop)
        yield other.start()
        d = other.consume(batch(5))
        yield waitUntil(reactor, lambda: other.stats()["foreign_stream"], what="refusal")
        self.assertNoResult(d)
        self.assertEqual(len(readStream(self.stream)), 3)
        d.addErrback(lambda _: None)
