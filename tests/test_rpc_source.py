"""Tests for stellarflow.rpc.source: config, the polling protocol, failures, backfills, stop."""

import json

from stellar_sdk import StrKey
from treq.testing import StubTreq
from twisted.internet import reactor as globalReactor
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stellarflow import positions
from stellarflow.backoff import Backoff
from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import ICheckpointStore, IComponentFactory, ISource, IStatsProvider
from stellarflow.pipeline import ComponentContext, Pipeline
from stellarflow.rpc.client import StellarRPCClient
from stellarflow.rpc.config import CONFIG_SCHEMA, DEFAULT_RPC_URL, inferNetwork
from stellarflow.rpc.errors import InvalidParams
from stellarflow.rpc.pages import orderEvents
from stellarflow.rpc.policy import RETRY_CAP
from stellarflow.rpc.source import RPCSourceAdapter
from stellarflow.testing import fixtures
from stellarflow.testing.fixtures import fixturePath
from stellarflow.testing.memory import MemoryConsumer
from stellarflow.testing.rpcserver import StellarRPCResource, serve

URL = "http://rpc.test/"
SECRET = "Bearer top-secret-token-4711"
USDC = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
TRANSFER = "AAAADwAAAAh0cmFuc2Zlcg=="
TESTNET = "Test SDF Network ; September 2015"


def eventId(ledger, tx=1, op=0, index=0):
    return positions.eventId(ledger, tx, op, index)


def ev(ledger, tx=1, op=0, index=0, **extra):
    event = {"type": "contract", "ledger": ledger, "id": eventId(ledger, tx, op, index), "contractId": USDC}
    event.update(extra)
    return event


def page(events, cursor=None, latest=1000, oldest=1, **extra):
    result = {"events": events, "latestLedger": latest, "oldestLedger": oldest}
    if cursor is not None:
        result["cursor"] = cursor
    result.update(extra)
    return result


class Script(Resource):
    """
    A scripted RPC: each reply is a result object, C{("error", code, message)},
    C{("status", code)}, C{("raw", bytes)}, C{"hold"} or a callable; C{default} answers once
    the script ran out.  Records C{(method, params, headers)}.
    """

    isLeaf = True

    def __init__(self, *replies, default=None):
        Resource.__init__(self)
        self.replies = list(replies)
        self.default = default
        self.requests = []
        self.held = []

    def calls(self, method="getEvents"):
        return [params for m, params, _ in self.requests if m == method]

    def render_POST(self, request):
        body = json.loads(request.content.read())
        self.requests.append((body["method"], body.get("params"), request.requestHeaders))
        reply = self.replies.pop(0) if self.replies else self.default
        if reply is None:
            raise AssertionError("unexpected request {} {}".format(body["method"], body.get("params")))
        if callable(reply):
            reply = reply(body)
        if callable(reply):
            return reply(request)
        if reply == "hold":
            self.held.append(request)
            return NOT_DONE_YET
        if isinstance(reply, tuple):
            if reply[0] == "error":
                return json.dumps({"jsonrpc": "2.0", "id": body["id"], "error": {"code": reply[1], "message": reply[2]}}).encode()
            if reply[0] == "status":
                request.setResponseCode(reply[1])
                return b""
            if reply[0] == "raw":
                return reply[1]
        return json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": reply}).encode()


class Collector:
    """
    A pipeline stand-in: keeps batches; C{hold} keeps the readiness Deferred back, C{failNext}
    raises like a failing processor.
    """

    def __init__(self):
        self.batches = []
        self.hold = False
        self.waiting = None
        self.failNext = 0

    def __call__(self, batch):
        if self.failNext:
            self.failNext -= 1
            raise RuntimeError("processor exploded")
        self.batches.append(batch)
        if self.hold:
            self.waiting = Deferred()
            return self.waiting
        return succeed(None)

    @property
    def items(self):
        return [e for b in self.batches for e in b.items]

    @property
    def ids(self):
        return [e["id"] for e in self.items]


class Refusing:
    """
    An HTTP client whose first C{count} connections are refused; then it delegates.
    """

    def __init__(self, http, count):
        self.http = http
        self.count = count

    def post(self, url, **kw):
        if self.count:
            self.count -= 1
            return fail(ConnectionRefusedError("127.0.0.1:9"))
        return self.http.post(url, **kw)


class BoundedClock(Clock):
    """
    A Clock that fails, instead of spinning forever, when one advance() runs too many calls
    (a zero-delay loop against the synchronous in-memory server would never return).
    """

    maxCalls = 5000
    ran = 0

    def advance(self, amount):
        self.ran = 0
        Clock.advance(self, amount)

    def callLater(self, delay, f, *args, **kw):
        def counted(*args, **kw):
            self.ran += 1
            if self.ran > self.maxCalls:
                raise AssertionError("more than {} calls in one advance(): a busy loop".format(self.maxCalls))
            return f(*args, **kw)

        return Clock.callLater(self, delay, counted, *args, **kw)


class SourceCase(SynchronousTestCase):
    def setUp(self):
        self.clock = BoundedClock()
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)
        self.deliver = Collector()
        self.fatal = []
        self.completed = []

    def makeSource(self, resource, auth="", wrap=None, timeout=30.0, **kw):
        self.resource = resource
        self.stub = StubTreq(resource)
        http = wrap(self.stub) if wrap else self.stub
        self.client = StellarRPCClient(http, URL, auth_header=auth, clock=self.clock, request_timeout=timeout)
        kw.setdefault("verifyNetwork", False)
        kw.setdefault("backoff", Backoff(initial=1.0, maximum=60.0, jitter=False))
        kw.setdefault("poll_interval", 5.0)
        self.source = RPCSourceAdapter(self.client, self.clock, **kw)
        return self.source

    def start(self, checkpoint=None):
        ended = self.source.start(self.deliver, checkpoint)
        ended.addCallbacks(lambda _: self.completed.append(True), self.fatal.append)
        self.clock.advance(0)

    def drain(self, limit=2000):
        """
        Run everything due now (the catch-up loop), without letting time pass.
        """
        for _ in range(limit):
            due = [c for c in self.clock.getDelayedCalls() if c.getTime() <= self.clock.seconds()]
            if not due:
                return
            self.clock.advance(0)
        self.fail("still busy after {} turns".format(limit))

    def texts(self, level=None):
        return [
            formatEvent(e)
            for e in self.logged
            if level is None or (e.get("log_level") is not None and e["log_level"].name == level)
        ]

    def serverRequests(self, method="getEvents"):
        if isinstance(self.resource, Script):
            return self.resource.calls(method)
        return [r.params for r in self.resource.requests if r.method == method]


class InterfaceTests(SynchronousTestCase):
    def test_interfaces(self):
        verifyObject(IComponentFactory, RPCSourceAdapter)
        client = StellarRPCClient(StubTreq(Script()), URL, clock=Clock())
        source = RPCSourceAdapter(client, Clock())
        verifyObject(ISource, source)
        verifyObject(IStatsProvider, source)


class HelperTests(SynchronousTestCase):
    def test_orderEvents(self):
        a, b, c = ev(10), ev(10, index=1), ev(11)
        odd = {"type": "contract"}
        self.assertEqual(orderEvents([c, odd, b, a]), [a, b, c, odd])

    def test_inferNetwork(self):
        self.assertEqual(inferNetwork("https://soroban-testnet.stellar.org"), "testnet")
        self.assertEqual(inferNetwork("https://rpc-futurenet.stellar.org/"), "futurenet")
        self.assertEqual(inferNetwork("https://mainnet.sorobanrpc.com"), "mainnet")
        self.assertEqual(inferNetwork("http://127.0.0.1:8000/"), "mainnet")


class ConfigTests(SynchronousTestCase):
    def validate(self, config):
        return CONFIG_SCHEMA.validate(config, "pipelines.p.source.config")

    def problems(self, config):
        result, problems = self.validate(config)
        self.assertIsNone(result)
        return [(p.path, p.message) for p in problems]

    def test_defaults(self):
        config, problems = self.validate({})
        self.assertEqual(list(problems), [])
        self.assertEqual(config["rpc_url"], DEFAULT_RPC_URL)
        self.assertEqual(config["network"], "testnet")
        self.assertEqual(config["pagination"], {"limit": 100})
        self.assertEqual(
            {k: config[k] for k in ("start_ledger", "end_ledger", "poll_interval", "xdrFormat", "on_gap", "request_timeout")},
            {"start_ledger": 0, "end_ledger": 0, "poll_interval": 5.0, "xdrFormat": "base64", "on_gap": "skip", "request_timeout": 30.0},
        )

    def test_guideExample(self):
        """
        The source config of the WebSocket streaming guide validates.
        """
        config, problems = self.validate(
            {
                "rpc_url": "https://rpc-mainnet.stellar.org",
                "auth_header": "",
                "start_ledger": 2000000,
                "poll_interval": 5,
                "rpc_method": "getEvents",
                "filters": [{"type": "contract", "contractIds": [USDC], "topics": [["*"]]}],
                "pagination": {"limit": 1000},
                "xdrFormat": "json",
            }
        )
        self.assertEqual(list(problems), [])
        self.assertEqual(config["network"], "mainnet")
        self.assertEqual(config["pagination"]["limit"], 1000)

    def test_fractionalInterval(self):
        config, _ = self.validate({"poll_interval": "0.25"})
        self.assertEqual(config["poll_interval"], 0.25)
        config, _ = self.validate({"poll_interval": 0})
        self.assertEqual(config["poll_interval"], 0)

    def test_filterLimits(self):
        """
        The server's limits are checked before it ever sees a request, each at its path.
        """
        cid = [StrKey.encode_contract(bytes([i]) * 32) for i in range(6)]
        problems = self.problems(
            {
                "filters": [
                    {"contractIds": cid},
                    {"contractIds": ["GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"]},
                    {"topics": [["*"]] * 6},
                    {"topics": [[]]},
                    {"type": "diagnostic"},
                ]
            }
        )
        paths = dict(problems)
        base = "pipelines.p.source.config.filters"
        self.assertIn("at most 5 items", paths[base + "[0].contractIds"])
        self.assertIn("contract id", paths[base + "[1].contractIds[0]"])
        self.assertIn("at most 5 items", paths[base + "[2].topics"])
        self.assertIn("at least 1", paths[base + "[3].topics[0]"])
        self.assertIn("'contract', 'system'", paths[base + "[4].type"])

    def test_tooManyFilters(self):
        problems = self.problems({"filters": [{}] * 6})
        self.assertEqual(problems[0][0], "pipelines.p.source.config.filters")
        self.assertIn("at most 5", problems[0][1])

    def test_topicSegments(self):
        problems = dict(
            self.problems(
                {
                    "filters": [
                        {
                            "topics": [
                                [TRANSFER, "**", "*"],
                                ["*", "*", "*", "*", "*"],
                                ["not base64 xdr!"],
                                ["AAAA"],
                            ]
                        }
                    ]
                }
            )
        )
        base = "pipelines.p.source.config.filters[0].topics"
        self.assertIn("only allowed as the last segment", problems[base + "[0][1]"])
        self.assertIn("at most 4", problems[base + "[1]"])
        self.assertIn("base64 XDR ScVal", problems[base + "[2][0]"])
        self.assertIn("base64 XDR ScVal", problems[base + "[3][0]"])

    def test_validTopics(self):
        """
        A trailing '**' does not count towards the 4 segments (as in stellar-rpc).
        """
        config, problems = self.validate(
            {"filters": [{"type": "contract,system", "topics": [[TRANSFER, "*", "*", "*", "**"], ["**"]]}]}
        )
        self.assertEqual(list(problems), [])

    def test_scalarLimits(self):
        problems = dict(
            self.problems(
                {
                    "pagination": {"limit": 10001},
                    "rpc_method": "getTransactions",
                    "xdrFormat": "xdr",
                    "on_gap": "ignore",
                    "request_timeout": 0,
                    "rpc_url": "ftp://x",
                    "network": "marsnet",
                    "start_ledger": -1,
                }
            )
        )
        base = "pipelines.p.source.config."
        self.assertIn("10000", problems[base + "pagination.limit"])
        for key in ("rpc_method", "xdrFormat", "on_gap", "request_timeout", "rpc_url", "network", "start_ledger"):
            self.assertIn(base + key, problems)

    def test_endBeforeStart(self):
        problems = self.problems({"start_ledger": 100, "end_ledger": 99})
        self.assertEqual(problems, [("pipelines.p.source.config.end_ledger", "got 99; expected >= start_ledger (100)")])

    def test_secretHidden(self):
        problems = self.problems({"auth_header": ["Bearer leaked"]})
        self.assertEqual(problems[0][0], "pipelines.p.source.config.auth_header")
        self.assertNotIn("leaked", problems[0][1])
        self.assertIn("<hidden>", problems[0][1])
        self.assertEqual(CONFIG_SCHEMA.secretKeys(), {"auth_header"})

    def test_unknownKey(self):
        problems = self.problems({"poll_intervall": 3})
        self.assertIn("did you mean 'poll_interval'", problems[0][1])

    def test_fromConfig(self):
        """
        fromConfig builds a client with its own persistent pool on context.reactor.
        """
        config, _ = self.validate(
            {
                "rpc_url": "https://rpc.example.com/key",
                "auth_header": SECRET,
                "start_ledger": 7,
                "end_ledger": 9,
                "poll_interval": 2,
                "filters": [{"type": "contract", "contractIds": [USDC], "topics": [["*"]]}],
                "pagination": {"limit": 50},
                "xdrFormat": "json",
                "on_gap": "stop",
                "request_timeout": 12,
            }
        )
        clock = Clock()
        source = RPCSourceAdapter.fromConfig(config, ComponentContext(reactor=clock, pipeline="p"))
        verifyObject(ISource, source)
        self.assertIs(source.clock, clock)
        self.assertIs(source.client.clock, clock)
        self.assertTrue(source.client.pool.persistent)
        self.assertEqual(source.client.pool.maxPersistentPerHost, 2)
        self.assertEqual(source.client.request_timeout, 12)
        self.assertEqual((source.start_ledger, source.end_ledger, source.poll_interval, source.limit), (7, 9, 2, 50))
        self.assertEqual(source.filters, [{"type": "contract", "contractIds": [USDC], "topics": [["*"]]}])
        self.assertEqual((source.xdr_format, source.on_gap, source.configuredNetwork, source.name), ("json", "stop", "mainnet", "p"))
        self.assertEqual(source.network, "Public Global Stellar Network ; September 2015")
        self.assertNotIn("top-secret", repr(source))


class ProtocolTests(SourceCase):
    def test_firstStartLedgerThenCursor(self):
        """
        The first request has startLedger; later ones only the returned cursor.
        """
        script = Script(
            page([ev(100), ev(101)], cursor=eventId(101), latest=150),
            page([], cursor=positions.ledgerEnd(150), latest=150),
            default=page([], cursor=positions.ledgerEnd(150), latest=150),
        )
        self.makeSource(script, start_ledger=100, limit=2, filters=[{"type": "contract", "contractIds": [USDC], "topics": []}])
        self.start()
        self.drain()
        calls = script.calls()
        self.assertEqual(
            calls[0], {"startLedger": 100, "pagination": {"limit": 2}, "filters": [{"type": "contract", "contractIds": [USDC]}]}
        )
        self.assertEqual(
            calls[1],
            {"pagination": {"cursor": eventId(101), "limit": 2}, "filters": [{"type": "contract", "contractIds": [USDC]}]},
        )
        self.assertNotIn("xdrFormat", calls[0])
        self.assertEqual(len(calls), 2)
        self.assertEqual(self.deliver.ids, [eventId(100), eventId(101)])
        self.assertEqual([b.cursor for b in self.deliver.batches], [eventId(101), positions.ledgerEnd(150)])
        self.assertEqual(self.deliver.batches[0].latestLedger, 150)

    def test_xdrFormatJson(self):
        script = Script(default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=5, xdr_format="json")
        self.start()
        self.assertEqual(script.calls()[0]["xdrFormat"], "json")

    def test_startFromCheckpoint(self):
        """
        A checkpoint cursor wins over start_ledger.
        """
        script = Script(default=page([], cursor=positions.ledgerEnd(300), latest=300))
        self.makeSource(script, start_ledger=5)
        self.start(checkpoint=eventId(250, index=3))
        self.assertEqual(script.calls()[0], {"pagination": {"cursor": eventId(250, index=3), "limit": 100}, "filters": []})

    def test_checkpointDedupes(self):
        """
        Events at or before the checkpoint are never delivered again.
        """
        script = Script(page([ev(250, index=3), ev(250, index=4)], cursor=positions.ledgerEnd(250), latest=250))
        self.makeSource(script)
        self.start(checkpoint=eventId(250, index=3))
        self.assertEqual(self.deliver.ids, [eventId(250, index=4)])

    def test_badCheckpoint(self):
        script = Script()
        self.makeSource(script)
        self.start(checkpoint="garbage")
        self.assertEqual(script.requests, [])
        self.assertFalse(self.source.polling)
        self.assertEqual(len(self.fatal), 1)
        self.assertTrue(any("garbage" in t for t in self.texts("critical")))

    def test_latestLedgerStart(self):
        """
        Without start_ledger or checkpoint the source starts at getLatestLedger's sequence.
        """
        script = Script({"id": "x", "protocolVersion": 23, "sequence": 777}, default=page([], cursor=positions.ledgerEnd(777), latest=777))
        self.makeSource(script)
        self.start()
        self.assertEqual(script.requests[0][0], "getLatestLedger")
        self.assertEqual(script.calls()[0]["startLedger"], 777)

    def test_orderAndNoRedelivery(self):
        """
        Events go out sorted by id, and an id already delivered is dropped.
        """
        e1, e2, e3, e4 = ev(10), ev(10, index=1), ev(11), ev(12)
        script = Script(
            page([e3, e1, e2], cursor=e3["id"], latest=20),
            page([e2, e3, e4], cursor=e4["id"], latest=20),
            default=page([], cursor=positions.ledgerEnd(20), latest=20),
        )
        self.makeSource(script, start_ledger=10, limit=3)
        self.start()
        self.drain()
        self.assertEqual(self.deliver.ids, [e1["id"], e2["id"], e3["id"], e4["id"]])
        self.assertEqual([len(b.items) for b in self.deliver.batches], [3, 1, 0])

    def test_emptyPages(self):
        """
        An empty page that moves the cursor is delivered (to be checkpointed); one that does not
        is not.
        """
        script = Script(
            page([ev(10)], cursor=positions.ledgerEnd(10), latest=10),
            page([], cursor=positions.ledgerEnd(11), latest=11),
            page([], cursor=positions.ledgerEnd(11), latest=11),
        )
        self.makeSource(script, start_ledger=10)
        self.start()
        self.clock.advance(5)
        self.clock.advance(5)
        self.assertEqual(len(script.calls()), 3)
        self.assertEqual([(len(b.items), b.cursor) for b in self.deliver.batches], [(1, positions.ledgerEnd(10)), (0, positions.ledgerEnd(11))])

    def test_catchUpThenPollInterval(self):
        """
        Full pages and cursors behind the latest ledger are followed at once; once caught up
        the next request waits poll_interval.
        """
        script = Script(
            page([ev(10), ev(11)], cursor=eventId(11), latest=40),  # full
            page([ev(12)], cursor=positions.ledgerEnd(30), latest=40),  # window ended behind latest
            page([], cursor=positions.ledgerEnd(40), latest=40),  # caught up
            page([ev(41)], cursor=positions.ledgerEnd(41), latest=41),
        )
        self.makeSource(script, start_ledger=10, limit=2, poll_interval=2.5)
        self.start()
        self.drain()
        self.assertEqual(len(script.calls()), 3)
        self.clock.advance(2.4)
        self.assertEqual(len(script.calls()), 3)
        self.clock.advance(0.1)
        self.assertEqual(len(script.calls()), 4)
        self.assertEqual(self.deliver.ids, [eventId(10), eventId(11), eventId(12), eventId(41)])
        self.assertTrue(any("Caught up" in t for t in self.texts("info")))

    def test_stuckCursorDoesNotSpin(self):
        """
        A full page whose cursor does not advance waits poll_interval instead of hammering.
        """
        same = page([ev(10), ev(11)], cursor=eventId(11), latest=40)
        script = Script(default=same)
        self.makeSource(script, start_ledger=10, limit=2)
        self.start()
        self.drain()
        self.assertEqual(len(script.calls()), 2)
        self.assertEqual(len(self.deliver.ids), 2)

    def test_legacyPagesWithoutCursor(self):
        """
        Servers before v22 sent no cursor: the last event's pagingToken is the cursor; an empty
        page without one moves startLedger to the latest ledger.
        """
        e1 = ev(10, pagingToken=eventId(10))
        e2 = ev(11, pagingToken=eventId(11))
        script = Script(
            page([], latest="9"),
            page([e1, e2], latest="12"),
            default=page([], latest="12"),
        )
        self.makeSource(script, start_ledger=5)
        self.start()
        self.clock.advance(5)
        self.clock.advance(5)
        calls = script.calls()
        self.assertEqual(calls[0]["startLedger"], 5)
        self.assertEqual(calls[1]["startLedger"], 9)
        self.assertEqual(calls[2]["pagination"]["cursor"], eventId(11))
        self.assertEqual(self.deliver.batches[0].cursor, eventId(11))
        self.assertEqual(self.deliver.batches[0].latestLedger, 12)

    def test_neverTwoInFlight(self):
        """
        While a request is outstanding nothing else is sent, however long it takes.
        """
        script = Script("hold", default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10, poll_interval=0.5, timeout=30)
        self.start()
        self.clock.advance(29)
        self.assertEqual(len(script.requests), 1)
        self.assertTrue(self.source._request is not None)

    def test_backpressure(self):
        """
        The next page is not fetched before the deliver Deferred fired.
        """
        script = Script(
            page([ev(10), ev(11)], cursor=eventId(11), latest=50),
            default=page([], cursor=positions.ledgerEnd(50), latest=50),
        )
        self.deliver.hold = True
        self.makeSource(script, start_ledger=10, limit=2)
        self.start()
        self.clock.advance(100)
        self.assertEqual(len(script.calls()), 1)
        self.deliver.hold = False
        self.deliver.waiting.callback(None)
        self.drain()
        self.assertEqual(len(script.calls()), 2)
        self.assertEqual(script.calls()[1]["pagination"]["cursor"], eventId(11))

    def test_deliveryFailureRetriesSamePage(self):
        """
        A pipeline failure (a processor raised) is logged and the same page is fetched again
        after a backoff delay; nothing advances in between.
        """
        script = Script(
            page([ev(10)], cursor=eventId(10), latest=10),
            page([ev(10)], cursor=eventId(10), latest=10),
            default=page([], cursor=positions.ledgerEnd(10), latest=10),
        )
        self.deliver.failNext = 1
        self.makeSource(script, start_ledger=10)
        self.start()
        self.assertEqual(self.deliver.batches, [])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.clock.advance(0.99)
        self.assertEqual(len(script.calls()), 1)
        self.clock.advance(0.01)
        calls = script.calls()
        self.assertEqual(calls[0], calls[1])
        self.assertEqual(self.deliver.ids, [eventId(10)])
        self.assertEqual(self.source.backoff.failures, 0)

    def test_metrics(self):
        script = Script(
            page([ev(10), ev(12)], cursor=positions.ledgerEnd(15), latest=20, oldest=3),
            ("status", 503),
            page([], cursor=positions.ledgerEnd(15), latest=20, oldest=3),
        )
        self.makeSource(script, start_ledger=10)
        self.clock.advance(42)
        self.start()
        s = self.source
        self.assertEqual((s.requests, s.errors, s.lastError), (2, 1, "HTTP 503 (empty body)"))
        self.clock.advance(1)
        self.assertEqual((s.latestLedger, s.oldestLedger, s.requests, s.errors, s.eventsDelivered), (20, 3, 3, 1, 2))
        self.assertEqual(s.cursor, positions.ledgerEnd(15))
        self.assertEqual(s.lagLedgers, 5)
        self.assertEqual(s.lastSuccessTime, 43)
        self.assertTrue(s.polling)


class FailureTests(SourceCase):
    def assertRetriesAfter(self, delays):
        """
        Each failed attempt is followed by exactly one more after the given delay.
        """
        for delay in delays:
            before = len(self.resource.requests)
            self.clock.advance(delay - 0.001)
            self.assertEqual(len(self.resource.requests), before, "retried too early")
            self.clock.advance(0.001)
            self.stub.flush()
            self.assertEqual(len(self.resource.requests), before + 1, "did not retry after {}s".format(delay))

    def recoverAfter(self, *failures, kind):
        ok = page([ev(10)], cursor=positions.ledgerEnd(10), latest=10)
        script = Script(*failures, ok, default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10)
        self.start()
        self.assertRetriesAfter([1.0 * 2**i for i in range(len(failures))])
        self.assertEqual(self.deliver.ids, [eventId(10)])
        self.assertEqual(self.source.errors, len(failures))
        self.assertEqual(self.source.backoff.failures, 0)
        warnings = [t for t in self.texts("warn") if "failed ({}".format(kind) in t]
        self.assertEqual(len(warnings), len(failures))
        self.assertTrue(any("answering again after {} failed".format(len(failures)) in t for t in self.texts("info")))
        self.assertTrue(self.source.polling)

    def test_http503(self):
        self.recoverAfter(("status", 503), ("status", 503), kind="http-error")

    def test_http504(self):
        self.recoverAfter(("status", 504), kind="http-error")

    def test_http500(self):
        self.recoverAfter(("status", 500), kind="http-error")

    def test_nonJSON(self):
        self.recoverAfter(("raw", b"<html>502 Bad Gateway</html>"), kind="bad-response")

    def test_processingLimit(self):
        self.recoverAfter(("error", -32001, "request exceeded processing limit threshold"), kind="processing-limit")

    def test_queueFull(self):
        self.recoverAfter(
            ("error", -32098, "rpc queue for getEvents surpassed queue limit of 10 requests"),
            ("error", -32098, "rpc queue for getEvents surpassed queue limit of 10 requests"),
            ("error", -32098, "rpc queue for getEvents surpassed queue limit of 10 requests"),
            kind="queue-full",
        )

    def test_otherRPCError(self):
        self.recoverAfter(("error", -32603, "internal error"), kind="rpc-error")

    def test_timeout(self):
        """
        A request that never answers times out after request_timeout and is retried.
        """
        script = Script("hold", page([ev(10)], cursor=positions.ledgerEnd(10), latest=10), default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10, timeout=10)
        self.start()
        self.clock.advance(9.9)
        self.assertEqual(self.source.errors, 0)
        self.clock.advance(0.1)
        self.assertEqual(self.source.errors, 1)
        self.assertTrue(any("failed (timeout" in t for t in self.texts("warn")))
        self.assertRetriesAfter([1.0])
        self.assertEqual(self.deliver.ids, [eventId(10)])

    def test_connectionRefused(self):
        script = Script(page([ev(10)], cursor=positions.ledgerEnd(10), latest=10), default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10, wrap=lambda http: Refusing(http, 3))
        self.start()
        for delay in (1.0, 2.0):
            self.clock.advance(delay)
        self.assertEqual(script.requests, [])
        self.clock.advance(4.0)
        self.assertEqual(self.deliver.ids, [eventId(10)])
        self.assertEqual(self.source.errors, 3)
        self.assertEqual(len([t for t in self.texts("warn") if "failed (connection" in t]), 3)

    def test_backoffCapped(self):
        """
        A failure that costs the server nothing to retry (it answers 503, refuses, times out)
        is retried at least every RETRY_CAP seconds, so delivery resumes within seconds of the
        server coming back; polling never stops.
        """
        script = Script(default=("status", 503))
        self.makeSource(script, start_ledger=10)
        self.start()
        for _ in range(720):
            self.clock.advance(1)
        # at 0, then after 1, 2, 4 s (t=7), then every 5 s up to t=717
        self.assertEqual(RETRY_CAP, 5.0)
        self.assertEqual(len(script.requests), 4 + 142)
        self.assertTrue(self.source.polling)

    def test_overloadBacksOffLonger(self):
        """
        A server that says it is overloaded (-32098 queue full) is given the whole backoff, up
        to 60 s: retrying sooner would cost it more.
        """
        script = Script(default=("error", -32098, "rpc queue for getEvents surpassed queue limit of 10 requests"))
        self.makeSource(script, start_ledger=10)
        self.start()
        for _ in range(720):
            self.clock.advance(1)
        # at 0, then after 1, 2, 4, 8, 16, 32 s (t=63), then every 60 s up to t=663
        self.assertEqual(len(script.requests), 7 + 10)
        self.assertTrue(self.source.polling)

    def test_recoversWithinSecondsAfterAMinute(self):
        """
        Refused for a minute: the first request after the server is back is at most RETRY_CAP
        seconds later, and nothing is lost.
        """
        script = Script(page([ev(10)], cursor=positions.ledgerEnd(10), latest=10), default=page([], cursor=positions.ledgerEnd(10), latest=10))
        refusing = []

        def wrap(http):
            refusing.append(Refusing(http, 10**6))
            return refusing[0]

        self.makeSource(script, start_ledger=10, wrap=wrap)
        self.start()
        for _ in range(60):
            self.clock.advance(1)
        self.assertEqual(script.requests, [])
        refusing[0].count = 0  # the server is back
        waited = 0
        while not self.deliver.ids and waited < 60:
            self.clock.advance(1)
            waited += 1
        self.assertEqual(self.deliver.ids, [eventId(10)])
        self.assertLessEqual(waited, RETRY_CAP)

    def test_unexpectedErrorKeepsPolling(self):
        """
        Even an exception that is not an RPC error (a bug) is logged and polling continues.
        """

        script = Script(page([ev(10)], cursor=positions.ledgerEnd(10), latest=10), default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10)
        original = self.client.getEvents
        calls = []

        def getEvents(params):
            calls.append(params)
            if len(calls) == 1:
                return fail(ValueError("a bug"))
            return original(params)

        self.client.getEvents = getEvents
        self.start()
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.clock.advance(1)
        self.assertEqual(self.deliver.ids, [eventId(10)])

    def test_retryAfter(self):
        """
        A Retry-After header lengthens the backoff delay.
        """

        def limited(body):
            def reply(request):
                request.setResponseCode(429)
                request.setHeader(b"Retry-After", b"30")
                return b"Too Many Requests"

            return reply

        script = Script(limited, page([ev(10)], cursor=positions.ledgerEnd(10), latest=10), default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10)
        self.start()
        self.assertRetriesAfter([30.0])
        self.assertEqual(self.deliver.ids, [eventId(10)])

    def test_invalidParamsOnce(self):
        """
        -32602 is a configuration error: reported once, critically, and polling stops.
        """
        script = Script(("error", -32602, "filter 1 invalid: contract ID 1 invalid"))
        self.makeSource(script, start_ledger=10)
        self.start()
        self.clock.advance(3600)
        self.assertEqual(len(script.requests), 1)
        critical = self.texts("critical")
        self.assertEqual(len(critical), 1)
        self.assertIn("filter 1 invalid: contract ID 1 invalid", critical[0])
        self.assertFalse(self.source.polling)
        self.assertEqual(len(self.fatal), 1)
        self.fatal[0].trap(InvalidParams)
        self.assertIn("contract ID 1 invalid", self.source.fatal)

    def test_gapSkip(self):
        """
        A cursor older than retention: a GAP warning names the lost ledgers, and polling goes on
        from the oldest ledger.
        """
        script = Script(
            ("error", -32600, "startLedger must be within the ledger range: 500 - 900"),
            page([ev(500)], cursor=positions.ledgerEnd(900), latest=900, oldest=500),
            default=page([], cursor=positions.ledgerEnd(900), latest=900),
        )
        self.makeSource(script)
        self.start(checkpoint=positions.ledgerEnd(100))
        calls = script.calls()
        self.assertEqual(calls[0]["pagination"]["cursor"], positions.ledgerEnd(100))
        self.assertEqual(calls[1], {"startLedger": 500, "pagination": {"limit": 100}, "filters": []})
        gaps = [t for t in self.texts("warn") if "GAP" in t]
        self.assertEqual(len(gaps), 1)
        self.assertIn("ledgers 100-499", gaps[0])
        self.assertEqual(self.source.gaps, [(100, 499)])
        self.assertEqual(self.deliver.ids, [eventId(500)])
        self.assertTrue(self.source.polling)

    def test_gapSkipFromStartLedger(self):
        script = Script(
            ("error", -32600, "startLedger must be within the ledger range: 500 - 900"),
            default=page([], cursor=positions.ledgerEnd(900), latest=900),
        )
        self.makeSource(script, start_ledger=20)
        self.start()
        self.assertIn("ledgers 20-499", [t for t in self.texts("warn") if "GAP" in t][0])
        self.assertEqual(script.calls()[1]["startLedger"], 500)

    def test_gapStop(self):
        script = Script(("error", -32600, "startLedger must be within the ledger range: 500 - 900"))
        self.makeSource(script, start_ledger=20, on_gap="stop")
        self.start()
        self.clock.advance(3600)
        self.assertEqual(len(script.requests), 1)
        critical = self.texts("critical")
        self.assertTrue(any("GAP: ledgers 20-499" in t for t in critical))
        self.assertFalse(self.source.polling)
        self.assertEqual(len(self.fatal), 1)
        self.assertEqual(self.source.gaps, [(20, 499)])

    def test_rangeErrorWithinRange(self):
        """
        A range error for a ledger the server says it has (its window moved meanwhile) is
        neither a gap nor fatal: retry the same request after a backoff delay.
        """
        script = Script(
            ("error", -32600, "startLedger must be within the ledger range: 500 - 900"),
            page([ev(600)], cursor=positions.ledgerEnd(900), latest=900),
            default=page([], cursor=positions.ledgerEnd(900), latest=900),
        )
        self.makeSource(script, start_ledger=600)
        self.start()
        self.assertRetriesAfter([1.0])
        self.assertEqual([c["startLedger"] for c in script.calls()], [600, 600])
        self.assertEqual(self.source.gaps, [])
        self.assertEqual(self.deliver.ids, [eventId(600)])

    def test_aheadOfNode(self):
        """
        A start ledger beyond the node's latest: back off and ask again for the same ledger.
        """
        rangeError = ("error", -32600, "startLedger must be within the ledger range: 500 - 900")
        script = Script(rangeError, rangeError, page([ev(905)], cursor=positions.ledgerEnd(905), latest=905), default=page([], cursor=positions.ledgerEnd(905), latest=905))
        self.makeSource(script, start_ledger=905)
        self.start()
        self.assertRetriesAfter([1.0, 2.0])
        self.assertEqual([c["startLedger"] for c in script.calls()], [905, 905, 905])
        self.assertEqual(self.deliver.ids, [eventId(905)])
        self.assertEqual(len([t for t in self.texts("warn") if "ahead" in t]), 2)
        self.assertEqual([t for t in self.texts() if "GAP" in t], [])


class BackfillTests(SourceCase):
    def test_endLedgerStops(self):
        """
        Events after end_ledger are not delivered; the last batch's cursor is the end of
        end_ledger; then the source stops and says so.
        """
        script = Script(
            page([ev(10), ev(11)], cursor=eventId(11), latest=100),
            page([ev(12), ev(13)], cursor=eventId(13), latest=100),
        )
        self.makeSource(script, start_ledger=10, end_ledger=12, limit=2, poll_interval=0)
        self.start()
        self.drain()
        self.clock.advance(1000)
        self.assertEqual(self.deliver.ids, [eventId(10), eventId(11), eventId(12)])
        self.assertEqual(self.deliver.batches[-1].cursor, positions.ledgerEnd(12))
        self.assertTrue(self.source.complete)
        self.assertFalse(self.source.polling)
        self.assertEqual(self.completed, [True])
        self.assertEqual(len(script.calls()), 2)
        self.assertTrue(any("Backfill complete" in t and "12" in t for t in self.texts("info")))

    def test_endLedgerWithStringLedgers(self):
        """
        Old servers' string ledger numbers are compared as numbers.
        """
        events = [ev(9), ev(10), ev(100)]
        for e in events:
            e["ledger"] = str(e["ledger"])
        script = Script(page(events, cursor=positions.ledgerEnd(100), latest="100"))
        self.makeSource(script, start_ledger=9, end_ledger=10, poll_interval=0)
        self.start()
        self.assertEqual(self.deliver.ids, [eventId(9), eventId(10)])
        self.assertTrue(self.source.complete)

    def test_zeroIntervalWarning(self):
        script = Script(default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10, poll_interval=0.5)
        self.source.poll_interval = 0
        self.source.start(self.deliver, None)
        self.assertTrue(any("without pause" in t for t in self.texts("warn")))
        self.source.stop()

    def test_endLedgerReachedByCursor(self):
        """
        A partial page whose window ends exactly at end_ledger completes the backfill.
        """
        script = Script(page([ev(10)], cursor=positions.ledgerEnd(12), latest=12))
        self.makeSource(script, start_ledger=10, end_ledger=12, poll_interval=0)
        self.start()
        self.assertTrue(self.source.complete)
        self.assertEqual(self.deliver.batches[-1].cursor, positions.ledgerEnd(12))

    def test_endLedgerInTheFuture(self):
        """
        An end_ledger the chain has not reached yet: keep polling until it has.
        """
        script = Script(
            page([ev(10)], cursor=positions.ledgerEnd(10), latest=10),
            page([], cursor=positions.ledgerEnd(11), latest=11),
            page([ev(12), ev(13)], cursor=positions.ledgerEnd(13), latest=13),
        )
        self.makeSource(script, start_ledger=10, end_ledger=12, poll_interval=5)
        self.start()
        self.assertFalse(self.source.complete)
        self.clock.advance(5)
        self.assertFalse(self.source.complete)
        self.clock.advance(5)
        self.assertTrue(self.source.complete)
        self.assertEqual(self.deliver.ids, [eventId(10), eventId(12)])


class StopTests(SourceCase):
    def test_stopWhileRequestInFlight(self):
        """
        stop() cancels the request in flight and fires; nothing is delivered or sent later.
        """
        script = Script("hold", default=page([ev(10)], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10)
        self.start()
        d = self.source.stop()
        self.successResultOf(d)
        self.stub.flush()
        self.clock.advance(3600)
        self.assertEqual(len(script.requests), 1)
        self.assertEqual(self.deliver.batches, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.source.errors, 0)

    def test_stopWhileDeliveryPending(self):
        """
        stop() does not wait for the pipeline's readiness, and nothing follows it.
        """
        script = Script(page([ev(10)], cursor=eventId(10), latest=50), default=page([], cursor=positions.ledgerEnd(50), latest=50))
        self.deliver.hold = True
        self.makeSource(script, start_ledger=10)
        self.start()
        self.successResultOf(self.source.stop())
        self.deliver.waiting.callback(None)
        self.clock.advance(3600)
        self.assertEqual(len(script.calls()), 1)

    def test_stopWhileWaiting(self):
        script = Script(default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10)
        self.start()
        self.successResultOf(self.source.stop())
        self.clock.advance(3600)
        self.assertEqual(len(script.calls()), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SecretTests(SourceCase):
    def test_authorizationSentNeverLogged(self):
        """
        The Authorization header goes with every request and appears in no log event, whatever
        happens (errors, gaps, fatal errors, network checks).
        """
        script = Script(
            {"passphrase": TESTNET},
            ("status", 503),
            ("raw", b"echo " + SECRET.encode()),
            ("error", -32600, "startLedger must be within the ledger range: 50 - 90"),
            page([ev(50)], cursor=positions.ledgerEnd(90), latest=90),
            ("error", -32602, "bad " + SECRET),
        )
        self.makeSource(script, auth=SECRET, start_ledger=10, network="testnet", verifyNetwork=True)
        self.start()
        self.clock.advance(1)
        self.clock.advance(2)
        self.drain()
        self.clock.advance(5)
        self.assertFalse(self.source.polling)
        self.assertEqual(len(script.requests), 6)
        for _, _, headers in script.requests:
            self.assertEqual(headers.getRawHeaders(b"authorization"), [SECRET.encode()])
        self.assertGreater(len(self.logged), 5)
        token = SECRET.split()[1]
        for event in self.logged:
            self.assertNotIn(token, formatEvent(event))
            self.assertNotIn(token, repr(event))


class NetworkCheckTests(SourceCase):
    def test_mismatch(self):
        """
        A server on another network than configured stops the source with a critical error
        naming both (asset verification, hashes and checkpoints would all be wrong).
        """
        script = Script(
            {"passphrase": "Public Global Stellar Network ; September 2015"},
            default=page([], cursor=positions.ledgerEnd(10), latest=10),
        )
        self.makeSource(script, start_ledger=10, network="testnet", verifyNetwork=True)
        self.start()
        self.clock.advance(20)
        self.assertEqual([r[0] for r in script.requests], ["getNetwork"])
        [critical] = [t for t in self.texts("critical") if "NETWORK MISMATCH" in t]
        self.assertIn("configured for 'testnet' ('Test SDF Network ; September 2015')", critical)
        self.assertIn("serves 'Public Global Stellar Network ; September 2015'", critical)
        self.assertFalse(self.source.polling)
        self.assertEqual(len(self.fatal), 1)

    def test_match(self):
        script = Script({"passphrase": TESTNET}, default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10, network="testnet", verifyNetwork=True)
        self.start()
        self.assertEqual([t for t in self.texts() if "NETWORK" in t or "network of" in t], [])
        self.assertEqual(len(script.calls()), 1)

    def test_unsupported(self):
        script = Script(("error", -32601, 'no such method "getNetwork"'), default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.makeSource(script, start_ledger=10, network="testnet", verifyNetwork=True)
        self.start()
        self.assertTrue(any("Could not check the network" in t for t in self.texts("warn")))
        self.assertEqual(len(script.calls()), 1)


class FixtureTests(SourceCase):
    NAMES = fixtures.GETEVENTS_FIXTURES

    def test_recordedPages(self):
        """
        Every recorded page becomes one batch of its events, in id order, with a cursor.
        """
        for name in self.NAMES:
            with open(fixturePath("rpc", name + ".json"), encoding="utf-8") as f:
                document = json.load(f)
            result = document["result"] if "jsonrpc" in document else document
            self.deliver = Collector()
            script = Script(result, default=page([], cursor=None, latest=result["latestLedger"]))
            self.makeSource(script, start_ledger=1)
            self.start()
            self.assertEqual(len(self.deliver.batches), 1, name)
            batch = self.deliver.batches[0]
            ids = [e["id"] for e in result["events"]]
            self.assertEqual([e["id"] for e in batch.items], sorted(ids), name)
            expected = result.get("cursor") or (result["events"][-1].get("pagingToken") or ids[-1])
            self.assertEqual(batch.cursor, expected, name)
            self.assertEqual(batch.latestLedger, int(result["latestLedger"]), name)
            self.source.stop()


@implementer(ICheckpointStore)
class DictCheckpoints:
    def __init__(self):
        self.saved = {}

    def load(self, pipeline):
        return succeed(self.saved.get(pipeline))

    def save(self, pipeline, cursor):
        self.saved[pipeline] = cursor
        return succeed(None)


class TestServerTests(SourceCase):
    """
    Against the spec-faithful test server (stellarflow.testing.rpcserver), in memory.
    """

    def setUp(self):
        SourceCase.setUp(self)

    def server(self, **kw):
        kw.setdefault("seed", 3)
        kw.setdefault("events_per_ledger", 3.0)
        return StellarRPCResource(self.clock, **kw)

    def expectedIds(self, server, first, last):
        return [e.id for ledger in range(first, last + 1) for e in server.eventsInLedger(ledger)]

    def test_catchUpDeliversEverythingOnce(self):
        server = self.server(history=200)
        self.makeSource(server, start_ledger=1000, limit=50, poll_interval=5)
        self.start()
        self.drain()
        latest = server.ledgers.latest
        self.assertEqual(self.deliver.ids, self.expectedIds(server, 1000, latest))
        requests = len(self.serverRequests())
        self.assertGreater(requests, 5)
        self.assertEqual(self.source.lagLedgers, 0)
        self.clock.advance(4.9)
        self.assertEqual(len(self.serverRequests()), requests)
        self.clock.advance(0.1)
        self.assertEqual(len(self.serverRequests()), requests + 1)
        self.assertEqual(self.deliver.ids, self.expectedIds(server, 1000, server.ledgers.latest))
        self.assertEqual(server.maxInFlight, 1)
        params = self.serverRequests()
        self.assertIn("startLedger", params[0])
        for p in params[1:]:
            self.assertNotIn("startLedger", p)
            self.assertIn("cursor", p["pagination"])

    def test_followsNewLedgers(self):
        server = self.server(history=5)
        self.makeSource(server, poll_interval=5)
        self.start()
        for _ in range(20):
            self.clock.advance(5)
        start = self.serverRequests()[0]["startLedger"]
        self.assertEqual(server.requests[0].method, "getLatestLedger")
        self.assertEqual(self.deliver.ids, self.expectedIds(server, start, positions.ledgerOf(self.source.cursor)))
        self.assertGreaterEqual(positions.ledgerOf(self.source.cursor), server.ledgers.latest - 1)

    def test_faultsAndRecovery(self):
        server = self.server(history=30)
        self.makeSource(server, start_ledger=1000, limit=20, timeout=10)
        server.inject("http_status", status=503)
        server.inject("garbage")
        server.inject("rpc_error", code=-32098)
        server.inject("disconnect")
        server.inject("delay", seconds=40)
        self.start()
        for _ in range(200):
            self.clock.advance(1)
            self.stub.flush()
        self.drain()
        self.assertEqual(self.source.errors, 5)
        self.assertEqual(self.deliver.ids, self.expectedIds(server, 1000, positions.ledgerOf(self.source.cursor)))
        self.assertGreaterEqual(positions.ledgerOf(self.source.cursor), server.ledgers.latest - 1)
        self.assertEqual(server.maxInFlight, 1)
        kinds = [t for t in self.texts("warn") if "getEvents poll" in t]
        for kind in ("http-error", "bad-response", "queue-full", "connection", "timeout"):
            self.assertTrue(any(kind in t for t in kinds), kind)

    def test_gapAgainstServer(self):
        server = self.server(history=300, retention=100)
        self.makeSource(server, start_ledger=1000)
        self.start()
        self.drain()
        oldest = server.ledgers.oldest
        self.assertEqual(self.source.gaps, [(1000, oldest - 1)])
        self.assertEqual(self.deliver.ids, self.expectedIds(server, oldest, server.ledgers.latest))

    def test_aheadAgainstServer(self):
        server = self.server(history=10)
        target = server.ledgers.latest + 2
        self.makeSource(server, start_ledger=target)
        self.start()
        for _ in range(30):
            self.clock.advance(1)
        self.assertEqual(self.deliver.ids[:1], self.expectedIds(server, target, target)[:1])
        self.assertTrue(any("ahead" in t for t in self.texts("warn")))

    def test_backfill(self):
        server = self.server(history=100)
        self.makeSource(server, start_ledger=1010, end_ledger=1050, limit=17, poll_interval=0)
        self.start()
        self.drain()
        self.assertTrue(self.source.complete)
        self.assertEqual(self.completed, [True])
        self.assertEqual(self.deliver.ids, self.expectedIds(server, 1010, 1050))
        self.assertEqual(self.deliver.batches[-1].cursor, positions.ledgerEnd(1050))
        count = len(self.serverRequests())
        self.clock.advance(100)
        self.assertEqual(len(self.serverRequests()), count)

    def test_pipelineCheckpointAndRestart(self):
        """
        Through a real Pipeline: the checkpoint is the last batch's cursor, and a restart
        resumes from it without re-delivering anything.
        """
        server = self.server(history=40)
        self.makeSource(server, start_ledger=1000, limit=25)
        consumer = MemoryConsumer()
        checkpoints = DictCheckpoints()
        pipeline = Pipeline("p", self.source, [], [("m", consumer)], checkpoints, self.clock)
        pipeline.startService()
        self.drain()
        self.successResultOf(pipeline.stopService())
        first = [m["id"] for m in consumer.messages]
        self.assertEqual(first, self.expectedIds(server, 1000, server.ledgers.latest))
        self.assertEqual(checkpoints.saved["p"].cursor, self.source.cursor)
        first_cursor = self.source.cursor

        for _ in range(4):
            self.clock.advance(5)
        before = len(self.serverRequests())
        self.makeSource(server, start_ledger=1000, limit=25)
        consumer2 = MemoryConsumer()
        pipeline = Pipeline("p", self.source, [], [("m", consumer2)], checkpoints, self.clock)
        pipeline.startService()
        self.drain()
        self.assertEqual(self.serverRequests()[before], {"pagination": {"cursor": first_cursor, "limit": 25}, "filters": []})
        second = [m["id"] for m in consumer2.messages]
        self.assertEqual(first + second, self.expectedIds(server, 1000, server.ledgers.latest))
        self.successResultOf(pipeline.stopService())


class LoopbackTests(TestCase):
    """
    End to end over a real 127.0.0.1 port: fromConfig, persistent connections, a backfill.
    """

    timeout = 15

    @inlineCallbacks
    def test_backfillOverLoopback(self):
        server = StellarRPCResource(globalReactor, seed=5, events_per_ledger=2.0, history=60, ledger_close_time=5.0)
        port = yield serve(0, server, reactor=globalReactor)
        self.addCleanup(server.stopServing)
        latest = server.ledgers.latest
        config, problems = CONFIG_SCHEMA.validate(
            {
                "rpc_url": "http://127.0.0.1:{}/".format(port),
                "auth_header": SECRET,
                "start_ledger": latest - 50,
                "end_ledger": latest - 5,
                "poll_interval": 0,
                "pagination": {"limit": 7},
                "network": "testnet",
            }
        )
        self.assertEqual(list(problems), [])
        source = RPCSourceAdapter.fromConfig(config, ComponentContext(reactor=globalReactor, pipeline="e2e"))
        collector = Collector()
        yield source.start(collector, None)
        yield source.stop()
        expected = [e.id for ledger in range(latest - 50, latest - 4) for e in server.eventsInLedger(ledger)]
        self.assertEqual(collector.ids, expected)
        events = [r for r in server.requests if r.method == "getEvents"]
        self.assertGreater(len(events), 5)
        self.assertTrue(all(r.headers.get("authorization") == SECRET for r in server.requests))
        self.assertEqual(server.maxInFlight, 1)



PUBLIC = "Public Global Stellar Network ; September 2015"


class CheckpointOriginTests(SourceCase):
    """
    A checkpoint taken on another network, or one the RPC never reaches, is not followed
    blindly (C{on_checkpoint_mismatch}).
    """

    def startFrom(self, checkpoint, script, **kw):
        kw.setdefault("start_ledger", 10)
        self.makeSource(script, **kw)
        ended = self.source.start(self.deliver, checkpoint)
        ended.addCallbacks(lambda _: self.completed.append(True), self.fatal.append)
        self.clock.advance(0)

    def test_otherNetworkStops(self):
        script = Script({"passphrase": TESTNET}, default=page([], cursor=positions.ledgerEnd(10), latest=10))
        self.startFrom(Checkpoint(eventId(1952), network=PUBLIC), script, network="testnet", verifyNetwork=True)
        self.clock.advance(10)
        self.assertEqual([r[0] for r in script.requests], ["getNetwork"])
        self.assertFalse(self.source.polling)
        [critical] = [t for t in self.texts("critical") if "CHECKPOINT MISMATCH" in t]
        self.assertIn("was taken on network {!r}, but the RPC serves {!r}".format(PUBLIC, TESTNET), critical)
        self.assertIn("--reset-checkpoint", critical)
        self.assertIn("on_checkpoint_mismatch: restart_from_latest", critical)
        self.assertEqual(len(self.fatal), 1)

    def test_sameNetworkFollowed(self):
        script = Script({"passphrase": TESTNET}, default=page([ev(11)], cursor=positions.ledgerEnd(11), latest=11))
        self.startFrom(Checkpoint(positions.ledgerEnd(10), network=TESTNET), script, network="testnet", verifyNetwork=True)
        self.clock.advance(1)
        self.assertEqual(self.deliver.ids, [eventId(11)])
        self.assertEqual(script.requests[1][1]["pagination"]["cursor"], positions.ledgerEnd(10))
        self.assertEqual(self.fatal, [])

    def test_otherNetworkRestartsFromLatest(self):
        """
        With restart_from_latest the checkpoint is forgotten and the RPC followed from its
        latest ledger (ids lower than the old checkpoint's are delivered).
        """
        script = Script(
            {"passphrase": TESTNET},
            {"sequence": 1723},
            page([ev(1723)], cursor=positions.ledgerEnd(1723), latest=1723),
            default=page([], cursor=positions.ledgerEnd(1723), latest=1723),
        )
        self.startFrom(
            Checkpoint(eventId(1952), network=PUBLIC), script, network="testnet", verifyNetwork=True,
            on_checkpoint_mismatch="restart_from_latest",
        )
        self.clock.advance(1)
        self.assertEqual([r[0] for r in script.requests[:3]], ["getNetwork", "getLatestLedger", "getEvents"])
        self.assertEqual(script.requests[2][1]["startLedger"], 1723)
        self.assertEqual(self.deliver.ids, [eventId(1723)])
        self.assertTrue(self.source.polling)
        self.assertTrue(any("restart_from_latest" in t for t in self.texts("critical")))

    def aheadScript(self, latest):
        error = ("error", -32600, "startLedger must be within the ledger range: 1 - {}".format(latest))
        return Script(default=error)

    def test_aheadOfTheRPCForTooLong(self):
        """
        A checkpoint at ledger 1952 when the RPC is at 1723 (a reset network): retried for
        checkpoint_ahead_timeout, then a mismatch; not before.
        """
        self.startFrom(Checkpoint(eventId(1952)), self.aheadScript(1723), checkpoint_ahead_timeout=60)
        for _ in range(59):
            self.clock.advance(1)
        self.assertTrue(self.source.polling)
        self.assertEqual(self.fatal, [])
        for _ in range(10):
            self.clock.advance(1)
        self.assertFalse(self.source.polling)
        [critical] = [t for t in self.texts("critical") if "CHECKPOINT MISMATCH" in t]
        self.assertIn("is at ledger 1952, but the RPC's latest ledger is 1723", critical)

    def test_aheadWithinTheMargin(self):
        """
        A node a few ledgers behind (within checkpoint_ahead_margin) is waited for, forever.
        """
        self.startFrom(Checkpoint(eventId(1952)), self.aheadScript(1945), checkpoint_ahead_margin=10)
        for _ in range(600):
            self.clock.advance(1)
        self.assertTrue(self.source.polling)
        self.assertEqual(self.fatal, [])

    def test_startLedgerOutsideRetention(self):
        """
        The start-up log says plainly that start_ledger is older than the RPC keeps.
        """
        script = Script(
            ("error", -32600, "startLedger must be within the ledger range: 61000000 - 61120960"),
            default=page([], cursor=positions.ledgerEnd(61000000), latest=61120960),
        )
        self.makeSource(script, start_ledger=2000000)
        self.start()
        [line] = [t for t in self.texts("warn") if "outside the retention" in t]
        self.assertIn("start_ledger 2000000 is outside the retention of", line)
        self.assertIn("ledgers 2000000-60999999 cannot be read; on_gap is 'skip': starting at ledger 61000000", line)


class HealthStatsTests(SourceCase):
    def test_secondsSinceSuccess(self):
        script = Script(page([], cursor=positions.ledgerEnd(10), latest=10), default=("status", 503))
        self.makeSource(script, start_ledger=10, poll_interval=5)
        self.start()
        self.clock.advance(42)
        stats = self.source.stats()
        self.assertEqual(stats["seconds_since_success"], 42)
        self.assertEqual(stats["health_timeout_seconds"], 30.0)
        self.assertEqual(stats["last_error"], "HTTP 503 (empty body)")

    def test_healthTimeoutDefault(self):
        self.makeSource(Script(), poll_interval=20)
        self.assertEqual(self.source.stats()["health_timeout_seconds"], 60.0)
        self.makeSource(Script(), poll_interval=20, health_timeout=12)
        self.assertEqual(self.source.stats()["health_timeout_seconds"], 12)
