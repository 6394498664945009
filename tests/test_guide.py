"""
The guide's own YAML, unchanged, against the real components: it validates, and its complete
pipeline example runs end to end against the bundled Stellar RPC test server, a real WebSocket
client and the real PostgreSQL.
"""

import uuid

from stellar_sdk import Network
from twisted.internet import defer, reactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow.config import parse
from stellarflow.daemon import Daemon
from stellarflow.postgres.testing import connect
from stellarflow.testing.rpcserver import StellarRPCResource, serve
from tests.helpers import guidePath
from tests.test_websocket_e2e import cancelAutobahnTimers, registeredClient, until

USDC_SAC = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
USDC_ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"


def guideBlocks():
    with open(guidePath()) as f:
        text = f.read()
    blocks = [b.split("```")[0] for b in text.split("```yaml\n")[1:]]
    complete = [b for b in blocks if b.startswith("pipelines:")]
    basic = [b for b in blocks if b.startswith("consumers:")]
    assert len(complete) == 1 and len(basic) == 1, "the guide's YAML blocks changed"
    return basic[0], complete[0]


class GuideConfigTests(SynchronousTestCase):
    def test_basicConfiguration(self):
        basic, _ = guideBlocks()
        [p] = parse(basic, "guide.yaml", {}).pipelines
        self.assertEqual(p.name, "default")
        self.assertEqual(p.source.type, "RPCSourceAdapter")
        [ws] = p.consumers
        self.assertEqual((ws.config["port"], ws.config["path"], ws.config["max_queue_size"]), (8080, "/ws", 1000))

    def test_completePipelineExample(self):
        _, complete = guideBlocks()
        [p] = parse(complete, "guide.yaml", {}).pipelines
        self.assertEqual(p.name, "ContractEventsWebSocket")
        source = p.source.config
        self.assertEqual(source["rpc_url"], "https://rpc-mainnet.stellar.org")
        self.assertEqual(source["network"], "mainnet")
        self.assertEqual((source["start_ledger"], source["poll_interval"]), (2000000, 5))
        self.assertEqual(source["filters"][0]["contractIds"], [USDC_SAC])
        self.assertEqual(source["filters"][0]["topics"], [["*"]])
        self.assertEqual((source["pagination"]["limit"], source["xdrFormat"]), (1000, "json"))
        self.assertEqual([x.type for x in p.processors], ["GetEventsRPC"])
        ws, pg = p.consumers
        self.assertEqual((ws.config["port"], ws.config["max_queue_size"]), (8080, 5000))
        self.assertEqual(pg.config["database"], "stellar_events")
        self.assertEqual(pg.redacted()["password"], "<hidden>")


class GuidePipelineTests(TestCase):
    """
    The complete example with only its endpoints changed: the RPC URL (the test server on
    127.0.0.1), the WebSocket port (a free one) and the database name (a throw-away one).
    """

    timeout = 60

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        # a throw-away database, as the example's password-authenticated one
        self.db = "sf_guide_" + uuid.uuid4().hex[:10]
        admin = connect()
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE " + self.db)
        admin.close()
        self.addCleanup(self.dropDatabase)

    def dropDatabase(self):
        admin = connect()
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)".format(self.db))
        admin.close()

    @defer.inlineCallbacks
    def runGuide(self, topics=None):
        """
        Serve pubnet-like traffic from ledger 1999990 on, run the example on it, and register
        a guide-style client for USDC.
        """
        self.server = StellarRPCResource(
            reactor,
            seed=11,
            events_per_ledger=6,
            ledger_close_time=0.25,
            first_ledger=1999000,
            history=1100,
            network_passphrase=Network.PUBLIC_NETWORK_PASSPHRASE,
        )
        rpcPort = yield serve(0, self.server, reactor=reactor)
        self.addCleanup(self.server.stopServing)
        _, text = guideBlocks()
        text = text.replace("https://rpc-mainnet.stellar.org", "http://127.0.0.1:{}".format(rpcPort))
        text = text.replace('port: "8080"', 'port: "0"\n          host: "127.0.0.1"')
        text = text.replace('database: "stellar_events"', 'database: "{}"'.format(self.db))
        text = text.replace("poll_interval: 5", "poll_interval: 0.25")
        if topics is not None:
            text = text.replace('- ["*"]', "- " + topics)
        text = "state_dir: {}\n".format(self.mktemp()) + text
        config = parse(text, "guide.yaml", {})
        self.daemon = Daemon(config, reactor)
        self.daemon.startService()
        self.addCleanup(cancelAutobahnTimers)
        self.addCleanup(self.daemon.stopService)
        pipeline = self.daemon.pipelines[0]
        ws = pipeline.consumers[0][1]
        yield until(lambda: ws.listeningPort is not None)
        port = ws.listeningPort.getHost().port
        # the guide's registration: contract events of USDC
        self.client = yield registeredClient(self, port, {"types": ["contract_event"], "account_ids": [], "asset_codes": ["USDC"], "min_amount": ""})
        self.assertIn("registered", self.client.types())
        return pipeline

    def expected(self, upTo):
        """
        The ids the server holds for the USDC contract from ledger 2000000 through C{upTo},
        whatever their topics (the caller filters by topic count).
        """
        out = []
        for ledger in range(2000000, upTo + 1):
            out.extend(e for e in self.server.eventsInLedger(ledger) if e.contract_id == USDC_SAC)
        return out

    def storedIds(self):
        conn = connect("host=127.0.0.1 port=5432 user=postgres dbname=" + self.db)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM stellar_events ORDER BY id")
                return [r[0] for r in cur.fetchall()]
        finally:
            conn.close()

    @defer.inlineCallbacks
    def test_asWritten(self):
        """
        Unchanged, the example asks the RPC for USDC events whose topics match ``["*"]``: on a
        real RPC that is exactly one topic, which no SAC event has, so nothing is delivered -
        and the daemon says why at start.
        """
        pipeline = yield self.runGuide()
        yield until(lambda: pipeline.committed is not None and pipeline.source.cursor is not None, timeout=20)
        sent = [r.params for r in self.server.requests if r.method == "getEvents"]
        self.assertEqual(sent[0]["startLedger"], 2000000)
        self.assertEqual(sent[0]["filters"], [{"type": "contract", "contractIds": [USDC_SAC], "topics": [["*"]]}])
        self.assertEqual(sent[0]["xdrFormat"], "json")
        self.assertEqual(sent[0]["pagination"], {"limit": 1000})
        self.assertTrue(self.expected(2000010), "the test server emits USDC events")
        self.assertEqual(self.client.events(), [])
        warnings = [formatEvent(e) for e in self.events if "exactly" in formatEvent(e)]
        self.assertTrue(any('["*"]' in w and "exactly 1 topic" in w for w in warnings), warnings)

    @defer.inlineCallbacks
    def test_withTrailingWildcardDeliversEverything(self):
        """
        With ``["**"]`` the example streams every USDC event to the WebSocket client and stores
        every one in PostgreSQL, exactly once, in order.
        """
        pipeline = yield self.runGuide(topics='["**"]')
        yield until(lambda: len(self.client.events()) >= 30, timeout=30)
        # PostgreSQL keeps its own position: wait until it has rejoined the live flow.
        yield until(lambda: pipeline.memberStats("SaveToPostgreSQL[1]")["attached"], timeout=30)
        yield self.daemon.stopService()
        last = min(pipeline.committed, pipeline.members[1].position)
        upTo = int(last.split("-")[0]) >> 32
        expected = [e.id for e in self.expected(upTo) if e.id <= last]
        stored = self.storedIds()
        self.assertEqual(stored[: len(expected)], expected)
        received = [m for m in self.client.received if m["type"] == "contract_event"]
        ids = [m["id"] for m in received]
        self.assertEqual(ids, sorted(set(ids)))
        usdc = [e.id for e in self.expected(upTo + 5)]
        self.assertEqual(ids, [i for i in usdc if i in set(ids)])
        self.assertTrue(set(ids) <= set(stored) | set(usdc))
        for m in received:
            self.assertEqual(m["contract_id"], USDC_SAC)
            self.assertEqual((m["asset_code"], m["asset_issuer"], m["asset_verified"]), ("USDC", USDC_ISSUER, True))
        # every USDC token event the server produced up to the checkpoint reached the client
        self.assertEqual([i for i in ids if i <= last], expected)

    @defer.inlineCallbacks
    def test_databaseCreatedLater(self):
        """
        The complete example with its database missing: WebSocket clients receive events at
        once; the database is created later and catches up with every event exactly once.
        """
        self.dropDatabase()
        pipeline = yield self.runGuide(topics='["**"]')
        yield until(lambda: len(self.client.events()) >= 30, timeout=30)
        self.assertNotEqual(pipeline.members[1].state, "attached")
        admin = connect()
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE " + self.db)
        admin.close()
        member = pipeline.members[1]
        yield until(lambda: member.state == "attached", timeout=40)
        target = pipeline.lastCursor
        yield until(lambda: member.position is not None and member.position >= target, timeout=30)
        yield self.daemon.stopService()
        last = member.position
        upTo = int(last.split("-")[0]) >> 32
        expected = [e.id for e in self.expected(upTo) if e.id <= last]
        stored = self.storedIds()
        self.assertEqual(stored, sorted(set(stored)))
        self.assertEqual(stored[: len(expected)], expected)
        self.assertGreater(len(expected), 30)

