"""
PostgreSQL: events stored per second by the real SaveToPostgreSQL, with the consumer's default
``batch_size`` and with 1 (one row per INSERT), and (informative) without ``store_message``.

Pages of ``page`` token-transfer messages are fed as a pipeline feeds them (at most
``in_flight`` unacknowledged pages, the pipeline's default ``max_in_flight``) into a fresh
schema of the real server (``dsn``; the database is the separate process doing the work),
dropped afterwards.  The time runs from the first ``consume`` to the last acknowledgement,
i.e. until every row is committed.  ``flush_interval`` is 0.01 s so that the last, partial
batch of a run does not wait the default 0.2 s; everything else is the consumer's default.

Without a reachable server the result says ``skipped`` (the suite goes on).
"""

import inspect
import os
import time
import uuid

from twisted.internet import defer
from twisted.internet.defer import inlineCallbacks, returnValue

from benchmarks.common import SINK, account, median, transferMessage

DEFAULTS = {
    "events": 20000,
    "events_batch_1": 5000,
    "page": 100,
    "in_flight": 8,
    "repeats": 3,
    "dsn": os.environ.get("STELLARFLOW_TEST_DSN") or "host=127.0.0.1 port=5432 user=postgres dbname=test",
}
QUICK = {"events": 5000, "events_batch_1": 1000}


def defaultBatchSize():
    from stellarflow.postgres import SaveToPostgreSQL

    return inspect.signature(SaveToPostgreSQL.__init__).parameters["batch_size"].default


def _options():
    from stellarflow.postgres import SaveToPostgreSQL

    return inspect.signature(SaveToPostgreSQL.__init__).parameters


@inlineCallbacks
def insertRun(reactor, dsn, events, page, batchSize, inFlight, first=0, **options):
    """
    Store C{events} messages in a new schema; returns (seconds, rows stored, CPU seconds of this
    process meanwhile).
    """
    import psycopg2

    from stellarflow.batch import Batch
    from stellarflow.postgres import SaveToPostgreSQL

    schema = "sf_bench_" + uuid.uuid4().hex[:8]
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    consumer = SaveToPostgreSQL(reactor, dsn, "bench", schema=schema, batch_size=batchSize, flush_interval=0.01,
                                **options)
    sender = account(0, "sender")
    try:
        yield consumer.start()
        yield consumer.load("bench")
        messages = [transferMessage(first + n, sender, SINK) for n in range(events)]
        pages = [messages[i:i + page] for i in range(0, len(messages), page)]
        limit = defer.DeferredSemaphore(inFlight)
        acks = []
        began = time.perf_counter()
        cpu = time.process_time()
        for chunk in pages:
            yield limit.acquire()
            d = consumer.consume(Batch(items=chunk, cursor=chunk[-1]["id"], messages=chunk))
            d.addBoth(lambda r: (limit.release(), r)[1])
            acks.append(d)
        yield defer.gatherResults(acks, consumeErrors=True)
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu
        with admin.cursor() as cur:
            cur.execute('SELECT count(*) FROM "{}".stellar_events'.format(schema))
            stored = cur.fetchone()[0]
    finally:
        yield consumer.stop()
        with admin.cursor() as cur:
            cur.execute('DROP SCHEMA IF EXISTS "{}" CASCADE'.format(schema))
        admin.close()
    returnValue((elapsed, stored, cpu))


@inlineCallbacks
def measure(reactor, **params):
    p = dict(DEFAULTS, **params)
    result = {"benchmark": "postgres", "params": p, "runs": {}, "metrics": {}}
    try:
        import psycopg2

        psycopg2.connect(p["dsn"], connect_timeout=5).close()
    except Exception as e:
        result["skipped"] = "no PostgreSQL at {!r}: {}".format(p["dsn"], str(e).strip().splitlines()[0])
        returnValue(result)
    default = defaultBatchSize()
    p["default_batch_size"] = default
    variants = [("default", default, p["events"], {}), ("batch_1", 1, p["events_batch_1"], {})]
    if "store_message" in _options():
        # the whole message kept as text for replays (on by default): what it costs
        variants.append(("no_message", default, p["events"], {"store_message": False}))
    for name, batchSize, events, options in variants:
        runs = []
        for _ in range(p["repeats"]):
            seconds, stored, cpu = yield insertRun(reactor, p["dsn"], events, p["page"], batchSize, p["in_flight"],
                                                   **options)
            if stored != events:
                raise RuntimeError("stored {} rows of {}".format(stored, events))
            runs.append({"events": events, "batch_size": batchSize, "seconds": seconds,
                         "events_per_s": events / seconds, "daemon_cpu_share": cpu / seconds,
                         "daemon_cpu_us_per_event": cpu / events * 1e6})
        result["runs"][name] = runs
        result["metrics"]["postgres.{}.events_per_s".format(name)] = median([r["events_per_s"] for r in runs])
        result["metrics"]["postgres.{}.batch_size".format(name)] = batchSize
        for what in ("daemon_cpu_share", "daemon_cpu_us_per_event"):
            result["metrics"]["postgres.{}.{}".format(name, what)] = median([r[what] for r in runs])
    returnValue(result)


def describe(result):
    p = result["params"]
    m = result["metrics"]
    rows = []
    labels = {
        "default": "PostgreSQL insert, batch_size {} (default)",
        "batch_1": "PostgreSQL insert, batch_size {}",
        "no_message": "PostgreSQL insert, batch_size {}, store_message false",
    }
    for name, label in labels.items():
        key = "postgres.{}.".format(name)
        if key + "events_per_s" not in m:
            continue
        rows.append({
            "label": label.format(int(m[key + "batch_size"])),
            "value": m[key + "events_per_s"], "unit": "events/s",
            "note": "{:,} transfer events in pages of {}, {} pages in flight, until committed; daemon CPU "
                    "{:.0f} us/event ({:.0%} of a core), the rest is PostgreSQL".format(
                        p["events_batch_1"] if name == "batch_1" else p["events"], p["page"], p["in_flight"],
                        m[key + "daemon_cpu_us_per_event"], m[key + "daemon_cpu_share"]),
        })
    return rows


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
