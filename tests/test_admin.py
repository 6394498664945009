"""
The admin endpoint, scraped over real HTTP on 127.0.0.1.
"""

import json

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from stellarflow.admin import health
from stellarflow.config import parse
from stellarflow.daemon import Daemon
from stellarflow.interfaces import IStatsProvider
from stellarflow.schema import ConfigError
from tests.helpers import httpClient

CONFIG = """
state_dir: {state}
admin: {{host: 127.0.0.1, port: 0, max_lag_ledgers: 5}}
pipelines:
  one:
    source: {{type: MemorySource}}
    processors: []
    consumers: [{{type: MemoryConsumer}}, {{type: MemoryConsumer}}]
"""


class AdminConfigTests(SynchronousTestCase):
    def test_offByDefault(self):
        config = parse("source: {type: MemorySource}\nprocessors: []\nconsumers: [{type: MemoryConsumer}]", "f", {})
        self.assertIsNone(config.admin)

    def test_defaults(self):
        text = "admin: {}\nsource: {type: MemorySource}\nprocessors: []\nconsumers: [{type: MemoryConsumer}]"
        self.assertEqual(parse(text, "f", {}).admin, {"host": "127.0.0.1", "port": 9090, "max_lag_ledgers": 10, "max_consumer_lag_ledgers": 10})

    def test_badPort(self):
        text = "admin: {port: web}\nsource: {type: MemorySource}\nprocessors: []\nconsumers: [{type: MemoryConsumer}]"
        with self.assertRaises(ConfigError) as e:
            parse(text, "f", {})
        self.assertIn("f: admin.port: got 'web'; expected an integer from 0 to 65535", str(e.exception))


@implementer(IStatsProvider)
class FakeSource:
    network = None

    def __init__(self, stats):
        self._stats = stats

    def stats(self):
        return self._stats


class HealthTests(SynchronousTestCase):
    def daemon(self, **stats):
        config = parse(CONFIG.format(state=self.mktemp()), "f", {})
        daemon = Daemon(config, reactor)
        daemon.pipelines[0].running = True
        daemon.pipelines[0].source = FakeSource(stats)
        return daemon

    def test_healthy(self):
        ok, body = health(self.daemon(polling=True, lag_ledgers=5, latest_ledger=100), 5)
        self.assertTrue(ok)
        self.assertEqual(body["pipelines"]["one"]["reasons"], [])

    def test_lagging(self):
        ok, body = health(self.daemon(polling=True, lag_ledgers=6, latest_ledger=100), 5)
        self.assertFalse(ok)
        self.assertEqual(body["status"], "unhealthy")
        self.assertEqual(body["pipelines"]["one"]["reasons"], ["6 ledgers behind the RPC's latest ledger (limit 5)"])

    def test_notPolling(self):
        ok, body = health(self.daemon(polling=False), 5)
        self.assertFalse(ok)
        self.assertEqual(body["pipelines"]["one"]["reasons"], ["source is not polling"])

    def test_stopped(self):
        d = self.daemon(polling=True)
        d.pipelines[0].running = False
        ok, body = health(d, 5)
        self.assertIn("pipeline is not running", body["pipelines"]["one"]["reasons"])

    def test_rpcSilent(self):
        """
        No successful answer for longer than the source's health timeout: 503, with the last
        error; at the limit exactly it is still healthy.
        """
        ok, body = health(self.daemon(polling=True, seconds_since_success=30.0, health_timeout_seconds=30), 5)
        self.assertTrue(ok, body)
        ok, body = health(
            self.daemon(polling=True, seconds_since_success=30.5, health_timeout_seconds=30, last_error="connection refused"), 5
        )
        self.assertFalse(ok)
        self.assertEqual(
            body["pipelines"]["one"]["reasons"], ["no successful answer from the RPC for 30s (limit 30s): connection refused"]
        )
        self.assertEqual(body["pipelines"]["one"]["seconds_since_success"], 30.5)

    def test_checkpointCannotBeWritten(self):
        d = self.daemon(polling=True)
        d.pipelines[0].checkpointFailure = "[Errno 28] No space left on device"
        ok, body = health(d, 5)
        self.assertEqual(
            body["pipelines"]["one"]["reasons"], ["cannot write its checkpoint: [Errno 28] No space left on device"]
        )

    def consumerStates(self, **view):
        d = self.daemon(polling=True)
        d.pipelines[0].memberStats = lambda name: view if name == "MemoryConsumer[1]" else {}
        return health(d, 5, maxConsumerLag=3)

    def test_durableConsumerStates(self):
        ok, body = self.consumerStates(attached=True, catching_up=False, lag_ledgers=3, position_ledger=97)
        self.assertTrue(ok)
        self.assertEqual(body["pipelines"]["one"]["consumers"]["MemoryConsumer[1]"],
                         {"attached": True, "lag_ledgers": 3, "position_ledger": 97})
        for view, reason in (
            (dict(attached=True, catching_up=False, lag_ledgers=4), "consumer MemoryConsumer[1] is 4 ledgers behind the live flow (limit 3)"),
            (dict(attached=False, catching_up=True, position_ledger=90), "consumer MemoryConsumer[1] is detached from the live flow, catching up from ledger 90"),
            (dict(attached=False, catching_up=False), "consumer MemoryConsumer[1] is waiting for its store to answer"),
            (dict(connections_full=True), "consumer MemoryConsumer[1] has every connection slot taken"),
        ):
            ok, body = self.consumerStates(**view)
            self.assertFalse(ok, view)
            self.assertEqual(body["pipelines"]["one"]["reasons"], [reason])


class ScrapeTests(TestCase):
    timeout = 20

    @inlineCallbacks
    def test_scrape(self):
        config = parse(CONFIG.format(state=self.mktemp()), "f", {})
        daemon = Daemon(config, reactor)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        admin = [s for s in daemon if s not in daemon.pipelines][0]
        port = admin.listening.getHost().port
        source = daemon.pipelines[0].source
        yield source.emit([{"id": "a"}, {"id": "b"}], cursor="b")
        base = "http://127.0.0.1:{}".format(port)
        treq = httpClient(self)

        response = yield treq.get(base + "/metrics")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders("content-type")[0].startswith("text/plain"))
        text = yield response.text()
        self.assertIn('stellarflow_pipeline_messages_total{pipeline="one"} 2.0', text)
        self.assertIn('stellarflow_consumer_messages_total{consumer="MemoryConsumer[1]",pipeline="one"} 2.0', text)
        self.assertIn('stellarflow_source_polling{pipeline="one"} 1.0', text)
        self.assertIn("# TYPE stellarflow_pipeline_messages_total counter", text)
        self.assertIn("# TYPE stellarflow_pipeline_unacknowledged_batches gauge", text)

        response = yield treq.get(base + "/healthz")
        self.assertEqual(response.code, 200)
        body = json.loads((yield response.text()))
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["pipelines"]["one"]["checkpoint"], "b")

        yield source.stop()
        response = yield treq.get(base + "/healthz")
        self.assertEqual(response.code, 503)
        body = json.loads((yield response.text()))
        self.assertEqual(body["pipelines"]["one"]["reasons"], ["source is not polling"])


class QuietTests(TestCase):
    timeout = 20

    @inlineCallbacks
    def test_noAccessLog(self):
        """
        Monitors ask /healthz every few seconds: no log line per request.
        """
        from twisted.logger import formatEvent, globalLogPublisher

        config = parse(CONFIG.format(state=self.mktemp()), "f", {})
        daemon = Daemon(config, reactor)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        admin = [s for s in daemon if s not in daemon.pipelines][0]
        seen = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)
        treq = httpClient(self)
        for _ in range(3):
            response = yield treq.get("http://127.0.0.1:{}/healthz".format(admin.listening.getHost().port))
            yield response.text()
        lines = [formatEvent(e) for e in seen if "/healthz" in formatEvent(e)]
        self.assertEqual(lines, [])


class DocumentedMetricsTests(TestCase):
    """
    Every metric docs/operations.md lists is served, scraped over HTTP from a daemon with the
    real WebSocket and PostgreSQL consumers and the RPC source.
    """

    timeout = 30

    @inlineCallbacks
    def test_documentedMetricsServed(self):
        import os
        import re

        from stellarflow.postgres.testing import TemporarySchema, testDSN
        from stellarflow.testing.rpcserver import StellarRPCResource, serve
        from tests.helpers import REPO
        from tests.test_websocket_e2e import cancelAutobahnTimers, until

        schema = TemporarySchema(self)
        server = StellarRPCResource(reactor, seed=5, events_per_ledger=3, first_ledger=7000, history=50)
        rpcPort = yield serve(0, server, reactor=reactor)
        self.addCleanup(server.stopServing)
        text = (
            "state_dir: {state}\n"
            "admin: {{port: 0}}\n"
            "source: {{type: RPCSourceAdapter, config: {{rpc_url: 'http://127.0.0.1:{rpc}', network: testnet, start_ledger: 7000, poll_interval: 0.2}}}}\n"
            "consumers:\n"
            "  - {{type: SaveToWebSocket, config: {{host: 127.0.0.1, port: 0}}}}\n"
            "  - {{type: SaveToPostgreSQL, config: {{dsn: '{dsn}', schema: {schema}}}}}\n"
        ).format(state=self.mktemp(), rpc=rpcPort, dsn=testDSN(), schema=schema.name)
        daemon = Daemon(parse(text, "m.yaml", {}), reactor)
        daemon.startService()
        self.addCleanup(cancelAutobahnTimers)
        self.addCleanup(daemon.stopService)
        pipeline = daemon.pipelines[0]
        yield until(lambda: pipeline.committed is not None and pipeline.delivered > 0, timeout=20)
        postgres = pipeline.consumers[1][1]
        yield until(lambda: postgres.inserted > 0, timeout=20)
        admin = [s for s in daemon if s not in daemon.pipelines][0]
        treq = httpClient(self)
        response = yield treq.get("http://127.0.0.1:{}/metrics".format(admin.listening.getHost().port))
        body = yield response.text()
        with open(os.path.join(REPO, "docs", "operations.md")) as f:
            documented = re.findall(r"^\| `(stellarflow_[a-z_]+)` \|", f.read(), re.M)
        self.assertGreater(len(documented), 20)
        served = set(re.findall(r"^(stellarflow_[a-z_]+)\{", body, re.M))
        self.assertEqual(sorted(set(documented) - served), [])
        self.assertRegex(body, r'stellarflow_consumer_inserted_total\{consumer="SaveToPostgreSQL\[1\]",pipeline="default"\} [1-9]')
        self.assertRegex(body, r'stellarflow_source_events_total\{pipeline="default"\} [1-9]')
