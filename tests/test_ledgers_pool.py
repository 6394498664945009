"""
Tests for the ledger worker pool (L{stellarflow.ledgers.pool}), the worker
(L{stellarflow.ledgers.worker}) and the GetLedgersRPC processor, with real worker processes:
messages identical to in-process extraction, worker death and retry, a ledger that kills
workers, undecodable ledgers, a clean stop.  Each test is bounded in time and stops its pool,
so trial finds the reactor clean.
"""

import base64
import os
import signal

from stellar_sdk import xdr
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from stellarflow.events.network import PUBLIC, TESTNET
from stellarflow.interfaces import IProcessor, IStatsProvider
from stellarflow.ledgers.framing import FrameReader, frame
from stellarflow.ledgers.items import LedgerItem
from stellarflow.ledgers.pool import LedgerDecodeError, PoolStopped, WorkerPool
from stellarflow.ledgers.processor import CONFIG_SCHEMA, GetLedgersRPC
from stellarflow.ledgers.worker import handle
from stellarflow.message import seal
from stellarflow.meta import ledgerMessages
from stellarflow.rpc.ledgerpages import parseLedgerRecord
from stellarflow.testing.fixtures import fixturePath
from stellarflow.testing.ledgerchain import LedgerChain

PUBNET = "galexie-pubnet-53312000.xdr.zstd"
EVERYTHING = ("payment", "trade", "contract_event")


def pubnetObject():
    with open(fixturePath("ledgers", PUBNET), "rb") as f:
        return f.read()


def chain(first=2000):
    return LedgerChain(first, lambda n: 1700000000 + 5 * n, TESTNET, seed=9, transactions=9)


def expected(raw, passphrase, emit=EVERYTHING):
    return [seal(m).json for m in ledgerMessages(xdr.LedgerCloseMeta.from_xdr_bytes(raw), passphrase, emit)]


class FramingTests(SynchronousTestCase):
    def test_roundTripInPieces(self):
        data = frame({"id": 1}, b"abc") + frame({"id": 2, "x": "\u00e9"}, b"") + frame({"id": 3}, b"\x00" * 70000)
        reader = FrameReader()
        got = []
        for i in range(0, len(data), 777):
            got.extend(reader.feed(data[i:i + 777]))
        self.assertEqual(got, [({"id": 1}, b"abc"), ({"id": 2, "x": "\u00e9"}, b""), ({"id": 3}, b"\x00" * 70000)])
        self.assertEqual(len(reader), 0)


class WorkerTests(SynchronousTestCase):
    """
    The worker's handling of one request, in this process.
    """

    def test_zstdObject(self):
        answer, body = handle({"id": 4, "format": "zstd", "ledger": 53312000}, pubnetObject(), PUBLIC, EVERYTHING)
        self.assertIsNone(answer["error"])
        (info,) = answer["ledgers"]
        self.assertEqual((info["sequence"], info["protocol"]), (53312000, 21))
        self.assertEqual(len(info["sizes"]), 46)

    def test_everyMetaVersion(self):
        """
        LedgerCloseMeta v0, v1 and v2 and transaction meta v1 to v4, as stellar-sdk decodes them.
        """
        from stellar_sdk import Asset, Payment

        from stellarflow.testing import ledgerbuild as lb

        alice, bob = lb.account(1), lb.account(2)
        for version, meta in [(0, lb.metaV1([[]])), (1, lb.metaV2([[]])), (1, lb.metaV3([[]])),
                              (2, lb.metaV3([[]])), (2, lb.metaV4([([], [])]))]:
            built = lb.BuiltTransaction(lb.envelope(alice, [Payment(bob, Asset.native(), "1")]),
                                        lb.transactionResult([lb.paymentSuccess()]), meta)
            lcm = lb.ledgerCloseMeta(lb.ledgerHeader(700, 1700000000), [built], TESTNET, version=version)
            answer, body = handle({"id": 1, "format": "xdr", "ledger": 700}, lcm.to_xdr_bytes(), TESTNET, EVERYTHING)
            self.assertIsNone(answer["error"], (version, meta.v))
            self.assertEqual(len(answer["ledgers"][0]["sizes"]), 1, (version, meta.v))

    def test_undecodable(self):
        c = chain()
        c.undecodable(2001)
        answer, body = handle({"id": 1, "format": "xdr", "ledger": 2001}, c.meta(2001), TESTNET, EVERYTHING)
        self.assertEqual(answer["ledgers"], [])
        self.assertEqual((answer["error"]["kind"], answer["error"]["ledger"], answer["error"]["protocol"]),
                         ("undecodable", 2001, 23))

    def test_wrongPassphrase(self):
        c = chain()
        answer, _ = handle({"id": 1, "format": "xdr", "ledger": 2001}, c.meta(2001), PUBLIC, EVERYTHING)
        self.assertEqual((answer["error"]["kind"], answer["error"]["ledger"]), ("unextractable", 2001))
        self.assertIn("LedgerMismatch", answer["error"]["message"])


class PoolCase(TestCase):
    timeout = 60

    def pool(self, passphrase=TESTNET, emit=EVERYTHING, **kw):
        kw.setdefault("restartDelay", 0.05)
        pool = WorkerPool(reactor, passphrase, emit, **kw)
        pool.startService()
        self.addCleanup(lambda: pool.running and pool.stopService())
        return pool


class PoolTests(PoolCase):
    @inlineCallbacks
    def test_messagesAsInProcess(self):
        """
        What crosses the boundary is each message's JSON as seal() encodes it, and its fields.
        """
        pool = self.pool(PUBLIC, workers=2)
        (result,) = yield pool.submit(pubnetObject(), "zstd", ledger=53312000)
        with open(fixturePath("ledgers", PUBNET), "rb") as f:
            from stellarflow.testing.ledgerfiles import batchLedgers

            (lcm,) = batchLedgers(f)
        raw = lcm.to_xdr_bytes()
        self.assertEqual([m.json for m in result.messages], expected(raw, PUBLIC))
        self.assertEqual([dict(m) for m in result.messages],
                         [dict(seal(m)) for m in ledgerMessages(lcm, PUBLIC)])
        self.assertEqual(result.hash, lcm.v1.ledger_header.hash.hash.hex())
        b64 = yield pool.submit(base64.b64encode(raw), "base64", ledger=53312000)
        self.assertEqual([m.json for m in b64[0].messages], expected(raw, PUBLIC))
        yield pool.stopService()

    @inlineCallbacks
    def test_resultsInOrder(self):
        c = chain()
        pool = self.pool(workers=2)
        ledgers = list(range(2000, 2012))
        results = yield gather([pool.submit(c.meta(n), "xdr", ledger=n) for n in ledgers])
        self.assertEqual([r[0].sequence for r in results], ledgers)
        for n, r in zip(ledgers, results):
            self.assertEqual([m.json for m in r[0].messages], expected(c.meta(n), TESTNET))
        yield pool.stopService()

    @inlineCallbacks
    def test_workerKilledLedgerRetried(self):
        """
        A worker killed while it holds ledgers: they go to another worker, nothing is lost.
        """
        c = chain()
        pool = self.pool(workers=1, perWorker=4)
        yield pool.submit(c.meta(2000), "xdr", ledger=2000)  # the worker is up
        pending = [pool.submit(c.meta(n), "xdr", ledger=n) for n in range(2001, 2005)]
        (victim,) = pool.workers
        os.kill(victim.pid, signal.SIGKILL)
        results = yield gather(pending)
        self.assertEqual([r[0].sequence for r in results], [2001, 2002, 2003, 2004])
        self.assertEqual([m.json for m in results[0][0].messages], expected(c.meta(2001), TESTNET))
        self.assertEqual(pool.deaths, 1)
        self.assertEqual(len(pool.workers), 1)
        self.flushLoggedErrors()
        yield pool.stopService()

    @inlineCallbacks
    def test_ledgerThatKillsWorkers(self):
        c = chain()
        pool = self.pool(workers=2, crashOn=[2003], maxAttempts=3)
        good = pool.submit(c.meta(2002), "xdr", ledger=2002)
        bad = pool.submit(c.meta(2003), "xdr", ledger=2003)
        yield good
        error = yield self.assertFailure(bad, LedgerDecodeError)
        self.assertEqual(error.ledger, 2003)
        self.assertIn("ledger 2003 killed 3 worker processes", str(error))
        self.assertEqual(pool.deaths, 3)
        after = yield pool.submit(c.meta(2004), "xdr", ledger=2004)
        self.assertEqual(after[0].sequence, 2004)
        yield pool.stopService()

    @inlineCallbacks
    def test_undecodableNamesLedgerProtocolAndSdk(self):
        import stellar_sdk

        c = chain()
        c.undecodable(2001)
        pool = self.pool(workers=1)
        error = yield self.assertFailure(pool.submit(c.meta(2001), "xdr", ledger=2001), LedgerDecodeError)
        self.assertIn("ledger 2001 (protocol 23) cannot be decoded by stellar-sdk {}".format(stellar_sdk.__version__),
                      str(error))
        yield pool.stopService()

    @inlineCallbacks
    def test_stopFailsWaitingLedgers(self):
        c = chain()
        pool = self.pool(workers=1, perWorker=1)
        pending = [pool.submit(c.meta(n), "xdr", ledger=n) for n in range(2000, 2006)]
        yield pool.stopService()
        outcomes = []
        for d in pending:
            d.addCallbacks(lambda r: outcomes.append("ok"), lambda f: outcomes.append(f.trap(PoolStopped)))
        self.assertEqual(outcomes[0], "ok")
        self.assertIn(PoolStopped, outcomes)
        self.assertEqual(pool.workers, [])
        self.assertRaises(PoolStopped, pool.submit, b"", "xdr")


class ProcessorTests(PoolCase):
    def processor(self, **kw):
        pool = WorkerPool(reactor, TESTNET, kw.pop("emit", EVERYTHING), restartDelay=0.05, **kw)
        processor = GetLedgersRPC(pool)
        processor.startService()
        self.addCleanup(lambda: processor.running and processor.stopService())
        return processor

    def items(self, c, ledgers):
        return [parseLedgerRecord(c.record(n)) for n in ledgers]

    def test_config(self):
        config, problems = CONFIG_SCHEMA.validate({})
        self.assertEqual(config, {"emit": ["payment", "trade", "contract_event"], "workers": 2})
        config, problems = CONFIG_SCHEMA.validate({"emit": ["payment", "swap"]}, "p")
        self.assertEqual([p.path for p in problems], ["p.emit[1]"])

    @inlineCallbacks
    def test_processInLedgerOrder(self):
        c = chain()
        processor = self.processor(workers=2, emit=("payment", "trade"))
        verifyObject(IProcessor, processor)
        verifyObject(IStatsProvider, processor)
        items = self.items(c, range(2000, 2006))
        messages = yield processor.process(items)
        want = [j for n in range(2000, 2006) for j in expected(c.meta(n), TESTNET, ("payment", "trade"))]
        self.assertEqual([m.json for m in messages], want)
        self.assertEqual({m["type"] for m in messages}, {"payment", "trade"})
        self.assertEqual([i.payload for i in items], [None] * 6)
        self.assertEqual(processor.stats()["ledgers_total"], 6)
        yield processor.stopService()

    @inlineCallbacks
    def test_metadataOfAnotherLedger(self):
        c = chain()
        processor = self.processor(workers=1)
        (item,) = self.items(c, [2001])
        item.payload = base64.b64encode(c.meta(2002))
        error = yield self.assertFailure(processor.process([item]), LedgerDecodeError)
        self.assertIn("the metadata of ledger 2001 is of ledger 2002", str(error))
        yield processor.stopService()

    @inlineCallbacks
    def test_notRunning(self):
        processor = GetLedgersRPC(WorkerPool(reactor, TESTNET, EVERYTHING))
        yield self.assertFailure(processor.process(self.items(chain(), [2000])), PoolStopped)


def gather(ds):
    from twisted.internet.defer import gatherResults

    return gatherResults(ds, consumeErrors=True)


def later(seconds):
    return deferLater(reactor, seconds, lambda: None)


_ = LedgerItem
