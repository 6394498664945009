"""
The errors of a Stellar RPC call, one family (L{RPCClientError}) so that a caller decides per
kind: L{RPCError} (the server answered with a JSON-RPC error; a subclass for each code Stellar
RPC uses), L{HTTPError}, L{BadResponse}, L{RPCTimeout} and L{TransportError}.  Each has a
C{kind}, a short name for logs.  The client scrubs its C{Authorization} value out of any text
the server sent before that text becomes part of an error.
"""

import json
import re

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
PROCESSING_LIMIT = -32001
QUEUE_FULL = -32098

_RANGE = re.compile(r"ledger range:\s*(\d+)\s*-\s*(\d+)")


class RPCClientError(Exception):
    """
    Anything that kept a call from producing a result.
    """

    kind = "error"


class RPCError(RPCClientError):
    """
    The server answered with a JSON-RPC error object.

    @ivar code: the integer error code.
    @ivar message: the server's message.
    @ivar data: the optional ``data`` member, or C{None}.
    """

    kind = "rpc-error"

    def __init__(self, code, message, data=None):
        RPCClientError.__init__(self, code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self):
        return "JSON-RPC error {}: {}".format(self.code, self.message)

    @staticmethod
    def fromJSON(error):
        """
        The most specific error class for a JSON-RPC error object.
        """
        code = error["code"]
        message = error.get("message")
        message = message if isinstance(message, str) else json.dumps(message)
        data = error.get("data")
        if code == INVALID_PARAMS:
            return InvalidParams(code, message, data)
        if code == INVALID_REQUEST:
            match = _RANGE.search(message)
            if match:
                return LedgerRangeError(code, message, data, int(match.group(1)), int(match.group(2)))
            return InvalidRequest(code, message, data)
        if code == METHOD_NOT_FOUND:
            return MethodNotFound(code, message, data)
        if code == PROCESSING_LIMIT:
            return ProcessingLimit(code, message, data)
        if code == QUEUE_FULL:
            return QueueFull(code, message, data)
        return RPCError(code, message, data)


class InvalidParams(RPCError):
    """
    -32602: the request itself is wrong (a filter, a cursor); retrying cannot help.
    """

    kind = "invalid-params"


class InvalidRequest(RPCError):
    """
    -32600 without a ledger range in its message.
    """

    kind = "invalid-request"


class LedgerRangeError(InvalidRequest):
    """
    -32600 ``startLedger must be within the ledger range: A - B`` (also sent for a cursor
    outside retention).

    @ivar oldest: A, the oldest ledger the server still has.
    @ivar latest: B, its latest ledger.
    """

    kind = "ledger-range"

    def __init__(self, code, message, data, oldest, latest):
        InvalidRequest.__init__(self, code, message, data)
        self.oldest = oldest
        self.latest = latest


class MethodNotFound(RPCError):
    """
    -32601: the server does not know the method (an old server, a restricted proxy).
    """

    kind = "method-not-found"


class ProcessingLimit(RPCError):
    """
    -32001: the request exceeded the server's processing limit.
    """

    kind = "processing-limit"


class QueueFull(RPCError):
    """
    -32098: the server's request queue is full; back off.
    """

    kind = "queue-full"


class HTTPError(RPCClientError):
    """
    A non-2xx HTTP status without a JSON-RPC error body (load balancers send 502/503/504).

    @ivar status: the HTTP status code.
    @ivar body: the start of the body, for the log.
    @ivar retryAfter: seconds from a ``Retry-After`` header, or C{None}.
    """

    kind = "http-error"

    def __init__(self, status, body="", retryAfter=None):
        RPCClientError.__init__(self, status, body)
        self.status = status
        self.body = body
        self.retryAfter = retryAfter

    def __str__(self):
        return "HTTP {}{}".format(self.status, ": " + self.body if self.body else " (empty body)")


class BadResponse(RPCClientError):
    """
    The answer is not a JSON-RPC 2.0 response (not JSON, no ``result``, wrong shape).
    """

    kind = "bad-response"


class RPCTimeout(RPCClientError):
    """
    No complete answer within the deadline.
    """

    kind = "timeout"

    def __init__(self, seconds, stage):
        RPCClientError.__init__(self, seconds, stage)
        self.seconds = seconds
        self.stage = stage

    def __str__(self):
        return "no complete answer within {}s (while waiting for the {})".format(self.seconds, self.stage)


class TransportError(RPCClientError):
    """
    The connection failed: refused, reset, DNS, TLS.
    """

    kind = "connection"
