"""
One pipeline as a service: source -> processors -> consumers, with acknowledgements,
backpressure and checkpoints (the delivery contract of L{stellarflow.interfaces}).
"""

import attr
from twisted.application.service import Service
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    fail,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.logger import Logger

from stellarflow.backoff import Backoff
from stellarflow.message import sealAll


@attr.s
class ComponentContext:
    """
    What a component may need from its surroundings; handed to C{fromConfig}.

    @ivar reactor: the reactor (or, in tests, a fake) - components never import the global one.
    @ivar pipeline: the pipeline's name.
    @ivar state_dir: where components may keep files.
    @ivar network: the source's ``network`` setting, for processors that verify assets.
    @ivar history: the pipeline's L{IEventHistory} when one of its consumers stores the events
        durably (an L{IEventHistorySource}, built before the others), else C{None}.
    """

    reactor = attr.ib()
    pipeline = attr.ib()
    state_dir = attr.ib(default="stellarflow-state")
    network = attr.ib(default=None)
    history = attr.ib(default=None)


class ConsumerLane:
    """
    Delivers batches to one consumer, keeping their order, retrying failures with backoff.
    """

    log = Logger()

    def __init__(self, consumer, name, clock, onAck, backoff=None):
        self.consumer = consumer
        self.name = name
        self.clock = clock
        self.onAck = onAck
        self.backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self.outstanding = {}
        self._retries = {}
        self._drainWaiters = []
        self.stopping = False

    def submit(self, batch):
        self.outstanding[batch.sequence] = batch
        self._attempt(batch)

    def _attempt(self, batch):
        self._retries.pop(batch.sequence, None)
        d = maybeDeferred(self.consumer.consume, batch)
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _succeeded(self, _, batch):
        self.backoff.reset()
        self.outstanding.pop(batch.sequence, None)
        self.onAck(self, batch)
        if not self.outstanding:
            waiters, self._drainWaiters = self._drainWaiters, []
            for d in waiters:
                d.callback(None)

    def _failed(self, failure, batch):
        delay = self.backoff.next()
        self.log.failure(
            "Consumer {consumer} failed on batch {sequence}; retrying in {delay:.1f}s",
            failure,
            consumer=self.name,
            sequence=batch.sequence,
            delay=delay,
        )
        if self.stopping:
            return
        self._retries[batch.sequence] = self.clock.callLater(delay, self._attempt, batch)

    def drained(self):
        """
        A Deferred firing once no batch is outstanding.
        """
        if not self.outstanding:
            return succeed(None)
        d = Deferred()
        self._drainWaiters.append(d)
        return d

    def stop(self):
        """
        Stop retrying: what is still outstanding will be redelivered on the next start.
        """
        self.stopping = True
        for call in self._retries.values():
            if call.active():
                call.cancel()
        self._retries.clear()


class Pipeline(Service):
    """
    Runs one source into its processors and consumers.

    @param consumers: a list of C{(name, consumer)} pairs.
    @param checkpoints: an L{ICheckpointStore}.
    @param onFatal: called with a Failure when the pipeline cannot start (a consumer could not
        listen, say); the daemon uses it to stop with an error.
    """

    log = Logger()

    def __init__(
        self,
        name,
        source,
        processors,
        consumers,
        checkpoints,
        clock,
        maxInFlight=8,
        shutdownTimeout=30.0,
        onFatal=None,
    ):
        self.setName(name)
        self.source = source
        self.processors = list(processors)
        self.consumers = list(consumers)
        self.checkpoints = checkpoints
        self.clock = clock
        self.maxInFlight = maxInFlight
        self.shutdownTimeout = shutdownTimeout
        self.onFatal = onFatal
        self.lanes = [ConsumerLane(c, n, clock, self._acked) for n, c in self.consumers]
        self._sequence = 0
        self._pending = {}
        self._readyWaiter = None
        self._saving = None
        self._nextCursor = None
        self.committed = None
        self.delivered = 0
        self._sourceStarted = False
        self._started = None
        self.finished = None
        self.onFinished = None

    # -- lifecycle -------------------------------------------------------

    def startService(self):
        Service.startService(self)
        self._started = self._start()
        self._started.addErrback(self._startFailed)
        return self._started

    @inlineCallbacks
    def _start(self):
        results = yield DeferredList(
            [maybeDeferred(c.start) for _, c in self.consumers], consumeErrors=True
        )
        for (name, _), (ok, result) in zip(self.consumers, results):
            if not ok:
                result.value.consumerName = name
                result.raiseException()
        cursor = yield self.checkpoints.load(self.name)
        self.committed = cursor
        self.log.info(
            "Pipeline {pipeline} starting from {where}",
            pipeline=self.name,
            where="checkpoint {}".format(cursor) if cursor else "the source's configured start",
        )
        if not self.running:
            return
        self._sourceStarted = True
        try:
            ended = self.source.start(self._deliver, cursor)
        except Exception:
            ended = fail()
        if isinstance(ended, Deferred):
            ended.addCallbacks(self._sourceComplete, self._sourceFailed)

    def _startFailed(self, failure):
        consumer = getattr(failure.value, "consumerName", None)
        self.log.critical(
            "Pipeline {pipeline} cannot start{where}: {error}",
            pipeline=self.name,
            where=" (consumer {})".format(consumer) if consumer else "",
            error=failure.getErrorMessage(),
        )
        if self.onFatal is not None:
            self.onFatal(failure)

    def _sourceComplete(self, _):
        """
        The source has delivered everything it will (a backfill reached its end): once every
        consumer has acknowledged, the pipeline is finished.
        """
        if not self.running:
            return  # stopped: the source's Deferred fired because of stop()
        d = DeferredList([lane.drained() for lane in self.lanes])

        def done(_):
            self.log.info("Pipeline {pipeline} complete at checkpoint {cursor}", pipeline=self.name, cursor=self.committed)
            self._finish("complete")

        d.addCallback(done)

    def _sourceFailed(self, failure):
        self.log.critical(
            "Pipeline {pipeline} stopped: its source cannot continue: {error}",
            pipeline=self.name,
            error=failure.getErrorMessage(),
        )
        self._finish("failed")

    def _finish(self, how):
        if self.finished is None:
            self.finished = how
            if self.onFinished is not None:
                self.onFinished(self)

    def stopService(self):
        Service.stopService(self)
        return self._stop()

    @inlineCallbacks
    def _stop(self):
        if self._sourceStarted:
            yield maybeDeferred(self.source.stop)
        drained = DeferredList([lane.drained() for lane in self.lanes], consumeErrors=True)
        timer = self.clock.callLater(self.shutdownTimeout, drained.cancel)
        try:
            yield drained
        except Exception:
            pass
        if timer.active():
            timer.cancel()
        unacked = sum(len(lane.outstanding) for lane in self.lanes)
        if unacked:
            self.log.warn(
                "Pipeline {pipeline} stopping with {count} unacknowledged batch(es); "
                "they will be fetched again on the next start",
                pipeline=self.name,
                count=unacked,
            )
        for lane in self.lanes:
            lane.stop()
        while self._saving is not None:
            yield self._saving
        results = yield DeferredList([maybeDeferred(c.stop) for _, c in self.consumers], consumeErrors=True)
        for (name, _), (ok, result) in zip(self.consumers, results):
            if not ok:
                self.log.failure("Consumer {consumer} failed to stop cleanly", result, consumer=name)
        self.log.info("Pipeline {pipeline} stopped at checkpoint {cursor}", pipeline=self.name, cursor=self.committed)

    # -- the flow --------------------------------------------------------

    def _deliver(self, batch):
        """
        Process one batch and hand it to every consumer; the result fires when the source may
        produce the next one.  A processor exception fails it (the source retries the page).
        """
        messages = batch.items
        for processor in self.processors:
            messages = processor.process(messages)
        batch.messages = messages = sealAll(messages)
        self._sequence += 1
        batch.sequence = self._sequence
        self._pending[batch.sequence] = [batch, set(self.lanes)]
        self.delivered += len(messages)
        for lane in self.lanes:
            lane.submit(batch)
        return self._whenReady()

    def _full(self):
        return any(len(lane.outstanding) >= self.maxInFlight for lane in self.lanes)

    def _whenReady(self):
        if not self._full():
            return succeed(None)
        self._readyWaiter = Deferred()
        return self._readyWaiter

    def _acked(self, lane, batch):
        entry = self._pending.get(batch.sequence)
        if entry is None:
            return
        entry[1].discard(lane)
        cursor = None
        while self._pending:
            lowest = min(self._pending)
            done, waiting = self._pending[lowest]
            if waiting:
                break
            del self._pending[lowest]
            if done.cursor is not None:
                cursor = done.cursor
        if cursor is not None:
            self._commit(cursor)
        if self._readyWaiter is not None and not self._full():
            waiter, self._readyWaiter = self._readyWaiter, None
            waiter.callback(None)

    def _commit(self, cursor):
        """
        Save C{cursor}, one save at a time; while one runs only the newest cursor waits.
        """
        if self._saving is not None:
            self._nextCursor = cursor
            return
        d = self._saving = maybeDeferred(self.checkpoints.save, self.name, cursor)

        def saved(_):
            self.committed = cursor

        def failed(f):
            self.log.failure("Pipeline {pipeline} could not save checkpoint {cursor}", f, pipeline=self.name, cursor=cursor)

        def next_(_):
            self._saving = None
            if self._nextCursor is not None:
                following, self._nextCursor = self._nextCursor, None
                self._commit(following)

        d.addCallbacks(saved, failed)
        d.addBoth(next_)

    def stats(self):
        """
        Counters for /metrics.
        """
        return {
            "messages_total": self.delivered,
            "batches_total": self._sequence,
            "unacknowledged_batches": self.unacknowledged,
        }

    @property
    def unacknowledged(self):
        """
        How many batches some consumer has not acknowledged yet.
        """
        return sum(1 for _, waiting in self._pending.values() if waiting)
