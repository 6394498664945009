"""
Tests for the ledger test helpers: L{stellarflow.testing.ledgerbuild} (built ledgers are what a
reader of real ledgers expects) and L{stellarflow.testing.ledgerfiles} (the recorded ledgers,
faithful copies of ../shared with their sources).
"""

import base64
import filecmp
import hashlib
import os

from stellar_sdk import Asset, Payment
from stellar_sdk import xdr as x
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.events.network import PUBLIC, TESTNET
from stellarflow.testing import fixtures
from stellarflow.testing import ledgerbuild as lb
from stellarflow.testing.ledgerfiles import CORPUS_LEDGER, corpusLedger, fixtureJson, fixtureLedgers


class LedgerBuildTests(SynchronousTestCase):
    def test_getLedgersRecord(self):
        """
        A built ledger as a getLedgers item: hash of the header, close time as a string, the
        header and the meta as base64 XDR that decode to the same ledger.
        """
        envelope = lb.envelope(lb.account(1), [Payment(lb.account(2), Asset.native(), "1")])
        built = lb.BuiltTransaction(envelope, lb.transactionResult([lb.paymentSuccess()]), lb.metaV4([([], [])]))
        lcm = lb.ledgerCloseMeta(lb.ledgerHeader(77, 1700000000, protocol=25), [built], TESTNET)
        record = lb.getLedgersRecord(lcm)
        header = x.LedgerHeaderHistoryEntry.from_xdr(record["headerXdr"])
        self.assertEqual(record["hash"], hashlib.sha256(header.header.to_xdr_bytes()).hexdigest())
        self.assertEqual((record["sequence"], record["ledgerCloseTime"]), (77, "1700000000"))
        self.assertEqual(base64.b64decode(record["metadataXdr"]), lcm.to_xdr_bytes())

    def test_transactionHash(self):
        """
        The recorded protocol-25 ledger's envelope hashes to its result's hash.
        """
        (lcm,) = fixtureLedgers("pysdk-getlatestledger-testnet-1283415-lcm-v2.json")
        envelope = lcm.v2.tx_set.v1_tx_set.phases[0].v0_components[0].txs_maybe_discounted_fee.txs[0]
        self.assertEqual(lb.transactionHash(envelope, TESTNET).hex(),
                         "eeee8c3d932cbc6007c14b75998c59599ea29f265a96e8a889d27c0d459fd183")

    def test_assembledTransactionsCheckTheirHashes(self):
        records = fixtureJson("jssdk-mainnet-gettransactions-corpus-p27.json")["records"][:2]
        self.assertEqual(len(lb.assembledTransactions(records, PUBLIC)), 2)
        self.assertRaises(ValueError, lb.assembledTransactions, records, TESTNET)

    def test_corpusLedger(self):
        """
        The assembled mainnet ledger: its real header (protocol 27) and the 50 transactions.
        """
        lcm = corpusLedger()
        header = lcm.v2.ledger_header.header
        self.assertEqual((header.ledger_seq.uint32, header.ledger_version.uint32), (CORPUS_LEDGER, 27))
        self.assertEqual(len(lcm.v2.tx_processing), 50)
        self.assertEqual(lcm.v2.tx_processing[0].result.transaction_hash.hash.hex(),
                         "329f3718df30444aff4087aad459eca28b0ec6eb0973c135da42610f1bf10ed3")


class LedgerFixtureTests(SynchronousTestCase):
    """
    The ledger fixtures (``tests/fixtures/ledgers``) have their sources and equal their originals.
    """

    def names(self):
        directory = os.path.join(fixtures.FIXTURES, "ledgers")
        return sorted(n for n in os.listdir(directory) if not n.endswith(".source.txt"))

    def test_everyFixtureHasItsSource(self):
        names = self.names()
        self.assertEqual(len(names), 10)
        for name in names:
            self.assertTrue(os.path.exists(fixtures.fixturePath("ledgers", name + ".source.txt")), name)

    def test_copiesEqualShared(self):
        original = os.path.join(fixtures.SHARED, "fixtures", "ledgers")
        if not os.path.isdir(original):
            return
        for name in os.listdir(os.path.join(fixtures.FIXTURES, "ledgers")):
            self.assertTrue(filecmp.cmp(os.path.join(original, name), fixtures.fixturePath("ledgers", name),
                                        shallow=False), name)
