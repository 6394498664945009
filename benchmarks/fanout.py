"""
Fan-out: deliveries per second from the real SaveToWebSocket to N loopback clients.

This process is the daemon under test: a real L{SaveToWebSocket} (Autobahn, its
L{Broadcaster}, L{FilterIndex}) fed with pages of token-transfer messages (~960 bytes each)
through ``consume()``, as the pipeline does.  The clients are load-generator processes
(benchmarks/wsclient.c, or L{benchmarks.wsclient}) that only count frames.  Measured:

- burst: pages of 100, one ``consume`` per reactor turn, as fast as the reactor goes; from the
  first ``consume`` until every client has received its last frame.  With every client
  matching (``all``) and with each client filtering on its own account (``account``: each
  event matches one client), for the optimised send path and for the NAIVE BASELINE
  (L{naiveBroadcast}) on the same connections.  ``max_queue_size`` is raised so that no
  client is closed for a backlog that only exists because the burst outruns the sockets.
- steady: a fixed event rate (pages every ``tick`` seconds) with the default
  ``max_queue_size``; server CPU per delivery.
- saturation: the steady rate raised step by step until delivery falls behind (a client
  closed, or the last client getting the last event more than ``lag_limit`` seconds after it
  was due); the highest rate held.

    .venv/bin/python -m benchmarks.fanout '{"clients": [100, 1000]}'   (parameters as JSON)
"""

import functools
import time

from twisted.internet.defer import inlineCallbacks, returnValue
from twisted.internet.task import LoopingCall

from benchmarks.children import sleep
from benchmarks.clients import ClientFleet
from benchmarks.common import account, median, raiseFileLimit, transferMessage

DEFAULTS = {
    "clients": [100, 1000, 5000],       # burst, every client matching
    "filtered_clients": [10, 100, 1000, 5000, 10000],   # burst, one account per client
    "deliveries": 1000000,              # per burst run with every client matching
    "naive_deliveries": 300000,         # the baseline is slower: fewer per run
    "filtered_events": 20000,           # events per filtered burst run
    "naive_checks": 2000000,            # filtered baseline: events x clients checked per run
    "page": 100,
    "repeats": 3,
    "steady_clients": 1000,
    "steady_rate": 100,                 # events/s
    "steady_seconds": 5.0,
    "tick": 0.05,                       # seconds between pages at a steady rate
    "saturation_rates": [100, 225, 340, 420, 500, 600, 750, 900, 1100, 1300, 1600],  # events/s
    "saturation_seconds": 3.0,
    "lag_limit": 0.5,
    "client_processes": 1,
    "client": "auto",                   # load generator: auto (compiled if possible), c, python
}

QUICK = {
    "clients": [100, 1000],
    "filtered_clients": [10, 1000],
    "deliveries": 200000,
    "naive_deliveries": 50000,
    "filtered_events": 5000,
    "steady_seconds": 2.0,
    "saturation_rates": [100, 225, 500],
    "saturation_seconds": 1.5,
}


@functools.lru_cache(maxsize=None)
def _account(i):
    return account(i)


def allMessages(count, start=0):
    """Transfers that every unfiltered client receives (sender: a non-client account)."""
    sender = account(0, "sender")
    return [transferMessage(start + n, sender) for n in range(count)]


def accountMessages(count, clients):
    """Transfers from client C{n % clients}'s account: each matches exactly one client."""
    return [transferMessage(n, _account(n % clients)) for n in range(count)]


def accountCounts(count, clients):
    """Events each client receives from L{accountMessages}."""
    share, extra = divmod(count, clients)
    return [share + (1 if i < extra else 0) for i in range(clients)]


def pages(messages, size):
    return [messages[i:i + size] for i in range(0, len(messages), size)]


# -- the NAIVE BASELINE -------------------------------------------------------------------


def naiveBroadcast(hub, events):
    """
    NAIVE BASELINE, for comparison only (never used by the daemon): for every event, check
    EVERY registered client's filters and, for each match, serialise the event and frame it
    again for that client (Autobahn's ordinary C{sendMessage}).  Event keys are computed once
    per event, as any implementation would.  Same clients and connections as the optimised
    path (L{Broadcaster.broadcast} via C{SaveToWebSocket.consume}).
    """
    from stellarflow.websocket.matching import eventKeys, matches
    from stellarflow.websocket.messages import encode

    sessions = [(session, session.filters) for session in hub.broadcaster.index]
    delivered = 0
    for message in events:
        keys = eventKeys(message)
        for session, filters in sessions:
            if matches(filters, keys):
                session.connection.sendMessage(encode(message), isBinary=False)
                delivered += 1
    hub.counters.delivered += delivered


# -- the server under test ------------------------------------------------------------------


def makeServer(reactor, clients, max_queue_size=1000):
    from stellarflow.websocket.consumer import SaveToWebSocket

    return SaveToWebSocket(
        reactor,
        host="127.0.0.1",
        port=0,
        max_queue_size=max_queue_size,
        ping_interval=0,
        registration_timeout=600,
        max_connections=clients + 100,
        # every client is on 127.0.0.1: the per-address limits are raised to fit
        max_connections_per_ip=clients + 100,
        connection_burst_per_ip=clients + 100,
    )


def _send(reactor, consumer, batches, naive):
    """
    Hand C{batches} to the server one per reactor turn; a Deferred firing with the seconds
    spent inside the send calls once all are handed over.
    """
    from twisted.internet.defer import Deferred

    from stellarflow.batch import Batch

    done = Deferred()
    state = {"inside": 0.0, "next": 0}

    def one():
        page = batches[state["next"]]
        state["next"] += 1
        t = time.perf_counter()
        if naive:
            naiveBroadcast(consumer.hub, page)
        else:
            consumer.consume(Batch(items=page, messages=page))
        state["inside"] += time.perf_counter() - t
        if state["next"] < len(batches):
            reactor.callLater(0, one)
        else:
            done.callback(state["inside"])

    reactor.callLater(0, one)
    return done


@inlineCallbacks
def burst(reactor, consumer, fleet, messages, counts, page, naive):
    """
    One burst: every message, as fast as possible; returns its measurements.
    """
    batches = pages(messages, page)
    deliveries = counts * fleet.count if isinstance(counts, int) else sum(counts)
    marked = yield fleet.mark()
    cpu0 = time.process_time()
    t0 = time.time()
    inside = yield _send(reactor, consumer, batches, naive)
    reached = yield fleet.expect(counts, timeout=120)
    cpu = time.process_time() - cpu0
    if not reached.get("ok"):
        raise RuntimeError("burst not delivered: {}".format(reached))
    wall = reached["t"] - t0
    returnValue({
        "events": len(messages),
        "deliveries": deliveries,
        "seconds": wall,
        "deliveries_per_s": deliveries / wall,
        "server_cpu_s": cpu,
        "server_cpu_us_per_delivery": cpu / deliveries * 1e6,
        "server_cpu_us_per_event": cpu / len(messages) * 1e6,
        "inside_send_us_per_event": inside / len(messages) * 1e6,
        "client_cpu_share": (reached["cpu"] - marked["cpu"]) / wall / fleet.processes,
    })


@inlineCallbacks
def steady(reactor, consumer, fleet, rate, seconds, tick, lag_limit, start=0):
    """
    C{rate} events per second for C{seconds}, a page every C{tick} (sized by the time that
    really passed, so a late tick sends more).  Returns whether it was held, and the cost.
    """
    from stellarflow.batch import Batch

    total = int(rate * seconds)
    messages = allMessages(total, start)
    stats0 = consumer.hub.stats()
    marked = yield fleet.mark()
    state = {"sent": 0, "last": None}
    t0 = time.time()
    cpu0 = time.process_time()

    def tickOnce():
        due = min(total, int(rate * (time.time() - t0)) + 1)
        if due > state["sent"]:
            page = messages[state["sent"]:due]
            state["sent"] = due
            consumer.consume(Batch(items=page, messages=page))
            state["last"] = time.time()
        if state["sent"] >= total:
            loop.stop()

    loop = LoopingCall(tickOnce)
    yield loop.start(tick, now=True)
    reached = yield fleet.expect(total, timeout=max(10.0, seconds * 3))
    cpu = time.process_time() - cpu0
    stats = consumer.hub.stats()
    closed = stats["closed_queue_full"] - stats0["closed_queue_full"]
    deliveries = total * fleet.count
    # behind schedule: when the last client got the last event, compared with when the last
    # event was due (a saturated reactor sends late, or its clients receive late)
    lag = (reached["t"] - t0 - seconds) if reached.get("t") else None
    held = bool(reached.get("ok")) and closed == 0 and lag is not None and lag <= lag_limit
    wall = (reached.get("t") or time.time()) - t0
    returnValue({
        "rate": rate,
        "target_deliveries_per_s": rate * fleet.count,
        "deliveries_per_s": reached.get("received", 0) / wall if wall > 0 else None,
        "held": held,
        "lag_s": lag,
        "closed_queue_full": closed,
        "server_cpu_us_per_delivery": cpu / deliveries * 1e6,
        "server_cpu_share": cpu / wall,
        "client_cpu_share": (reached["cpu"] - marked["cpu"]) / wall / fleet.processes,
    })


# -- the benchmark ------------------------------------------------------------------------


@inlineCallbacks
def measure(reactor, **params):
    """
    Run the fan-out benchmarks; returns a result dict (see L{benchmarks.run}).
    """
    p = dict(DEFAULTS, **params)
    largest = max(p["clients"] + p["filtered_clients"] + [p["steady_clients"]])
    limits = raiseFileLimit(largest + 1024)
    result = {"benchmark": "fanout", "params": p, "nofile": list(limits), "runs": {}, "metrics": {}}
    metrics = result["metrics"]

    sizes = sorted(set(p["clients"]) | set(p["filtered_clients"]))
    for n in sizes:
        consumer = makeServer(reactor, n, max_queue_size=1000000)
        yield consumer.start()
        port = consumer.listeningPort.getHost().port
        fleet = ClientFleet(reactor, port, n, filters="all", processes=p["client_processes"],
                            client=p["client"])
        result["load_generator"] = fleet.kind
        try:
            yield fleet.start()
            for mode in ("all", "account"):
                if n not in (p["clients"] if mode == "all" else p["filtered_clients"]):
                    continue
                if fleet.filters != mode:
                    yield fleet.register(mode)
                for naive in (False, True):
                    if mode == "all":
                        events = max(1, (p["naive_deliveries"] if naive else p["deliveries"]) // n)
                        messages = allMessages(events)
                        counts = events
                    else:
                        events = p["filtered_events"]
                        if naive:  # (events x clients) checks: bounded, enough for a per-event cost
                            events = max(100, min(events, p["naive_checks"] // n))
                        messages = accountMessages(events, n)
                        counts = accountCounts(events, n)
                    runs = []
                    for _ in range(p["repeats"]):
                        runs.append((yield burst(reactor, consumer, fleet, messages, counts, p["page"], naive)))
                    key = "fanout.{}.{}.{}".format(mode, "naive" if naive else "optimised", n)
                    result["runs"][key] = runs
                    summary = {name: median([r[name] for r in runs]) for name in runs[0]}
                    for name, value in summary.items():
                        metrics["{}.{}".format(key, name)] = value
        finally:
            yield fleet.stop()
            yield consumer.stop()

    if len(p["filtered_clients"]) > 1:
        small, large = min(p["filtered_clients"]), max(p["filtered_clients"])
        for what in ("server_cpu_us_per_event", "inside_send_us_per_event"):
            metrics["fanout.account.ratio.{}.{}.{}".format(large, small, what)] = (
                metrics["fanout.account.optimised.{}.{}".format(large, what)]
                / metrics["fanout.account.optimised.{}.{}".format(small, what)])

    # steady rate and saturation, every client matching, default max_queue_size
    n = p["steady_clients"]
    consumer = makeServer(reactor, n)
    yield consumer.start()
    fleet = ClientFleet(reactor, consumer.listeningPort.getHost().port, n, filters="all",
                        processes=p["client_processes"], client=p["client"])
    result["load_generator"] = fleet.kind
    try:
        yield fleet.start()
        start = 0
        runs = []
        for _ in range(p["repeats"]):
            runs.append((yield steady(reactor, consumer, fleet, p["steady_rate"], p["steady_seconds"], p["tick"],
                                      p["lag_limit"], start)))
            start += int(p["steady_rate"] * p["steady_seconds"])
            yield sleep(reactor, 0.2)
        result["runs"]["fanout.steady"] = runs
        for name in ("server_cpu_us_per_delivery", "server_cpu_share", "client_cpu_share", "deliveries_per_s"):
            metrics["fanout.steady.{}".format(name)] = median([r[name] for r in runs])
        metrics["fanout.steady.held"] = all(r["held"] for r in runs)
        steps = []
        best = None
        for rate in p["saturation_rates"]:
            step = yield steady(reactor, consumer, fleet, rate, p["saturation_seconds"], p["tick"], p["lag_limit"],
                                start)
            start += int(rate * p["saturation_seconds"])
            steps.append(step)
            if not step["held"]:
                break
            best = step
            yield sleep(reactor, 0.2)
        result["runs"]["fanout.saturation"] = steps
        metrics["fanout.saturation.rate"] = best["rate"] if best else 0
        metrics["fanout.saturation.deliveries_per_s"] = best["target_deliveries_per_s"] if best else 0
        metrics["fanout.saturation.server_cpu_share"] = best["server_cpu_share"] if best else None
        result["saturation_failed"] = steps[-1] if steps and not steps[-1]["held"] else None
    finally:
        yield fleet.stop()
        yield consumer.stop()
    returnValue(result)


def describe(result):
    """The table rows of a fan-out result."""
    p = result["params"]
    metrics = result["metrics"]
    rows = []

    def m(*parts):
        return metrics[".".join(["fanout"] + [str(x) for x in parts])]

    for n in p["clients"]:
        opt, naive = m("all", "optimised", n, "deliveries_per_s"), m("all", "naive", n, "deliveries_per_s")
        rows.append({
            "label": "burst, all match, {} clients".format(n),
            "value": opt, "unit": "deliveries/s",
            "note": "naive {:,.0f}/s ({:.1f}x slower); server CPU {:.2f} us/delivery (naive {:.2f}); "
                    "client CPU {:.0%}".format(
                        naive, opt / naive, m("all", "optimised", n, "server_cpu_us_per_delivery"),
                        m("all", "naive", n, "server_cpu_us_per_delivery"),
                        m("all", "optimised", n, "client_cpu_share")),
        })
    for n in p["filtered_clients"]:
        opt, naive = m("account", "optimised", n, "server_cpu_us_per_event"), m("account", "naive", n,
                                                                                 "server_cpu_us_per_event")
        rows.append({
            "label": "burst, own-account filter, {} clients".format(n),
            "value": opt, "unit": "us server CPU/event",
            "note": "naive {:,.1f} us ({:.1f}x); inside consume() {:.1f} us/event; {:,.0f} events/s".format(
                naive, naive / opt, m("account", "optimised", n, "inside_send_us_per_event"),
                m("account", "optimised", n, "events") / m("account", "optimised", n, "seconds")),
        })
    if "fanout.steady.server_cpu_us_per_delivery" in metrics:
        rows.append({
            "label": "steady {} ev/s x {} clients".format(p["steady_rate"], p["steady_clients"]),
            "value": m("steady", "server_cpu_us_per_delivery"), "unit": "us server CPU/delivery",
            "note": "server CPU {:.0%} of a core, clients {:.0%}; held: {}".format(
                m("steady", "server_cpu_share"), m("steady", "client_cpu_share"), m("steady", "held")),
        })
    if "fanout.saturation.deliveries_per_s" in metrics:
        failed = result.get("saturation_failed")
        share = metrics.get("fanout.saturation.server_cpu_share")
        rows.append({
            "label": "saturation, all match, {} clients".format(p["steady_clients"]),
            "value": m("saturation", "deliveries_per_s"), "unit": "deliveries/s held",
            "note": "{} ev/s held{}; {}".format(
                m("saturation", "rate"), " (server CPU {:.0%})".format(share) if share is not None else "",
                "{} ev/s failed: lag {:.2f} s, {} closed, server CPU {:.0%}, clients {:.0%}".format(
                    failed["rate"], failed["lag_s"] if failed["lag_s"] is not None else float("nan"),
                    failed["closed_queue_full"], failed["server_cpu_share"], failed["client_cpu_share"])
                if failed else "the highest step held (raise saturation_rates)"),
        })
    return rows


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
