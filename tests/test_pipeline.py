"""
The delivery contract (L{stellarflow.interfaces}) with in-memory sources and consumers on a
L{Clock}.
"""

import json
import os

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stellarflow.checkpoint import Checkpoint, FileCheckpointStore, NullCheckpointStore
from stellarflow.interfaces import ICheckpointStore, IConsumer, IProcessor, ISource
from stellarflow.pipeline import Pipeline
from stellarflow.testing.memory import MemoryConsumer, MemorySource, itemId


@implementer(IProcessor)
class Doubler:
    producedTypes = None

    def process(self, items):
        return [dict(i, doubled=i["n"] * 2) for i in items]


@implementer(IProcessor)
class Exploding:
    producedTypes = None

    def process(self, items):
        raise ValueError("processor bug")


@implementer(ICheckpointStore)
class RecordingStore:
    def __init__(self, initial=None):
        self.saved = []
        self.checkpoints = []
        self.initial = initial
        self.pending = None

    def load(self, pipeline):
        return succeed(self.initial)

    def save(self, pipeline, checkpoint):
        self.saved.append(Checkpoint.of(checkpoint).cursor)
        self.checkpoints.append(Checkpoint.of(checkpoint))
        if self.pending is not None:
            return self.pending
        return succeed(None)


def items(start, stop):
    return [{"id": itemId(n), "n": n} for n in range(start, stop)]


class Harness:
    def __init__(self, consumers=2, store=None, processors=(), maxInFlight=2, source=None):
        self.clock = Clock()
        self.source = source or MemorySource(self.clock)
        self.consumers = [MemoryConsumer() for _ in range(consumers)]
        self.store = store if store is not None else RecordingStore()
        self.fatal = []
        self.pipeline = Pipeline(
            "p",
            self.source,
            list(processors),
            [("c{}".format(i), c) for i, c in enumerate(self.consumers)],
            self.store,
            self.clock,
            maxInFlight=maxInFlight,
            onFatal=self.fatal.append,
        )


class ContractTests(SynchronousTestCase):
    def test_interfaces(self):
        clock = Clock()
        verifyObject(ISource, MemorySource(clock))
        verifyObject(IConsumer, MemoryConsumer())
        verifyObject(ICheckpointStore, FileCheckpointStore(self.mktemp()))
        verifyObject(ICheckpointStore, NullCheckpointStore())

    def test_everyConsumerEveryMessageInOrder(self):
        h = Harness(consumers=3, processors=[Doubler()])
        h.pipeline.startService()
        self.assertTrue(all(c.started for c in h.consumers))
        self.assertTrue(h.source.started)
        for start in (1, 4, 7):
            self.successResultOf(h.source.emit(items(start, start + 3), cursor=itemId(start + 2)))
        for c in h.consumers:
            self.assertEqual([m["n"] for m in c.messages], list(range(1, 10)))
            self.assertEqual([m["doubled"] for m in c.messages[:2]], [2, 4])

    def test_processorsChain(self):
        h = Harness(processors=[Doubler(), Doubler()])
        h.pipeline.startService()
        h.source.emit(items(1, 2))
        self.assertEqual(h.consumers[0].messages[0]["doubled"], 2)

    def test_checkpointOnlyAfterEveryConsumerAcked(self):
        h = Harness(consumers=2, maxInFlight=5)
        fast, slow = h.consumers
        slow.hold = True
        h.pipeline.startService()
        h.source.emit(items(1, 3), cursor="c1")
        h.source.emit(items(3, 5), cursor="c2")
        self.assertEqual(h.store.saved, [])
        self.assertEqual(len(fast.batches), 2)
        slow.release(1)
        self.assertEqual(h.store.saved, ["c1"])
        slow.release(1)
        self.assertEqual(h.store.saved, ["c1", "c2"])
        self.assertEqual(h.pipeline.committed, "c2")

    def test_checkpointInBatchOrder(self):
        """
        Batch 2 acknowledged before batch 1 commits nothing; batch 1's ack commits batch 2's
        cursor (everything before it is done).
        """

        @implementer(IConsumer)
        class OutOfOrder(MemoryConsumer):
            def consume(self, batch):
                d = Deferred()
                self.held.append(d)
                self.batches.append(batch)
                return d

        h = Harness(consumers=0, maxInFlight=5)
        consumer = OutOfOrder()
        h.pipeline = Pipeline("p", h.source, [], [("c", consumer)], h.store, h.clock, maxInFlight=5)
        h.pipeline.startService()
        h.source.emit(items(1, 2), cursor="c1")
        h.source.emit(items(2, 3), cursor="c2")
        first, second = consumer.held
        second.callback(None)
        self.assertEqual(h.store.saved, [])
        self.assertEqual(h.pipeline.unacknowledged, 1)
        first.callback(None)
        self.assertEqual(h.store.saved, ["c2"])
        self.assertEqual(h.pipeline.unacknowledged, 0)

    def test_batchWithoutCursorCommitsNothing(self):
        h = Harness()
        h.pipeline.startService()
        h.source.emit(items(1, 2), cursor=None)
        self.assertEqual(h.store.saved, [])

    def test_backpressure(self):
        """
        The source may not produce while a consumer holds max_in_flight unacknowledged batches.
        """
        h = Harness(consumers=2, maxInFlight=2)
        h.consumers[1].hold = True
        h.pipeline.startService()
        self.successResultOf(h.source.emit(items(1, 2), cursor="a"))
        ready = h.source.emit(items(2, 3), cursor="b")
        self.assertNoResult(ready)
        h.consumers[1].release(1)
        self.successResultOf(ready)

    def test_checkpointSavesDoNotOverlap(self):
        store = RecordingStore()
        store.pending = Deferred()
        h = Harness(consumers=1, store=store, maxInFlight=10)
        h.pipeline.startService()
        for i, cursor in enumerate(["a", "b", "c"]):
            h.source.emit(items(i, i + 1), cursor=cursor)
        self.assertEqual(store.saved, ["a"])
        pending, store.pending = store.pending, None
        pending.callback(None)
        self.assertEqual(store.saved, ["a", "c"])
        self.assertEqual(h.pipeline.committed, "c")

    def test_failingConsumerRetriedOthersUnaffected(self):
        h = Harness(consumers=2, maxInFlight=3)
        good, bad = h.consumers
        bad.failures = 2
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        h.pipeline.startService()
        h.source.emit(items(1, 3), cursor="c1")
        self.assertEqual(len(good.messages), 2)
        self.assertEqual(bad.messages, [])
        self.assertEqual(h.store.saved, [])
        failures = [e for e in logged if "log_failure" in e and e.get("consumer") == "c1"]
        self.assertEqual(len(failures), 1)
        h.clock.advance(1.0)
        self.assertEqual(bad.messages, [])
        h.clock.advance(2.0)
        self.assertEqual([m["n"] for m in bad.messages], [1, 2])
        self.assertEqual(h.store.saved, ["c1"])
        self.assertEqual(h.fatal, [])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_processorFailureFailsDelivery(self):
        """
        A processor exception reaches the source (which retries the page), not the consumers.
        """
        h = Harness(processors=[Exploding()])
        h.pipeline.startService()
        with self.assertRaises(ValueError):
            h.source.emit(items(1, 2), cursor="c1")
        self.assertEqual(h.consumers[0].batches, [])
        self.assertEqual(h.store.saved, [])

    def test_startsFromCheckpoint(self):
        h = Harness(store=RecordingStore(initial="0000000000000000041-0000000000"))
        h.pipeline.startService()
        self.assertEqual(h.source.checkpoint, Checkpoint("0000000000000000041-0000000000"))

    def test_consumerStartFailureIsFatal(self):
        h = Harness()
        h.consumers[1].start = lambda: fail(OSError("port 8080 in use"))
        errors = []
        globalLogPublisher.addObserver(errors.append)
        self.addCleanup(globalLogPublisher.removeObserver, errors.append)
        h.pipeline.startService()
        self.assertEqual(len(h.fatal), 1)
        self.assertFalse(h.source.started)
        [critical] = [e for e in errors if e.get("log_level").name == "critical"]
        self.assertEqual(critical["where"], " (consumer c1)")
        self.assertEqual(critical["error"], "port 8080 in use")


class StopTests(SynchronousTestCase):
    def test_stopWaitsForAcksThenStopsConsumers(self):
        h = Harness(consumers=2, maxInFlight=5)
        h.consumers[0].hold = True
        h.pipeline.startService()
        h.source.emit(items(1, 2), cursor="c1")
        d = h.pipeline.stopService()
        self.assertTrue(h.source.stopped)
        self.assertNoResult(d)
        self.assertFalse(h.consumers[1].stopped)
        h.consumers[0].release()
        self.successResultOf(d)
        self.assertEqual(h.store.saved, ["c1"])
        self.assertTrue(all(c.stopped for c in h.consumers))

    def test_stopGivesUpAfterTimeout(self):
        h = Harness(consumers=1, maxInFlight=5)
        h.consumers[0].hold = True
        h.pipeline.startService()
        h.source.emit(items(1, 2), cursor="c1")
        d = h.pipeline.stopService()
        h.clock.advance(29)
        self.assertNoResult(d)
        h.clock.advance(1)
        self.successResultOf(d)
        self.assertEqual(h.store.saved, [])
        self.assertTrue(h.consumers[0].stopped)

    def test_stopCancelsRetries(self):
        h = Harness(consumers=1)
        h.consumers[0].failures = 1
        h.pipeline.startService()
        h.source.emit(items(1, 2), cursor="c1")
        h.clock.advance(30)
        # the retry succeeded
        self.assertEqual(h.store.saved, ["c1"])
        h.consumers[0].failures = 5
        h.source.emit(items(2, 3), cursor="c2")
        d = h.pipeline.stopService()
        h.clock.advance(30)
        self.successResultOf(d)
        self.assertEqual(h.clock.getDelayedCalls(), [])
        self.flushLoggedErrors(RuntimeError)


class RestartTests(SynchronousTestCase):
    def test_restartFromFileCheckpointNoGapNoDuplicate(self):
        """
        A generating source, stopped mid-way and started again on the same state directory,
        delivers every item exactly once across both runs.
        """
        state = self.mktemp()
        seen = []
        for run in range(2):
            clock = Clock()
            source = MemorySource(clock, count=50, batch_size=7, interval=1)
            consumer = MemoryConsumer()
            pipeline = Pipeline("p", source, [], [("c", consumer)], FileCheckpointStore(state), clock)
            pipeline.startService()
            for _ in range(3 if run == 0 else 100):
                clock.advance(1)
            self.successResultOf(pipeline.stopService())
            seen.extend(m["n"] for m in consumer.messages)
        self.assertEqual(seen, list(range(1, 51)))

    def test_fileStoreAtomicAndMissing(self):
        store = FileCheckpointStore(self.mktemp())
        self.assertIsNone(self.successResultOf(store.load("p")))
        self.successResultOf(store.save("p", "x1"))
        self.successResultOf(store.save("p", Checkpoint("x2", network="Test SDF Network ; September 2015")))
        self.assertEqual(
            self.successResultOf(store.load("p")), Checkpoint("x2", network="Test SDF Network ; September 2015")
        )
        self.assertEqual(self.successResultOf(store.load("other/name")), None)
        self.assertFalse([n for n in os.listdir(store.directory) if n.endswith(".tmp")])

    def test_fileRecordsNetworkAndLedger(self):
        """
        The state file says where the checkpoint came from: cursor, ledger and network.
        """
        store = FileCheckpointStore(self.mktemp())
        cursor = "0000054747948126208-0000000000"
        self.successResultOf(store.save("p", Checkpoint(cursor, network="Public Global Stellar Network ; September 2015")))
        with open(store.path("p")) as f:
            self.assertEqual(
                json.load(f),
                {
                    "pipeline": "p",
                    "cursor": cursor,
                    "ledger": 12747,
                    "network": "Public Global Stellar Network ; September 2015",
                },
            )

    def test_fileRecordsOwedStarts(self):
        """
        Durable consumers' owed starts go to the file and come back; a malformed entry loads as
        none (the consumer then starts where the live flow starts).
        """
        store = FileCheckpointStore(self.mktemp())
        checkpoint = Checkpoint("c9", owed={"SaveToPostgreSQL[1]": "c2", "SaveToRedis[2]": "c5"})
        self.successResultOf(store.save("p", checkpoint))
        with open(store.path("p")) as f:
            self.assertEqual(json.load(f)["owed"], {"SaveToPostgreSQL[1]": "c2", "SaveToRedis[2]": "c5"})
        self.assertEqual(self.successResultOf(store.load("p")), checkpoint)
        self.successResultOf(store.save("p", Checkpoint("c10")))
        with open(store.path("p")) as f:
            self.assertNotIn("owed", json.load(f))
        with open(store.path("p"), "w") as f:
            json.dump({"pipeline": "p", "cursor": "c7", "owed": {"x": 3}}, f)
        self.assertEqual(self.successResultOf(store.load("p")), Checkpoint("c7"))

    def test_oldFileWithoutNetwork(self):
        """
        A state file written before checkpoints knew their network loads with network None.
        """
        store = FileCheckpointStore(self.mktemp())
        os.makedirs(store.directory)
        with open(store.path("p"), "w") as f:
            json.dump({"pipeline": "p", "cursor": "c7"}, f)
        self.assertEqual(self.successResultOf(store.load("p")), Checkpoint("c7"))

    def test_reset(self):
        store = FileCheckpointStore(self.mktemp())
        self.successResultOf(store.save("p", "x1"))
        store.reset("p")
        store.reset("p")
        self.assertIsNone(self.successResultOf(store.load("p")))

    def test_pipelineSavesSourceNetwork(self):
        clock = Clock()
        store = RecordingStore()
        saved = []
        store.save = lambda pipeline, checkpoint: saved.append(checkpoint) or succeed(None)
        source = MemorySource(clock, network="Test SDF Network ; September 2015")
        pipeline = Pipeline("p", source, [], [("c", MemoryConsumer())], store, clock)
        pipeline.startService()
        source.emit(items(1, 2), cursor=itemId(1))
        self.assertEqual(saved, [Checkpoint(itemId(1), network="Test SDF Network ; September 2015")])


class FinishTests(SynchronousTestCase):
    def test_completeAfterAcks(self):
        h = Harness(consumers=1, source=None)
        clock = h.clock
        source = MemorySource(clock)
        finished = []
        pipeline = Pipeline("p", source, [], [("c", h.consumers[0])], h.store, clock)
        pipeline.onFinished = finished.append
        h.consumers[0].hold = True
        pipeline.startService()
        source.emit(items(1, 2), cursor="c1")
        source.finish()
        self.assertEqual(finished, [])
        h.consumers[0].release()
        self.assertEqual(finished, [pipeline])
        self.assertEqual(pipeline.finished, "complete")
        self.assertEqual(h.store.saved, ["c1"])

    def test_sourceFailure(self):
        from twisted.python.failure import Failure

        source = MemorySource(Clock())
        finished = []
        pipeline = Pipeline("p", source, [], [("c", MemoryConsumer())], RecordingStore(), Clock())
        pipeline.onFinished = finished.append
        pipeline.startService()
        source.finish(Failure(ValueError("-32602 invalid filters")))
        self.assertEqual(pipeline.finished, "failed")
        self.assertEqual(finished, [pipeline])

    def test_sourceStartReturningNothingNeverFinishes(self):
        """
        A source whose start returns no Deferred is taken as endless: the pipeline runs on.
        """

        class Plain:
            def start(self, deliver, checkpoint):
                pass

            def stop(self):
                pass

        finished = []
        pipeline = Pipeline("p", Plain(), [], [], RecordingStore(), Clock())
        pipeline.onFinished = finished.append
        pipeline.startService()
        self.assertEqual((finished, pipeline.finished), ([], None))

    def test_sourceStoppedIsNotComplete(self):
        """
        The source's Deferred fires when the pipeline stops it: that is not completion.
        """
        clock = Clock()
        source = MemorySource(clock)
        finished = []
        pipeline = Pipeline("p", source, [], [("c", MemoryConsumer())], RecordingStore(), clock)
        pipeline.onFinished = finished.append
        pipeline.startService()
        self.successResultOf(pipeline.stopService())
        self.assertEqual((finished, pipeline.finished), ([], None))

    def test_sourceStartRaising(self):
        """
        A source whose start raises has failed: the pipeline finishes as failed.
        """

        class Broken(MemorySource):
            def start(self, deliver, checkpoint):
                raise ValueError("bad checkpoint")

        pipeline = Pipeline("p", Broken(Clock()), [], [("c", MemoryConsumer())], RecordingStore(), Clock())
        pipeline.startService()
        self.assertEqual(pipeline.finished, "failed")
        self.flushLoggedErrors(ValueError)


@implementer(IProcessor)
class Later:
    """
    Works elsewhere: each call returns a Deferred the test fires.
    """

    producedTypes = None

    def __init__(self):
        self.calls = []

    def process(self, items):
        d = Deferred()
        self.calls.append((items, d))
        return d


class AsyncProcessorTests(SynchronousTestCase):
    def test_sourceWaitsForTheProcessor(self):
        """
        A processor that returns a Deferred holds the batch (and the source) until it fires;
        later processors run on its result; consumers get sealed messages in order.
        """
        later = Later()
        h = Harness(consumers=1, processors=[later, Doubler()])
        h.pipeline.startService()
        ready = h.source.emit(items(1, 3), cursor=itemId(2))
        self.assertNoResult(ready)
        self.assertEqual(h.consumers[0].batches, [])
        batch, d = later.calls[0]
        d.callback([dict(i, later=True) for i in batch])
        self.successResultOf(ready)
        messages = h.consumers[0].messages
        self.assertEqual([(m["n"], m["doubled"], m["later"]) for m in messages], [(1, 2, True), (2, 4, True)])
        self.assertEqual(messages[0].json, b'{"id":"0000000000000000001-0000000000","n":1,"later":true,"doubled":2}')
        self.assertEqual(h.store.saved, [itemId(2)])

    def test_failureFailsTheDelivery(self):
        later = Later()
        h = Harness(consumers=1, processors=[later])
        h.pipeline.startService()
        ready = h.source.emit(items(1, 2), cursor=itemId(1))
        later.calls[0][1].errback(RuntimeError("worker died"))
        self.failureResultOf(ready, RuntimeError)
        self.assertEqual(h.consumers[0].batches, [])
        self.assertEqual(h.store.saved, [])


class ProducedTypesTests(SynchronousTestCase):
    """
    The message types of a chain of processors: the last declaring processor's.
    """

    def test_chain(self):
        class Declares:
            def __init__(self, types):
                self.producedTypes = types

        from stellarflow.pipeline import producedTypes

        self.assertIsNone(producedTypes([]))
        self.assertIsNone(producedTypes([Doubler()]))
        self.assertEqual(producedTypes([Declares({"trade"})]), frozenset(["trade"]))
        self.assertEqual(producedTypes([Declares({"trade"}), Doubler()]), frozenset(["trade"]))
        self.assertEqual(producedTypes([Declares({"trade"}), Declares({"payment"})]), frozenset(["payment"]))
