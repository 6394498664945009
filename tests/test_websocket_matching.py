"""
Tests for L{stellarflow.websocket.matching}: an event's filter keys and the matching rules.
"""

from decimal import Decimal

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.websocket.filters import NATIVE
from stellarflow.websocket.matching import EventKeys, eventKeys
from tests.filterhelpers import (
    B1,
    C1,
    C2,
    G1,
    G2,
    G3,
    G4,
    M1,
    M1B,
    NATIVE_SAC,
    USDC_ISSUER,
    USDC_SAC,
    passes,
    plainMessage,
    tokenMessage,
)


class EventKeysTests(SynchronousTestCase):
    """eventKeys reduces a message to what filters look at."""

    def test_transfer(self):
        keys = eventKeys(tokenMessage(accountIds=[G1, G2, G3]))
        self.assertEqual(keys, EventKeys(
            types=frozenset(["contract_event", "transfer", "payment"]),
            accounts=frozenset([G1, G2, G3, USDC_SAC]),
            asset=("USDC", USDC_ISSUER), amount=Decimal("150")))

    def test_paymentNeedsTwoDifferentParties(self):
        self.assertNotIn("payment", eventKeys(tokenMessage(frm=G1, to=G1)).types)
        self.assertNotIn("payment", eventKeys(tokenMessage(frm=G1, to=M1)).types)
        self.assertNotIn("payment", eventKeys(tokenMessage(frm=M1, to=M1B)).types)
        self.assertNotIn("payment", eventKeys(tokenMessage(frm=None, to=G1)).types)
        self.assertNotIn("payment", eventKeys(tokenMessage("mint", frm=G1, to=G2)).types)
        self.assertIn("payment", eventKeys(tokenMessage(frm=M1, to=G2)).types)
        self.assertIn("payment", eventKeys(tokenMessage(frm=G1, to=B1)).types)

    def test_muxedAddressesBecomeAccounts(self):
        keys = eventKeys(tokenMessage(frm=G2, to=M1, accountIds=[G2, M1]))
        self.assertEqual(keys.accounts, frozenset([G1, G2, USDC_SAC]))

    def test_unverifiedOrMissingAsset(self):
        self.assertIsNone(eventKeys(tokenMessage(verified=False, contract=C1)).asset)
        self.assertIsNone(eventKeys(tokenMessage(code=None, issuer=None)).asset)

    def test_native(self):
        keys = eventKeys(tokenMessage(code="XLM", issuer=None, contract=NATIVE_SAC))
        self.assertEqual(keys.asset, NATIVE)

    def test_plainAndUndecodableEvents(self):
        keys = eventKeys(plainMessage())
        self.assertEqual(keys, EventKeys(types=frozenset(["contract_event"]),
                                         accounts=frozenset([C1])))
        broken = dict(plainMessage(contract=None), decode_error="bad xdr",
                      topics_xdr=["AAAA"], data_xdr="AAAA")
        self.assertEqual(eventKeys(broken), EventKeys(types=frozenset(["contract_event"])))

    def test_badAmountAndUnknownEventTypeIgnored(self):
        keys = eventKeys(dict(tokenMessage(amount="NaN"), event_type="trade"))
        self.assertIsNone(keys.amount)
        self.assertEqual(keys.types, frozenset(["contract_event"]))
        self.assertIsNone(eventKeys(tokenMessage(amount="12abc")).amount)

    def test_signedFeeAmount(self):
        keys = eventKeys(tokenMessage("fee", to=None, code="XLM", issuer=None,
                                      amount="-0.0012", contract=NATIVE_SAC))
        self.assertEqual(keys.amount, Decimal("-0.0012"))
        self.assertEqual(keys.types, frozenset(["contract_event", "fee"]))


class MatchRulesTests(SynchronousTestCase):
    """The documented semantics, rule by rule."""

    def test_emptyFiltersMatchEverything(self):
        for message in (tokenMessage(), plainMessage(), {"type": "contract_event"}):
            self.assertTrue(passes(None, message))
            self.assertTrue(passes({"types": [], "min_amount": ""}, message))

    def test_types(self):
        self.assertTrue(passes({"types": ["contract_event"]}, plainMessage()))
        self.assertTrue(passes({"types": ["transfer"]}, tokenMessage()))
        self.assertFalse(passes({"types": ["transfer"]}, plainMessage()))
        self.assertFalse(passes({"types": ["mint"]}, tokenMessage()))
        self.assertTrue(passes({"types": ["payment"]}, tokenMessage()))
        self.assertFalse(passes({"types": ["payment"]}, tokenMessage(to=G1)))
        self.assertFalse(passes({"types": ["payment"]}, tokenMessage("mint", frm=None)))
        for name in ("approve", "set_admin", "set_authorized", "burn", "clawback", "fee"):
            self.assertTrue(passes({"types": [name]}, tokenMessage(name)))

    def test_unknownTypesMatchNothing(self):
        self.assertFalse(passes({"types": ["trade"]}, tokenMessage()))
        self.assertFalse(passes({"types": ["trade"]}, plainMessage()))
        self.assertFalse(passes({"types": ["trade"]}, dict(plainMessage(), type="trade")))
        self.assertTrue(passes({"types": ["trade", "mint"]}, tokenMessage("mint")))

    def test_orWithinAndAcross(self):
        f = {"types": ["mint", "burn"], "asset_codes": ["USDC"]}
        self.assertTrue(passes(f, tokenMessage("mint")))
        self.assertTrue(passes(f, tokenMessage("burn")))
        self.assertFalse(passes(f, tokenMessage("transfer")))
        self.assertFalse(passes(f, tokenMessage("mint", code="EURC")))

    def test_accounts(self):
        self.assertTrue(passes({"account_ids": [G1]}, tokenMessage(frm=G1, to=G2)))
        self.assertTrue(passes({"account_ids": [G2]}, tokenMessage(frm=G1, to=G2)))
        self.assertTrue(passes({"account_ids": [G3]},  # e.g. the spender of an approve
                               tokenMessage("approve", frm=G1, to=None, accountIds=[G1, G3])))
        self.assertTrue(passes({"account_ids": [USDC_SAC]}, tokenMessage()))
        self.assertTrue(passes({"account_ids": [C1]}, plainMessage()))
        self.assertFalse(passes({"account_ids": [G3, C2]}, tokenMessage(frm=G1, to=G2)))
        self.assertFalse(passes({"account_ids": [G1]}, plainMessage()))
        # from/to count even when account_ids is missing
        msg = tokenMessage(frm=G4, to=G2)
        del msg["account_ids"]
        self.assertTrue(passes({"account_ids": [G4]}, msg))

    def test_muxedBothSides(self):
        self.assertTrue(passes({"account_ids": [M1]}, tokenMessage(frm=G1, to=G2)))
        self.assertTrue(passes({"account_ids": [G1]}, tokenMessage(frm=G2, to=M1)))
        self.assertTrue(passes({"account_ids": [M1B]}, tokenMessage(frm=G2, to=M1)))

    def test_assetCodeAnyIssuerVsExactIssuer(self):
        other = tokenMessage(issuer=G3, contract=C2)
        self.assertTrue(passes({"asset_codes": ["USDC"]}, tokenMessage()))
        self.assertTrue(passes({"asset_codes": ["USDC"]}, other))
        self.assertTrue(passes({"asset_codes": ["USDC:" + USDC_ISSUER]}, tokenMessage()))
        self.assertFalse(passes({"asset_codes": ["USDC:" + USDC_ISSUER]}, other))
        self.assertFalse(passes({"asset_codes": ["usdc"]}, tokenMessage()))  # case-sensitive

    def test_native(self):
        native = tokenMessage(code="XLM", issuer=None, contract=NATIVE_SAC)
        creditXlm = tokenMessage(code="XLM", issuer=G3, contract=C2)
        for name in ("XLM", "native"):
            self.assertTrue(passes({"asset_codes": [name]}, native))
            self.assertFalse(passes({"asset_codes": [name]}, creditXlm))
            self.assertFalse(passes({"asset_codes": [name]}, tokenMessage()))
        self.assertTrue(passes({"asset_codes": ["XLM:" + G3]}, creditXlm))
        self.assertFalse(passes({"asset_codes": ["XLM:" + G3]}, native))

    def test_unverifiedLookAlikesNeverMatchAssetFilters(self):
        fakeUsdc = tokenMessage(verified=False, contract=C1)
        fakeXlm = tokenMessage(code="XLM", issuer=None, verified=False, contract=C1)
        for f in (["USDC"], ["USDC:" + USDC_ISSUER]):
            self.assertFalse(passes({"asset_codes": f}, fakeUsdc))
        self.assertFalse(passes({"asset_codes": ["XLM"]}, fakeXlm))
        # still delivered to clients not filtering on asset, e.g. by contract
        self.assertTrue(passes({"account_ids": [C1]}, fakeUsdc))

    def test_customTokenWithoutAsset(self):
        custom = tokenMessage(code=None, issuer=None, contract=C2)
        self.assertFalse(passes({"asset_codes": ["USDC"]}, custom))
        self.assertTrue(passes({"account_ids": [C2], "types": ["transfer"]}, custom))

    def test_minAmount(self):
        self.assertTrue(passes({"min_amount": "150"}, tokenMessage(amount="150")))
        self.assertTrue(passes({"min_amount": "149.9999999"}, tokenMessage(amount="150")))
        self.assertFalse(passes({"min_amount": "150.0000001"}, tokenMessage(amount="150")))
        self.assertFalse(passes({"min_amount": "100"}, tokenMessage(amount="99.9999999")))
        self.assertFalse(passes({"min_amount": "0"}, tokenMessage(amount=None)))
        self.assertFalse(passes({"min_amount": "0"}, plainMessage()))
        self.assertTrue(passes({"min_amount": "0"}, tokenMessage(amount="0")))
        self.assertTrue(passes({"min_amount": 1e20},
                               tokenMessage(amount="170141183460469231731687303715.884105")))

    def test_feeRefundComparedSigned(self):
        refund = tokenMessage("fee", to=None, code="XLM", issuer=None, amount="-0.5",
                             contract=NATIVE_SAC)
        self.assertFalse(passes({"min_amount": "0"}, refund))
        self.assertTrue(passes({"types": ["fee"]}, refund))

    def test_combinedGuideExample(self):
        f = {"types": ["payment"], "account_ids": [], "asset_codes": ["USDC"],
             "min_amount": "100"}
        self.assertTrue(passes(f, tokenMessage(amount="100")))
        self.assertFalse(passes(f, tokenMessage(amount="99")))
        self.assertFalse(passes(f, tokenMessage(to=G1, amount="500")))
        self.assertFalse(passes(f, tokenMessage(code="XLM", issuer=None, contract=NATIVE_SAC)))
