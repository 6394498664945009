"""
A small JSON-RPC 2.0 client for Stellar RPC, over treq.

Every call has one deadline covering the whole exchange (connect, response headers *and* body):
treq's own ``timeout=`` stops at the headers, so a server that sends headers and then stalls
would otherwise hang a poller forever.  Failures come out as one family of exceptions
(L{stellarflow.rpc.errors.RPCClientError}) so that a caller can decide per kind; getEvents
answers come out as L{stellarflow.rpc.pages.EventsPage}s and getLedgers answers as
L{stellarflow.rpc.ledgerpages.LedgersPage}s.  The ``Authorization`` value is never
part of a message.
"""

import json

from hyperlink import URL
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss

from stellarflow.compat.twisted import quietPool
from stellarflow.rpc.errors import (
    BadResponse,
    HTTPError,
    RPCClientError,
    RPCError,
    RPCTimeout,
    TransportError,
)
from stellarflow.rpc.ledgerpages import parseLedgersPage
from stellarflow.rpc.pages import ledgerNumber, parseEventsPage

#: A getEvents page of 10000 events in JSON form is some tens of MiB; anything far larger is
#: not a Stellar RPC answer.
DEFAULT_MAX_RESPONSE_SIZE = 256 * 1024 * 1024


def makeHTTPClient(reactor, maxPersistentPerHost=2, connectTimeout=30.0, idleTimeout=50.0):
    """
    A treq L{HTTPClient} over its own persistent connection pool.

    treq's default pool keeps 2 connections per host and 240 s idle; public RPC endpoints sit
    behind load balancers that drop idle connections sooner, and a POST on a dropped connection
    is not retried by Twisted, so idle connections are closed after C{idleTimeout}.

    @return: C{(client, pool)}; close the pool with C{pool.closeCachedConnections()}.
    """
    pool = quietPool(HTTPConnectionPool(reactor, persistent=True))
    pool.maxPersistentPerHost = maxPersistentPerHost
    pool.cachedConnectionTimeout = idleTimeout
    agent = Agent(reactor, connectTimeout=connectTimeout, pool=pool)
    return HTTPClient(agent), pool


def endpointOf(url):
    """
    C{scheme://host[:port]} of C{url}: what logs may show (paths and queries of hosted RPC
    endpoints often carry API keys).
    """
    try:
        parsed = URL.from_text(url)
        port = "" if parsed.port in (None, 80 if parsed.scheme == "http" else 443) else ":{}".format(parsed.port)
        return "{}://{}{}".format(parsed.scheme, parsed.host, port)
    except Exception:
        return "<unparseable url>"


class _BodyReader(Protocol):
    """
    Collects a response body up to a size limit; can abort the connection.
    """

    def __init__(self, finished, maxSize):
        self.finished = finished
        self.maxSize = maxSize
        self.chunks = []
        self.size = 0

    def dataReceived(self, data):
        if self.finished is None:
            return
        self.size += len(data)
        if self.size > self.maxSize:
            finished, self.finished = self.finished, None
            self.abort()
            finished.errback(BadResponse("response larger than {} bytes".format(self.maxSize)))
            return
        self.chunks.append(data)

    def connectionLost(self, reason):
        finished, self.finished = self.finished, None
        if finished is None:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            finished.callback(b"".join(self.chunks))
        else:
            finished.errback(reason)

    def abort(self):
        self.finished = None
        if self.transport is not None:
            self.transport.stopProducing()


def _readBody(response, maxSize):
    """
    A cancellable Deferred of the whole body: cancelling closes the connection.
    """
    reader = _BodyReader(None, maxSize)
    d = Deferred(lambda _: reader.abort())
    reader.finished = d
    response.deliverBody(reader)
    return d


def _describeTransportFailure(failure):
    value = failure.value
    reasons = getattr(value, "reasons", None)
    if reasons:
        parts = [r.getErrorMessage() or r.type.__name__ for r in reasons]
        return "{}: {}".format(type(value).__name__, "; ".join(parts))
    return "{}: {}".format(type(value).__name__, failure.getErrorMessage())


def _retryAfter(headers):
    values = headers.getRawHeaders(b"retry-after") or []
    for raw in values:
        try:
            return max(0.0, float(raw.decode("ascii").strip()))
        except (UnicodeDecodeError, ValueError):
            pass
    return None


class _Call:
    """
    One request and its single deadline.
    """

    def __init__(self, client, rid, method, body, headers):
        self.client = client
        self.rid = rid
        self.method = method
        self.result = Deferred(self._cancel)
        self.current = None
        self.stage = "connection and response headers"
        self.timedOut = False
        self.cancelled = False
        self.status = None
        self.timer = client.clock.callLater(client.request_timeout, self._timeout)
        self._wait(
            client.http.post(client.url, data=body, headers=headers, unbuffered=True),
            self._gotResponse,
        )

    def _wait(self, d, then):
        self.current = d
        d.addCallbacks(then, self._failed)

    def _gotResponse(self, response):
        if self._finished():
            return
        self.stage = "response body"
        self.status = response.code
        self.response = response
        self._wait(_readBody(response, self.client.maxResponseSize), self._gotBody)

    def _gotBody(self, body):
        if self._finished():
            return
        self.current = None
        try:
            value = self.client._interpret(self.response, body, self.rid)
        except RPCClientError as e:
            self._finish(Failure(e))
        except Exception as e:  # a shape we did not foresee is still a bad response
            self._finish(Failure(BadResponse("unreadable response: {}".format(e))))
        else:
            self._finish(value)

    def _failed(self, failure):
        if self._finished():
            return
        self.current = None
        if self.timedOut:
            failure = Failure(RPCTimeout(self.client.request_timeout, self.stage))
        elif self.cancelled:
            failure = Failure(CancelledError())
        elif not failure.check(RPCClientError):
            failure = Failure(TransportError(_describeTransportFailure(failure)))
        self._finish(failure)

    def _finished(self):
        return self.result.called

    def _finish(self, value):
        if self.timer.active():
            self.timer.cancel()
        if not self.result.called:
            if isinstance(value, Failure):
                self.result.errback(value)
            else:
                self.result.callback(value)

    def _timeout(self):
        self.timedOut = True
        if self.current is not None:
            self.current.cancel()
        if not self.result.called:  # a stage that ignored cancellation
            self._finish(Failure(RPCTimeout(self.client.request_timeout, self.stage)))

    def _cancel(self, _):
        self.cancelled = True
        if self.timer.active():
            self.timer.cancel()
        if self.current is not None:
            self.current.cancel()


class StellarRPCClient:
    """
    Calls Stellar RPC methods; each returns a Deferred of the ``result`` member.

    @param http: a treq L{HTTPClient}, C{treq.testing.StubTreq}, or anything with treq's
        C{post(url, data=, headers=, unbuffered=)}.
    @param url: the RPC endpoint.
    @param auth_header: sent as ``Authorization`` when not empty; never logged.
    @param clock: an L{IReactorTime} for deadlines.
    @param request_timeout: seconds for a whole call, headers and body included.
    @param pool: the connection pool to close in L{close}, if this client owns one.
    """

    def __init__(
        self,
        http,
        url,
        auth_header="",
        clock=None,
        request_timeout=30.0,
        pool=None,
        maxResponseSize=DEFAULT_MAX_RESPONSE_SIZE,
    ):
        if clock is None:
            raise TypeError("StellarRPCClient needs a clock (the reactor)")
        self.http = http
        self.url = url
        self.endpoint = endpointOf(url)
        self._auth = auth_header or ""
        self.clock = clock
        self.request_timeout = request_timeout
        self.pool = pool
        self.maxResponseSize = maxResponseSize
        self._nextId = 0

    @classmethod
    def fromReactor(cls, reactor, url, auth_header="", request_timeout=30.0, maxPersistentPerHost=2):
        """
        A client with its own persistent connection pool on C{reactor}.
        """
        http, pool = makeHTTPClient(
            reactor, maxPersistentPerHost=maxPersistentPerHost, connectTimeout=request_timeout
        )
        return cls(http, url, auth_header, clock=reactor, request_timeout=request_timeout, pool=pool)

    def __repr__(self):
        return "<StellarRPCClient {}>".format(self.endpoint)

    def call(self, method, params=None):
        """
        Call C{method} with C{params} (an object); a Deferred of its ``result``.  Cancelling it
        aborts the request.
        """
        self._nextId += 1
        rid = self._nextId
        envelope = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            envelope["params"] = params
        headers = {
            b"Content-Type": [b"application/json"],
            b"Accept": [b"application/json"],
            b"User-Agent": [b"stellarflow"],
        }
        if self._auth:
            headers[b"Authorization"] = [self._auth.encode("latin-1")]
        body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
        return _Call(self, rid, method, body, headers).result

    def getEvents(self, params):
        """
        A Deferred of an L{stellarflow.rpc.pages.EventsPage}.
        """
        return self.call("getEvents", params).addCallback(parseEventsPage)

    def getLedgers(self, params):
        """
        A Deferred of a L{stellarflow.rpc.ledgerpages.LedgersPage}: C{params} by name
        (C{startLedger} or C{pagination.cursor}, C{pagination.limit}).
        """
        return self.call("getLedgers", params).addCallback(parseLedgersPage)

    def getLatestLedger(self):
        """
        A Deferred of the result with ``sequence`` as an int.
        """
        return self.call("getLatestLedger", {}).addCallback(self._latestLedger)

    def getHealth(self):
        """
        A Deferred of the result (``status``, ``latestLedger``, ``oldestLedger``, ...).
        """
        return self.call("getHealth", {}).addCallback(self._object, "getHealth")

    def getNetwork(self):
        """
        A Deferred of the result (``passphrase``, ``protocolVersion``, ...).
        """
        return self.call("getNetwork", {}).addCallback(self._object, "getNetwork")

    def close(self):
        """
        Close idle pooled connections (a Deferred).
        """
        if self.pool is None:
            return succeed(None)
        return self.pool.closeCachedConnections()

    # -- interpretation ----------------------------------------------------

    @staticmethod
    def _object(result, method):
        if not isinstance(result, dict):
            raise BadResponse("{} result is {}, not an object".format(method, type(result).__name__))
        return result

    def _latestLedger(self, result):
        self._object(result, "getLatestLedger")
        sequence = ledgerNumber(result.get("sequence"), "getLatestLedger sequence")
        if sequence is None:
            raise BadResponse("getLatestLedger result has no 'sequence'")
        result = dict(result)
        result["sequence"] = sequence
        return result

    def _scrub(self, text, limit=200):
        """
        The start of a server-provided text, with our credentials removed should a server or
        proxy echo them back.
        """
        text = text[:limit]
        if self._auth:
            secrets = [self._auth] + self._auth.split(None, 1)[1:]
            for secret in secrets:
                if secret.strip():
                    text = text.replace(secret, "<hidden>")
        return text

    def _interpret(self, response, body, rid):
        status = response.code
        try:
            document = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, ValueError):
            document = None
            parsed = False
        else:
            parsed = document is not None

        if not 200 <= status < 300:
            if parsed and isinstance(document, dict) and isinstance(document.get("error"), dict):
                error = document["error"]
                if isinstance(error.get("code"), int) and not isinstance(error.get("code"), bool):
                    raise self._error(error)
            raise HTTPError(
                status,
                self._scrub(body.decode("utf-8", "replace").strip()),
                _retryAfter(response.headers),
            )
        if not parsed:
            if not body.strip():
                raise BadResponse("HTTP {} with an empty body".format(status))
            raise BadResponse(
                "not JSON: {!r}".format(self._scrub(body.decode("utf-8", "replace")))
            )
        if not isinstance(document, dict) or not ("result" in document or "error" in document):
            raise BadResponse("not a JSON-RPC response: {!r}".format(self._scrub(body.decode("utf-8", "replace"))))
        if "id" in document and document["id"] is not None and document["id"] != rid and document["id"] != str(rid):
            raise BadResponse("response id {!r} does not match request id {}".format(document["id"], rid))
        error = document.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            if not isinstance(code, int) or isinstance(code, bool):
                raise BadResponse("malformed JSON-RPC error: {!r}".format(self._scrub(repr(error))))
            raise self._error(error)
        return document["result"]

    def _error(self, error):
        message = error.get("message")
        if isinstance(message, str) and self._auth:
            error = dict(error, message=self._scrub(message, limit=None))
        return RPCError.fromJSON(error)
