"""
Listening with C{SO_REUSEPORT}: several processes bind the same address and port, and the
kernel spreads incoming connections over them, so N edge processes on one host serve behind
one port with every core (docs/scaling.md).  Linux and the BSDs; elsewhere it is a clear error.
"""

import socket

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """
    A TCP server endpoint whose socket has C{SO_REUSEPORT} set before it binds.

    @param tls: an C{IOpenSSLServerConnectionCreator} (wss://), or C{None}.
    """

    def __init__(self, reactor, port, backlog=50, interface="", tls=None):
        self.reactor = reactor
        self.port = port
        self.backlog = backlog
        self.interface = interface
        self.tls = tls

    def listen(self, factory):
        family = socket.AF_INET6 if ":" in self.interface else socket.AF_INET
        host = self.interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise CannotListenError(host, self.port, OSError("SO_REUSEPORT is not supported on this system"))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind((host, self.port))
                sock.listen(self.backlog)
            except OSError as e:
                raise CannotListenError(host, self.port, e) from None
            sock.setblocking(False)
            if self.tls is not None:
                factory = TLSMemoryBIOFactory(self.tls, False, factory)
            return self.reactor.adoptStreamPort(sock.fileno(), family, factory)
        finally:
            sock.close()  # the reactor listens on its own duplicate of the descriptor
