"""
Tests for L{stellarflow.postgres.consumer.SaveToPostgreSQL} against a real PostgreSQL, on the
real reactor, including outages played by L{FlakyProxy} and ``pg_terminate_backend``.

The server is ``STELLARFLOW_TEST_DSN`` or 127.0.0.1:5432 (user postgres, database test); each
test works in its own schema.  Unreachable server: skipped, or failed under ``CI=true``.
"""

from decimal import Decimal

from psycopg2.extensions import make_dsn
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from stellarflow.batch import Batch
from stellarflow.events.processor import GetEventsRPC
from stellarflow.interfaces import ICheckpointStore, IConsumer
from stellarflow.pipeline import ComponentContext
from stellarflow.postgres import SaveToPostgreSQL
from stellarflow.postgres.testing import (
    FlakyProxy,
    TemporarySchema,
    closedPort,
    connect,
    sleep,
    testDSN,
    waitUntil,
)
from stellarflow.testing.fixtures import loadRPCResult

NASTY_PASSWORD = "s3cr et'\"pa ss\\word"


def eventId(n):
    return "%019d-%010d" % (n << 12, 1)


def message(n, **overrides):
    """
    A token transfer message shaped like the GetEventsRPC processor's output.
    """
    m = {
        "type": "contract_event",
        "id": eventId(n),
        "ledger": 3727845 + n,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "a5c9%060d" % n,
        "contract_id": "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC",
        "operation_index": 0,
        "transaction_index": n % 7,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": ["transfer", "GAFROM", "GBTO", "native"],
        "data": str(123456789 + n),
        "event_type": "transfer",
        "from": "GAFROM",
        "to": "GBTO",
        "account_ids": ["GAFROM", "GBTO"],
        "asset_code": "XLM",
        "asset_issuer": None,
        "amount": "12.3456789",
        "amount_raw": "123456789",
        "asset_verified": True,
        "to_muxed_id": None,
    }
    m.update(overrides)
    return m


#: A classic path payment and a trade, as stellarflow.meta.messages makes them.
PAYMENT_MESSAGE = {
    "type": "payment",
    "id": "%019d-%010d" % (3727846 << 32 | 2 << 12, 3 << 30),
    "ledger": 3727846,
    "ledger_closed_at": "2026-07-21T18:01:15Z",
    "transaction_hash": "b7%062d" % 1,
    "transaction_index": 2,
    "operation_index": 0,
    "operation_type": "path_payment_strict_send",
    "memo_type": "text",
    "memo": "rent\tmay",
    "from": "GAFROM",
    "from_muxed": "MAFROM",
    "from_muxed_id": "42",
    "to": "GBTO",
    "asset_code": "USDC",
    "asset_issuer": "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN",
    "amount": "10.5000000",
    "source_asset_code": "XLM",
    "source_asset_issuer": None,
    "source_amount": "100.0000000",
}
TRADE_MESSAGE = {
    "type": "trade",
    "id": "%019d-%010d" % (3727846 << 32 | 2 << 12, 1 << 31),
    "ledger": 3727846,
    "ledger_closed_at": "2026-07-21T18:01:15Z",
    "transaction_hash": "b7%062d" % 1,
    "transaction_index": 2,
    "operation_index": 0,
    "operation_type": "path_payment_strict_send",
    "trade_type": "orderbook",
    "seller": "GSELLER",
    "liquidity_pool_id": None,
    "offer_id": 123456789012,
    "buyer": "GAFROM",
    "buyer_offer_id": None,
    "sold_asset_code": "USDC",
    "sold_asset_issuer": "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN",
    "sold_amount": "10.5000000",
    "bought_asset_code": "XLM",
    "bought_asset_issuer": None,
    "bought_amount": "100.0000000",
    "price": {"n": "200", "d": "21"},
}


def batch(numbers, cursor=True, **overrides):
    messages = [message(n, **overrides) for n in numbers]
    position = None
    if cursor:
        position = messages[-1]["id"] if messages else "empty"
    return Batch(items=list(numbers), cursor=position, messages=messages)


class LogCapture:
    """
    Every log event emitted while the test runs, formatted.
    """

    def __init__(self, testCase):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        testCase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def text(self):
        return "\n".join((formatEvent(e) or "") + " " + repr(e) for e in self.events)


class ConsumerTestCase(TestCase):
    timeout = 30

    def setUp(self):
        self.db = TemporarySchema(self)
        self.logs = LogCapture(self)

    def consumer(self, **kwargs):
        consumer = self.db.consumer(reactor, **kwargs)
        self.addCleanup(consumer.stop)
        return consumer

    @inlineCallbacks
    def started(self, **kwargs):
        consumer = self.consumer(**kwargs)
        yield consumer.start()
        yield consumer.load(consumer.pipeline)
        return consumer

    def ids(self):
        return [r[0] for r in self.db.query("SELECT id FROM {schema}.stellar_events ORDER BY id")]

    def checkpoint(self, pipeline="test"):
        rows = self.db.query("SELECT cursor FROM {schema}.stellar_events_checkpoints WHERE pipeline = %s", (pipeline,))
        return rows[0][0] if rows else None

    def assertExactlyOnce(self, numbers):
        self.assertEqual(self.ids(), sorted(eventId(n) for n in numbers))


class WriteTests(ConsumerTestCase):
    def test_interfaces(self):
        consumer = self.consumer()
        verifyObject(IConsumer, consumer)
        verifyObject(ICheckpointStore, consumer)

    @inlineCallbacks
    def test_batchInsert(self):
        """
        A batch's rows and cursor are committed before its Deferred fires; values are exact.
        """
        consumer = yield self.started()
        extra = message(2, decode_error="bad", topics_xdr=["AAAA"], data={"amount": "5", "to_muxed_id": "7"})
        huge = message(1, amount="170141183460469231731.6873303715884105727")
        b = Batch(items=[1, 2], cursor=eventId(2), messages=[huge, extra])
        d = consumer.consume(b)
        self.assertNoResult(d)
        yield d
        # Visible from another connection: committed.
        self.assertExactlyOnce([1, 2])
        self.assertEqual(self.checkpoint(), eventId(2))
        row = self.db.query(
            "SELECT ledger, ledger_closed_at, amount, amount_raw, account_ids, topics, data, from_account, "
            "asset_issuer, type, event_type, extra, decode_error FROM {schema}.stellar_events WHERE id = %s",
            (eventId(1),),
        )[0]
        self.assertEqual(row[0], 3727846)
        self.assertEqual(row[1].isoformat(), "2026-07-21T18:01:10+00:00")
        self.assertEqual(row[2], Decimal("170141183460469231731.6873303715884105727"))
        self.assertEqual(row[3], Decimal(123456789))
        self.assertEqual(row[4], ["GAFROM", "GBTO"])
        self.assertEqual(row[5], ["transfer", "GAFROM", "GBTO", "native"])
        self.assertEqual(row[6], "123456790")
        self.assertEqual(row[7:11], ("GAFROM", None, "contract_event", "transfer"))
        self.assertIsNone(row[11])
        row = self.db.query(
            "SELECT extra, decode_error, data FROM {schema}.stellar_events WHERE id = %s", (eventId(2),)
        )[0]
        self.assertEqual(row, ({"topics_xdr": ["AAAA"]}, "bad", {"amount": "5", "to_muxed_id": "7"}))
        self.assertEqual((consumer.inserted, consumer.duplicates, consumer.rejected, consumer.pending), (2, 0, 0, 0))

    @inlineCallbacks
    def test_duplicateDelivery(self):
        """
        Redelivered events (a whole batch, or an id twice in one batch) are stored once.
        """
        consumer = yield self.started()
        yield consumer.consume(batch([1, 2, 3]))
        yield consumer.consume(batch([1, 2, 3]))
        yield consumer.consume(batch([3, 4, 4]))
        self.assertExactlyOnce([1, 2, 3, 4])
        self.assertEqual((consumer.inserted, consumer.duplicates), (4, 5))

    @inlineCallbacks
    def test_chunks(self):
        """
        A batch larger than batch_size is written in several INSERTs of one transaction.
        """
        consumer = yield self.started(batch_size=3)
        yield consumer.consume(batch(range(10)))
        self.assertExactlyOnce(range(10))
        self.assertEqual(self.db.query("SELECT count(DISTINCT xmin::text) FROM {schema}.stellar_events"), [(1,)])

    @inlineCallbacks
    def test_accumulates(self):
        """
        Small batches wait (up to flush_interval) and are committed together once batch_size
        rows are queued; each Deferred fires after that commit.
        """
        consumer = yield self.started(batch_size=6, flush_interval=30)
        first = consumer.consume(batch([1, 2]))
        second = consumer.consume(batch([3, 4]))
        yield sleep(reactor, 0.1)
        self.assertNoResult(first)
        self.assertEqual(self.ids(), [])
        third = consumer.consume(batch([5, 6]))
        yield third
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertExactlyOnce(range(1, 7))
        self.assertEqual(self.db.query("SELECT count(DISTINCT xmin::text) FROM {schema}.stellar_events"), [(1,)])
        self.assertEqual(self.checkpoint(), eventId(6))

    @inlineCallbacks
    def test_flushInterval(self):
        consumer = yield self.started(batch_size=500, flush_interval=0.2)
        start = reactor.seconds()
        yield consumer.consume(batch([1]))
        self.assertGreaterEqual(reactor.seconds() - start, 0.15)
        self.assertExactlyOnce([1])

    @inlineCallbacks
    def test_emptyBatchMovesCheckpoint(self):
        consumer = yield self.started()
        yield consumer.consume(Batch(items=[], cursor="0000000000000000099-0000000000", messages=[]))
        self.assertEqual(self.checkpoint(), "0000000000000000099-0000000000")

    @inlineCallbacks
    def test_stopFlushes(self):
        consumer = yield self.started(flush_interval=30)
        d = consumer.consume(batch([1, 2]))
        yield consumer.stop()
        self.successResultOf(d)
        self.assertExactlyOnce([1, 2])
        self.assertFalse(consumer.ready)


class CheckpointTests(ConsumerTestCase):
    @inlineCallbacks
    def test_resumeAfterCrash(self):
        """
        The cursor committed with the last batch is what a new instance loads, although the
        pipeline never called save() (it crashed right after the commit).
        """
        first = yield self.started()
        self.assertIsNone((yield first.load("test")))
        yield first.consume(batch([1, 2]))
        yield first.consume(batch([3]))
        first.names = None  # nothing may use it any more: the "crash"
        second = yield self.started()
        self.assertEqual((yield second.load("test")), eventId(3))
        self.assertIsNone((yield second.load("other pipeline")))

    @inlineCallbacks
    def test_save(self):
        """
        save() of a cursor written with its batch does nothing; another is upserted.
        """
        consumer = yield self.started()
        yield consumer.consume(batch([1, 2]))
        self.db.execute("UPDATE {}.stellar_events_checkpoints SET cursor = 'tampered'".format('"' + self.db.name + '"'))
        yield consumer.save("test", eventId(2))
        self.assertEqual(self.checkpoint(), "tampered")
        yield consumer.save("test", "new-cursor")
        self.assertEqual(self.checkpoint(), "new-cursor")
        yield consumer.save("other", "x")
        self.assertEqual(self.checkpoint("other"), "x")
        self.assertEqual((yield consumer.load("test")), "new-cursor")


class RejectedRowTests(ConsumerTestCase):
    @inlineCallbacks
    def test_badRowsGoToDeadLetters(self):
        """
        Rows PostgreSQL refuses are isolated and stored as dead letters; the rest of the batch,
        and its checkpoint, are committed, and the batch is acknowledged.
        """
        consumer = yield self.started(batch_size=4)
        messages = [
            message(1),
            message(2, topics=["nul\x00in json"]),  # refused by the server (jsonb)
            message(3),
            message(4, asset_code="X\x00"),  # refused by psycopg2 (NUL in a string literal)
            message(5, amount="1e999999"),  # beyond NUMERIC
            message(6, ledger=2**70),  # beyond bigint
            message(7, ledger_closed_at="not a time"),
            message(8),
            {"type": "contract_event", "id": None, "decode_error": "no id"},
            message(9, data=float("nan")),  # not JSON
        ]
        yield consumer.consume(Batch(items=[], cursor="c1", messages=messages))
        self.assertExactlyOnce([1, 3, 8])
        self.assertEqual(self.checkpoint(), "c1")
        rejected = dict(self.db.query("SELECT id, error FROM {schema}.stellar_events_rejected"))
        self.assertEqual(len(rejected), 7)
        for n in (2, 4, 5, 6, 7, 9):
            self.assertIn(eventId(n), rejected)
        self.assertIn("out of range", rejected[eventId(6)])
        self.assertIn("NUL", rejected[eventId(4)])
        text = dict(self.db.query("SELECT id, message FROM {schema}.stellar_events_rejected"))[eventId(2)]
        self.assertIn("nul\\\\u0000in json", text.replace("\\u0000", "\\\\u0000"))
        self.assertEqual((consumer.inserted, consumer.rejected), (3, 7))
        for n in (2, 4, 5, 6, 7, 9):
            self.assertIn("PostgreSQL refused event " + eventId(n), self.logs.text())
        # Redelivered: no duplicate anywhere.
        yield consumer.consume(Batch(items=[], cursor="c1", messages=messages))
        self.assertExactlyOnce([1, 3, 8])
        self.assertEqual(self.db.query("SELECT count(*) FROM {schema}.stellar_events_rejected"), [(7,)])


class OutageTests(ConsumerTestCase):
    def proxy(self):
        proxy = FlakyProxy(reactor)
        proxy.accept()
        self.addCleanup(proxy.stop)
        return proxy

    @inlineCallbacks
    def test_terminatedMidStream(self):
        """
        Backends killed with pg_terminate_backend while transactions are in flight: every event
        ends up stored exactly once and every batch is acknowledged.
        """
        consumer = yield self.started(batch_size=20)
        acks = []
        killed = 0
        for i in range(20):
            numbers = range(i * 20, i * 20 + 20)
            acks.append(consumer.consume(batch(numbers)))  # full: its flush starts now
            if i % 5 == 2:
                killed += self.db.terminate()
            yield sleep(reactor, 0.01)
        self.assertGreater(killed, 0)
        yield waitUntil(reactor, lambda: all(d.called for d in acks), what="all acknowledgements")
        self.assertExactlyOnce(range(400))
        self.assertEqual(self.checkpoint(), eventId(399))
        self.assertIn("Lost the PostgreSQL connection", self.logs.text())

    @inlineCallbacks
    def test_idleConnectionTerminated(self):
        consumer = yield self.started()
        yield consumer.consume(batch([1]))
        self.assertEqual(self.db.terminate(), 2)  # both writer connections
        yield waitUntil(reactor, lambda: not consumer.ready, what="the loss to be noticed")
        yield waitUntil(reactor, lambda: consumer.ready, what="the reconnection")
        yield consumer.consume(batch([2]))
        self.assertExactlyOnce([1, 2])

    @inlineCallbacks
    def test_refusedAtStart(self):
        """
        start() succeeds while the server refuses connections; load() and the acks wait;
        once connections are accepted everything proceeds.
        """
        proxy = self.proxy()
        yield proxy.refuse()
        consumer = self.consumer(dsn=proxy.dsn())
        yield consumer.start()
        loaded = consumer.load("test")
        acked = consumer.consume(batch([1, 2]))
        yield waitUntil(reactor, lambda: consumer.connectFailures >= 2, what="failed attempts")
        self.assertNoResult(loaded)
        self.assertNoResult(acked)
        self.assertIn("Cannot use PostgreSQL at", self.logs.text())
        self.assertIn("holds the position of pipeline", self.logs.text())
        proxy.accept()
        self.assertIsNone((yield loaded))
        yield acked
        self.assertExactlyOnce([1, 2])

    @inlineCallbacks
    def test_closedPortStopsCleanly(self):
        consumer = self.consumer(dsn=make_dsn(testDSN(), host="127.0.0.1", port=closedPort(reactor)))
        yield consumer.start()
        acked = consumer.consume(batch([1]))
        yield waitUntil(reactor, lambda: consumer.connectFailures >= 1, what="a failed attempt")
        yield consumer.stop()
        self.assertNoResult(acked)
        self.assertIn("1 event(s) not written", self.logs.text())

    @inlineCallbacks
    def test_cutMidStream(self):
        """
        The network path dies and refuses for a while: batches are held, not acknowledged,
        then written exactly once.
        """
        proxy = self.proxy()
        consumer = yield self.started(dsn=proxy.dsn(), batch_size=10)
        yield consumer.consume(batch(range(10)))
        self.assertEqual(proxy.cut(), 2)  # both writer connections
        yield proxy.refuse()
        held = [consumer.consume(batch(range(10 * i, 10 * i + 10))) for i in range(1, 5)]
        yield sleep(reactor, 0.3)
        for d in held:
            self.assertNoResult(d)
        self.assertEqual(consumer.pending, 40)
        proxy.accept()
        for d in held:
            yield d
        self.assertExactlyOnce(range(50))
        self.assertEqual(self.checkpoint(), eventId(49))

    @inlineCallbacks
    def test_stalledNetwork(self):
        """
        A server that stops answering (no RST, no FIN) is given up after query_timeout and the
        connection rebuilt once the path works again.
        """
        proxy = self.proxy()
        consumer = yield self.started(dsn=proxy.dsn(), query_timeout=0.3, connect_timeout=0.3)
        proxy.stall()
        acked = consumer.consume(batch([1, 2]))
        yield waitUntil(reactor, lambda: "did not finish a transaction within" in self.logs.text(), what="the timeout")
        self.assertNoResult(acked)
        proxy.unstall()
        yield acked
        self.assertExactlyOnce([1, 2])

    @inlineCallbacks
    def test_maxPending(self):
        """
        Beyond max_pending events, batches are parked and their acknowledgements withheld; they
        are written, in order, once the database is back.
        """
        proxy = self.proxy()
        consumer = yield self.started(dsn=proxy.dsn(), max_pending=10, batch_size=100)
        yield proxy.refuse()
        acks = []
        order = []
        for i in range(6):
            d = consumer.consume(batch(range(4 * i, 4 * i + 4)))
            d.addCallback(lambda _, i=i: order.append(i))
            acks.append(d)
        yield sleep(reactor, 0.2)
        self.assertEqual(consumer.pending, 8)
        self.assertEqual(consumer.parked, 4)
        self.assertEqual(order, [])
        self.assertIn("max_pending 10", self.logs.text())
        proxy.accept()
        yield waitUntil(reactor, lambda: len(order) == 6, what="all acknowledgements")
        self.assertEqual(order, list(range(6)))
        self.assertExactlyOnce(range(24))
        self.assertEqual(self.checkpoint(), eventId(23))
        self.assertEqual(consumer.pending, 0)

    @inlineCallbacks
    def test_passwordNeverLogged(self):
        """
        A password with spaces and quotes makes a valid DSN; it appears in no log event,
        neither while the server refuses nor once connected.
        """
        proxy = self.proxy()
        yield proxy.refuse()
        config, problems = SaveToPostgreSQL.configSchema.validate(
            {"dsn": proxy.dsn(), "password": NASTY_PASSWORD, "schema": self.db.name}
        )
        self.assertEqual(list(problems), [])
        consumer = SaveToPostgreSQL.fromConfig(config, ComponentContext(reactor=reactor, pipeline="test"))
        consumer.backoff.initial = consumer.backoff.maximum = 0.05
        self.addCleanup(consumer.stop)
        yield consumer.start()
        yield waitUntil(reactor, lambda: consumer.connectFailures >= 2, what="failed attempts")
        proxy.accept()
        yield consumer.load("test")
        yield consumer.consume(batch([1]))
        self.assertExactlyOnce([1])
        text = self.logs.text()
        self.assertIn("Cannot use PostgreSQL", text)
        self.assertIn("Connected to PostgreSQL", text)
        self.assertNotIn(NASTY_PASSWORD, text)
        self.assertNotIn("pa ss", text)


class RecordedEventsTests(ConsumerTestCase):
    """
    Real getEvents pages (the shared fixtures), decoded by the GetEventsRPC processor, stored
    without loss.
    """

    FIXTURES = (
        "docs-2023-native-xlm-transfer-events-legacy-value-object",
        "docs-2024-native-xlm-transfer-events-g-to-g",
        "docs-2025-native-xlm-transfer-events-pagingtoken",
        "docs-2026-any-events-fee-base64",
        "docs-2026-native-xlm-transfer-events-base64",
        "docs-2025-any-events-reflector-oracle",
        "javasdk-events-contract-system-diagnostic",
        "pysdk-2025-fee-events-testnet",
    )

    @inlineCallbacks
    def test_fixtures(self):
        processor = GetEventsRPC("testnet")
        messages = []
        for name in self.FIXTURES:
            messages.extend(processor.process(loadRPCResult(name)["events"]))
        consumer = yield self.started()
        yield consumer.consume(Batch(items=[], cursor="end", messages=messages))
        self.assertEqual(consumer.rejected, 0)
        rows = {
            r[0]: r[1:]
            for r in self.db.query(
                "SELECT id, ledger, contract_id, topics, data, event_type, amount::text, amount_raw, account_ids, "
                "asset_code, asset_issuer FROM {schema}.stellar_events"
            )
        }
        self.assertEqual(sorted(rows), sorted({m["id"] for m in messages}))
        tokens = 0
        for m in messages:
            ledger, contract, topics, data, eventType, amount, raw, accounts, code, issuer = rows[m["id"]]
            self.assertEqual((ledger, contract, topics, data), (m["ledger"], m["contract_id"], m["topics"], m["data"]))
            self.assertEqual(
                (eventType, accounts, code, issuer),
                (m.get("event_type"), m.get("account_ids"), m.get("asset_code"), m.get("asset_issuer")),
            )
            if m.get("amount") is not None:
                tokens += 1
                self.assertEqual(amount, m["amount"])  # exact, digit for digit
                self.assertEqual(raw, Decimal(m["amount_raw"]))
        self.assertGreater(tokens, 8)


class PipelinedWriterTests(ConsumerTestCase):
    """
    With two writer connections (the default) the next flush is written while the one before
    commits, and never commits before it.  The first flush is stalled by another session
    holding the checkpoint row, which its upsert waits for.
    """

    @inlineCallbacks
    def stalled(self):
        """
        A consumer with a checkpoint row, that row locked by another session, and a flush of
        10..19 waiting for the lock; returns C{(consumer, its Deferred, the holder)}.
        """
        consumer = yield self.started(batch_size=10)
        yield consumer.consume(batch(range(10)))
        holder = connect()
        holder.autocommit = False  # the lock lasts until holder.rollback()
        self.addCleanup(holder.close)
        with holder.cursor() as cur:
            cur.execute(
                'SELECT cursor FROM "{}".stellar_events_checkpoints WHERE pipeline = %s FOR UPDATE'.format(self.db.name),
                ("test",),
            )
        first = consumer.consume(batch(range(10, 20)))
        yield waitUntil(reactor, lambda: self.backends("Lock") == 1, what="the first flush to wait for the lock")
        return consumer, first, holder

    def backends(self, state, select="count(*)"):
        """
        How many of the consumer's connections wait for a lock (C{"Lock"}) or are idle in a
        transaction (C{"idle in transaction"}: the second flush waiting for the first).
        """
        column = "wait_event_type" if state == "Lock" else "state"
        return self.db.query(
            "SELECT {} FROM pg_stat_activity WHERE application_name = %s AND {} = %s".format(select, column),
            (self.db.applicationName, state),
        )[0][0]

    def terminate(self, state):
        """End the server process of the consumer's connection in C{state} (see L{backends})."""
        self.backends(state, select="count(pg_terminate_backend(pid))")

    def secondWaits(self):
        """
        A Deferred firing once a second flush has written its rows and waits for the first.
        """
        return waitUntil(reactor, lambda: self.backends("idle in transaction") == 1, what="the second flush to wait")

    def acknowledged(self, *deferreds):
        order = []
        for n, d in enumerate(deferreds, 1):
            d.addCallback(lambda _, n=n: order.append(n))
        return order

    @inlineCallbacks
    def test_writtenMeanwhileCommittedAfter(self):
        """
        The second flush's rows are written while the first waits, and stay uncommitted and
        unacknowledged until the first commits; then both commit, in order.
        """
        consumer, first, holder = yield self.stalled()
        second = consumer.consume(batch(range(20, 30)))
        yield self.secondWaits()
        self.assertEqual(consumer.pipelined, 1)
        yield sleep(reactor, 0.2)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertExactlyOnce(range(10))
        order = self.acknowledged(first, second)
        holder.rollback()
        yield waitUntil(reactor, lambda: len(order) == 2, what="both acknowledgements")
        self.assertEqual(order, [1, 2])
        self.assertExactlyOnce(range(30))
        self.assertEqual(self.checkpoint(), eventId(29))

    @inlineCallbacks
    def test_firstFailsSecondRollsBack(self):
        """
        The first flush's connection dies while the second waits for it: the second rolls
        back (its events must not be stored past a hole, nor its checkpoint), and both are
        written again, in order, exactly once.
        """
        consumer, first, holder = yield self.stalled()
        second = consumer.consume(batch(range(20, 30)))
        yield self.secondWaits()
        order = self.acknowledged(first, second)
        self.terminate("Lock")  # the first flush's connection
        yield waitUntil(reactor, lambda: not consumer._flushes, what="both flushes to end")
        self.assertEqual(order, [])
        self.assertExactlyOnce(range(10))  # the second rolled back
        self.assertEqual(self.checkpoint(), eventId(9))
        holder.rollback()
        yield waitUntil(reactor, lambda: len(order) == 2, what="both acknowledgements")
        self.assertEqual(order, [1, 2])
        self.assertExactlyOnce(range(30))
        self.assertEqual(self.checkpoint(), eventId(29))
        self.assertEqual(consumer.rolledBack, 1)

    @inlineCallbacks
    def test_secondFailsFirstCommits(self):
        """
        The second flush's connection dies while it waits: the first commits, and the second
        is written again after it.
        """
        consumer, first, holder = yield self.stalled()
        second = consumer.consume(batch(range(20, 30)))
        yield self.secondWaits()
        order = self.acknowledged(first, second)
        self.terminate("idle in transaction")  # the second flush's connection
        yield sleep(reactor, 0.2)
        self.assertEqual(order, [])
        holder.rollback()
        yield waitUntil(reactor, lambda: len(order) == 2, what="both acknowledgements")
        self.assertEqual(order, [1, 2])
        self.assertExactlyOnce(range(30))
        self.assertEqual(self.checkpoint(), eventId(29))

    @inlineCallbacks
    def test_sharedIdsWait(self):
        """
        Rows sharing an id with the flush in flight are not written beside it (each
        transaction would wait for the other's row): they wait, and are stored once.
        """
        consumer, first, holder = yield self.stalled()
        second = consumer.consume(batch(range(15, 25)))
        yield sleep(reactor, 0.2)
        self.assertEqual(consumer.pipelined, 0)
        self.assertEqual(self.backends("idle in transaction"), 0)
        holder.rollback()
        yield first
        yield second
        self.assertExactlyOnce(range(25))
        self.assertEqual(consumer.duplicates, 5)

    @inlineCallbacks
    def test_oneWriterConnection(self):
        """
        C{writer_connections: 1} writes one flush at a time.
        """
        consumer = yield self.started(batch_size=10, writer_connections=1)
        acks = [consumer.consume(batch(range(10 * i, 10 * i + 10))) for i in range(5)]
        for d in acks:
            yield d
        self.assertEqual(consumer.pipelined, 0)
        self.assertExactlyOnce(range(50))
