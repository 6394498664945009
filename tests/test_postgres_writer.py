"""
Tests for L{stellarflow.postgres.writer}: rows, dead letters and the checkpoint of a flush, with
already stored rows skipped and refused rows isolated.  First on a L{FakeCursor} (no server,
every statement visible), then the same SQL on the real server through a blocking psycopg2
cursor, without the consumer.
"""

from decimal import Decimal

import psycopg2
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow.postgres.fakes import FakeCursor, FakeDatabase
from stellarflow.postgres.schema import TableNames, migrate
from stellarflow.postgres.testing import TemporarySchema, connect
from stellarflow.postgres.writer import EventWriter, Rendered, Written
from stellarflow.websocket.messages import encode
from tests.test_postgres_consumer import PAYMENT_MESSAGE, TRADE_MESSAGE, eventId, message


def refuseMarked(row):
    """
    The fake server refuses rows whose transaction hash is "refused".
    """
    return "bad value in row" if row[3] == "refused" else None


def result(d):
    """
    The result of a Deferred that has already fired (the cursors here answer at once).
    """
    box = []
    d.addBoth(box.append)
    value = box[0]
    if hasattr(value, "raiseException"):
        value.raiseException()
    return value


class FakeWriterTests(SynchronousTestCase):
    def setUp(self):
        self.database = FakeDatabase(refuse=refuseMarked)
        self.writer = EventWriter(TableNames("stellar_events", "s"), "main", batchSize=4)

    def write(self, messages, position="c1", careful=False):
        cursor = FakeCursor(self.database)
        written = result(self.writer.write(cursor, [self.writer.render(messages)], position, careful))
        cursor.commit()
        return written, cursor

    def test_render(self):
        """
        Messages that cannot become rows are rejected while rendering, with the reason.
        """
        rendered = self.writer.render(
            [message(1), {"id": None}, message(2, asset_code="X\x00"), message(3, data=float("nan")), message(4)],
        )
        self.assertIsInstance(rendered, Rendered)
        self.assertEqual([m["id"] for m, _, _ in rendered.rows], [eventId(1), eventId(4)])
        self.assertEqual(len(rendered.rejects), 3)
        self.assertIn("no event id", rendered.rejects[0][1])
        self.assertIn("NUL", rendered.rejects[1][1])

    def test_copyThenDeadLettersThenCheckpoint(self):
        """
        The rows go in one COPY under a savepoint (whatever C{batchSize}), then the dead
        letters, then the checkpoint, all on the caller's cursor (its transaction).
        """
        messages = [message(n) for n in range(10)] + [{"id": "", "x": 1}]
        written, cursor = self.write(messages)
        self.assertEqual(written, Written(10, [(messages[-1], "message has no event id")]))
        kinds = [sql.split(b" (")[0] for sql, _ in cursor.statements]
        events = b'COPY "s"."stellar_events"'
        rejected = b'INSERT INTO "s"."stellar_events_rejected"'
        checkpoints = b'INSERT INTO "s"."stellar_events_checkpoints"'
        self.assertEqual(
            kinds, [b"SAVEPOINT sf_copy", events, b"RELEASE SAVEPOINT sf_copy", rejected, checkpoints]
        )
        self.assertEqual(self.database.ids(), [eventId(n) for n in range(10)])
        self.assertEqual(self.database.checkpoints, {"main": "c1"})
        self.assertEqual(len(self.database.deadLetters), 1)

    def test_noCheckpointWithoutPosition(self):
        _, cursor = self.write([message(1)], position=None)
        self.assertEqual(self.database.checkpoints, {})
        self.assertEqual(len(cursor.statements), 3)

    def test_tablesByType(self):
        """
        Payments and trades go to their typed tables, everything else to the events table, in
        one COPY each.
        """
        messages = [message(1), PAYMENT_MESSAGE, TRADE_MESSAGE, message(2)]
        written, cursor = self.write(messages)
        self.assertEqual(written.inserted, 4)
        copies = [sql for sql, _ in cursor.statements if sql.startswith(b"COPY")]
        self.assertEqual(
            [sql.split(b" (")[0] for sql in copies],
            [b'COPY "s"."stellar_events"', b'COPY "s"."stellar_events_payments"', b'COPY "s"."stellar_events_trades"'],
        )

    def test_redeliveryThroughStaging(self):
        """
        A COPY that meets a stored row is rolled back to its savepoint and the rows written
        through the staging table: only the new ones are stored, the count says so.
        """
        self.write([message(1), message(2)])
        written, cursor = self.write([message(2), message(3)], position="c2")
        self.assertEqual(written.inserted, 1)
        self.assertEqual(self.database.ids(), [eventId(1), eventId(2), eventId(3)])
        self.assertEqual(self.database.checkpoints, {"main": "c2"})
        kinds = [sql.split(b" ")[0] for sql, _ in cursor.statements]
        self.assertEqual(kinds, [b"SAVEPOINT", b"COPY", b"ROLLBACK", b"CREATE", b"COPY", b"WITH", b"INSERT"])

    def test_refusedStatementFails(self):
        """
        Without care, a refused row fails the flush (the consumer then writes it carefully).
        """
        cursor = FakeCursor(self.database)
        d = self.writer.write(cursor, [self.writer.render([message(1, transaction_hash="refused")])], "c")
        self.assertRaises(psycopg2.DataError, result, d)

    def test_isolation(self):
        """
        Carefully, each refused row becomes a dead letter and every other row is stored.
        """
        bad = {3, 4, 9, 17, 18, 19, 25}
        messages = [message(n, transaction_hash="refused" if n in bad else "ok") for n in range(30)]
        self.writer.batchSize = 16
        written, cursor = self.write(messages, careful=True)
        self.assertEqual(self.database.ids(), [eventId(n) for n in range(30) if n not in bad])
        self.assertEqual(sorted(self.database.deadLetters), sorted(eventId(n) for n in bad))
        self.assertEqual(written.inserted, 30 - len(bad))
        self.assertEqual(sorted(m["id"] for m, _ in written.rejects), sorted(eventId(n) for n in bad))
        self.assertEqual(self.database.checkpoints, {"main": "c1"})

    def test_isolationSkipsStoredRows(self):
        """
        Carefully, rows already stored are skipped (not dead letters) beside refused ones.
        """
        self.write([message(1)])
        messages = [message(1), message(2, transaction_hash="refused"), message(3)]
        written, _ = self.write(messages, careful=True)
        self.assertEqual(written.inserted, 1)
        self.assertEqual(self.database.ids(), [eventId(1), eventId(3)])
        self.assertEqual(list(self.database.deadLetters), [eventId(2)])
        self.assertEqual({error for _, error in written.rejects}, {"bad value in row"})
        self.assertEqual(self.database.checkpoints, {"main": "c1"})

    def test_isolationHalves(self):
        """
        One bad row among 64 costs a few statements per halving, not one per row.
        """
        self.writer.batchSize = 64
        messages = [message(n, transaction_hash="refused" if n == 41 else "ok") for n in range(64)]
        written, cursor = self.write(messages, careful=True)
        self.assertEqual(written.inserted, 63)
        self.assertEqual(list(self.database.deadLetters), [eventId(41)])
        self.assertLessEqual(len(cursor.statements), 4 * (2 * 6 + 1) + 3)

    def test_isolationAllGood(self):
        written, cursor = self.write([message(n) for n in range(8)], careful=True)
        self.assertEqual(written.inserted, 8)
        self.assertEqual(len(cursor.statements), 1 + 2 * 4 + 1)

    def test_duplicatesNotCounted(self):
        self.write([message(1), message(2)])
        written, _ = self.write([message(2), message(3), message(3)])
        self.assertEqual(written.inserted, 1)

    def test_loadCheckpoint(self):
        cursor = FakeCursor(self.database)
        self.assertIsNone(result(self.writer.loadCheckpoint(cursor, "main")))
        self.database.checkpoints["main"] = "x"
        self.assertEqual(result(self.writer.loadCheckpoint(cursor, "main")), "x")


class LiveWriterTests(TestCase):
    """
    The writer's SQL against the real server, on a blocking cursor in one transaction.
    """

    timeout = 20

    def setUp(self):
        self.db = TemporarySchema(self)
        self.names = TableNames("stellar_events", self.db.name)
        self.writer = EventWriter(self.names, "main", batchSize=4)
        self.conn = connect()
        self.addCleanup(self.conn.close)
        self.conn.autocommit = False
        with self.conn.cursor() as cur:
            result(migrate(cur, self.names))
        self.conn.commit()

    def write(self, messages, careful):
        with self.conn.cursor() as cur:
            written = result(self.writer.write(cur, [self.writer.render(messages)], "c9", careful))
        self.conn.commit()
        return written

    def test_isolation(self):
        """
        Rows the server refuses (jsonb with NUL, bigint overflow, a bad time) become dead
        letters; the good ones on either side of them are stored, with the checkpoint.
        """
        messages = [message(n) for n in range(12)]
        messages[2] = message(2, topics=["nul\x00in json"])
        messages[7] = message(7, ledger=2**70)
        messages[8] = message(8, ledger_closed_at="not a time")
        self.assertRaises(psycopg2.DataError, self.write, messages, False)
        self.conn.rollback()
        written = self.write(messages, True)
        stored = [r[0] for r in self.db.query("SELECT id FROM {schema}.stellar_events ORDER BY id")]
        self.assertEqual(stored, [eventId(n) for n in range(12) if n not in (2, 7, 8)])
        self.assertEqual(written.inserted, 9)
        rejected = dict(self.db.query("SELECT id, error FROM {schema}.stellar_events_rejected"))
        self.assertEqual(sorted(rejected), [eventId(2), eventId(7), eventId(8)])
        self.assertIn("out of range", rejected[eventId(7)])
        self.assertEqual(self.db.query("SELECT cursor FROM {schema}.stellar_events_checkpoints"), [("c9",)])

    def test_redeliveryAndTypedTables(self):
        """
        A flush holding rows already stored (a redelivery) stores only the new ones, in every
        table; the typed tables get their columns.
        """
        first = [message(1), PAYMENT_MESSAGE]
        self.assertEqual(self.write(first, False).inserted, 2)
        written = self.write([message(1), message(2), PAYMENT_MESSAGE, TRADE_MESSAGE], False)
        self.assertEqual(written.inserted, 2)
        self.assertEqual(
            [r[0] for r in self.db.query("SELECT id FROM {schema}.stellar_events ORDER BY id")], [eventId(1), eventId(2)]
        )
        payment = self.db.query(
            "SELECT from_account, from_muxed_id, memo, amount, source_amount::text, accounts, assets "
            "FROM {schema}.stellar_events_payments"
        )
        self.assertEqual(
            payment,
            [("GAFROM", "42", "rent\tmay", Decimal("10.5"), "100.0000000", ["GAFROM", "GBTO"],
              ["USDC", "USDC:" + PAYMENT_MESSAGE["asset_issuer"], "XLM"])],
        )
        trade = self.db.query("SELECT offer_id, price, sold_amount, message FROM {schema}.stellar_events_trades")
        self.assertEqual(trade, [(123456789012, {"n": "200", "d": "21"}, Decimal("10.5"), encode(TRADE_MESSAGE).decode())])
