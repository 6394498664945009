"""
Tests for L{stellarflow.positions}: TOIDs, event ids and cursors.
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from stellarflow import positions

toids = st.integers(min_value=1, max_value=positions.MAX_TOID - 1)
indexes = st.integers(min_value=0, max_value=positions.MAX_INDEX)


class FormatTests(SynchronousTestCase):
    def test_toid(self):
        """
        SEP-35 packing: ledger in the upper 32 bits, transaction in 20, operation in 12.
        """
        self.assertEqual(positions.toid(12747), 12747 << 32)
        self.assertEqual(positions.toid(1, 2, 3), (1 << 32) + (2 << 12) + 3)
        self.assertEqual(positions.toid(1, positions.TX_MASK, positions.OP_MASK), (2 << 32) - 1)

    def test_eventId(self):
        """
        The getEvents id of a real event (testnet ledger 12747, tx 1, op 0, event 0).
        """
        self.assertEqual(positions.eventId(12747, 1, 0, 0), "0000054747948126208-0000000000")
        self.assertEqual(len(positions.eventId(2**31 - 1, 1, 1, 1)), 30)

    def test_ledgerOf(self):
        self.assertEqual(positions.ledgerOf(positions.eventId(12345, 7, 3, 2)), 12345)
        self.assertEqual(positions.ledgerOf("0000054747948126208-0000000000"), 12747)
        self.assertIsNone(positions.ledgerOf("nope"))
        self.assertIsNone(positions.ledgerOf(None))

    def test_split(self):
        self.assertEqual(positions.split("0000000000000000005-0000000002"), (5, 2))
        self.assertEqual(positions.split("5-2"), (5, 2))  # an old server's unpadded token
        for bad in (None, 5, "", "5", "-5-2", "5-x", "x-5", "5 -2"):
            self.assertIsNone(positions.split(bad), bad)


class ParseTests(SynchronousTestCase):
    def test_valid(self):
        value = positions.eventId(9000, 1, 1, 4)
        self.assertIs(positions.parsePosition(value), value)
        self.assertTrue(positions.isPosition(value))

    def test_boundaries(self):
        """
        The largest TOID and index are accepted; one more is refused.
        """
        top = positions.position(positions.MAX_TOID, positions.MAX_INDEX)
        self.assertEqual(positions.parsePosition(top), top)
        for bad in (
            positions.position(positions.MAX_TOID + 1, 0),
            positions.position(0, positions.MAX_INDEX + 1),
        ):
            e = self.assertRaises(ValueError, positions.parsePosition, bad)
            self.assertIn("out of range", str(e))

    def test_malformed(self):
        for bad in ("0016010972359577600-000000001", "16010972359577600-0000000001", "x" * 30, "", " " + "0" * 29):
            e = self.assertRaises(ValueError, positions.parsePosition, bad)
            self.assertIn("expected 19 digits, '-', 10 digits", str(e))
            self.assertFalse(positions.isPosition(bad))

    def test_notAString(self):
        for bad in (None, 5, ["0"], {"id": 1}):
            e = self.assertRaises(ValueError, positions.parsePosition, bad)
            self.assertIn("must be a string", str(e))
            self.assertFalse(positions.isPosition(bad))

    def test_longValueShortened(self):
        e = self.assertRaises(ValueError, positions.parsePosition, "9" * 5000)
        self.assertLess(len(str(e)), 200)


class NeighbourTests(SynchronousTestCase):
    def test_beforeAfterAcrossAnOperation(self):
        """
        Index 0 and the largest index are where the TOID changes.
        """
        self.assertEqual(positions.before(positions.position(10, 0)), positions.position(9, positions.MAX_INDEX))
        self.assertEqual(positions.after(positions.position(9, positions.MAX_INDEX)), positions.position(10, 0))
        self.assertEqual(positions.before(positions.position(10, 1)), positions.position(10, 0))
        self.assertEqual(positions.after(positions.position(10, 0)), positions.position(10, 1))

    def test_ledgerStartAndEnd(self):
        """
        Every event of a ledger lies after its start and at or before its end; the end of one
        ledger is the start of the next.
        """
        first = positions.eventId(500, 0, 0, 0)
        last = positions.eventId(500, positions.TX_MASK, positions.OP_MASK, positions.MAX_INDEX)
        self.assertLess(positions.ledgerStart(500), first)
        self.assertEqual(positions.after(positions.ledgerStart(500)), first)
        self.assertEqual(positions.ledgerEnd(500), last)
        self.assertEqual(positions.ledgerEnd(499), positions.ledgerStart(500))
        self.assertEqual(positions.ledgerOf(positions.ledgerEnd(500)), 500)

    @given(toids, indexes)
    def test_neighboursInverse(self, toid, index):
        value = positions.position(toid, index)
        self.assertEqual(positions.after(positions.before(value)), value)
        self.assertEqual(positions.before(positions.after(value)), value)
        self.assertLess(positions.before(value), value)
        self.assertLess(value, positions.after(value))

    @given(toids, indexes, toids, indexes)
    def test_stringOrderIsChainOrder(self, t1, i1, t2, i2):
        a, b = positions.position(t1, i1), positions.position(t2, i2)
        self.assertEqual(a < b, (t1, i1) < (t2, i2))
