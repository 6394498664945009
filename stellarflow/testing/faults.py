"""
Scriptable failures for the test Stellar RPC server.

Tests queue faults (C{server.faults.push(Fault("http_status", status=503))} or
C{server.inject("delay", seconds=30)}); each incoming HTTP request takes the first queued fault
whose C{method} matches (C{None} matches any request, including unparseable ones).  A fault
with C{count=n} hits the next C{n} matching requests.  Requests that take no fault are answered
normally.
"""

import attr

# kind -> what the server does with a request that takes it.
KINDS = {
    "refuse": "stop listening and drop every open connection, this request's included, for "
              "`seconds` on the server's clock (None: until acceptConnections())",
    "disconnect": "drop this request's connection without an answer",
    "delay": "answer normally, `seconds` later on the server's clock",
    "http_status": "answer HTTP `status` (e.g. 500, 503, 504) with an empty body",
    "garbage": "answer HTTP 200 with the non-JSON `body`",
    "rpc_error": "answer a JSON-RPC error `code` / `message` (default message per code)",
    "node_reset": "the node lost its history: latest jumps `ledgers` ahead and oldestLedger "
                  "becomes latestLedger, then the request is answered normally",
}

DEFAULT_GARBAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@attr.s
class Fault:
    """
    One scripted failure; see L{KINDS} for the fields each kind uses.
    """

    kind = attr.ib()
    count = attr.ib(default=1)
    method = attr.ib(default=None)
    seconds = attr.ib(default=None)
    status = attr.ib(default=503)
    code = attr.ib(default=None)
    message = attr.ib(default=None)
    body = attr.ib(default=DEFAULT_GARBAGE)
    ledgers = attr.ib(default=10)

    def __attrs_post_init__(self):
        if self.kind not in KINDS:
            raise ValueError("unknown fault kind %r (expected one of %s)" % (self.kind, ", ".join(KINDS)))
        if self.count < 1:
            raise ValueError("fault count must be >= 1, got %r" % (self.count,))
        if self.kind == "delay" and (self.seconds is None or self.seconds < 0):
            raise ValueError("a delay fault needs seconds >= 0")
        if self.kind == "rpc_error" and self.code is None:
            raise ValueError("an rpc_error fault needs a code")
        if self.kind == "node_reset" and self.ledgers < 1:
            raise ValueError("a node_reset fault needs ledgers >= 1")


class FaultQueue:
    """
    Faults waiting for requests, in order; C{fired} lists the ones already used.
    """

    def __init__(self):
        self._pending = []
        self.fired = []

    def push(self, fault):
        self._pending.append(fault)
        return fault

    def take(self, method):
        """
        The fault for a request to C{method} (C{None} when unknown), or C{None}.
        """
        for i, fault in enumerate(self._pending):
            if fault.method is None or fault.method == method:
                fault.count -= 1
                if fault.count == 0:
                    del self._pending[i]
                self.fired.append(fault)
                return fault
        return None

    def clear(self):
        del self._pending[:]

    def __len__(self):
        return len(self._pending)

    def __iter__(self):
        return iter(list(self._pending))
