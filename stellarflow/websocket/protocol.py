"""
Thin Autobahn server protocol and factory for the WebSocket consumer.

The protocol checks the handshake (path, origin, connection limit), forwards open, message and
close to the L{Broadcaster} and writes what it is told to (L{IClientConnection}); all client
state lives in the broadcaster.  The factory applies safe Autobahn options: bounded frames and
messages, native ping/pong heartbeats, no compression, handshake timeouts.  Autobahn's and
Twisted's internals used on the write path are in L{stellarflow.compat}.
"""

from functools import partial

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny
from zope.interface import implementer

from stellarflow.compat.autobahn import rawFrame, rawFrames, sendCloseFrame
from stellarflow.compat.twisted import writeNow
from stellarflow.interfaces import IClientConnection

_OPEN = WebSocketProtocol.STATE_OPEN


def normaliseOrigin(origin):
    """
    An Origin header or configured origin as compared: lower case, no trailing slash.
    """
    return origin.strip().rstrip("/").lower()


@implementer(IClientConnection)
class BroadcastServerProtocol(WebSocketServerProtocol):
    """
    One client connection; its L{Client} is C{self.client} once open.
    """

    client = None

    def onConnect(self, request):
        factory = self.factory
        if request.path != factory.path:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "Not Found")
        origins = factory.allowedOriginSet
        if origins and request.origin and normaliseOrigin(request.origin) not in origins:
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Forbidden")
        if factory.broadcaster.full:
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, "Service Unavailable")
        return None

    def onOpen(self):
        self.client = self.factory.broadcaster.connect(self)

    def onMessage(self, payload, isBinary):
        client = self.client
        if client is not None:
            self.factory.broadcaster.received(client, payload, isBinary)

    def onClose(self, wasClean, code, reason):
        client, self.client = self.client, None
        if client is not None:
            self.factory.broadcaster.disconnected(client)

    # -- IClientConnection -------------------------------------------------------------

    def send(self, frame):
        if self.state != _OPEN:
            return
        data = rawFrame(self, frame)
        if data is None:
            self.sendPreparedMessage(frame)
        else:
            self.transport.write(data)

    def sendMany(self, frames):
        """
        Write several prepared frames as one write: straight to the socket when the transport
        holds nothing (no writer registration with the reactor, no doWrite turn), the rest
        through the transport.
        """
        if self.state != _OPEN:
            return
        data = rawFrames(self, frames)
        if data is None:
            for frame in frames:
                self.sendPreparedMessage(frame)
            return
        writeNow(self.transport, data)

    def close(self, code, reason):
        # any code: the public sendClose refuses 1001 and other RFC codes.
        if self.state == _OPEN:
            sendCloseFrame(self, code, reason)

    def abort(self):
        self.dropConnection(abort=True)

    def pauseReading(self):
        if self.transport is not None:
            self.transport.pauseProducing()

    def resumeReading(self):
        if self.transport is not None:
            self.transport.resumeProducing()


class BroadcastServerFactory(WebSocketServerFactory):
    """
    Builds L{BroadcastServerProtocol}s for one broadcaster (set C{broadcaster} before use).

    @param path: the only request path accepted (others get HTTP 404).
    @param max_message_size: largest frame and message a client may send, in bytes (1009 beyond).
    @param ping_interval: seconds from the last pong to the next ping (0: no pings).
    @param pong_timeout: seconds a ping may wait for its pong before the connection is dropped.
    @param allowed_origins: accepted ``Origin`` headers (exact, case-insensitive); empty or
        containing ``"*"``: any.  Requests without an Origin header (non-browser) are accepted.
    @param open_timeout: seconds to complete the opening handshake.
    @param close_timeout: seconds to wait for the client's close frame before dropping.
    """

    protocol = BroadcastServerProtocol
    broadcaster = None
    noisy = False

    def __init__(
        self,
        reactor,
        path="/ws",
        max_message_size=65536,
        ping_interval=30.0,
        pong_timeout=60.0,
        allowed_origins=(),
        open_timeout=5.0,
        close_timeout=2.0,
    ):
        WebSocketServerFactory.__init__(self, server="stellarflow", reactor=reactor)
        self.path = path
        origins = {normaliseOrigin(o) for o in allowed_origins}
        self.allowedOriginSet = frozenset() if "*" in origins else frozenset(origins)
        self.setProtocolOptions(
            maxFramePayloadSize=max_message_size,
            maxMessagePayloadSize=max_message_size,
            autoPingInterval=ping_interval,
            autoPingTimeout=pong_timeout,
            # every connection is checked by onConnect (exact-match origins), so Autobahn's
            # wildcard check lets all through, including the "null" origin of file:// pages.
            allowedOrigins=["*"],
            allowNullOrigin=True,
            perMessageCompressionAccept=_refuseCompression,
            openHandshakeTimeout=open_timeout,
            closeHandshakeTimeout=close_timeout,
            # send close frames (1009 for oversize messages) instead of dropping the TCP.
            failByDrop=False,
            webStatus=False,
            # limits are enforced by the broadcaster (HTTP 503 in onConnect).
            maxConnections=0,
        )
        self.prepareFrame = partial(self.prepareMessage, isBinary=False, doNotCompress=True)


def _refuseCompression(offers):
    """
    Decline every permessage-deflate offer: compression would defeat framing each event once
    for all clients, and costs CPU and memory per connection.
    """
    return None
