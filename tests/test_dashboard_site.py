"""
The dashboard's files and the port shared with the WebSocket: what is served where, over real
sockets on 127.0.0.1, and the first-line router's bounds on a Clock.
"""

import json

from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow.dashboard.front import FrontFactory, requestPath
from stellarflow.dashboard.site import FILES, DashboardResource, pageSettings, staticFile
from stellarflow.websocket.consumer import SaveToWebSocket
from stellarflow.websocket.filters import KNOWN_TYPES
from tests.helpers import httpClient
from tests.test_websocket_e2e import TIMEOUT, Client, E2EMixin


def pageConfig(html):
    start = html.index('<script id="stellarflow-config" type="application/json">') + len(
        '<script id="stellarflow-config" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


class FilesTests(SynchronousTestCase):
    def test_packageData(self):
        """
        Every file is in the package and none loads anything from another origin.
        """
        for name in FILES:
            text = staticFile(name).decode("utf-8")
            self.assertNotIn("http://", text.replace("http://localhost", ""), name)
            self.assertNotIn("https://", text, name)
        self.assertIn(b"__STELLARFLOW_DASHBOARD_CONFIG__", staticFile("index.html"))

    def test_installedWithThePackage(self):
        """
        An install (setuptools' build_py, what a wheel holds) has the page's files and the
        twistd dropin.
        """
        import os
        import subprocess
        import sys

        from tests.helpers import REPO
        from tests.test_examples import required

        try:
            import setuptools  # noqa: F401 (what builds the package)
        except ImportError:
            required("setuptools", "setuptools is not installed in this environment")
        target, eggs = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        os.makedirs(eggs)
        # a fresh egg-info: the checkout's own may list the files whatever the config says
        out = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", eggs,
                              "build_py", "--build-lib", target],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        static = os.path.join(target, "stellarflow", "dashboard", "static")
        self.assertEqual(sorted(os.listdir(static)), sorted(FILES))
        self.assertTrue(os.path.exists(os.path.join(target, "twisted", "plugins", "stellarflow_plugin.py")))

    def test_settingsCannotEndTheScript(self):
        text = pageSettings("/ws</script><script>alert(1)</script>", ["a"])
        self.assertNotIn("</", text)
        self.assertEqual(json.loads(text), {"ws_path": "/ws</script><script>alert(1)</script>", "known_types": ["a"]})

    def test_requestPath(self):
        self.assertEqual(requestPath(b"GET /ws HTTP/1.1\r"), b"/ws")
        self.assertEqual(requestPath(b"GET /ws?access_token=x HTTP/1.1"), b"/ws")
        self.assertEqual(requestPath(b"GET / HTTP/1.1"), b"/")
        self.assertIsNone(requestPath(b"garbage"))
        self.assertIsNone(requestPath(b""))

    def test_configKeys(self):
        config, problems = SaveToWebSocket.configSchema.validate({"dashboard": "no", "dashboard_path": "/dash"})
        self.assertEqual(list(problems), [])
        self.assertEqual((config["dashboard"], config["dashboard_path"]), (False, "/dash"))
        _, problems = SaveToWebSocket.configSchema.validate(
            {"dashboard": "maybe", "dashboard_path": "dash"}, "consumers[0].config")
        self.assertEqual(
            sorted((p.path, p.message) for p in problems),
            [("consumers[0].config.dashboard", "got 'maybe'; expected true or false"),
             ("consumers[0].config.dashboard_path", "got 'dash'; expected a path starting with \"/\"")],
        )


class FirstLineTests(SynchronousTestCase):
    """
    The router's bounds: the time to send a first line and its length.
    """

    def setUp(self):
        self.clock = Clock()
        self.routed = []
        test = self

        class Recorder:
            def __init__(self, name):
                self.name = name

            def buildProtocol(self, addr):
                from twisted.internet.protocol import Protocol

                class P(Protocol):
                    def dataReceived(self, data):
                        test.routed.append((name, data))

                name = self.name
                return P()

            def doStart(self):
                pass

            def doStop(self):
                pass

        self.front = FrontFactory(self.clock, Recorder("ws"), "/ws", DashboardResource("/ws"), timeout=5, maxLine=100)
        self.front.site = Recorder("site")

    def connect(self):
        protocol = self.front.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_timeout(self):
        """
        A connection that sends no complete first line within the timeout is aborted; one that
        did is routed and the timer is gone.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"GET /ws HT")
        self.clock.advance(4.999)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.001)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.routed, [])

        protocol, transport = self.connect()
        protocol.dataReceived(b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\n")
        protocol.dataReceived(b"\r\n")
        self.assertEqual(self.routed, [("ws", b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\n"), ("ws", b"\r\n")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_routes(self):
        for line, name in ((b"GET / HTTP/1.1\r\n", "site"), (b"GET /ws/ HTTP/1.1\r\n", "site"),
                           (b"GET /wsx HTTP/1.1\r\n", "site"), (b"GET /ws HTTP/1.1\n", "ws")):
            self.routed = []
            protocol, _ = self.connect()
            protocol.dataReceived(line)
            self.assertEqual(self.routed, [(name, line)])

    def test_longLine(self):
        """
        A first line of exactly maxLine bytes still waits for its end; one byte more goes to
        the site (which answers 400).
        """
        protocol, _ = self.connect()
        protocol.dataReceived(b"G" * 100)
        self.assertEqual(self.routed, [])
        protocol.dataReceived(b"G")
        self.assertEqual(self.routed, [("site", b"G" * 101)])

    def test_lostBeforeRouting(self):
        protocol, transport = self.connect()
        protocol.dataReceived(b"GET")
        protocol.connectionLost(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SharedPortTests(E2EMixin, TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def get(self, path, method="GET"):
        treq = httpClient(self)
        response = yield treq.request(method, "http://127.0.0.1:%d%s" % (self.port, path), allow_redirects=False)
        body = yield response.content()
        return response, body

    @defer.inlineCallbacks
    def test_pageAndWebSocketOnOnePort(self):
        """
        GET / is the page, naming the WebSocket path and the known types; its files are
        beside it; other paths are 404; the WebSocket still works at its path (query string
        and all) on the same port.
        """
        yield self.startServer(path="/stream")
        response, body = yield self.get("/")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        self.assertIn("script-src 'self'", response.headers.getRawHeaders("content-security-policy")[0])
        self.assertEqual(pageConfig(body.decode("utf-8")),
                         {"ws_path": "/stream", "known_types": sorted(KNOWN_TYPES)})
        for name, mediaType in FILES.items():
            response, body = yield self.get("/" + name)
            self.assertEqual((response.code, response.headers.getRawHeaders("content-type")), (200, [mediaType]))
            if name != "index.html":
                self.assertEqual(body, staticFile(name))
        response, body = yield self.get("/ws")
        self.assertEqual(response.code, 404)
        response, body = yield self.get("/", method="POST")
        self.assertEqual(response.code, 405)
        response, body = yield self.get("/client.js", method="HEAD")
        self.assertEqual((response.code, body), (200, b""))

        self.url = "ws://127.0.0.1:%d/stream?access_token=abc" % self.port
        client = yield self.connect()
        self.assertEqual(client.received[0]["type"], "welcome")
        reply = yield self.register(client, {"types": ["payment"]})
        self.assertEqual(reply["type"], "registered")

    @defer.inlineCallbacks
    def test_moved(self):
        """
        dashboard_path moves the page and its files; the path without its slash redirects.
        """
        yield self.startServer(dashboard_path="/dash")
        response, _ = yield self.get("/dash/")
        self.assertEqual(response.code, 200)
        response, body = yield self.get("/dash/client.js")
        self.assertEqual(body, staticFile("client.js"))
        response, _ = yield self.get("/dash")
        self.assertEqual((response.code, response.headers.getRawHeaders("location")), (301, ["/dash/"]))
        for path in ("/", "/client.js", "/dash/other"):
            response, _ = yield self.get(path)
            self.assertEqual(response.code, 404, path)

    @defer.inlineCallbacks
    def test_upgradeAtMovedPageRefused(self):
        """
        A WebSocket upgrade at the moved page's path without its slash gets 404, not the
        redirect a browser gets.
        """
        yield self.startServer(dashboard_path="/dash")
        factory = WebSocketClientFactory("ws://127.0.0.1:%d/dash" % self.port, reactor=reactor)
        factory.protocol = Client
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(factory)
        yield client.closedDeferred.addTimeout(TIMEOUT, reactor)
        self.assertIn("404", client.closedWith[2])

    @defer.inlineCallbacks
    def test_off(self):
        """
        dashboard: false: the WebSocket factory listens alone, as before (Autobahn's 404 for
        other paths, the WebSocket at its path).
        """
        yield self.startServer(dashboard=False)
        self.assertIsInstance(self.consumer.listeningPort.factory, type(self.consumer.factory))
        response, body = yield self.get("/")
        self.assertEqual(response.code, 426)
        self.assertNotIn(b"stellarflow-config", body)
        client = yield self.connect()
        self.assertEqual(client.received[0]["type"], "welcome")

    @defer.inlineCallbacks
    def test_webSocketElsewhereRefused(self):
        """
        A WebSocket upgrade at the page's path gets the page site's 404, not a WebSocket.
        """
        yield self.startServer()
        factory = WebSocketClientFactory("ws://127.0.0.1:%d/" % self.port, reactor=reactor)
        factory.protocol = Client
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(factory)
        yield client.closedDeferred.addTimeout(TIMEOUT, reactor)
        self.assertIn("404", client.closedWith[2])


class HTTPSTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_pageOverTLS(self):
        """
        With tls_certificate the page is served over https:// on the wss:// port.
        """
        import os
        import ssl
        import urllib.request

        from twisted.internet import threads

        from stellarflow.testing.tls import selfSigned
        from tests.test_websocket_e2e import cancelAutobahnTimers

        cert, key = selfSigned(os.path.abspath(self.mktemp()))
        consumer = SaveToWebSocket(reactor, host="127.0.0.1", port=0, tls_certificate=cert, tls_key=key, close_timeout=1)
        yield consumer.start()
        self.addCleanup(cancelAutobahnTimers)
        self.addCleanup(consumer.stop)
        port = consumer.listeningPort.getHost().port

        def fetch(path):
            context = ssl.create_default_context(cafile=cert)
            with urllib.request.urlopen("https://127.0.0.1:{}{}".format(port, path), timeout=10, context=context) as r:
                return r.status, r.read()

        status, body = yield threads.deferToThread(fetch, "/client.js")
        self.assertEqual((status, body), (200, staticFile("client.js")))
        status, body = yield threads.deferToThread(fetch, "/")
        self.assertEqual(pageConfig(body.decode("utf-8"))["ws_path"], "/ws")
