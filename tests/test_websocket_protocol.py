"""
Tests for L{stellarflow.websocket.protocol}: the Autobahn protocol and factory, in memory
(twisted.test.iosim pumps, as autobahn.twisted.testing does) on a Clock that txaio also uses,
and its direct socket write on a real TCP transport over a scripted socket.
"""

import errno
import json

import txaio
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stellarflow.compat.autobahn import compressionNegotiated, pingsSent, prepareTextFrame
from stellarflow.interfaces import IClientConnection
from stellarflow.websocket.hub import ClientHub
from stellarflow.websocket.protocol import BroadcastServerFactory
from tests import wshelpers as helpers
from tests.wshelpers import ScriptedSocket, tcpTransport, textFrame

SERVER = IPv4Address("TCP", "127.0.0.1", 8080)


class RecordingClient(WebSocketClientProtocol):
    """
    An Autobahn client recording what it receives and how it was closed.
    """

    def __init__(self):
        WebSocketClientProtocol.__init__(self)
        self.received = []
        self.opened = False
        self.closedWith = None

    def onOpen(self):
        self.opened = True

    def onMessage(self, payload, isBinary):
        self.received.append(json.loads(payload))

    def onClose(self, wasClean, code, reason):
        self.closedWith = (wasClean, code, reason)

    def types(self):
        return [m["type"] for m in self.received]


class SilentClient(RecordingClient):
    """
    Never answers pings.
    """

    def onPing(self, payload):
        pass


class RawClient(Protocol):
    """
    Sends a hand-written HTTP request and records the raw reply.
    """

    def __init__(self, request):
        self.request = request
        self.data = b""

    def connectionMade(self):
        self.transport.write(self.request)

    def dataReceived(self, data):
        self.data += data


def handshake(path="/ws", headers=()):
    lines = [
        "GET {} HTTP/1.1".format(path),
        "Host: 127.0.0.1:8080",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class ProtocolTestsMixin:
    def setUp(self):
        self.clock = Clock()
        saved = txaio.config.loop
        txaio.config.loop = self.clock
        self.addCleanup(setattr, txaio.config, "loop", saved)
        self.build()

    def build(self, maxConnections=10, allowedOrigins=(), registrationTimeout=10):
        self.hub = ClientHub(
            self.clock,
            prepare=prepareTextFrame,
            maxConnections=maxConnections,
            registrationTimeout=registrationTimeout,
        )
        self.factory = BroadcastServerFactory(
            self.clock,
            self.hub,
            path="/ws",
            maxMessageSize=1024,
            pingInterval=30,
            pongTimeout=60,
            allowedOrigins=allowedOrigins,
            upgradeTimeout=5,
            closeTimeout=2,
        )
        self.port = 40000

    def _serverAndTransports(self, client):
        self.port += 1
        peer = IPv4Address("TCP", "127.0.0.1", self.port)
        server = self.factory.buildProtocol(peer)
        serverTransport = iosim.FakeTransport(server, isServer=True, hostAddress=SERVER, peerAddress=peer)
        clientTransport = iosim.FakeTransport(client, isServer=False, hostAddress=peer, peerAddress=SERVER)
        pump = iosim.connect(server, serverTransport, client, clientTransport, clock=self.clock)
        return server, pump

    def connect(self, path="/ws", clientClass=RecordingClient, fragment=0):
        clientFactory = WebSocketClientFactory("ws://127.0.0.1:8080" + path, reactor=self.clock)
        clientFactory.setProtocolOptions(autoFragmentSize=fragment)
        clientFactory.protocol = clientClass
        client = clientFactory.buildProtocol(SERVER)
        server, pump = self._serverAndTransports(client)
        return client, server, pump

    def raw(self, request):
        client = RawClient(request)
        server, pump = self._serverAndTransports(client)
        return client, server, pump

    def register(self, client, pump, filters=None):
        client.sendMessage(json.dumps({"type": "register", "filters": filters or {}}).encode())
        pump.flush()


class HandshakeTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_welcome(self):
        client, server, pump = self.connect()
        self.assertTrue(client.opened)
        self.assertEqual(client.received, [helpers.GUIDE_WELCOME])
        verifyObject(IClientConnection, server)
        self.assertIs(server.transport.producer, server.session)
        self.assertTrue(server.transport.streamingProducer)
        self.assertEqual(self.hub.connected, 1)

    def test_otherPath404(self):
        client, server, pump = self.raw(handshake("/other"))
        self.assertTrue(client.data.startswith(b"HTTP/1.1 404 Not Found\r\n"), client.data[:40])
        self.assertEqual(self.hub.counters.connections, 0)

    def test_plainHttpNoStatusPage(self):
        """
        A plain HTTP GET gets an error, not Autobahn's status page (nor its ?redirect=).
        """
        client, server, pump = self.raw(b"GET /ws?redirect=https%3A%2F%2Fexample.com HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(client.data.startswith(b"HTTP/1.1 426 "), client.data[:40])
        self.assertNotIn(b"example.com", client.data)

    def test_maxConnections503(self):
        self.build(maxConnections=2)
        self.connect()
        self.connect()
        client, server, pump = self.raw(handshake())
        self.assertTrue(client.data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), client.data[:40])
        self.assertEqual(self.hub.connected, 2)

    def test_origins(self):
        """
        With allowed_origins set, a browser Origin must match one exactly (case-insensitive);
        clients without an Origin header are let in.
        """
        self.build(allowedOrigins=["https://app.example.com"])
        denied, _, _ = self.raw(handshake(headers=["Origin: https://evil.example.com"]))
        self.assertTrue(denied.data.startswith(b"HTTP/1.1 403 Forbidden\r\n"), denied.data[:40])
        allowed, _, _ = self.raw(handshake(headers=["Origin: https://APP.example.com"]))
        self.assertTrue(allowed.data.startswith(b"HTTP/1.1 101 "), allowed.data[:40])
        bare, _, _ = self.raw(handshake())
        self.assertTrue(bare.data.startswith(b"HTTP/1.1 101 "), bare.data[:40])

    def test_anyOriginByDefault(self):
        for origin in ("https://anything.example", "null"):
            client, _, _ = self.raw(handshake(headers=["Origin: " + origin]))
            self.assertTrue(client.data.startswith(b"HTTP/1.1 101 "), (origin, client.data[:40]))

    def test_compressionDeclined(self):
        client, server, pump = self.raw(
            handshake(headers=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
        )
        head = client.data.split(b"\r\n\r\n")[0]
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "))
        self.assertNotIn(b"sec-websocket-extensions", head.lower())
        self.assertFalse(compressionNegotiated(server))

    def test_options(self):
        f = self.factory
        self.assertEqual((f.maxMessagePayloadSize, f.maxFramePayloadSize), (1024, 1024))
        self.assertEqual((f.autoPingInterval, f.autoPingTimeout), (30, 60))
        # the upgrade is timed by the protocol (upgradeTimeout, HTTP 408), not by Autobahn
        self.assertEqual((f.openHandshakeTimeout, f.closeHandshakeTimeout), (0, 2))
        self.assertEqual(f.upgradeTimeout, 5)
        self.assertFalse(f.failByDrop)
        self.assertIsNone(f.perMessageCompressionAccept([PerMessageDeflateOffer()]))


class MessageTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_registerAndReceive(self):
        client, server, pump = self.connect()
        self.register(client, pump, {"asset_codes": ["USDC"]})
        self.hub.broadcast([helpers.tokenEvent(1), helpers.tokenEvent(2, code="XLM")])
        pump.flush()
        self.assertEqual(client.types(), ["welcome", "registered", "contract_event"])
        self.assertEqual(client.received[2], helpers.tokenEvent(1))

    def test_binaryAndBadJson(self):
        client, server, pump = self.connect()
        client.sendMessage(b"\x00\x01", isBinary=True)
        client.sendMessage(b"{nope")
        pump.flush()
        self.assertEqual([m.get("error") for m in client.received[1:]], ["binary_not_supported", "invalid_json"])
        self.assertIsNone(client.closedWith)

    def test_oversize1009(self):
        """
        A message up to max_message_size is handled; one byte more closes with 1009.
        """
        client, server, pump = self.connect()
        client.sendMessage(b" " * 1024)
        pump.flush()
        self.assertEqual(client.received[-1]["error"], "invalid_json")
        client.sendMessage(b" " * 1025)
        pump.flush()
        self.assertEqual(client.closedWith[1], 1009)
        self.assertEqual(self.hub.connected, 0)

    def test_fragmentedOversize1009(self):
        """
        The limit applies to the whole message, however it is fragmented.
        """
        client, server, pump = self.connect(fragment=400)
        client.sendMessage(b" " * 1000)
        pump.flush()
        self.assertEqual(client.received[-1]["error"], "invalid_json")
        client.sendMessage(b" " * 1200)
        pump.flush()
        self.assertEqual(client.closedWith[1], 1009)

    def test_registrationTimeout(self):
        client, server, pump = self.connect()
        self.clock.advance(10)
        pump.flush()
        self.clock.advance(0.2)
        pump.flush()
        self.assertEqual(client.received[-1]["error"], "registration_timeout")
        self.assertEqual(client.closedWith[1:], (4008, "registration timeout"))
        self.assertEqual(self.hub.connected, 0)

    def test_shutdown1001(self):
        client, server, pump = self.connect()
        self.register(client, pump)
        d = self.hub.shutdown(5)
        pump.flush()
        self.successResultOf(d)
        self.assertEqual(client.closedWith[1], 1001)

    def test_transportPauseHolds(self):
        """
        The client registered as producer holds events while the transport pauses it.
        """
        client, server, pump = self.connect()
        self.register(client, pump)
        server.transport.producer.pauseProducing()
        self.hub.broadcast([helpers.plainEvent(1)])
        pump.flush()
        self.assertEqual(client.types(), ["welcome", "registered"])
        server.transport.producer.resumeProducing()
        pump.flush()
        self.assertEqual(client.types(), ["welcome", "registered", "contract_event"])


class HeartbeatTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_pongKeepsAlive(self):
        """
        Pings go out every ping_interval; a client answering them stays connected.
        """
        client, server, pump = self.connect()
        self.register(client, pump)
        for _ in range(10):
            self.clock.advance(30.2)
            pump.flush()
        self.assertIsNone(client.closedWith)
        self.assertEqual(pingsSent(server), 10)

    def test_silentClientDropped(self):
        """
        A client that stops answering pings is dropped pong_timeout after the ping, at most
        ping_interval + pong_timeout (90 s) after its last pong.
        """
        client, server, pump = self.connect(clientClass=SilentClient)
        self.register(client, pump)
        self.clock.advance(30.2)
        pump.flush()
        self.assertEqual(pingsSent(server), 1)
        self.clock.advance(59)
        pump.flush()
        self.assertIsNone(client.closedWith)
        self.assertEqual(self.hub.connected, 1)
        self.clock.advance(1.2)
        pump.flush()
        self.assertEqual(self.hub.connected, 0)
        self.assertIsNotNone(client.closedWith)


def holds(reactor):
    """
    Whether the (one) transport of C{reactor} holds data to write: it registered as a writer.
    """
    return bool(reactor.getWriters())


class DirectWriteTests(ProtocolTestsMixin, SynchronousTestCase):
    """
    C{sendMany} on a TCP transport holding nothing writes to the socket itself; whatever the
    socket does not take goes through the transport, in order, and nothing is lost or sent
    twice.  The handshake is done in memory, then the connection's transport is a real
    Twisted TCP transport over a scripted socket.
    """

    payloads = [b'{"n":1}', b'{"n":2}', b'{"n":3}']

    def open(self, sock):
        client, server, pump = self.connect()
        self.register(client, pump)
        transport, reactor = tcpTransport(server, sock)
        server.transport = transport
        return server, transport, reactor

    def frames(self, payloads=None):
        return [prepareTextFrame(p) for p in payloads or self.payloads]

    def wire(self, payloads=None):
        return b"".join(textFrame(p) for p in payloads or self.payloads)

    def test_wholeWrite(self):
        """
        The socket takes everything: one send, nothing left in the transport.
        """
        sock = ScriptedSocket()
        server, transport, reactor = self.open(sock)
        server.sendMany(self.frames())
        self.assertEqual(sock.sent, [self.wire()])
        self.assertFalse(holds(reactor))

    def test_shortWrite(self):
        """
        The socket takes part of the data: the rest goes through the transport, after it, and
        what is sent next waits behind it.
        """
        sock = ScriptedSocket(5, 0)
        server, transport, reactor = self.open(sock)
        server.sendMany(self.frames())
        self.assertEqual(sock.sent, [self.wire()[:5]])
        self.assertTrue(holds(reactor))
        later = [b'{"n":4}']
        server.sendMany(self.frames(later))
        self.assertEqual(sock.sent, [self.wire()[:5]])  # not straight to the socket now
        transport.doWrite()  # the socket takes nothing (the script's 0)
        transport.doWrite()
        self.assertEqual(sock.received(), self.wire() + self.wire(later))
        self.assertFalse(holds(reactor))

    def test_wouldBlock(self):
        """
        The socket takes nothing (EAGAIN): everything goes through the transport.
        """
        sock = ScriptedSocket(BlockingIOError(errno.EAGAIN, "try again"))
        server, transport, reactor = self.open(sock)
        server.sendMany(self.frames())
        self.assertEqual(sock.sent, [])
        self.assertTrue(holds(reactor))
        transport.doWrite()
        self.assertEqual(sock.sent, [self.wire()])

    def test_closedSocket(self):
        """
        The socket fails (EPIPE, ECONNRESET): C{sendMany} does not raise and hands the data to
        the transport, whose own write then finds the error and reports the connection lost.
        """
        for code, exception in ((errno.EPIPE, BrokenPipeError), (errno.ECONNRESET, ConnectionResetError)):
            sock = ScriptedSocket(exception(code, "gone"), exception(code, "gone"))
            server, transport, reactor = self.open(sock)
            server.sendMany(self.frames())
            self.assertEqual(sock.sent, [])
            self.assertTrue(holds(reactor))
            self.assertIsInstance(transport.doWrite(), ConnectionLost)
            self.assertEqual(sock.sent, [])

    def test_notOpen(self):
        """
        Once the closing handshake started, nothing is written: neither to the socket nor to
        the transport.
        """
        client, server, pump = self.connect()
        self.register(client, pump)
        server.close(1001, "server shutting down")
        sock = ScriptedSocket()
        transport, reactor = tcpTransport(server, sock)
        server.transport = transport
        server.sendMany(self.frames())
        server.send(self.frames()[0])
        self.assertEqual(sock.sent, [])
        self.assertFalse(holds(reactor))
