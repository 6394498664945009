"""
Scale-out over Redis Streams, on one box: the ingest (this process: a real L{SaveToRedis} fed
pages of ~960-byte token-transfer messages through ``consume()``, as the pipeline does), a
private ``redis-server`` and 1 or 2 edge daemons (``stellarflow -c edge.yaml``: the real
L{RedisStreamSource} -> L{SaveToWebSocket}, ``reuse_port`` so that the edges share one port and
the kernel spreads the clients), with the WebSocket load generator's clients.  Measured, in one
run:

- saturation: a burst of ``events`` appended as fast as the ingest goes;
  from the first append until every client has its last event (each client filtering on its own
  account by default, so that an event is one delivery and the load generator stays cheap),
  deliveries/s with 1 edge and
  with 2 edges, and CPU per delivery (the edges', and the box's: edges + Redis + ingest);
- latency: ``latency_rate`` events/s in pages every ``tick`` to ``latency_clients`` clients over
  2 edges, from the moment the ingest is handed a page to the kernel's receive timestamp at
  each client; next to the same pages sent straight from a SaveToWebSocket in this process (no
  Redis hop): p50/p99 and the difference;
- an edge's cost per event read: a L{RedisStreamSource} in this process reading ``read_events``
  (XREAD + JSON parse), CPU per event.

    .venv/bin/python -m benchmarks.redis '{"clients": 500}'   (parameters as JSON)
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, returnValue

from benchmarks.children import environment, sleep
from benchmarks.clients import ClientFleet
from benchmarks.common import REPO, account, cpuSeconds, median, raiseFileLimit, summarise, transferMessage
from stellarflow.batch import Batch
from stellarflow.message import sealAll

DEFAULTS = {
    "clients": 1000,
    "filters": "account",               # saturation: each client filters on its own account (or: all)
    "events": 20000,
    "page": 100,
    "in_flight": 8,
    "repeats": 3,
    "latency_clients": 1000,
    "latency_rate": 100,
    "latency_seconds": 5.0,
    "tick": 0.1,
    "read_events": 50000,
    "client_processes": 1,
    "client": "auto",
}

QUICK = {"clients": 100, "events": 2000, "latency_clients": 200, "latency_seconds": 2.0, "read_events": 5000,
         "repeats": 1}

EDGE = """
pipelines:
  edge:
    source:
      type: RedisStreamSource
      config: {{redis_url: "{redis}", stream: "{stream}", start: latest, block: 1}}
    processors: []
    consumers:
      - type: SaveToWebSocket
        # every client is on 127.0.0.1: the per-address limits are raised to fit
        config: {{host: 127.0.0.1, port: {port}, reuse_port: true, max_queue_size: 100000,
                  max_connections: 100000, ping_interval: 0, max_connections_per_ip: 100000,
                  connection_burst_per_ip: 100000}}
"""


def _freePort():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _waitFor(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


class Box:
    """
    The processes of the run: a private redis-server and the edge daemons.
    """

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sf-bench-redis-")
        self.redisPort = _freePort()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = "redis://127.0.0.1:{}/0".format(self.redisPort)
        _waitFor(self._redisUp, 10, "redis-server")
        self.edges = []
        self.port = _freePort()

    def _redisUp(self):
        out = subprocess.run(["redis-cli", "-p", str(self.redisPort), "PING"], capture_output=True, text=True)
        return out.stdout.strip() == "PONG"

    def startEdges(self, count, stream):
        """C{count} edge daemons on one port, following C{stream}."""
        config = os.path.join(self.dir, "edge-{}.yaml".format(stream.replace(":", "-")))
        with open(config, "w") as f:
            f.write(EDGE.format(redis=self.url, stream=stream, port=self.port))
        edges = []
        for k in range(count):
            log = os.path.join(self.dir, "edge-{}-{}.log".format(len(self.edges), k))
            env = environment()
            argv = [sys.executable, "-c", "from stellarflow.run import main; main()", "-c", config]
            state = os.path.join(self.dir, "state-{}-{}".format(len(self.edges), k))
            with open(config) as f:
                text = f.read()
            own = config + ".{}".format(k)
            with open(own, "w") as f:
                f.write("state_dir: {}\n".format(state) + text)
            argv[-1] = own
            with open(log, "w") as out:
                process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            edges.append((process, log))
        for _, log in edges:
            _waitFor(lambda log=log: "Following stream" in open(log).read() and "listening" in open(log).read(),
                     60, "an edge daemon ({})".format(log))
        self.edges.extend(edges)
        return [p.pid for p, _ in edges]

    def logTail(self, lines=15):
        """The end of every edge's log, for error reports."""
        out = []
        for _, log in self.edges:
            with open(log) as f:
                out.append(log + ":\n" + "".join([x for x in f.readlines() if "#debug" not in x][-lines:]))
        return "\n".join(out)

    def stopEdges(self):
        for process, _ in self.edges:
            process.terminate()
        for process, _ in self.edges:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.edges = []

    def close(self):
        self.stopEdges()
        self.redis.kill()
        self.redis.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def makePages(start, count, page, clients):
    """Sealed pages of transfers (sender cycling over the clients' accounts)."""
    pages = []
    for first in range(start, start + count, page):
        messages = sealAll(transferMessage(n, account(n % clients)) for n in range(first, min(start + count, first + page)))
        pages.append(messages)
    return pages


def batchesOf(pages, start):
    """Chained batches of C{pages}: cursor = last id, previous = the cursor before."""
    out, previous = [], "%019d-%010d" % ((start - 1) << 12, 0)  # the cursor of the run before
    for messages in pages:
        cursor = messages[-1]["id"]
        out.append(Batch(items=[], messages=messages, cursor=cursor, previous=previous))
        previous = cursor
    return out


@inlineCallbacks
def append(ingest, batches, inFlight):
    """Hand C{batches} to the ingest with at most C{inFlight} unacknowledged (as the pipeline does)."""
    pending = []
    for b in batches:
        pending.append(ingest.consume(b))
        if len(pending) >= inFlight:
            yield pending.pop(0)
    yield DeferredList(pending, fireOnOneErrback=True)


@inlineCallbacks
def saturation(reactor, box, ingest, fleet, edgePids, p, start):
    """One burst: deliveries/s and CPU per delivery."""
    batches = batchesOf(makePages(start, p["events"], p["page"], p["clients"]), start)
    marked = yield fleet.mark()
    pids = edgePids + [box.redis.pid]
    before = [cpuSeconds(pid) for pid in pids] + [cpuSeconds()]
    began = time.time()
    yield append(ingest, batches, p["in_flight"])
    if p["filters"] == "account":
        counts = [0] * p["clients"]
        for n in range(start, start + p["events"]):
            counts[n % p["clients"]] += 1
        deliveries = p["events"]
    else:
        counts, deliveries = p["events"], p["events"] * p["clients"]
    answer = yield fleet.expect(counts, timeout=120)
    if not answer.get("ok", True):
        raise RuntimeError("clients missed events: {}\n{}".format(answer, box.logTail()))
    ended = answer["t"]
    after = [cpuSeconds(pid) for pid in pids] + [cpuSeconds()]
    spent = [b - a for a, b in zip(before, after)]
    seconds = ended - began
    edges = sum(spent[: len(edgePids)])
    return {
        "deliveries": deliveries,
        "seconds": seconds,
        "deliveries_per_s": deliveries / seconds,
        "edge_cpu_us_per_delivery": edges * 1e6 / deliveries,
        "box_cpu_us_per_delivery": sum(spent) * 1e6 / deliveries,
        "edge_cpu_share": edges / seconds,
        "redis_cpu_share": spent[len(edgePids)] / seconds,
        "ingest_cpu_share": spent[-1] / seconds,
        "client_cpu_share": (answer["cpu"] - marked["cpu"]) / seconds,
    }


def latencyPages(p):
    """Events per page and pages of a latency run."""
    return max(1, int(p["latency_rate"] * p["tick"])), int(p["latency_seconds"] / p["tick"])


def latencyEvents(p):
    perTick, ticks = latencyPages(p)
    return perTick * ticks


@inlineCallbacks
def steadyLatency(reactor, send, fleet, p, start, workdir, label):
    """
    ``latency_rate`` events/s in pages every ``tick`` handed to C{send(batch)}; latency from the
    hand-over of each page to each client's receipt of each of its events.
    """
    from benchmarks.wsclient import readDump

    perTick, ticks = latencyPages(p)
    pages = makePages(start, perTick * ticks, perTick, p["latency_clients"])
    batches = batchesOf(pages, start)
    yield fleet.mark()
    handed = []
    for b in batches:
        handed.extend([time.time()] * len(b.messages))
        send(b)
        d = Deferred()
        reactor.callLater(p["tick"], d.callback, None)
        yield d
    answer = yield fleet.expect(len(handed), timeout=60)
    if not answer.get("ok", True):
        raise RuntimeError("clients missed events: {}".format(answer))  # (the edges' logs are kept until the end)
    paths = yield fleet.dump(os.path.join(workdir, "times-" + label))
    latencies = []
    for path in paths:
        header, arrivals, _ = readDump(path)
        for times in arrivals:
            latencies.extend(t - h for t, h in zip(times, handed))
        os.remove(path)
    return summarise(latencies, 1000.0)


@inlineCallbacks
def readCost(reactor, box, ingest, p, start, stream):
    """CPU per event of a RedisStreamSource reading a stream (XREAD + parse), in this process."""
    from stellarflow.redis.source import RedisStreamSource

    batches = batchesOf(makePages(start, p["read_events"], 1000, 100), start)
    yield append(ingest, batches, p["in_flight"])
    done = Deferred()
    seen = [0]

    def deliver(batch):
        seen[0] += len(batch.items)
        if seen[0] >= p["read_events"] and not done.called:
            done.callback(None)
        d = Deferred()
        d.callback(None)
        return d

    source = RedisStreamSource(reactor, redis_url=box.url, stream=stream, start="oldest", count=1000, block=1)
    before = cpuSeconds()
    began = time.time()
    source.start(deliver, None)
    yield done
    spent = cpuSeconds() - before
    seconds = time.time() - began
    yield source.stop()
    return {"events": seen[0], "cpu_us_per_event": spent * 1e6 / seen[0], "events_per_s": seen[0] / seconds}


@inlineCallbacks
def measure(reactor, **params):
    from stellarflow.redis.consumer import SaveToRedis
    from stellarflow.websocket.consumer import SaveToWebSocket

    p = dict(DEFAULTS)
    p.update(params)
    raiseFileLimit(4 * max(p["clients"], p["latency_clients"]) + 1000)
    metrics, runs = {}, {}
    result = {"benchmark": "redis", "params": p, "metrics": metrics, "runs": runs}
    box = Box()
    workdir = tempfile.mkdtemp(prefix="sf-bench-redis-dumps-")
    start = 1
    try:
        for edges in (1, 2):
            stream = "bench:sat:{}".format(edges)
            ingest = SaveToRedis(reactor, redis_url=box.url, stream=stream, max_length=0, refill_size=0)
            yield ingest.start()
            yield ingest.load("bench")
            pids = box.startEdges(edges, stream)
            fleet = ClientFleet(reactor, box.port, p["clients"], filters=p["filters"],
                                processes=p["client_processes"], client=p["client"])
            result["load_generator"] = fleet.kind
            try:
                yield fleet.start()
                yield sleep(reactor, 0.5)
                found = []
                for _ in range(p["repeats"]):
                    found.append((yield saturation(reactor, box, ingest, fleet, pids, p, start)))
                    start += p["events"]
                    yield sleep(reactor, 0.3)
                runs["saturation.{}".format(edges)] = found
                for key in found[0]:
                    metrics["redis.saturation.{}.{}".format(edges, key)] = median([r[key] for r in found])
            finally:
                yield fleet.stop()
                box.stopEdges()
                yield ingest.stop()
        metrics["redis.saturation.ratio_2_to_1"] = (
            metrics["redis.saturation.2.deliveries_per_s"] / metrics["redis.saturation.1.deliveries_per_s"])

        # latency: 2 edges through Redis, then the same pages from a SaveToWebSocket here
        stream = "bench:latency"
        ingest = SaveToRedis(reactor, redis_url=box.url, stream=stream, max_length=0, refill_size=0)
        yield ingest.start()
        yield ingest.load("bench")
        box.startEdges(2, stream)
        fleet = ClientFleet(reactor, box.port, p["latency_clients"], filters="all", processes=p["client_processes"],
                            client=p["client"], timestamps=True, rcvbuf=1 << 20)
        try:
            yield fleet.start()
            yield sleep(reactor, 0.5)
            found = []
            for k in range(p["repeats"]):
                found.append((yield steadyLatency(reactor, ingest.consume, fleet, p, start, workdir, "redis-{}".format(k))))
                start += latencyEvents(p)
            runs["latency.redis"] = found
        finally:
            yield fleet.stop()
            box.stopEdges()
            yield ingest.stop()
        direct = SaveToWebSocket(reactor, host="127.0.0.1", port=0, max_queue_size=100000, max_connections=100000,
                                 ping_interval=0, history_size=0, max_connections_per_ip=100000,
                                 connection_burst_per_ip=100000)
        yield direct.start()
        fleet = ClientFleet(reactor, direct.listeningPort.getHost().port, p["latency_clients"], filters="all",
                            processes=p["client_processes"], client=p["client"], timestamps=True, rcvbuf=1 << 20)
        try:
            yield fleet.start()
            found = []
            for k in range(p["repeats"]):
                found.append((yield steadyLatency(reactor, direct.consume, fleet, p, start, workdir, "direct-{}".format(k))))
                start += latencyEvents(p)
            runs["latency.direct"] = found
        finally:
            yield fleet.stop()
            yield direct.stop()
        for name in ("redis", "direct"):
            for q in ("p50", "p99"):
                metrics["redis.latency.{}.{}_ms".format(name, q)] = median([r[q] for r in runs["latency." + name]])
        metrics["redis.latency.hop_p99_ms"] = metrics["redis.latency.redis.p99_ms"] - metrics["redis.latency.direct.p99_ms"]

        # an edge's cost per event read
        ingest = SaveToRedis(reactor, redis_url=box.url, stream="bench:read", max_length=0, refill_size=0)
        yield ingest.start()
        yield ingest.load("bench")
        try:
            found = yield readCost(reactor, box, ingest, p, start, "bench:read")
        finally:
            yield ingest.stop()
        runs["read"] = [found]
        metrics["redis.read.cpu_us_per_event"] = found["cpu_us_per_event"]
        metrics["redis.read.events_per_s"] = found["events_per_s"]
    finally:
        box.close()
        shutil.rmtree(workdir, ignore_errors=True)
    returnValue(result)


def describe(result):
    """The table rows of a Redis scale-out result."""
    p = result["params"]
    m = result["metrics"]
    rows = []
    for edges in (1, 2):
        key = "redis.saturation.{}.".format(edges)
        if key + "deliveries_per_s" not in m:
            continue
        rows.append({
            "label": "via Redis, {} edge process{}, {} clients ({}), burst of {:,}".format(
                edges, "" if edges == 1 else "es", p["clients"],
                "own-account filters" if p["filters"] == "account" else "all matching", p["events"]),
            "value": m[key + "deliveries_per_s"], "unit": "deliveries/s",
            "note": "edge CPU {:.2f} us/delivery, box (edges+Redis+ingest) {:.2f} us/delivery; edges {:.0%} of a "
                    "core, Redis {:.0%}, ingest {:.0%}, load generator {:.0%}".format(
                        m[key + "edge_cpu_us_per_delivery"], m[key + "box_cpu_us_per_delivery"],
                        m[key + "edge_cpu_share"], m[key + "redis_cpu_share"], m[key + "ingest_cpu_share"],
                        m[key + "client_cpu_share"]),
        })
    if "redis.saturation.ratio_2_to_1" in m:
        rows.append({"label": "2 edges vs 1, deliveries/s", "value": m["redis.saturation.ratio_2_to_1"], "unit": "x",
                     "note": "same host, same clients"})
    if "redis.latency.redis.p99_ms" in m:
        rows.append({
            "label": "ingest page -> client, {} clients over 2 edges, {} ev/s".format(
                p["latency_clients"], p["latency_rate"]),
            "value": m["redis.latency.redis.p99_ms"], "unit": "ms p99",
            "note": "p50 {:.1f} ms; straight from one process: p50 {:.1f} ms, p99 {:.1f} ms; the hop adds {:+.1f} ms "
                    "at p99".format(m["redis.latency.redis.p50_ms"], m["redis.latency.direct.p50_ms"],
                                    m["redis.latency.direct.p99_ms"], m["redis.latency.hop_p99_ms"]),
        })
    if "redis.read.cpu_us_per_event" in m:
        rows.append({
            "label": "edge reading the stream (XREAD + parse)", "value": m["redis.read.cpu_us_per_event"],
            "unit": "us CPU/event",
            "note": "{:,.0f} events/s; per delivery at 1 edge: {:.2f} us".format(
                m["redis.read.events_per_s"], m.get("redis.saturation.1.edge_cpu_us_per_delivery") or 0),
        })
    return rows


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
