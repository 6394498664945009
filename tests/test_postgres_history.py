"""
Tests for L{stellarflow.postgres.history}: the events table read back in id order, against a
real PostgreSQL (skipped without the test server; failed under ``CI=true``).

Messages are the real processor's output for the RPC test server's synthetic traffic (token
events with CAP-67 map data, oracle maps, system events), so what is checked is that a replayed
message is byte for byte the one streamed live.
"""

import datetime
import json

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from stellarflow.batch import Batch
from stellarflow.events.network import PUBLIC
from stellarflow.events.processor import GetEventsRPC
from stellarflow.interfaces import IEventHistory
from stellarflow.meta import ledgerMessages
from stellarflow.positions import before
from stellarflow.postgres.history import HistoryUnavailable, PostgresHistory, formatTime, messageFromRow
from stellarflow.postgres.rows import toRow
from stellarflow.postgres.schema import TableNames
from stellarflow.postgres.testing import TemporarySchema, closedPort, waitUntil
from stellarflow.testing.ledgerfiles import fixtureLedgers
from stellarflow.testing.rpcserver import StellarRPCResource
from stellarflow.websocket.messages import encode

FIRST_LEDGER = 7000
#: A recorded pubnet ledger with payments and trades.
PUBNET_LEDGER = "galexie-pubnet-53312000.xdr.zstd"


def trafficMessages(ledgers=range(FIRST_LEDGER, FIRST_LEDGER + 40), seed=11):
    """
    The GetEventsRPC messages of the test server's events in C{ledgers}, in id order.
    """
    server = StellarRPCResource(Clock(), seed=seed, events_per_ledger=5, first_ledger=FIRST_LEDGER, history=100)
    raw = [e.asDict() for ledger in ledgers for e in server.eventsInLedger(ledger)]
    return GetEventsRPC("testnet").process(raw)


class FormatTests(SynchronousTestCase):
    def test_formatTime(self):
        utc = datetime.timezone.utc
        self.assertEqual(formatTime(datetime.datetime(2026, 7, 21, 18, 1, 10, tzinfo=utc)), "2026-07-21T18:01:10Z")
        plus2 = datetime.timezone(datetime.timedelta(hours=2))
        self.assertEqual(formatTime(datetime.datetime(2026, 7, 21, 20, 1, 10, 250000, tzinfo=plus2)),
                         "2026-07-21T18:01:10.25Z")
        self.assertIsNone(formatTime(None))


class HistoryTests(TestCase):
    timeout = 30

    def setUp(self):
        self.db = TemporarySchema(self)
        self.messages = trafficMessages()
        self.assertGreater(len(self.messages), 150)
        self.consumer = self.db.consumer(reactor, pipeline="main", batch_size=100)
        self.addCleanup(self.consumer.stop)
        self.consumer.start()
        self.history = self.consumer.eventHistory()

    @inlineCallbacks
    def store(self, messages, pageSize=50):
        """Write C{messages} through the consumer, a page per batch (cursor: the last id)."""
        for start in range(0, len(messages), pageSize):
            page = messages[start : start + pageSize]
            yield self.consumer.consume(Batch(items=[], messages=page, cursor=page[-1]["id"]))

    @inlineCallbacks
    def readAll(self, after, upto, limit=37):
        events = []
        while True:
            page, complete = yield self.history.read(after, upto, limit)
            events.extend(page)
            if len(page) < limit:
                return events, complete
            after = page[-1][0]

    def test_interface(self):
        verifyObject(IEventHistory, self.history)
        self.assertIs(self.consumer.eventHistory(), self.history)

    @inlineCallbacks
    def test_replayEqualsLive(self):
        """
        Read in pages, every event comes back in id order as exactly the bytes the WebSocket
        server streamed live (so equal field for field too).
        """
        yield self.store(self.messages)
        ids = [m["id"] for m in self.messages]
        events, complete = yield self.readAll(before(ids[0]), ids[-1])
        self.assertTrue(complete)
        self.assertEqual([i for i, _ in events], ids)
        for (id_, payload), message in zip(events, self.messages):
            self.assertEqual(payload, encode(message), id_)
            self.assertEqual(json.loads(payload), message)
        kinds = {m.get("event_type") for m in self.messages}
        self.assertTrue({"transfer", "fee", None} <= kinds, kinds)

    @inlineCallbacks
    def test_paymentsAndTradesReplayed(self):
        """
        Payments and trades (stored in their own tables) are replayed with the contract events,
        in id order, as the bytes streamed live; counted too.
        """
        ledger = ledgerMessages(fixtureLedgers(PUBNET_LEDGER)[0], PUBLIC)
        self.assertEqual({m["type"] for m in ledger}, {"payment", "trade"})
        mixed = sorted(self.messages + ledger, key=lambda m: m["id"])
        yield self.store(mixed)
        stored = self.db.query("SELECT count(*) FROM {schema}.stellar_events_trades")
        self.assertEqual(stored, [(sum(m["type"] == "trade" for m in ledger),)])
        ids = [m["id"] for m in mixed]
        events, complete = yield self.readAll(before(ids[0]), ids[-1])
        self.assertTrue(complete)
        self.assertEqual([i for i, _ in events], ids)
        self.assertEqual([payload for _, payload in events], [encode(m) for m in mixed])
        count = yield self.history.count(before(ids[0]), ids[-1], 10 ** 6)
        self.assertEqual(count, len(mixed))
        oldest = yield self.history.oldest()
        self.assertEqual(oldest, ids[0])

    @inlineCallbacks
    def test_boundsAndCount(self):
        """
        after is exclusive, upto inclusive; count stops at its limit.
        """
        yield self.store(self.messages)
        ids = [m["id"] for m in self.messages]
        page, _ = yield self.history.read(ids[10], ids[20], 100)
        self.assertEqual([i for i, _ in page], ids[11:21])
        page, _ = yield self.history.read(ids[10], ids[20], 3)
        self.assertEqual([i for i, _ in page], ids[11:14])
        count = yield self.history.count(ids[10], ids[20], 100)
        self.assertEqual(count, 10)
        count = yield self.history.count(before(ids[0]), ids[-1], 25)
        self.assertEqual(count, 25)
        oldest = yield self.history.oldest()
        self.assertEqual(oldest, ids[0])

    @inlineCallbacks
    def test_empty(self):
        yield waitUntil(reactor, lambda: self.consumer.ready, what="the schema")
        oldest = yield self.history.oldest()
        self.assertIsNone(oldest)
        page, complete = yield self.history.read("0000000000000000000-0000000000", "0000000000000000009-0000000000", 10)
        self.assertEqual((page, complete), ([], False))

    @inlineCallbacks
    def test_completeFollowsCheckpoint(self):
        """
        A page is complete up to a position only when the pipeline's checkpoint (committed with
        the events) has reached it: fewer rows then means there are no more.
        """
        half = len(self.messages) // 2
        yield self.store(self.messages[:half])
        ids = [m["id"] for m in self.messages]
        page, complete = yield self.history.read(ids[half - 5], ids[-1], 100)
        self.assertEqual(len(page), 4)
        self.assertFalse(complete)
        page, complete = yield self.history.read(ids[half - 5], ids[half - 1], 100)
        self.assertTrue(complete)

    @inlineCallbacks
    def test_rowsFromBeforeMessageColumn(self):
        """
        Rows written before schema version 2 (no message text) are rebuilt from their columns:
        equal field for field for the processor's messages.
        """
        yield self.store(self.messages)
        self.db.execute("UPDATE {}.stellar_events SET message = NULL".format(self.db.name))
        ids = [m["id"] for m in self.messages]
        events, _ = yield self.readAll(before(ids[0]), ids[-1])
        self.assertEqual([i for i, _ in events], ids)
        for (id_, payload), message in zip(events, self.messages):
            self.assertEqual(json.loads(payload), message, id_)

    @inlineCallbacks
    def test_storeMessageOff(self):
        """
        With store_message false the message column stays NULL and replays rebuild the
        messages from the columns.
        """
        consumer = self.db.consumer(reactor, pipeline="other", table="lean_events", store_message=False)
        self.addCleanup(consumer.stop)
        consumer.start()
        messages = self.messages[:60]
        yield consumer.consume(Batch(items=[], messages=messages, cursor=messages[-1]["id"]))
        self.assertEqual(self.db.query("SELECT count(message) FROM {schema}.lean_events"), [(0,)])
        page, complete = yield consumer.eventHistory().read(before(messages[0]["id"]), messages[-1]["id"], 100)
        self.assertTrue(complete)
        self.assertEqual([json.loads(p) for _, p in page], messages)

    @inlineCallbacks
    def test_rejectedEventsIncluded(self):
        """
        An event PostgreSQL refused (kept in the dead-letter table) is replayed in its place.
        """
        messages = [dict(m) for m in self.messages[:30]]
        for i in (7, 9, 25):
            messages[i]["transaction_hash"] = "bad\x00hash"
        yield self.store(messages)
        self.assertEqual(self.consumer.rejected, 3)
        ids = [m["id"] for m in messages]
        events, complete = yield self.readAll(before(ids[0]), ids[-1], limit=8)
        self.assertEqual([i for i, _ in events], ids)
        self.assertEqual(json.loads(events[7][1]), messages[7])
        page, _ = yield self.history.read(ids[5], ids[-1], 3)
        self.assertEqual([i for i, _ in page], ids[6:9])
        count = yield self.history.count(before(ids[0]), ids[-1], 100)
        self.assertEqual(count, 30)

    @inlineCallbacks
    def test_reconnects(self):
        """
        A read on a connection the server killed fails; the next one opens a new connection.
        """
        yield self.store(self.messages[:10])
        oldest = yield self.history.oldest()
        self.assertEqual(oldest, self.messages[0]["id"])
        # The backends are gone when terminate() returns, and the read is sent in the same
        # reactor turn: before the reader could notice, on the dead connection.
        self.assertGreaterEqual(self.db.terminate(wait=True), 1)
        with self.assertRaises(HistoryUnavailable) as caught:
            yield self.history.oldest()
        self.assertIn("PostgreSQL at {}: ".format(self.history.where), str(caught.exception))
        oldest = yield self.history.oldest()
        self.assertEqual(oldest, self.messages[0]["id"])
        yield waitUntil(reactor, lambda: self.consumer.ready, what="the consumer's reconnection")

    @inlineCallbacks
    def test_idleDeathNoticed(self):
        """
        A reader connection the server ends while idle is dropped at once: the next read opens
        a new one and succeeds.
        """
        yield self.store(self.messages[:10])
        yield self.history.oldest()
        self.assertGreaterEqual(self.db.terminate(), 1)
        yield waitUntil(reactor, lambda: not self.history.keeper.ready, what="the loss to be noticed")
        oldest = yield self.history.oldest()
        self.assertEqual(oldest, self.messages[0]["id"])

    @inlineCallbacks
    def test_closed(self):
        yield self.store(self.messages[:10])
        yield self.consumer.stop()
        with self.assertRaises(HistoryUnavailable):
            yield self.history.oldest()


class UnreachableTests(TestCase):
    timeout = 10

    @inlineCallbacks
    def test_unreachable(self):
        """
        A read while the server is unreachable fails with HistoryUnavailable, without the
        password in its text.
        """
        dsn = "host=127.0.0.1 port={} dbname=x user=u password=sekrit-pw".format(closedPort(reactor))
        history = PostgresHistory(reactor, dsn, TableNames("stellar_events"), "main", connectTimeout=2)
        self.addCleanup(history.close)
        with self.assertRaises(HistoryUnavailable) as caught:
            yield history.oldest()
        self.assertNotIn("sekrit-pw", str(caught.exception))
        self.assertIn("127.0.0.1", str(caught.exception))


class MessageColumnTests(SynchronousTestCase):
    def test_sameBytesAsStreamed(self):
        """
        The message column holds the WebSocket payload itself, non-ASCII and control
        characters included (escaped, so PostgreSQL accepts it).
        """
        message = dict(trafficMessages(range(FIRST_LEDGER, FIRST_LEDGER + 1))[0], topics=["caf\u00e9 \u20ac", "a\x00b"])
        self.assertEqual(toRow(message)[-1].encode("ascii"), encode(message))


class MessageFromRowTests(SynchronousTestCase):
    def test_undecodable(self):
        """
        A failed event's raw XDR comes back from ``extra``, after ``decode_error``.
        """
        row = (
            "0000000000000000001-0000000000", 5, None, None, "C1", None, None, None, "contract",
            "contract_event", [], None, None, None, None, None, None, None, None, None, None, None,
            "value: bad", {"topics_xdr": ["AAAA"], "data_xdr": "AAAB"},
        )
        message = messageFromRow(row)
        self.assertEqual(
            list(message),
            ["type", "id", "ledger", "ledger_closed_at", "transaction_hash", "contract_id",
             "operation_index", "transaction_index", "in_successful_contract_call", "event_kind",
             "topics", "data", "decode_error", "topics_xdr", "data_xdr"],
        )
        self.assertEqual(message["data_xdr"], "AAAB")
