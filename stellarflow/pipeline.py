"""
One pipeline as a service: source -> processors -> consumers, with acknowledgements,
backpressure and checkpoints (the delivery contract of L{stellarflow.interfaces}).

The live flow moves at the pace of its live consumers; durable consumers keep their own
position and catch up on their own when they fall behind (L{stellarflow.durable}).
"""

from collections import deque

import attr
from twisted.application.service import IService, Service
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    fail,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.logger import Logger
from zope.interface import implementer

from stellarflow.checkpoint import Checkpoint
from stellarflow.durable import DurableMember, LiveMember, notBefore
from stellarflow.interfaces import ICheckpointStore, IStatsProvider
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
    @ivar produced_types: the message C{type} values the pipeline's processors produce (a
        frozenset, see L{producedTypes}), or C{None} when not known; set for consumers.
    """

    reactor = attr.ib()
    pipeline = attr.ib()
    state_dir = attr.ib(default="stellarflow-state")
    network = attr.ib(default=None)
    history = attr.ib(default=None)
    produced_types = attr.ib(default=None)


def producedTypes(processors):
    """
    The message types a chain of processors produces: those of the last one that declares its
    C{producedTypes} (C{None} when none does: not known).
    """
    produced = None
    for processor in processors:
        declared = processor.producedTypes
        if declared is not None:
            produced = frozenset(declared)
    return produced


def runProcessors(processors, items):
    """
    C{items} through C{processors} in turn, then sealed (L{stellarflow.message.sealAll}): a
    list, or a Deferred firing with it once a processor that returned a Deferred is done.
    """
    messages = items
    for i, processor in enumerate(processors):
        messages = processor.process(messages)
        if isinstance(messages, Deferred):
            return messages.addCallback(_runRest, processors[i + 1 :])
    return sealAll(messages)


def _runRest(messages, processors):
    return runProcessors(processors, messages)


@implementer(IStatsProvider)
class Pipeline(Service):
    """
    Runs one source into its processors and consumers.

    @param consumers: a list of C{(name, consumer)} pairs.  Those that provide
        L{ICheckpointStore} are durable: they keep their own position and, when
        C{newSource} is given, never hold up the live flow (L{stellarflow.durable}).
    @param checkpoints: the L{ICheckpointStore} of the live flow (the state file).
    @param newSource: a callable taking a label and returning a fresh, unstarted source of
        the same kind and config, for durable consumers catching up; without it durable
        consumers stay in the live flow and their backpressure pauses it.
    @param processors: the processors, in order; those that are services (worker pools) are
        started before the source and stopped once the consumers are drained.
    @param onFatal: called with a Failure when the pipeline cannot start (a consumer could not
        listen, say); the daemon uses it to stop with an error.

    @ivar lastCursor: the newest cursor the live flow delivered (or started from).
    @ivar origin: where the live flow started this run: its checkpoint, or the position just
        before its first batch; C{None} until known.
    @ivar owed: from the checkpoint: durable consumers without a position of their own, by
        name, and where each must start (see L{Checkpoint.owed}).
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
        newSource=None,
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
        self.newSource = newSource
        self.members = [
            DurableMember(self, n, c) if newSource is not None and ICheckpointStore.providedBy(c) else LiveMember(self, n, c)
            for n, c in self.consumers
        ]
        self._sequence = 0
        self._pending = {}
        self._readyWaiter = None
        self._offering = False
        self._saving = None
        self._nextCheckpoint = None
        self.committed = None
        self.delivered = 0
        self.lastCursor = None
        self.origin = None
        self.originKnown = False
        self.owed = {}
        self._originWaiters = []
        self.checkpointErrors = 0
        self.checkpointFailure = None
        self._recent = deque()
        self._recentStart = None
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
        checkpoint = Checkpoint.of((yield self.checkpoints.load(self.name)))
        if checkpoint is not None:
            self.committed = self.lastCursor = self.origin = self._recentStart = checkpoint.cursor
            self.originKnown = True
            self.owed = dict(checkpoint.owed)
        self.log.info(
            "Pipeline {pipeline} starting from {where}",
            pipeline=self.name,
            where="checkpoint {}".format(checkpoint.cursor) if checkpoint else "the source's configured start",
        )
        if not self.running:
            return
        for processor in self.processors:
            if IService.providedBy(processor):
                yield maybeDeferred(processor.startService)
        self._sourceStarted = True
        try:
            ended = self.source.start(self._deliver, checkpoint)
        except Exception:
            ended = fail()
        if isinstance(ended, Deferred):
            ended.addCallbacks(self._sourceComplete, self._sourceFailed)
        for member in self.members:
            member.begin()

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
        consumer has it (durable ones caught up), the pipeline is finished.
        """
        if not self.running:
            return  # stopped: the source's Deferred fired because of stop()
        d = DeferredList([member.settled() for member in self.members])

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
        stops = []
        for member in self.members:
            if member.durable:
                stops.extend(member.stop())
        yield DeferredList(stops, consumeErrors=True)
        drained = DeferredList([member.drained() for member in self.members], consumeErrors=True)
        timer = self.clock.callLater(self.shutdownTimeout, drained.cancel)
        try:
            yield drained
        except Exception:
            pass
        if timer.active():
            timer.cancel()
        unacked = sum(len(member.lane) for member in self.members)
        if unacked:
            self.log.warn(
                "Pipeline {pipeline} stopping with {count} unacknowledged batch(es); "
                "they will be fetched again on the next start",
                pipeline=self.name,
                count=unacked,
            )
        for member in self.members:
            if not member.durable:
                member.stop()
        while self._saving is not None:
            yield self._saving
        for processor in self.processors:
            if IService.providedBy(processor) and processor.running:
                yield maybeDeferred(processor.stopService)
        results = yield DeferredList([maybeDeferred(c.stop) for _, c in self.consumers], consumeErrors=True)
        for (name, _), (ok, result) in zip(self.consumers, results):
            if not ok:
                self.log.failure("Consumer {consumer} failed to stop cleanly", result, consumer=name)
        self.log.info("Pipeline {pipeline} stopped at checkpoint {cursor}", pipeline=self.name, cursor=self.committed)

    # -- the flow --------------------------------------------------------

    def process(self, items):
        """
        The sealed messages of C{items}, through every processor: a list, or a Deferred firing
        with it when a processor works elsewhere (worker processes).
        """
        return runProcessors(self.processors, items)

    def _deliver(self, batch):
        """
        Process one batch and hand it to every consumer of the live flow; the result fires
        when the source may produce the next one.  A processor exception fails it (the source
        retries the page).
        """
        messages = self.process(batch.items)
        if isinstance(messages, Deferred):
            return messages.addCallback(self._processed, batch)
        return self._processed(messages, batch)

    def _processed(self, messages, batch):
        batch.messages = messages
        self._sequence += 1
        batch.sequence = self._sequence
        self.delivered += len(messages)
        self._remember(batch)
        # A consumer may acknowledge within offer(): it is counted as waited for before, and
        # nothing is committed until every consumer had the batch.
        waiting = set()
        self._pending[batch.sequence] = [batch, waiting]
        self._offering = True
        try:
            for member in self.members:
                waiting.add(member)
                if not member.offer(batch):
                    waiting.discard(member)
        finally:
            self._offering = False
        # Durable consumers waiting for the live flow's origin rejoin now, from the batches held
        # (this one included: it was not offered to them).
        waiters, self._originWaiters = self._originWaiters, []
        for waiter in waiters:
            waiter()
        self._settle()
        return self._whenReady()

    def _remember(self, batch):
        """
        Keep the newest batches (at most C{max_in_flight}) for durable consumers rejoining at
        a recent position, and note where the live flow started and got to.
        """
        if not self.originKnown:
            self.originKnown = True
            self.origin = self._recentStart = batch.previous
        recent = self._recent
        recent.append(batch)
        while len(recent) > self.maxInFlight:
            dropped = recent.popleft()
            if dropped.cursor is not None:
                self._recentStart = dropped.cursor
        if batch.cursor is not None:
            self.lastCursor = batch.cursor

    def whenOriginKnown(self, callback):
        """
        Call C{callback} once L{origin} is known (now, if it is).  It stays C{None} when the
        live flow started without a checkpoint from a source that does not say where its
        first batch starts.
        """
        if self.originKnown:
            callback()
        else:
            self._originWaiters.append(callback)

    def batchesAfter(self, position):
        """
        The live batches held in memory that a consumer at C{position} still needs, in order:
        those ending after it (the first may also hold events up to C{position}: they are
        delivered again, and ignored by id).  C{[]} when C{position} is at or after the live
        flow's newest; C{None} when memory does not reach back to C{position}.
        """
        if position is None or self.lastCursor is None:
            return None
        if notBefore(position, self.lastCursor):
            return []
        if self._recentStart is None or not notBefore(position, self._recentStart):
            return None
        return [b for b in self._recent if b.cursor is None or not notBefore(position, b.cursor)]

    def _full(self):
        return any(member.full for member in self.members)

    def _whenReady(self):
        if not self._full():
            return succeed(None)
        self._readyWaiter = Deferred()
        return self._readyWaiter

    def acked(self, member, batch):
        """
        C{member} acknowledged a live C{batch}.
        """
        entry = self._pending.get(batch.sequence)
        if entry is not None and entry[0] is batch:
            entry[1].discard(member)
        self._settle()

    def release(self, member):
        """
        C{member} left the live flow: the live checkpoint no longer waits for it.
        """
        for _, waiting in self._pending.values():
            waiting.discard(member)
        self._settle()

    def _settle(self):
        """
        Commit the newest cursor whose batch and every earlier one were acknowledged, and let
        the source go on when no consumer is at its limit.
        """
        if self._offering:
            return
        cursor = chainHash = None
        while self._pending:
            lowest = min(self._pending)
            done, waiting = self._pending[lowest]
            if waiting:
                break
            del self._pending[lowest]
            if done.cursor is not None:
                cursor, chainHash = done.cursor, done.hash
        if cursor is not None:
            owed = {m.name: m.owedFrom for m in self.members if m.durable and m.owedFrom is not None}
            self._commit(Checkpoint(cursor, network=self.source.network, hash=chainHash, owed=owed))
        if self._readyWaiter is not None and not self._full():
            waiter, self._readyWaiter = self._readyWaiter, None
            waiter.callback(None)

    def _commit(self, checkpoint):
        """
        Save C{checkpoint}, one save at a time; while one runs only the newest waits.
        """
        if self._saving is not None:
            self._nextCheckpoint = checkpoint
            return
        d = self._saving = maybeDeferred(self.checkpoints.save, self.name, checkpoint)

        def saved(_):
            self.committed = checkpoint.cursor
            self.checkpointFailure = None

        def failed(f):
            self.checkpointErrors += 1
            self.checkpointFailure = f.getErrorMessage()
            self.log.failure(
                "Pipeline {pipeline} could not save checkpoint {cursor}", f, pipeline=self.name, cursor=checkpoint.cursor
            )

        def next_(_):
            self._saving = None
            if self._nextCheckpoint is not None:
                following, self._nextCheckpoint = self._nextCheckpoint, None
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
            "checkpoint_errors_total": self.checkpointErrors,
        }

    def memberStats(self, name):
        """
        The pipeline's view of consumer C{name}: its state and position (durable ones).
        """
        for member in self.members:
            if member.name == name:
                return member.stats()
        return {}

    @property
    def unacknowledged(self):
        """
        How many batches some consumer has not acknowledged yet.
        """
        return sum(1 for _, waiting in self._pending.values() if waiting)
