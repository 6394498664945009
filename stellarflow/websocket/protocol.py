"""
Thin Autobahn server protocol and factory for the WebSocket consumer.

The protocol guards the upgrade: from the moment TCP connects its socket is counted by the
factory's L{ConnectionGuard} (per source address, in total) and timed (C{upgradeTimeout},
HTTP 408); the request's headers are bounded (HTTP 431); then the handshake is checked (path
404, origin 403, address limits 429, token 401, connection limit 503) before Autobahn answers
101.  It forwards open, message and close to its L{ClientHub} and writes what it is told to
(L{IClientConnection}); all client state lives in the hub.  The factory applies safe Autobahn
options: bounded frames and messages, native ping/pong heartbeats, no compression.
Autobahn's and Twisted's internals used on the write path are in L{stellarflow.compat}.
"""

import functools

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger
from zope.interface import implementer

from stellarflow.compat.autobahn import dropWithoutWarning, rawFrame, rawFrames, requestHead, sendCloseFrame
from stellarflow.compat.twisted import writeNow
from stellarflow.interfaces import IClientConnection
from stellarflow.logs import RateLimitedLog
from stellarflow.websocket.auth import OPEN as OPEN_GRANT
from stellarflow.websocket.auth import AuthError
from stellarflow.websocket.handshake import keyProblem, keyRefusal
from stellarflow.websocket.limits import ConnectionGuard, clientAddress

log = Logger()

_OPEN = WebSocketProtocol.STATE_OPEN
_CONNECTING = WebSocketProtocol.STATE_CONNECTING
#: Largest HTTP upgrade request (request line and headers) read; larger ones get HTTP 431.
MAX_REQUEST_SIZE = 16384
_STATUS_HEADERS = {
    401: [("WWW-Authenticate", "Bearer")],
    429: [("Retry-After", "1")],
    503: [("Retry-After", "5")],
}


def _printable(text, limit=200):
    """
    A reason phrase safe for a status line: printable ASCII, one line, bounded.
    """
    return "".join(c if " " <= c <= "~" else "?" for c in str(text)[:limit])


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
    ticket = None
    grant = OPEN_GRANT
    _upgradeTimer = None
    _skipped = False
    _ownTicket = False

    # -- the upgrade ----------------------------------------------------------------------

    def connectionMade(self):
        factory = self.factory
        # counted when TCP accepted it (GuardedFactory, as SaveToWebSocket listens), or now
        ticket = factory.guard.tickets.get(self.transport.getPeer())
        if ticket is None:
            self._ownTicket = True
            ticket = factory.guard.accept(self.transport.getPeer().host)
        self.ticket = ticket
        if ticket.drop:
            # over the descriptor budget or refusing too many from this address: the cheapest
            # answer is none (no Autobahn state, no timer)
            factory.dropped(ticket)
            self._skipped = True
            self.transport.abortConnection()
            return
        WebSocketServerProtocol.connectionMade(self)
        if factory.upgradeTimeout:
            left = ticket.acceptedAt + factory.upgradeTimeout - factory.reactor.seconds()
            self._upgradeTimer = factory.reactor.callLater(max(0.0, left), self._upgradeTimedOut)

    def dataReceived(self, data):
        if self._skipped:
            return
        if self.state == _CONNECTING and len(self.data) + len(data) > MAX_REQUEST_SIZE:
            self.factory.counters["request_too_large"] += 1
            self.failHandshake("Request Header Fields Too Large", 431)
            return
        WebSocketServerProtocol.dataReceived(self, data)

    def _upgradeTimedOut(self):
        self._upgradeTimer = None
        if self.state != _CONNECTING:
            return
        self.factory.counters["upgrade_timeouts"] += 1
        self.factory.refused("timeout", "WebSocket upgrade not completed within {timeout}s", timeout=self.factory.upgradeTimeout)
        self.sendHttpErrorResponse(408, "Request Timeout", [("Content-Length", "0"), ("Connection", "close")])
        self.dropConnection(abort=False)

    def processHandshake(self):
        # A Sec-WebSocket-Key of the wrong length (the guide's curl line sends 13 bytes) gets a
        # 400 that says what to send, rather than Autobahn's bare status line.
        head = requestHead(self)
        if head is not None:
            problem = keyProblem(head)
            if problem is not None:
                self.wasNotCleanReason = "bad Sec-WebSocket-Key"
                self.factory.counters["bad_key"] += 1
                self.factory.refused(
                    400, "Refused WebSocket upgrade from {peer}: HTTP {status} {reason}",
                    peer=self.peer, status=400, reason="Bad Sec-WebSocket-Key",
                )
                self.sendData(keyRefusal(head, self.factory.path, problem))
                self.dropConnection(abort=False)
                return
        return WebSocketServerProtocol.processHandshake(self)

    def onConnect(self, request):
        factory = self.factory
        ticket = self.ticket
        if request.path != factory.path:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "Not Found")
        origins = factory.allowedOriginSet
        if origins and request.origin and normaliseOrigin(request.origin) not in origins:
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Forbidden")
        if ticket.address is None:  # from a trusted proxy: count it under its client
            peer = self.transport.getPeer().host
            factory.guard.forwarded(ticket, clientAddress(peer, request.headers.get("x-forwarded-for"), factory.guard.trusted))
            if ticket.drop:
                raise ConnectionDeny(429, "too many connections from your address")
        if ticket.refusal is not None:
            raise ConnectionDeny(*ticket.refusal)
        if factory.authenticator is not None:
            try:
                self.grant = factory.authenticator.authenticate(request.headers, request.params)
            except AuthError as e:
                factory.counters["auth_refused"] += 1
                raise ConnectionDeny(401, str(e)) from None
        if factory.hub.full:
            factory.counters["refused_full"] += 1
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, "Service Unavailable")
        return None

    def failHandshake(self, reason, code=400, responseHeaders=None):
        """
        Answer a refused upgrade with C{code}, a one-line reason and no body, then close.  Logged
        at most once per status per interval (clients cause these).
        """
        reason = _printable(reason)
        self.wasNotCleanReason = reason
        self.factory.refused(
            code, "Refused WebSocket upgrade from {peer}: HTTP {status} {reason}", peer=self.peer, status=code, reason=reason
        )
        headers = list(responseHeaders or ()) + _STATUS_HEADERS.get(code, []) + [
            ("Content-Length", "0"), ("Connection", "close")
        ]
        self.sendHttpErrorResponse(code, reason, headers)
        self.dropConnection(abort=False)

    def dropConnection(self, abort=False):
        """
        Autobahn logs every unclean drop (refused upgrade, missed pong, protocol error) at
        warning level, a line per connection; clients cause these, so they are logged here at
        most once per interval instead (refused upgrades were already, in L{failHandshake}).
        """
        if self.state == WebSocketProtocol.STATE_CLOSED or self.wasClean:
            return WebSocketServerProtocol.dropConnection(self, abort)
        if self.state != _CONNECTING:
            self.factory.clientLog.info(
                log, "dropped", "Dropped WebSocket client {peer}: {reason}", peer=self.peer, reason=self.wasNotCleanReason
            )
        dropWithoutWarning(self, functools.partial(WebSocketServerProtocol.dropConnection, self), abort)

    def onOpen(self):
        self._cancelUpgradeTimer()
        self.factory.guard.opened(self.ticket)
        self.session = self.factory.hub.connect(self, self.grant)

    def connectionLost(self, reason):
        self._cancelUpgradeTimer()
        ticket = self.ticket if self._ownTicket else None
        if self._skipped:
            if ticket is not None:
                self.factory.guard.release(ticket)
            return
        try:
            WebSocketServerProtocol.connectionLost(self, reason)
        finally:
            if ticket is not None:
                self.factory.guard.release(ticket)

    def _cancelUpgradeTimer(self):
        timer, self._upgradeTimer = self._upgradeTimer, None
        if timer is not None and timer.active():
            timer.cancel()

    # -- the open connection ----------------------------------------------------------------

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
    @param upgradeTimeout: seconds from TCP connect to a completed upgrade (HTTP 408 beyond;
        0: no limit).
    @param closeTimeout: seconds to wait for the client's close frame before dropping.
    @param secure: whether it serves C{wss://} (TLS is the listening endpoint's).
    @param guard: the L{ConnectionGuard} counting sockets per address (default: no address
        limits, no budget beyond C{hub.maxConnections} plus as many upgrading).
    @param authenticator: the L{Authenticator} checking tokens, or C{None} (auth off).
    @param clientLog: the L{RateLimitedLog} refusals are logged through.

    @ivar counters: refusals by cause (for metrics), besides the guard's.
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
        upgradeTimeout=5.0,
        closeTimeout=2.0,
        secure=False,
        guard=None,
        authenticator=None,
        clientLog=None,
    ):
        WebSocketServerFactory.__init__(self, server="stellarflow", reactor=reactor)
        self.hub = hub
        self.upgradeTimeout = upgradeTimeout
        if guard is None:
            guard = ConnectionGuard(reactor, float("inf"), float("inf"), float("inf"), 2 * hub.maxConnections)
        self.guard = guard
        self.authenticator = authenticator
        self.clientLog = clientLog if clientLog is not None else RateLimitedLog(reactor)
        self.counters = dict.fromkeys(
            ("upgrade_timeouts", "request_too_large", "auth_refused", "refused_full", "bad_key"), 0
        )
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
            # the upgrade is timed by the protocol from TCP connect (HTTP 408), on our reactor
            openHandshakeTimeout=0,
            closeHandshakeTimeout=closeTimeout,
            # send close frames (1009 for oversize messages) instead of dropping the TCP.
            failByDrop=False,
            webStatus=False,
            # limits are enforced by the hub (HTTP 503 in onConnect).
            maxConnections=0,
        )


    def dropped(self, ticket):
        """
        Log a socket the L{GuardedFactory} closed at once.
        """
        if ticket.refusal is None:
            self.refused("reserve", "Closing new WebSocket connections: the descriptor budget ({budget}) is spent",
                         budget=self.guard.budget)
        else:
            self.refused("dropped", "Closing new WebSocket connections from {address} at once: 16 refused "
                         "ones are already waiting", address=ticket.address)

    def refused(self, kind, format, **fields):
        """
        Log a refused connection: one line per kind per interval, with a count.
        """
        self.clientLog.info(log, ("refused", kind), format, **fields)


def _refuseCompression(offers):
    """
    Decline every permessage-deflate offer: compression would defeat framing each event once
    for all clients, and costs CPU and memory per connection.
    """
    return None
