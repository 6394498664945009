"""
Tests for L{stellarflow.websocket.filters}: parsing and validating a client's filters.
"""

from decimal import Decimal

import attr
from hypothesis import given, settings
from stellar_sdk import Keypair
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.websocket.filters import (
    KNOWN_TYPES,
    MAX_LIST_ENTRIES,
    NATIVE,
    Filters,
    availableTypes,
    parseFilters,
)
from tests.filterhelpers import B1, C1, G1, G2, G3, L1, M1, USDC_ISSUER, filterObjects, parseError


class ParseFiltersTests(SynchronousTestCase):
    """parseFilters validates and normalises the register message's filters."""

    def test_missingNullAndEmptyMeanNoFiltering(self):
        empty = {"types": [], "account_ids": [], "asset_codes": [], "min_amount": ""}
        nulls = {"types": None, "account_ids": None, "asset_codes": None, "min_amount": None}
        for obj in (None, {}, empty, nulls):
            f = parseFilters(obj)
            self.assertEqual(f, Filters())
            self.assertTrue(f.isEmpty)
            self.assertEqual(f.toJSON(), empty)

    def test_toJsonIsSortedDeduplicatedAndNormalised(self):
        f = parseFilters({
            "types": ["transfer", "payment", "transfer", "trade"],
            "account_ids": [G2, M1, G1, C1],
            "asset_codes": ["native", "USDC:" + USDC_ISSUER, "USDC", "XLM"],
            "min_amount": "100.00",
        })
        self.assertFalse(f.isEmpty)
        self.assertEqual(f.toJSON(), {
            "types": ["payment", "trade", "transfer"],
            "account_ids": sorted([G1, G2, C1]),
            "asset_codes": ["USDC", "USDC:" + USDC_ISSUER, "XLM"],
            "min_amount": "100",
        })
        self.assertEqual(parseFilters(f.toJSON()), f)

    def test_accountKinds(self):
        f = parseFilters({"account_ids": [G1, M1, C1, B1, L1]})
        self.assertEqual(f.account_ids, frozenset([G1, C1, B1, L1]))

    def test_muxedNormalisedToAccount(self):
        self.assertEqual(parseFilters({"account_ids": [M1]}).account_ids, frozenset([G1]))

    def test_assets(self):
        f = parseFilters({"asset_codes": ["native", "usdc", "USDC", "XLM:" + G3, "A"]})
        self.assertEqual(f.asset_codes, frozenset(
            [NATIVE, ("usdc", None), ("USDC", None), ("XLM", G3), ("A", None)]))

    def test_unknownTypesKeptAndReported(self):
        f = parseFilters({"types": ["trade", "payment", "Transfer", "swap"]})
        self.assertEqual(f.types, frozenset(["trade", "payment", "Transfer", "swap"]))
        self.assertEqual(f.unknownTypes, ("Transfer", "swap"))
        self.assertEqual(parseFilters({"types": ["mint"]}).unknownTypes, ())

    def test_availableTypes(self):
        tokens = {"transfer", "mint", "burn", "clawback", "approve", "set_admin", "set_authorized", "fee"}
        self.assertEqual(availableTypes(None), KNOWN_TYPES)
        self.assertEqual(availableTypes(frozenset(["contract_event"])),
                         frozenset(tokens | {"contract_event", "payment"}))
        self.assertEqual(availableTypes(frozenset(["payment", "trade"])), frozenset(["payment", "trade"]))
        self.assertEqual(availableTypes(frozenset(["trade"])), frozenset(["trade"]))
        self.assertEqual(availableTypes(frozenset(["payment", "trade", "contract_event"])), KNOWN_TYPES)
        self.assertEqual(availableTypes(frozenset(["something_else"])), frozenset())

    def test_minAmountNormalised(self):
        cases = [
            ("100.00", "100"), ("1e2", "100"), ("1E+2", "100"), ("0", "0"), ("-0", "0"),
            ("0.0000001", "0.0000001"), (".5", "0.5"), ("7.", "7"), ("+3", "3"),
            ("1.000000000000000000000000000000001", "1.000000000000000000000000000000001"),
            ("170141183460469231731687303715884105727",
             "170141183460469231731687303715884105727"),
            (100, "100"), (100.5, "100.5"), (0, "0"), (1e-7, "0.0000001"),
        ]
        for givenValue, expected in cases:
            f = parseFilters({"min_amount": givenValue})
            self.assertEqual(f.toJSON()["min_amount"], expected, givenValue)
            self.assertEqual(f.min_amount, Decimal(expected))
            self.assertEqual(parseFilters(f.toJSON()), f)

    def test_immutableAndHashable(self):
        a = parseFilters({"types": ["mint"], "account_ids": [G1], "min_amount": "1"})
        b = parseFilters({"types": ["mint"], "account_ids": [M1], "min_amount": "1.0"})
        self.assertEqual(a, b)
        self.assertEqual(len({a, b}), 1)
        self.assertRaises(attr.exceptions.FrozenInstanceError, setattr, a, "types", frozenset())

    def test_listLimitIsInclusive(self):
        f = parseFilters({"types": ["t%d" % i for i in range(MAX_LIST_ENTRIES)]})
        self.assertEqual(len(f.types), MAX_LIST_ENTRIES)

    @settings(max_examples=100, deadline=None)
    @given(filterObjects)
    def test_toJsonRoundTrips(self, obj):
        """
        The normalised filters echoed in the reply parse back to the same filters.
        """
        f = parseFilters(obj)
        self.assertEqual(parseFilters(f.toJSON()), f)
        self.assertEqual(f.toJSON(), parseFilters(f.toJSON()).toJSON())


class FilterErrorTests(SynchronousTestCase):
    """Every rejection carries its code and names the bad value."""

    def assertError(self, obj, code, *named):
        e = parseError(obj)
        self.assertIsInstance(e, ValueError)
        self.assertEqual(e.code, code, e.message)
        self.assertEqual(str(e), e.message)
        for text in named:
            self.assertIn(text, e.message)
        return e

    def test_notAnObject(self):
        for obj, kind in (([], "array"), ("x", "string"), (5, "number"), (True, "boolean")):
            e = self.assertError(obj, "invalid_filters", kind)
            self.assertIsNone(e.field)

    def test_unknownFieldSuggestsClosest(self):
        for name, hint in (("type", "types"), ("typess", "types"),
                           ("accountIds", "account_ids"), ("account_id", "account_ids"),
                           ("assets", "asset_codes"), ("minAmount", "min_amount"),
                           ("amount", "min_amount")):
            e = self.assertError({name: []}, "unknown_filter_field", repr(name), repr(hint))
            self.assertEqual(e.field, name)

    def test_unknownFieldWithoutCloseMatchListsFields(self):
        self.assertError({"zzz": 1}, "unknown_filter_field", "'zzz'",
                         "types, account_ids, asset_codes, min_amount")

    def test_wrongJsonTypes(self):
        self.assertError({"types": "payment"}, "invalid_field_type", "filters.types", "string")
        self.assertError({"account_ids": {"a": 1}}, "invalid_field_type",
                         "filters.account_ids", "object")
        self.assertError({"asset_codes": "USDC"}, "invalid_field_type", "filters.asset_codes")
        self.assertError({"asset_codes": ["USDC", 7, None]}, "invalid_field_type",
                         "[1] 7 (number)", "[2] None (null)")
        self.assertError({"min_amount": [1]}, "invalid_field_type", "filters.min_amount",
                         "array")
        self.assertError({"min_amount": False}, "invalid_field_type", "boolean")

    def test_tooManyEntries(self):
        for name in ("types", "account_ids", "asset_codes"):
            e = self.assertError({name: [G1] * (MAX_LIST_ENTRIES + 1)}, "too_many_entries",
                                 "filters." + name, str(MAX_LIST_ENTRIES + 1),
                                 str(MAX_LIST_ENTRIES))
            self.assertEqual(e.field, name)

    def test_invalidTypeNames(self):
        self.assertError({"types": ["ok", ""]}, "invalid_type", "''")
        self.assertError({"types": ["x" * 65]}, "invalid_type", "'xxxx")
        self.assertError({"types": ["a\nb"]}, "invalid_type", "'a\\nb'")

    def test_invalidAccountIdsAllNamed(self):
        badChecksum = G1[:-1] + ("A" if G1[-1] != "A" else "B")
        secret = Keypair.from_raw_ed25519_seed(bytes(32)).secret
        bads = [G1.lower(), badChecksum, "GABC", " " + G2, "XYZ", "", "Gé"]
        e = self.assertError({"account_ids": [G3] + bads}, "invalid_account_id",
                             *[repr(b) for b in bads])
        self.assertNotIn(G3, e.message)
        self.assertEqual(e.field, "account_ids")
        # a secret seed is not an address (and its text is echoed only as given)
        self.assertError({"account_ids": [secret]}, "invalid_account_id")

    def test_invalidAssetCodesAllNamed(self):
        bads = ["", "TOOLONGASSET1", "US-D", "USDC:", "USDC:GBAD", "USDC:" + M1,
                "USDC:" + C1, "native:" + G1, "US DC", "USDC:%s:x" % USDC_ISSUER]
        self.assertError({"asset_codes": ["USDC"] + bads}, "invalid_asset_code",
                         *[repr(b) for b in bads])

    def test_invalidMinAmount(self):
        for value in ("abc", "NaN", "nan", "Infinity", "-Infinity", "1_000", " 1", "1,5",
                      "0x10", "١٠٠", float("nan"), float("inf")):
            self.assertError({"min_amount": value}, "invalid_min_amount", repr(value)[:10])
        self.assertError({"min_amount": "-1"}, "invalid_min_amount", "'-1'", "negative")
        self.assertError({"min_amount": -0.5}, "invalid_min_amount", "-0.5", "negative")
        for value in ("1e99", "1e-99", "1e99999999999999999999999999", "0." + "0" * 90 + "1"):
            self.assertError({"min_amount": value}, "invalid_min_amount", "out of range")
        self.assertError({"min_amount": "1" * 300}, "invalid_min_amount", "longer than")

    def test_severalErrorsReportedTogether(self):
        e = self.assertError(
            {"typo": 1, "account_ids": ["nope"], "asset_codes": ["$$"], "min_amount": "x"},
            "unknown_filter_field", "'typo'", "'nope'", "'$$'", "'x'")
        self.assertEqual([sub.code for sub in e.errors], [
            "unknown_filter_field", "invalid_account_id", "invalid_asset_code",
            "invalid_min_amount"])
        self.assertEqual(e.toJSON(), {"code": "unknown_filter_field", "message": e.message,
                                       "field": "typo"})

    def test_longBadValuesAreCutShort(self):
        e = self.assertError({"account_ids": ["G" * 10000]}, "invalid_account_id")
        self.assertLess(len(e.message), 400)
