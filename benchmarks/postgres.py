"""
PostgreSQL: events stored per second by the real SaveToPostgreSQL, with the consumer's default
``batch_size`` and with 1, against the ceiling: a raw ``COPY ... FROM STDIN`` of the same rows
into the same table and indexes, measured in the same run.

Pages of ``page`` token-transfer messages, sealed as the pipeline seals them, are fed as a
pipeline feeds them (at most ``in_flight`` unacknowledged pages, the pipeline's default
``max_in_flight``) into a fresh schema of the real server (``dsn``; the database is the separate
process doing the work), dropped afterwards.  The time runs from the first ``consume`` to the
last acknowledgement, i.e. until every row is committed.  ``flush_interval`` is 0.01 s so that
the last, partial batch of a run does not wait the default 0.2 s; everything else is the
consumer's default.  The daemon's CPU (this process, user + system) per stored event is
reported: the rest of the work is PostgreSQL's.

The ceiling: the same rows, rendered beforehand (not timed), sent by one blocking ``COPY`` in
one transaction into a fresh schema with the same tables and indexes; nothing a daemon could do
stores them faster.  Ceiling and default runs alternate (the machine is shared: each ratio
compares neighbours), and the reported ratio is the median of the per-pair ratios.  One pair of
``warmup`` events is run first and not counted: the first run in a process paid for imports,
the first connection and PostgreSQL's cold caches (it was the slowest of every run, by up to 2x).

``mix`` repeats the default run with a pubnet-like mix (contract events, payments and trades:
the typed tables), against its own ceiling.

Without a reachable server the result says ``skipped`` (the suite goes on).
"""

import inspect
import os
import time
import uuid

from twisted.internet import defer
from twisted.internet.defer import inlineCallbacks, returnValue

from benchmarks.common import SINK, account, median, paymentMessage, tradeMessage, transferMessage

DEFAULTS = {
    "events": 20000,
    "events_batch_1": 5000,
    "warmup": 5000,
    "page": 100,
    "in_flight": 8,
    "repeats": 3,
    "dsn": os.environ.get("STELLARFLOW_TEST_DSN") or "host=127.0.0.1 port=5432 user=postgres dbname=test",
}
QUICK = {"events": 5000, "events_batch_1": 1000, "warmup": 500}

#: In the mix, of every 10 messages: 6 contract events, 2 payments, 2 trades.
MIX = ("event",) * 6 + ("payment",) * 2 + ("trade",) * 2


def benchMessages(events, first=0, mix=False):
    """
    C{events} messages, sealed (as the pipeline hands them to consumers).
    """
    from stellarflow.message import seal

    sender = account(0, "sender")
    messages = []
    for n in range(first, first + events):
        kind = MIX[n % len(MIX)] if mix else "event"
        if kind == "payment":
            messages.append(paymentMessage(n, account(n % 997, "payer"), SINK))
        elif kind == "trade":
            messages.append(tradeMessage(n, account(n % 997, "seller"), sender))
        else:
            messages.append(transferMessage(n, account(n % 997, "sender") if mix else sender, SINK))
    return [seal(m) for m in messages]


def copyRun(dsn, messages):
    """
    The ceiling: C{messages} rendered first (not timed), then one C{COPY} per table in one
    transaction into a fresh schema with the consumer's tables and indexes; returns (seconds,
    rows stored).
    """
    import io

    import psycopg2

    from stellarflow.postgres import rows as rowlib
    from stellarflow.postgres.schema import MIGRATIONS, TableNames

    schema = "sf_bench_" + uuid.uuid4().hex[:8]
    names = TableNames("stellar_events", schema)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE SCHEMA "{}"'.format(schema))
            for migration in MIGRATIONS:
                for statement in migration.sql(names):
                    cur.execute(statement)
        conn.commit()
        data = {}
        for m in messages:
            table = rowlib.tableOf(m)
            data.setdefault(table, []).append(table.line(m))
        began = time.perf_counter()
        with conn.cursor() as cur:
            for table, lines in data.items():
                cur.copy_expert(
                    "COPY {} ({}) FROM STDIN".format(names.message(table), table.columnList), io.BytesIO(b"".join(lines))
                )
        conn.commit()
        elapsed = time.perf_counter() - began
        with conn.cursor() as cur:
            cur.execute(
                " + ".join('(SELECT count(*) FROM {})'.format(names.message(t)) for t in rowlib.TABLES).join(
                    ["SELECT ", ""])
            )
            stored = cur.fetchone()[0]
    finally:
        with conn.cursor() as cur:
            cur.execute('DROP SCHEMA IF EXISTS "{}" CASCADE'.format(schema))
        conn.commit()
        conn.close()
    return elapsed, stored


def defaultBatchSize():
    from stellarflow.postgres import SaveToPostgreSQL

    return inspect.signature(SaveToPostgreSQL.__init__).parameters["batch_size"].default


@inlineCallbacks
def insertRun(reactor, dsn, events, page, batchSize, inFlight, first=0, mix=False, messages=None, **options):
    """
    Store C{events} messages (or C{messages}) in a new schema; returns (seconds, rows stored,
    CPU seconds of this process meanwhile).
    """
    import psycopg2

    from stellarflow.batch import Batch
    from stellarflow.postgres import SaveToPostgreSQL

    schema = "sf_bench_" + uuid.uuid4().hex[:8]
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    consumer = SaveToPostgreSQL(reactor, dsn, "bench", schema=schema, batch_size=batchSize, flush_interval=0.01,
                                **options)
    if messages is None:
        messages = benchMessages(events, first, mix)
    try:
        yield consumer.start()
        yield consumer.load("bench")
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
            cur.execute(
                "SELECT (SELECT count(*) FROM {s}.stellar_events) + (SELECT count(*) FROM {s}.stellar_events_payments)"
                " + (SELECT count(*) FROM {s}.stellar_events_trades)".format(s='"{}"'.format(schema))
            )
            stored = cur.fetchone()[0]
    finally:
        yield consumer.stop()
        with admin.cursor() as cur:
            cur.execute('DROP SCHEMA IF EXISTS "{}" CASCADE'.format(schema))
        admin.close()
    returnValue((elapsed, stored, cpu))


def _run(events, batchSize, seconds, stored, cpu):
    if stored != events:
        raise RuntimeError("stored {} rows of {}".format(stored, events))
    return {"events": events, "batch_size": batchSize, "seconds": seconds, "events_per_s": events / seconds,
            "daemon_cpu_share": cpu / seconds, "daemon_cpu_us_per_event": cpu / events * 1e6}


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
    metrics, runs = result["metrics"], result["runs"]
    if p["warmup"]:
        warm = benchMessages(p["warmup"], mix=True)
        copyRun(p["dsn"], warm)
        yield insertRun(reactor, p["dsn"], 0, p["page"], default, p["in_flight"], messages=warm)
    for name, mix in (("default", False), ("mix", True)):
        messages = benchMessages(p["events"], mix=mix)
        ceiling, stored, ratios = [], [], []
        for _ in range(p["repeats"]):
            seconds, count = copyRun(p["dsn"], messages)
            ceiling.append(_run(len(messages), None, seconds, count, 0.0))
            seconds, count, cpu = yield insertRun(reactor, p["dsn"], 0, p["page"], default, p["in_flight"],
                                                  messages=messages)
            stored.append(_run(len(messages), default, seconds, count, cpu))
            ratios.append(stored[-1]["events_per_s"] / ceiling[-1]["events_per_s"])
        prefix = "postgres." + name + "."
        runs[name], runs[name + "_copy"] = stored, ceiling
        metrics[prefix + "events_per_s"] = median([r["events_per_s"] for r in stored])
        metrics[prefix + "copy_events_per_s"] = median([r["events_per_s"] for r in ceiling])
        metrics[prefix + "ratio_to_copy"] = median(ratios)
        metrics[prefix + "batch_size"] = default
        for what in ("daemon_cpu_share", "daemon_cpu_us_per_event"):
            metrics[prefix + what] = median([r[what] for r in stored])
    batch1 = []
    for _ in range(p["repeats"]):
        seconds, count, cpu = yield insertRun(reactor, p["dsn"], p["events_batch_1"], p["page"], 1, p["in_flight"])
        batch1.append(_run(p["events_batch_1"], 1, seconds, count, cpu))
    runs["batch_1"] = batch1
    metrics["postgres.batch_1.events_per_s"] = median([r["events_per_s"] for r in batch1])
    metrics["postgres.batch_1.batch_size"] = 1
    for what in ("daemon_cpu_share", "daemon_cpu_us_per_event"):
        metrics["postgres.batch_1." + what] = median([r[what] for r in batch1])
    metrics["postgres.batch_1.ratio_to_copy"] = (
        metrics["postgres.batch_1.events_per_s"] / metrics["postgres.default.copy_events_per_s"])
    returnValue(result)


def describe(result):
    p = result["params"]
    m = result["metrics"]
    rows = []
    for name, label, count in (
        ("default", "PostgreSQL insert, batch_size {} (default), transfer events", p["events"]),
        ("mix", "PostgreSQL insert, batch_size {} (default), 6:2:2 events:payments:trades", p["events"]),
        ("batch_1", "PostgreSQL insert, batch_size {}, transfer events", p["events_batch_1"]),
    ):
        key = "postgres.{}.".format(name)
        if key + "events_per_s" not in m:
            continue
        ceiling = m.get(key + "copy_events_per_s") or m.get("postgres.default.copy_events_per_s")
        rows.append({
            "label": label.format(int(m[key + "batch_size"])),
            "value": m[key + "events_per_s"], "unit": "events/s",
            "note": "{:,} events in pages of {}, {} pages in flight, until committed; {:.2f} of a raw COPY of the "
                    "same rows ({:,.0f} events/s); daemon CPU {:.0f} us/event ({:.0%} of a core)".format(
                        count, p["page"], p["in_flight"], m[key + "ratio_to_copy"], ceiling,
                        m[key + "daemon_cpu_us_per_event"], m[key + "daemon_cpu_share"]),
        })
    return rows


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
