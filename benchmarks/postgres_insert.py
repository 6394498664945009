"""
Insert rate of SaveToPostgreSQL, in events per second, against a real PostgreSQL.

    .venv/bin/python benchmarks/postgres_insert.py [--events 20000] [--page 100]
        [--batch-size 500] [--in-flight 8] [--dsn "host=127.0.0.1 user=postgres dbname=test"]

Pages of ``--page`` token-transfer messages are fed like a pipeline does (at most
``--in-flight`` unacknowledged) into a fresh schema, dropped afterwards.  The time runs from the
first consume to the last acknowledgement (every row committed).
"""

import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg2  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from stellarflow.batch import Batch  # noqa: E402
from stellarflow.postgres import SaveToPostgreSQL  # noqa: E402


def message(n):
    return {
        "type": "contract_event",
        "id": "%019d-%010d" % (n << 12, 0),
        "ledger": 3727845 + n // 50,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "%064x" % n,
        "contract_id": "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA",
        "operation_index": 0,
        "transaction_index": n % 50,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": [
            "transfer",
            "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN",
            "GBTOACCOUNTXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "native",
        ],
        "data": str(123456789 + n),
        "event_type": "transfer",
        "from": "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN",
        "to": "GBTOACCOUNTXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "account_ids": [
            "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN",
            "GBTOACCOUNTXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        ],
        "asset_code": "XLM",
        "asset_issuer": None,
        "amount": "12.3456789",
        "amount_raw": str(123456789 + n),
        "asset_verified": True,
        "to_muxed_id": None,
    }


@defer.inlineCallbacks
def run(reactor, args):
    schema = "sf_bench_" + uuid.uuid4().hex[:8]
    admin = psycopg2.connect(args.dsn)
    admin.autocommit = True
    consumer = SaveToPostgreSQL(
        reactor, args.dsn, "bench", schema=schema, batch_size=args.batch_size, flush_interval=0.01
    )
    try:
        yield consumer.start()
        yield consumer.load("bench")
        pages = [
            [message(n) for n in range(start, min(args.events, start + args.page))]
            for start in range(0, args.events, args.page)
        ]
        limit = defer.DeferredSemaphore(args.in_flight)
        began = time.perf_counter()
        acks = []
        for page in pages:
            yield limit.acquire()
            d = consumer.consume(Batch(items=page, cursor=page[-1]["id"], messages=page))
            d.addBoth(lambda r: (limit.release(), r)[1])
            acks.append(d)
        yield defer.gatherResults(acks)
        elapsed = time.perf_counter() - began
        with admin.cursor() as cur:
            cur.execute('SELECT count(*) FROM "{}".stellar_events'.format(schema))
            stored = cur.fetchone()[0]
        print(
            "{} events, pages of {}, batch_size {}, {} in flight: {:.2f}s, {:.0f} events/s ({} rows stored)".format(
                args.events, args.page, args.batch_size, args.in_flight, elapsed, args.events / elapsed, stored
            )
        )
    finally:
        yield consumer.stop()
        with admin.cursor() as cur:
            cur.execute('DROP SCHEMA IF EXISTS "{}" CASCADE'.format(schema))
        admin.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument(
        "--dsn", default=os.environ.get("STELLARFLOW_TEST_DSN") or "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )
    args = parser.parse_args()
    task.react(run, (args,))


if __name__ == "__main__":
    main()
