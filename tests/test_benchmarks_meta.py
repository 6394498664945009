"""
Smoke test of L{benchmarks.meta} (the lead wires it into benchmarks/run.py): one repeat gives a
result the suite can tabulate, with the message counts of the two ledgers.  No timing is
asserted.
"""

import json

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from benchmarks import meta


class MetaBenchmarkTests(SynchronousTestCase):
    def test_tinyRun(self):
        result = self.successResultOf(meta.measure(reactor, repeats=1))
        self.assertEqual(result["benchmark"], "meta")
        m = result["metrics"]
        for key, value in m.items():
            self.assertIsInstance(value, (int, float), key)
        self.assertEqual((m["meta.pubnet-53312000.messages"], m["meta.pubnet-53312000.payments_trades"]), (46, 46))
        self.assertEqual((m["meta.mainnet-63800108.messages"], m["meta.mainnet-63800108.payments_trades"]), (359, 146))
        self.assertEqual(m["meta.pubnet-53312000.bytes"], 372480)
        rows = meta.describe(result)
        self.assertEqual(len(rows), 4)
        for row in rows:
            self.assertTrue({"label", "value", "unit", "note"} <= set(row), row)
        json.dumps(result)
