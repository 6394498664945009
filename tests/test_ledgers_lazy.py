"""
Tests for L{stellarflow.ledgers.lazy}: with ledger entry changes decoded lazily, every recorded
ledger gives the same messages and re-encodes to the same bytes; each entry and key type is
skipped exactly or left to stellar-sdk; and the stellar-sdk method it replaces is still there.
"""

import inspect

from stellar_sdk import Asset, xdr
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.events.network import PUBLIC, TESTNET
from stellarflow.ledgers import lazy
from stellarflow.message import seal
from stellarflow.meta import ledgerMessages
from stellarflow.testing import ledgerbuild as lb
from stellarflow.testing.ledgerchain import LedgerChain
from stellarflow.testing.ledgerfiles import corpusLedger, fixtureLedgers

FIXTURES = [("galexie-pubnet-53312000.xdr.zstd", PUBLIC), ("galexie-testnet-FFFFFC18--999.xdr.zst", TESTNET),
            ("galexie-testnet-FFFFFC19--998.xdr.zst", TESTNET), ("galexie-testnet-FFFFFC1A--997.xdr.zst", TESTNET),
            ("docs-getledgers-testnet-36233-limit2.json", TESTNET),
            ("pysdk-getlatestledger-testnet-1283415-lcm-v2.json", TESTNET), ("pysdk-getledgers-local-10-11.json", TESTNET)]


class LazyCase(SynchronousTestCase):
    def setUp(self):
        self.addCleanup(lazy.uninstall)

    def both(self, raw, passphrase):
        lazy.uninstall()
        eager = [seal(m).json for m in ledgerMessages(xdr.LedgerCloseMeta.from_xdr_bytes(raw), passphrase)]
        lazy.install()
        decoded = xdr.LedgerCloseMeta.from_xdr_bytes(raw)
        self.assertEqual(decoded.to_xdr_bytes(), raw)
        lazily = [seal(m).json for m in ledgerMessages(decoded, passphrase)]
        self.assertEqual(lazily, eager)
        return lazily


class LedgerTests(LazyCase):
    def test_recordedLedgers(self):
        counts = []
        for name, passphrase in FIXTURES:
            for lcm in fixtureLedgers(name):
                counts.append(len(self.both(lcm.to_xdr_bytes(), passphrase)))
        counts.append(len(self.both(corpusLedger().to_xdr_bytes(), PUBLIC)))
        self.assertEqual(counts[0], 46)
        self.assertEqual(counts[-1], 359)

    def test_syntheticLedgers(self):
        chain = LedgerChain(500, lambda n: 1700000000 + n, TESTNET, seed=4, transactions=12)
        for n in range(500, 506):
            self.assertTrue(self.both(chain.meta(n), TESTNET))

    def test_undecodedUntilRead(self):
        lazy.install()
        (lcm,) = fixtureLedgers("galexie-pubnet-53312000.xdr.zstd")
        decoded = xdr.LedgerCloseMeta.from_xdr_bytes(lcm.to_xdr_bytes())
        changes = decoded.v1.tx_processing[0].tx_apply_processing.v3.operations[0].changes
        self.assertIsInstance(changes, lazy.LazyChanges)
        self.assertIsNone(changes._changes)
        self.assertTrue(changes.ledger_entry_changes)
        self.assertIs(changes.ledger_entry_changes, changes._changes)


def _account(n):
    return lb.accountId(lb.account(n))


def _change(kind, **arm):
    return xdr.LedgerEntryChange(kind, **arm)


class EntryTests(LazyCase):
    def roundTrip(self, changes, measured=True):
        raw = xdr.LedgerEntryChanges(changes).to_xdr_bytes()
        if measured:
            self.assertEqual(lazy.measure(raw, 0), len(raw))
        else:
            self.assertRaises(lazy.Unmeasured, lazy.measure, raw, 0)
        lazy.install()
        back = xdr.LedgerEntryChanges.from_xdr_bytes(raw)
        self.assertEqual(isinstance(back, lazy.LazyChanges), measured)
        self.assertEqual(xdr.LedgerEntryChanges(back.ledger_entry_changes).to_xdr_bytes(), raw)

    def test_dataEntryAndKeys(self):
        data = xdr.DataEntry(_account(1), xdr.String64(b"config"), xdr.DataValue(b"\x01\x02\x03"), xdr.DataEntryExt(0))
        entry = xdr.LedgerEntry(xdr.Uint32(9), xdr.LedgerEntryData(xdr.LedgerEntryType.DATA, data=data),
                                xdr.LedgerEntryExt(0))
        K = xdr.LedgerEntryType
        keys = [
            xdr.LedgerKey(K.ACCOUNT, account=xdr.LedgerKeyAccount(_account(1))),
            xdr.LedgerKey(K.TRUSTLINE, trust_line=xdr.LedgerKeyTrustLine(
                _account(2), Asset("USD", lb.account(3)).to_trust_line_asset_xdr_object())),
            xdr.LedgerKey(K.DATA, data=xdr.LedgerKeyData(_account(1), xdr.String64(b"x"))),
            xdr.LedgerKey(K.LIQUIDITY_POOL, liquidity_pool=xdr.LedgerKeyLiquidityPool(lb.poolId("ab" * 32))),
            xdr.LedgerKey(K.TTL, ttl=xdr.LedgerKeyTtl(xdr.Hash(b"\x07" * 32))),
            xdr.LedgerKey(K.CONTRACT_CODE, contract_code=xdr.LedgerKeyContractCode(xdr.Hash(b"\x08" * 32))),
            xdr.LedgerKey(K.CONFIG_SETTING, config_setting=xdr.LedgerKeyConfigSetting(
                xdr.ConfigSettingID.CONFIG_SETTING_CONTRACT_MAX_SIZE_BYTES)),
        ]
        T = xdr.LedgerEntryChangeType
        self.roundTrip([_change(T.LEDGER_ENTRY_CREATED, created=entry), _change(T.LEDGER_ENTRY_STATE, state=entry)]
                       + [_change(T.LEDGER_ENTRY_REMOVED, removed=k) for k in keys])

    def test_sponsoredOffer(self):
        offer = lb.offerEntry(lb.account(4), 77, Asset.native(), Asset("EUROPEAN", lb.account(5)), 10, 1, 3)
        ext = xdr.LedgerEntryExt(1, v1=xdr.LedgerEntryExtensionV1(xdr.SponsorshipDescriptor(_account(6)),
                                                                   xdr.LedgerEntryExtensionV1Ext(0)))
        entry = xdr.LedgerEntry(xdr.Uint32(1), xdr.LedgerEntryData(xdr.LedgerEntryType.OFFER, offer=offer), ext)
        self.roundTrip([_change(xdr.LedgerEntryChangeType.LEDGER_ENTRY_UPDATED, updated=entry)])

    def test_contractDataLeftToTheSdk(self):
        key = xdr.LedgerKey(xdr.LedgerEntryType.CONTRACT_DATA, contract_data=xdr.LedgerKeyContractData(
            xdr.SCAddress(xdr.SCAddressType.SC_ADDRESS_TYPE_ACCOUNT, account_id=_account(1)),
            xdr.SCVal(xdr.SCValType.SCV_U32, u32=xdr.Uint32(5)), xdr.ContractDataDurability.PERSISTENT))
        self.roundTrip([_change(xdr.LedgerEntryChangeType.LEDGER_ENTRY_REMOVED, removed=key)], measured=False)


class FenceTests(SynchronousTestCase):
    """
    What the module relies on in stellar-sdk: fails when an upgrade changes it.
    """

    def test_sdkMethod(self):
        self.assertEqual(list(inspect.signature(lazy._original).parameters)[:2], ["cls", "unpacker"])
        self.assertIs(xdr.LedgerEntryChanges.unpack.__func__, lazy._original)
        lazy.install()
        self.assertIsNot(xdr.LedgerEntryChanges.unpack.__func__, lazy._original)
        lazy.uninstall()
        self.assertIs(xdr.LedgerEntryChanges.unpack.__func__, lazy._original)
        calls = [name for name in dir(xdr) if name in ("OperationMeta", "OperationMetaV2", "TransactionMetaV3")]
        self.assertEqual(len(calls), 3)
