"""
Ledgers: whole pubnet-size ledgers from getLedgers to messages (and to WebSocket clients),
decoded in worker processes.

This process runs the daemon's own pieces: ``RPCSourceAdapter`` with ``rpc_method: getLedgers``
(L{stellarflow.ledgers.source}), a L{Pipeline}, ``GetLedgersRPC`` with its worker pool
(``workers`` processes) and a consumer; the RPC test server serving pubnet-size ledgers runs
in another process (L{benchmarks.ledgerload}: pubnet 53312000 and mainnet 63800108's recorded
transactions in turn, ~320 KB of XDR each), and so do the WebSocket clients.

- catch-up: ``catchup_ledgers`` ledgers behind the tip, whole source to messages (a counting
  consumer), ledgers per second from the first batch to the last (the workers' start-up is
  not counted): with every message type, and with contract events only (no payment or trade
  extraction);
- catch-up with clients: the same with ``SaveToWebSocket`` and ``clients`` WebSocket clients
  connected (each filtering on an account of its own, so the figure is the daemon's, not the
  fan-out's), and the reactor's lag: a timer every 10 ms, its lateness, p99;
- tip: ledgers closing every ``tip_close_time`` seconds, ``clients`` clients matching
  everything; for each ledger, from its getLedgers answer (the moment the source had the
  response, in this process) to the moment the last client had the ledger's last message
  (the kernel's receive timestamp in the load generator), p50/p99 over ``tip_ledgers``
  ledgers;
- decode profile: one pubnet ledger decoded in this process, with the garbage collector as a
  worker runs it and as by default, and the share of the decode spent on ledger entry changes
  (the state each operation left: accounts, trust lines, offers), which extraction barely
  reads.

    .venv/bin/python -m benchmarks.ledgers '{"catchup_ledgers": 150}'
"""

import cProfile
import gc
import pstats
import sys
import time

from twisted.internet.defer import inlineCallbacks, returnValue, succeed

from benchmarks.children import sleep, spawn
from benchmarks.clients import ClientFleet
from benchmarks.common import cpuSeconds, median, percentile, raiseFileLimit

DEFAULTS = {
    "catchup_ledgers": 150,
    "limit": 6,
    "workers": 2,
    "clients": 1000,
    "tip_ledgers": 12,
    "tip_close_time": 3.0,
    "repeats": 1,
    "client": "auto",
    "cores": 2,
    "timeout": 1200,
}
QUICK = {"catchup_ledgers": 40, "tip_ledgers": 4, "clients": 200}
EVERYTHING = ["payment", "trade", "contract_event"]


class Counting:
    """A consumer that counts messages and notes when each batch arrived."""

    def __init__(self):
        self.messages = 0
        self.batches = []

    def start(self):
        return succeed(None)

    def consume(self, batch):
        self.messages += len(batch.messages)
        self.batches.append((time.perf_counter(), batch))
        return succeed(None)

    def stop(self):
        return succeed(None)


class LagProbe:
    """A timer every C{interval} seconds; how late each call ran; and the garbage collector's
    pauses meanwhile (the longest, by generation)."""

    def __init__(self, reactor, interval=0.01):
        self.reactor = reactor
        self.interval = interval
        self.lags = []
        self.call = None
        self.gcPauses = {0: 0.0, 1: 0.0, 2: 0.0}
        self._gcStart = None

    def _gc(self, phase, info):
        if phase == "start":
            self._gcStart = time.perf_counter()
        elif self._gcStart is not None:
            generation = info["generation"]
            self.gcPauses[generation] = max(self.gcPauses[generation], time.perf_counter() - self._gcStart)

    def start(self):
        gc.callbacks.append(self._gc)
        self._schedule()

    def _schedule(self):
        self.due = time.perf_counter() + self.interval
        self.call = self.reactor.callLater(self.interval, self._tick)

    def _tick(self):
        self.lags.append(max(0.0, time.perf_counter() - self.due))
        self._schedule()

    def stop(self):
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        if self.call is not None and self.call.active():
            self.call.cancel()


def _pipeline(reactor, rpcPort, consumer, start, emit, p, pollInterval=5.0):
    from stellarflow.checkpoint import NullCheckpointStore
    from stellarflow.ledgers.processor import CONFIG_SCHEMA as PROCESSOR
    from stellarflow.ledgers.processor import GetLedgersRPC
    from stellarflow.pipeline import ComponentContext, Pipeline
    from stellarflow.rpc.config import CONFIG_SCHEMA
    from stellarflow.rpc.source import RPCSourceAdapter

    config, problems = CONFIG_SCHEMA.validate({
        "rpc_url": "http://127.0.0.1:{}/".format(rpcPort), "rpc_method": "getLedgers", "network": "mainnet",
        "start_ledger": start, "poll_interval": pollInterval, "pagination": {"limit": p["limit"]}})
    assert not problems, problems
    context = ComponentContext(reactor=reactor, pipeline="bench", network="mainnet")
    source = RPCSourceAdapter.fromConfig(config, context)
    processor = GetLedgersRPC.fromConfig(PROCESSOR.validate({"emit": emit, "workers": p["workers"]})[0], context)
    pipeline = Pipeline("bench", source, [processor], [("c", consumer)], NullCheckpointStore(), reactor,
                        maxInFlight=4)
    return pipeline, source, processor


@inlineCallbacks
def _waitFor(reactor, condition, timeout):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise RuntimeError("timed out")
        yield sleep(reactor, 0.02)


@inlineCallbacks
def catchUp(reactor, p, emit, clients=False):
    """Ledgers per second catching up; with clients, the reactor lag too."""
    count = p["catchup_ledgers"]
    server = spawn(reactor, "benchmarks.ledgerload", ["--history", count + 40], name="ledgerload")
    fleet = pipeline = probe = None
    try:
        listening = yield server.next(120)
        if clients:
            from stellarflow.pipeline import ComponentContext
            from stellarflow.websocket.consumer import SaveToWebSocket

            config, _ = SaveToWebSocket.configSchema.validate({"host": "127.0.0.1", "port": 0,
                                                               "max_connections": p["clients"] + 100,
                                                               "max_connections_per_ip": p["clients"] + 100,
                                                               "connection_burst_per_ip": p["clients"] + 100})
            consumer = SaveToWebSocket.fromConfig(config, ComponentContext(reactor=reactor, pipeline="bench"))
            counted = Counting()
            original = consumer.consume

            def consume(batch):
                counted.consume(batch)
                return original(batch)

            consumer.consume = consume
        else:
            consumer = counted = Counting()
        pipeline, source, processor = _pipeline(reactor, listening["port"], consumer, listening["first"], emit, p)
        if clients:
            yield consumer.start()
            consumer.start = lambda: succeed(None)
            fleet = ClientFleet(reactor, consumer.listeningPort.getHost().port, p["clients"], filters="account",
                                client=p["client"])
            yield fleet.start()
        pipeline.startService()
        yield _waitFor(reactor, lambda: counted.batches, 120)
        t0 = counted.batches[0][0]
        first = counted.batches[0][1]
        done0 = first.items[-1].sequence
        if clients:
            probe = LagProbe(reactor)
            probe.start()
        cpu0 = time.process_time()
        workers0 = {w.pid: cpuSeconds(w.pid) for w in processor.pool.workers}
        server0 = cpuSeconds(server.pid)
        target = listening["first"] + count - 1
        yield _waitFor(reactor, lambda: source.last is not None and source.last >= target and
                       counted.batches[-1][1].items[-1].sequence >= target, 600)
        t1 = counted.batches[-1][0]
        cpu = time.process_time() - cpu0
        workerCpu = sum(cpuSeconds(pid) - before for pid, before in workers0.items())
        serverCpu = cpuSeconds(server.pid) - server0
        ledgers = target - done0
        perLedger = (workerCpu + cpu) / ledgers
        out = {"ledgers_per_s": ledgers / (t1 - t0), "ledgers": ledgers, "messages": counted.messages,
               "parent_cpu_share": cpu / (t1 - t0), "worker_cpu_ms_per_ledger": workerCpu / ledgers * 1e3,
               "parent_cpu_ms_per_ledger": cpu / ledgers * 1e3, "server_cpu_ms_per_ledger": serverCpu / ledgers * 1e3,
               "capacity_ledgers_per_s": p["cores"] / perLedger}
        if probe is not None:
            probe.stop()
            lags = sorted(probe.lags)
            out.update({"lag_ms_p50": percentile(lags, 50) * 1e3, "lag_ms_p99": percentile(lags, 99) * 1e3,
                        "lag_ms_max": lags[-1] * 1e3, "lag_samples": len(lags),
                        "gc_pause_ms_max_gen2": probe.gcPauses[2] * 1e3,
                        "gc_pause_ms_max_gen01": max(probe.gcPauses[0], probe.gcPauses[1]) * 1e3})
        returnValue(out)
    finally:
        if probe is not None:
            probe.stop()
        if fleet is not None:
            yield fleet.stop()
        if pipeline is not None and pipeline.running:
            yield pipeline.stopService()
        yield server.stop()


@inlineCallbacks
def atTheTip(reactor, p):
    """From each ledger's getLedgers answer to the last client having its messages."""
    from stellarflow.pipeline import ComponentContext
    from stellarflow.websocket.consumer import SaveToWebSocket

    server = spawn(reactor, "benchmarks.ledgerload", ["--history", 2, "--ledger-close-time", p["tip_close_time"]],
                   name="ledgerload")
    fleet = pipeline = None
    try:
        listening = yield server.next(120)
        config, _ = SaveToWebSocket.configSchema.validate({"host": "127.0.0.1", "port": 0,
                                                           "max_connections": p["clients"] + 100,
                                                           "max_connections_per_ip": p["clients"] + 100,
                                                           "connection_burst_per_ip": p["clients"] + 100,
                                                           "max_queue_size": 100000})
        consumer = SaveToWebSocket.fromConfig(config, ComponentContext(reactor=reactor, pipeline="bench"))
        yield consumer.start()
        consumer.start = lambda: succeed(None)
        fleet = ClientFleet(reactor, consumer.listeningPort.getHost().port, p["clients"], filters="all",
                            timestamps=True, client=p["client"])
        yield fleet.start()
        pipeline, source, processor = _pipeline(reactor, listening["port"], consumer, listening["latest"],
                                                EVERYTHING, p, pollInterval=0.1)
        answered = {}
        counts = {}
        getLedgers = source.client.getLedgers

        def timed(params):
            def got(page):
                now = time.time()
                for item in page.ledgers:
                    answered.setdefault(item.sequence, now)
                return page
            return getLedgers(params).addCallback(got)

        source.client.getLedgers = timed
        original = consumer.consume

        def consume(batch):
            for item in batch.items:
                counts[item.sequence] = sum(1 for m in batch.messages if m["ledger"] == item.sequence)
            return original(batch)

        consumer.consume = consume
        pipeline.startService()
        yield _waitFor(reactor, lambda: source.last is not None, 120)
        base = yield fleet.mark()
        received = base.get("received", 0) if isinstance(base, dict) else 0
        start = source.last + 1
        latencies = []
        total = 0
        for ledger in range(start, start + p["tip_ledgers"]):
            yield _waitFor(reactor, lambda ledger=ledger: ledger in counts, p["tip_close_time"] * 4 + 60)
            total += counts[ledger]
            reached = yield fleet.expect(total, timeout=60)
            if not reached.get("ok"):
                raise RuntimeError("ledger {} not delivered: {}".format(ledger, reached))
            latencies.append((reached["t"] - answered[ledger], counts[ledger]))
        ordered = sorted(x for x, _ in latencies)
        returnValue({"latency_ms_p50": percentile(ordered, 50) * 1e3, "latency_ms_p99": percentile(ordered, 99) * 1e3,
                     "latency_ms_max": ordered[-1] * 1e3, "ledgers": len(latencies),
                     "messages_per_ledger": median([n for _, n in latencies]), "base_received": received})
    finally:
        if fleet is not None:
            yield fleet.stop()
        if pipeline is not None and pipeline.running:
            yield pipeline.stopService()
        yield server.stop()


def decodeProfile():
    """Where one pubnet ledger's decode time goes."""
    from stellar_sdk import xdr

    from stellarflow.events.network import PUBLIC
    from stellarflow.meta import ledgerMessages
    from stellarflow.testing.ledgerfiles import fixtureLedgers

    (lcm,) = fixtureLedgers("galexie-pubnet-53312000.xdr.zstd")
    raw = lcm.to_xdr_bytes()

    def timed(repeats, tuned):
        gc.collect()
        thresholds = gc.get_threshold()
        if tuned:
            gc.freeze()
            gc.set_threshold(50000, 20, 20)
        out = []
        try:
            for _ in range(repeats):
                t0 = time.perf_counter()
                decoded = xdr.LedgerCloseMeta.from_xdr_bytes(raw)
                t1 = time.perf_counter()
                ledgerMessages(decoded, PUBLIC)
                t2 = time.perf_counter()
                ledgerMessages(decoded, PUBLIC, emit=("contract_event",))
                t3 = time.perf_counter()
                out.append((t1 - t0, t2 - t1, t3 - t2))
                del decoded
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        return [median([r[i] for r in out]) * 1e3 for i in range(3)]

    from stellarflow.ledgers import lazy

    default = timed(5, False)
    tuned = timed(5, True)
    lazy.install()
    try:
        lazily = timed(5, True)
    finally:
        lazy.uninstall()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(3):
        xdr.LedgerCloseMeta.from_xdr_bytes(raw)
    profile.disable()
    stats = pstats.Stats(profile).stats
    total = sum(v[2] for v in stats.values())
    changes = sum(v[3] for k, v in stats.items() if k[2] == "unpack" and k[0].endswith("ledger_entry_changes.py"))
    primitives = sum(v[2] for k, v in stats.items() if "xdrlib3" in k[0] or k[2] in ("unpack", "from_xdr_bytes")
                     and "stellar_sdk/xdr/" in k[0] and k[0].rsplit("/", 1)[-1] in (
                         "uint32.py", "int64.py", "int32.py", "uint64.py", "hash.py", "uint256.py"))
    return {"decode_ms_default_gc": default[0], "decode_ms_worker_gc": tuned[0], "extract_ms": tuned[1],
            "decode_ms_lazy": lazily[0], "extract_ms_lazy": lazily[1],
            "extract_contract_events_only_ms": tuned[2], "entry_changes_share": changes / total,
            "xdr_primitives_share": primitives / total, "bytes": len(raw)}


@inlineCallbacks
def measure(reactor, **params):
    p = dict(DEFAULTS, **params)
    p.pop("timeout", None)
    raiseFileLimit(p["clients"] + 1024)
    result = {"benchmark": "ledgers", "params": p, "metrics": {}, "runs": {}}
    m = result["metrics"]
    m.update({"ledgers.profile." + k: v for k, v in decodeProfile().items()})
    runs = []
    for _ in range(p["repeats"]):
        everything = yield catchUp(reactor, p, EVERYTHING)
        events = yield catchUp(reactor, p, ["contract_event"])
        withClients = yield catchUp(reactor, p, EVERYTHING, clients=True)
        tip = yield atTheTip(reactor, p)
        runs.append({"all": everything, "contract_event": events, "clients": withClients, "tip": tip})
    result["runs"]["catchup"] = runs
    for name in ("all", "contract_event", "clients"):
        for key in runs[0][name]:
            m["ledgers.catchup.{}.{}".format(name, key)] = median([r[name][key] for r in runs])
    for key in runs[0]["tip"]:
        m["ledgers.tip.{}".format(key)] = median([r["tip"][key] for r in runs])
    returnValue(result)


def describe(result):
    m = result["metrics"]
    p = result["params"]
    rows = [
        {"label": "getLedgers catch-up, payments + trades + contract events", "unit": "ledgers/s",
         "value": m["ledgers.catchup.all.ledgers_per_s"],
         "note": "{:.0f} pubnet-size ledgers, {} workers, limit {}; parent at {:.0%} of a core".format(
             m["ledgers.catchup.all.ledgers"], p["workers"], p["limit"], m["ledgers.catchup.all.parent_cpu_share"])},
        {"label": "catch-up capacity from CPU time, {} cores".format(p["cores"]), "unit": "ledgers/s",
         "value": m["ledgers.catchup.all.capacity_ledgers_per_s"],
         "note": "{} cores / CPU per ledger: workers {:.0f} ms + daemon {:.1f} ms (independent of other load on "
                 "the machine; the RPC test server, which shares the cores here, used {:.1f} ms more)".format(
                     p["cores"], m["ledgers.catchup.all.worker_cpu_ms_per_ledger"],
                     m["ledgers.catchup.all.parent_cpu_ms_per_ledger"], m["ledgers.catchup.all.server_cpu_ms_per_ledger"])},
        {"label": "getLedgers catch-up, contract events only", "unit": "ledgers/s",
         "value": m["ledgers.catchup.contract_event.ledgers_per_s"],
         "note": "no payment or trade extraction; capacity {:.1f} ledgers/s (workers {:.0f} ms per ledger)".format(
             m["ledgers.catchup.contract_event.capacity_ledgers_per_s"],
             m["ledgers.catchup.contract_event.worker_cpu_ms_per_ledger"])},
        {"label": "catch-up with {} WebSocket clients".format(p["clients"]), "unit": "ledgers/s",
         "value": m["ledgers.catchup.clients.ledgers_per_s"],
         "note": "reactor lag p99 {:.1f} ms (p50 {:.1f}, max {:.1f}; a 10 ms timer); longest GC pause {:.0f} ms "
                 "(young generations {:.1f} ms)".format(
             m["ledgers.catchup.clients.lag_ms_p99"], m["ledgers.catchup.clients.lag_ms_p50"],
             m["ledgers.catchup.clients.lag_ms_max"], m["ledgers.catchup.clients.gc_pause_ms_max_gen2"],
             m["ledgers.catchup.clients.gc_pause_ms_max_gen01"])},
        {"label": "reactor lag while catching up, {} clients".format(p["clients"]), "unit": "ms p99",
         "value": m["ledgers.catchup.clients.lag_ms_p99"], "note": ""},
        {"label": "tip: getLedgers answer -> last of {} clients".format(p["clients"]), "unit": "ms p99",
         "value": m["ledgers.tip.latency_ms_p99"],
         "note": "p50 {:.0f} ms over {:.0f} ledgers of ~{:.0f} messages, every client matching everything".format(
             m["ledgers.tip.latency_ms_p50"], m["ledgers.tip.ledgers"], m["ledgers.tip.messages_per_ledger"])},
        {"label": "decode + extract one pubnet ledger, as a worker does", "unit": "ms",
         "value": m["ledgers.profile.decode_ms_lazy"] + m["ledgers.profile.extract_ms_lazy"],
         "note": "lazy entry changes: decode {:.0f} + extract {:.0f} ms; all decoded: {:.0f} + {:.0f} ms with the "
                 "worker's GC, {:.0f} ms decode with the default GC; {:.0%} of a full decode is ledger entry "
                 "changes; extract contract events only {:.1f} ms".format(
                     m["ledgers.profile.decode_ms_lazy"], m["ledgers.profile.extract_ms_lazy"],
                     m["ledgers.profile.decode_ms_worker_gc"], m["ledgers.profile.extract_ms"],
                     m["ledgers.profile.decode_ms_default_gc"], m["ledgers.profile.entry_changes_share"],
                     m["ledgers.profile.extract_contract_events_only_ms"])},
    ]
    return rows


def _measureAndShow(reactor, **params):
    def show(result):
        for row in describe(result):
            sys.stderr.write("{:<60} {:>9.1f} {}  ({})\n".format(row["label"], row["value"], row["unit"], row["note"]))
        return result

    return measure(reactor, **params).addCallback(show)


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(_measureAndShow)
