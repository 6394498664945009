"""
Memory of the real SaveToWebSocket: RSS per idle registered client, and RSS under a client
that never reads.

This process is the server under test (default settings: heartbeats every 30 s, registration
timeout, ``max_queue_size`` 1000; only ``max_connections`` is raised to fit).  Its RSS is read
from /proc/self/statm.  The clients are L{benchmarks.wsclient} processes.

- idle: after a warm-up (a few clients connect and leave, so that lazy imports and caches are
  paid for), the baseline RSS is taken; then clients connect and register (no filters) in
  steps up to each size in ``clients``; RSS per client = growth / clients.  One process
  measures every size in increasing order without disconnecting, so that memory freed by an
  earlier step cannot hide later growth.  RLIMIT_NOFILE is raised to the hard limit when
  needed (the figure used is in the result).
- stalled: ``readers`` clients that read and one that never does (it registers, then stops
  reading) while ``stall_events`` events go out in pages of 100.  The stalled client's
  transport fills (64 KiB), its backlog grows to ``max_queue_size`` and it is closed (4029);
  RSS is sampled after every page; the readers are let to catch up every 5 pages.

The two parts run in separate processes (L{PARTS}): memory freed by one would be reused by
the other and hide its growth.
"""

import gc
import time

from twisted.internet.defer import inlineCallbacks, returnValue

from benchmarks.children import sleep
from benchmarks.clients import ClientFleet
from benchmarks.common import account, raiseFileLimit, rssBytes, transferMessage

DEFAULTS = {
    "clients": [1000, 10000],
    "stall_events": 20000,
    "stall_queue_sizes": [1000],
    "readers": 10,
    "client": "auto",         # load generator: auto (compiled if possible), c, python
    "stalled_clients": 1,     # 0: the same stream with readers only, for comparison
    "page": 100,
    "repeats": 1,
    "processes": 3,        # separate server processes; the median is reported
}

#: Each part runs in its own process (memory freed by one would hide the growth of the other).
PARTS = [{"part": "idle"}, {"part": "stalled", "stalled_clients": 1}, {"part": "stalled", "stalled_clients": 0}]

QUICK = {"clients": [1000], "stall_events": 5000, "processes": 1}


def makeServer(reactor, clients, max_queue_size=1000):
    from stellarflow.websocket.consumer import SaveToWebSocket

    return SaveToWebSocket(reactor, host="127.0.0.1", port=0, max_queue_size=max_queue_size,
                           max_connections=clients + 100, max_connections_per_ip=clients + 100,
                           connection_burst_per_ip=clients + 100)


@inlineCallbacks
def settle(reactor):
    """Let pending I/O finish and collect garbage before reading RSS."""
    yield sleep(reactor, 0.3)
    gc.collect()
    yield sleep(reactor, 0.1)
    gc.collect()


@inlineCallbacks
def stalled(reactor, p, queueSize):
    """RSS growth while a client that never reads is sent C{stall_events} events."""
    from stellarflow.batch import Batch
    from stellarflow.compat.autobahn import frameBytes

    sender = account(0, "sender")
    messages = [transferMessage(n, sender) for n in range(p["stall_events"])]
    pages = [messages[i:i + p["page"]] for i in range(0, len(messages), p["page"])]
    consumer = makeServer(reactor, p["readers"] + 1, max_queue_size=queueSize)
    yield consumer.start()
    port = consumer.listeningPort.getHost().port
    readers = ClientFleet(reactor, port, p["readers"], filters="all", client=p["client"])
    stall = None
    if p["stalled_clients"]:
        stall = ClientFleet(reactor, port, 1, filters="all", stall=True, client=p["client"])
    try:
        stalledClient = None
        if stall is not None:
            yield stall.start()  # first: the first client the hub knows
            stalledClient = next(iter(consumer.hub.sessions))
        yield readers.start()
        yield readers.mark()
        yield settle(reactor)
        base = rssBytes()
        peak = base
        peakBacklog = 0
        sent = 0
        half = None
        for i, page in enumerate(pages):
            if i == len(pages) // 2:
                half = peak
            consumer.consume(Batch(items=page, messages=page))
            sent += len(page)
            peak = max(peak, rssBytes())
            if stalledClient is not None:
                peakBacklog = max(peakBacklog, stalledClient.held)
            if i % 5 == 4:  # let the readers catch up: only the stalled client falls behind
                reached = yield readers.expect(sent, timeout=60)
                if not reached.get("ok"):
                    break
            peak = max(peak, rssBytes())
        reached = yield readers.expect(len(messages), timeout=60)
        for _ in range(50):  # the stalled client does not answer the close: dropped after 2 s
            if consumer.hub.connected <= p["readers"]:
                break
            yield sleep(reactor, 0.1)
        yield settle(reactor)
        after = rssBytes()
        frame = len(frameBytes(consumer.hub.prepare(_encode(messages[0]))))
        returnValue({
            "max_queue_size": queueSize,
            "events": len(messages),
            "bytes_sent_per_reader": len(messages) * frame,
            "frame_bytes": frame,
            "peak_growth_bytes": peak - base,
            "first_half_peak_growth_bytes": (half if half is not None else peak) - base,
            "growth_after_bytes": after - base,
            "peak_backlog": peakBacklog,
            "closed_queue_full": consumer.hub.counters.closedQueueFull,
            "readers_ok": bool(reached.get("ok")),
        })
    finally:
        yield readers.stop()
        if stall is not None:
            yield stall.stop()
        yield consumer.stop()


def _encode(message):
    from stellarflow.websocket.messages import encode

    return encode(message)


@inlineCallbacks
def idle(reactor, p):
    """RSS per idle registered client at each size in C{clients} (increasing)."""
    sizes = sorted(p["clients"])
    consumer = makeServer(reactor, sizes[-1])
    yield consumer.start()
    port = consumer.listeningPort.getHost().port
    fleets = []
    results = []
    try:
        warm = ClientFleet(reactor, port, 5, filters="all", client=p["client"])
        yield warm.start()
        yield warm.stop()
        for _ in range(50):
            if not consumer.hub.connected:
                break
            yield sleep(reactor, 0.1)
        yield settle(reactor)
        base = rssBytes()
        have = 0
        for size in sizes:
            started = time.time()
            fleet = ClientFleet(reactor, port, size - have, filters="all", client=p["client"])
            fleets.append(fleet)
            yield fleet.start(timeout=300)
            for _ in range(200):
                if consumer.hub.registered >= size:
                    break
                yield sleep(reactor, 0.05)
            have = size
            yield settle(reactor)
            rss = rssBytes()
            results.append({
                "clients": size,
                "registered": consumer.hub.registered,
                "rss_growth_bytes": rss - base,
                "kib_per_client": (rss - base) / size / 1024.0,
                "connect_seconds": time.time() - started,
            })
    finally:
        for fleet in fleets:
            yield fleet.stop()
        yield consumer.stop()
    returnValue((base, results))


@inlineCallbacks
def measure(reactor, **params):
    p = dict(DEFAULTS, **params)
    limits = raiseFileLimit(max(p["clients"]) + 1024)
    result = {"benchmark": "memory", "params": p, "nofile": list(limits), "runs": {}, "metrics": {}}
    metrics = result["metrics"]
    part = p.get("part", "both")
    stalls = []
    for queueSize in (p["stall_queue_sizes"] if part in ("both", "stalled") else ()):
        run = yield stalled(reactor, p, queueSize)
        stalls.append(run)
        key = "memory.{}.{}.".format("stalled" if p["stalled_clients"] else "readers_only", queueSize)
        for name in ("peak_growth_bytes", "first_half_peak_growth_bytes", "growth_after_bytes", "peak_backlog",
                     "closed_queue_full", "frame_bytes", "bytes_sent_per_reader"):
            metrics[key + name] = run[name]
        metrics[key + "peak_growth_per_queued_message"] = run["peak_growth_bytes"] / float(queueSize)
    result["runs"]["stalled"] = stalls
    if part not in ("both", "idle"):
        returnValue(result)
    base, idles = yield idle(reactor, p)
    result["runs"]["idle"] = idles
    metrics["memory.idle.base_rss_bytes"] = base
    for run in idles:
        key = "memory.idle.{}.".format(run["clients"])
        metrics[key + "kib_per_client"] = run["kib_per_client"]
        metrics[key + "rss_growth_bytes"] = run["rss_growth_bytes"]
        metrics[key + "connect_seconds"] = run["connect_seconds"]
    returnValue(result)


def describe(result):
    p = result["params"]
    m = result["metrics"]
    rows = []
    for size in sorted(p["clients"]):
        key = "memory.idle.{}.".format(size)
        if key + "kib_per_client" not in m:
            continue
        rows.append({
            "label": "RSS per idle registered client, {:,} clients".format(size),
            "value": m[key + "kib_per_client"], "unit": "KiB",
            "note": "RSS +{:.1f} MiB over a {:.0f} MiB base; RLIMIT_NOFILE set to {}".format(
                m[key + "rss_growth_bytes"] / 2 ** 20, m["memory.idle.base_rss_bytes"] / 2 ** 20,
                result["nofile"][0]),
        })
    for q in p["stall_queue_sizes"]:
        key = "memory.stalled.{}.".format(q)
        alone = "memory.readers_only.{}.".format(q)
        if key + "peak_growth_bytes" not in m:
            continue
        extra = m[key + "peak_growth_bytes"] - m.get(alone + "peak_growth_bytes", 0)
        rows.append({
            "label": "RSS growth, 1 client never reading + {} readers, max_queue_size {}".format(p["readers"], q),
            "value": m[key + "peak_growth_bytes"] / 2 ** 20, "unit": "MiB peak",
            "note": "{:,} events of {} B ({:.0f} MiB per reader); peak after half of them {:.1f} MiB; readers alone "
                    "{}; the stalled client's backlog peaked at {} and it was closed (4029): {}".format(
                        p["stall_events"], m[key + "frame_bytes"], m[key + "bytes_sent_per_reader"] / 2 ** 20,
                        m[key + "first_half_peak_growth_bytes"] / 2 ** 20,
                        "{:.1f} MiB (so the stalled client cost {:+.1f} MiB)".format(
                            m[alone + "peak_growth_bytes"] / 2 ** 20, extra / 2 ** 20)
                        if alone + "peak_growth_bytes" in m else "not measured",
                        m[key + "peak_backlog"], bool(m[key + "closed_queue_full"])),
        })
    return rows


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
