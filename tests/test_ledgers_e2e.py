"""
End to end over 127.0.0.1: a pipeline built from config (``RPCSourceAdapter`` with
``rpc_method: getLedgers``, ``GetLedgersRPC`` with real worker processes, a file checkpoint)
follows the test server from a start ledger to the tip and on, across a restart and a worker
killed on the way, with every ledger's messages exactly once; a server on another network
stops it before the first ledger.  Bounded in time; pools and ports are closed at the end.
"""

import os
import signal

from stellar_sdk import xdr
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from stellarflow import positions
from stellarflow.checkpoint import FileCheckpointStore
from stellarflow.events.network import TESTNET
from stellarflow.ledgers.processor import CONFIG_SCHEMA as PROCESSOR_SCHEMA
from stellarflow.ledgers.processor import GetLedgersRPC
from stellarflow.message import seal
from stellarflow.meta import ledgerMessages
from stellarflow.pipeline import ComponentContext, Pipeline
from stellarflow.rpc.config import CONFIG_SCHEMA
from stellarflow.rpc.source import RPCSourceAdapter
from stellarflow.testing.memory import MemoryConsumer
from stellarflow.testing.rpcserver import StellarRPCResource, serve


@inlineCallbacks
def waitFor(condition, timeout=20.0, step=0.05):
    waited = 0.0
    while not condition():
        if waited > timeout:
            raise AssertionError("condition not met within {}s".format(timeout))
        yield deferLater(reactor, step, lambda: None)
        waited += step


class FollowTests(TestCase):
    timeout = 90

    @inlineCallbacks
    def serve(self, **kw):
        kw.setdefault("seed", 11)
        kw.setdefault("network_passphrase", TESTNET)
        kw.setdefault("ledger_transactions", 9)
        self.server = StellarRPCResource(reactor, ledger_close_time=0.4, history=12, **kw)
        self.port = yield serve(0, self.server, reactor=reactor)
        self.addCleanup(self.server.stopServing)

    def pipeline(self, store, consumer, network="testnet", start=1003):
        config, problems = CONFIG_SCHEMA.validate({
            "rpc_url": "http://127.0.0.1:{}/".format(self.port),
            "rpc_method": "getLedgers",
            "network": network,
            "start_ledger": start,
            "poll_interval": 0.1,
            "pagination": {"limit": 5},
        })
        self.assertEqual(list(problems), [])
        context = ComponentContext(reactor=reactor, pipeline="ledgers", network=network)
        source = RPCSourceAdapter.fromConfig(config, context)
        processorConfig, _ = PROCESSOR_SCHEMA.validate({"workers": 2})
        processor = GetLedgersRPC.fromConfig(processorConfig, context)
        pipeline = Pipeline("ledgers", source, [processor], [("memory", consumer)], store, reactor)
        self.addCleanup(lambda: pipeline.running and pipeline.stopService())
        return pipeline, source, processor

    def expected(self, first, last):
        chain = self.server.chain
        return [seal(m).json for n in range(first, last + 1)
                for m in ledgerMessages(xdr.LedgerCloseMeta.from_xdr_bytes(chain.meta(n)), TESTNET)]

    @inlineCallbacks
    def test_followRestartAndWorkerDeath(self):
        yield self.serve()
        store = FileCheckpointStore(self.mktemp())
        first = MemoryConsumer()
        pipeline, source, processor = self.pipeline(store, first)
        tip = self.server.ledgers.latest
        yield pipeline.startService()
        yield waitFor(lambda: source.last is not None and source.last >= 1006)
        os.kill(processor.pool.workers[0].pid, signal.SIGKILL)
        yield waitFor(lambda: source.last is not None and source.last >= tip + 3)
        yield pipeline.stopService()
        self.assertEqual(source.errors, 0)
        self.assertEqual(processor.pool.deaths, 1)
        self.assertEqual(source.gaps, [])
        saved = yield store.load("ledgers")
        last = positions.ledgerOf(saved.cursor)
        self.assertEqual(saved.cursor, positions.ledgerEnd(last))
        self.assertEqual(saved.hash, self.server.chain.hash(last).hex())
        self.assertEqual(saved.network, TESTNET)
        self.assertGreaterEqual(last, tip + 3)
        self.assertFalse(any(r.method == "getHealth" for r in self.server.requests))

        yield deferLater(reactor, 1.0, lambda: None)  # ledgers close while it is down
        second = MemoryConsumer()
        pipeline, source, processor = self.pipeline(store, second)
        yield pipeline.startService()
        target = self.server.ledgers.latest + 2
        yield waitFor(lambda: source.last is not None and source.last >= target)
        yield pipeline.stopService()
        end = positions.ledgerOf((yield store.load("ledgers")).cursor)
        delivered = [m.json for m in first.messages] + [m.json for m in second.messages]
        self.assertEqual(delivered, self.expected(1003, end))
        self.assertEqual(len(set(delivered)), len(delivered))
        ledgers = [m["ledger"] for m in first.messages + second.messages]
        self.assertEqual(sorted(set(ledgers)), list(range(1003, end + 1)))
        tipRequests = [r for r in self.server.requests if r.method == "getLedgers" and
                       (r.params or {}).get("startLedger", 0) > 1003]
        self.assertTrue(tipRequests, "the source never asked past the tip")
        self.assertEqual(self.flushLoggedErrors(), [])

    @inlineCallbacks
    def test_wrongNetworkStops(self):
        yield self.serve(network_passphrase="Public Global Stellar Network ; September 2015")
        consumer = MemoryConsumer()
        pipeline, source, processor = self.pipeline(FileCheckpointStore(self.mktemp()), consumer)
        finished = []
        pipeline.onFinished = finished.append
        yield pipeline.startService()
        yield waitFor(lambda: finished)
        self.assertEqual(pipeline.finished, "failed")
        self.assertIn("NETWORK MISMATCH", source.fatal)
        self.assertEqual(consumer.messages, [])
        self.assertFalse(any(r.method == "getLedgers" for r in self.server.requests))
        yield pipeline.stopService()
