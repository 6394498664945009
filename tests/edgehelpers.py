"""
Helpers for the tests of the WebSocket server's edge (authentication, limits) over real
loopback sockets: raw HTTP upgrade requests and their answers, JWTs and keys.
"""

import base64
import os

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

TIMEOUT = 10


def upgradeRequest(path="/ws", headers=(), key=None):
    """
    The bytes of a WebSocket upgrade request.
    """
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET {} HTTP/1.1".format(path),
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + key,
        "Sec-WebSocket-Version: 13",
    ] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawHTTP(Protocol):
    """
    Writes C{request} (unless C{None}) and collects what comes back until the server closes
    (or, with C{untilHeaders}, until the response's headers are in).
    """

    def __init__(self, request, untilHeaders=False):
        self.request = request
        self.untilHeaders = untilHeaders
        self.data = b""
        self.done = defer.Deferred()
        self.closed = False

    def connectionMade(self):
        if self.request is not None:
            self.transport.write(self.request)

    def dataReceived(self, data):
        self.data += data
        if self.untilHeaders and b"\r\n\r\n" in self.data and not self.done.called:
            self.done.callback(self.data)

    def connectionLost(self, reason):
        self.closed = True
        if not self.done.called:
            self.done.callback(self.data)


@defer.inlineCallbacks
def exchange(port, request, untilHeaders=False, timeout=TIMEOUT):
    """
    Connect to 127.0.0.1:C{port}, send C{request}; fire with C{(status, raw answer, protocol)}
    (status C{None} when the server answered nothing).  The connection is aborted if still open.
    """
    protocol = RawHTTP(request, untilHeaders)
    yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory.forProtocol(lambda: protocol))
    data = yield protocol.done.addTimeout(timeout, reactor)
    if not protocol.closed:
        protocol.transport.abortConnection()
    return status(data), data, protocol


def status(data):
    """
    The status code of a raw HTTP answer, or C{None}.
    """
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12])


def reasonPhrase(data):
    return data.split(b"\r\n", 1)[0][13:].decode()


def header(data, name):
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return None


def hsToken(secret, **claims):
    return jwt.encode(claims, secret, algorithm="HS256")


def keyPair(kind):
    """
    C{(private key, public PEM bytes)} for C{"RS256"} or C{"ES256"}.
    """
    if kind == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public
