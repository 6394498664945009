"""
The daemon: a MultiService of pipelines built from a L{DaemonConfig}.
"""

import json

import attr
from twisted.application.service import MultiService
from twisted.logger import Logger
from zope.interface.verify import verifyObject

from stellarflow.checkpoint import FileCheckpointStore
from stellarflow.interfaces import IConsumer, IEventHistorySource, IProcessor, ISource, IStatsProvider
from stellarflow.pipeline import ComponentContext, Pipeline, producedTypes


class Daemon(MultiService):
    """
    Runs every pipeline of a config side by side.

    @ivar exitCode: 0, or 1 once a pipeline failed to start (the daemon then stops itself).
    @param stop: called with no arguments to stop the process when a pipeline cannot start.
    """

    log = Logger()

    def __init__(self, config, reactor, stop=None):
        MultiService.__init__(self)
        self.config = config
        self.reactor = reactor
        self.exitCode = 0
        self._stop = stop
        self.pipelines = []
        for spec in config.pipelines:
            pipeline = buildPipeline(spec, config, reactor, self.fatal)
            pipeline.onFinished = self._pipelineFinished
            pipeline.setServiceParent(self)
            self.pipelines.append(pipeline)
        if config.admin:
            from stellarflow.admin import AdminService

            AdminService(self, reactor, **config.admin).setServiceParent(self)

    def startService(self):
        self.log.info(
            "stellarflow starting {count} pipeline(s) from {file}: {names}",
            count=len(self.config.pipelines),
            file=self.config.filename,
            names=", ".join(p.name for p in self.config.pipelines),
        )
        for spec in self.config.pipelines:
            for component in [spec.source] + spec.processors + spec.consumers:
                self.log.info(
                    "Pipeline {pipeline} {role} {type} config: {config}",
                    pipeline=spec.name,
                    role=component.role,
                    type=component.type,
                    config=json.dumps(component.redacted(), sort_keys=True, default=str),
                )
        MultiService.startService(self)

    def _pipelineFinished(self, pipeline):
        """
        A pipeline ended by itself (a completed backfill, or a source that cannot go on).  The
        others keep running; once none is left the daemon stops, with status 1 if any failed.
        """
        if all(p.finished for p in self.pipelines):
            failed = [p.name for p in self.pipelines if p.finished == "failed"]
            self.log.info(
                "Every pipeline has finished{failed}; stopping",
                failed=" ({} failed)".format(", ".join(failed)) if failed else "",
            )
            if failed:
                self.exitCode = 1
            if self._stop is not None:
                self._stop()

    def fatal(self, failure):
        """
        A pipeline or the admin endpoint cannot start: stop the daemon with status 1.
        """
        self.exitCode = 1
        if self._stop is not None:
            self._stop()


def _storesHistory(factory):
    """
    Whether the consumers C{factory} builds are L{IEventHistorySource}s.
    """
    return isinstance(factory, type) and IEventHistorySource.implementedBy(factory)


def buildPipeline(spec, config, reactor, onFatal=None):
    """
    Instantiate one pipeline's components from its validated spec.
    """
    network = spec.source.config.get("network")
    context = ComponentContext(reactor=reactor, pipeline=spec.name, state_dir=config.state_dir, network=network)
    source = spec.source.factory.fromConfig(spec.source.config, context)
    verifyObject(ISource, source)
    if IEventHistorySource.providedBy(source):
        # A source that is itself a durable store (a Redis Stream) lends it like a consumer would.
        verifyObject(IEventHistorySource, source)
        context = attr.evolve(context, history=source.eventHistory())
    processors = []
    for p in spec.processors:
        processor = p.factory.fromConfig(p.config, context)
        verifyObject(IProcessor, processor)
        processors.append(processor)
    context = attr.evolve(context, produced_types=producedTypes(processors))
    # A consumer that stores the events durably is built first: it lends them to those built
    # after it (WebSocket clients resuming from a position older than the server's memory).
    built = {}
    for i in sorted(range(len(spec.consumers)), key=lambda i: not _storesHistory(spec.consumers[i].factory)):
        c = spec.consumers[i]
        consumer = c.factory.fromConfig(c.config, context)
        verifyObject(IConsumer, consumer)
        if context.history is None and IEventHistorySource.providedBy(consumer):
            verifyObject(IEventHistorySource, consumer)
            context = attr.evolve(context, history=consumer.eventHistory())
        built[i] = ("{}[{}]".format(c.type, i), consumer)
    consumers = [built[i] for i in range(len(spec.consumers))]
    for component in [source] + processors + [c for _, c in consumers]:
        if IStatsProvider.providedBy(component):
            verifyObject(IStatsProvider, component)

    def newSource(label):
        """
        Another reader of the same source, for a durable consumer catching up.
        """
        fresh = spec.source.factory.fromConfig(spec.source.config, attr.evolve(context, pipeline=label))
        verifyObject(ISource, fresh)
        return fresh

    return Pipeline(
        spec.name,
        source,
        processors,
        consumers,
        FileCheckpointStore(config.state_dir),
        reactor,
        maxInFlight=spec.max_in_flight,
        onFatal=onFatal,
        newSource=newSource,
    )
