"""
The operator's status page (C{GET /} on the admin port): the same figures as /metrics and
/healthz, over real HTTP from a running daemon, and its bounded list of recent warnings.
"""

import re

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow.config import parse
from stellarflow.daemon import Daemon
from stellarflow.dashboard.status import RecentWarnings, renderStatus
from tests.helpers import httpClient
from tests.test_websocket_e2e import cancelAutobahnTimers

CONFIG = """
state_dir: {state}
admin: {{host: 127.0.0.1, port: 0}}
pipelines:
  one:
    source: {{type: MemorySource}}
    processors: []
    consumers:
      - {{type: SaveToWebSocket, config: {{host: 127.0.0.1, port: 0}}}}
      - {{type: MemoryConsumer}}
"""


def cells(page, consumer):
    """
    The cells of a consumer's row of the page, as text.
    """
    row = re.search(r"<tr data-consumer='{}'>(.*?)</tr>".format(re.escape(consumer)), page).group(1)
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", row)]


def source(page, heading):
    return re.search(r"<th scope='row'>{}</th><td>(.*?)</td>".format(re.escape(heading)), page).group(1)


class RecentWarningsTests(SynchronousTestCase):
    def test_boundedWarningsOnly(self):
        """
        Only warnings and worse are kept, the newest C{size}; a failure's type and message
        are added to its text.
        """
        publisher = LogPublisher()
        warnings = RecentWarnings(size=3)
        publisher.addObserver(warnings)
        log = Logger(namespace="stellarflow.x.Thing", observer=publisher)
        log.info("not kept {n}", n=0)
        for n in range(1, 5):
            log.warn("warning {n}", n=n)
        self.assertEqual([e[2:] for e in warnings.events], [
            ("stellarflow.x.Thing", "warning 2"), ("stellarflow.x.Thing", "warning 3"), ("stellarflow.x.Thing", "warning 4"),
        ])
        log.failure("it broke", Failure(ValueError("bad value")), level=LogLevel.error)
        self.assertEqual(warnings.events[-1][1:], ("error", "stellarflow.x.Thing", "it broke (ValueError: bad value)"))
        self.assertEqual(len(warnings.events), 3)

    def test_escaped(self):
        data = {"status": "ok", "pipelines": [{
            "name": "<b>p</b>", "running": True, "healthy": True, "reasons": [], "checkpoint": None,
            "source": {"type": "S", "stats": {}}, "consumers": [{"name": "c<script>", "type": "C", "stats": {}}],
        }]}
        page = renderStatus(data, [(0, "warn", "a.b", "<img src=x onerror=alert(1)>")], 0).decode("utf-8")
        self.assertNotIn("<b>p</b>", page)
        self.assertNotIn("<script>", page)
        self.assertNotIn("<img", page)
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;", page)


class StatusPageTests(TestCase):
    timeout = 20

    @inlineCallbacks
    def test_statusPage(self):
        """
        GET / on the admin port: each pipeline's source position and health, each consumer's
        figures (the WebSocket's connected and registered clients), recent warnings; the
        reasons of an unhealthy pipeline.
        """
        import json

        from autobahn.twisted.websocket import WebSocketClientFactory
        from twisted.internet.endpoints import TCP4ClientEndpoint

        from tests.test_websocket_e2e import Client, until

        daemon = Daemon(parse(CONFIG.format(state=self.mktemp()), "f", {}), reactor)
        self.addCleanup(cancelAutobahnTimers)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        admin = [s for s in daemon if s not in daemon.pipelines][0]
        base = "http://127.0.0.1:{}".format(admin.listening.getHost().port)
        pipeline = daemon.pipelines[0]
        yield pipeline.source.emit([{"id": "a"}, {"id": "b"}, {"id": "c"}], cursor="c")
        websocket = pipeline.consumers[0][1]
        yield until(lambda: websocket.listeningPort is not None)
        port = websocket.listeningPort.getHost().port
        factory = WebSocketClientFactory("ws://127.0.0.1:%d/ws" % port, reactor=reactor)
        factory.protocol = Client
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)

        def disconnect():
            if client.closedWith is None:
                client.dropConnection(abort=True)
            return client.closedDeferred

        self.addCleanup(disconnect)
        yield until(lambda: client.received)
        client.send({"type": "register", "filters": {}})
        yield until(lambda: websocket.hub.stats()["registered"] == 1)
        Logger(namespace="stellarflow.test").warn("consumer {name} is slow", name="<x>")

        treq = httpClient(self)
        response = yield treq.get(base + "/")
        page = yield response.text()
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        self.assertIn("<span class='ok' id='status'>ok</span>", page)
        self.assertIn("<h2>Pipeline one <span class='ok'>healthy</span></h2>", page)
        self.assertEqual(source(page, "checkpoint (position)"), "<code>c</code>")
        self.assertEqual(source(page, "polling"), "yes")
        ws = dict(zip(["consumer", "attached", "position", "lag", "messages", "connected", "registered", "dropped"],
                      cells(page, "SaveToWebSocket[0]"), strict=True))
        self.assertEqual(ws["consumer"], "SaveToWebSocket[0] (SaveToWebSocket)")
        self.assertEqual((ws["connected"], ws["registered"], ws["dropped"]), ("1", "1", "0"))
        memory = dict(zip(["consumer", "attached", "position", "lag", "messages"], cells(page, "MemoryConsumer[1]")))
        self.assertEqual(memory["messages"], "3")
        self.assertIn("consumer &lt;x&gt; is slow", page)
        # the same figures as /metrics
        metrics = yield (yield treq.get(base + "/metrics")).text()
        self.assertIn('stellarflow_consumer_clients_registered{consumer="SaveToWebSocket[0]",pipeline="one"} 1.0', metrics)
        self.assertIn('stellarflow_consumer_messages_total{consumer="MemoryConsumer[1]",pipeline="one"} 3.0', metrics)

        yield pipeline.source.stop()
        response = yield treq.get(base + "/")
        page = yield response.text()
        self.assertIn("<span class='bad' id='status'>unhealthy</span>", page)
        self.assertIn("<li class='bad'>source is not polling</li>", page)
        health = json.loads((yield (yield treq.get(base + "/healthz")).text()))
        self.assertEqual(health["pipelines"]["one"]["reasons"], ["source is not polling"])
        response = yield treq.get(base + "/nothing-here")
        self.assertEqual(response.code, 404)
        yield response.content()
