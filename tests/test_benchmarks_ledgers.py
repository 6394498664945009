"""
Smoke test of L{benchmarks.ledgers}: a tiny run gives a result the suite can tabulate, with the
counts it implies.  No timing is asserted.
"""

import json

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from benchmarks import ledgers, run


class LedgersBenchmarkTests(TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def test_tinyRun(self):
        result = yield ledgers.measure(reactor, catchup_ledgers=12, limit=4, workers=1, clients=4, tip_ledgers=1,
                                       tip_close_time=1.0)
        m = result["metrics"]
        for key, value in m.items():
            self.assertIsInstance(value, (int, float), key)
        self.assertEqual(m["ledgers.catchup.all.ledgers"], m["ledgers.catchup.clients.ledgers"])
        self.assertGreater(m["ledgers.catchup.all.messages"], m["ledgers.catchup.contract_event.messages"])
        self.assertEqual(m["ledgers.tip.ledgers"], 1)
        self.assertEqual(m["ledgers.profile.bytes"], 372480)
        rows = ledgers.describe(result)
        self.assertEqual(len(rows), 7)
        goals = {g["metric"]: g for g in run.evaluate(m)}
        self.assertNotEqual(goals["ledgers.catchup.all.ledgers_per_s"]["verdict"], "n/a")
        json.dumps(result)
