"""
Tests for L{stellarflow.postgres.rows}: messages as event rows and dead-letter rows.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from stellar_sdk import MuxedAccount
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.postgres.rows import (
    COLUMNS,
    EVENTS,
    PAYMENTS,
    TRADES,
    InvalidMessage,
    assetKeys,
    copyLine,
    deadLetterRow,
    escaped,
    tableOf,
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


# -- COPY rows ---------------------------------------------------------------------------------

_text = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.sampled_from(["\\N", "a\tb", "c\nd", "e\\f", 'g"h', "GAFROM", "MAFROM", ""]),
)
_scalar = st.one_of(_text, st.booleans(), st.integers(-(2**70), 2**70))
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def _messages(draw):
    kind = draw(st.sampled_from(["contract_event", "payment", "trade", "other"]))
    table = tableOf({"type": kind})
    message = {"type": kind, "id": draw(st.text(min_size=1, max_size=8).filter(lambda t: "\x00" not in t))}
    for _, sqlType, key in table.columns:
        if key is None or key in message or not draw(st.booleans()):
            continue
        if sqlType == "jsonb":
            message[key] = draw(_json)
        elif sqlType == "text[]":
            message[key] = draw(st.one_of(st.none(), st.lists(_text.filter(lambda t: t is not None), max_size=3)))
        else:
            message[key] = draw(_scalar)
    if draw(st.booleans()):
        message["something_else"] = draw(_json)
    return message


class CopyLineTests(SynchronousTestCase):
    @settings(max_examples=400, deadline=None)
    @given(_messages(), st.booleans())
    def test_lineIsTheReference(self, message, withMessage):
        """
        The fast L{Table.line} writes exactly what the plain L{copyLine} of L{Table.row} writes.
        """
        table = tableOf(message)
        self.assertEqual(table.line(message, withMessage), copyLine(table.row(message, withMessage)).encode("utf-8"))

    def test_nulRefused(self):
        self.assertRaises(ValueError, EVENTS.line, dict(TRANSFER, asset_code="X\x00"))
        self.assertRaises(ValueError, EVENTS.line, dict(TRANSFER, account_ids=["G\x00"]))

    def test_filterColumns(self):
        """
        ``accounts`` holds every address involved, muxed ones as their account; ``assets`` the
        asset's filter keys when verified; ``two_party`` a transfer between two accounts.
        """
        muxed = MuxedAccount(ACCOUNT, 7).account_muxed
        row = byColumn(toRow(dict(TRANSFER, to=muxed, account_ids=["GA", muxed])))
        self.assertEqual(row["accounts"], sorted(["GA", ACCOUNT, "CDLZ"]))
        self.assertEqual(row["assets"], ["XLM"])
        self.assertTrue(row["two_party"])
        row = byColumn(toRow(dict(TRANSFER, to="GA")))
        self.assertFalse(row["two_party"])
        row = byColumn(toRow(dict(TRANSFER, asset_code="USDC", asset_issuer=ACCOUNT, asset_verified=False)))
        self.assertEqual(row["assets"], [])
        row = byColumn(toRow(dict(TRANSFER, asset_code="USDC", asset_issuer=ACCOUNT)))
        self.assertEqual(row["assets"], ["USDC", "USDC:" + ACCOUNT])
        self.assertEqual(assetKeys("XLM", ACCOUNT), ["XLM:" + ACCOUNT])

    def test_typedTables(self):
        self.assertIs(tableOf({"type": "payment"}), PAYMENTS)
        self.assertIs(tableOf({"type": "trade"}), TRADES)
        self.assertIs(tableOf({"type": "contract_event"}), EVENTS)
        self.assertIs(tableOf({"type": ["payment"]}), EVENTS)
        trade = {
            "type": "trade", "id": "t", "seller": "GS", "buyer": muxedOf(ACCOUNT), "liquidity_pool_id": None,
            "sold_asset_code": "USDC", "sold_asset_issuer": ACCOUNT, "bought_asset_code": "XLM",
            "bought_asset_issuer": None, "price": {"n": "1", "d": "2"},
        }
        row = dict(zip([c for c, _, _ in TRADES.columns], TRADES.row(trade), strict=True))
        self.assertEqual(row["accounts"], sorted(["GS", ACCOUNT]))
        self.assertEqual(row["assets"], sorted(["USDC", "USDC:" + ACCOUNT, "XLM"]))
        self.assertEqual(json.loads(row["price"]), {"n": "1", "d": "2"})
        self.assertIsNone(row["extra"])


ACCOUNT = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"


def muxedOf(account, muxedId=9):
    return MuxedAccount(account, muxedId).account_muxed
