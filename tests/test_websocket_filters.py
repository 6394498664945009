"""Tests for stellarflow.websocket.filters: parsing, event keys, matching rules, the index."""

import dataclasses
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from stellar_sdk import Keypair, MuxedAccount, StrKey
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.websocket import filters as filters_module
from stellarflow.websocket.filters import (
    MAX_LIST_ENTRIES,
    NATIVE,
    EventKeys,
    FilterError,
    FilterIndex,
    Filters,
    event_keys,
    matches,
    parse_filters,
)


def _account(i):
    return Keypair.from_raw_ed25519_seed(bytes([i + 1]) * 32).public_key


G1, G2, G3, G4 = (_account(i) for i in range(4))
M1 = MuxedAccount(G1, 7).account_muxed
M1B = MuxedAccount(G1, 8).account_muxed
C1 = StrKey.encode_contract(bytes([9]) * 32)
C2 = StrKey.encode_contract(bytes([10]) * 32)
B1 = StrKey.encode_claimable_balance(bytes(1) + bytes([3]) * 32)
L1 = StrKey.encode_liquidity_pool(bytes([4]) * 32)
USDC_ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
USDC_SAC = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
NATIVE_SAC = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA"


def token_event(event_type="transfer", frm=G1, to=G2, code="USDC", issuer=USDC_ISSUER,
                amount="150", verified=True, contract=USDC_SAC, account_ids=None):
    """A decoded token event message as the GetEventsRPC processor emits it."""
    if account_ids is None:
        account_ids = [a for a in (frm, to) if a]
    return {
        "type": "contract_event",
        "id": "0016010972359577600-0000000001",
        "ledger": 3727845,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "a5c9" * 16,
        "contract_id": contract,
        "operation_index": 0,
        "transaction_index": 5,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": [event_type],
        "data": amount,
        "event_type": event_type,
        "from": frm,
        "to": to,
        "account_ids": account_ids,
        "asset_code": code,
        "asset_issuer": issuer,
        "amount": amount,
        "amount_raw": None,
        "asset_verified": verified if code is not None else None,
    }


def plain_event(contract=C1):
    """A non-token contract event (no token fields)."""
    return {
        "type": "contract_event", "id": "0000000000000000001-0000000000", "ledger": 1,
        "ledger_closed_at": None, "transaction_hash": None, "contract_id": contract,
        "operation_index": None, "transaction_index": None,
        "in_successful_contract_call": None, "event_kind": "contract",
        "topics": ["hello"], "data": None,
    }


def parse_error(obj):
    try:
        parse_filters(obj)
    except FilterError as e:
        return e
    raise AssertionError("no FilterError for %r" % (obj,))


def passes(filters_obj, message):
    return matches(parse_filters(filters_obj), event_keys(message))


class ParseFiltersTests(SynchronousTestCase):
    """parse_filters validates and normalises the register message's filters."""

    def test_missing_null_and_empty_mean_no_filtering(self):
        empty = {"types": [], "account_ids": [], "asset_codes": [], "min_amount": ""}
        nulls = {"types": None, "account_ids": None, "asset_codes": None, "min_amount": None}
        for obj in (None, {}, empty, nulls):
            f = parse_filters(obj)
            self.assertEqual(f, Filters())
            self.assertTrue(f.is_empty)
            self.assertEqual(f.to_json(), empty)

    def test_to_json_is_sorted_deduplicated_and_normalised(self):
        f = parse_filters({
            "types": ["transfer", "payment", "transfer", "trade"],
            "account_ids": [G2, M1, G1, C1],
            "asset_codes": ["native", "USDC:" + USDC_ISSUER, "USDC", "XLM"],
            "min_amount": "100.00",
        })
        self.assertFalse(f.is_empty)
        self.assertEqual(f.to_json(), {
            "types": ["payment", "trade", "transfer"],
            "account_ids": sorted([G1, G2, C1]),
            "asset_codes": ["USDC", "USDC:" + USDC_ISSUER, "XLM"],
            "min_amount": "100",
        })
        self.assertEqual(parse_filters(f.to_json()), f)

    def test_account_kinds(self):
        f = parse_filters({"account_ids": [G1, M1, C1, B1, L1]})
        self.assertEqual(f.account_ids, frozenset([G1, C1, B1, L1]))

    def test_muxed_normalised_to_account(self):
        self.assertEqual(parse_filters({"account_ids": [M1]}).account_ids, frozenset([G1]))

    def test_assets(self):
        f = parse_filters({"asset_codes": ["native", "usdc", "USDC", "XLM:" + G3, "A"]})
        self.assertEqual(f.asset_codes, frozenset(
            [NATIVE, ("usdc", None), ("USDC", None), ("XLM", G3), ("A", None)]))

    def test_unknown_types_kept_and_reported(self):
        f = parse_filters({"types": ["trade", "payment", "Transfer"]})
        self.assertEqual(f.types, frozenset(["trade", "payment", "Transfer"]))
        self.assertEqual(f.unknown_types, ("Transfer", "trade"))
        self.assertEqual(parse_filters({"types": ["mint"]}).unknown_types, ())

    def test_min_amount_normalised(self):
        cases = [
            ("100.00", "100"), ("1e2", "100"), ("1E+2", "100"), ("0", "0"), ("-0", "0"),
            ("0.0000001", "0.0000001"), (".5", "0.5"), ("7.", "7"), ("+3", "3"),
            ("1.000000000000000000000000000000001", "1.000000000000000000000000000000001"),
            ("170141183460469231731687303715884105727",
             "170141183460469231731687303715884105727"),
            (100, "100"), (100.5, "100.5"), (0, "0"), (1e-7, "0.0000001"),
        ]
        for given_value, expected in cases:
            f = parse_filters({"min_amount": given_value})
            self.assertEqual(f.to_json()["min_amount"], expected, given_value)
            self.assertEqual(f.min_amount, Decimal(expected))
            self.assertEqual(parse_filters(f.to_json()), f)

    def test_immutable_and_hashable(self):
        a = parse_filters({"types": ["mint"], "account_ids": [G1], "min_amount": "1"})
        b = parse_filters({"types": ["mint"], "account_ids": [M1], "min_amount": "1.0"})
        self.assertEqual(a, b)
        self.assertEqual(len({a, b}), 1)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, a, "types", frozenset())

    def test_list_limit_is_inclusive(self):
        f = parse_filters({"types": ["t%d" % i for i in range(MAX_LIST_ENTRIES)]})
        self.assertEqual(len(f.types), MAX_LIST_ENTRIES)


class FilterErrorTests(SynchronousTestCase):
    """Every rejection carries its code and names the bad value."""

    def assertError(self, obj, code, *named):
        e = parse_error(obj)
        self.assertIsInstance(e, ValueError)
        self.assertEqual(e.code, code, e.message)
        self.assertEqual(str(e), e.message)
        for text in named:
            self.assertIn(text, e.message)
        return e

    def test_not_an_object(self):
        for obj, kind in (([], "array"), ("x", "string"), (5, "number"), (True, "boolean")):
            e = self.assertError(obj, "invalid_filters", kind)
            self.assertIsNone(e.field)

    def test_unknown_field_suggests_closest(self):
        for name, hint in (("type", "types"), ("typess", "types"),
                           ("accountIds", "account_ids"), ("account_id", "account_ids"),
                           ("assets", "asset_codes"), ("minAmount", "min_amount"),
                           ("amount", "min_amount")):
            e = self.assertError({name: []}, "unknown_filter_field", repr(name), repr(hint))
            self.assertEqual(e.field, name)

    def test_unknown_field_without_close_match_lists_fields(self):
        self.assertError({"zzz": 1}, "unknown_filter_field", "'zzz'",
                         "types, account_ids, asset_codes, min_amount")

    def test_wrong_json_types(self):
        self.assertError({"types": "payment"}, "invalid_field_type", "filters.types", "string")
        self.assertError({"account_ids": {"a": 1}}, "invalid_field_type",
                         "filters.account_ids", "object")
        self.assertError({"asset_codes": "USDC"}, "invalid_field_type", "filters.asset_codes")
        self.assertError({"asset_codes": ["USDC", 7, None]}, "invalid_field_type",
                         "[1] 7 (number)", "[2] None (null)")
        self.assertError({"min_amount": [1]}, "invalid_field_type", "filters.min_amount",
                         "array")
        self.assertError({"min_amount": False}, "invalid_field_type", "boolean")

    def test_too_many_entries(self):
        for name in ("types", "account_ids", "asset_codes"):
            e = self.assertError({name: [G1] * (MAX_LIST_ENTRIES + 1)}, "too_many_entries",
                                 "filters." + name, str(MAX_LIST_ENTRIES + 1),
                                 str(MAX_LIST_ENTRIES))
            self.assertEqual(e.field, name)

    def test_invalid_type_names(self):
        self.assertError({"types": ["ok", ""]}, "invalid_type", "''")
        self.assertError({"types": ["x" * 65]}, "invalid_type", "'xxxx")
        self.assertError({"types": ["a\nb"]}, "invalid_type", "'a\\nb'")

    def test_invalid_account_ids_all_named(self):
        bad_checksum = G1[:-1] + ("A" if G1[-1] != "A" else "B")
        secret = Keypair.from_raw_ed25519_seed(bytes(32)).secret
        bads = [G1.lower(), bad_checksum, "GABC", " " + G2, "XYZ", "", "Gé"]
        e = self.assertError({"account_ids": [G3] + bads}, "invalid_account_id",
                             *[repr(b) for b in bads])
        self.assertNotIn(G3, e.message)
        self.assertEqual(e.field, "account_ids")
        # a secret seed is not an address (and its text is echoed only as given)
        self.assertError({"account_ids": [secret]}, "invalid_account_id")

    def test_invalid_asset_codes_all_named(self):
        bads = ["", "TOOLONGASSET1", "US-D", "USDC:", "USDC:GBAD", "USDC:" + M1,
                "USDC:" + C1, "native:" + G1, "US DC", "USDC:%s:x" % USDC_ISSUER]
        self.assertError({"asset_codes": ["USDC"] + bads}, "invalid_asset_code",
                         *[repr(b) for b in bads])

    def test_invalid_min_amount(self):
        for value in ("abc", "NaN", "nan", "Infinity", "-Infinity", "1_000", " 1", "1,5",
                      "0x10", "١٠٠", float("nan"), float("inf")):
            self.assertError({"min_amount": value}, "invalid_min_amount", repr(value)[:10])
        self.assertError({"min_amount": "-1"}, "invalid_min_amount", "'-1'", "negative")
        self.assertError({"min_amount": -0.5}, "invalid_min_amount", "-0.5", "negative")
        for value in ("1e99", "1e-99", "1e99999999999999999999999999", "0." + "0" * 90 + "1"):
            self.assertError({"min_amount": value}, "invalid_min_amount", "out of range")
        self.assertError({"min_amount": "1" * 300}, "invalid_min_amount", "longer than")

    def test_several_errors_reported_together(self):
        e = self.assertError(
            {"typo": 1, "account_ids": ["nope"], "asset_codes": ["$$"], "min_amount": "x"},
            "unknown_filter_field", "'typo'", "'nope'", "'$$'", "'x'")
        self.assertEqual([sub.code for sub in e.errors], [
            "unknown_filter_field", "invalid_account_id", "invalid_asset_code",
            "invalid_min_amount"])
        self.assertEqual(e.to_json(), {"code": "unknown_filter_field", "message": e.message,
                                       "field": "typo"})

    def test_long_bad_values_are_cut_short(self):
        e = self.assertError({"account_ids": ["G" * 10000]}, "invalid_account_id")
        self.assertLess(len(e.message), 400)


class EventKeysTests(SynchronousTestCase):
    """event_keys reduces a message to what filters look at."""

    def test_transfer(self):
        keys = event_keys(token_event(account_ids=[G1, G2, G3]))
        self.assertEqual(keys, EventKeys(
            types=frozenset(["contract_event", "transfer", "payment"]),
            accounts=frozenset([G1, G2, G3, USDC_SAC]),
            asset=("USDC", USDC_ISSUER), amount=Decimal("150")))

    def test_payment_needs_two_different_parties(self):
        self.assertNotIn("payment", event_keys(token_event(frm=G1, to=G1)).types)
        self.assertNotIn("payment", event_keys(token_event(frm=G1, to=M1)).types)
        self.assertNotIn("payment", event_keys(token_event(frm=M1, to=M1B)).types)
        self.assertNotIn("payment", event_keys(token_event(frm=None, to=G1)).types)
        self.assertNotIn("payment", event_keys(token_event("mint", frm=G1, to=G2)).types)
        self.assertIn("payment", event_keys(token_event(frm=M1, to=G2)).types)
        self.assertIn("payment", event_keys(token_event(frm=G1, to=B1)).types)

    def test_muxed_addresses_become_accounts(self):
        keys = event_keys(token_event(frm=G2, to=M1, account_ids=[G2, M1]))
        self.assertEqual(keys.accounts, frozenset([G1, G2, USDC_SAC]))

    def test_unverified_or_missing_asset(self):
        self.assertIsNone(event_keys(token_event(verified=False, contract=C1)).asset)
        self.assertIsNone(event_keys(token_event(code=None, issuer=None)).asset)

    def test_native(self):
        keys = event_keys(token_event(code="XLM", issuer=None, contract=NATIVE_SAC))
        self.assertEqual(keys.asset, NATIVE)

    def test_plain_and_undecodable_events(self):
        keys = event_keys(plain_event())
        self.assertEqual(keys, EventKeys(types=frozenset(["contract_event"]),
                                         accounts=frozenset([C1])))
        broken = dict(plain_event(contract=None), decode_error="bad xdr",
                      topics_xdr=["AAAA"], data_xdr="AAAA")
        self.assertEqual(event_keys(broken), EventKeys(types=frozenset(["contract_event"])))

    def test_bad_amount_and_unknown_event_type_ignored(self):
        keys = event_keys(dict(token_event(amount="NaN"), event_type="trade"))
        self.assertIsNone(keys.amount)
        self.assertEqual(keys.types, frozenset(["contract_event"]))
        self.assertIsNone(event_keys(token_event(amount="12abc")).amount)

    def test_signed_fee_amount(self):
        keys = event_keys(token_event("fee", to=None, code="XLM", issuer=None,
                                      amount="-0.0012", contract=NATIVE_SAC))
        self.assertEqual(keys.amount, Decimal("-0.0012"))
        self.assertEqual(keys.types, frozenset(["contract_event", "fee"]))


class MatchRulesTests(SynchronousTestCase):
    """The documented semantics, rule by rule."""

    def test_empty_filters_match_everything(self):
        for message in (token_event(), plain_event(), {"type": "contract_event"}):
            self.assertTrue(passes(None, message))
            self.assertTrue(passes({"types": [], "min_amount": ""}, message))

    def test_types(self):
        self.assertTrue(passes({"types": ["contract_event"]}, plain_event()))
        self.assertTrue(passes({"types": ["transfer"]}, token_event()))
        self.assertFalse(passes({"types": ["transfer"]}, plain_event()))
        self.assertFalse(passes({"types": ["mint"]}, token_event()))
        self.assertTrue(passes({"types": ["payment"]}, token_event()))
        self.assertFalse(passes({"types": ["payment"]}, token_event(to=G1)))
        self.assertFalse(passes({"types": ["payment"]}, token_event("mint", frm=None)))
        for name in ("approve", "set_admin", "set_authorized", "burn", "clawback", "fee"):
            self.assertTrue(passes({"types": [name]}, token_event(name)))

    def test_unknown_types_match_nothing(self):
        self.assertFalse(passes({"types": ["trade"]}, token_event()))
        self.assertFalse(passes({"types": ["trade"]}, plain_event()))
        self.assertFalse(passes({"types": ["trade"]}, dict(plain_event(), type="trade")))
        self.assertTrue(passes({"types": ["trade", "mint"]}, token_event("mint")))

    def test_or_within_and_across(self):
        f = {"types": ["mint", "burn"], "asset_codes": ["USDC"]}
        self.assertTrue(passes(f, token_event("mint")))
        self.assertTrue(passes(f, token_event("burn")))
        self.assertFalse(passes(f, token_event("transfer")))
        self.assertFalse(passes(f, token_event("mint", code="EURC")))

    def test_accounts(self):
        self.assertTrue(passes({"account_ids": [G1]}, token_event(frm=G1, to=G2)))
        self.assertTrue(passes({"account_ids": [G2]}, token_event(frm=G1, to=G2)))
        self.assertTrue(passes({"account_ids": [G3]},  # e.g. the spender of an approve
                               token_event("approve", frm=G1, to=None, account_ids=[G1, G3])))
        self.assertTrue(passes({"account_ids": [USDC_SAC]}, token_event()))
        self.assertTrue(passes({"account_ids": [C1]}, plain_event()))
        self.assertFalse(passes({"account_ids": [G3, C2]}, token_event(frm=G1, to=G2)))
        self.assertFalse(passes({"account_ids": [G1]}, plain_event()))
        # from/to count even when account_ids is missing
        msg = token_event(frm=G4, to=G2)
        del msg["account_ids"]
        self.assertTrue(passes({"account_ids": [G4]}, msg))

    def test_muxed_both_sides(self):
        self.assertTrue(passes({"account_ids": [M1]}, token_event(frm=G1, to=G2)))
        self.assertTrue(passes({"account_ids": [G1]}, token_event(frm=G2, to=M1)))
        self.assertTrue(passes({"account_ids": [M1B]}, token_event(frm=G2, to=M1)))

    def test_asset_code_any_issuer_vs_exact_issuer(self):
        other = token_event(issuer=G3, contract=C2)
        self.assertTrue(passes({"asset_codes": ["USDC"]}, token_event()))
        self.assertTrue(passes({"asset_codes": ["USDC"]}, other))
        self.assertTrue(passes({"asset_codes": ["USDC:" + USDC_ISSUER]}, token_event()))
        self.assertFalse(passes({"asset_codes": ["USDC:" + USDC_ISSUER]}, other))
        self.assertFalse(passes({"asset_codes": ["usdc"]}, token_event()))  # case-sensitive

    def test_native(self):
        native = token_event(code="XLM", issuer=None, contract=NATIVE_SAC)
        credit_xlm = token_event(code="XLM", issuer=G3, contract=C2)
        for name in ("XLM", "native"):
            self.assertTrue(passes({"asset_codes": [name]}, native))
            self.assertFalse(passes({"asset_codes": [name]}, credit_xlm))
            self.assertFalse(passes({"asset_codes": [name]}, token_event()))
        self.assertTrue(passes({"asset_codes": ["XLM:" + G3]}, credit_xlm))
        self.assertFalse(passes({"asset_codes": ["XLM:" + G3]}, native))

    def test_unverified_look_alikes_never_match_asset_filters(self):
        fake_usdc = token_event(verified=False, contract=C1)
        fake_xlm = token_event(code="XLM", issuer=None, verified=False, contract=C1)
        for f in (["USDC"], ["USDC:" + USDC_ISSUER]):
            self.assertFalse(passes({"asset_codes": f}, fake_usdc))
        self.assertFalse(passes({"asset_codes": ["XLM"]}, fake_xlm))
        # still delivered to clients not filtering on asset, e.g. by contract
        self.assertTrue(passes({"account_ids": [C1]}, fake_usdc))

    def test_custom_token_without_asset(self):
        custom = token_event(code=None, issuer=None, contract=C2)
        self.assertFalse(passes({"asset_codes": ["USDC"]}, custom))
        self.assertTrue(passes({"account_ids": [C2], "types": ["transfer"]}, custom))

    def test_min_amount(self):
        self.assertTrue(passes({"min_amount": "150"}, token_event(amount="150")))
        self.assertTrue(passes({"min_amount": "149.9999999"}, token_event(amount="150")))
        self.assertFalse(passes({"min_amount": "150.0000001"}, token_event(amount="150")))
        self.assertFalse(passes({"min_amount": "100"}, token_event(amount="99.9999999")))
        self.assertFalse(passes({"min_amount": "0"}, token_event(amount=None)))
        self.assertFalse(passes({"min_amount": "0"}, plain_event()))
        self.assertTrue(passes({"min_amount": "0"}, token_event(amount="0")))
        self.assertTrue(passes({"min_amount": 1e20},
                               token_event(amount="170141183460469231731687303715.884105")))

    def test_fee_refund_compared_signed(self):
        refund = token_event("fee", to=None, code="XLM", issuer=None, amount="-0.5",
                             contract=NATIVE_SAC)
        self.assertFalse(passes({"min_amount": "0"}, refund))
        self.assertTrue(passes({"types": ["fee"]}, refund))

    def test_combined_guide_example(self):
        f = {"types": ["payment"], "account_ids": [], "asset_codes": ["USDC"],
             "min_amount": "100"}
        self.assertTrue(passes(f, token_event(amount="100")))
        self.assertFalse(passes(f, token_event(amount="99")))
        self.assertFalse(passes(f, token_event(to=G1, amount="500")))
        self.assertFalse(passes(f, token_event(code="XLM", issuer=None, contract=NATIVE_SAC)))


class FilterIndexTests(SynchronousTestCase):
    """FilterIndex finds exactly the matching clients, visiting only candidates."""

    def test_add_match_remove(self):
        index = FilterIndex()
        index.add("a", parse_filters({"account_ids": [G1]}))
        index.add("b", parse_filters({"asset_codes": ["USDC"]}))
        index.add("c", parse_filters({"types": ["mint"]}))
        index.add("d", parse_filters(None))
        index.add("e", parse_filters({"min_amount": "1000"}))
        self.assertEqual(len(index), 5)
        self.assertIn("a", index)
        self.assertEqual(index.match(event_keys(token_event())), ["a", "b", "d"])
        self.assertEqual(index.match(event_keys(token_event("mint", frm=None, to=G3))),
                         ["b", "c", "d"])
        self.assertEqual(index.match(event_keys(token_event(amount="5000"))),
                         ["a", "b", "d", "e"])
        index.remove("b")
        index.remove("b")
        index.remove("nobody")
        self.assertEqual(len(index), 4)
        self.assertIsNone(index.filters_for("b"))
        self.assertEqual(index.match(event_keys(token_event())), ["a", "d"])

    def test_replace_moves_client_and_changes_filters(self):
        index = FilterIndex()
        index.add("a", parse_filters({"account_ids": [G1]}))
        index.add("b", parse_filters(None))
        index.add("a", parse_filters({"account_ids": [G3]}))
        self.assertEqual(len(index), 2)
        self.assertEqual(index.filters_for("a"), parse_filters({"account_ids": [G3]}))
        self.assertEqual(index.match(event_keys(token_event(frm=G1, to=G2))), ["b"])
        self.assertEqual(index.match(event_keys(token_event(frm=G3, to=G2))), ["b", "a"])
        self.assertEqual(list(index), ["b", "a"])

    def test_no_duplicates(self):
        index = FilterIndex()
        index.add("acc", parse_filters({"account_ids": [G1, G2, M1]}))
        index.add("asset", parse_filters({"asset_codes": ["USDC", "USDC:" + USDC_ISSUER]}))
        index.add("type", parse_filters({"types": ["transfer", "payment", "contract_event"]}))
        self.assertEqual(index.match(event_keys(token_event(frm=G1, to=G2))),
                         ["acc", "asset", "type"])

    def test_removing_everyone_frees_every_bucket(self):
        index = FilterIndex()
        objs = [{"account_ids": [G1, C1]}, {"asset_codes": ["USDC", "XLM", "XLM:" + G3]},
                {"types": ["mint", "trade"]}, {"min_amount": "1"}, None]
        for n, obj in enumerate(objs):
            index.add(n, parse_filters(obj))
        for n in range(len(objs)):
            index.remove(n)
        self.assertEqual(len(index), 0)
        self.assertEqual(index.match(event_keys(token_event())), [])
        # white-box: no empty buckets left behind to pin memory
        self.assertEqual((index._by_account, index._by_asset, index._by_code,
                          index._by_type, index._unconstrained), ({}, {}, {}, {}, {}))

    def test_only_unknown_types_never_filed(self):
        index = FilterIndex()
        index.add("t", parse_filters({"types": ["trade"]}))
        self.assertEqual(len(index), 1)
        self.assertEqual(index.match(event_keys(dict(plain_event(), type="trade"))), [])
        index.remove("t")
        self.assertEqual(len(index), 0)

    def test_visits_only_candidates(self):
        calls = []
        original = filters_module.matches

        def counting(f, keys):
            calls.append(f)
            return original(f, keys)

        self.patch(filters_module, "matches", counting)
        index = FilterIndex()
        accounts = [Keypair.random().public_key for _ in range(2000)]
        for n, account in enumerate(accounts):
            # types make every candidate need a full check, so each visit is counted
            index.add(n, parse_filters({"account_ids": [account], "types": ["transfer"]}))
        index.add("all", parse_filters({"min_amount": "1"}))
        found = index.match(event_keys(token_event(frm=accounts[5], to=accounts[1999],
                                                   account_ids=[accounts[5], accounts[1999]])))
        self.assertEqual(found, [5, 1999, "all"])
        self.assertEqual(len(calls), 3)


# --- property tests ------------------------------------------------------------------------

ACCOUNT_POOL = [G1, G2, G3, M1, M1B, C1, USDC_SAC]
ASSET_FILTER_POOL = ["USDC", "USDC:" + USDC_ISSUER, "USDC:" + G3, "XLM", "native",
                     "XLM:" + G3, "EURC"]
ASSET_EVENT_POOL = [("USDC", USDC_ISSUER), ("USDC", G3), ("XLM", None), ("XLM", G3),
                    ("EURC", G2), (None, None)]
TYPE_POOL = ["contract_event", "transfer", "payment", "mint", "burn", "fee", "trade"]
AMOUNT_POOL = ["", "0", "1", "100", "100.5"]
EVENT_AMOUNTS = [None, "-1", "0", "1", "99.9999999", "100", "100.5", "1000"]

filter_objs = st.fixed_dictionaries({}, optional={
    "types": st.lists(st.sampled_from(TYPE_POOL), max_size=3),
    "account_ids": st.lists(st.sampled_from(ACCOUNT_POOL), max_size=3),
    "asset_codes": st.lists(st.sampled_from(ASSET_FILTER_POOL), max_size=3),
    "min_amount": st.sampled_from(AMOUNT_POOL),
})


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(["plain", "transfer", "mint", "burn", "fee", "approve"]))
    if kind == "plain":
        return plain_event(contract=draw(st.sampled_from([C1, C2, None])))
    code, issuer = draw(st.sampled_from(ASSET_EVENT_POOL))
    frm = draw(st.sampled_from(ACCOUNT_POOL[:5] + [None]))
    to = draw(st.sampled_from(ACCOUNT_POOL[:5] + [None]))
    extra = draw(st.lists(st.sampled_from(ACCOUNT_POOL), max_size=2))
    return token_event(
        kind, frm=frm, to=to, code=code, issuer=issuer,
        amount=draw(st.sampled_from(EVENT_AMOUNTS)),
        verified=draw(st.sampled_from([True, True, False])),
        contract=draw(st.sampled_from([C1, C2, USDC_SAC])),
        account_ids=list(dict.fromkeys([a for a in (frm, to) if a] + extra)))


operations = st.lists(
    st.tuples(st.sampled_from(["add", "add", "add", "remove"]), st.integers(0, 11),
              filter_objs),
    min_size=4, max_size=40)


class IndexPropertyTests(SynchronousTestCase):
    """FilterIndex.match equals the plain per-client check, whatever the history."""

    @settings(max_examples=150, deadline=None)
    @given(operations, st.lists(messages(), min_size=4, max_size=10))
    def test_index_equals_reference(self, ops, events):
        index = FilterIndex()
        model = {}
        for op, client, obj in ops:
            if op == "add":
                f = parse_filters(obj)
                index.add(client, f)
                model.pop(client, None)
                model[client] = f
            else:
                index.remove(client)
                model.pop(client, None)
        self.assertEqual(len(index), len(model))
        for client, f in model.items():
            self.assertEqual(index.filters_for(client), f)
        for message in events:
            keys = event_keys(message)
            expected = [c for c, f in model.items() if matches(f, keys)]
            self.assertEqual(index.match(keys), expected)

    @settings(max_examples=300, deadline=None)
    @given(filter_objs, messages())
    def test_single_client_index_equals_reference(self, obj, message):
        f = parse_filters(obj)
        keys = event_keys(message)
        index = FilterIndex()
        index.add("c", f)
        self.assertEqual(index.match(keys), ["c"] if matches(f, keys) else [])
        index.add("all", Filters())
        self.assertEqual(index.match(keys), (["c"] if matches(f, keys) else []) + ["all"])

    def test_grid_index_equals_reference(self):
        """Every single-field filter entry against every pooled event shape."""
        events = [
            token_event(kind, frm=frm, to=to, code=code, issuer=issuer, verified=verified,
                        amount=amount)
            for kind in ("transfer", "mint", "fee")
            for frm, to in ((G1, G2), (G1, M1), (None, G3))
            for code, issuer in ASSET_EVENT_POOL
            for verified in (True, False)
            for amount in (None, "-1", "100")
        ] + [plain_event(), plain_event(contract=None)]
        objs = ([{"types": [t]} for t in TYPE_POOL]
                + [{"account_ids": [a]} for a in ACCOUNT_POOL]
                + [{"asset_codes": [a]} for a in ASSET_FILTER_POOL]
                + [{"min_amount": m} for m in AMOUNT_POOL] + [None])
        index = FilterIndex()
        for n, obj in enumerate(objs):
            index.add(n, parse_filters(obj))
        for message in events:
            keys = event_keys(message)
            self.assertEqual(
                index.match(keys),
                [n for n, obj in enumerate(objs) if matches(parse_filters(obj), keys)],
                message)

    @settings(max_examples=100, deadline=None)
    @given(filter_objs)
    def test_to_json_round_trips(self, obj):
        f = parse_filters(obj)
        self.assertEqual(parse_filters(f.to_json()), f)
        self.assertEqual(f.to_json(), parse_filters(f.to_json()).to_json())
