"""
Durable consumers make progress on their own (L{stellarflow.durable}): the live flow never
waits for them, and they catch up and rejoin with neither gap nor duplicate.  All on a Clock.
"""

from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stellarflow import durable
from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import ICheckpointStore, IConsumer
from stellarflow.pipeline import Pipeline
from stellarflow.testing.memory import DurableMemoryConsumer, MemoryConsumer, MemorySource, itemId
from tests.test_pipeline import RecordingStore

COUNT = 200


class World:
    """
    A pipeline of a generating source into a live consumer and a durable one, with catch-up
    readers made of the same source; one tick of the clock delivers one batch of 5.
    """

    def __init__(self, count=COUNT, maxInFlight=3, position=None, live=None, stopWhenDone=False, readerBatch=5):
        self.clock = Clock()
        self.readerBatch = readerBatch
        self.count = count
        self.stopWhenDone = stopWhenDone
        self.readers = []
        self.source = self.makeSource()
        self.live = MemoryConsumer()
        self.db = DurableMemoryConsumer(position=position)
        self.store = RecordingStore(initial=live)
        self.pipeline = Pipeline(
            "p",
            self.source,
            [],
            [("live", self.live), ("db", self.db)],
            self.store,
            self.clock,
            maxInFlight=maxInFlight,
            newSource=self.newSource,
        )
        self.member = self.pipeline.members[1]

    def makeSource(self, interval=1, batchSize=5):
        return MemorySource(
            self.clock, count=self.count, batch_size=batchSize, interval=interval, stop_when_done=self.stopWhenDone
        )

    def newSource(self, label):
        """
        A catch-up reader: it reads as fast as the consumer takes it (an RPC source behind the
        tip does not wait between pages).
        """
        self.readers.append(label)
        return self.makeSource(interval=0, batchSize=self.readerBatch)

    def run(self, seconds):
        for _ in range(seconds):
            self.clock.advance(1)

    def liveIds(self):
        return [m["id"] for m in self.live.messages]


def ids(start, stop):
    return [itemId(n) for n in range(start, stop + 1)]


class DurableTests(SynchronousTestCase):
    def test_interfaces(self):
        verifyObject(IConsumer, DurableMemoryConsumer())
        verifyObject(ICheckpointStore, DurableMemoryConsumer())

    def test_attachedFromTheStart(self):
        """
        A durable consumer whose position is the live flow's start joins at once, from memory:
        no catch-up reader is made.
        """
        w = World(position=itemId(20), live=itemId(20))
        w.pipeline.startService()
        w.run(10)
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(w.readers, [])
        self.assertEqual(w.db.order, ids(21, 70))
        self.assertEqual(w.liveIds(), ids(21, 70))

    def test_databaseDownAtStart(self):
        """
        The live flow runs while the database is down; once it answers, the durable consumer
        catches up from where the live flow started and rejoins: every event once, in order.
        """
        w = World()
        w.db.fail()
        w.pipeline.startService()
        w.run(10)
        self.assertEqual(w.liveIds(), ids(1, 50))
        self.assertEqual(w.member.state, durable.WAITING)
        self.assertEqual(w.store.saved[-1], itemId(50))  # the live checkpoint moves on
        w.db.recover()
        self.assertEqual(w.member.state, durable.CATCHING_UP)
        w.run(30)
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(len(w.readers), 1)
        self.assertEqual(w.db.order, ids(1, 200))
        self.assertEqual(w.db.duplicates, 0)
        self.assertEqual(w.liveIds(), ids(1, 200))
        self.assertEqual(w.db.position, itemId(200))

    def test_outageMidStream(self):
        """
        Mid-stream the database goes away: after C{max_in_flight} unacknowledged batches it is
        detached, the live flow never pauses, and once back it catches up from its own
        position and rejoins.
        """
        w = World(maxInFlight=3)
        w.pipeline.startService()
        w.run(5)
        self.assertEqual(w.db.position, itemId(25))
        w.db.fail()
        w.run(10)
        self.assertEqual(w.liveIds(), ids(1, 75))  # never paused
        self.assertEqual(w.member.state, durable.CATCHING_UP)
        self.assertEqual(w.member.detaches, 1)
        self.assertEqual(w.store.saved[-1], itemId(75))
        w.db.recover()
        w.run(40)
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(w.db.order, ids(1, 200))
        self.assertEqual(w.db.position, itemId(200))
        self.assertEqual(w.liveIds(), ids(1, 200))

    def test_detachedAtTheLimitNotBefore(self):
        """
        The consumer holds exactly C{max_in_flight} batches before it is detached; the next
        live batch detaches it.
        """
        w = World(maxInFlight=3)
        w.pipeline.startService()
        w.run(1)
        w.db.fail()
        w.run(3)
        self.assertEqual((w.member.state, len(w.member.lane)), (durable.ATTACHED, 3))
        w.run(1)
        self.assertEqual((w.member.state, w.member.detaches), (durable.CATCHING_UP, 1))
        self.assertEqual(len(w.member.lane), 0)

    def test_detachedBeforeItsFirstAck(self):
        """
        A consumer without a position of its own joins where the live flow started; detached
        before it acknowledged anything, it catches up from there, not from where a reader
        without a position starts (the RPC's latest ledger for getEvents), which lost the
        batches in between for good.
        """
        w = World(maxInFlight=3)
        makeReader = w.newSource

        def fromTheTip(label):
            reader = makeReader(label)
            start = reader.start

            def startAtTip(deliver, checkpoint):
                if checkpoint is None:
                    reader._next = w.source._next  # no position: where the live flow is now
                return start(deliver, checkpoint)

            reader.start = startAtTip
            return reader

        w.pipeline.newSource = fromTheTip
        w.pipeline.startService()  # the consumer answers at once: no position of its own
        w.db.fail()  # ... and acknowledges nothing from its first batch on
        w.run(5)  # the batch it joined with, then max_in_flight live ones: the next detaches it
        self.assertEqual((w.member.state, w.member.detaches), (durable.CATCHING_UP, 1))
        self.assertIsNone(w.member.position)
        self.assertEqual(w.member.catchUp.source.checkpoint, Checkpoint(itemId(0)))
        w.db.recover()
        w.run(40)
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(sorted(w.db.order), ids(1, 200))
        self.assertEqual(w.db.position, itemId(200))

    def test_noPositionAcrossRestart(self):
        """
        A new database that never answered during a run still gets that run's events after a
        restart: the live flow's checkpoint carries where it must start (owed), and the next
        run catches it up from there, not from where the next run starts.  Once it has a
        position of its own the checkpoint no longer carries one.
        """
        w = World()
        w.db.fail()
        w.pipeline.startService()
        w.run(10)  # live 1..50; the database never answered
        w.pipeline.stopService()
        last = w.store.checkpoints[-1]
        self.assertEqual((last.cursor, last.owed), (itemId(50), (("db", itemId(0)),)))
        again = World(live=last)
        again.pipeline.startService()
        again.run(40)
        self.assertEqual(again.member.state, durable.ATTACHED)
        self.assertEqual(again.db.order, ids(1, 200))
        self.assertEqual(again.store.checkpoints[-1].owed, ())

    def test_joiningWithRecentBatchesNotDetached(self):
        """
        A consumer that answers late joins with the live flow's recent batches
        (C{max_in_flight} of them); the next live batch does not detach it before it could
        acknowledge them, and once they are, the limit is the usual one.
        """
        w = World(maxInFlight=3)
        w.db.fail()
        w.pipeline.startService()
        w.run(3)  # live 1..15; the consumer's position is not known yet
        loads, w.db._loads = w.db._loads, []
        for d in loads:
            d.callback(None)  # it answers (no position) but commits nothing yet
        self.assertEqual((w.member.state, len(w.member.lane), w.member.joinCredit), (durable.ATTACHED, 3, 3))
        w.run(1)
        self.assertEqual((w.member.state, w.member.detaches, len(w.member.lane)), (durable.ATTACHED, 0, 4))
        w.db.recover()
        self.assertEqual(w.member.joinCredit, 0)
        w.db.fail()
        w.run(3)
        self.assertEqual((w.member.state, w.member.detaches), (durable.ATTACHED, 0))
        w.run(1)
        self.assertEqual((w.member.state, w.member.detaches), (durable.CATCHING_UP, 1))
        w.db.recover()
        w.run(40)
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(w.readers, ["p catch-up for db"])
        self.assertEqual(w.db.order, ids(1, 200))

    def test_catchUpBoundedWhileDown(self):
        """
        While the database stays down the catch-up reader holds at most C{max_in_flight}
        batches: it does not read the whole history into memory.
        """
        w = World(maxInFlight=3)
        w.pipeline.startService()
        w.run(1)
        w.db.fail()
        w.run(30)
        catchUp = w.member.catchUp
        self.assertEqual(len(catchUp.lane), 3)
        self.assertEqual(len(w.db._held), 3 + 3)  # what the detached lane handed over, then the reader
        self.assertEqual(catchUp.source._next, 5 + 15 + 1)

    def test_overtakingCatchUpSkipsWhatItHas(self):
        """
        A catch-up reader that gets ahead of the live flow hands over at its own position: the
        live batches it already covered are not delivered again.
        """
        w = World()
        w.db.fail()
        w.pipeline.startService()
        w.run(10)  # live: 1..50
        w.db.recover()
        self.assertEqual(w.member.state, durable.CATCHING_UP)
        w.member.catchUp.source._next = 54  # the reader polled later: its first batch is 54..58
        w.run(1)  # the reader's batch, then the live batch 51..55, which it covers
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(w.member.skipThrough, itemId(58))
        self.assertEqual(w.db.order, ids(54, 58))
        w.run(5)
        self.assertIsNone(w.member.skipThrough)
        self.assertEqual(w.db.order, ids(54, 80))
        self.assertEqual(w.db.duplicates, 3)  # 56..58, in the first live batch after the hand-over
        self.assertEqual(w.db.position, itemId(80))

    def test_catchUpFailureRetried(self):
        """
        A reader whose source cannot go on is reported and tried again later.
        """
        w = World()
        w.db.fail()
        w.pipeline.startService()
        w.run(10)
        real = w.makeSource

        def failing(interval=1, batchSize=5):
            source = real(interval, batchSize)
            source.start = lambda deliver, checkpoint: fail(RuntimeError("-32600 out of retention"))
            return source

        w.makeSource = failing
        w.db.recover()
        self.assertEqual(w.member.failure, "-32600 out of retention")
        self.assertEqual(w.member.state, durable.CATCHING_UP)
        self.flushLoggedErrors()
        w.makeSource = real
        w.clock.advance(durable.RETRY_CATCH_UP)
        w.run(40)
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(w.db.order, ids(1, 200))

    def test_backfillWaitsForDurableConsumer(self):
        """
        A finite source completes the pipeline only once the durable consumer has caught up.
        """
        w = World(count=40, stopWhenDone=True)
        finished = []
        w.pipeline.onFinished = finished.append
        w.db.fail()
        w.pipeline.startService()
        w.run(10)
        self.assertEqual(w.liveIds(), ids(1, 40))
        self.assertEqual(finished, [])
        w.db.recover()
        w.run(20)
        self.assertEqual(finished, [w.pipeline])
        self.assertEqual(w.db.order, ids(1, 40))

    def test_stats(self):
        w = World()
        w.db.fail()
        w.pipeline.startService()
        w.run(4)
        stats = w.pipeline.memberStats("db")
        self.assertEqual((stats["attached"], stats["catching_up"], stats["position_ledger"]), (False, False, None))
        w.db.recover()
        w.run(30)
        stats = w.pipeline.memberStats("db")
        self.assertEqual((stats["attached"], stats["lag_ledgers"], stats["catch_ups_total"]), (True, 0, 1))
        self.assertEqual(stats["catch_up_events_total"] + 0, stats["catch_up_events_total"])
        self.assertEqual(w.pipeline.memberStats("live"), {})

    def test_stopStopsReaders(self):
        w = World()
        w.db.fail()
        w.pipeline.startService()
        w.run(10)
        w.db.recover()
        catchUp = w.member.catchUp
        w.db.fail()
        d = w.pipeline.stopService()
        w.clock.advance(60)
        self.successResultOf(d)
        self.assertTrue(catchUp.source.stopped)

    def test_checkpointsAreCheckpoints(self):
        self.assertEqual(Checkpoint.of(itemId(3)), Checkpoint(itemId(3)))
        self.assertIsNone(Checkpoint.of(None))


class RejoinOnAcknowledgementTests(SynchronousTestCase):
    def test_readerAtTheTipWhileDown(self):
        """
        A reader whose one page reaches past the live flow's position while the database is
        still down does not make the consumer rejoin (it would be detached again at once, over
        and over, each time handing the database more batches to hold): it rejoins once that
        page is acknowledged.
        """
        w = World(maxInFlight=3, readerBatch=100)
        w.pipeline.startService()
        w.run(2)
        w.db.fail()
        w.run(10)
        self.assertEqual(w.member.state, durable.CATCHING_UP)
        self.assertEqual(w.member.catchUp.last, itemId(200))  # its pages, 11..110 and 111..200, passed the live flow
        self.assertEqual(w.member.detaches, 1)
        self.assertEqual(len(w.db._held), 3 + 2)  # the detached lane's three, the reader's two pages
        w.db.recover()
        self.assertEqual(w.member.state, durable.ATTACHED)
        self.assertEqual(w.member.skipThrough, itemId(200))  # the reader went on to the end
        w.run(40)
        self.assertEqual(w.member.detaches, 1)
        self.assertEqual(w.db.order, ids(1, 200))
        self.assertEqual(w.db.position, itemId(200))
