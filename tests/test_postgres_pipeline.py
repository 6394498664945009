"""
A whole pipeline (L{MemorySource} -> a processor -> L{SaveToPostgreSQL}, which is also the
checkpoint store) against a real PostgreSQL through a L{FlakyProxy}, across a database outage
and a restart.  Skipped without the test server (failed under ``CI=true``).
"""

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stellarflow.interfaces import IProcessor
from stellarflow.pipeline import Pipeline
from stellarflow.postgres.testing import FlakyProxy, TemporarySchema, sleep, waitUntil
from stellarflow.testing.memory import MemoryConsumer, MemorySource, itemId


@implementer(IProcessor)
class TransferMessages:
    """
    MemorySource items as token transfer messages (the GetEventsRPC output shape).
    """

    producedTypes = frozenset(["contract_event"])

    def process(self, items):
        return [
            {
                "type": "contract_event",
                "id": item["id"],
                "ledger": 1000 + item["n"] // 10,
                "ledger_closed_at": "2026-07-21T18:01:10Z",
                "transaction_hash": "%064x" % item["n"],
                "contract_id": "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA",
                "operation_index": 0,
                "transaction_index": item["n"] % 10,
                "in_successful_contract_call": True,
                "event_kind": "contract",
                "topics": ["transfer", "GAFROM", "GBTO", "native"],
                "data": str(item["n"] * 10000000),
                "event_type": "transfer",
                "from": "GAFROM",
                "to": "GBTO",
                "account_ids": ["GAFROM", "GBTO"],
                "asset_code": "XLM",
                "asset_issuer": None,
                "amount": str(item["n"]),
                "amount_raw": str(item["n"] * 10000000),
                "asset_verified": True,
                "to_muxed_id": None,
            }
            for item in items
        ]


class PipelineOutageTests(TestCase):
    timeout = 60

    def setUp(self):
        self.db = TemporarySchema(self)
        self.proxy = FlakyProxy(reactor)
        self.proxy.accept()
        self.addCleanup(self.proxy.stop)
        verifyObject(IProcessor, TransferMessages())

    def pipeline(self, count, maxInFlight=4):
        consumer = self.db.consumer(reactor, dsn=self.proxy.dsn(), pipeline="main", batch_size=50)
        source = MemorySource(reactor, count=count, batch_size=10, interval=0.002)
        memory = MemoryConsumer()
        pipeline = Pipeline(
            "main",
            source,
            [TransferMessages()],
            [("SaveToPostgreSQL[0]", consumer), ("MemoryConsumer[1]", memory)],
            consumer,
            reactor,
            maxInFlight=maxInFlight,
        )
        return pipeline, source, consumer, memory

    def stored(self):
        return self.db.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {schema}.stellar_events")[0]

    def checkpoint(self):
        rows = self.db.query("SELECT cursor FROM {schema}.stellar_events_checkpoints WHERE pipeline = 'main'")
        return rows[0][0] if rows else None

    @inlineCallbacks
    def test_outageAndRestart(self):
        """
        While the database is unreachable the source is paused by backpressure (nothing is
        dropped); afterwards every event is stored exactly once, the checkpoint is the last
        cursor, and a restarted pipeline resumes after it.
        """
        pipeline, source, consumer, memory = self.pipeline(300)
        pipeline.startService()
        self.addCleanup(pipeline.stopService)
        yield waitUntil(reactor, lambda: consumer.ready, what="the connection")
        yield waitUntil(reactor, lambda: self.stored()[0] >= 50, what="the first rows")

        yield self.proxy.refuse()
        yield waitUntil(reactor, lambda: not consumer.ready, what="the outage to be noticed")
        yield sleep(reactor, 0.2)
        delivered = pipeline.delivered
        yield sleep(reactor, 0.3)
        self.assertEqual(pipeline.delivered, delivered, "the source kept producing during the outage")
        self.assertLess(delivered, 300)
        self.assertEqual(pipeline.unacknowledged, 4)
        self.assertLessEqual(consumer.pending, 40)
        self.assertIsNotNone(source.waiting)
        self.assertNoResult(source.waiting)

        self.proxy.accept()
        yield waitUntil(reactor, lambda: pipeline.committed == itemId(300), what="the last checkpoint")
        self.assertEqual(self.stored(), (300, 300, itemId(1), itemId(300)))
        self.assertEqual(self.checkpoint(), itemId(300))
        self.assertEqual(len(memory.messages), 300)
        yield pipeline.stopService()

        # Restart: a new consumer loads the checkpoint, the source continues after it.
        pipeline, source, consumer, memory = self.pipeline(330)
        yield pipeline.startService()
        self.addCleanup(pipeline.stopService)
        self.assertEqual(source.checkpoint.cursor, itemId(300))
        yield waitUntil(reactor, lambda: pipeline.committed == itemId(330), what="the resumed run")
        self.assertEqual(self.stored(), (330, 330, itemId(1), itemId(330)))
        self.assertEqual([m["id"] for m in memory.messages], [itemId(n) for n in range(301, 331)])

    @inlineCallbacks
    def test_databaseDownAtStart(self):
        """
        The pipeline starts its source only once PostgreSQL answered with the checkpoint.
        """
        yield self.proxy.refuse()
        pipeline, source, consumer, memory = self.pipeline(30)
        started = pipeline.startService()
        self.addCleanup(pipeline.stopService)
        yield waitUntil(reactor, lambda: consumer.connectFailures >= 2, what="failed attempts")
        self.assertFalse(source.started)
        self.assertNoResult(started)
        self.proxy.accept()
        yield started
        self.assertTrue(source.started)
        self.assertIsNone(source.checkpoint)
        yield waitUntil(reactor, lambda: pipeline.committed == itemId(30), what="all events")
        self.assertEqual(self.stored(), (30, 30, itemId(1), itemId(30)))
