"""
Meta: milliseconds per ledger to decode a whole ledger and to derive its messages.

- decode: C{xdr.LedgerCloseMeta.from_xdr_bytes} of the ledger's XDR (stellar-sdk's pure-Python
  XDR; what a worker does with a getLedgers ``metadataXdr`` or a data-lake object once
  decompressed);
- extract: L{stellarflow.meta.ledgerMessages} on the decoded ledger, with every message type,
  and with payments and trades only (no contract event decoding).

The ledgers are real (``tests/fixtures/ledgers``): pubnet 53312000 (protocol 21, 163
transactions, meta v3, no CAP-67 events) and mainnet 63800108's 50 recorded transactions
assembled into a ledger (protocol 27, meta v4 with CAP-67 events: 213 contract events).  Each
repeat decodes the ledger's bytes afresh (no object is reused across repeats; the strkey caches
of L{stellarflow.meta.values} and of the event decoder stay warm after the first repeat, as in a
long-running worker).  Figures are medians over ``repeats``; the first, warm-up run is not
counted.

    .venv/bin/python -m benchmarks.meta '{"repeats": 7}'
"""

import gc
import sys
import time

from twisted.internet import defer

from benchmarks.common import median

DEFAULTS = {"repeats": 7, "ledgers": ["pubnet-53312000", "mainnet-63800108"]}
QUICK = {"repeats": 2}


def _pubnet():
    from stellarflow.events.network import PUBLIC
    from stellarflow.testing.ledgerfiles import fixtureLedgers

    (lcm,) = fixtureLedgers("galexie-pubnet-53312000.xdr.zstd")
    return lcm.to_xdr_bytes(), PUBLIC


def _corpus():
    from stellarflow.events.network import PUBLIC
    from stellarflow.testing.ledgerfiles import corpusLedger

    return corpusLedger().to_xdr_bytes(), PUBLIC


#: name -> a function returning (LedgerCloseMeta XDR bytes, network passphrase).
LEDGERS = {"pubnet-53312000": _pubnet, "mainnet-63800108": _corpus}


def runOnce(raw, passphrase):
    """Decode C{raw} and extract its messages twice; (seconds for each step, message counts)."""
    from stellar_sdk import xdr

    from stellarflow.meta import ledgerMessages

    gc.collect()
    t0 = time.perf_counter()
    lcm = xdr.LedgerCloseMeta.from_xdr_bytes(raw)
    t1 = time.perf_counter()
    everything = ledgerMessages(lcm, passphrase)
    t2 = time.perf_counter()
    classic = ledgerMessages(lcm, passphrase, emit=("payment", "trade"))
    t3 = time.perf_counter()
    return (t1 - t0, t2 - t1, t3 - t2), (len(everything), len(classic))


def measureLedger(raw, passphrase, repeats):
    runOnce(raw, passphrase)  # warm-up: imports, caches
    runs = []
    for _ in range(repeats):
        (decode, extract, extractClassic), (messages, classic) = runOnce(raw, passphrase)
        runs.append({
            "decode_ms": decode * 1e3,
            "extract_ms": extract * 1e3,
            "extract_payments_trades_ms": extractClassic * 1e3,
            "messages": messages,
            "payments_trades": classic,
            "bytes": len(raw),
        })
    return runs


def measure(reactor, **params):
    p = dict(DEFAULTS, **params)
    result = {"benchmark": "meta", "params": p, "runs": {}, "metrics": {}}
    for name in p["ledgers"]:
        raw, passphrase = LEDGERS[name]()
        runs = measureLedger(raw, passphrase, p["repeats"])
        result["runs"][name] = runs
        for key in runs[0]:
            result["metrics"]["meta.{}.{}".format(name, key)] = median([r[key] for r in runs])
    return defer.succeed(result)


def describe(result):
    m = result["metrics"]
    rows = []
    for name in result["params"]["ledgers"]:
        key = "meta.{}.".format(name)
        rows.append({
            "label": "decode one ledger, {}".format(name),
            "value": m[key + "decode_ms"], "unit": "ms",
            "note": "xdr.LedgerCloseMeta.from_xdr_bytes of {:,.0f} bytes".format(m[key + "bytes"]),
        })
        rows.append({
            "label": "extract its messages, {}".format(name),
            "value": m[key + "extract_ms"], "unit": "ms",
            "note": "ledgerMessages: {:.0f} messages; payments and trades only ({:.0f}): {:.1f} ms".format(
                m[key + "messages"], m[key + "payments_trades"], m[key + "extract_payments_trades_ms"]),
        })
    return rows


def _measureAndShow(reactor, **params):
    def show(result):
        for row in describe(result):
            sys.stderr.write("{:<45} {:>8.1f} {}  ({})\n".format(row["label"], row["value"], row["unit"], row["note"]))
        return result

    return measure(reactor, **params).addCallback(show)


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(_measureAndShow)
