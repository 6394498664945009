"""
Ingest: getEvents pages turned into event messages per second, base64 XDR vs ``xdrFormat: json``.

The pages come from the Stellar RPC test server (L{benchmarks.rpcload}, a separate process):
``pages`` consecutive full pages of ``limit`` events of its synthetic traffic (SAC transfers,
fees, mints... and non-token events, in the server's default proportions) among ``accounts``
distinct accounts (many: the decoder caches recurring topics and strkeys, and real traffic
does not come from 5 accounts), exactly the bytes it would send over HTTP.  Every repeat and
format gets pages of other ledgers, so that no cache is warmed by an earlier run.  This
process then runs, for each page, what the daemon runs:

- parse: ``json.loads`` of the body and ``parseEventsPage`` (the RPC client's work);
- decode: ``GetEventsRPC().process(page.events)`` (the processor's work: XDR / xdr-json to
  JSON messages, token events recognised and their assets verified).

Reported per format: decode events/s and parse + decode events/s (medians over ``repeats``).
"""

import gc
import json
import time

from twisted.internet.defer import inlineCallbacks, returnValue

from benchmarks.children import spawn
from benchmarks.common import median

DEFAULTS = {"limit": 1000, "pages": 10, "repeats": 3, "formats": ["base64", "json"], "accounts": 100000,
            "events_per_ledger": 100}
QUICK = {"limit": 500, "pages": 4}


def decodeRun(bodies, passphrase):
    """Parse and decode every body once; returns (events, parse seconds, decode seconds)."""
    from stellarflow.events.processor import GetEventsRPC
    from stellarflow.rpc.pages import parseEventsPage

    processor = GetEventsRPC(passphrase)
    events = parseSeconds = decodeSeconds = 0
    failed = 0
    # Start from a collected heap: a full collection owed to earlier work (the bodies just
    # received, the previous format's messages) would otherwise land in whichever timed
    # region happens to trip it, and one costs more than decoding a page of 500 events.
    gc.collect()
    for body in bodies:
        t0 = time.perf_counter()
        page = parseEventsPage(json.loads(body)["result"])
        t1 = time.perf_counter()
        messages = processor.process(page.events)
        t2 = time.perf_counter()
        parseSeconds += t1 - t0
        decodeSeconds += t2 - t1
        events += len(messages)
        failed += sum(1 for m in messages if "decode_error" in m)
    return events, parseSeconds, decodeSeconds, failed


@inlineCallbacks
def measure(reactor, **params):
    p = dict(DEFAULTS, **params)
    result = {"benchmark": "ingest", "params": p, "runs": {}, "metrics": {}}
    rpc = spawn(reactor, "benchmarks.rpcload", ["--events-per-ledger", p["events_per_ledger"], "--accounts",
                                                  p["accounts"], "--history", 100000], name="rpcload")
    ledgersPerRun = p["limit"] * p["pages"] // p["events_per_ledger"] + 2
    skip = 0
    try:
        yield rpc.next(60)
        for fmt in p["formats"]:
            runs = []
            for repeat in range(p["repeats"] + 1):
                answer = yield rpc.request(wait=300, cmd="pages", limit=p["limit"], format=fmt, pages=p["pages"],
                                           skip=skip)
                skip += ledgersPerRun
                bodies = answer["bodies"]
                if repeat == 0:
                    decodeRun(bodies[:2], "testnet")  # warm-up: imports, code paths
                    continue
                events, parse, decode, failed = decodeRun(bodies, "testnet")
                runs.append({
                    "events": events,
                    "bytes_per_event": sum(len(b) for b in bodies) / float(events),
                    "parse_seconds": parse,
                    "decode_seconds": decode,
                    "decode_events_per_s": events / decode,
                    "ingest_events_per_s": events / (parse + decode),
                    "decode_us_per_event": decode / events * 1e6,
                    "decode_errors": failed,
                })
            result["runs"][fmt] = runs
            for name in runs[0]:
                result["metrics"]["ingest.{}.{}".format(fmt, name)] = median([r[name] for r in runs])
    finally:
        yield rpc.stop()
    returnValue(result)


def describe(result):
    m = result["metrics"]
    rows = []
    for fmt in result["params"]["formats"]:
        key = "ingest.{}.".format(fmt)
        rows.append({
            "label": "decode getEvents pages, {}".format("base64 XDR" if fmt == "base64" else "xdrFormat json"),
            "value": m[key + "decode_events_per_s"], "unit": "events/s",
            "note": "{:.0f} us/event; with JSON parsing of the page {:,.0f} events/s; {:,.0f} events of {:.0f} B "
                    "(pages of {}), {} decode errors".format(
                        m[key + "decode_us_per_event"], m[key + "ingest_events_per_s"], m[key + "events"],
                        m[key + "bytes_per_event"], result["params"]["limit"], m[key + "decode_errors"]),
        })
    return rows


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
