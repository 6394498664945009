"""
End-to-end tests of SaveToWebSocket over 127.0.0.1: Autobahn Twisted clients, the guide's own
Python example (websocket-client, in a thread), 1000 concurrent clients and a stalled raw TCP
client.  Every wait is bounded.
"""

import json
import os
import re
import socket
import struct
from decimal import Decimal

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyClass, verifyObject

from stellarflow.batch import Batch
from stellarflow.compat.autobahn import cancelBatchedTimers
from stellarflow.interfaces import IComponentFactory, IConsumer
from stellarflow.pipeline import ComponentContext
from stellarflow.websocket.consumer import ListenError, SaveToWebSocket
from tests import wshelpers as ev
from tests.helpers import guidePath

TIMEOUT = 10

# The guide's Python example, verbatim except the URL (see test_guideExampleIsVerbatim).
GUIDE_PYTHON = '''\
import websocket
import json
import time

def on_message(ws, message):
    data = json.loads(message)

    if data['type'] == 'welcome':
        print(f"Welcome: {data['message']}")

        # Send registration
        registration = {
            'type': 'register',
            'filters': {
                'types': ['contract_event'],
                'account_ids': [],
                'asset_codes': ['USDC'],
                'min_amount': ''
            }
        }
        ws.send(json.dumps(registration))

    elif data['type'] == 'registered':
        print(f"Registered with filters: {data['filters']}")

    else:
        print(f"Received event: {data}")
        # Process your event here

def on_error(ws, error):
    print(f"Error: {error}")

def on_close(ws, close_status_code, close_msg):
    print("Connection closed")

def on_open(ws):
    print("Connected to WebSocket server")

# Create WebSocket connection
ws = websocket.WebSocketApp(
    "ws://127.0.0.1:PORT/ws",
    on_open=on_open,
    on_message=on_message,
    on_error=on_error,
    on_close=on_close
)

# Run forever
ws.run_forever()
'''


def until(predicate, timeout=TIMEOUT, interval=0.01):
    """
    A Deferred firing once C{predicate()} is true (polled), failing after C{timeout} seconds.
    """

    def poll():
        if predicate():
            loop.stop()

    loop = task.LoopingCall(poll)
    d = loop.start(interval)
    d.addTimeout(timeout, reactor, onTimeoutCancel=lambda r, t: _timedOut(loop, t))
    return d


def _timedOut(loop, timeout):
    if loop.running:
        loop.stop()
    raise defer.TimeoutError("condition not met within {}s".format(timeout))


class Client(WebSocketClientProtocol):
    """
    An Autobahn Twisted client that records messages and its close.
    """

    def __init__(self):
        WebSocketClientProtocol.__init__(self)
        self.received = []
        self.closedWith = None
        self.closedDeferred = defer.Deferred()

    def onMessage(self, payload, isBinary):
        self.received.append(json.loads(payload))

    def onClose(self, wasClean, code, reason):
        self.closedWith = (wasClean, code, reason)
        if not self.closedDeferred.called:
            self.closedDeferred.callback(self.closedWith)

    def send(self, obj):
        self.sendMessage(json.dumps(obj).encode())

    def types(self):
        return [m["type"] for m in self.received]

    def events(self):
        return [m["id"] for m in self.received if m["type"] == "contract_event"]

    def errors(self):
        return [m["error"] for m in self.received if m["type"] == "error"]

    def waitFor(self, predicate, timeout=TIMEOUT):
        return until(lambda: predicate(self), timeout)

    def barrier(self, timeout=TIMEOUT):
        """
        Send a message the server answers with an error; once that reply is in, every event
        sent before it has been received too.
        """
        count = len(self.errors())
        self.sendMessage(b"{}")
        return self.waitFor(lambda c: len(c.errors()) > count, timeout)


def frame(payload, opcode=0x81):
    """
    A masked client frame, text unless C{opcode} says otherwise (as a raw socket client must
    send it).
    """
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@defer.inlineCallbacks
def registeredClient(testCase, port, filters=None, resume_after=None, protocol=None):
    """
    A L{Client} (or C{protocol}) connected to C{ws://127.0.0.1:<port>/ws} that sent its
    C{register} (C{filters}, and C{resume_after} when given) and got the reply, or an error;
    dropped in C{testCase}'s cleanup.
    """
    factory = WebSocketClientFactory("ws://127.0.0.1:%d/ws" % port, reactor=reactor)
    factory.protocol = protocol or Client
    client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    testCase.addCleanup(dropClient, client)
    yield client.waitFor(lambda c: c.received, TIMEOUT)
    message = {"type": "register", "filters": filters or {}}
    if resume_after is not None:
        message["resume_after"] = resume_after
    client.send(message)
    yield client.waitFor(lambda c: {"registered", "error"} & set(c.types()), TIMEOUT)
    return client


def dropClient(client):
    """
    Abort C{client}'s connection unless it is closed; a Deferred firing once it is.
    """
    if client.closedWith is None:
        client.dropConnection(abort=True)
    return client.closedDeferred.addTimeout(TIMEOUT, reactor)


def cancelAutobahnTimers():
    """
    Cancel the bucket calls of Autobahn's batched timers (txaio) once every connection is gone:
    close-handshake timeouts are not cancelled when the TCP connection goes first and would
    leave the reactor dirty for up to close_timeout.
    """
    cancelBatchedTimers(reactor)


class E2EMixin:
    @defer.inlineCallbacks
    def startServer(self, **config):
        config.setdefault("host", "127.0.0.1")
        config.setdefault("port", 0)
        config.setdefault("close_timeout", 1)
        self.consumer = SaveToWebSocket(reactor, **config)
        yield self.consumer.start()
        self.addCleanup(cancelAutobahnTimers)
        self.addCleanup(self.consumer.stop)
        self.port = self.consumer.listeningPort.getHost().port
        self.url = "ws://127.0.0.1:%d/ws" % self.port

    def consume(self, events):
        return self.consumer.consume(Batch(items=[], messages=list(events)))

    @defer.inlineCallbacks
    def connect(self, count=None):
        """
        Open one client (or C{count}), each once its welcome arrived.
        """
        factory = WebSocketClientFactory(self.url, reactor=reactor)
        factory.protocol = Client
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        clients = []
        for start in range(0, count or 1, 100):
            batch = yield defer.gatherResults(
                [endpoint.connect(factory) for _ in range(start, min(count or 1, start + 100))]
            )
            clients.extend(batch)
        self.addCleanup(self.disconnect, clients)
        yield until(lambda: all(c.received for c in clients))
        return clients if count else clients[0]

    def disconnect(self, clients):
        """
        Abort the clients still open and wait until each saw its connection go.
        """
        for c in clients:
            if c.closedWith is None:
                c.dropConnection(abort=True)
        return defer.gatherResults([c.closedDeferred for c in clients]).addTimeout(TIMEOUT, reactor)

    @defer.inlineCallbacks
    def register(self, client, filters=None):
        count = client.types().count("registered")
        client.send({"type": "register", "filters": filters or {}})
        yield client.waitFor(lambda c: c.types().count("registered") > count)
        return client.received[-1]


class ConsumerTests(SynchronousTestCase):
    def test_interfaces(self):
        verifyClass(IConsumer, SaveToWebSocket)
        self.assertTrue(IComponentFactory.providedBy(SaveToWebSocket))
        verifyObject(IComponentFactory, SaveToWebSocket)
        verifyObject(IConsumer, SaveToWebSocket(reactor))

    def test_configDefaults(self):
        config, problems = SaveToWebSocket.configSchema.validate({})
        self.assertEqual(list(problems), [])
        self.assertEqual(
            config,
            {
                "port": 8080,
                "path": "/ws",
                "max_queue_size": 1000,
                "host": "",
                "ping_interval": 30,
                "pong_timeout": 60,
                "registration_timeout": 10,
                "tls_certificate": "",
                "tls_key": "",
                "history_size": 10000,
                "history_ledgers": 0,
                "max_replay": 100000,
                "cursor_interval": 30,
                "max_message_size": 65536,
                "max_connections": 10000,
                "allowed_origins": [],
                "auth": {},
                "max_connections_per_ip": 500,
                "connection_rate_per_ip": 20,
                "connection_burst_per_ip": 200,
                "trusted_proxies": [],
                "upgrade_timeout": 5,
                "max_upgrading": 1000,
                "max_registers_per_minute": 30,
                "max_filter_entries": 2000,
                "fd_reserve": 64,
                "dashboard": True,
                "dashboard_path": "/",
                "reuse_port": False,
            },
        )

    def test_configGuideExample(self):
        """
        The guide's config (port as a string) is accepted and builds a working consumer.
        """
        config, problems = SaveToWebSocket.configSchema.validate(
            {"port": "8080", "path": "/ws", "max_queue_size": 5000}, "consumers[0].config"
        )
        self.assertEqual(list(problems), [])
        consumer = SaveToWebSocket.fromConfig(config, ComponentContext(reactor=reactor, pipeline="p"))
        self.assertEqual((consumer.port, consumer.path), (8080, "/ws"))
        self.assertEqual(consumer.hub.maxQueueSize, 5000)
        self.assertEqual(consumer.factory.autoPingInterval, 30)

    def test_configErrors(self):
        config, problems = SaveToWebSocket.configSchema.validate(
            {"port": "http", "path": "ws", "max_queue_size": 0, "allowed_origins": "x"}, "c"
        )
        self.assertIsNone(config)
        self.assertEqual(
            sorted(p.path for p in problems), ["c.allowed_origins", "c.max_queue_size", "c.path", "c.port"]
        )


class GuideExampleTests(E2EMixin, TestCase):
    timeout = 30

    def test_guideExampleIsVerbatim(self):
        """
        GUIDE_PYTHON is the guide's Python example with only the URL changed.
        """
        with open(guidePath(), encoding="utf-8") as f:
            guide = f.read()
        [code] = re.findall(r"### Python\n\n```python\n(.*?)```", guide, re.S)
        self.assertEqual(GUIDE_PYTHON.replace("ws://127.0.0.1:PORT/ws", "ws://localhost:8080/ws"), code)

    @defer.inlineCallbacks
    def test_guidePythonExample(self):
        """
        The guide's Python client, unchanged but for the URL, registers and receives exactly
        the verified USDC contract events, then sees the server's close.
        """
        yield self.startServer()
        printed = []
        namespace = {"__name__": "guide_example", "print": lambda *a, **k: printed.append(" ".join(map(str, a)))}
        code = GUIDE_PYTHON.replace("PORT", str(self.port))
        done = threads.deferToThread(exec, code, namespace)
        yield until(lambda: any(p.startswith("Registered with filters:") for p in printed))
        self.consume(
            [
                ev.tokenEvent(1),
                ev.tokenEvent(2, code="XLM"),
                ev.tokenEvent(3, verified=False, contract=ev.LOOKALIKE),
                ev.plainEvent(4),
                ev.tokenEvent(5, event_type="mint", frm=None),
            ]
        )
        received = lambda: [p for p in printed if p.startswith("Received event: ")]  # noqa: E731
        yield until(lambda: len(received()) >= 2)
        # stop it from the server side (1001): run_forever() returns once the close is done
        # (a ws.close() from another thread would leave its select() waiting 10 s)
        yield self.consumer.stop()
        yield done.addTimeout(TIMEOUT, reactor)
        self.assertEqual(printed[0], "Connected to WebSocket server")
        self.assertEqual(printed[1], "Welcome: Please send registration message to begin receiving events")
        self.assertEqual(
            printed[2],
            "Registered with filters: {'types': ['contract_event'], 'account_ids': [], "
            "'asset_codes': ['USDC'], 'min_amount': ''}",
        )
        events = [eval(p[len("Received event: "):], {}) for p in received()]  # a dict's repr
        self.assertEqual(events, [ev.tokenEvent(1), ev.tokenEvent(5, event_type="mint", frm=None)])
        self.assertEqual(printed[-1], "Connection closed")


class FilterTests(E2EMixin, TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_everyRule(self):
        """
        Each filter rule, end to end: every client receives exactly its events (on a getEvents
        pipeline: contract events only, C{payment} is a two-party transfer).
        """
        yield self.startServer(produced_types=frozenset(["contract_event"]))
        C1 = ev.USDC_SAC
        rules = {
            "none": {},
            "contract_event": {"types": ["contract_event"]},
            "transfer": {"types": ["transfer"]},
            "payment": {"types": ["payment"]},
            "unknown": {"types": ["trade", "swap"]},
            "g3": {"account_ids": [ev.G3]},
            "muxed": {"account_ids": [ev.M1]},
            "contract": {"account_ids": [C1]},
            "usdc": {"asset_codes": ["USDC"]},
            "usdc_issuer": {"asset_codes": ["USDC:" + ev.USDC_ISSUER]},
            "xlm": {"asset_codes": ["XLM"]},
            "native": {"asset_codes": ["native"]},
            "min": {"min_amount": "1000"},
            "combined": {"types": ["payment"], "asset_codes": ["USDC"], "min_amount": "100"},
        }
        clients = yield self.connect(len(rules))
        byRule = dict(zip(rules, clients, strict=True))
        for name, filters in rules.items():
            reply = yield self.register(byRule[name], filters)
            self.assertEqual(reply["type"], "registered")
        self.assertEqual(byRule["unknown"].received[-1]["unknown_types"], ["swap"])
        self.assertEqual(byRule["unknown"].received[-1]["unavailable_types"], ["trade"])
        events = [
            ev.tokenEvent(1),  # USDC payment G1 -> G2, 150
            ev.tokenEvent(2, code="XLM", to=ev.G3, amount="5000"),  # XLM payment to G3
            ev.tokenEvent(3, verified=False, contract=ev.LOOKALIKE, amount="9999"),  # look-alike USDC
            ev.tokenEvent(4, event_type="mint", frm=None, to=ev.M1, amount="50"),  # USDC mint to muxed G1
            ev.tokenEvent(5, frm=ev.G2, to=ev.G2, amount="2000"),  # USDC transfer to self
            ev.plainEvent(6),  # not a token event
        ]
        self.consume(events)
        yield defer.gatherResults([c.barrier() for c in clients])
        got = {name: [int(i.split("-")[0]) for i in byRule[name].events()] for name in rules}
        self.assertEqual(
            got,
            {
                "none": [1, 2, 3, 4, 5, 6],
                "contract_event": [1, 2, 3, 4, 5, 6],
                "transfer": [1, 2, 3, 5],
                "payment": [1, 2, 3],
                "unknown": [],
                "g3": [2],
                "muxed": [1, 2, 3, 4],
                "contract": [1, 4, 5],
                "usdc": [1, 4, 5],
                "usdc_issuer": [1, 4, 5],
                "xlm": [2],
                "native": [2],
                "min": [2, 3, 5],
                "combined": [1],
            },
        )

    @defer.inlineCallbacks
    def test_updateFilters(self):
        yield self.startServer()
        client = yield self.connect()
        yield self.register(client, {"asset_codes": ["USDC"]})
        self.consume([ev.tokenEvent(1), ev.tokenEvent(2, code="XLM")])
        reply = yield self.register(client, {"types": ["transfer"], "asset_codes": ["XLM"], "min_amount": "1000"})
        self.assertEqual(reply["filters"], {"types": ["transfer"], "account_ids": [], "asset_codes": ["XLM"], "min_amount": "1000"})
        self.consume([ev.tokenEvent(3), ev.tokenEvent(4, code="XLM", amount="10"), ev.tokenEvent(5, code="XLM", amount="1000")])
        yield client.barrier()
        self.assertEqual(
            [(m["type"], m.get("id")) for m in client.received if m["type"] != "error"],
            [
                ("welcome", None),
                ("registered", None),
                ("contract_event", ev.eventId(1)),
                ("registered", None),
                ("contract_event", ev.eventId(5)),
            ],
        )

    @defer.inlineCallbacks
    def test_queuedEvents(self):
        """
        Events broadcast before registering arrive after the reply, filtered and in order,
        followed by live ones.
        """
        yield self.startServer()
        client = yield self.connect()
        self.consume([ev.tokenEvent(1), ev.tokenEvent(2, code="XLM"), ev.tokenEvent(3)])
        yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(client.types(), ["welcome"])
        yield self.register(client, {"asset_codes": ["USDC"]})
        self.consume([ev.tokenEvent(4), ev.tokenEvent(5, code="XLM")])
        yield client.barrier()
        self.assertEqual(client.types()[:5], ["welcome", "registered", "contract_event", "contract_event", "contract_event"])
        self.assertEqual(client.events(), [ev.eventId(1), ev.eventId(3), ev.eventId(4)])


class ConnectionTests(E2EMixin, TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_registrationTimeout(self):
        yield self.startServer(registration_timeout=0.3)
        client = yield self.connect()
        closed = yield client.closedDeferred.addTimeout(TIMEOUT, reactor)
        self.assertEqual(client.received[-1]["error"], "registration_timeout")
        self.assertEqual(closed[1:], (4008, "registration timeout"))

    @defer.inlineCallbacks
    def test_errorReplies(self):
        """
        Bad input gets error replies, the connection stays open and registering still works.
        """
        yield self.startServer()
        client = yield self.connect()
        client.sendMessage(b"hello")
        client.sendMessage(b"\x01\x02", isBinary=True)
        client.send({"type": "subscribe"})
        client.send({"type": "register", "filters": {}, "extra": 1})
        client.send({"type": "register", "filters": {"account_ids": ["GABC123..."]}})
        yield client.waitFor(lambda c: len(c.errors()) == 5)
        self.assertEqual(
            client.errors(),
            ["invalid_json", "binary_not_supported", "unknown_message_type", "unknown_field", "invalid_account_id"],
        )
        reply = yield self.register(client, {"asset_codes": ["USDC"]})
        self.assertEqual(reply["filters"]["asset_codes"], ["USDC"])
        self.assertIsNone(client.closedWith)

    @defer.inlineCallbacks
    def test_oversizeFrame(self):
        yield self.startServer(max_message_size=1024)
        client = yield self.connect()
        client.sendMessage(b" " * 1025)
        closed = yield client.closedDeferred.addTimeout(TIMEOUT, reactor)
        self.assertEqual(closed[1], 1009)

    @defer.inlineCallbacks
    def test_otherPath(self):
        yield self.startServer()
        factory = WebSocketClientFactory("ws://127.0.0.1:%d/other" % self.port, reactor=reactor)
        factory.protocol = Client
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(factory)
        yield client.closedDeferred.addTimeout(TIMEOUT, reactor)
        self.assertIn("404", client.closedWith[2])

    @defer.inlineCallbacks
    def test_guideCurlKey(self):
        """
        The guide's troubleshooting curl line (a 13-byte Sec-WebSocket-Key) gets a 400 whose
        body says what to send; the same request with a 16-byte key gets the welcome.
        """
        yield self.startServer()

        def request(key):
            with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as sock:
                sock.sendall(
                    (
                        "GET /ws HTTP/1.1\r\nHost: localhost:{}\r\nConnection: Upgrade\r\n"
                        "Upgrade: websocket\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                    ).format(self.port, key).encode()
                )
                data = b""
                while b"welcome" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                return data

        refused = yield threads.deferToThread(request, "SGVsbG8sIHdvcmxkIQ==")
        self.assertTrue(refused.startswith(b"HTTP/1.1 400 Bad Sec-WebSocket-Key\r\n"), refused)
        self.assertIn(b"which is 13 bytes", refused)
        self.assertIn(b"http://localhost:%d/ws" % self.port, refused)
        self.assertEqual(self.consumer.stats()["bad_key_total"], 1)
        accepted = yield threads.deferToThread(request, "dGhlIHNhbXBsZSBub25jZQ==")
        self.assertTrue(accepted.startswith(b"HTTP/1.1 101 "), accepted)
        self.assertIn(b'"type":"welcome"', accepted)
        yield until(lambda: self.consumer.hub.connected == 0)

    @defer.inlineCallbacks
    def test_portInUse(self):
        yield self.startServer()
        other = SaveToWebSocket(reactor, host="127.0.0.1", port=self.port)
        failure = yield self.assertFailure(other.start(), ListenError)
        self.assertEqual(str(failure), "cannot listen on 127.0.0.1:%d: address already in use" % self.port)

    @defer.inlineCallbacks
    def test_stop(self):
        """
        stop() closes clients with 1001 and stops listening.
        """
        yield self.startServer()
        clients = yield self.connect(3)
        yield self.register(clients[0])
        yield self.consumer.stop().addTimeout(TIMEOUT, reactor)
        closes = yield defer.gatherResults([c.closedDeferred for c in clients]).addTimeout(TIMEOUT, reactor)
        self.assertEqual([c[1] for c in closes], [1001, 1001, 1001])
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        yield self.assertFailure(endpoint.connect(WebSocketClientFactory(self.url, reactor=reactor)), Exception)


class LoadTests(E2EMixin, TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_thousandClients(self):
        """
        1000 registered clients with five kinds of filters each receive exactly their subset
        (all from 127.0.0.1: the per-address limits are raised to fit).
        """
        yield self.startServer(max_connections_per_ip=1000, connection_burst_per_ip=1000)
        clients = yield self.connect(1000)
        accounts = [ev.G1, ev.G2, ev.G3]
        groups = [
            ({}, lambda e: True),
            ({"asset_codes": ["USDC"]}, lambda e: e.get("asset_code") == "USDC" and e.get("asset_verified") is True),
            (None, None),  # per-account, below
            ({"types": ["mint"]}, lambda e: e.get("event_type") == "mint"),
            ({"min_amount": "1000"}, lambda e: e.get("amount") is not None and Decimal(e["amount"]) >= 1000),
        ]
        expectations = []
        for i, client in enumerate(clients):
            filters, predicate = groups[i % 5]
            if filters is None:
                account = accounts[i % 3]
                filters = {"account_ids": [account]}
                predicate = lambda e, a=account: a in (e.get("from"), e.get("to"))  # noqa: E731
            client.send({"type": "register", "filters": filters})
            expectations.append(predicate)
        yield until(lambda: all(c.types().count("registered") == 1 for c in clients), 20)
        events = []
        for n in range(1, 31):
            kind = ("transfer", "mint", "burn")[n % 3]
            frm = None if kind == "mint" else accounts[n % 3]
            to = None if kind == "burn" else accounts[(n + 1) % 3]
            code = ("USDC", "XLM")[n % 2]
            events.append(ev.tokenEvent(n, event_type=kind, frm=frm, to=to, code=code, amount=str(n * 100)))
        events.append(ev.plainEvent(31))
        self.consume(events[:15])
        self.consume(events[15:])
        yield defer.gatherResults([c.barrier(20) for c in clients])
        wrong = []
        for i, (client, predicate) in enumerate(zip(clients, expectations, strict=True)):
            expected = [e["id"] for e in events if predicate(e)]
            if client.events() != expected:
                wrong.append(i)
        self.assertEqual(wrong, [])
        self.assertEqual(self.consumer.hub.connected, 1000)
        self.assertEqual(
            self.consumer.hub.counters.delivered,
            sum(len([e for e in events if p(e)]) for p in expectations),
        )

    def stalledClient(self):
        """
        A raw TCP client with a 4 KiB receive buffer that completes the handshake, registers
        with empty filters and then reads nothing.
        """
        stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(stalled.close)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", self.port))
        request = (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).format(self.port).encode()
        stalled.sendall(request + frame(b'{"type": "register", "filters": {}}'))
        return stalled

    @defer.inlineCallbacks
    def feedUntilQueueFull(self):
        """
        Feed batches of ten 16 KB events until a client is closed for a full queue (at most
        2000 events); the ids sent.
        """
        hub = self.consumer.hub
        big = "x" * 16000
        sent = []
        while hub.counters.closedQueueFull == 0 and len(sent) < 2000:
            batch = []
            for _ in range(10):
                e = ev.plainEvent(len(sent) + len(batch) + 1)
                e["data"] = big
                batch.append(e)
            sent.extend(e["id"] for e in batch)
            self.consume(batch)
            yield task.deferLater(reactor, 0.005, lambda: None)
        return sent

    @defer.inlineCallbacks
    def test_stalledClient(self):
        """
        A client that completes the handshake and registers but never reads is closed once
        max_queue_size messages are held for it; another client keeps receiving everything.
        """
        yield self.startServer(max_queue_size=20)
        self.consumer.hub.queueFullDrain = 1.0
        fast = yield self.connect()
        yield self.register(fast)
        self.stalledClient()
        hub = self.consumer.hub
        yield until(lambda: hub.registered == 2)
        sent = yield self.feedUntilQueueFull()
        self.assertEqual(hub.counters.closedQueueFull, 1)
        self.assertEqual(hub.registered, 1)
        # the fast client got everything, in order, and keeps receiving
        n = len(sent)
        self.consume([ev.plainEvent(n + 1)])
        sent.append(ev.eventId(n + 1))
        yield fast.barrier()
        self.assertEqual(fast.events(), sent)
        # the stalled connection is dropped once its drain time is over, and forgotten
        yield until(lambda: hub.connected == 1, timeout=hub.queueFullDrain + TIMEOUT)

    @defer.inlineCallbacks
    def test_stalledClientLearnsWhy(self):
        """
        A client closed for a full queue that starts reading again only after the close timeout
        still reads, after the events already on their way, the queue_full error and the 4029
        close frame: its backlog was dropped and its connection kept open for it to drain.
        """
        yield self.startServer(max_queue_size=20, close_timeout=0.5)
        stalled = self.stalledClient()
        hub = self.consumer.hub
        yield until(lambda: hub.registered == 1)
        yield self.feedUntilQueueFull()
        self.assertEqual(hub.counters.closedQueueFull, 1)
        # three close timeouts pass before the client reads anything
        yield task.deferLater(reactor, 1.5, lambda: None)
        stalled.settimeout(TIMEOUT)
        data = yield threads.deferToThread(readUntilClosed, stalled)
        frames = serverFrames(data.split(b"\r\n\r\n", 1)[1])
        texts = [json.loads(payload) for opcode, payload in frames if opcode == 1]
        self.assertEqual([t["type"] for t in texts[:2]], ["welcome", "registered"])
        events = texts[2:-1]
        self.assertTrue(events and all(t["type"] == "contract_event" for t in events))
        self.assertEqual([t["id"] for t in events], [ev.eventId(k) for k in range(1, len(events) + 1)])
        self.assertEqual(texts[-1]["type"], "error")
        self.assertEqual(texts[-1]["error"], "queue_full")
        opcode, payload = frames[-1]
        self.assertEqual(opcode, 8)
        self.assertEqual(struct.unpack("!H", payload[:2])[0], 4029)
        self.assertEqual(payload[2:], b"message queue full")


def readUntilClosed(sock):
    """
    Everything C{sock} receives until the server closes it (blocking; run in a thread),
    answering the server's close frame as a client does.
    """
    chunks = []
    answered = False
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        tail = b"".join(chunks[-2:])[-127:]
        if not answered and any(tail[-2 - n:-n] == bytes([0x88, n]) for n in range(2, 126)):
            # it ends with a close frame (header 0x88, unmasked, n bytes): answer it
            sock.sendall(frame(struct.pack("!H", 1000), opcode=0x88))
            answered = True
    return b"".join(chunks)


def serverFrames(data):
    """
    The (opcode, payload) of each complete unmasked server frame in C{data}.
    """
    frames = []
    i = 0
    while i + 2 <= len(data):
        opcode = data[i] & 0x0F
        n = data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = struct.unpack("!H", data[i:i + 2])[0]
            i += 2
        elif n == 127:
            n = struct.unpack("!Q", data[i:i + 8])[0]
            i += 8
        if i + n > len(data):
            break
        frames.append((opcode, data[i:i + n]))
        i += n
    return frames
