"""
The daemon runs several pipelines side by side, and the real twistd starts and stops it.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer, provider

from stellarflow.config import parse
from stellarflow.daemon import Daemon, buildPipeline
from stellarflow.interfaces import IComponentFactory, IConsumer
from stellarflow.registry import Registry
from stellarflow.schema import Field, Schema, String
from stellarflow.testing.memory import MemoryConsumer
from tests.helpers import REPO

TWO = """
state_dir: {state}
pipelines:
  fast:
    source: {{type: MemorySource, config: {{count: 30, batch_size: 10, interval: 1}}}}
    processors: []
    consumers: [{{type: MemoryConsumer}}]
  slow:
    source: {{type: MemorySource, config: {{count: 30, batch_size: 5, interval: 1}}}}
    processors: []
    consumers: [{{type: MemoryConsumer}}]
"""


class HistoryWiringTests(SynchronousTestCase):
    def test_durableConsumerLendsItsHistory(self):
        """
        Listed after the WebSocket consumer, PostgreSQL is still built first and its history
        handed to the WebSocket consumer's constructor; the order of consumers is kept.
        """
        text = (
            "state_dir: {}\n"
            "source: {{type: MemorySource}}\n"
            "consumers:\n"
            "  - {{type: SaveToWebSocket, config: {{port: 0}}}}\n"
            "  - {{type: SaveToPostgreSQL, config: {{database: nowhere}}}}\n".format(self.mktemp())
        )
        config = parse(text, "h.yaml", {})
        pipeline = buildPipeline(config.pipelines[0], config, Clock())
        (wsName, ws), (pgName, pg) = pipeline.consumers
        self.assertEqual((wsName, pgName), ("SaveToWebSocket[0]", "SaveToPostgreSQL[1]"))
        self.assertIs(ws.hub.replayer.store, pg.eventHistory())

    def test_noDurableConsumer(self):
        text = "state_dir: {}\nsource: {{type: MemorySource}}\nconsumers: [{{type: SaveToWebSocket}}]\n"
        config = parse(text.format(self.mktemp()), "h.yaml", {})
        [(_, ws)] = buildPipeline(config.pipelines[0], config, Clock()).consumers
        self.assertIsNone(ws.hub.replayer.store)


class ProducedTypesWiringTests(SynchronousTestCase):
    """
    The consumers learn the message types their pipeline's processors produce (what C{payment}
    means, the C{registered} reply's C{available_types}, ``GET /events``).
    """

    def consumersOf(self, processors):
        text = (
            "state_dir: {}\n"
            "source: {{type: MemorySource}}\n"
            "processors: {}\n"
            "consumers:\n"
            "  - {{type: SaveToWebSocket, config: {{port: 0}}}}\n"
            "  - {{type: SaveToPostgreSQL, config: {{database: nowhere}}}}\n".format(self.mktemp(), processors)
        )
        config = parse(text, "h.yaml", {})
        (_, ws), (_, pg) = buildPipeline(config.pipelines[0], config, Clock()).consumers
        return ws, pg

    def test_getEvents(self):
        ws, pg = self.consumersOf("[{type: GetEventsRPC}]")
        self.assertEqual(ws.hub.producedTypes, frozenset(["contract_event"]))
        self.assertEqual(pg.eventQuery().producedTypes, frozenset(["contract_event"]))

    def test_wholeLedgers(self):
        ws, pg = self.consumersOf("[{type: GetLedgersRPC}]")
        self.assertEqual(ws.hub.producedTypes, frozenset(["payment", "trade", "contract_event"]))
        ws, pg = self.consumersOf("[{type: GetLedgersRPC, config: {emit: [trade]}}]")
        self.assertEqual(ws.hub.producedTypes, frozenset(["trade"]))
        self.assertEqual(pg.eventQuery().producedTypes, frozenset(["trade"]))

    def test_noProcessorNotKnown(self):
        ws, pg = self.consumersOf("[]")
        self.assertIsNone(ws.hub.producedTypes)
        self.assertIsNone(pg.eventQuery().producedTypes)


class DaemonTests(SynchronousTestCase):
    def test_pipelinesRunSideBySide(self):
        """
        Both pipelines make progress at the same time, not one after the other, and a stop
        checkpoints each.
        """
        state = self.mktemp()
        clock = Clock()
        config = parse(TWO.format(state=state), "two.yaml", {})
        daemon = Daemon(config, clock)
        daemon.startService()
        fast, slow = daemon.pipelines
        clock.advance(0)
        self.assertEqual(fast.delivered, 10)
        self.assertEqual(slow.delivered, 5)
        clock.advance(1)
        self.assertEqual((fast.delivered, slow.delivered), (20, 10))
        self.successResultOf(daemon.stopService())
        with open(os.path.join(state, "fast.checkpoint.json")) as f:
            self.assertEqual(json.load(f)["cursor"], "%019d-%010d" % (20, 0))
        with open(os.path.join(state, "slow.checkpoint.json")) as f:
            self.assertEqual(json.load(f)["cursor"], "%019d-%010d" % (10, 0))

    def test_configLoggedWithoutSecrets(self):
        @provider(IComponentFactory)
        @implementer(IConsumer)
        class Secretive(MemoryConsumer):
            configSchema = Schema({"password": Field(String(secret=True), ""), "host": Field(String(), "h")})

            @classmethod
            def fromConfig(cls, config, context):
                return cls()

        registry = Registry(extra={"consumer": {"Secretive": Secretive}}, useEntryPoints=False)
        text = "source: {type: MemorySource}\nprocessors: []\nconsumers: [{type: Secretive, config: {password: '${PW}'}}]\n"
        config = parse(text, "s.yaml", {"PW": "s3cr3t-pw"}, registry)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        daemon = Daemon(config, Clock())
        daemon.startService()
        self.successResultOf(daemon.stopService())
        text = "\n".join(formatEvent(e) for e in events)
        self.assertIn('consumer Secretive config: {"host": "h", "password": "<hidden>"}', text)
        self.assertNotIn("s3cr3t-pw", text)

    def test_stopsWhenEveryPipelineFinished(self):
        """
        Backfill-like pipelines end by themselves; the daemon stops (status 0) once all have.
        """
        text = TWO.replace("interval: 1}}", "interval: 1, stop_when_done: true}}")
        config = parse(text.format(state=self.mktemp()), "two.yaml", {})
        stopped = []
        clock = Clock()
        daemon = Daemon(config, clock, stop=lambda: stopped.append(True))
        daemon.startService()
        for _ in range(3):
            clock.advance(1)
        self.assertEqual([p.finished for p in daemon.pipelines], ["complete", None])
        self.assertEqual(stopped, [])
        for _ in range(4):
            clock.advance(1)
        self.assertEqual([p.finished for p in daemon.pipelines], ["complete", "complete"])
        self.assertEqual(stopped, [True])
        self.assertEqual(daemon.exitCode, 0)

    def test_failedPipelineExitCode(self):
        from twisted.python.failure import Failure

        config = parse(TWO.format(state=self.mktemp()), "two.yaml", {})
        stopped = []
        daemon = Daemon(config, Clock(), stop=lambda: stopped.append(True))
        daemon.startService()
        fast, slow = daemon.pipelines
        fast.source.finish(Failure(ValueError("invalid params")))
        self.assertEqual(stopped, [])
        slow.source.finish(Failure(ValueError("invalid params")))
        self.assertEqual(stopped, [True])
        self.assertEqual(daemon.exitCode, 1)

    def test_rpcUrlLoggedWithoutPath(self):
        """
        Hosted RPC URLs carry API keys in their path or query: the config dump shows the host.
        """
        text = "source: {type: RPCSourceAdapter, config: {rpc_url: 'https://rpc.example.com/v1/k3y-s3cr3t?x=1'}}\nconsumers: [{type: MemoryConsumer}]\n"
        config = parse(text, "u.yaml", {})
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        daemon = Daemon(config, Clock())
        daemon.startService()
        daemon.stopService()
        text = "\n".join(formatEvent(e) for e in events)
        self.assertIn('"rpc_url": "https://rpc.example.com"', text)
        self.assertNotIn("k3y-s3cr3t", text)

    def test_fatalStopsWithExitCode(self):
        stopped = []
        config = parse(TWO.format(state=self.mktemp()), "two.yaml", {})
        daemon = Daemon(config, Clock(), stop=lambda: stopped.append(True))
        first = daemon.pipelines[0]
        first.consumers[0][1].start = lambda: (_ for _ in ()).throw(OSError("cannot listen"))
        daemon.startService()
        self.assertEqual(daemon.exitCode, 1)
        self.assertEqual(stopped, [True])


def twistdEnv():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _defaultSignals():
    """
    In the child, before exec: SIGINT handled by default, as from a terminal.  A test run started
    in the background (``.ci/run &``) has SIGINT ignored, the child would inherit that, and
    Twisted (like CPython) leaves an ignored SIGINT ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def twistd(*args, cwd, before=()):
    exe = os.path.join(os.path.dirname(sys.executable), "twistd")
    return subprocess.Popen(
        [exe, "-n", "--pidfile="] + list(before) + ["stellarflow"] + list(args),
        cwd=cwd,
        env=twistdEnv(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_defaultSignals,
    )


def runner(*args, cwd, before=()):
    """
    The C{stellarflow} command (L{stellarflow.run}), run from the working tree.
    """
    return subprocess.Popen(
        [sys.executable, "-c", "from stellarflow.run import main; main()"] + list(args) + list(before),
        cwd=cwd,
        env=twistdEnv(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_defaultSignals,
    )


class DaemonProcessMixin:
    """
    The real daemon on a config file; every wait is bounded.  C{start} is L{twistd} or
    L{runner}.
    """

    timeout = 60

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.out = os.path.join(self.dir, "out.jsonl")
        self.config = os.path.join(self.dir, "pipe.yaml")
        with open(self.config, "w") as f:
            f.write(
                "state_dir: {}\n"
                "source: {{type: MemorySource, config: {{count: 1000000, batch_size: 5, interval: 0.05}}}}\n"
                "processors: []\n"
                "consumers: [{{type: MemoryConsumer, config: {{path: {}}}}}]\n".format(
                    os.path.join(self.dir, "state"), self.out
                )
            )

    def waitFor(self, predicate, limit=20.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def lines(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def runToEnd(self, *args):
        proc = self.start(*args, cwd=self.dir)
        try:
            output, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode, output.decode("utf-8", "replace")

    def stopWith(self, sig, expected, logArgs=()):
        before = len(self.lines())
        proc = self.start("-c", self.config, cwd=self.dir, before=logArgs)
        try:
            self.assertTrue(self.waitFor(lambda: len(self.lines()) >= before + 10), "no events consumed")
            proc.send_signal(sig)
            output, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = output.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, expected, text)
        self.assertIn("Pipeline default stopped at checkpoint", text)
        self.assertNotIn("Traceback", text)
        with open(os.path.join(self.dir, "state", "default.checkpoint.json")) as f:
            cursor = json.load(f)["cursor"]
        # everything consumed was checkpointed: the last id written is the checkpoint
        self.assertEqual(self.lines()[-1]["id"], cursor)
        return text

    def test_restartContinuesFromCheckpoint(self):
        self.stopWith(signal.SIGTERM, self.sigtermStatus)
        text = self.stopWith(signal.SIGTERM, self.sigtermStatus)
        self.assertIn("starting from checkpoint", text)
        ns = [m["n"] for m in self.lines()]
        self.assertEqual(ns, list(range(1, len(ns) + 1)))

    def test_configErrorExitsNonZero(self):
        with open(self.config, "w") as f:
            f.write("consumers:\n  - type: MemoryConsumer\n    config: {paht: x}\nsource: {type: MemorySource}\n")
        status, text = self.runToEnd("-c", self.config)
        self.assertEqual(status, 1, text)
        self.assertIn("consumers[0].config.paht: unknown key (did you mean 'path'?)", text)
        self.assertNotIn("Traceback", text)

    def portInUse(self):
        """
        A config whose WebSocket consumer must listen on a port that is taken.
        """
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        with open(self.config, "w") as f:
            f.write(
                "state_dir: {}\nsource: {{type: MemorySource}}\n"
                "consumers: [{{type: SaveToWebSocket, config: {{host: 127.0.0.1, port: {}}}}}]\n".format(
                    os.path.join(self.dir, "state"), taken.getsockname()[1]
                )
            )


class TwistdTests(DaemonProcessMixin, TestCase):
    """
    C{twistd -n stellarflow}: twistd's own exit statuses.
    """

    start = staticmethod(twistd)
    sigtermStatus = -signal.SIGTERM

    def test_sigterm(self):
        """
        twistd re-raises SIGTERM after the clean stop: the process dies of it (status 143).
        """
        self.stopWith(signal.SIGTERM, -signal.SIGTERM)

    def test_sigint(self):
        self.stopWith(signal.SIGINT, -signal.SIGINT)

    def test_jsonLogs(self):
        """
        C{--logger=stellarflow.logs.json} makes every output line one JSON object.
        """
        text = self.stopWith(signal.SIGTERM, -signal.SIGTERM, ["--logger=stellarflow.logs.json"])
        records = [json.loads(line) for line in text.splitlines()]
        messages = [r["message"] for r in records]
        self.assertTrue(any(m.startswith("Pipeline default stopped at checkpoint") for m in messages), messages)
        self.assertTrue(all(r["level"] in ("debug", "info", "warn", "error", "critical") for r in records))

    def test_failedStartExitsZero(self):
        """
        twistd has no public way for a service to set its exit status: a pipeline that cannot
        start is logged at critical level and the daemon stops, with status 0.
        """
        self.portInUse()
        status, text = self.runToEnd("-c", self.config)
        self.assertEqual(status, 0, text)
        self.assertIn("cannot listen on 127.0.0.1:", text)
        self.assertIn("address already in use", text)


class RunnerTests(DaemonProcessMixin, TestCase):
    """
    The C{stellarflow} command: 0 after a clean stop, 1 after a failure.
    """

    start = staticmethod(runner)
    sigtermStatus = 0

    def test_sigterm(self):
        self.stopWith(signal.SIGTERM, 0)

    def test_sigint(self):
        self.stopWith(signal.SIGINT, 0)

    def test_jsonLogs(self):
        text = self.stopWith(signal.SIGTERM, 0, ["--log-format", "json"])
        records = [json.loads(line) for line in text.splitlines()]
        self.assertTrue(any(r["message"].startswith("Pipeline default stopped at checkpoint") for r in records))

    def test_failedStartExitsOne(self):
        self.portInUse()
        status, text = self.runToEnd("-c", self.config)
        self.assertEqual(status, 1, text)
        self.assertIn("cannot listen on 127.0.0.1:", text)
        self.assertNotIn("Traceback", text)

    def test_check(self):
        status, text = self.runToEnd("-c", self.config, "--check")
        self.assertEqual(status, 0, text)
        self.assertIn("OK, 1 pipeline(s)", text)

    def test_badOption(self):
        status, text = self.runToEnd("-c", self.config, "--log-format", "xml")
        self.assertEqual(status, 2, text)
        self.assertIn("--log-format must be text or json", text)


class BackfillTests(TestCase):
    """
    The real twistd runs a backfill against the RPC test server and exits 0 when done.
    """

    timeout = 90

    @defer.inlineCallbacks
    def test_backfillRunsToEndAndExits(self):
        from twisted.internet import reactor
        from twisted.internet.utils import getProcessOutputAndValue

        from stellarflow.testing.rpcserver import StellarRPCResource, serve

        server = StellarRPCResource(reactor, seed=3, events_per_ledger=4, first_ledger=5000, history=400)
        port = yield serve(0, server, reactor=reactor)
        self.addCleanup(server.stopServing)
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        out = os.path.join(work, "out.jsonl")
        config = os.path.join(work, "backfill.yaml")
        with open(config, "w") as f:
            f.write(
                "state_dir: {state}\n"
                "source:\n  type: RPCSourceAdapter\n  config:\n"
                "    rpc_url: http://127.0.0.1:{port}\n    network: testnet\n"
                "    start_ledger: 5100\n    end_ledger: 5200\n    poll_interval: 0\n"
                "    pagination: {{limit: 50}}\n"
                "consumers: [{{type: MemoryConsumer, config: {{path: {out}}}}}]\n".format(
                    state=os.path.join(work, "state"), port=port, out=out
                )
            )
        exe = os.path.join(os.path.dirname(sys.executable), "twistd")
        stdout, stderr, code = yield getProcessOutputAndValue(
            exe, ["-n", "--pidfile=", "stellarflow", "-c", config], env=twistdEnv(), path=work
        )
        text = (stdout + stderr).decode("utf-8", "replace")
        self.assertEqual(code, 0, text)
        self.assertIn("Backfill complete", text)
        with open(out) as f:
            ids = [json.loads(line)["id"] for line in f]
        expected = [e.id for ledger in range(5100, 5201) for e in server.eventsInLedger(ledger)]
        self.assertEqual(ids, expected)
