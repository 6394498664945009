"""Tests for stellarflow.rpc.client: the JSON-RPC envelope, error classes, deadlines, fixtures."""

import json
import os

from treq.testing import StubTreq
from twisted.internet import reactor as globalReactor
from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from stellarflow.rpc.client import StellarRPCClient, endpointOf, makeHTTPClient
from stellarflow.rpc.errors import (
    BadResponse,
    HTTPError,
    InvalidParams,
    InvalidRequest,
    LedgerRangeError,
    MethodNotFound,
    ProcessingLimit,
    QueueFull,
    RPCError,
    RPCTimeout,
    TransportError,
)
from stellarflow.rpc.pages import EventsPage, parseEventsPage
from stellarflow.testing import fixtures
from stellarflow.testing.fixtures import fixturePath

URL = "http://rpc.test/"
SECRET = "Bearer s3cr3t-token-value"

GETEVENTS_FIXTURES = fixtures.GETEVENTS_FIXTURES


class Scripted(Resource):
    """
    Answers each POST with the next scripted reply: C{(status, body bytes, headers)}, or
    C{"hold"} to keep the request open (it is kept in C{held}).
    """

    isLeaf = True

    def __init__(self, *replies):
        Resource.__init__(self)
        self.replies = list(replies)
        self.requests = []
        self.held = []

    def render_POST(self, request):
        body = json.loads(request.content.read())
        self.requests.append((body, request.requestHeaders))
        reply = self.replies.pop(0)
        if reply == "hold":
            self.held.append(request)
            return NOT_DONE_YET
        if callable(reply):
            return reply(request, body)
        status, payload, headers = reply
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        return payload


def result(value):
    return lambda request, body: json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": value}).encode()


def error(code, message, data=None):
    def reply(request, body):
        err = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        return json.dumps({"jsonrpc": "2.0", "id": body["id"], "error": err}).encode()

    return reply


def status(code, body=b"", headers=None):
    return (code, body, headers or {})


class ClientMixin:
    def client(self, *replies, auth=SECRET, timeout=30.0, **kw):
        self.clock = Clock()
        self.resource = Scripted(*replies)
        self.stub = StubTreq(self.resource)
        return StellarRPCClient(self.stub, URL, auth_header=auth, clock=self.clock, request_timeout=timeout, **kw)

    def failureOf(self, d, *types):
        f = self.failureResultOf(d, *types)
        return f.value


class EnvelopeTests(ClientMixin, SynchronousTestCase):
    def test_request(self):
        """
        A call POSTs a JSON-RPC 2.0 envelope with params as an object, JSON content type and
        the Authorization header.
        """
        c = self.client(result({"ok": True}))
        d = c.call("getEvents", {"startLedger": 5})
        self.assertEqual(self.successResultOf(d), {"ok": True})
        body, headers = self.resource.requests[0]
        self.assertEqual(body["jsonrpc"], "2.0")
        self.assertEqual(body["method"], "getEvents")
        self.assertEqual(body["params"], {"startLedger": 5})
        self.assertIsInstance(body["id"], int)
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(headers.getRawHeaders(b"authorization"), [SECRET.encode()])

    def test_noAuthorization(self):
        """
        An empty auth_header sends no Authorization header.
        """
        c = self.client(result({}), auth="")
        self.successResultOf(c.call("getHealth", {}))
        self.assertIsNone(self.resource.requests[0][1].getRawHeaders(b"authorization"))

    def test_idsIncrease(self):
        c = self.client(result(1), result(2))
        self.successResultOf(c.call("a"))
        self.successResultOf(c.call("b"))
        ids = [body["id"] for body, _ in self.resource.requests]
        self.assertEqual(len(set(ids)), 2)

    def test_getLatestLedger(self):
        """
        getLatestLedger returns the result with an int sequence, even when sent as a string.
        """
        c = self.client(result({"id": "ab", "protocolVersion": 23, "sequence": "1234"}))
        info = self.successResultOf(c.getLatestLedger())
        self.assertEqual(info["sequence"], 1234)
        self.assertEqual(self.resource.requests[0][0]["method"], "getLatestLedger")

    def test_getLatestLedgerWithoutSequence(self):
        c = self.client(result({"id": "ab"}))
        self.assertIsInstance(self.failureOf(c.getLatestLedger(), BadResponse), BadResponse)

    def test_getHealth(self):
        c = self.client(result({"status": "healthy", "latestLedger": 9}))
        self.assertEqual(self.successResultOf(c.getHealth())["status"], "healthy")
        self.assertEqual(self.resource.requests[0][0]["method"], "getHealth")

    def test_getNetwork(self):
        c = self.client(result({"passphrase": "Test SDF Network ; September 2015"}))
        self.assertEqual(self.successResultOf(c.getNetwork())["passphrase"], "Test SDF Network ; September 2015")

    def test_getEventsPage(self):
        """
        getEvents normalises the result: int latestLedger, cursor, events list.
        """
        c = self.client(result({"events": [{"id": "1-0"}], "cursor": "1-0", "latestLedger": "77", "oldestLedger": 3}))
        page = self.successResultOf(c.getEvents({"startLedger": 1}))
        self.assertEqual(page, EventsPage(events=[{"id": "1-0"}], cursor="1-0", latestLedger=77, oldestLedger=3))

    def test_resultWithoutEnvelopeId(self):
        """
        A response without an id (some proxies) is still accepted.
        """
        c = self.client(lambda request, body: b'{"jsonrpc":"2.0","result":5}')
        self.assertEqual(self.successResultOf(c.call("x")), 5)

    def test_idMismatch(self):
        c = self.client(lambda request, body: b'{"jsonrpc":"2.0","id":999,"result":5}')
        self.assertIn("does not match", str(self.failureOf(c.call("x"), BadResponse)))

    def test_repr(self):
        c = self.client(auth=SECRET)
        self.assertNotIn("s3cr3t", repr(c))


class ErrorTests(ClientMixin, SynchronousTestCase):
    def test_invalidParams(self):
        c = self.client(error(-32602, "filter 1 invalid: topic 1 invalid: bad", data={"x": 1}))
        e = self.failureOf(c.call("getEvents", {}), InvalidParams)
        self.assertEqual((e.code, e.message, e.data), (-32602, "filter 1 invalid: topic 1 invalid: bad", {"x": 1}))
        self.assertEqual(e.kind, "invalid-params")
        self.assertIsInstance(e, RPCError)

    def test_ledgerRange(self):
        """
        -32600 "startLedger must be within the ledger range: A - B" carries A and B.
        """
        c = self.client(error(-32600, "startLedger must be within the ledger range: 52870 - 173829"))
        e = self.failureOf(c.call("getEvents", {}), LedgerRangeError)
        self.assertEqual((e.oldest, e.latest), (52870, 173829))
        self.assertIsInstance(e, InvalidRequest)

    def test_invalidRequestWithoutRange(self):
        c = self.client(error(-32600, "invalid version marker"))
        e = self.failureOf(c.call("getEvents", {}), InvalidRequest)
        self.assertNotIsInstance(e, LedgerRangeError)

    def test_processingLimit(self):
        c = self.client(error(-32001, "request exceeded processing limit threshold"))
        self.assertEqual(self.failureOf(c.call("getEvents", {}), ProcessingLimit).code, -32001)

    def test_queueFull(self):
        c = self.client(error(-32098, "rpc queue for getEvents surpassed queue limit"))
        self.assertEqual(self.failureOf(c.call("getEvents", {}), QueueFull).code, -32098)

    def test_methodNotFound(self):
        c = self.client(error(-32601, 'no such method "getNetwork"'))
        self.failureOf(c.getNetwork(), MethodNotFound)

    def test_otherCode(self):
        c = self.client(error(-32603, "internal"))
        e = self.failureOf(c.call("x"), RPCError)
        self.assertEqual(type(e), RPCError)
        self.assertEqual(str(e), "JSON-RPC error -32603: internal")

    def test_http503EmptyBody(self):
        c = self.client(status(503))
        e = self.failureOf(c.call("getEvents", {}), HTTPError)
        self.assertEqual((e.status, e.body, e.retryAfter), (503, "", None))
        self.assertIn("503", str(e))

    def test_http504(self):
        c = self.client(status(504, b"<html>Gateway Timeout</html>"))
        e = self.failureOf(c.call("getEvents", {}), HTTPError)
        self.assertEqual(e.status, 504)
        self.assertIn("Gateway Timeout", e.body)

    def test_retryAfter(self):
        c = self.client(status(429, b"slow down", {b"Retry-After": b"7"}))
        self.assertEqual(self.failureOf(c.call("x"), HTTPError).retryAfter, 7.0)

    def test_rpcErrorWithHTTPStatus(self):
        """
        A JSON-RPC error body is the error, whatever the HTTP status.
        """
        c = self.client(status(500, json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": -32098, "message": "q"}}).encode()))
        self.failureOf(c.call("x"), QueueFull)

    def test_nonJSON(self):
        c = self.client(status(200, b"<html><body>502 Bad Gateway</body></html>"))
        e = self.failureOf(c.call("getEvents", {}), BadResponse)
        self.assertIn("not JSON", str(e))

    def test_emptyBody200(self):
        c = self.client(status(200, b""))
        self.failureOf(c.call("x"), BadResponse)

    def test_notAnEnvelope(self):
        for body in (b"[1,2]", b'{"foo":1}', b"42", b'"text"'):
            c = self.client(status(200, body))
            self.failureOf(c.call("x"), BadResponse)

    def test_malformedError(self):
        for err in ('"boom"', '{"message":"no code"}', '{"code":true}'):
            c = self.client(status(200, ('{"jsonrpc":"2.0","id":1,"error":' + err + "}").encode()))
            self.failureOf(c.call("x"), BadResponse)

    def test_badEventsResult(self):
        for value in ([], {"events": {}}, {"events": [1]}, {"events": [], "cursor": 5}, {"events": [], "latestLedger": "x"}):
            c = self.client(result(value))
            self.failureOf(c.getEvents({}), BadResponse)

    def test_tooLarge(self):
        c = self.client(status(200, b'{"jsonrpc":"2.0","id":1,"result":"' + b"x" * 500 + b'"}'), maxResponseSize=100)
        self.assertIn("larger than", str(self.failureOf(c.call("x"), BadResponse)))

    def test_transportFailure(self):
        """
        A refused connection is a TransportError naming the cause.
        """

        class Refusing:
            def post(self, url, **kw):
                return fail(ConnectionRefusedError("127.0.0.1:1"))

        clock = Clock()
        c = StellarRPCClient(Refusing(), URL, clock=clock)
        e = self.failureOf(c.call("x"), TransportError)
        self.assertIn("ConnectionRefusedError", str(e))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_secretNotEchoed(self):
        """
        A proxy echoing our Authorization header back does not get it into the error.
        """
        c = self.client(status(502, b"bad gateway; request had Authorization: " + SECRET.encode()))
        e = self.failureOf(c.call("x"), HTTPError)
        self.assertNotIn("s3cr3t", str(e))
        self.assertIn("<hidden>", str(e))


class DeadlineTests(ClientMixin, SynchronousTestCase):
    def test_headersTimeout(self):
        """
        No response headers within request_timeout: RPCTimeout, and the timer is gone.
        """
        c = self.client("hold", timeout=10)
        d = c.call("getEvents", {})
        self.assertNoResult(d)
        self.clock.advance(9.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        e = self.failureOf(d, RPCTimeout)
        self.assertIn("headers", e.stage)
        self.assertEqual(e.seconds, 10)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bodyTimeout(self):
        """
        Headers arrive, then the body stalls: the same deadline covers the body.
        """

        lost = []

        def stall(request, body):
            request.setHeader(b"content-type", b"application/json")
            request.write(b'{"jsonrpc":"2.0","id":1,"res')
            request.notifyFinish().addErrback(lost.append)
            return NOT_DONE_YET

        c = self.client(stall, timeout=10)
        d = c.call("getEvents", {})
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(10)
        e = self.failureOf(d, RPCTimeout)
        self.assertEqual(e.stage, "response body")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.stub.flush()
        self.assertEqual(len(lost), 1, "the stalled connection was not closed")

    def test_slowButInTime(self):
        """
        An answer finishing before the deadline is a success and cancels the timer.
        """
        c = self.client("hold", timeout=10)
        d = c.call("x")
        self.clock.advance(5)
        request = self.resource.held[0]
        request.write(json.dumps({"jsonrpc": "2.0", "id": 1, "result": 3}).encode())
        request.finish()
        self.stub.flush()
        self.assertEqual(self.successResultOf(d), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancel(self):
        """
        Cancelling the call aborts it: CancelledError, no timer left behind.
        """
        c = self.client("hold")
        d = c.call("x")
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancelDuringBody(self):
        def stall(request, body):
            request.write(b"{")
            return NOT_DONE_YET

        c = self.client(stall)
        d = c.call("x")
        self.stub.flush()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class HelperTests(SynchronousTestCase):
    def test_endpointOf(self):
        """
        Logs show scheme, host and a non-default port only: paths and queries may hold keys.
        """
        self.assertEqual(endpointOf("https://user:pw@rpc.example.com/key/abc?token=x"), "https://rpc.example.com")
        self.assertEqual(endpointOf("http://127.0.0.1:8000/"), "http://127.0.0.1:8000")
        self.assertEqual(endpointOf("https://h:443/"), "https://h")

    def test_makeHTTPClient(self):
        """
        The pool is persistent, with the per-host limit and a short idle timeout.
        """
        http, pool = makeHTTPClient(MemoryReactorClock(), maxPersistentPerHost=3, idleTimeout=40)
        self.assertTrue(pool.persistent)
        self.assertEqual(pool.maxPersistentPerHost, 3)
        self.assertEqual(pool.cachedConnectionTimeout, 40)
        # Requests take their connections from that pool.
        wanted = []
        self.patch(pool, "getConnection", lambda key, endpoint: wanted.append(key) or Deferred())
        d = http.post("http://rpc.test:8000/", data=b"{}")
        self.assertEqual(wanted, [(b"http", b"rpc.test", 8000)])
        d.cancel()
        self.failureResultOf(d, CancelledError)

    def test_fromReactor(self):
        clock = Clock()
        c = StellarRPCClient.fromReactor(clock, URL, request_timeout=12)
        self.assertIsNotNone(c.pool)
        self.assertEqual(c.request_timeout, 12)
        self.successResultOf(c.close())

    def test_needsClock(self):
        self.assertRaises(TypeError, StellarRPCClient, object(), URL)

    def test_parseEventsPageDefaults(self):
        page = parseEventsPage({"latestLedger": 5})
        self.assertEqual(page, EventsPage(events=[], cursor=None, latestLedger=5, oldestLedger=None))


class FixtureTests(ClientMixin, SynchronousTestCase):
    def test_everyRecordedPageParses(self):
        """
        Every recorded getEvents answer, sent as a server would, parses into a page.
        """
        for name in GETEVENTS_FIXTURES:
            with open(fixturePath("rpc", name + ".json"), encoding="utf-8") as f:
                document = json.load(f)
            value = document["result"] if "jsonrpc" in document else document
            c = self.client(result(value))
            page = self.successResultOf(c.getEvents({"startLedger": 1}))
            self.assertEqual(len(page.events), len(value["events"]), name)
            self.assertIsInstance(page.latestLedger, int, name)
            if "cursor" in value:
                self.assertEqual(page.cursor, value["cursor"] or None, name)
            else:
                self.assertIsNone(page.cursor, name)

    def test_fixtureList(self):
        """
        The list above covers every getEvents fixture present (a new one is not forgotten).
        """
        directory = os.path.dirname(fixturePath("rpc", GETEVENTS_FIXTURES[0] + ".json"))
        present = {
            n[: -len(".json")]
            for n in os.listdir(directory)
            if n.endswith(".json") and not n.startswith(("lab-", "docs-json-format-"))
        }
        self.assertEqual(present, set(GETEVENTS_FIXTURES))


class LoopbackTests(TestCase):
    """
    Real sockets on 127.0.0.1, bounded in time.
    """

    timeout = 10

    @inlineCallbacks
    def test_connectionRefused(self):
        port = yield TCP4ServerEndpoint(globalReactor, 0, interface="127.0.0.1").listen(Factory.forProtocol(Protocol))
        number = port.getHost().port
        yield port.stopListening()
        c = StellarRPCClient.fromReactor(globalReactor, "http://127.0.0.1:{}/".format(number), request_timeout=5)
        self.addCleanup(c.close)
        with self.assertRaises(TransportError) as caught:
            yield c.call("getHealth", {})
        self.assertIn("refused", str(caught.exception).lower())

    @inlineCallbacks
    def test_realExchange(self):
        """
        A real HTTP exchange over a persistent pool, twice on one connection.
        """
        from twisted.web.server import Site

        resource = Scripted(result({"status": "healthy"}), result({"sequence": 10}))
        port = yield TCP4ServerEndpoint(globalReactor, 0, interface="127.0.0.1").listen(Site(resource))
        self.addCleanup(port.stopListening)
        c = StellarRPCClient.fromReactor(globalReactor, "http://127.0.0.1:{}/".format(port.getHost().port), request_timeout=5)
        self.addCleanup(c.close)
        health = yield c.getHealth()
        latest = yield c.getLatestLedger()
        self.assertEqual((health["status"], latest["sequence"]), ("healthy", 10))

