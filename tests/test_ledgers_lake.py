"""
Tests for the data lake (L{stellarflow.ledgers.lake}) and its source
(L{stellarflow.ledgers.lakesource}): SEP-54 names, the real galexie objects read from a
directory and over HTTP on 127.0.0.1, following a lake, chain breaks, and the handover of a
backfill of the real objects to getLedgers without a gap or a duplicate.
"""

import os

from stellar_sdk import xdr
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow import positions
from stellarflow.checkpoint import FileCheckpointStore
from stellarflow.events.network import TESTNET
from stellarflow.ledgers.lake import DirectoryLake, Manifest, ObjectError, objectItem, objectPaths
from stellarflow.ledgers.lakesource import CONFIG_SCHEMA, DataLakeSourceAdapter
from stellarflow.ledgers.processor import CONFIG_SCHEMA as PROCESSOR_SCHEMA
from stellarflow.ledgers.processor import GetLedgersRPC
from stellarflow.message import seal
from stellarflow.meta import ledgerMessages
from stellarflow.pipeline import ComponentContext, Pipeline
from stellarflow.testing.fixtures import fixturePath
from stellarflow.testing.lakeserver import placeObject, serveLake, writeChain, writeManifest
from stellarflow.testing.ledgerchain import LedgerChain
from stellarflow.testing.ledgerfiles import fixtureLedgers
from stellarflow.testing.memory import MemoryConsumer
from stellarflow.testing.rpcserver import StellarRPCResource, serve
from tests.test_ledgers_e2e import waitFor
from tests.test_rpc_source import Collector

OBJECTS = {997: "galexie-testnet-FFFFFC1A--997.xdr.zst", 998: "galexie-testnet-FFFFFC19--998.xdr.zst",
           999: "galexie-testnet-FFFFFC18--999.xdr.zst"}
HASH_999 = "a11ca0ba"


def realLake(root):
    """
    The three real testnet objects in their SEP-54 places (998 with the older extension).
    """
    with open(fixturePath("ledgers", "galexie-testnet-config.json"), "rb") as f:
        os.makedirs(root)
        with open(os.path.join(root, ".config.json"), "wb") as out:
            out.write(f.read())
    manifest = Manifest(TESTNET, 1, 64000)
    for ledger, name in OBJECTS.items():
        placeObject(root, manifest, ledger, fixturePath("ledgers", name), extension=1 if ledger == 998 else 0)
    return manifest


def read(name):
    with open(fixturePath("ledgers", name), "rb") as f:
        return f.read()


class LayoutTests(SynchronousTestCase):
    def test_names(self):
        manifest = Manifest(TESTNET, 1, 64000)
        self.assertEqual(objectPaths(manifest, 999), ["FFFFFFFF--0-63999/FFFFFC18--999.xdr.zst",
                                                     "FFFFFFFF--0-63999/FFFFFC18--999.xdr.zstd"])
        self.assertEqual(objectPaths(manifest, 53312000)[0], "FCD285FF--53312000-53375999/FCD285FF--53312000.xdr.zst")
        self.assertEqual(objectPaths(Manifest(TESTNET, 64, 10), 130)[0], "FFFFFFFF--0-639/FFFFFF7F--128-191.xdr.zst")
        self.assertEqual(objectPaths(Manifest(TESTNET, 1, 1), 5)[0], "FFFFFFFA--5.xdr.zst")

    def test_realObjectsChain(self):
        manifest = Manifest(TESTNET, 1, 64000)
        items = [objectItem(read(OBJECTS[n]), manifest, n) for n in (997, 998, 999)]
        self.assertEqual([i.sequence for i in items], [997, 998, 999])
        self.assertEqual(items[1].previousHash, items[0].hash)
        self.assertEqual(items[2].previousHash, items[1].hash)
        self.assertTrue(items[2].hash.startswith(HASH_999))
        pubnet = objectItem(read("galexie-pubnet-53312000.xdr.zstd"), Manifest(TESTNET, 1, 64000), 53312000)
        self.assertEqual((pubnet.sequence, pubnet.protocol, pubnet.hash[:8]), (53312000, 21, "2a56300b"))

    def test_misnamedObject(self):
        error = self.assertRaises(ObjectError, objectItem, read(OBJECTS[998]), Manifest(TESTNET, 1, 64000), 997)
        self.assertIn("named for ledgers 997-997 holds ledgers 998-998", str(error))
        self.assertRaises(ObjectError, objectItem, b"not zstd", Manifest(TESTNET, 1, 64000), 997)

    def test_thenSecretsHiddenInLogs(self):
        from stellarflow.schema import redact

        config, _ = CONFIG_SCHEMA.validate({"url": "/x", "network": "testnet", "start_ledger": 3, "then": {
            "rpc_url": "https://rpc.example/key/abc123", "auth_header": "Bearer s3cret"}})
        shown = redact(config, CONFIG_SCHEMA)
        self.assertEqual((shown["then"]["auth_header"], shown["then"]["rpc_url"]), ("<hidden>", "https://rpc.example"))
        self.assertEqual(config["then"]["auth_header"], "Bearer s3cret")

    def test_config(self):
        config, problems = CONFIG_SCHEMA.validate({"url": "https://lake.example/testnet", "network": "testnet",
                                                   "start_ledger": 3,
                                                   "then": {"rpc_url": "https://rpc.example/"}}, "s")
        self.assertEqual(list(problems), [])
        self.assertEqual((config["then"]["rpc_method"], config["then"]["network"], config["then"]["pagination"]),
                         ("getLedgers", "testnet", {"limit": 6}))
        config, problems = CONFIG_SCHEMA.validate({"url": "/x", "network": "testnet", "start_ledger": 3,
                                                   "end_ledger": 9, "then": {"network": "mainnet",
                                                                             "pagination": {"limit": 500}}}, "s")
        self.assertEqual([p.path for p in problems], ["s.then", "s.then.pagination.limit"])
        config, problems = CONFIG_SCHEMA.validate({"url": "/x", "network": "testnet", "start_ledger": 3,
                                                   "then": {"network": "mainnet"}}, "s")
        self.assertEqual([p.path for p in problems], ["s.then.network"])


class DirectorySourceTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.deliver = Collector()
        self.ended = []
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def source(self, root, **kw):
        kw.setdefault("network", "testnet")
        self.lakeSource = DataLakeSourceAdapter(DirectoryLake(root), self.clock, **kw)
        self.lakeSource.start(self.deliver, kw.pop("checkpoint", None)).addBoth(self.ended.append)
        self.clock.advance(0)
        return self.lakeSource

    def test_realObjects(self):
        root = self.mktemp()
        realLake(root)
        source = self.source(root, start_ledger=997, end_ledger=999)
        self.assertEqual([i.sequence for i in self.deliver.items], [997, 998, 999])
        self.assertEqual(self.ended, [None])
        batch = self.deliver.batches[-1]
        self.assertEqual((batch.previous, batch.cursor), (positions.ledgerEnd(996), positions.ledgerEnd(999)))
        self.assertTrue(batch.hash.startswith(HASH_999))
        self.assertEqual((source.complete, source.gaps), (True, []))

    def test_followsNewObjects(self):
        root = self.mktemp()
        manifest = writeManifest(root, TESTNET)
        chain = LedgerChain(100, lambda n: 1700000000 + n, TESTNET, seed=1, transactions=2)
        writeChain(root, manifest, chain, 100, 104)
        source = self.source(root, start_ledger=100, limit=3, poll_interval=5)
        self.assertEqual([i.sequence for i in self.deliver.items], [100, 101, 102, 103, 104])
        writeChain(root, manifest, chain, 105, 106)
        self.clock.advance(5)
        self.assertEqual([i.sequence for i in self.deliver.items], list(range(100, 107)))
        self.assertEqual(source.gaps, [])
        self.assertEqual(self.ended, [])
        source.stop()
        self.assertEqual(self.ended, [None])

    def test_chainBreak(self):
        root = self.mktemp()
        manifest = writeManifest(root, TESTNET)
        chain = LedgerChain(100, lambda n: 1700000000 + n, TESTNET, seed=1, transactions=1)
        writeChain(root, manifest, chain, 100, 102)
        chain.fork(102)
        writeChain(root, manifest, chain, 103, 104)  # 103 follows the other 102
        source = self.source(root, start_ledger=100, end_ledger=104)
        self.assertEqual([i.sequence for i in self.deliver.items], list(range(100, 105)))
        self.assertEqual(source.gaps, [(102, 102)])
        warned = [formatEvent(e) for e in self.logged if "GAP" in formatEvent(e)]
        self.assertIn("breaks at ledgers 102-102", warned[0])

        self.deliver = Collector()
        source = self.source(root, start_ledger=100, end_ledger=104, on_gap="stop")
        self.assertEqual([i.sequence for i in self.deliver.items], [100, 101, 102])
        self.assertIn("breaks at ledgers 102-102", source.fatal)

    def test_wrongNetwork(self):
        root = self.mktemp()
        realLake(root)
        source = self.source(root, start_ledger=997, network="mainnet")
        self.assertIn("NETWORK MISMATCH", source.fatal)
        self.assertEqual(self.deliver.items, [])

    def test_notALake(self):
        root = self.mktemp()
        os.makedirs(root)
        source = self.source(root, start_ledger=997)
        self.assertIn("no .config.json", source.fatal)


class HandoverTests(TestCase):
    """
    Over 127.0.0.1: the real galexie objects served over HTTP, then getLedgers.
    """

    timeout = 60

    @inlineCallbacks
    def setUpServers(self, previousHash):
        root = self.mktemp()
        realLake(root)
        lake, lakePort = yield serveLake(root, reactor)
        self.addCleanup(lake.stopServing)
        self.rpc = StellarRPCResource(reactor, first_ledger=1000, history=3, ledger_close_time=0.3,
                                      network_passphrase=TESTNET, previous_hash=previousHash, seed=5,
                                      ledger_transactions=3)
        rpcPort = yield serve(0, self.rpc, reactor=reactor)
        self.addCleanup(self.rpc.stopServing)
        self.lakeURL = "http://127.0.0.1:{}/".format(lakePort)
        self.rpcURL = "http://127.0.0.1:{}/".format(rpcPort)

    def pipeline(self, consumer):
        config, problems = CONFIG_SCHEMA.validate({
            "url": self.lakeURL, "network": "testnet", "start_ledger": 997, "handover_margin": 0,
            "then": {"rpc_url": self.rpcURL, "poll_interval": 0.1, "pagination": {"limit": 4}}})
        self.assertEqual(list(problems), [])
        context = ComponentContext(reactor=reactor, pipeline="lake", network="testnet")
        source = DataLakeSourceAdapter.fromConfig(config, context)
        processor = GetLedgersRPC.fromConfig(PROCESSOR_SCHEMA.validate({})[0], context)
        pipeline = Pipeline("lake", source, [processor], [("memory", consumer)],
                            FileCheckpointStore(self.mktemp()), reactor)
        self.addCleanup(lambda: pipeline.running and pipeline.stopService())
        return pipeline, source

    @inlineCallbacks
    def test_backfillThenGetLedgers(self):
        real = {lcm.v1.ledger_header.header.ledger_seq.uint32: lcm for name in OBJECTS.values()
                for lcm in fixtureLedgers(name)}
        yield self.setUpServers(real[999].v1.ledger_header.hash.hash.hex())
        consumer = MemoryConsumer()
        pipeline, source = self.pipeline(consumer)
        yield pipeline.startService()
        yield waitFor(lambda: source.rpc is not None and source.rpc.last is not None and source.rpc.last >= 1004)
        yield pipeline.stopService()
        self.assertTrue(source.handedOver)
        self.assertEqual(source.stats()["gaps_total"], 0)
        self.assertEqual(source.rpc.gaps, [])
        last = source.rpc.last
        got = [m.json for m in consumer.messages]
        want = [seal(m).json for n in range(997, 1000) for m in ledgerMessages(real[n], TESTNET)]
        want += [seal(m).json for n in range(1000, last + 1)
                 for m in ledgerMessages(xdr.LedgerCloseMeta.from_xdr_bytes(self.rpc.chain.meta(n)), TESTNET)]
        self.assertEqual(got, want)
        self.assertEqual(len(set(got)), len(got))
        payments = [m for m in consumer.messages if m["ledger"] < 1000]
        self.assertEqual([(m["ledger"], m["operation_type"]) for m in payments],
                         [(997, "create_account"), (997, "account_merge"), (998, "create_account"),
                          (998, "create_account"), (999, "create_account"), (999, "create_account")])
        first = [r.params for r in self.rpc.requests if r.method == "getLedgers"][0]
        self.assertEqual(first, {"startLedger": 1000, "pagination": {"limit": 4}})

    @inlineCallbacks
    def test_handoverToAnotherChain(self):
        yield self.setUpServers("cd" * 32)
        consumer = MemoryConsumer()
        pipeline, source = self.pipeline(consumer)
        yield pipeline.startService()
        yield waitFor(lambda: source.rpc is not None and source.rpc.last is not None and source.rpc.last >= 1001)
        yield pipeline.stopService()
        self.assertEqual(source.rpc.gaps, [(999, 999)])
        self.assertEqual(source.stats()["gaps_total"], 1)
