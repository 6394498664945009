"""
Fan-out over Redis Streams end to end, over 127.0.0.1: an ingest daemon (RPCSourceAdapter ->
GetEventsRPC -> SaveToRedis) follows the RPC test server; edge daemons (RedisStreamSource ->
SaveToWebSocket) serve Autobahn clients; the real Redis (a stream of each test's own) or a
private redis-server the test stops and starts.  Every wait is bounded.
"""

import json
import subprocess

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from stellarflow.config import parse
from stellarflow.daemon import Daemon
from stellarflow.positions import ledgerEnd
from stellarflow.redis.testing import PrivateRedis, _hostPort, requireRedis, sleep, testRedisURL, uniqueStream
from stellarflow.testing.rpcserver import StellarRPCResource, serve
from tests.test_websocket_e2e import cancelAutobahnTimers, dropClient, registeredClient, until

FIRST_LEDGER = 9000
TIMEOUT = 30

INGEST = """
state_dir: {state}
admin: {{host: 127.0.0.1, port: 0}}
pipelines:
  ingest:
    source:
      type: RPCSourceAdapter
      config:
        rpc_url: http://127.0.0.1:{rpc}
        network: testnet
        poll_interval: 0.05
        start_ledger: {start}
        pagination: {{limit: 500}}
    processors: [{{type: GetEventsRPC}}]
    consumers:
      - type: SaveToRedis
        config:
          redis_url: {redis}
          stream: {stream}
          refill_size: {refill}
          command_timeout: 1
          connect_timeout: 1
"""

EDGE = """
state_dir: {state}
admin: {{host: 127.0.0.1, port: 0}}
pipelines:
  edge:
    source:
      type: RedisStreamSource
      config:
        redis_url: {redis}
        stream: {stream}
        start: oldest
        block: 0.2
        command_timeout: 1
        connect_timeout: 1
        on_gap: {on_gap}
    processors: []
    consumers:
      - type: SaveToWebSocket
        config:
          host: 127.0.0.1
          port: 0
          history_size: {history}
"""


def streamEntries(url, stream):
    """
    C{[(id, predecessor)]} of the stream, through redis-cli.
    """
    host, port = _hostPort(url)
    out = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port), "--json", "XRANGE", stream, "-", "+"],
        capture_output=True, text=True, timeout=10,
    ).stdout
    return [(i, dict(zip(f[::2], f[1::2]))["p"]) for i, f in json.loads(out or "[]")]


class FanOutMixin:
    timeout = 120

    def redisURL(self):
        return testRedisURL()

    @defer.inlineCallbacks
    def startRPC(self, eventsPerLedger=4, interval=0.05):
        # runs last: once every daemon and client is gone (a daemon's cleanup must not cancel
        # the timers of another's connections still closing)
        self.addCleanup(cancelAutobahnTimers)
        self.rpc = StellarRPCResource(
            task.Clock(), seed=7, events_per_ledger=eventsPerLedger, first_ledger=FIRST_LEDGER, history=2000
        )
        self.rpcPort = yield serve(0, self.rpc, reactor=reactor)
        self.addCleanup(self.rpc.stopServing)
        self.rpc.advanceLedgers(5)
        self.ledgers = task.LoopingCall(self.rpc.advanceLedgers, 1)
        self.ledgers.start(interval, now=False)
        self.addCleanup(self.stopLedgers)

    def stopLedgers(self):
        if self.ledgers.running:
            self.ledgers.stop()

    def daemon(self, text, name):
        daemon = Daemon(parse(text, name, {}), reactor)
        daemon.startService()
        self.addCleanup(lambda: daemon.stopService() if daemon.running else None)
        return daemon

    def startIngest(self, state=None, refill=10000):
        self.ingestState = state or getattr(self, "ingestState", None) or self.mktemp()
        text = INGEST.format(
            state=self.ingestState, rpc=self.rpcPort, start=FIRST_LEDGER + 2, redis=self.redisURL(),
            stream=self.stream, refill=refill,
        )
        self.ingest = self.daemon(text, "ingest.yaml")
        return self.ingest

    @defer.inlineCallbacks
    def startEdge(self, state=None, history=20, on_gap="stop"):
        text = EDGE.format(
            state=state or self.mktemp(), redis=self.redisURL(), stream=self.stream, history=history, on_gap=on_gap
        )
        edge = self.daemon(text, "edge.yaml")
        ws = edge.pipelines[0].consumers[0][1]
        yield until(lambda: ws.listeningPort is not None, TIMEOUT)
        edge.port = ws.listeningPort.getHost().port
        edge.ws = ws
        return edge

    def connect(self, edge, resume_after=None):
        return registeredClient(self, edge.port, resume_after=resume_after)

    def drop(self, client):
        return dropClient(client)

    def registered(self, client):
        return [m for m in client.received if m["type"] == "registered"][-1]

    def expected(self, first, last):
        """
        The ids of the contract events the RPC holds with C{first < id <= last}.
        """
        ids = []
        for ledger in range(FIRST_LEDGER + 2, self.rpc.ledgers.latest + 1):
            ids.extend(e.id for e in self.rpc.eventsInLedger(ledger) if first < e.id <= last)
        return ids

    @defer.inlineCallbacks
    def settle(self, *edges):
        """
        Stop closing ledgers; wait until every edge streamed the last one.
        """
        self.stopLedgers()
        end = ledgerEnd(self.rpc.ledgers.latest)
        for edge in edges:
            hub = edge.ws.hub
            yield until(lambda hub=hub: (hub.position or "") >= end and not hub.replayer.replaying, TIMEOUT)

    def assertUnbroken(self, url=None):
        """
        The stream holds every event once, in order, each naming the one before it.
        """
        entries = streamEntries(url or self.redisURL(), self.stream)
        ids = [e[0] for e in entries]
        self.assertEqual(len(ids), len(set(ids)))
        for (a, _), (_, p) in zip(entries, entries[1:]):
            self.assertEqual(p, a)
        return entries


class FanOutTests(FanOutMixin, TestCase):
    def setUp(self):
        requireRedis()
        self.stream = uniqueStream(self)
        return self.startRPC()

    @defer.inlineCallbacks
    def test_twoEdgesIdenticalAndAClientMovesBetweenThem(self):
        """
        Clients on both edges receive the identical ordered stream; a client that leaves edge
        A and registers on edge B with resume_after (older than B's memory, so B reads the
        stream) misses nothing and sees nothing twice.
        """
        a = yield self.startEdge(history=20)
        b = yield self.startEdge(history=20)
        onA = yield self.connect(a)
        onB = yield self.connect(b)
        mover = yield self.connect(a)
        self.startIngest()
        yield mover.waitFor(lambda c: len(c.events()) >= 30, TIMEOUT)
        yield self.drop(mover)
        before = mover.events()
        # B moves on by more than its 20 events of memory before the client comes back
        yield onB.waitFor(lambda c: len(c.events()) >= len(before) + 60, TIMEOUT)
        moved = yield self.connect(b, resume_after=before[-1])
        reply = self.registered(moved)
        self.assertEqual((reply["resumed"], reply["resume_after"]), (True, before[-1]))
        yield self.settle(a, b)
        for client in (onA, onB, moved):
            yield client.barrier(TIMEOUT)
        everything = self.expected("", ledgerEnd(self.rpc.ledgers.latest))
        self.assertEqual(onA.events(), everything)
        self.assertEqual(onB.events(), everything)
        self.assertEqual(before + moved.events(), everything)
        self.assertGreater(b.ws.stats()["events_replayed_total"], 20)
        self.assertUnbroken()

    @defer.inlineCallbacks
    def test_edgeGoneItsClientsResumeOnAnother(self):
        a = yield self.startEdge()
        b = yield self.startEdge()
        clients = []
        for _ in range(3):
            clients.append((yield self.connect(a)))
        self.startIngest()
        yield clients[-1].waitFor(lambda c: len(c.events()) >= 20, TIMEOUT)
        yield a.stopService()
        # moved at once: where B is a moment behind A, it waits for its position to get there
        resumed = []
        for client in clients:
            self.assertIsNotNone(client.closedWith)
            resumed.append((yield self.connect(b, resume_after=client.events()[-1])))
        yield self.settle(b)
        everything = self.expected("", ledgerEnd(self.rpc.ledgers.latest))
        for client, again in zip(clients, resumed):
            yield again.barrier(TIMEOUT)
            self.assertNotIn("resume_after_ahead", again.errors())
            self.assertTrue(self.registered(again)["resumed"])
            self.assertEqual(client.events() + again.events(), everything)

    @defer.inlineCallbacks
    def test_ingestRestartedNoDuplicateNoGap(self):
        """
        The ingest stops mid-stream and starts again from its state: the stream holds every
        event once, chained, and an edge's client gets each once.
        """
        edge = yield self.startEdge()
        client = yield self.connect(edge)
        self.startIngest()
        yield client.waitFor(lambda c: len(c.events()) >= 30, TIMEOUT)
        yield self.ingest.stopService()
        yield sleep(reactor, 0.5)
        self.startIngest()
        count = len(client.events())
        yield client.waitFor(lambda c: len(c.events()) >= count + 30, TIMEOUT)
        yield self.settle(edge)
        yield client.barrier(TIMEOUT)
        everything = self.expected("", ledgerEnd(self.rpc.ledgers.latest))
        entries = self.assertUnbroken()
        self.assertEqual([e[0] for e in entries], [str(int(i[:19])) + "-" + str(int(i[20:])) for i in everything])
        self.assertEqual(client.events(), everything)
        consumer = self.ingest.pipelines[0].consumers[0][1]
        self.assertEqual(consumer.stats()["skipped_total"], 0)


    @defer.inlineCallbacks
    def test_edgeProcessKilledItsClientsResumeOnAnother(self):
        """
        An edge running as its own process (the stellarflow runner) is killed with SIGKILL:
        its clients lose their connections, resume on another edge and miss nothing.
        """
        import os
        import signal
        import sys

        from stellarflow.redis.testing import freePort
        from tests.helpers import REPO

        port = freePort()
        config = os.path.abspath(self.mktemp())
        with open(config, "w") as f:
            f.write(EDGE.format(state=config + ".state", redis=self.redisURL(), stream=self.stream, history=20,
                                on_gap="stop").replace("port: 0\n          history", "port: {}\n          history".format(port)))
        log = open(config + ".log", "w")
        self.addCleanup(log.close)
        process = subprocess.Popen([sys.executable, "-c", "from stellarflow.run import main; main()", "-c", config],
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait(10)))
        yield until(lambda: "listening" in open(config + ".log").read() or process.poll() is not None, TIMEOUT)
        self.assertIsNone(process.poll(), open(config + ".log").read())

        class Killed:
            pass

        a = Killed()
        a.port = port
        b = yield self.startEdge()
        clients = []
        for _ in range(3):
            clients.append((yield self.connect(a)))
        self.startIngest()
        yield clients[-1].waitFor(lambda c: len(c.events()) >= 20, TIMEOUT)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        for client in clients:
            yield client.closedDeferred.addTimeout(TIMEOUT, reactor)
        last = max(client.events()[-1] for client in clients)
        yield until(lambda: (b.ws.hub.position or "") >= last, TIMEOUT)
        resumed = []
        for client in clients:
            resumed.append((yield self.connect(b, resume_after=client.events()[-1])))
        yield self.settle(b)
        everything = self.expected("", ledgerEnd(self.rpc.ledgers.latest))
        for client, again in zip(clients, resumed):
            yield again.barrier(TIMEOUT)
            self.assertTrue(self.registered(again)["resumed"])
            self.assertEqual(client.events() + again.events(), everything)

    @defer.inlineCallbacks
    def test_documentedMetricsServed(self):
        """
        Every metric docs/scaling.md lists is served by the ingest's or an edge's /metrics.
        """
        import os
        import re

        from tests.helpers import REPO, httpClient

        edge = yield self.startEdge()
        client = yield self.connect(edge)
        self.startIngest()
        yield client.waitFor(lambda c: len(c.events()) >= 5, TIMEOUT)
        treq = httpClient(self)
        served = set()
        for daemon in (self.ingest, edge):
            admin = [s for s in daemon if s not in daemon.pipelines][0]
            yield until(lambda admin=admin: admin.listening is not None, TIMEOUT)
            response = yield treq.get("http://127.0.0.1:{}/metrics".format(admin.listening.getHost().port))
            served |= set(re.findall(r"^(stellarflow_[a-z_]+)\{", (yield response.text()), re.M))
        with open(os.path.join(REPO, "docs", "scaling.md")) as f:
            documented = re.findall(r"^\| `(stellarflow_[a-z_]+)` \|", f.read(), re.M)
        self.assertGreater(len(documented), 10)
        self.assertEqual(sorted(set(documented) - served), [])


    @defer.inlineCallbacks
    def test_gapMidRunStopsTheEdgeDaemon(self):
        """
        An edge that falls behind past the trimmed part of the stream (its consumer holds its
        batches) finds the gap after its first batch: with on_gap stop its daemon stops with
        status 1 (a supervisor restarts it; its clients resume and are told).
        """
        from stellarflow.redis.consumer import SaveToRedis
        from tests.test_redis_consumer import chained

        writer = SaveToRedis(reactor, redis_url=self.redisURL(), stream=self.stream, max_length=0)
        self.addCleanup(writer.stop)
        yield writer.start()
        batches = chained(100, 110)
        yield writer.consume(batches[0])
        text = (
            "state_dir: {}\nmax_in_flight: 1\n"
            "source: {{type: RedisStreamSource, config: {{redis_url: '{}', stream: '{}', start: oldest, block: 0.1}}}}\n"
            "processors: []\nconsumers: [{{type: MemoryConsumer}}]\n"
        ).format(self.mktemp(), self.redisURL(), self.stream)
        stopped = []
        daemon = Daemon(parse(text, "edge.yaml", {}), reactor, stop=lambda: stopped.append(True))
        daemon.startService()
        self.addCleanup(lambda: daemon.stopService() if daemon.running else None)
        consumer = daemon.pipelines[0].consumers[0][1]
        consumer.hold = True
        yield until(lambda: len(consumer.held) == 1, TIMEOUT)
        for b in batches[1:]:
            yield writer.consume(b)
        subprocess.run(["redis-cli", "-p", str(_hostPort(self.redisURL())[1]), "XTRIM", self.stream, "MAXLEN", "=", "6"],
                       capture_output=True, timeout=10)
        consumer.hold = False
        consumer.release()
        yield until(lambda: stopped, TIMEOUT)
        self.assertEqual(daemon.exitCode, 1)
        self.assertEqual(daemon.pipelines[0].finished, "failed")
        self.assertEqual(daemon.pipelines[0].source.stats()["gaps_total"], 1)
        # what came before the gap was delivered, nothing after it
        self.assertEqual([m["id"] for m in consumer.messages], [m.id for m in batches[0].messages])


class RedisFailureE2ETests(FanOutMixin, TestCase):
    def setUp(self):
        self.redis = PrivateRedis(self)
        self.stream = "stellarflow:e2e"
        return self.startRPC()

    def redisURL(self):
        return self.redis.url

    @defer.inlineCallbacks
    def test_redisUnreachableAtStart(self):
        """
        Ingest and edge start without Redis: the edge serves clients (no events yet); once Redis
        answers the stream fills from the ingest's start and the client gets everything.
        """
        self.startIngest()
        edge = yield self.startEdge()
        client = yield self.connect(edge)
        yield sleep(reactor, 1.0)
        self.assertEqual(client.events(), [])
        self.redis.start()
        yield client.waitFor(lambda c: len(c.events()) >= 30, TIMEOUT)
        yield self.settle(edge)
        yield client.barrier(TIMEOUT)
        self.assertEqual(client.events(), self.expected("", ledgerEnd(self.rpc.ledgers.latest)))
        self.assertUnbroken()

    @defer.inlineCallbacks
    def test_redisRestartedWithoutPersistenceClientsAreTold(self):
        """
        An edge is down while Redis restarts and loses the stream (the ingest keeps nothing to
        refill: C{refill_size: 0}); when the edge comes back its client's resume is answered
        with the exact gap, then everything after it.
        """
        self.redis.start()
        edgeState = self.mktemp()
        edge = yield self.startEdge(state=edgeState)
        client = yield self.connect(edge)
        self.startIngest(refill=0)
        yield client.waitFor(lambda c: len(c.events()) >= 20, TIMEOUT)
        yield edge.stopService()
        seen = client.events()
        consumer = self.ingest.pipelines[0].consumers[0][1]
        yield until(lambda: consumer.last is not None and consumer.last > seen[-1], TIMEOUT)
        self.redis.stop()
        yield sleep(reactor, 0.3)
        lost = consumer.last
        self.redis.start()
        yield until(lambda: consumer.stats()["data_losses_total"] == 1 and consumer.appended > 0 and consumer.last > lost, TIMEOUT)
        edge = yield self.startEdge(state=edgeState)
        source = edge.pipelines[0].source
        yield until(lambda: source.stats()["gaps_total"] == 1, TIMEOUT)
        again = yield self.connect(edge, resume_after=seen[-1])
        reply = self.registered(again)
        self.assertIs(reply["resumed"], False)
        firstKept = streamEntries(self.redis.url, self.stream)[0][0]
        self.assertEqual(reply["gap"]["from_after"], seen[-1])
        gapTo = reply["gap"]["to"]
        self.assertLess(gapTo, "%019d-%010d" % tuple(int(x) for x in firstKept.split("-")))
        self.assertGreaterEqual(gapTo, lost)
        yield self.settle(edge)
        yield again.barrier(TIMEOUT)
        self.assertEqual(again.events(), self.expected(gapTo, ledgerEnd(self.rpc.ledgers.latest)))
