"""
Tests for L{stellarflow.compat.autobahn}: the Autobahn (and txaio) internals it relies on still
exist and mean what it assumes; these fail when an upgrade changes them.
"""

import json

import txaio
from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
    PerMessageDeflateResponseAccept,
)
from autobahn.websocket.protocol import PreparedMessage
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.compat import autobahn as compat

SERVER = IPv4Address("TCP", "127.0.0.1", 8080)
PEER = IPv4Address("TCP", "127.0.0.1", 40001)


class Recording(WebSocketClientProtocol):
    def __init__(self):
        WebSocketClientProtocol.__init__(self)
        self.received = []
        self.closedWith = None

    def onMessage(self, payload, isBinary):
        self.received.append(payload)

    def onClose(self, wasClean, code, reason):
        self.closedWith = (code, reason)


def _acceptDeflate(offers):
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


class CompatTestsMixin:
    def setUp(self):
        self.clock = Clock()
        saved = txaio.config.loop
        txaio.config.loop = self.clock
        self.addCleanup(setattr, txaio.config, "loop", saved)

    def connect(self, compress=False, **options):
        """
        An open server protocol and its client, pumped in memory.
        """
        factory = WebSocketServerFactory(reactor=self.clock)
        factory.protocol = WebSocketServerProtocol
        if compress:
            options["perMessageCompressionAccept"] = _acceptDeflate
        if options:
            factory.setProtocolOptions(**options)
        clientFactory = WebSocketClientFactory("ws://127.0.0.1:8080/", reactor=self.clock)
        clientFactory.protocol = Recording
        if compress:
            clientFactory.setProtocolOptions(
                perMessageCompressionOffers=[PerMessageDeflateOffer()],
                perMessageCompressionAccept=PerMessageDeflateResponseAccept,
            )
        server = factory.buildProtocol(PEER)
        client = clientFactory.buildProtocol(SERVER)
        serverTransport = iosim.FakeTransport(server, isServer=True, hostAddress=SERVER, peerAddress=PEER)
        clientTransport = iosim.FakeTransport(client, isServer=False, hostAddress=PEER, peerAddress=SERVER)
        self.pump = iosim.connect(server, serverTransport, client, clientTransport, clock=self.clock)
        self.assertEqual(server.state, server.STATE_OPEN)
        return server, client


class FrameTests(CompatTestsMixin, SynchronousTestCase):
    def test_preparedAsTheFactoryDoes(self):
        """
        L{prepareTextFrame} frames as a server factory's C{prepareMessage} does, whatever the
        length (one-byte, 16-bit and 64-bit lengths).
        """
        factory = WebSocketServerFactory()
        for size in (0, 10, 125, 126, 65535, 65536, 100000):
            payload = json.dumps("x" * size).encode()
            frame = compat.prepareTextFrame(payload)
            self.assertIsInstance(frame, PreparedMessage)
            expected = factory.prepareMessage(payload, isBinary=False, doNotCompress=True)
            self.assertEqual(frame.payloadHybi, expected.payloadHybi)
            self.assertIs(compat.frameBytes(frame), frame.payloadHybi)
            self.assertTrue(frame.doNotCompress)

    def test_rawFramesReachTheClient(self):
        """
        The raw bytes of prepared frames, written to the transport, are those frames.
        """
        server, client = self.connect()
        frames = [compat.prepareTextFrame(b'{"n":%d}' % n) for n in range(3)]
        server.transport.write(compat.rawFrames(server, frames))
        server.transport.write(compat.rawFrame(server, frames[0]))
        self.pump.flush()
        self.assertEqual(client.received, [b'{"n":0}', b'{"n":1}', b'{"n":2}', b'{"n":0}'])

    def test_sendQueue(self):
        """
        While Autobahn's own send queue holds data, frames must go through it.
        """
        server, client = self.connect()
        frame = compat.prepareTextFrame(b"{}")
        self.assertIsNotNone(compat.rawFrame(server, frame))
        server.sendData(b"", sync=True)  # written now, then the queue waits a moment
        server.sendData(b"", sync=True)  # queued, written on a later turn
        self.assertTrue(server.send_queue)
        self.assertIsNone(compat.rawFrame(server, frame))
        self.assertIsNone(compat.rawFrames(server, [frame, frame]))
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertFalse(server.send_queue)
        self.assertIsNotNone(compat.rawFrames(server, [frame, frame]))

    def test_compression(self):
        """
        With permessage-deflate negotiated, frames must go through C{sendPreparedMessage}.
        """
        server, client = self.connect()
        self.assertIsNone(server._perMessageCompress)
        self.assertFalse(compat.compressionNegotiated(server))
        server, client = self.connect(compress=True)
        self.assertIsNotNone(server._perMessageCompress)
        self.assertTrue(compat.compressionNegotiated(server))
        frame = compat.prepareTextFrame(b"{}")
        self.assertIsNone(compat.rawFrame(server, frame))
        self.assertIsNone(compat.rawFrames(server, [frame]))


class ControlTests(CompatTestsMixin, SynchronousTestCase):
    def test_closeWithAnyCode(self):
        """
        L{sendCloseFrame} sends codes the public C{sendClose} refuses, reasons cut to fit.
        """
        server, client = self.connect()
        compat.sendCloseFrame(server, 1001, "é" * 100)
        self.pump.flush()
        code, reason = client.closedWith
        self.assertEqual(code, 1001)
        self.assertLessEqual(len(reason.encode("utf-8")), 123)
        self.assertTrue(reason.startswith("é"))

    def test_pingsSent(self):
        server, client = self.connect(autoPingInterval=10, autoPingTimeout=5)
        self.assertEqual(compat.pingsSent(server), 0)
        self.clock.advance(10.5)
        self.pump.flush()
        self.assertEqual(compat.pingsSent(server), 1)

    def test_batchedTimers(self):
        """
        txaio's batched timers leave calls L{cancelBatchedTimers} recognises; others stay.
        """
        timer = txaio.make_batched_timer(1.0)
        timer.call_later(5, lambda: None)
        other = self.clock.callLater(5, lambda: None)
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)
        compat.cancelBatchedTimers(self.clock)
        self.assertEqual(self.clock.getDelayedCalls(), [other])


class RequestHeadTests(CompatTestsMixin, SynchronousTestCase):
    def test_requestHead(self):
        """
        When Autobahn processes the handshake, C{data} holds what arrived: the head is complete
        once the blank line is in, and excludes what follows it.
        """
        seen = []

        class Server(WebSocketServerProtocol):
            def processHandshake(self):
                seen.append(compat.requestHead(self))

        factory = WebSocketServerFactory(reactor=self.clock)
        factory.protocol = Server
        server = factory.buildProtocol(PEER)
        server.makeConnection(iosim.FakeTransport(server, isServer=True, hostAddress=SERVER, peerAddress=PEER))
        server.dataReceived(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        server.dataReceived(b"\r\nrest")
        self.assertEqual(seen, [None, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"])
        # Autobahn's opening-handshake timer went to the test's clock, not the reactor
        self.assertTrue(self.clock.getDelayedCalls())


class DropWithoutWarningTests(CompatTestsMixin, SynchronousTestCase):
    def test_noWarning(self):
        """
        Autobahn logs an unclean drop at warning level unless C{wasClean}; dropWithoutWarning
        drops without that line and leaves C{wasClean} false for C{onClose}.
        """
        from twisted.logger import globalLogPublisher

        server, client = self.connect()
        seen = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)
        server.wasNotCleanReason = "a test"
        compat.dropWithoutWarning(server, server.dropConnection, True)
        self.assertEqual(server.state, server.STATE_CLOSED)
        self.assertFalse(server.wasClean)
        self.assertEqual([e for e in seen if e.get("log_level") is not None and e["log_level"].name == "warn"], [])
        # without it, the same drop warns: the flag is what Autobahn looks at
        other, _ = self.connect()
        other.wasNotCleanReason = "a test"
        other.dropConnection(True)
        self.assertTrue([e for e in seen if e.get("log_level") is not None and e["log_level"].name == "warn"])
