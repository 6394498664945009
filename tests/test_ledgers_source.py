"""
Tests for the getLedgers source (L{stellarflow.ledgers.source}) against the spec-faithful test
server in memory (StubTreq, Clock): following from a start ledger to the tip and beyond, the
tip errors, the chain checks, retention gaps, failures, restarts with the checkpoint's hash,
the network check; and its configuration.
"""

import json

from treq.testing import StubTreq
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stellarflow import positions
from stellarflow.backoff import Backoff
from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import ISource, IStatsProvider
from stellarflow.ledgers.pool import LedgerDecodeError
from stellarflow.ledgers.source import GetLedgersSource
from stellarflow.pipeline import ComponentContext, Pipeline
from stellarflow.rpc.client import StellarRPCClient
from stellarflow.rpc.config import CONFIG_SCHEMA
from stellarflow.rpc.source import RPCSourceAdapter
from stellarflow.testing.memory import MemoryConsumer
from stellarflow.testing.rpcserver import StellarRPCResource
from tests.test_rpc_source import BoundedClock, Collector, DictCheckpoints, Script

URL = "http://rpc.test/"
TESTNET = "Test SDF Network ; September 2015"


class ConfigTests(SynchronousTestCase):
    def validate(self, config):
        return CONFIG_SCHEMA.validate(config, "pipelines.p.source.config")

    def problems(self, config):
        result, problems = self.validate(config)
        self.assertIsNone(result)
        return [(p.path, p.message) for p in problems]

    def test_defaults(self):
        config, problems = self.validate({"rpc_method": "getLedgers", "network": "testnet"})
        self.assertEqual(list(problems), [])
        self.assertEqual(config["pagination"], {"limit": 6})
        events, _ = self.validate({})
        self.assertEqual(events["pagination"], {"limit": 100})

    def test_networkRequired(self):
        self.assertEqual(self.problems({"rpc_method": "getLedgers"}), [(
            "pipelines.p.source.config.network",
            "missing; expected a network name or passphrase: with rpc_method getLedgers transaction hashes depend "
            "on it")])

    def test_limits(self):
        problems = self.problems({"rpc_method": "getLedgers", "network": "testnet", "pagination": {"limit": 201},
                                  "filters": [{"type": "contract"}], "xdrFormat": "json"})
        self.assertEqual([p for p, _ in problems], [
            "pipelines.p.source.config.filters", "pipelines.p.source.config.xdrFormat",
            "pipelines.p.source.config.pagination.limit"])
        config, problems = self.validate({"rpc_method": "getLedgers", "network": "testnet",
                                          "pagination": {"limit": 200}})
        self.assertEqual(config["pagination"], {"limit": 200})

    def test_fromConfigBuildsTheLedgerSource(self):
        from twisted.internet.task import Clock

        config, _ = self.validate({"rpc_method": "getLedgers", "network": "testnet", "start_ledger": 5,
                                    "pagination": {"limit": 3}})
        source = RPCSourceAdapter.fromConfig(config, ComponentContext(reactor=Clock(), pipeline="p"))
        self.assertIsInstance(source, GetLedgersSource)
        verifyObject(ISource, source)
        verifyObject(IStatsProvider, source)
        self.assertEqual((source.start_ledger, source.limit, source.passphrase), (5, 3, TESTNET))


class LedgerSourceCase(SynchronousTestCase):
    def setUp(self):
        self.clock = BoundedClock()
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)
        self.deliver = Collector()
        self.fatal = []
        self.completed = []

    def server(self, **kw):
        kw.setdefault("seed", 3)
        kw.setdefault("ledger_transactions", 2)
        kw.setdefault("network_passphrase", TESTNET)
        return StellarRPCResource(self.clock, **kw)

    def makeSource(self, resource, **kw):
        self.resource = resource
        self.stub = StubTreq(resource)
        self.client = StellarRPCClient(self.stub, URL, clock=self.clock, request_timeout=kw.pop("timeout", 30.0))
        kw.setdefault("network", "testnet")
        kw.setdefault("backoff", Backoff(initial=1.0, maximum=60.0, jitter=False))
        kw.setdefault("poll_interval", 5.0)
        kw.setdefault("limit", 4)
        self.source = GetLedgersSource(self.client, self.clock, **kw)
        return self.source

    def start(self, checkpoint=None):
        ended = self.source.start(self.deliver, checkpoint)
        ended.addCallbacks(lambda _: self.completed.append(True), self.fatal.append)
        self.clock.advance(0)

    def drain(self, limit=2000):
        for _ in range(limit):
            due = [c for c in self.clock.getDelayedCalls() if c.getTime() <= self.clock.seconds()]
            if not due:
                return
            self.clock.advance(0)
        self.fail("still busy after {} turns".format(limit))

    def texts(self, level=None):
        return [formatEvent(e) for e in self.logged
                if level is None or (e.get("log_level") is not None and e["log_level"].name == level)]

    def requests(self, method="getLedgers"):
        if isinstance(self.resource, Script):
            return self.resource.calls(method)
        return [r.params for r in self.resource.requests if r.method == method]

    @property
    def sequences(self):
        return [i.sequence for i in self.deliver.items]

    def assertChained(self):
        items = self.deliver.items
        for before, after in zip(items, items[1:]):
            self.assertEqual((after.sequence, after.previousHash), (before.sequence + 1, before.hash))


class FollowTests(LedgerSourceCase):
    def test_startToTipAndOn(self):
        """
        From start_ledger to the tip with a cursor while behind, then startLedger = latest + 1
        every poll_interval: the tip's -32600 is "not yet" (no error, no getHealth); every
        ledger once, chained, with position cursors and the last hash on each batch.
        """
        server = self.server(history=30)
        self.makeSource(server, start_ledger=1010, poll_interval=1)
        self.start()
        self.drain()
        latest = server.ledgers.latest
        self.assertEqual(self.sequences, list(range(1010, latest + 1)))
        self.assertChained()
        params = self.requests()
        self.assertEqual(params[0], {"startLedger": 1010, "pagination": {"limit": 4}})
        self.assertEqual(params[1], {"pagination": {"cursor": "1013", "limit": 4}})
        batch = self.deliver.batches[0]
        self.assertEqual((batch.previous, batch.cursor, batch.hash),
                         (positions.ledgerEnd(1009), positions.ledgerEnd(1013), batch.items[-1].hash))
        self.assertEqual(self.source.errors, 0)
        self.clock.advance(1)
        self.assertEqual(self.requests()[len(params)], {"startLedger": latest + 1, "pagination": {"limit": 4}})
        for _ in range(30):
            self.clock.advance(1)
        self.assertEqual(self.sequences, list(range(1010, server.ledgers.latest + 1)))
        tipRequests = [r for r in self.requests()[len(params):] if r.get("startLedger", 0) > latest]
        self.assertEqual(len(tipRequests), 31)
        self.assertEqual(self.source.errors, 0)
        self.assertEqual(self.fatal, [])
        self.assertEqual(self.requests("getHealth"), [])
        stats = self.source.stats()
        self.assertEqual((stats["seconds_since_success"], stats["last_error"], stats["polling"]), (0, None, True))
        self.assertEqual(self.source.lagLedgers, 0)
        self.assertEqual(server.maxInFlight, 1)

    def test_nextPageFetchedWhileProcessing(self):
        """
        While the pipeline processes a page (its Deferred has not fired) the next one is
        already asked for, one at most; it is used once the pipeline is ready, not asked again.
        """
        server = self.server(history=20)
        self.makeSource(server, start_ledger=1000)
        self.deliver.hold = True
        self.start()
        self.drain()
        self.assertEqual(self.sequences, [1000, 1001, 1002, 1003])
        self.assertEqual(self.requests(), [{"startLedger": 1000, "pagination": {"limit": 4}},
                                           {"pagination": {"cursor": "1003", "limit": 4}}])
        waiting, self.deliver.waiting = self.deliver.waiting, None
        waiting.callback(None)
        self.drain()
        self.assertEqual(self.sequences, list(range(1000, 1008)))
        self.assertEqual(len(self.requests()), 3)
        self.assertEqual(self.requests()[2], {"pagination": {"cursor": "1007", "limit": 4}})
        self.assertEqual(server.maxInFlight, 1)

    def test_prefetchDroppedWhenDeliveryFails(self):
        server = self.server(history=20)
        self.makeSource(server, start_ledger=1000)
        self.deliver.hold = True
        self.start()
        self.drain()
        waiting, self.deliver.waiting = self.deliver.waiting, None
        waiting.errback(RuntimeError("processor exploded"))
        self.flushLoggedErrors(RuntimeError)
        self.deliver.hold = False
        self.clock.advance(1)
        self.drain()
        self.assertEqual(self.sequences[:5], [1000, 1001, 1002, 1003, 1000])
        self.assertEqual(self.requests()[2], {"startLedger": 1000, "pagination": {"limit": 4}})

    def test_latestLedgerStart(self):
        server = self.server(history=5)
        self.makeSource(server)
        self.start()
        self.drain()
        self.assertEqual(server.requests[1].method, "getLatestLedger")
        self.assertEqual(self.sequences, [server.ledgers.latest])

    def test_cursorAtTheTipIsNotYet(self):
        """
        A -32602 for a cursor past a lagging replica's latest ledger is "not yet" once getHealth
        says so; the same code for a ledger the server has is a configuration error.
        """
        server = self.server(history=10)
        records = [server.chain.record(n) for n in range(1000, 1004)]
        page = {"ledgers": records, "latestLedger": 1008, "oldestLedger": 1000, "cursor": "1003",
                "latestLedgerCloseTime": 1, "oldestLedgerCloseTime": 1}
        tip = ("error", -32602, "cursor ('1003') must be between the oldest ledger: 1000 and the latest ledger: 1003 "
                                "for this rpc instance")
        script = Script({"passphrase": TESTNET}, page, tip, {"status": "healthy", "latestLedger": 1003,
                                                             "oldestLedger": 1000})
        self.makeSource(script, start_ledger=1000)
        self.start()
        self.drain()
        self.assertEqual(script.calls("getLedgers")[1], {"pagination": {"cursor": "1003", "limit": 4}})
        self.assertEqual(self.sequences, [1000, 1001, 1002, 1003])
        self.assertEqual((self.fatal, self.source.errors, self.source.fatal), ([], 0, None))
        self.assertTrue(any("ahead of" in t for t in self.texts("warn")))
        self.assertEqual(self.source.polling, True)

        self.deliver = Collector()
        script = Script({"passphrase": TESTNET}, page, tip, {"status": "healthy", "latestLedger": 1009,
                                                             "oldestLedger": 1000})
        self.makeSource(script, start_ledger=1000)
        self.start()
        self.drain()
        self.assertEqual(len(self.fatal), 1)
        self.assertIn("rejected the getLedgers parameters", self.source.fatal)

    def test_backfill(self):
        server = self.server(history=40)
        self.makeSource(server, start_ledger=1005, end_ledger=1016, poll_interval=0)
        self.start()
        self.drain()
        self.assertEqual(self.sequences, list(range(1005, 1017)))
        self.assertEqual(self.completed, [True])
        self.assertEqual(self.deliver.batches[-1].cursor, positions.ledgerEnd(1016))
        self.assertEqual(self.requests()[-1]["pagination"]["limit"], 4)


class ChainTests(LedgerSourceCase):
    def test_forkDetectedAndSkipped(self):
        """
        A provider that switched history: the next ledger's previous hash is not the hash
        delivered.  Logged with the exact ledgers, counted, and (on_gap skip) followed.
        """
        server = self.server(history=12)
        self.makeSource(server, start_ledger=1000)
        self.start()
        self.drain()
        tip = server.ledgers.latest
        server.chain.fork(tip)
        server.advanceLedgers(2)
        self.clock.advance(5)
        self.assertGreaterEqual(self.source.last, tip + 2)
        self.assertEqual(self.sequences, list(range(1000, self.source.last + 1)))
        self.assertEqual(self.source.gaps, [(tip, tip)])
        self.assertEqual(self.source.stats()["gaps_total"], 1)
        warned = [t for t in self.texts("warn") if "GAP" in t]
        self.assertEqual(len(warned), 1)
        self.assertIn("ledger {} follows a ledger {} with hash {}".format(tip + 1, tip, server.chain.hash(tip).hex()),
                      warned[0])

    def test_forkStops(self):
        server = self.server(history=12)
        self.makeSource(server, start_ledger=1000, on_gap="stop")
        self.start()
        self.drain()
        tip = server.ledgers.latest
        server.chain.fork(tip)
        server.advanceLedgers(2)
        self.clock.advance(5)
        self.assertEqual(self.sequences, list(range(1000, tip + 1)))
        self.assertEqual(len(self.fatal), 1)
        self.assertIn("breaks at ledgers {0}-{0}".format(tip), self.source.fatal)
        self.assertEqual(self.source.polling, False)

    def test_missingLedgers(self):
        server = self.server(history=20)
        server.chain.omit(1006, 1007)
        self.makeSource(server, start_ledger=1000)
        self.start()
        self.drain()
        self.assertEqual(self.source.gaps, [(1006, 1007)])
        self.assertEqual(self.sequences, [n for n in range(1000, server.ledgers.latest + 1) if n not in (1006, 1007)])
        self.assertTrue(any("ledgers 1006-1007 are missing" in t for t in self.texts("warn")))

    def test_checkpointHashChecked(self):
        """
        On a restart the first ledger must follow the checkpoint's hash.
        """
        server = self.server(history=20)
        good = server.chain.hash(1009).hex()
        self.makeSource(server)
        self.start(Checkpoint(positions.ledgerEnd(1009), network="testnet", hash=good))
        self.drain()
        self.assertEqual(self.sequences[0], 1010)
        self.assertEqual(self.source.gaps, [])
        self.assertEqual(self.requests()[0], {"startLedger": 1010, "pagination": {"limit": 4}})

        self.deliver = Collector()
        self.makeSource(server, on_gap="stop")
        self.start(Checkpoint(positions.ledgerEnd(1009), network="testnet", hash="ab" * 32))
        self.drain()
        self.assertEqual(self.sequences, [])
        self.assertIn("breaks at ledgers 1009-1009", self.source.fatal)

    def test_checkpointOfAnotherNetwork(self):
        self.makeSource(self.server(history=20))
        self.start(Checkpoint(positions.ledgerEnd(1009), network="mainnet"))
        self.assertEqual(len(self.fatal), 1)
        self.assertIn("taken on network 'mainnet'", self.source.fatal)

    def test_getEventsCheckpointResumesItsLedger(self):
        server = self.server(history=20)
        self.makeSource(server)
        self.start(Checkpoint(positions.eventId(1009, 3, 0, 1)))
        self.drain()
        self.assertEqual(self.sequences[0], 1009)


class FailureTests(LedgerSourceCase):
    def test_retentionGapSkip(self):
        server = self.server(history=300, retention=100)
        self.makeSource(server, start_ledger=1000)
        self.start()
        self.drain()
        oldest = server.ledgers.oldest
        self.assertEqual(self.source.gaps, [(1000, oldest - 1)])
        self.assertEqual(self.sequences[0], oldest)
        self.assertEqual(self.requests("getHealth"), [{}])

    def test_retentionGapStop(self):
        server = self.server(history=300, retention=100)
        self.makeSource(server, start_ledger=1000, on_gap="stop")
        self.start()
        self.drain()
        self.assertEqual(self.sequences, [])
        self.assertIn("fell out of the RPC's retention", self.source.fatal)

    def test_faultsAndRecovery(self):
        server = self.server(history=30)
        self.makeSource(server, start_ledger=1000, timeout=10)
        for kind, fields in [("http_status", {"status": 503}), ("http_status", {"status": 500}), ("garbage", {}),
                             ("rpc_error", {"code": -32001}), ("rpc_error", {"code": -32098}), ("disconnect", {}),
                             ("delay", {"seconds": 40})]:
            server.inject(kind, method="getLedgers", **fields)
        self.start()
        for _ in range(400):
            self.clock.advance(1)
            self.stub.flush()
        self.drain()
        self.assertEqual(self.source.errors, 7)
        self.assertEqual(self.sequences, list(range(1000, self.source.last + 1)))
        self.assertGreaterEqual(self.source.last, server.ledgers.latest - 1)
        self.assertChained()
        self.assertEqual(self.fatal, [])

    def test_connectionRefused(self):
        from tests.test_rpc_source import Refusing

        server = self.server(history=10)
        self.resource = server
        stub = StubTreq(server)
        client = StellarRPCClient(Refusing(stub, 2), URL, clock=self.clock)
        self.source = GetLedgersSource(client, self.clock, start_ledger=1000, network="testnet",
                                       backoff=Backoff(initial=1.0, maximum=60.0, jitter=False))
        self.start()
        for _ in range(10):
            self.clock.advance(1)
        self.assertEqual(self.source.errors, 2)
        self.assertEqual(self.sequences, list(range(1000, self.source.last + 1)))
        self.assertGreaterEqual(self.source.last, server.ledgers.latest - 1)

    def test_wrongNetwork(self):
        server = self.server(history=10, network_passphrase="Public Global Stellar Network ; September 2015")
        self.makeSource(server, start_ledger=1000)
        self.start()
        self.drain()
        self.assertEqual(self.sequences, [])
        self.assertEqual(len(self.fatal), 1)
        self.assertIn("NETWORK MISMATCH", self.source.fatal)
        self.assertEqual(self.requests(), [])

    def test_undecodableLedgerStops(self):
        """
        A ledger the processor cannot decode stops the source at that ledger: never skipped.
        """
        server = self.server(history=10)
        self.makeSource(server, start_ledger=1000)
        calls = []

        def deliver(batch):
            calls.append(batch)
            raise LedgerDecodeError("ledger 1000 (protocol 99) cannot be decoded by stellar-sdk 0", 1000)

        ended = self.source.start(deliver, None)
        ended.addErrback(self.fatal.append)
        self.drain()
        self.assertEqual(len(calls), 1)
        self.assertEqual(len(self.fatal), 1)
        self.assertIn("protocol 99", self.source.fatal)
        self.assertIsNone(self.source.last)


class PipelineTests(LedgerSourceCase):
    def test_restartDeliversEveryLedgerOnce(self):
        """
        Through a Pipeline: the checkpoint is the last batch's position and hash; a restart
        resumes after it, checks the hash, and nothing is delivered twice.
        """
        server = self.server(history=14)
        self.makeSource(server, start_ledger=1000)
        consumer = MemoryConsumer()
        checkpoints = DictCheckpoints()
        pipeline = Pipeline("p", self.source, [Sequences()], [("m", consumer)], checkpoints, self.clock)
        pipeline.startService()
        self.drain()
        self.successResultOf(pipeline.stopService())
        saved = checkpoints.saved["p"]
        self.assertEqual(saved.cursor, positions.ledgerEnd(server.ledgers.latest))
        self.assertEqual(saved.hash, server.chain.hash(server.ledgers.latest).hex())
        first = [m["ledger"] for m in consumer.messages]

        for _ in range(3):
            self.clock.advance(5)
        self.makeSource(server, start_ledger=1000)
        consumer2 = MemoryConsumer()
        pipeline = Pipeline("p", self.source, [Sequences()], [("m", consumer2)], checkpoints, self.clock)
        pipeline.startService()
        self.drain()
        second = [m["ledger"] for m in consumer2.messages]
        self.assertEqual(first + second, list(range(1000, server.ledgers.latest + 1)))
        self.assertEqual(self.source.gaps, [])
        self.successResultOf(pipeline.stopService())


    def test_durableConsumerCatchesUpThroughASecondInstance(self):
        """
        A durable consumer down for a while catches up through a second getLedgers source
        started at its own position (batch cursors are positions it compares), then rejoins.
        """
        from stellarflow import durable
        from stellarflow.testing.memory import DurableMemoryConsumer

        server = self.server(history=10)
        readers = []

        def newSource(label):
            client = StellarRPCClient(StubTreq(server), URL, clock=self.clock)
            source = GetLedgersSource(client, self.clock, start_ledger=1000, network="testnet", limit=4,
                                      poll_interval=1)
            readers.append(source)
            return source

        self.makeSource(server, start_ledger=1000, poll_interval=1)
        live, db = MemoryConsumer(), DurableMemoryConsumer()
        pipeline = Pipeline("p", self.source, [Sequences()], [("live", live), ("db", db)], DictCheckpoints(),
                            self.clock, maxInFlight=2, newSource=newSource)
        pipeline.startService()
        self.clock.advance(1)
        db.fail()
        for _ in range(40):
            self.clock.advance(1)
        member = pipeline.members[1]
        self.assertGreaterEqual(member.detaches, 1)
        self.assertTrue(readers)
        self.assertGreater(readers[0].requests, 0)
        db.recover()
        for _ in range(40):
            self.clock.advance(1)
        self.assertEqual(member.state, durable.ATTACHED)
        self.assertTrue(readers)
        latest = self.source.last
        self.assertEqual(sorted(set(db.order)), [positions.eventId(n, 1, 0, 0) for n in range(1000, latest + 1)])
        self.assertEqual(db.order, sorted(db.order))
        self.assertEqual([m["ledger"] for m in live.messages], list(range(1000, latest + 1)))
        self.successResultOf(pipeline.stopService())


class Sequences:
    """A processor standing for GetLedgersRPC: one message per ledger."""

    def process(self, items):
        return [{"type": "ledger", "id": positions.eventId(i.sequence, 1, 0, 0), "ledger": i.sequence, "hash": i.hash}
                for i in items]


class ServerTests(SynchronousTestCase):
    """
    The test server's getLedgers: the real server's rules and messages.
    """

    def setUp(self):
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.server = StellarRPCResource(self.clock, history=30, ledger_transactions=1)

    def call(self, params, method="getLedgers"):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        return json.loads(self.server.answer(json.loads(body)))

    def test_page(self):
        result = self.call({"startLedger": 1005, "pagination": {"limit": 3}})["result"]
        self.assertEqual([r["sequence"] for r in result["ledgers"]], [1005, 1006, 1007])
        self.assertEqual(result["cursor"], "1007")
        self.assertIsInstance(result["latestLedgerCloseTime"], int)
        self.assertIsInstance(result["ledgers"][0]["ledgerCloseTime"], str)
        more = self.call({"pagination": {"cursor": "1007", "limit": 2}})["result"]
        self.assertEqual([r["sequence"] for r in more["ledgers"]], [1008, 1009])
        default = self.call({"startLedger": 1000})["result"]
        self.assertEqual(len(default["ledgers"]), 31)

    def test_tipErrors(self):
        latest = self.server.ledgers.latest
        self.assertEqual(self.call({"startLedger": latest + 1})["error"], {
            "code": -32600, "message": "start ledger ({}) must be between the oldest ledger: 1000 and the latest "
                                       "ledger: {} for this rpc instance".format(latest + 1, latest)})
        self.assertEqual(self.call({"pagination": {"cursor": str(latest)}})["error"], {
            "code": -32602, "message": "cursor ('{}') must be between the oldest ledger: 1000 and the latest ledger: "
                                       "{} for this rpc instance".format(latest, latest)})

    def test_validation(self):
        self.assertEqual(self.call({"startLedger": 1001, "pagination": {"cursor": "1001"}})["error"], {
            "code": -32600, "message": "startLedger (1001) and cursor (1001) cannot both be set"})
        self.assertEqual(self.call({"startLedger": 1001, "pagination": {"limit": 201}})["error"], {
            "code": -32600, "message": "limit must not exceed 200"})
        self.assertEqual(self.call({"pagination": {"cursor": "x"}})["error"], {
            "code": -32602, "message": 'strconv.ParseUint: parsing "x": invalid syntax'})
        self.assertEqual(self.call({"startLedger": "1"})["error"]["code"], -32602)

    def test_getNetwork(self):
        self.assertEqual(self.call({}, "getNetwork")["result"]["passphrase"], TESTNET)


class DocsTests(SynchronousTestCase):
    """
    The getLedgers and data-lake examples of docs/source.md are valid configs.
    """

    def blocks(self):
        import os
        import re

        import yaml

        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "source.md")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]

    def test_examplesValidate(self):
        from stellarflow.ledgers.lakesource import CONFIG_SCHEMA as LAKE
        from stellarflow.ledgers.processor import CONFIG_SCHEMA as PROCESSOR

        checked = 0
        for block in self.blocks():
            source = block["source"]
            if source["type"] == "DataLakeSourceAdapter":
                schema = LAKE
            elif source["config"].get("rpc_method") == "getLedgers":
                schema = CONFIG_SCHEMA
            else:
                continue
            config, problems = schema.validate(source["config"], "source.config")
            self.assertEqual(list(problems), [])
            for processor in block["processors"]:
                self.assertEqual(processor["type"], "GetLedgersRPC")
                self.assertEqual(list(PROCESSOR.validate(processor.get("config") or {})[1]), [])
            checked += 1
        self.assertEqual(checked, 2)
