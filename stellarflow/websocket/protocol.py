"""
Thin Autobahn server protocol and factory for the WebSocket consumer.

The protocol checks the handshake (path, origin, connection limit), forwards open, message and
close to its L{ClientHub} and writes what it is told to (L{IClientConnection}); all client
state lives in the hub.  The factory is built with that hub and applies safe Autobahn
options: bounded frames and messages, native ping/pong heartbeats, no compression, handshake
timeouts.  Autobahn's and Twisted's internals used on the write path are in
L{stellarflow.compat}.
"""

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny
from zope.interface import implementer

from stellarflow.compat.autobahn import rawFrame, rawFrames, requestHead, sendCloseFrame
from stellarflow.compat.twisted import writeNow
from stellarflow.interfaces import IClientConnection
from stellarflow.websocket.handshake import keyProblem, keyRefusal

_OPEN = WebSocketProtocol.STATE_OPEN


def normaliseOrigin(origin):
    """
    An Origin header or configured origin as compared: lower case, no trailing slash.
    """
    return origin.strip().rstrip("/").lower()


@implementer(IClientConnection)
class BroadcastServerProtocol(WebSocketServerProtocol):
    """
    One client connection; its L{Session} is C{self.session} once open.
    """

    session = None

    def processHandshake(self):
        # A Sec-WebSocket-Key of the wrong length (the guide's curl line sends 13 bytes) gets a
        # 400 that says what to send, rather than Autobahn's bare status line.
        head = requestHead(self)
        if head is not None:
            problem = keyProblem(head)
            if problem is not None:
                self.wasNotCleanReason = "bad Sec-WebSocket-Key"
                self.sendData(keyRefusal(head, self.factory.path, problem))
                self.dropConnection(abort=False)
                return
        return WebSocketServerProtocol.processHandshake(self)

    def onConnect(self, request):
        factory = self.factory
        if request.path != factory.path:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "Not Found")
        origins = factory.allowedOriginSet
        if origins and request.origin and normaliseOrigin(request.origin) not in origins:
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Forbidden")
        if factory.hub.full:
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, "Service Unavailable")
        return None

    def onOpen(self):
        self.session = self.factory.hub.connect(self)

    def onMessage(self, payload, isBinary):
        session = self.session
        if session is not None:
            self.factory.hub.received(session, payload, isBinary)

    def onClose(self, wasClean, code, reason):
        session, self.session = self.session, None
        if session is not None:
            self.factory.hub.disconnected(session)

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

    def close(self, code, reason, drainTimeout=None):
        # any code: the public sendClose refuses 1001 and other RFC codes.
        if self.state == _OPEN:
            if drainTimeout is not None:
                # Autobahn copies its options onto each protocol when it connects and starts
                # the closing-handshake timer from this one when the close frame goes out.
                self.closeHandshakeTimeout = max(self.closeHandshakeTimeout, drainTimeout)
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
    Builds L{BroadcastServerProtocol}s for one hub.

    @param reactor: the reactor (Autobahn's timers use it too).
    @param hub: the L{ClientHub} the protocols forward their connection events to.
    @param path: the only request path accepted (others get HTTP 404).
    @param maxMessageSize: largest frame and message a client may send, in bytes (1009 beyond).
    @param pingInterval: seconds from the last pong to the next ping (0: no pings).
    @param pongTimeout: seconds a ping may wait for its pong before the connection is dropped.
    @param allowedOrigins: accepted C{Origin} headers (exact, case-insensitive); empty or
        containing C{"*"}: any.  Requests without an Origin header (non-browser) are accepted.
    @param openTimeout: seconds to complete the opening handshake.
    @param closeTimeout: seconds to wait for the client's close frame before dropping.
    @param secure: whether it serves C{wss://} (TLS is the listening endpoint's).
    """

    protocol = BroadcastServerProtocol
    noisy = False

    def __init__(
        self,
        reactor,
        hub,
        path="/ws",
        maxMessageSize=65536,
        pingInterval=30.0,
        pongTimeout=60.0,
        allowedOrigins=(),
        openTimeout=5.0,
        closeTimeout=2.0,
        secure=False,
    ):
        WebSocketServerFactory.__init__(self, server="stellarflow", reactor=reactor)
        self.hub = hub
        self.isSecure = secure
        self.path = path
        origins = {normaliseOrigin(o) for o in allowedOrigins}
        self.allowedOriginSet = frozenset() if "*" in origins else frozenset(origins)
        self.setProtocolOptions(
            maxFramePayloadSize=maxMessageSize,
            maxMessagePayloadSize=maxMessageSize,
            autoPingInterval=pingInterval,
            autoPingTimeout=pongTimeout,
            # every connection is checked by onConnect (exact-match origins), so Autobahn's
            # wildcard check lets all through, including the "null" origin of file:// pages.
            allowedOrigins=["*"],
            allowNullOrigin=True,
            perMessageCompressionAccept=_refuseCompression,
            openHandshakeTimeout=openTimeout,
            closeHandshakeTimeout=closeTimeout,
            # send close frames (1009 for oversize messages) instead of dropping the TCP.
            failByDrop=False,
            webStatus=False,
            # limits are enforced by the hub (HTTP 503 in onConnect).
            maxConnections=0,
        )


def _refuseCompression(offers):
    """
    Decline every permessage-deflate offer: compression would defeat framing each event once
    for all clients, and costs CPU and memory per connection.
    """
    return None
