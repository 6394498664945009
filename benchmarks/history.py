"""
The history endpoint: latency of ``GET /events`` with an account filter over ``stored`` events.

A fresh schema of the real server (``dsn``) is filled with ``stored`` transfer events (rendered
by the consumer's own row code, written with ``COPY`` in chunks, then ``ANALYZE``), each
between one of ``accounts`` senders and a common sink.  Then the daemon's own
``EventsResource`` over its ``EventQuery`` is served on 127.0.0.1 and asked ``requests`` times,
over HTTP, for the first page (``limit``) of a random sender's events, and as often for a page
in the middle of its history (``after`` an id half-way).  Percentiles are of the whole request
as a client sees it.

Without a reachable server the result says ``skipped``.
"""

import io
import os
import random
import time
import uuid

from twisted.internet.defer import inlineCallbacks, returnValue

from benchmarks.common import SINK, account, summarise, transferMessage

DEFAULTS = {
    "stored": 1000000,
    "accounts": 1000,
    "requests": 300,
    "limit": 100,
    "chunk": 50000,
    "dsn": os.environ.get("STELLARFLOW_TEST_DSN") or "host=127.0.0.1 port=5432 user=postgres dbname=test",
}
QUICK = {"stored": 100000, "requests": 100}


def fill(dsn, schema, stored, accounts, chunk):
    """
    Create the tables in C{schema} and store C{stored} events; returns the sender of each event
    index's account (event n is sent by account n % accounts).
    """
    import psycopg2

    from stellarflow.message import seal
    from stellarflow.postgres import rows as rowlib
    from stellarflow.postgres.schema import MIGRATIONS, TableNames

    names = TableNames("stellar_events", schema)
    senders = [account(i, "history") for i in range(accounts)]
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE SCHEMA "{}"'.format(schema))
            for migration in MIGRATIONS:
                for statement in migration.sql(names):
                    cur.execute(statement)
            cur.execute(
                "INSERT INTO {} (pipeline, cursor) VALUES ('bench', %s)".format(names.checkpoints),
                ("%019d-%010d" % ((stored - 1) << 12, 0),),
            )
        conn.commit()
        sql = "COPY {} ({}) FROM STDIN".format(names.events, rowlib.EVENTS.columnList)
        for start in range(0, stored, chunk):
            data = b"".join(
                rowlib.EVENTS.line(seal(transferMessage(n, senders[n % accounts], SINK)))
                for n in range(start, min(stored, start + chunk))
            )
            with conn.cursor() as cur:
                cur.copy_expert(sql, io.BytesIO(data))
            conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in rowlib.TABLES:
                cur.execute("VACUUM ANALYZE {}".format(names.message(table)))
    finally:
        conn.close()
    return names, senders


def drop(dsn, schema):
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute('DROP SCHEMA IF EXISTS "{}" CASCADE'.format(schema))
    finally:
        conn.close()


@inlineCallbacks
def measure(reactor, **params):
    p = dict(DEFAULTS, **params)
    result = {"benchmark": "history", "params": p, "runs": {}, "metrics": {}}
    try:
        import psycopg2

        psycopg2.connect(p["dsn"], connect_timeout=5).close()
    except Exception as e:
        result["skipped"] = "no PostgreSQL at {!r}: {}".format(p["dsn"], str(e).strip().splitlines()[0])
        returnValue(result)

    import treq
    from twisted.web.client import HTTPConnectionPool
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    from stellarflow.postgres.endpoint import EventsResource
    from stellarflow.postgres.query import EventQuery

    schema = "sf_bench_" + uuid.uuid4().hex[:8]
    began = time.perf_counter()
    names, senders = fill(p["dsn"], schema, p["stored"], p["accounts"], p["chunk"])
    result["metrics"]["history.fill_seconds"] = time.perf_counter() - began
    query = EventQuery(reactor, p["dsn"], names, "bench", maxLimit=max(1000, p["limit"]))
    root = Resource()
    root.putChild(b"events", EventsResource({"bench": query}))
    site = Site(root)
    site.noisy = False
    listening = reactor.listenTCP(0, site, interface="127.0.0.1")
    pool = HTTPConnectionPool(reactor, persistent=True)
    url = "http://127.0.0.1:%d/events" % listening.getHost().port
    rng = random.Random(7)
    perAccount = p["stored"] // p["accounts"]
    try:
        for name in ("first_page", "middle_page"):
            latencies, counts = [], []
            for _ in range(p["requests"]):
                i = rng.randrange(p["accounts"])
                params = [("account_ids", senders[i]), ("limit", str(p["limit"]))]
                if name == "middle_page":
                    n = i + (perAccount // 2) * p["accounts"]
                    params.append(("after", "%019d-%010d" % (n << 12, 0)))
                started = time.perf_counter()
                response = yield treq.get(url, params=params, pool=pool)
                body = yield treq.json_content(response)
                latencies.append(time.perf_counter() - started)
                if response.code != 200:
                    raise RuntimeError("GET /events answered {}: {}".format(response.code, body))
                counts.append(len(body["events"]))
            summary = summarise(latencies, 1000.0)
            result["runs"][name] = {"latency_ms": summary, "events_per_page_min": min(counts)}
            for q in ("p50", "p99"):
                result["metrics"]["history.{}.{}_ms".format(name, q)] = summary[q]
    finally:
        yield pool.closeCachedConnections()
        yield listening.stopListening()
        query.close()
        drop(p["dsn"], schema)
    returnValue(result)


def describe(result):
    p = result["params"]
    m = result["metrics"]
    rows = []
    for name, label in (("first_page", "first page"), ("middle_page", "a page half-way through")):
        key = "history.{}.".format(name)
        if key + "p50_ms" not in m:
            continue
        rows.append({
            "label": "GET /events, account filter, {} of {}".format(label, p["limit"]),
            "value": m[key + "p50_ms"], "unit": "ms p50",
            "note": "p99 {:.1f} ms; {:,} stored events, {:,} accounts (~{:,} events each), {} requests over "
                    "HTTP on loopback".format(m[key + "p99_ms"], p["stored"], p["accounts"],
                                               p["stored"] // p["accounts"], p["requests"]),
        })
    return rows


if __name__ == "__main__":
    from benchmarks.run import benchmarkMain

    benchmarkMain(measure)
