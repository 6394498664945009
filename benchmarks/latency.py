"""
Latency through the whole daemon: from the moment the RPC test server answers a getEvents page
to the moment each WebSocket client has received each of its events, and the fan-out spread
(first to last client receiving one event).

This process runs the real daemon, built from a YAML config like ``twistd -n stellarflow``
builds it (L{Daemon}: RPCSourceAdapter -> Pipeline -> GetEventsRPC -> SaveToWebSocket).  Two
load generators run beside it: the Stellar RPC test server (L{benchmarks.rpcload}, ledgers
closing every ``ledger_close_time`` seconds with ``rate * ledger_close_time`` synthetic SAC
events each, answers timestamped) and the clients (L{benchmarks.wsclient}, every client
matching every event).  A client "has received" an event when its bytes have arrived in the
client's socket: the kernel's receive timestamp (SO_TIMESTAMPNS), so that the Python load
generator's own speed does not count; the time it READ each event is reported beside it.  The
client sockets get a 1 MiB SO_RCVBUF (``client_rcvbuf``): with the default receive window
(~64 KiB) a page (~100 KB per client) would wait for the Python load generator to read, and
its reading speed would be measured instead of the daemon's.  All
times are CLOCK_REALTIME (``time.time()``), comparable across processes on one machine.

Each measurement window is ``window_ledgers`` ledgers of events; percentiles are over every
(client, event) pair of a window (latency) or every event (spread), and the reported figure is
the median over ``repeats`` windows.
"""

import os
import shutil
import tempfile
import time

from twisted.internet.defer import inlineCallbacks, returnValue

from benchmarks.children import sleep, spawn
from benchmarks.clients import ClientFleet
from benchmarks.common import cpuSeconds, median, raiseFileLimit, summarise

DEFAULTS = {
    "clients": 1000,
    "rates": [20, 100, 200],          # events per second
    "ledger_close_time": 5.0,
    "window_ledgers": 2,
    "poll_interval": 1.0,
    "page_limit": 100,
    "repeats": 3,
    "client_processes": 1,
    "client": "auto",                 # load generator: auto (compiled if possible), c, python
    "client_rcvbuf": 1 << 20,         # SO_RCVBUF per client socket (see the module docstring)
}

QUICK = {"rates": [100], "ledger_close_time": 2.0, "window_ledgers": 2}

CONFIG = """
state_dir: "{state}"
pipelines:
  bench:
    source:
      type: RPCSourceAdapter
      config:
        rpc_url: "http://127.0.0.1:{rpc}/"
        network: testnet
        poll_interval: {poll}
        pagination: {{limit: {limit}}}
    processors:
      - type: GetEventsRPC
    consumers:
      - type: SaveToWebSocket
        config:
          host: 127.0.0.1
          port: 0
          max_connections: {connections}
          max_connections_per_ip: {connections}
          connection_burst_per_ip: {connections}
"""


def analyse(answers, dumps):
    """
    Latency and spread of one window from the RPC answers and the clients' dumps: by arrival
    (the kernel's receive timestamp on the client socket: what the daemon achieved) and, for
    comparison, by the time the load generator read each event (adds its own delays).
    """
    from benchmarks.wsclient import readDump

    answered = {}
    for t, ids in answers:
        for id_ in ids:
            answered.setdefault(id_, t)
    order = sorted(answered)
    arrived = []
    read = []
    seenIds = None
    for path in dumps:
        header, arrivals, reads = readDump(path)
        if header.get("ids") is not None and seenIds is None:
            seenIds = header["ids"]
        arrived.extend(arrivals)
        read.extend(reads)
    events = len(order)
    if seenIds is not None and seenIds[:events] != order[:len(seenIds)]:
        raise RuntimeError("clients received events in another order than the RPC server answered them")
    starts = [answered[id_] for id_ in order]
    out = {"events": events, "clients": len(arrived), "clients_short": sum(1 for t in arrived if len(t) < events)}
    for name, times in (("", arrived), ("read_", read)):
        if not times or not times[0]:
            continue
        latencies = []
        for received in times:
            latencies.extend(r - a for r, a in zip(received, starts))
        first = list(times[0][:events])
        last = list(first)
        for received in times[1:]:
            first = list(map(min, first, received))
            last = list(map(max, last, received))
        out[name + "latency_ms"] = summarise(latencies, 1000.0)
        out[name + "first_client_ms"] = summarise([f - s for f, s in zip(first, starts)], 1000.0)
        out[name + "spread_ms"] = summarise([b - a for a, b in zip(first, last)], 1000.0)
    return out


@inlineCallbacks
def measureRate(reactor, p, rate, workdir):
    from stellarflow.config import parse
    from stellarflow.daemon import Daemon

    perLedger = rate * p["ledger_close_time"]
    rpc = spawn(reactor, "benchmarks.rpcload", ["--events-per-ledger", perLedger, "--ledger-close-time",
                                                  p["ledger_close_time"]], name="rpcload")
    daemon = fleet = None
    windows = []
    kind = None
    try:
        listening = yield rpc.next(60)
        state = tempfile.mkdtemp(dir=workdir)
        config = parse(CONFIG.format(state=state, rpc=listening["port"], poll=p["poll_interval"],
                                     limit=p["page_limit"], connections=p["clients"] + 100))
        daemon = Daemon(config, reactor)
        daemon.startService()
        consumer = daemon.pipelines[0].consumers[0][1]
        for _ in range(200):
            if consumer.listeningPort is not None:
                break
            yield sleep(reactor, 0.05)
        fleet = ClientFleet(reactor, consumer.listeningPort.getHost().port, p["clients"], filters="all",
                            processes=p["client_processes"], timestamps=True, rcvbuf=p["client_rcvbuf"],
                            client=p["client"])
        kind = fleet.kind
        yield fleet.start()
        for window in range(p["repeats"]):
            marked = yield fleet.mark()
            cpu0 = time.process_time()
            rpcCpu0 = cpuSeconds(rpc.pid)
            t0 = time.time()
            going = yield rpc.request(cmd="go", ledgers=p["window_ledgers"])
            wait = p["window_ledgers"] * p["ledger_close_time"] + 60
            reached = yield fleet.expect(going["events"], timeout=wait)
            wall = time.time() - t0
            cpu = time.process_time() - cpu0
            rpcCpu = cpuSeconds(rpc.pid) - rpcCpu0
            if not reached.get("ok"):
                raise RuntimeError("window not delivered: {}".format(reached))
            answers = (yield rpc.request(cmd="answers"))["answers"]
            dumps = yield fleet.dump(os.path.join(workdir, "times-{}-{}".format(rate, window)))
            stats = analyse(answers, dumps)
            deliveries = stats["events"] * stats["clients"]
            stats.update({
                "server_cpu_us_per_delivery": cpu / deliveries * 1e6,
                "server_cpu_share": cpu / wall,
                "client_cpu_share": (reached["cpu"] - marked["cpu"]) / wall / fleet.processes,
                "rpc_cpu_share": rpcCpu / wall,
                "pages": len(answers),
            })
            windows.append(stats)
            for path in dumps:
                os.unlink(path)
    finally:
        if fleet is not None:
            yield fleet.stop()
        if daemon is not None:
            yield daemon.stopService()
        yield rpc.stop()
    returnValue((windows, kind))


@inlineCallbacks
def measure(reactor, **params):
    p = dict(DEFAULTS, **params)
    limits = raiseFileLimit(p["clients"] + 1024)
    result = {"benchmark": "latency", "params": p, "nofile": list(limits), "runs": {}, "metrics": {}}
    workdir = tempfile.mkdtemp(prefix="sf-bench-latency-")
    try:
        for rate in p["rates"]:
            windows, kind = yield measureRate(reactor, p, rate, workdir)
            result["runs"][str(rate)] = windows
            result["load_generator"] = kind
            metrics = result["metrics"]
            for what in ("latency_ms", "first_client_ms", "spread_ms", "read_latency_ms", "read_spread_ms"):
                for q in ("p50", "p95", "p99", "max"):
                    metrics["latency.{}.{}.{}".format(rate, what, q)] = median([w[what][q] for w in windows])
            for what in ("server_cpu_us_per_delivery", "server_cpu_share", "client_cpu_share", "rpc_cpu_share",
                         "events", "pages"):
                metrics["latency.{}.{}".format(rate, what)] = median([w[what] for w in windows])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    returnValue(result)


def describe(result):
    p = result["params"]
    m = result["metrics"]
    rows = []
    for rate in p["rates"]:
        key = "latency.{}.".format(rate)
        rows.append({
            "label": "RPC answer -> client, {} clients x {} ev/s".format(p["clients"], rate),
            "value": m[key + "latency_ms.p99"], "unit": "ms p99",
            "note": "p50 {} / p95 {} ms; first client p50 {} ms; {:.0f} events in {:.0f} pages per window".format(
                _ms(m[key + "latency_ms.p50"]), _ms(m[key + "latency_ms.p95"]), _ms(m[key + "first_client_ms.p50"]),
                m[key + "events"], m[key + "pages"]),
        })
        rows.append({
            "label": "fan-out spread (first->last client), {} clients x {} ev/s".format(p["clients"], rate),
            "value": m[key + "spread_ms.p99"], "unit": "ms p99",
            "note": "p50 {} / p95 {} ms (as read by the load generator: p99 {} ms); server {:.2f} us CPU/delivery "
                    "({:.0%} of a core); clients {:.0%}, RPC server {:.0%}".format(
                        _ms(m[key + "spread_ms.p50"]), _ms(m[key + "spread_ms.p95"]), _ms(m[key + "read_spread_ms.p99"]),
                        m[key + "server_cpu_us_per_delivery"], m[key + "server_cpu_share"],
                        m[key + "client_cpu_share"], m[key + "rpc_cpu_share"]),
        })
    return rows


def _ms(value):
    return "{:.1f}".format(value) if value is not None else "n/a"


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
