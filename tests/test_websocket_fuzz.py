"""
Property-based tests (hypothesis) of what a client controls: the messages it sends (through
the hub, with a token's limits) and its HTTP upgrade request (method, path, query string,
headers, tokens; through the real Autobahn protocol in memory, with authentication on).

Every input yields a valid registration or a JSON error / an HTTP 101 or 4xx, never a logged
exception nor a change to another client's state.  C{tools/fuzz_ws.py} runs the same checks
with many more examples.
"""

import json
import string

import txaio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.logger import Logger, globalLogPublisher
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.compat.autobahn import prepareTextFrame
from stellarflow.websocket import hub as hubModule
from stellarflow.websocket import session as sessionModule
from stellarflow.websocket.auth import Authenticator, Grant
from stellarflow.websocket.hub import ClientHub
from stellarflow.websocket.limits import ConnectionGuard
from stellarflow.websocket.protocol import BroadcastServerFactory
from tests import edgehelpers as eh
from tests.test_websocket_protocol import RawClient
from tests.wshelpers import G1, G2, M1, USDC_ISSUER, FakeConnection, register, tokenEvent

SECRET = "fuzz-secret-0123456789abcdef0123456789"
GOOD = "good-static-token"
SERVER = IPv4Address("TCP", "127.0.0.1", 8080)

# -- client messages -------------------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                     max_leaves=12)
_filterValues = st.one_of(
    _json,
    st.sampled_from(["1", "0.5", "100", "", "-1", "1e3"]),
    st.lists(st.sampled_from([G1, G2, "USDC", "XLM", "transfer", "mint", "", "G" * 56, "USDC:" + G1]), max_size=6),
)
_filterDicts = st.dictionaries(
    st.sampled_from(["types", "account_ids", "asset_codes", "min_amount", "bogus"]), _filterValues, max_size=5
)
_registers = st.fixed_dictionaries(
    {"type": st.sampled_from(["register", "register", "register", "Register", "subscribe"])},
    optional={
        "filters": st.one_of(_json, _filterDicts, _filterDicts, _filterDicts),
        "resume_after": st.one_of(_json, st.sampled_from(["0000000000000000001-0000000000", "0000000000000000000-0000000000",
                                                                  "0000000000000001000-0000000000"])),
        "extra": _json,
    },
).map(lambda v: json.dumps(v).encode())

_validRegisters = st.fixed_dictionaries(
    {"type": st.just("register"),
     "filters": st.fixed_dictionaries({}, optional={
         "types": st.lists(st.sampled_from(["transfer", "mint", "burn", "contract_event", "payment", "trade"]), max_size=3),
         "account_ids": st.lists(st.sampled_from([G1, G2, M1]), max_size=3),
         "asset_codes": st.lists(st.sampled_from(["USDC", "XLM", "USDC:" + USDC_ISSUER]), max_size=3),
         "min_amount": st.sampled_from(["", "1", "0.5", "100", "1000000"]),
     })},
    optional={"resume_after": st.sampled_from(["0000000000000000001-0000000000", "0000000000000000000-0000000000"])},
).map(lambda v: json.dumps(v).encode())

MESSAGES = st.tuples(
    st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
              _json.map(lambda v: json.dumps(v).encode()), _registers, _registers, _validRegisters, _validRegisters),
    st.booleans(),
)

GRANTS = st.one_of(
    st.none(),
    st.builds(Grant, maxFilterEntries=st.one_of(st.none(), st.integers(0, 5)),
              types=st.one_of(st.none(), st.frozensets(st.sampled_from(["transfer", "mint"]))),
              accountIds=st.one_of(st.none(), st.frozensets(st.sampled_from([G1, G2])))),
)


def checkMessage(case, payload, binary, grant):
    """
    One client sends C{payload}: it gets exactly one reply (within the wait of a resume ahead of
    the stream), C{registered} (then any replayed events) or a JSON C{error}
    (never internal_error); nothing is logged as a failure; the other client's filters and
    frames are untouched.
    """
    logged = []
    observer = Logger(observer=logged.append)
    for module in (hubModule, sessionModule):
        case.patch(module, "log", observer)
    clock = Clock()
    hub = ClientHub(clock, registrationTimeout=1000, maxRegistersPerMinute=1000, maxFilterEntries=4)
    other = FakeConnection("tcp4:10.9.9.9:1")
    otherSession = hub.connect(other)
    register(hub, otherSession, {"account_ids": [G1]})
    hub.broadcast([tokenEvent(1, frm=G1)])  # the head is known: a resume is answered at once
    before = (list(other.frames), otherSession.filters)
    conn = FakeConnection()
    session = hub.connect(conn) if grant is None else hub.connect(conn, grant)
    hub.received(session, payload, binary)
    clock.advance(300)  # a resume_after ahead of the head waits a while for it, then is answered
    messages = conn.messages()[1:]
    replies = [m for m in messages if m["type"] not in ("contract_event", "cursor")]  # a resume replays, gets cursors
    case.assertEqual(len(replies), 1, messages)
    case.assertIn(replies[0]["type"], ("registered", "error"))
    if replies[0]["type"] == "error":
        case.assertIsInstance(replies[0]["error"], str)
        case.assertNotEqual(replies[0]["error"], "internal_error")
    case.assertIsNone(conn.closed)
    case.assertEqual((list(other.frames), otherSession.filters), before)
    hub.broadcast([tokenEvent(2, frm=G1)])
    case.assertEqual(other.events(), ["0000000000000000001-0000000000", "0000000000000000002-0000000000"])
    case.assertEqual([e for e in logged if e.get("log_failure") or e["log_level"].name in ("error", "critical")], [])


# -- HTTP upgrade requests -------------------------------------------------------------------

_token = st.one_of(
    st.just(GOOD), st.just(eh.hsToken(SECRET, sub="f")), st.text(max_size=40),
    st.just(eh.hsToken(SECRET, exp=1)), st.just(eh.hsToken("other-" + SECRET)),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=80),
)
_headerName = st.one_of(
    st.sampled_from(["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Origin",
                     "Authorization", "X-Forwarded-For", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
                     "Content-Length"]),
    st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=20),
)
_headerValue = st.one_of(st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=60),
                         _token.map(lambda t: "Bearer " + t))
_query = st.one_of(
    st.just(""),
    _token.map(lambda t: "?access_token=" + t),
    st.text(alphabet=string.ascii_letters + "=&%?#;+", max_size=40).map(lambda q: "?" + q),
)


@st.composite
def upgradeRequests(draw):
    """
    A well-formed upgrade with fuzzed parts, or bytes.
    """
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    method = draw(st.sampled_from(["GET", "GET", "POST", "get", "OPTIONS", "G\x00T"]))
    path = draw(st.sampled_from(["/ws", "/ws", "/", "/other", "ws", "/ws/..", "*"])) + draw(_query)
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2", "XYZ"]))
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    if draw(st.booleans()):
        headers["Authorization"] = "Bearer " + draw(_token)
    for name, value in draw(st.lists(st.tuples(_headerName, _headerValue), max_size=4)):
        headers[name] = value
    for name in draw(st.lists(st.sampled_from(sorted(headers)), max_size=2)):
        headers.pop(name, None)
    lines = ["{} {} {}".format(method, path, version)] + ["{}: {}".format(k, v) for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")


class UpgradeHarness:
    """
    The real protocol and factory, in memory on a Clock, with authentication and a guard.
    """

    def __init__(self):
        self.clock = Clock()
        self.hub = ClientHub(self.clock, prepare=prepareTextFrame, registrationTimeout=1000)
        self.guard = ConnectionGuard(self.clock, 1000, 1e9, 1e9, 10000)
        self.factory = BroadcastServerFactory(
            self.clock, self.hub, maxMessageSize=1024, pingInterval=0, upgradeTimeout=5, guard=self.guard,
            authenticator=Authenticator(self.clock, tokens=[GOOD], jwt_secret=SECRET),
        )
        self.port = 40000

    def send(self, request):
        self.port += 1
        peer = IPv4Address("TCP", "127.0.0.1", self.port)
        client = RawClient(request)
        server = self.factory.buildProtocol(peer)
        serverTransport = iosim.FakeTransport(server, isServer=True, hostAddress=SERVER, peerAddress=peer)
        clientTransport = iosim.FakeTransport(client, isServer=False, hostAddress=peer, peerAddress=SERVER)
        pump = iosim.connect(server, serverTransport, client, clientTransport, clock=self.clock)
        return client, server, pump


def checkUpgrade(case, harness, request, logged):
    """
    An upgrade request gets 101 (only with an accepted token) or a 4xx (505 for a wrong HTTP
    version); nothing is logged as
    a failure; another open client is untouched; the guard forgets the socket once closed.
    """
    del logged[:]
    client, server, pump = harness.send(request)
    harness.clock.advance(6)  # past the upgrade deadline
    pump.flush()
    status = eh.status(client.data)
    if status == 101:
        token = _presented(request)
        case.assertTrue(token in (GOOD,) or token.count(".") == 2, request)
        case.assertEqual(harness.hub.connected, 1)
    else:
        case.assertIsNotNone(status, (request, client.data))
        # 505 (HTTP Version Not Supported) is Autobahn's answer to HTTP/1.0 and the like
        case.assertTrue(400 <= status < 500 or status == 505, (request, client.data[:60]))
        case.assertEqual(harness.hub.connected, 0)
    failures = [e for e in logged if e.get("log_failure") is not None or
                (e.get("log_level") is not None and e["log_level"].name in ("error", "critical")) or
                "Unexpected exception" in str(e.get("log_format"))]
    case.assertEqual(failures, [], request)
    server.transport.loseConnection()
    pump.flush()
    harness.clock.advance(10)
    pump.flush()
    case.assertEqual((harness.guard.sockets, harness.guard.upgrading), (0, 0))
    case.assertEqual(harness.hub.connected, 0)


def _presented(request):
    text = request.decode("latin-1")
    for line in text.split("\r\n"):
        if line.lower().startswith("authorization:"):
            return line.split(":", 1)[1].strip()[len("Bearer "):].strip()
    if "access_token=" in text:
        return text.split("access_token=", 1)[1].split(" ", 1)[0].split("&", 1)[0]
    return ""


class MessageFuzzTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(MESSAGES, GRANTS)
    def test_anyMessage(self, message, grant):
        payload, binary = message
        checkMessage(self, payload, binary, grant)


class UpgradeFuzzTests(SynchronousTestCase):
    def setUp(self):
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)
        saved = txaio.config.loop
        self.addCleanup(setattr, txaio.config, "loop", saved)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(upgradeRequests())
    def test_anyUpgradeRequest(self, request):
        harness = UpgradeHarness()
        txaio.config.loop = harness.clock
        checkUpgrade(self, harness, request, self.logged)

    def test_validTokenUpgrades(self):
        """
        The generator's valid cases do upgrade (the property is not vacuous).
        """
        harness = UpgradeHarness()
        txaio.config.loop = harness.clock
        client, server, pump = harness.send(eh.upgradeRequest(headers=["Authorization: Bearer " + GOOD]))
        self.assertEqual(eh.status(client.data), 101)
        client, server, pump = harness.send(eh.upgradeRequest(path="/ws?access_token=" + GOOD + "&x=1"))
        self.assertEqual(eh.status(client.data), 101)
        client, server, pump = harness.send(eh.upgradeRequest())
        self.assertEqual(eh.status(client.data), 401)
