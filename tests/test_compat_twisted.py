"""
Tests for L{stellarflow.compat.twisted}: the Twisted internals it relies on still exist and mean
what it assumes (these fail when an upgrade changes them), and L{writeNow} on a real TCP
transport over a scripted socket.
"""

import errno

from twisted.internet import abstract, defer, task, tcp
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow.compat.twisted import quietPool, writeNow
from tests.wshelpers import ScriptedSocket, tcpTransport


class InternalsTests(SynchronousTestCase):
    """
    What L{writeNow} reads of a TCP transport.
    """

    def test_attributes(self):
        """
        A TCP connection has a socket, a TLS flag (false without TLS), and FileDescriptor's
        buffer: C{dataBuffer} with its C{offset}, and C{_tempDataLen} for what was written
        since.
        """
        self.assertTrue(issubclass(tcp.Server, abstract.FileDescriptor))
        sock = ScriptedSocket()
        transport, reactor = tcpTransport(Protocol(), sock)
        self.assertIs(transport.socket, sock)
        self.assertIs(transport.TLS, False)
        self.assertEqual(transport._tempDataLen, 0)
        self.assertEqual(transport.offset, len(transport.dataBuffer))
        self.assertTrue(transport.connected)
        self.assertFalse(transport.disconnecting)

    def test_bufferState(self):
        """
        C{write} counts its data in C{_tempDataLen}; C{doWrite} moves it into C{dataBuffer} and
        advances C{offset} by what the socket took: the transport holds nothing exactly when
        C{_tempDataLen} is 0 and C{offset} is the length of C{dataBuffer}.
        """
        sock = ScriptedSocket(2)
        transport, reactor = tcpTransport(Protocol(), sock)
        transport.write(b"abcde")
        self.assertEqual(transport._tempDataLen, 5)
        transport.doWrite()
        self.assertEqual(sock.received(), b"ab")
        self.assertEqual(transport._tempDataLen, 0)
        self.assertNotEqual(transport.offset, len(transport.dataBuffer))
        transport.doWrite()
        self.assertEqual(sock.received(), b"abcde")
        self.assertEqual(transport._tempDataLen, 0)
        self.assertEqual(transport.offset, len(transport.dataBuffer))

    def test_disconnecting(self):
        """
        C{loseConnection} sets C{disconnecting}.
        """
        transport, reactor = tcpTransport(Protocol(), ScriptedSocket())
        transport.write(b"x")
        transport.loseConnection()
        self.assertTrue(transport.disconnecting)


class WriteNowTests(SynchronousTestCase):
    def test_empty(self):
        """
        A transport holding nothing: straight to the socket, nothing buffered.
        """
        sock = ScriptedSocket()
        transport, reactor = tcpTransport(Protocol(), sock)
        writeNow(transport, b"hello")
        self.assertEqual(sock.sent, [b"hello"])
        self.assertEqual(reactor.getWriters(), [])

    def test_short(self):
        """
        What the socket does not take is written through the transport, after what it took.
        """
        sock = ScriptedSocket(2)
        transport, reactor = tcpTransport(Protocol(), sock)
        writeNow(transport, b"hello")
        self.assertEqual(sock.sent, [b"he"])
        self.assertEqual(transport._tempDataLen, 3)
        transport.doWrite()
        self.assertEqual(sock.received(), b"hello")

    def test_wouldBlock(self):
        sock = ScriptedSocket(BlockingIOError(errno.EAGAIN, "again"))
        transport, reactor = tcpTransport(Protocol(), sock)
        writeNow(transport, b"hello")
        self.assertEqual(sock.sent, [])
        self.assertEqual(transport._tempDataLen, 5)
        transport.doWrite()
        self.assertEqual(sock.received(), b"hello")

    def test_brokenSocket(self):
        """
        A failing socket: the data goes to the transport, which then reports the connection
        lost.
        """
        sock = ScriptedSocket(BrokenPipeError(errno.EPIPE, "gone"), BrokenPipeError(errno.EPIPE, "gone"))
        transport, reactor = tcpTransport(Protocol(), sock)
        writeNow(transport, b"hello")
        self.assertEqual(transport._tempDataLen, 5)
        self.assertIsInstance(transport.doWrite(), ConnectionLost)

    def test_holdingTransport(self):
        """
        A transport that holds data: through the transport, behind it.
        """
        sock = ScriptedSocket(0)
        transport, reactor = tcpTransport(Protocol(), sock)
        transport.write(b"first ")
        transport.doWrite()  # the socket takes nothing: "first " stays in dataBuffer
        writeNow(transport, b"second")
        self.assertEqual(sock.sent, [b""])
        transport.doWrite()
        self.assertEqual(sock.received(), b"first second")

    def test_tls(self):
        """
        A TCP transport that started TLS: through the transport (it encrypts).
        """
        sock = ScriptedSocket()
        transport, reactor = tcpTransport(Protocol(), sock)
        transport.TLS = True
        written = []
        transport.write = written.append
        writeNow(transport, b"hello")
        self.assertEqual((sock.sent, written), ([], [b"hello"]))

    def test_otherTransport(self):
        """
        Any other transport (in-memory ones, TLS wrappers): its C{write}.
        """
        transport = StringTransport()
        writeNow(transport, b"hello")
        self.assertEqual(transport.value(), b"hello")


class QuietPoolTests(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def test_noFactoryLines(self):
        """
        A request through a quiet pool to a local server logs no "Starting factory" / "Stopping
        factory" lines; through a plain pool it does (what the quiet one changes).
        """
        from treq.client import HTTPClient
        from twisted.internet import reactor
        from twisted.logger import globalLogPublisher
        from twisted.web.client import Agent, HTTPConnectionPool
        from twisted.web.resource import Resource
        from twisted.web.server import Site
        from twisted.web.static import Data

        root = Resource()
        root.putChild(b"x", Data(b"ok", "text/plain"))
        site = Site(root)
        site.noisy = False
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        seen = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)

        def factoryLines():
            return [e for e in seen if "factory" in str(e.get("log_format", "")).lower()
                    and "HTTP11ClientFactory" in repr(e)]

        for quiet in (True, False):
            del seen[:]
            pool = HTTPConnectionPool(reactor, persistent=False)
            if quiet:
                self.assertIs(quietPool(pool), pool)
            client = HTTPClient(Agent(reactor, pool=pool))
            response = yield client.get("http://127.0.0.1:{}/x".format(port.getHost().port))
            self.assertEqual((yield response.content()), b"ok")
            yield pool.closeCachedConnections()
            yield task.deferLater(reactor, 0.05, lambda: None)
            if quiet:
                self.assertEqual(factoryLines(), [])
            else:
                self.assertTrue(factoryLines())
