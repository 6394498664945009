"""
The admin HTTP endpoint: ``/healthz`` and ``/metrics`` (Prometheus text format).

Off unless the config has ``admin:``; bound to 127.0.0.1 by default.  Metrics are read from the
components at scrape time: a source, consumer or pipeline that has a ``stats()`` method returning
a flat mapping of numbers is exported, so components keep plain counters and never import
Prometheus.  Keys ending in ``_total`` become counters, the others gauges.

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
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site

from stellarflow.schema import Field, Integer, Schema, String

adminSchema = Schema(
    {
        "host": Field(String(nonEmpty=True), "127.0.0.1", "interface to listen on"),
        "port": Field(Integer(0, 65535), 9090, "TCP port"),
        "max_lag_ledgers": Field(Integer(0), 10, "/healthz fails when a pipeline is further behind the RPC's latest ledger"),
    }
)


def _stats(obj):
    stats = getattr(obj, "stats", None)
    if stats is None:
        return {}
    try:
        return dict(stats())
    except Exception:
        return {}


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
                for key, value in _stats(consumer).items():
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


def health(daemon, maxLag):
    """
    C{(healthy, body)}: healthy when every pipeline runs, its source is polling, and it is at
    most C{maxLag} ledgers behind the RPC's latest ledger.
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
        lag = stats.get("lag_ledgers")
        if lag is not None and lag > maxLag:
            reasons.append("{} ledgers behind the RPC's latest ledger (limit {})".format(lag, maxLag))
        pipelines[pipeline.name] = {
            "healthy": not reasons,
            "reasons": reasons,
            "latest_ledger": stats.get("latest_ledger"),
            "lag_ledgers": lag,
            "checkpoint": pipeline.committed,
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

    def __init__(self, daemon, maxLag):
        Resource.__init__(self)
        self.daemon = daemon
        self.maxLag = maxLag

    def render_GET(self, request):
        healthy, body = health(self.daemon, self.maxLag)
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(body, sort_keys=True).encode("utf-8")


def adminResource(daemon, maxLag):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    root.putChild(b"healthz", HealthResource(daemon, maxLag))
    return root


class AdminService(Service):
    """
    Serves L{adminResource} on C{host:port}.
    """

    log = Logger()

    def __init__(self, daemon, reactor, host="127.0.0.1", port=9090, max_lag_ledgers=10):
        self.daemon = daemon
        self.reactor = reactor
        self.host = host
        self.port = port
        self.maxLag = max_lag_ledgers
        self.listening = None

    def startService(self):
        Service.startService(self)
        endpointType = TCP6ServerEndpoint if ":" in self.host else TCP4ServerEndpoint
        endpoint = endpointType(self.reactor, self.port, interface=self.host)
        site = Site(adminResource(self.daemon, self.maxLag))
        site.noisy = False
        d = endpoint.listen(site)

        def listening(port):
            self.listening = port
            self.log.info(
                "Admin endpoint on http://{host}:{port}/ (/healthz, /metrics)", host=self.host, port=port.getHost().port
            )

        def failed(f):
            self.log.critical("Cannot listen for the admin endpoint on {host}:{port}: {error}", host=self.host, port=self.port, error=f.getErrorMessage())
            self.daemon._fatal(f)

        d.addCallbacks(listening, failed)
        return d

    def stopService(self):
        Service.stopService(self)
        if self.listening is not None:
            return maybeDeferred(self.listening.stopListening)
