"""
L{SaveToPostgreSQL}'s admission, batching and acknowledgements on a L{Clock}, writing through a
L{FakeKeeper} (no server): when a flush starts, what one transaction holds, when a batch is
acknowledged, what happens to it when the transaction fails, and how the checkpoint store
behaves.  The same consumer against the real server: L{tests.test_postgres_consumer}.
"""

import psycopg2
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stellarflow.batch import Batch
from stellarflow.interfaces import (
    ICheckpointStore,
    IConnectionKeeper,
    IConnectionListener,
    IConsumer,
    IEventHistorySource,
    IStatsProvider,
)
from stellarflow.postgres import SaveToPostgreSQL
from stellarflow.postgres.fakes import FakeDatabase, FakeKeeper
from stellarflow.postgres.keeper import DatabaseUnavailable
from stellarflow.postgres.writer import ROW_ERRORS, PredecessorFailed
from tests.test_postgres_consumer import LogCapture, batch, eventId, message


class ClockTestCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.database = FakeDatabase(refuse=lambda row: "bad value" if row[3] == "refused" else None)
        self.keeper = FakeKeeper(self.database, passOn=ROW_ERRORS)
        self.logs = LogCapture(self)

    def consumer(self, connect=True, **kwargs):
        kwargs.setdefault("flush_interval", 0.2)
        consumer = SaveToPostgreSQL(
            self.clock, "host=db dbname=events password=pw", "test", keeper=self.keeper, **kwargs
        )
        consumer.start()
        if connect:
            self.keeper.connect()
        return consumer

    def stored(self):
        return self.database.ids()

    def assertStored(self, numbers):
        self.assertEqual(self.stored(), sorted(eventId(n) for n in numbers))


class InterfaceTests(ClockTestCase):
    def test_interfaces(self):
        consumer = self.consumer()
        for interface in (IConsumer, ICheckpointStore, IEventHistorySource, IStatsProvider, IConnectionListener):
            verifyObject(interface, consumer)
        verifyObject(IConnectionKeeper, self.keeper)

    def test_stats(self):
        consumer = self.consumer(max_pending=2)
        consumer.consume(batch([1, 2]))
        consumer.consume(batch([3]))
        self.assertEqual(
            consumer.stats(),
            {
                "batches_total": 0,
                "inserted_total": 0,
                "duplicates_total": 0,
                "rejected_total": 0,
                "connect_retries_total": 0,
                "pending_events": 3,
                "connected": True,
            },
        )


class BatchingTests(ClockTestCase):
    def test_batchSizeStartsFlush(self):
        """
        Batches wait until C{batch_size} rows are queued; then one transaction writes them all.
        """
        consumer = self.consumer(batch_size=5, flush_interval=30)
        first = consumer.consume(batch([1, 2]))
        second = consumer.consume(batch([3, 4]))
        self.assertEqual(self.keeper.transactions, [])
        third = consumer.consume(batch([5]))
        self.assertEqual(len(self.keeper.transactions), 1)
        for d in (first, second, third):
            self.assertNoResult(d)
        self.keeper.commit()
        for d in (first, second, third):
            self.assertIsNone(self.successResultOf(d))
        self.assertStored(range(1, 6))
        self.assertEqual(self.database.checkpoints, {"test": eventId(5)})

    def test_flushInterval(self):
        """
        A batch smaller than C{batch_size} is written C{flush_interval} after it arrived.
        """
        consumer = self.consumer(batch_size=500, flush_interval=0.2)
        d = consumer.consume(batch([1]))
        self.clock.advance(0.1)
        consumer.consume(batch([2]))
        self.clock.advance(0.09)
        self.assertEqual(self.keeper.transactions, [])
        self.clock.advance(0.01)
        self.assertEqual(len(self.keeper.transactions), 1)
        self.keeper.commit()
        self.successResultOf(d)
        self.assertStored([1, 2])

    def test_groupCommit(self):
        """
        What queued while a flush was in the database is written as soon as it ends, however
        few rows (the pipeline waits on it), not C{flush_interval} later; with the writer idle
        again, a small batch waits C{flush_interval} as before.
        """
        consumer = self.consumer(batch_size=5, flush_interval=0.2)
        first = consumer.consume(batch(range(5)))
        self.assertEqual(len(self.keeper.transactions), 1)
        second = consumer.consume(batch([5, 6]))
        self.clock.advance(0.01)
        self.keeper.commit()
        self.successResultOf(first)
        # flushed at once: 2 rows < batch_size, 0.01 s < flush_interval
        self.assertEqual(len(self.keeper.transactions), 2)
        self.keeper.commit()
        self.successResultOf(second)
        self.assertStored(range(7))
        third = consumer.consume(batch([7]))
        self.clock.advance(0.19)
        self.assertEqual(len(self.keeper.transactions), 2)
        self.clock.advance(0.01)
        self.assertEqual(len(self.keeper.transactions), 3)
        self.keeper.commit()
        self.successResultOf(third)

    def test_zeroFlushInterval(self):
        consumer = self.consumer(flush_interval=0)
        consumer.consume(batch([1]))
        self.assertEqual(len(self.keeper.transactions), 1)

    def test_oneTransactionAtATime(self):
        """
        While a flush is in flight the next batches queue; they are written together after it,
        a flush taking whole batches up to C{batch_size} rows.
        """
        consumer = self.consumer(batch_size=4, flush_interval=0)
        acks = [consumer.consume(batch(range(4 * i, 4 * i + 4))) for i in range(3)]
        self.assertEqual(len(self.keeper.transactions), 1)
        self.keeper.commit()
        self.successResultOf(acks[0])
        self.assertNoResult(acks[1])
        self.assertEqual(len(self.keeper.transactions), 2)
        self.keeper.commit()
        self.keeper.commit()
        for d in acks:
            self.successResultOf(d)
        self.assertStored(range(12))
        self.assertEqual(consumer.transactions, 3)

    def test_bigBatchWrittenWhole(self):
        """
        A batch larger than C{batch_size} is one transaction of one C{COPY}.
        """
        consumer = self.consumer(batch_size=3, flush_interval=0)
        consumer.consume(batch(range(10)))
        [transaction] = self.keeper.transactions
        copies = [sql for sql, _ in transaction.cursor.statements if sql.startswith(b"COPY")]
        self.assertEqual(len(copies), 1)
        self.keeper.commit()
        self.assertStored(range(10))

    def test_renderedAheadOfTheirFlush(self):
        """
        While a flush is in the database, the batches that arrive are rendered at once, in the
        reactor thread, up to about two flushes' worth of rows; the rest when their turn comes.
        """
        consumer = self.consumer(batch_size=4, flush_interval=0)
        acks = [consumer.consume(batch(range(4 * i, 4 * i + 4))) for i in range(5)]
        self.assertEqual(len(self.keeper.transactions), 1)
        queued = list(consumer._queue)
        self.assertEqual([e.rendered is not None for e in queued], [True, True, False, False])
        self.keeper.commit()
        self.assertEqual([e.rendered is not None for e in consumer._queue], [True, True, False])
        for _ in range(4):
            self.keeper.commit()
        for d in acks:
            self.successResultOf(d)
        self.assertStored(range(20))

    def test_noFlushWhileDisconnected(self):
        consumer = self.consumer(connect=False, flush_interval=0)
        d = consumer.consume(batch([1]))
        self.clock.advance(10)
        self.assertEqual(self.keeper.transactions, [])
        self.keeper.connect()
        self.keeper.commit()
        self.successResultOf(d)


class AcknowledgementTests(ClockTestCase):
    def test_ackOnlyAfterCommit(self):
        """
        The work of the flush is done, but the batch is acknowledged only once the transaction
        committed.
        """
        consumer = self.consumer(flush_interval=0)
        d = consumer.consume(batch([1, 2]))
        self.assertTrue(self.keeper.running.finished)
        self.assertNoResult(d)
        self.assertEqual(self.stored(), [])
        self.keeper.commit()
        self.successResultOf(d)

    def test_checkpointInTheSameTransaction(self):
        """
        One commit makes the rows and the newest cursor visible together; a failed transaction
        leaves neither.
        """
        consumer = self.consumer(batch_size=4, flush_interval=0)
        consumer.consume(batch([1, 2, 3, 4]))
        self.keeper.failRunning(psycopg2.OperationalError("server closed the connection"))
        self.assertEqual((self.stored(), self.database.checkpoints), ([], {}))
        self.keeper.connect()
        self.keeper.commit()
        self.assertEqual(len(self.keeper.committed), 1)
        self.assertStored([1, 2, 3, 4])
        self.assertEqual(self.database.checkpoints, {"test": eventId(4)})

    def test_batchWithoutCursor(self):
        consumer = self.consumer(flush_interval=0)
        consumer.consume(batch([1], cursor=False))
        self.keeper.commit()
        self.assertEqual(self.database.checkpoints, {})
        self.assertStored([1])

    def test_countsAndDuplicates(self):
        consumer = self.consumer(flush_interval=0, batch_size=3)
        consumer.consume(batch([1, 2, 3]))
        self.keeper.commit()
        consumer.consume(batch([3, 4, 4]))
        self.keeper.commit()
        self.assertEqual((consumer.inserted, consumer.duplicates, consumer.rejected, consumer.pending), (4, 2, 0, 0))


class FailureTests(ClockTestCase):
    def test_flushFailureRequeues(self):
        """
        A transaction lost with the connection is rolled back; its batches stay queued,
        unacknowledged, and are written, in order, once the connection is back.
        """
        consumer = self.consumer(batch_size=2, flush_interval=0)
        first = consumer.consume(batch([1, 2]))
        second = consumer.consume(batch([3, 4]))
        self.keeper.lose()
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(consumer.pending, 4)
        self.assertIn("Lost the PostgreSQL connection", self.logs.text())
        self.assertIn("(4 event(s) held)", self.logs.text())
        self.clock.advance(60)
        self.assertEqual(len(self.keeper.transactions), 1)
        self.keeper.connect()
        self.keeper.commit()
        self.successResultOf(first)
        self.assertNoResult(second)
        self.keeper.commit()
        self.successResultOf(second)
        self.assertStored([1, 2, 3, 4])
        self.assertEqual(self.database.checkpoints, {"test": eventId(4)})

    def test_otherFailureCostsTheConnection(self):
        """
        A failure that is not the rows' (a timeout, a bug) gives up the connection too, so it is
        retried after the backoff rather than in a loop.
        """
        consumer = self.consumer(flush_interval=0)
        d = consumer.consume(batch([1]))
        self.keeper.failRunning(psycopg2.OperationalError("canceling statement due to statement timeout"))
        self.assertFalse(consumer.ready)
        self.assertEqual(len(self.keeper.transactions), 1)
        self.assertNoResult(d)

    def test_refusedRowsIsolated(self):
        """
        A refused row fails the first transaction (the connection is kept) and the flush is
        written again carefully: the bad row becomes a dead letter, the rest and the checkpoint
        are committed, the batch is acknowledged.
        """
        consumer = self.consumer(flush_interval=0)
        d = consumer.consume(
            Batch(items=[], cursor="c1", messages=[message(1), message(2, transaction_hash="refused"), message(3)])
        )
        self.assertTrue(consumer.ready)
        self.assertEqual(len(self.keeper.transactions), 2)
        self.keeper.commit()
        self.successResultOf(d)
        self.assertStored([1, 3])
        self.assertEqual(list(self.database.deadLetters), [eventId(2)])
        self.assertEqual(self.database.deadLetters[eventId(2)][1], "bad value")
        self.assertEqual(self.database.checkpoints, {"test": "c1"})
        self.assertEqual((consumer.inserted, consumer.rejected), (2, 1))
        self.assertIn("PostgreSQL refused event " + eventId(2), self.logs.text())

    def test_renderedOnce(self):
        """
        Messages are rendered once, even when their flush is written again.
        """
        consumer = self.consumer(flush_interval=0)
        rendered = []
        render = consumer.writer.render
        consumer.writer.render = lambda messages: rendered.append(len(messages)) or render(messages)
        consumer.consume(batch([1, 2]))
        self.keeper.lose()
        self.keeper.connect()
        self.keeper.commit()
        self.assertEqual(rendered, [2])
        self.assertStored([1, 2])

    def test_connectionFailureLogged(self):
        consumer = self.consumer(connect=False)
        consumer.consume(batch([1, 2, 3]))
        self.keeper.refuse("password authentication failed for user x; password pw")
        text = self.logs.text()
        self.assertIn("Cannot use PostgreSQL at db:5432/events", text)
        self.assertIn("3 event(s) waiting, acknowledgements withheld", text)
        self.assertEqual((consumer.connectFailures, consumer.connectRetries), (1, 1))


class MaxPendingTests(ClockTestCase):
    def test_parkedAndAckWithheld(self):
        """
        Beyond C{max_pending} events, batches are parked (not admitted, acks withheld), a
        warning is logged once per episode, and they are admitted in order as room frees up.
        """
        consumer = self.consumer(connect=False, max_pending=10, batch_size=100, flush_interval=0)
        acks = []
        order = []
        for i in range(6):
            d = consumer.consume(batch(range(4 * i, 4 * i + 4)))
            d.addCallback(lambda _, i=i: order.append(i))
            acks.append(d)
        self.assertEqual((consumer.pending, consumer.parked), (8, 4))
        self.assertEqual(self.logs.text().count("max_pending 10"), 1)
        self.assertEqual(consumer.stats()["pending_events"], 24)
        self.keeper.connect()
        self.keeper.commit()
        self.assertEqual(order, [0, 1])
        self.assertEqual((consumer.pending, consumer.parked), (8, 2))
        while self.keeper.running is not None:
            self.keeper.commit()
        self.assertEqual(order, list(range(6)))
        self.assertStored(range(24))
        self.assertEqual(self.database.checkpoints, {"test": eventId(23)})
        consumer.consume(batch(range(100, 112)))
        consumer.consume(batch([200]))
        self.assertEqual(self.logs.text().count("max_pending 10"), 2)

    def test_oversizedBatchAdmittedAlone(self):
        """
        A batch larger than C{max_pending} is admitted when nothing else is held.
        """
        consumer = self.consumer(max_pending=3, flush_interval=0)
        d = consumer.consume(batch(range(5)))
        self.assertEqual((consumer.pending, consumer.parked), (5, 0))
        self.keeper.commit()
        self.successResultOf(d)


class StopTests(ClockTestCase):
    def test_stopFlushesAccepted(self):
        """
        stop() writes the batches accepted, without waiting for C{flush_interval}, and the
        parked ones, then stops the keeper.
        """
        consumer = self.consumer(flush_interval=30, max_pending=2)
        first = consumer.consume(batch([1, 2]))
        second = consumer.consume(batch([3]))
        stopped = consumer.stop()
        self.assertNoResult(stopped)
        self.assertFalse(self.keeper.stopped)
        self.keeper.commit()
        self.successResultOf(stopped)
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertStored([1, 2, 3])
        self.assertTrue(self.keeper.stopped)
        self.failureResultOf(consumer.consume(batch([4])), DatabaseUnavailable)

    def test_stopFlushesQueued(self):
        consumer = self.consumer(flush_interval=30)
        d = consumer.consume(batch([1]))
        stopped = consumer.stop()
        self.assertEqual(len(self.keeper.transactions), 1)
        self.keeper.commit()
        self.successResultOf(stopped)
        self.successResultOf(d)
        self.assertStored([1])

    def test_stopWaitsForTheFlushInFlight(self):
        consumer = self.consumer(flush_interval=0, batch_size=1)
        first = consumer.consume(batch([1]))
        second = consumer.consume(batch([2]))
        stopped = consumer.stop()
        self.keeper.commit()
        self.assertNoResult(stopped)
        self.keeper.commit()
        self.successResultOf(stopped)
        self.successResultOf(first)
        self.successResultOf(second)

    def test_stopWhileDisconnected(self):
        consumer = self.consumer(connect=False)
        d = consumer.consume(batch([1]))
        self.successResultOf(consumer.stop())
        self.assertNoResult(d)
        self.assertIn("1 event(s) not written", self.logs.text())
        self.assertTrue(self.keeper.stopped)

    def test_stopWhenTheLastFlushFails(self):
        consumer = self.consumer(flush_interval=30)
        d = consumer.consume(batch([1]))
        stopped = consumer.stop()
        self.keeper.lose()
        self.successResultOf(stopped)
        self.assertNoResult(d)
        self.assertIn("1 event(s) not written", self.logs.text())
        self.assertNotIn("Lost the PostgreSQL connection", self.logs.text())


class CheckpointStoreTests(ClockTestCase):
    def test_saveWrittenCursorIsNoOp(self):
        """
        save() of a cursor committed with its batch runs nothing; any other is upserted.
        """
        consumer = self.consumer(flush_interval=0)
        consumer.consume(batch([1, 2]))
        self.keeper.commit()
        self.successResultOf(consumer.save("test", eventId(2)))
        self.assertEqual(len(self.keeper.transactions), 1)
        d = consumer.save("test", "elsewhere")
        self.assertEqual(len(self.keeper.transactions), 2)
        self.keeper.commit()
        self.successResultOf(d)
        d = consumer.save("other", eventId(2))
        self.keeper.commit()
        self.successResultOf(d)
        self.assertEqual(self.database.checkpoints, {"test": "elsewhere", "other": eventId(2)})

    def test_saveWhileDisconnectedFails(self):
        consumer = self.consumer(connect=False)
        self.failureResultOf(consumer.save("test", "x"), DatabaseUnavailable)

    def test_loadWaitsForTheDatabase(self):
        """
        load() waits while the database is unreachable (warning once that the pipeline waits),
        then reads the stored checkpoint.
        """
        self.database.checkpoints["test"] = "stored"
        consumer = self.consumer(connect=False)
        d = consumer.load("test")
        self.assertNoResult(d)
        self.keeper.refuse()
        self.keeper.refuse()
        self.assertNoResult(d)
        self.assertEqual(self.logs.text().count("PostgreSQL at db:5432/events holds the position of pipeline test"), 1)
        self.keeper.connect()
        self.assertNoResult(d)
        self.keeper.commit()
        self.assertEqual(self.successResultOf(d), "stored")
        self.assertIn("PostgreSQL answered; pipeline test's events are stored from its position", self.logs.text())

    def test_loadRetriesAFailedRead(self):
        consumer = self.consumer()
        d = consumer.load("other")
        self.keeper.lose()
        self.assertNoResult(d)
        self.assertIn("Could not read the checkpoint of pipeline other", self.logs.text())
        self.keeper.connect()
        self.keeper.commit()
        self.assertIsNone(self.successResultOf(d))

    def test_loadStartsTheKeeper(self):
        consumer = SaveToPostgreSQL(self.clock, "host=db dbname=events", "test", keeper=self.keeper)
        consumer.load("test")
        self.assertTrue(self.keeper.started)

    def test_loadAfterStopNeverFires(self):
        consumer = self.consumer(connect=False)
        d = consumer.load("test")
        consumer.stop()
        self.assertNoResult(d)


class PipelinedFlushTests(ClockTestCase):
    """
    Two writer keepers: the ordering rules when the flush written second fails first.
    """

    def secondGivesUp(self):
        """
        Two batches of two events: the first flush waits for its commit on the first keeper;
        the second, written on the other keeper, gives up waiting for it (its patience is the
        query timeout) and rolls back.  Returns C{(consumer, second keeper, acknowledgement
        order)}.
        """
        second = FakeKeeper(self.database, passOn=ROW_ERRORS + (PredecessorFailed,))
        consumer = SaveToPostgreSQL(
            self.clock,
            "host=db dbname=events password=pw",
            "test",
            keepers=[self.keeper, second],
            batch_size=2,
            query_timeout=0.01,
        )
        consumer.start()
        self.keeper.connect()
        second.connect()
        order = []
        acks = [consumer.consume(batch([2 * i, 2 * i + 1])) for i in range(2)]
        for n, d in enumerate(acks, 1):
            d.addCallback(lambda _, n=n: order.append(n))
        self.assertEqual(len(self.keeper.transactions), 1)  # the first flush, waiting for its commit
        self.clock.advance(0)  # the second is written on the other keeper, and gives up
        self.assertEqual((consumer.pipelined, consumer.rolledBack), (1, 1))
        self.assertEqual((second.committed, order), ([], []))
        return consumer, second, order

    def assertBothWrittenInOrder(self, order, transactions):
        """
        Commit the two flushes left on the first keeper, the second written again once the
        first committed (C{transactions} started by then): acknowledgements in order, every
        event once, the newest checkpoint last.
        """
        self.keeper.commit()
        self.assertEqual(order, [1])
        self.assertEqual(len(self.keeper.transactions), transactions)
        self.keeper.commit()
        self.assertEqual(order, [1, 2])
        self.assertStored(range(4))
        self.assertEqual(self.database.checkpoints["test"], eventId(3))

    def test_secondFailsWhileFirstInFlight(self):
        """
        The second flush rolls back while the first is in flight: once the first commits,
        the second's batches are written again, after it, in order.
        """
        consumer, second, order = self.secondGivesUp()
        self.assertBothWrittenInOrder(order, 2)

    def test_bothFailSecondFirst(self):
        """
        The second flush gives up, then the first fails too: both are written again in the
        order they were taken (the newest checkpoint last).
        """
        consumer, second, order = self.secondGivesUp()
        self.keeper.lose()
        second.lose()
        self.keeper.connect()
        self.assertEqual(len(self.keeper.transactions), 2)  # the first, written again
        self.assertBothWrittenInOrder(order, 3)
