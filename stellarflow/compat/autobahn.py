"""
The Autobahn (and txaio) internals stellarflow relies on, fenced in one module.

  - framing a text message once for every client without a factory (C{PreparedMessage}, what
    C{WebSocketServerFactory.prepareMessage} builds), and the frame's wire bytes
    (C{PreparedMessage.payloadHybi});
  - whether a protocol may take those bytes straight to its transport: no permessage-deflate
    negotiated (C{_perMessageCompress}) and nothing in its own send queue (C{send_queue}), the
    case in which C{sendPreparedMessage} writes them as they are;
  - sending a close frame with any code (C{sendCloseFrame}: the public C{sendClose} refuses
    1001 and other RFC codes);
  - the request head received during the opening handshake (C{data}, L{requestHead});
  - dropping a connection without Autobahn's warning line for an unclean drop (its
    C{wasClean} flag, set for the call only: L{dropWithoutWarning});
  - the count of pings sent (C{autoPingPendingSeq}) and the bucket timers txaio leaves in the
    reactor (C{_BatchedTimer}), for tests.

C{tests/test_compat_autobahn.py} fails when an installed Autobahn no longer has one of them.
"""

from autobahn.util import encode_truncate
from autobahn.websocket.protocol import PreparedMessage

__all__ = [
    "prepareTextFrame", "frameBytes", "rawFrame", "rawFrames", "compressionNegotiated", "sendCloseFrame",
    "pingsSent", "cancelBatchedTimers", "requestHead", "dropWithoutWarning",
]

#: Longest close reason, in bytes (a close frame's payload is at most 125 bytes).
_REASON_LIMIT = 123


def prepareTextFrame(payload):
    """
    A server's text frame of C{payload} (UTF-8 bytes), framed once for any number of
    connections, never compressed: what C{factory.prepareMessage(payload, isBinary=False,
    doNotCompress=True)} returns on a server factory.
    """
    return PreparedMessage(payload, False, False, True)


def frameBytes(frame):
    """
    The wire bytes of C{frame} (from L{prepareTextFrame}).
    """
    return frame.payloadHybi


def rawFrame(protocol, frame):
    """
    The wire bytes of C{frame} (from L{prepareTextFrame}) when C{protocol} may write them
    straight to its transport, as C{sendPreparedMessage} would, minus the debug-log arguments
    Autobahn formats on every call; C{None} when it may not (compression negotiated, or its
    send queue holds data): then use C{sendPreparedMessage}.
    """
    if protocol._perMessageCompress is None and not protocol.send_queue:
        return frame.payloadHybi
    return None


def rawFrames(protocol, frames):
    """
    Like L{rawFrame} for several frames: their wire bytes joined in order, or C{None}.
    """
    if protocol._perMessageCompress is not None or protocol.send_queue:
        return None
    if len(frames) == 1:
        return frames[0].payloadHybi
    return b"".join([frame.payloadHybi for frame in frames])


def compressionNegotiated(protocol):
    """
    Whether C{protocol} negotiated permessage-deflate.
    """
    return protocol._perMessageCompress is not None


def sendCloseFrame(protocol, code, reason):
    """
    Start the closing handshake with C{code} (any, 1001 included) and C{reason} (text, cut to
    what a close frame holds).
    """
    protocol.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, _REASON_LIMIT))


def pingsSent(protocol):
    """
    How many automatic pings C{protocol} has sent.
    """
    return protocol.autoPingPendingSeq


def cancelBatchedTimers(reactor):
    """
    Cancel the bucket calls of Autobahn's batched timers (txaio) in C{reactor}: its closing
    handshake timeouts are not cancelled when the TCP connection goes first, and would leave a
    test's reactor dirty for up to the close timeout.
    """
    for call in reactor.getDelayedCalls():
        owner = getattr(call.func, "__self__", None)
        if type(owner).__name__ == "_BatchedTimer" or getattr(call.func, "__name__", "") == "notify_one_chunk":
            call.cancel()


def requestHead(protocol):
    """
    The HTTP request head a server protocol has received during its opening handshake (up to
    and including the blank line), or C{None} while it is incomplete: Autobahn keeps what it
    received in C{data} and parses it in C{processHandshake}.
    """
    data = protocol.data
    end = data.find(b"\r\n\r\n")
    return None if end < 0 else data[: end + 4]


def dropWithoutWarning(protocol, drop, abort):
    """
    Call C{drop(abort)} (Autobahn's C{dropConnection} for C{protocol}) without the warning line
    it logs for every unclean drop: it logs at debug level when C{wasClean} is set, which is set
    for the call only, so C{onClose} still learns that the close was not clean.
    """
    protocol.wasClean = True
    try:
        drop(abort)
    finally:
        protocol.wasClean = False
