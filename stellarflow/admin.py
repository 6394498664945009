"""
The admin HTTP endpoint: ``/`` (the operator's status page, L{stellarflow.dashboard.status}),
``/healthz``, ``/metrics`` (Prometheus text format) and, when a pipeline stores its events in
PostgreSQL, ``/events`` (L{stellarflow.postgres.endpoint}).

Off unless the config has ``admin:``; bound to 127.0.0.1 by default.  Metrics are read from the
components at scrape time: a source, consumer or pipeline that provides L{IStatsProvider}
(a ``stats()`` method returning a flat mapping of numbers) is exported, so components keep
plain counters and never import Prometheus.  Keys ending in ``_total`` become counters, the
others gauges.  A consumer's series also carry the pipeline's view of it (a durable consumer's
state, position and lag).

The page is rendered in the reactor thread (not in a WSGI thread pool as
``prometheus_client.twisted`` does), so reading component state needs no locking.
"""

import json

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.application.service import Service
from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.logger import Logger, globalLogPublisher
from twisted.web.resource import Resource
from twisted.web.server import Site

from stellarflow.dashboard.status import RecentWarnings, StatusResource
from stellarflow.interfaces import IEventQuerySource, IStatsProvider
from stellarflow.schema import Field, Integer, Schema, String

log = Logger()

adminSchema = Schema(
    {
        "host": Field(String(nonEmpty=True), "127.0.0.1", "interface to listen on"),
        "port": Field(Integer(0, 65535), 9090, "TCP port"),
        "max_lag_ledgers": Field(Integer(0), 10, "/healthz fails when a pipeline is further behind the RPC's latest ledger"),
        "max_consumer_lag_ledgers": Field(
            Integer(0), 10, "/healthz fails when a durable consumer is further behind its pipeline's live flow"
        ),
    }
)


def _stats(obj):
    """
    C{obj.stats()} when C{obj} provides L{IStatsProvider}; a failing one is logged, not fatal.
    """
    if not IStatsProvider.providedBy(obj):
        return {}
    try:
        return dict(obj.stats())
    except Exception:
        log.failure("Cannot read the stats of {obj!r}", obj=obj)
        return {}


def consumerStats(pipeline, name, consumer):
    """
    A consumer's own stats and the pipeline's view of it (state, position, lag).
    """
    stats = _stats(consumer)
    stats.update(pipeline.memberStats(name))
    return stats


class DaemonCollector:
    """
    A Prometheus collector over a daemon's pipelines.
    """

    def __init__(self, daemon):
        self.daemon = daemon

    def collect(self):
        families = {}

        def family(name, kind, doc, labels):
            key = (name, kind)
            if key not in families:
                cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                families[key] = cls(name, doc, labels=labels)
            return families[key]

        for pipeline in self.daemon.pipelines:
            name = pipeline.name
            for key, value in _stats(pipeline).items():
                self._add(family, "stellarflow_pipeline_" + key, ["pipeline"], [name], value)
            for key, value in _stats(pipeline.source).items():
                self._add(family, "stellarflow_source_" + key, ["pipeline"], [name], value)
            for consumerName, consumer in pipeline.consumers:
                for key, value in consumerStats(pipeline, consumerName, consumer).items():
                    self._add(
                        family, "stellarflow_consumer_" + key, ["pipeline", "consumer"], [name, consumerName], value
                    )
        return list(families.values())

    @staticmethod
    def _add(family, name, labels, values, value):
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)):
            return
        if name.endswith("_total"):
            family(name[: -len("_total")], "counter", name, labels).add_metric(values, value)
        else:
            family(name, "gauge", name, labels).add_metric(values, value)


def health(daemon, maxLag, maxConsumerLag=10):
    """
    C{(healthy, body)}: healthy when every pipeline runs, its source is polling, has had a
    successful answer from its server within its health timeout and is at most C{maxLag}
    ledgers behind the server's latest ledger; when its checkpoint can be written; when every
    durable consumer is in the live flow at most C{maxConsumerLag} ledgers behind it; and when
    no consumer has every connection slot taken.
    """
    pipelines = {}
    healthy = True
    for pipeline in daemon.pipelines:
        stats = _stats(pipeline.source)
        reasons = []
        if not pipeline.running:
            reasons.append("pipeline is not running")
        if stats.get("polling") is not None and not stats.get("polling"):
            reasons.append("source is not polling")
        silence, limit = stats.get("seconds_since_success"), stats.get("health_timeout_seconds")
        if silence is not None and limit is not None and silence > limit:
            reasons.append(
                "no successful answer from the RPC for {:.0f}s (limit {:g}s){}".format(
                    silence, limit, ": " + stats["last_error"] if stats.get("last_error") else ""
                )
            )
        lag = stats.get("lag_ledgers")
        if lag is not None and lag > maxLag:
            reasons.append("{} ledgers behind the RPC's latest ledger (limit {})".format(lag, maxLag))
        if pipeline.checkpointFailure is not None:
            reasons.append("cannot write its checkpoint: {}".format(pipeline.checkpointFailure))
        consumers = {}
        for name, consumer in pipeline.consumers:
            cstats = consumerStats(pipeline, name, consumer)
            consumers[name] = {k: cstats[k] for k in ("attached", "position_ledger", "lag_ledgers") if k in cstats}
            if cstats.get("catching_up"):
                reasons.append("consumer {} is detached from the live flow, catching up from ledger {}".format(
                    name, cstats.get("position_ledger")))
            elif cstats.get("attached") is False:
                reasons.append("consumer {} is waiting for its store to answer".format(name))
            elif (cstats.get("lag_ledgers") or 0) > maxConsumerLag:
                reasons.append("consumer {} is {} ledgers behind the live flow (limit {})".format(
                    name, cstats["lag_ledgers"], maxConsumerLag))
            if cstats.get("connections_full"):
                reasons.append("consumer {} has every connection slot taken".format(name))
        pipelines[pipeline.name] = {
            "healthy": not reasons,
            "reasons": reasons,
            "latest_ledger": stats.get("latest_ledger"),
            "lag_ledgers": lag,
            "seconds_since_success": silence,
            "checkpoint": pipeline.committed,
            "consumers": consumers,
        }
        healthy = healthy and not reasons
    return healthy, {"status": "ok" if healthy else "unhealthy", "pipelines": pipelines}


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, registry):
        Resource.__init__(self)
        self.registry = registry

    def render_GET(self, request):
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.registry)


class HealthResource(Resource):
    isLeaf = True

    def __init__(self, daemon, maxLag, maxConsumerLag):
        Resource.__init__(self)
        self.daemon = daemon
        self.maxLag = maxLag
        self.maxConsumerLag = maxConsumerLag

    def render_GET(self, request):
        healthy, body = health(self.daemon, self.maxLag, self.maxConsumerLag)
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(body, sort_keys=True).encode("utf-8")


def adminResource(daemon, maxLag, maxConsumerLag=10, warnings=None):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    root = Resource()
    root.putChild(b"", StatusResource(
        daemon, lambda: health(daemon, maxLag, maxConsumerLag), consumerStats, _stats,
        warnings if warnings is not None else RecentWarnings(),
    ))
    root.putChild(b"metrics", MetricsResource(registry))
    root.putChild(b"healthz", HealthResource(daemon, maxLag, maxConsumerLag))
    queries = eventQueries(daemon)
    if queries:
        from stellarflow.postgres.endpoint import EventsResource

        root.putChild(b"events", EventsResource(queries))
    return root


def eventQueries(daemon):
    """
    Pipeline name -> the L{IEventQuery} of its first consumer that serves one (``GET /events``).
    """
    queries = {}
    for pipeline in daemon.pipelines:
        for _, consumer in pipeline.consumers:
            if pipeline.name not in queries and IEventQuerySource.providedBy(consumer):
                query = consumer.eventQuery()
                if query is not None:
                    queries[pipeline.name] = query
    return queries


class AdminService(Service):
    """
    Serves L{adminResource} on C{host:port}.
    """

    log = Logger()

    def __init__(self, daemon, reactor, host="127.0.0.1", port=9090, max_lag_ledgers=10, max_consumer_lag_ledgers=10,
                 logPublisher=globalLogPublisher):
        self.daemon = daemon
        self.reactor = reactor
        self.host = host
        self.port = port
        self.maxLag = max_lag_ledgers
        self.maxConsumerLag = max_consumer_lag_ledgers
        self.listening = None
        # the status page's recent warnings, kept while the service runs
        self.logPublisher = logPublisher
        self.warnings = RecentWarnings()

    def startService(self):
        Service.startService(self)
        self.logPublisher.addObserver(self.warnings)
        endpointType = TCP6ServerEndpoint if ":" in self.host else TCP4ServerEndpoint
        endpoint = endpointType(self.reactor, self.port, interface=self.host)
        site = Site(adminResource(self.daemon, self.maxLag, self.maxConsumerLag, self.warnings))
        site.noisy = False
        # no access log: load balancers and monitors ask /healthz every few seconds, and a line
        # each would bury what the daemon has to say over months
        site.log = _noAccessLog
        d = endpoint.listen(site)

        def listening(port):
            self.listening = port
            self.log.info(
                "Admin endpoint on http://{host}:{port}/ (status page; /healthz, /metrics{events})", host=self.host, port=port.getHost().port,
                events=", /events" if eventQueries(self.daemon) else "",
            )

        def failed(f):
            self.log.critical("Cannot listen for the admin endpoint on {host}:{port}: {error}", host=self.host, port=self.port, error=f.getErrorMessage())
            self.daemon.fatal(f)

        d.addCallbacks(listening, failed)
        return d

    def stopService(self):
        Service.stopService(self)
        self.logPublisher.removeObserver(self.warnings)
        if self.listening is not None:
            return maybeDeferred(self.listening.stopListening)


def _noAccessLog(request):
    """
    The admin site's access log: none (see L{AdminService.startService}).
    """
