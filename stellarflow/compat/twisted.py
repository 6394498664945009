"""
The Twisted internals stellarflow relies on, fenced in one module.

L{writeNow} writes to a TCP transport's socket directly when the transport holds nothing (no
writer registration with the reactor, no C{doWrite} turn: most of the fan-out's cost at small
pages), which needs C{twisted.internet.abstract.FileDescriptor}'s own buffer state
(C{_tempDataLen}, C{dataBuffer}, C{offset}), its C{socket}, and C{tcp.Connection}'s C{TLS}
flag.  Any other transport (TLS, in-memory test transports) takes the plain C{write}.

L{quietPool} makes an C{HTTPConnectionPool} build its connections' factories with C{noisy}
off (C{HTTPConnectionPool._factory}, a C{_HTTP11ClientFactory}): otherwise every new connection
to the RPC (after each idle close, so once per poll when polls are further apart than the idle
timeout) logs "Starting factory" and "Stopping factory" at info level.

C{tests/test_compat_twisted.py} fails when an installed Twisted no longer has them or they no
longer mean what this module assumes.
"""

from twisted.web.client import _HTTP11ClientFactory

__all__ = ["writeNow", "quietPool"]


class _QuietHTTP11ClientFactory(_HTTP11ClientFactory):
    noisy = False


def quietPool(pool):
    """
    Stop C{pool} (an C{HTTPConnectionPool}) logging two info lines per new connection.

    @return: C{pool}.
    """
    pool._factory = _QuietHTTP11ClientFactory
    return pool


def writeNow(transport, data):
    """
    Write C{data} to C{transport}, in order after anything it holds.

    When C{transport} is a plain TCP connection with an empty buffer, C{data} goes straight to
    its socket; what the socket does not take (a short write, C{EAGAIN}) goes through
    C{transport.write}, as does everything when the socket fails (C{EPIPE}, C{ECONNRESET}:
    the transport then finds the error on its own write and loses the connection).
    """
    if (getattr(transport, "_tempDataLen", None) == 0 and not getattr(transport, "TLS", True)
            and transport.offset == len(transport.dataBuffer)
            and transport.connected and not transport.disconnecting):
        try:
            sent = transport.socket.send(data)
        except OSError:
            sent = 0
        if sent >= len(data):
            return
        if sent:
            data = data[sent:]
    transport.write(data)
