"""
The longer fuzz run of the WebSocket server's client-controlled inputs: the properties of
C{tests/test_websocket_fuzz.py} (client messages through the hub with token limits; HTTP
upgrade requests through the real Autobahn protocol with authentication on), with many more
hypothesis examples, for a time budget.  Prints the number of inputs tried and any failure.

    .venv/bin/python -m tools.fuzz_ws [--minutes 10] [--examples 20000]

Each round runs C{--examples} examples of each property with a fresh random seed until the
time is up.  Exits 1 on the first failing input (hypothesis prints it, shrunk).
"""

import argparse
import sys
import time

import txaio
from hypothesis import HealthCheck, given, settings
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests import test_websocket_fuzz as fuzz


class _Case(SynchronousTestCase):
    """
    A test case only for its assertions and C{patch}.
    """

    def runTest(self):  # pragma: no cover - never run
        pass


def run(minutes, examples):
    counts = {"messages": 0, "upgrades": 0}
    logged = []
    globalLogPublisher.addObserver(logged.append)
    case = _Case()
    quick = settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                      suppress_health_check=list(HealthCheck))

    @quick
    @given(fuzz.MESSAGES, fuzz.GRANTS)
    def messages(message, grant):
        counts["messages"] += 1
        try:
            fuzz.checkMessage(case, message[0], message[1], grant)
        finally:
            case._cleanups = []
            del logged[:]

    @quick
    @given(fuzz.upgradeRequests())
    def upgrades(request):
        counts["upgrades"] += 1
        harness = fuzz.UpgradeHarness()
        txaio.config.loop = harness.clock
        fuzz.checkUpgrade(case, harness, request, logged)

    deadline = time.monotonic() + minutes * 60
    rounds = 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        messages()
        upgrades()
        rounds += 1
        print("round {}: {} messages, {} upgrade requests tried ({:.0f} s)".format(
            rounds, counts["messages"], counts["upgrades"], time.monotonic() - started), flush=True)
    print("fuzz_ws: {} inputs without a failure ({} client messages, {} upgrade requests) in {:.1f} min".format(
        counts["messages"] + counts["upgrades"], counts["messages"], counts["upgrades"],
        (time.monotonic() - started) / 60))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--examples", type=int, default=20000, help="hypothesis examples per property per round")
    args = parser.parse_args(argv)
    return run(args.minutes, args.examples)


if __name__ == "__main__":
    sys.exit(main())
