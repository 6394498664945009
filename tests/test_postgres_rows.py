"""
Tests for L{stellarflow.postgres.rows}: messages as event rows and dead-letter rows.
"""

import json

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.postgres.rows import (
    COLUMNS,
    InvalidMessage,
    deadLetterRow,
    escaped,
    toRow,
)

TRANSFER = {
    "type": "contract_event",
    "id": "0016010972359577600-0000000001",
    "ledger": 3727845,
    "ledger_closed_at": "2026-07-21T18:01:10Z",
    "transaction_hash": "a5c9",
    "contract_id": "CDLZ",
    "operation_index": 0,
    "transaction_index": 5,
    "in_successful_contract_call": True,
    "event_kind": "contract",
    "topics": ["transfer", "GA", "GB", "native"],
    "data": "123456789",
    "event_type": "transfer",
    "from": "GA",
    "to": "GB",
    "account_ids": ["GA", "GB"],
    "asset_code": "XLM",
    "asset_issuer": None,
    "amount": "12.3456789",
    "amount_raw": "123456789",
    "asset_verified": True,
    "to_muxed_id": None,
}


def byColumn(row):
    return dict(zip([c for c, _, _ in COLUMNS], row, strict=True))


class ToRowTests(SynchronousTestCase):
    def test_transfer(self):
        row = byColumn(toRow(TRANSFER))
        self.assertEqual(row["id"], TRANSFER["id"])
        self.assertEqual(row["from_account"], "GA")
        self.assertEqual(row["to_account"], "GB")
        self.assertEqual(row["amount"], "12.3456789")
        self.assertEqual(json.loads(row["topics"]), TRANSFER["topics"])
        self.assertEqual(json.loads(row["data"]), "123456789")
        self.assertEqual(row["account_ids"], ["GA", "GB"])
        self.assertIsNone(row["extra"])
        self.assertIsNone(row["decode_error"])

    def test_extraKeysKept(self):
        """
        Keys without a column (raw XDR of undecodable events) go to ``extra``.
        """
        message = dict(TRANSFER, decode_error="bad xdr", topics_xdr=["AAAA"], data_xdr="AAAB")
        row = byColumn(toRow(message))
        self.assertEqual(json.loads(row["extra"]), {"topics_xdr": ["AAAA"], "data_xdr": "AAAB"})
        self.assertEqual(row["decode_error"], "bad xdr")

    def test_nullJson(self):
        row = byColumn(toRow(dict(TRANSFER, data=None)))
        self.assertIsNone(row["data"])

    def test_missingKeysAreNull(self):
        row = byColumn(toRow({"id": "x", "type": "contract_event"}))
        self.assertIsNone(row["ledger"])
        self.assertIsNone(row["account_ids"])

    def test_noId(self):
        self.assertRaises(InvalidMessage, toRow, dict(TRANSFER, id=None))
        self.assertRaises(InvalidMessage, toRow, dict(TRANSFER, id=""))
        self.assertRaises(InvalidMessage, toRow, ["not", "a", "dict"])

    def test_nanRefused(self):
        self.assertRaises(ValueError, toRow, dict(TRANSFER, data=float("nan")))


class DeadLetterTests(SynchronousTestCase):
    def test_escapesNul(self):
        key, pipeline, error, text = deadLetterRow(dict(TRANSFER, id="a\x00b", data="x\x00y"), "bad\x00", "p")
        for value in (key, pipeline, error, text):
            self.assertNotIn("\x00", value)
            value.encode("ascii")
        self.assertEqual(key, "a\\u0000b")
        self.assertEqual(json.loads(text)["data"], "x\x00y")

    def test_noIdGetsStableKey(self):
        first = deadLetterRow({"data": 1}, "no id", "p")[0]
        self.assertTrue(first.startswith("invalid:"))
        self.assertEqual(first, deadLetterRow({"data": 1}, "other error", "p")[0])
        self.assertNotEqual(first, deadLetterRow({"data": 2}, "no id", "p")[0])

    def test_unserialisable(self):
        text = deadLetterRow({"id": "x", "data": object()}, "e", "p")[3]
        self.assertIn("object", json.loads(text)["data"])

    def test_escaped(self):
        self.assertEqual(escaped("é\n\x00"), "\\u00e9\\n\\u0000")
        self.assertEqual(escaped(None), "None")
