"""
Tests for L{stellarflow.websocket.index}: the FilterIndex finds exactly the clients the plain
per-client check (L{matches}) finds.
"""

import functools
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from stellar_sdk import Keypair
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.websocket import index as indexModule
from stellarflow.websocket.filters import Filters, parseFilters
from stellarflow.websocket.index import FilterIndex
from stellarflow.websocket.matching import eventKeys, matches
from tests.filterhelpers import (
    ACCOUNT_POOL,
    AMOUNT_POOL,
    ASSET_EVENT_POOL,
    ASSET_FILTER_POOL,
    C1,
    C2,
    EVENT_AMOUNTS,
    G1,
    G2,
    G3,
    L1,
    LEDGER_TYPES,
    M1,
    M1B,
    POOL_HEX,
    PRODUCED_POOL,
    TYPE_POOL,
    USDC_ISSUER,
    USDC_SAC,
    filterObjects,
    messages,
    paymentMessage,
    plainMessage,
    tokenMessage,
    tradeMessage,
)


@functools.lru_cache(maxsize=None)
def _parsed(text, produced):
    return parseFilters(json.loads(text)).forPipeline(produced)


def parsed(obj, produced=None):
    """
    L{parseFilters} of C{obj} on a pipeline producing C{produced}, cached: the pools are small
    and validating addresses is slow, so that the property tests can afford many examples.
    """
    return _parsed(json.dumps(obj, sort_keys=True), produced)


#: Payment and trade shapes at the boundaries: each pooled asset on each side, amounts around
#: the pooled thresholds (none included), a pool and an order-book seller.
LEDGER_EVENTS = [
    paymentMessage(code=code, issuer=issuer, amount=amount, sourceCode=sourceCode,
                   sourceIssuer=sourceIssuer, sourceAmount=sourceAmount, frm=G1, to=M1B)
    for code, issuer in ASSET_EVENT_POOL[:-1]
    for sourceCode, sourceIssuer in [(None, None)] + ASSET_EVENT_POOL[:-1]
    for amount, sourceAmount in ((None, "1000"), ("100", "1"), ("1", "100.5"))
] + [
    tradeMessage(seller=seller, pool=pool, soldCode=sold[0], soldIssuer=sold[1], soldAmount=soldAmount,
                 boughtCode=bought[0], boughtIssuer=bought[1], boughtAmount=boughtAmount)
    for seller, pool in ((G3, None), (None, POOL_HEX))
    for sold in ASSET_EVENT_POOL[:-1]
    for bought in ASSET_EVENT_POOL[:-1]
    for soldAmount, boughtAmount in ((None, "100"), ("100.5", "1"), ("0", "99.9999999"))
] + [paymentMessage(contract=USDC_SAC, frm=C1, to=G2)]


#: Events every property example is also checked against: a transfer of each pooled asset,
#: verified or not, with each pooled amount (none and negative included), and plain events.
#: Drawn events alone rarely meet a client whose filters hinge on one of these.
BOUNDARY_KEYS = [
    eventKeys(tokenMessage(code=code, issuer=issuer, verified=verified, amount=amount))
    for code, issuer in ASSET_EVENT_POOL
    for verified in (True, False)
    for amount in EVENT_AMOUNTS
] + [eventKeys(plainMessage()), eventKeys(plainMessage(contract=None))] + [
    eventKeys(message) for message in LEDGER_EVENTS]

operations = st.lists(
    st.tuples(st.sampled_from(["add", "add", "add", "remove"]), st.integers(0, 11),
              filterObjects, st.sampled_from(PRODUCED_POOL)),
    min_size=4, max_size=40)


class FilterIndexTests(SynchronousTestCase):
    """FilterIndex finds exactly the matching clients, visiting only candidates."""

    def test_addMatchRemove(self):
        index = FilterIndex()
        index.add("a", parseFilters({"account_ids": [G1]}))
        index.add("b", parseFilters({"asset_codes": ["USDC"]}))
        index.add("c", parseFilters({"types": ["mint"]}))
        index.add("d", parseFilters(None))
        index.add("e", parseFilters({"min_amount": "1000"}))
        self.assertEqual(len(index), 5)
        self.assertIn("a", index)
        self.assertEqual(index.match(eventKeys(tokenMessage())), ["a", "b", "d"])
        self.assertEqual(index.match(eventKeys(tokenMessage("mint", frm=None, to=G3))),
                         ["b", "c", "d"])
        self.assertEqual(index.match(eventKeys(tokenMessage(amount="5000"))),
                         ["a", "b", "d", "e"])
        index.remove("b")
        index.remove("b")
        index.remove("nobody")
        self.assertEqual(len(index), 4)
        self.assertIsNone(index.filtersFor("b"))
        self.assertEqual(index.match(eventKeys(tokenMessage())), ["a", "d"])

    def test_replaceMovesClientAndChangesFilters(self):
        index = FilterIndex()
        index.add("a", parseFilters({"account_ids": [G1]}))
        index.add("b", parseFilters(None))
        index.add("a", parseFilters({"account_ids": [G3]}))
        self.assertEqual(len(index), 2)
        self.assertEqual(index.filtersFor("a"), parseFilters({"account_ids": [G3]}))
        self.assertEqual(index.match(eventKeys(tokenMessage(frm=G1, to=G2))), ["b"])
        self.assertEqual(index.match(eventKeys(tokenMessage(frm=G3, to=G2))), ["b", "a"])
        self.assertEqual(list(index), ["b", "a"])

    def test_noDuplicates(self):
        index = FilterIndex()
        index.add("acc", parseFilters({"account_ids": [G1, G2, M1]}))
        index.add("asset", parseFilters({"asset_codes": ["USDC", "USDC:" + USDC_ISSUER]}))
        index.add("type", parseFilters({"types": ["transfer", "payment", "contract_event"]}))
        self.assertEqual(index.match(eventKeys(tokenMessage(frm=G1, to=G2))),
                         ["acc", "asset", "type"])

    def test_removingEveryoneFreesEveryBucket(self):
        index = FilterIndex()
        objs = [{"account_ids": [G1, C1]}, {"asset_codes": ["USDC", "XLM", "XLM:" + G3]},
                {"types": ["mint", "trade"]}, {"min_amount": "1"}, None]
        for n, obj in enumerate(objs):
            index.add(n, parseFilters(obj))
        for n in range(len(objs)):
            index.remove(n)
        self.assertEqual(len(index), 0)
        self.assertEqual(index.match(eventKeys(tokenMessage())), [])
        # white-box: no empty buckets left behind to pin memory
        self.assertEqual((index._byAccount, index._byAsset, index._byCode,
                          index._byType, index._unconstrained), ({}, {}, {}, {}, {}))

    def test_onlyUnknownTypesNeverFiled(self):
        index = FilterIndex()
        index.add("t", parseFilters({"types": ["Trade"]}))
        self.assertEqual(len(index), 1)
        self.assertEqual(index.match(eventKeys(dict(plainMessage(), type="Trade"))), [])
        self.assertEqual(index._byType, {})
        index.remove("t")
        self.assertEqual(len(index), 0)

    def test_paymentsAndTrades(self):
        """
        A path payment and a trade select the buckets of both their assets (once each client);
        C{payment} is filed under what it means on the pipeline.
        """
        index = FilterIndex()
        index.add("usdc", parseFilters({"asset_codes": ["USDC", "XLM"]}))
        index.add("xlm100", parseFilters({"asset_codes": ["XLM"], "min_amount": "100"}))
        index.add("pool", parseFilters({"account_ids": [L1]}))
        index.add("pay", parseFilters({"types": ["payment"]}).forPipeline(LEDGER_TYPES))
        index.add("payGetEvents", parseFilters({"types": ["payment"]}))
        index.add("trade", parseFilters({"types": ["trade"]}))
        path = paymentMessage(code="XLM", issuer=None, amount="150", sourceCode="USDC",
                              sourceIssuer=USDC_ISSUER, sourceAmount="20")
        self.assertEqual(index.match(eventKeys(path)), ["usdc", "xlm100", "pay", "payGetEvents"])
        trade = tradeMessage(pool=POOL_HEX, soldAmount="99", boughtAmount="2")
        self.assertEqual(index.match(eventKeys(trade)), ["usdc", "pool", "trade"])
        self.assertEqual(index.match(eventKeys(tokenMessage(frm=G1, to=G2))), ["usdc", "payGetEvents"])

    def test_visitsOnlyCandidates(self):
        calls = []
        original = indexModule.matches

        def counting(f, keys):
            calls.append(f)
            return original(f, keys)

        self.patch(indexModule, "matches", counting)
        index = FilterIndex()
        accounts = [Keypair.random().public_key for _ in range(2000)]
        for n, account in enumerate(accounts):
            # types make every candidate need a full check, so each visit is counted
            index.add(n, parseFilters({"account_ids": [account], "types": ["transfer"]}))
        index.add("all", parseFilters({"min_amount": "1"}))
        found = index.match(eventKeys(tokenMessage(frm=accounts[5], to=accounts[1999],
                                                   accountIds=[accounts[5], accounts[1999]])))
        self.assertEqual(found, [5, 1999, "all"])
        self.assertEqual(len(calls), 3)


class IndexPropertyTests(SynchronousTestCase):
    """
    FilterIndex.match equals the plain per-client check, whatever the history.

    Under C{CI=true} Hypothesis runs derandomized (the same examples every run), so the
    example counts are what decides which bugs these find: with fewer, a wrong C{min_amount}
    check for clients filtering on assets went unnoticed (L{CombinationTests} pins such cases
    explicitly).
    """

    @settings(max_examples=600, deadline=None)
    @given(operations, st.lists(messages(), min_size=4, max_size=10))
    def test_indexEqualsReference(self, ops, events):
        index = FilterIndex()
        model = {}
        for op, client, obj, produced in ops:
            if op == "add":
                f = parsed(obj, produced)
                index.add(client, f)
                model.pop(client, None)
                model[client] = f
            else:
                index.remove(client)
                model.pop(client, None)
        self.assertEqual(len(index), len(model))
        for client, f in model.items():
            self.assertEqual(index.filtersFor(client), f)
        for keys in [eventKeys(message) for message in events] + BOUNDARY_KEYS:
            expected = [c for c, f in model.items() if matches(f, keys)]
            self.assertEqual(index.match(keys), expected, keys)

    @settings(max_examples=1000, deadline=None)
    @given(filterObjects, messages(), st.sampled_from(PRODUCED_POOL))
    def test_singleClientIndexEqualsReference(self, obj, message, produced):
        f = parsed(obj, produced)
        index = FilterIndex()
        index.add("c", f)
        checks = [eventKeys(message)] + BOUNDARY_KEYS
        for keys in checks:
            self.assertEqual(index.match(keys), ["c"] if matches(f, keys) else [], keys)
        index.add("all", Filters())
        for keys in checks:
            self.assertEqual(index.match(keys), (["c"] if matches(f, keys) else []) + ["all"], keys)

    def test_gridIndexEqualsReference(self):
        """Every single-field filter entry against every pooled event shape."""
        events = [
            tokenMessage(kind, frm=frm, to=to, code=code, issuer=issuer, verified=verified,
                        amount=amount)
            for kind in ("transfer", "mint", "fee")
            for frm, to in ((G1, G2), (G1, M1), (None, G3))
            for code, issuer in ASSET_EVENT_POOL
            for verified in (True, False)
            for amount in (None, "-1", "100")
        ] + [plainMessage(), plainMessage(contract=None)] + LEDGER_EVENTS
        objs = ([{"types": [t]} for t in TYPE_POOL]
                + [{"account_ids": [a]} for a in ACCOUNT_POOL]
                + [{"asset_codes": [a]} for a in ASSET_FILTER_POOL]
                + [{"min_amount": m} for m in AMOUNT_POOL] + [None])
        for produced in PRODUCED_POOL:
            index = FilterIndex()
            for n, obj in enumerate(objs):
                index.add(n, parsed(obj, produced))
            for message in events:
                keys = eventKeys(message)
                self.assertEqual(
                    index.match(keys),
                    [n for n, obj in enumerate(objs) if matches(parsed(obj, produced), keys)],
                    message)


#: Values of each filter field for the combination cases.
FIELD_VALUES = {
    "types": [["transfer"], ["payment"], ["mint"], ["fee"], ["contract_event"], ["trade"],
              ["mint", "trade"]],
    "account_ids": [[G1], [M1B], [G3], [USDC_SAC], [C1], [G2, C2], [L1]],
    "asset_codes": [["USDC"], ["USDC:" + USDC_ISSUER], ["USDC:" + G3], ["XLM"], ["native"],
                    ["XLM:" + G3], ["EURC"], ["EURC", "XLM"]],
    "min_amount": ["0", "1", "100", "100.5"],
}

#: Every pooled event shape: kinds, parties, assets (verified or not), emitting contracts and
#: amounts at and around the pooled thresholds, none and negative included.
COMBINATION_EVENTS = [
    tokenMessage(kind, frm=frm, to=to, code=code, issuer=issuer, verified=verified,
                 amount=amount, contract=contract)
    for kind in ("transfer", "mint", "fee")
    for frm, to in ((G1, G2), (G2, M1), (None, G3))
    for code, issuer in ASSET_EVENT_POOL
    for verified in (True, False)
    for contract in (USDC_SAC, C1)
    for amount in (None, "-1", "0", "1", "99.9999999", "100", "100.5", "1000")
] + [plainMessage(), plainMessage(contract=C2), plainMessage(contract=None)] + LEDGER_EVENTS


class CombinationTests(SynchronousTestCase):
    """
    Every pair of the four filter fields, each with every value of L{FIELD_VALUES}, against
    every event of L{COMBINATION_EVENTS}: the index files a client under one field and checks
    the others itself, so each pair is a case of its own.
    """

    def assertIndexAgrees(self, first, second):
        for produced in PRODUCED_POOL:
            self.assertIndexAgreesOn(first, second, produced)

    def assertIndexAgreesOn(self, first, second, produced):
        objs = [{first: a, second: b} for a in FIELD_VALUES[first] for b in FIELD_VALUES[second]]
        filters = [parsed(obj, produced) for obj in objs]
        index = FilterIndex()
        for n, f in enumerate(filters):
            index.add(n, f)
        for message in COMBINATION_EVENTS:
            keys = eventKeys(message)
            expected = [n for n, f in enumerate(filters) if matches(f, keys)]
            got = index.match(keys)
            if got != expected:
                wrong = sorted(set(got) ^ set(expected))
                self.fail("index and matches() disagree on {} for {}".format(
                    [objs[n] for n in wrong[:3]], message))

    def test_typesAndAccounts(self):
        self.assertIndexAgrees("types", "account_ids")

    def test_typesAndAssets(self):
        self.assertIndexAgrees("types", "asset_codes")

    def test_typesAndMinAmount(self):
        self.assertIndexAgrees("types", "min_amount")

    def test_accountsAndAssets(self):
        self.assertIndexAgrees("account_ids", "asset_codes")

    def test_accountsAndMinAmount(self):
        self.assertIndexAgrees("account_ids", "min_amount")

    def test_assetsAndMinAmount(self):
        self.assertIndexAgrees("asset_codes", "min_amount")

    def test_everyPairCovered(self):
        """
        The cases above are every pair of the four fields.
        """
        pairs = {name[len("test_"):] for name in dir(self) if name.startswith("test_") and "And" in name}
        self.assertEqual(len(pairs), 6)
        self.assertEqual(len(FIELD_VALUES), 4)
