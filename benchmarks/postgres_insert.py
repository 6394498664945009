"""
Insert rate of SaveToPostgreSQL, in events per second, against a real PostgreSQL (one run with
the given settings; the suite's ``benchmarks.postgres`` runs the standard ones with repeats).

    .venv/bin/python benchmarks/postgres_insert.py [--events 20000] [--page 100]
        [--batch-size 500] [--in-flight 8] [--dsn "host=127.0.0.1 user=postgres dbname=test"]

Pages of ``--page`` token-transfer messages are fed like a pipeline does (at most
``--in-flight`` unacknowledged) into a fresh schema, dropped afterwards.  The time runs from the
first consume to the last acknowledgement (every row committed).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402

from benchmarks.postgres import DEFAULTS, insertRun  # noqa: E402


@defer.inlineCallbacks
def run(reactor, args):
    seconds, stored, cpu = yield insertRun(reactor, args.dsn, args.events, args.page, args.batch_size,
                                           args.in_flight)
    print(
        "{} events, pages of {}, batch_size {}, {} in flight: {:.2f}s, {:.0f} events/s ({} rows stored; "
        "{:.0f} us of this process's CPU per event)".format(
            args.events, args.page, args.batch_size, args.in_flight, seconds, args.events / seconds, stored,
            cpu / args.events * 1e6)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--dsn", default=DEFAULTS["dsn"])
    args = parser.parse_args()
    task.react(run, (args,))


if __name__ == "__main__":
    main()
