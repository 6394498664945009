"""
Tests for L{stellarflow.meta.values} and the operation type names of L{stellarflow.meta.messages}.
"""

from stellar_sdk import Asset, MuxedAccount
from stellar_sdk import xdr as x
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.meta import values
from stellarflow.meta.messages import OPERATION_TYPES
from stellarflow.testing import ledgerbuild as lb

ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"


class ValueTests(SynchronousTestCase):
    def test_assets(self):
        self.assertEqual(values.asset(Asset.native().to_xdr_object()), ("XLM", None))
        self.assertEqual(values.asset(Asset("USDC", ISSUER).to_xdr_object()), ("USDC", ISSUER))
        self.assertEqual(values.asset(Asset("A", ISSUER).to_xdr_object()), ("A", ISSUER))
        self.assertEqual(values.asset(Asset("SolarCity", ISSUER).to_xdr_object()), ("SolarCity", ISSUER))
        self.assertEqual(values.asset(Asset("ABCDEFGHIJKL", ISSUER).to_xdr_object()), ("ABCDEFGHIJKL", ISSUER))

    def test_amounts(self):
        """
        Exact, fixed-point, no trailing zeros: 3 stroops is 0.0000003, never 3E-7.
        """
        self.assertEqual([values.amount(x.Int64(n)) for n in (3, 10**7, 1930779918, 0, 2**63 - 1)],
                         ["0.0000003", "1", "193.0779918", "0", "922337203685.4775807"])

    def test_muxedAccounts(self):
        plain = lb.muxed(ISSUER)
        self.assertEqual(values.muxedAccount(plain), (ISSUER, None, None))
        self.assertEqual(values.muxedBase(plain), ISSUER)
        address = MuxedAccount(ISSUER, 2**64 - 1).account_muxed
        self.assertEqual(values.muxedAccount(lb.muxed(address)), (ISSUER, address, "18446744073709551615"))
        self.assertEqual(values.muxedBase(lb.muxed(address)), ISSUER)
        self.assertEqual(values.muxedAddress(ISSUER, 2**64 - 1), address)

    def test_memos(self):
        self.assertIsNone(values.memo(lb.memoOf()))
        self.assertEqual(values.memo(lb.memoOf("text", "hello")), ("text", "hello"))
        self.assertEqual(values.memo(lb.memoOf("id", 0)), ("id", "0"))
        self.assertEqual(values.memo(lb.memoOf("hash", b"\x00" * 32)),
                         ("hash", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
        self.assertEqual(values.memo(lb.memoOf("return", b"\x01" * 32))[0], "return")

    def test_operationTypeNames(self):
        """
        Horizon's names for every operation type of the XDR (a new type fails this until named).
        """
        self.assertEqual(OPERATION_TYPES, {t.value: t.name.lower() for t in x.OperationType})
        self.assertEqual(OPERATION_TYPES[2], "path_payment_strict_receive")
        self.assertEqual(OPERATION_TYPES[25], "extend_footprint_ttl")
