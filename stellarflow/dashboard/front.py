"""
One listening port for the WebSocket and the dashboard page.

Each connection's first line (C{GET /ws?... HTTP/1.1}) decides who serves it: the WebSocket
path goes to the Autobahn factory, exactly as when that factory listens alone (its protocol
sees every byte, including the request line, and keeps checking path, origin and limits);
every other path goes to a twisted.web C{Site} serving the page.  The chosen protocol is given
the real transport, so the WebSocket write path is unchanged; this protocol only forwards what
it reads.

Bounds: a first line must arrive within C{timeout} seconds (else the connection is dropped)
and is at most C{maxLine} bytes (longer ones go to the site, which answers 400).  Connections
served by the site do not count against the WebSocket's C{max_connections}; the site drops
them after C{siteTimeout} idle seconds.
"""

from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from twisted.web.server import Site


class _FirstLine(Protocol):
    """
    Reads until the end of the request line, then hands the connection over.
    """

    inner = None
    timer = None

    def __init__(self, front, addr):
        self.front = front
        self.addr = addr
        self.buffer = b""

    def connectionMade(self):
        self.timer = self.front.clock.callLater(self.front.timeout, self._timedOut)

    def _timedOut(self):
        self.timer = None
        self.transport.abortConnection()

    def dataReceived(self, data):
        inner = self.inner
        if inner is not None:
            inner.dataReceived(data)
            return
        self.buffer += data
        end = self.buffer.find(b"\n")
        if end < 0 and len(self.buffer) <= self.front.maxLine:
            return
        factory = self.front.route(self.buffer[:end] if end >= 0 else b"")
        self._cancel()
        inner = factory.buildProtocol(self.addr)
        if inner is None:
            self.transport.loseConnection()
            return
        self.inner = inner
        buffered, self.buffer = self.buffer, b""
        inner.makeConnection(self.transport)
        inner.dataReceived(buffered)

    def connectionLost(self, reason):
        self._cancel()
        inner, self.inner = self.inner, None
        if inner is not None:
            inner.connectionLost(reason)

    def _cancel(self):
        timer, self.timer = self.timer, None
        if timer is not None and timer.active():
            timer.cancel()


def requestPath(line):
    """
    The path of an HTTP request line (C{b"GET /ws?x=1 HTTP/1.1"} -> C{b"/ws"}), or C{None}.
    """
    parts = line.strip().split(b" ")
    if len(parts) != 3:
        return None
    return parts[1].split(b"?", 1)[0].split(b"#", 1)[0]


class FrontFactory(ServerFactory):
    """
    Routes each connection to C{websocket} (an Autobahn server factory) when its request path
    is C{path}, else to a C{Site} over C{resource}.

    @param clock: for the first-line timeout.
    """

    log = Logger()
    noisy = False

    def __init__(self, clock, websocket, path, resource, timeout=5.0, siteTimeout=30.0, maxLine=8192):
        self.clock = clock
        self.websocket = websocket
        self.path = path.encode("utf-8")
        self.site = Site(resource, timeout=siteTimeout, reactor=clock)
        self.site.noisy = False
        self.site.log = _quiet
        self.timeout = timeout
        self.maxLine = maxLine

    def route(self, line):
        """
        The factory serving a connection whose first line is C{line}.
        """
        return self.websocket if requestPath(line) == self.path else self.site

    def buildProtocol(self, addr):
        return _FirstLine(self, addr)

    def startFactory(self):
        self.websocket.doStart()
        self.site.doStart()

    def stopFactory(self):
        self.site.doStop()
        self.websocket.doStop()


def _quiet(request):
    """
    No access log: the daemon's log is for the pipeline, not for page loads.
    """
