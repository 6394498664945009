"""
Nothing stalls, nothing misleads (issue 17), end to end: the daemon built from YAML like twistd
builds it, the Stellar RPC test server over HTTP, real PostgreSQL (through a proxy that can
refuse and cut), a real WebSocket client, the admin endpoint over HTTP.  Every wait is bounded.
"""

import json
import os
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from stellarflow import positions
from stellarflow.checkpoint import Checkpoint, FileCheckpointStore
from stellarflow.config import parse
from stellarflow.daemon import Daemon
from stellarflow.postgres.testing import FlakyProxy, TemporarySchema, sleep
from stellarflow.testing.rpcserver import StellarRPCResource, serve
from tests.helpers import REPO, httpClient
from tests.test_websocket_e2e import cancelAutobahnTimers, registeredClient, until

FIRST = 5000
PUBLIC = "Public Global Stellar Network ; September 2015"


class IndependentProgressTests(TestCase):
    """
    The guide's complete example (WebSocket + PostgreSQL), with the database missing at start
    and cut mid-stream: WebSocket clients receive every event throughout; PostgreSQL ends with
    every event exactly once.
    """

    timeout = 120

    @inlineCallbacks
    def setUp(self):
        self.db = TemporarySchema(self)
        self.proxy = FlakyProxy(reactor)
        self.addCleanup(self.proxy.stop)
        self.server = StellarRPCResource(
            reactor, seed=17, events_per_ledger=4, ledger_close_time=0.2, first_ledger=FIRST, history=2000
        )
        self.rpcPort = yield serve(0, self.server, reactor=reactor)
        self.addCleanup(self.server.stopServing)

    @inlineCallbacks
    def startDaemon(self, extra=""):
        text = (
            "state_dir: {state}\n"
            "admin: {{host: 127.0.0.1, port: 0}}\n"
            "pipelines:\n"
            "  guide:\n"
            "    max_in_flight: 4\n"
            "    source:\n"
            "      type: RPCSourceAdapter\n"
            "      config:\n"
            "        rpc_url: http://127.0.0.1:{rpc}\n"
            "        network: testnet\n"
            "        start_ledger: {start}\n"
            "        poll_interval: 0.2\n"
            "        pagination: {{limit: 50}}\n"
            "        filters: [{{type: contract, topics: [['**']]}}]\n"
            "{extra}"
            "    consumers:\n"
            "      - {{type: SaveToWebSocket, config: {{host: 127.0.0.1, port: 0}}}}\n"
            "      - {{type: SaveToPostgreSQL, config: {{dsn: '{dsn}', schema: {schema}, connect_timeout: 2}}}}\n"
        ).format(
            state=self.mktemp(), rpc=self.rpcPort, start=FIRST + 10, dsn=self.proxy.dsn(), schema=self.db.name,
            extra=extra,
        )
        self.daemon = Daemon(parse(text, "guide.yaml", {}), reactor)
        self.daemon.startService()
        self.addCleanup(cancelAutobahnTimers)
        self.addCleanup(self.daemon.stopService)
        self.pipeline = self.daemon.pipelines[0]
        self.ws = self.pipeline.consumers[0][1]
        self.pg = self.pipeline.consumers[1][1]
        self.member = self.pipeline.members[1]
        yield until(lambda: self.ws.listeningPort is not None)
        port = self.ws.listeningPort.getHost().port
        self.client = yield registeredClient(self, port, {"types": [], "account_ids": [], "asset_codes": [], "min_amount": ""})
        self.assertIn("registered", self.client.types())

    def expected(self, upTo):
        """
        Every event id the server holds from the start ledger up to position C{upTo}.
        """
        ids = []
        for ledger in range(FIRST + 10, positions.ledgerOf(upTo) + 1):
            ids.extend(e.id for e in self.server.eventsInLedger(ledger) if e.id <= upTo and e.type == "contract")
        return ids

    def stored(self):
        return [r[0] for r in self.db.query("SELECT id FROM {schema}.stellar_events ORDER BY id")]

    @inlineCallbacks
    def test_databaseMissingThenCutMidStream(self):
        yield self.proxy.refuse()
        yield self.startDaemon()
        # The live stream does not wait for the database.
        yield until(lambda: len(self.client.events()) >= 40, timeout=20)
        self.assertNotEqual(self.member.state, "attached")
        self.assertEqual(self.db.query("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (self.db.name,)), [(0,)])
        # The database appears: it catches up from the start and rejoins the live flow.
        self.proxy.accept()
        yield until(lambda: self.member.state == "attached" and self.member.position is not None, timeout=30)
        # Cut mid-stream: the stream goes on; the consumer is detached, then catches up again.
        yield self.proxy.refuse()
        during = len(self.client.events())
        yield until(lambda: self.member.detaches >= 1, timeout=30)
        yield until(lambda: len(self.client.events()) >= during + 40, timeout=30)
        self.proxy.accept()
        yield until(lambda: self.member.state == "attached" and self.member.caughtUp >= 2, timeout=30)
        # back in the live flow: it keeps up with it
        target = self.pipeline.lastCursor
        yield until(lambda: self.pipeline.lastCursor > target, timeout=30)
        target = self.pipeline.lastCursor
        yield until(lambda: self.member.position >= target, timeout=30)
        position = self.member.position
        yield self.daemon.stopService()
        stored = self.stored()
        self.assertEqual(len(stored), len(set(stored)))
        self.assertEqual(stored[: len(self.expected(position))], self.expected(position))
        received = self.client.events()
        self.assertEqual(received, sorted(set(received)))
        self.assertEqual(received, self.expected(received[-1]))


class HealthE2ETests(TestCase):
    """
    The RPC refusing connections: /healthz answers 503 within the source's health timeout and
    200 again once it is back, with no gap.
    """

    timeout = 90

    @inlineCallbacks
    def test_rpcGone(self):
        server = StellarRPCResource(reactor, seed=5, events_per_ledger=3, ledger_close_time=0.2, first_ledger=7000, history=500)
        rpcPort = yield serve(0, server, reactor=reactor)
        self.addCleanup(server.stopServing)
        text = (
            "state_dir: {state}\n"
            "admin: {{host: 127.0.0.1, port: 0, max_lag_ledgers: 1000}}\n"
            "source: {{type: RPCSourceAdapter, config: {{rpc_url: 'http://127.0.0.1:{rpc}', network: testnet, "
            "start_ledger: 7010, poll_interval: 0.2, health_timeout: 2}}}}\n"
            "consumers: [{{type: MemoryConsumer}}]\n"
        ).format(state=self.mktemp(), rpc=rpcPort)
        daemon = Daemon(parse(text, "h.yaml", {}), reactor)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        pipeline = daemon.pipelines[0]
        admin = [s for s in daemon if s not in daemon.pipelines][0]
        yield until(lambda: admin.listening is not None and pipeline.delivered > 0, timeout=20)
        url = "http://127.0.0.1:{}/healthz".format(admin.listening.getHost().port)
        treq = httpClient(self)

        def health():
            return treq.get(url).addCallback(lambda r: r.json().addCallback(lambda body: (r.code, body)))

        code, body = yield health()
        self.assertEqual(code, 200, body)
        server.refuseConnections()
        refusedAt = reactor.seconds()
        while True:
            code, body = yield health()
            if code == 503:
                break
            self.assertLess(reactor.seconds() - refusedAt, 10, body)
            yield sleep(reactor, 0.2)
        self.assertLessEqual(reactor.seconds() - refusedAt, 2 + 5 + 1)  # health timeout + one capped retry
        [reason] = body["pipelines"]["default"]["reasons"]
        self.assertIn("no successful answer from the RPC for", reason)
        self.assertIn("(limit 2s)", reason)
        server.acceptConnections()
        backAt = reactor.seconds()
        yield until(lambda: pipeline.source.secondsSinceSuccess is not None and pipeline.source.secondsSinceSuccess < 1, timeout=15)
        self.assertLessEqual(reactor.seconds() - backAt, 5 + 1)  # within the retry cap
        code, body = yield health()
        self.assertEqual(code, 200, body)
        # no gap: every event from the start ledger up to the checkpoint, once, in order
        consumer = pipeline.consumers[0][1]
        ids = [m["id"] for m in consumer.messages]
        last = ids[-1]
        expected = [e.id for ledger in range(7010, positions.ledgerOf(last) + 1) for e in server.eventsInLedger(ledger) if e.id <= last]
        self.assertEqual(ids, expected)


class CheckpointFromAnotherNetworkTests(TestCase):
    """
    A checkpoint written on another network: the stellarflow command exits 1 with a message
    naming both networks and the way out.
    """

    timeout = 60

    @inlineCallbacks
    def test_exitStatusAndMessage(self):
        server = StellarRPCResource(reactor, seed=5, events_per_ledger=3, first_ledger=7000, history=500)
        rpcPort = yield serve(0, server, reactor=reactor)
        self.addCleanup(server.stopServing)
        work = os.path.abspath(self.mktemp())
        state = os.path.join(work, "state")
        FileCheckpointStore(state)._save("default", Checkpoint(positions.eventId(7100, 1, 0, 0), network=PUBLIC))
        config = os.path.join(work, "pipe.yaml")
        with open(config, "w") as f:
            f.write(
                "state_dir: {}\nsource: {{type: RPCSourceAdapter, config: {{rpc_url: 'http://127.0.0.1:{}', "
                "network: testnet}}}}\nconsumers: [{{type: MemoryConsumer}}]\n".format(state, rpcPort)
            )
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        from twisted.internet.utils import getProcessOutputAndValue

        out, err, code = yield getProcessOutputAndValue(
            sys.executable, ["-c", "from stellarflow.run import main; main()", "-c", config], env=env, path=work
        )
        text = (out + err).decode("utf-8", "replace")
        self.assertEqual(code, 1, text)
        self.assertIn("CHECKPOINT MISMATCH", text)
        self.assertIn("was taken on network {!r}".format(PUBLIC), text)
        self.assertIn("Test SDF Network ; September 2015", text)
        self.assertIn("--reset-checkpoint default", text)
        self.assertNotIn("Traceback", text)
        with open(os.path.join(state, "default.checkpoint.json")) as f:
            self.assertEqual(json.load(f)["network"], PUBLIC)  # nothing was overwritten
        # The way out works: reset, then the daemon starts (checked with --check only).
        reset = subprocess.run(
            [sys.executable, "-c", "from stellarflow.run import main; main()", "-c", config, "--reset-checkpoint", "default"],
            env=env, cwd=work, capture_output=True, timeout=30,
        )
        self.assertEqual(reset.returncode, 0, reset.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "default.checkpoint.json")))
