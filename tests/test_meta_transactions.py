"""
Tests for L{stellarflow.meta.transactions}: envelopes paired with results by hash, apply order,
fee bumps, V0 envelopes, failed and rejected transactions, every LedgerCloseMeta and
TransactionMeta version, on ledgers built with L{stellarflow.testing.ledgerbuild}.
"""

from stellar_sdk import Asset, ManageBuyOffer, Payment
from stellar_sdk import xdr as x
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.events.network import PUBLIC, TESTNET
from stellarflow.meta import LedgerMismatch, ledgerMessages
from stellarflow.meta.transactions import envelopeHash, envelopes, ledgerParts, ledgerTransactions, networkId
from stellarflow.testing import ledgerbuild as lb

LEDGER = 700
CLOSED = 1700000000  # 2023-11-14T22:13:20Z


def payment(source, destination, stroops, memo=None):
    """A successful one-payment transaction of XLM."""
    envelope = lb.envelope(source, [Payment(destination, Asset.native(), lb.amountText(stroops))], memo=memo)
    return lb.BuiltTransaction(envelope, lb.transactionResult([lb.paymentSuccess()]), lb.metaV3([[]]))


def ledger(transactions, version=2, passphrase=TESTNET):
    lcm = lb.ledgerCloseMeta(lb.ledgerHeader(LEDGER, CLOSED), transactions, passphrase, version=version)
    # What a reader gets: the ledger through its XDR bytes.
    return x.LedgerCloseMeta.from_xdr_bytes(lcm.to_xdr_bytes())


class PairingTests(SynchronousTestCase):
    def test_applyOrderNotSetOrder(self):
        """
        Transactions are numbered in apply order (txProcessing), whatever order the set lists
        them in.
        """
        built = [payment(lb.account(i), lb.account(100), 10000000 * i) for i in range(1, 9)]
        lcm = ledger(built)
        nid = networkId(TESTNET)
        applied = [lb.transactionHash(t.envelope, TESTNET) for t in built]
        listed = [envelopeHash(e, nid) for e in envelopes(ledgerParts(lcm)[1])]
        self.assertEqual(sorted(listed), sorted(applied))
        self.assertNotEqual(listed, applied)
        messages = ledgerMessages(lcm, TESTNET)
        self.assertEqual([(m["transaction_index"], m["from"], m["amount"], m["transaction_hash"]) for m in messages],
                         [(i, lb.account(i), str(i), applied[i - 1].hex()) for i in range(1, 9)])

    def test_hashesAgreeWithStellarSdk(self):
        """
        Envelope hashes (plain, V0, fee bump) are stellar-sdk's.
        """
        nid = networkId(PUBLIC)
        inner = lb.envelope(lb.account(1), [Payment(lb.account(2), Asset.native(), "1")])
        for envelope in (inner, lb.envelopeV0(lb.account(3), [Payment(lb.account(2), Asset.native(), "1")], sequence=5),
                         lb.feeBump(inner, lb.account(4))):
            self.assertEqual(envelopeHash(envelope, nid), lb.transactionHash(envelope, PUBLIC))

    def test_wrongPassphrase(self):
        """
        A ledger read with another network's passphrase pairs nothing: an error that says so.
        """
        lcm = ledger([payment(lb.account(1), lb.account(2), 1)])
        error = self.assertRaises(LedgerMismatch, ledgerMessages, lcm, PUBLIC)
        self.assertIn("ledger 700", str(error))
        self.assertIn(repr(PUBLIC), str(error))

    def test_feeBump(self):
        """
        A fee bump stands for its inner transaction (source, operations) under its own, outer
        hash; the fee source pays nothing here.
        """
        inner = lb.envelope(lb.account(1), [Payment(lb.account(2), Asset.native(), "2.5")], sequence=9)
        bump = lb.feeBump(inner, lb.account(3))
        result = lb.transactionResult([lb.paymentSuccess()], bumped=bump, passphrase=TESTNET)
        lcm = ledger([lb.BuiltTransaction(bump, result, lb.metaV3([[]]))])
        (message,) = ledgerMessages(lcm, TESTNET)
        self.assertEqual((message["from"], message["to"], message["amount"]), (lb.account(1), lb.account(2), "2.5"))
        self.assertEqual(message["transaction_hash"], lb.transactionHash(bump, TESTNET).hex())
        self.assertNotEqual(message["transaction_hash"], lb.innerHash(bump, TESTNET).hex())

    def test_feeBumpInnerFailed(self):
        """
        A fee bump whose inner transaction failed (its first operation saying SUCCESS) gives nothing.
        """
        inner = lb.envelope(lb.account(1), [Payment(lb.account(2), Asset.native(), "1"),
                                            Payment(lb.account(2), Asset.native(), "1")])
        bump = lb.feeBump(inner, lb.account(3))
        result = lb.transactionResult([lb.paymentSuccess(), lb.paymentFailure()], successful=False, bumped=bump,
                                      passphrase=TESTNET)
        lcm = ledger([lb.BuiltTransaction(bump, result, lb.metaV3())])
        (tx,) = ledgerTransactions(lcm, TESTNET)
        self.assertEqual((tx.successful, len(tx.results)), (False, 2))
        self.assertEqual(ledgerMessages(lcm, TESTNET), [])

    def test_failedTransactionWithSuccessfulOperation(self):
        """
        txFAILED whose first operation says PAYMENT_SUCCESS: nothing happened, nothing is emitted
        (the successful transaction beside it is).
        """
        envelope = lb.envelope(lb.account(1), [Payment(lb.account(2), Asset.native(), "1"),
                                               Payment(lb.account(2), Asset.native(), "1")])
        failed = lb.BuiltTransaction(envelope, lb.transactionResult([lb.paymentSuccess(), lb.paymentFailure()],
                                                                    successful=False), lb.metaV3())
        lcm = ledger([failed, payment(lb.account(5), lb.account(6), 30000000)])
        self.assertEqual([(m["transaction_index"], m["from"], m["amount"]) for m in ledgerMessages(lcm, TESTNET)],
                         [(2, lb.account(5), "3")])

    def test_rejectedTransaction(self):
        """
        A transaction rejected before it ran (txBAD_SEQ: no operation results) is skipped.
        """
        envelope = lb.envelope(lb.account(1), [Payment(lb.account(2), Asset.native(), "1")])
        rejected = lb.BuiltTransaction(envelope, lb.transactionResult(None, code=x.TransactionResultCode.txBAD_SEQ),
                                       lb.metaV3())
        lcm = ledger([rejected])
        (tx,) = ledgerTransactions(lcm, TESTNET)
        self.assertEqual((tx.successful, tx.results), (False, None))
        self.assertEqual(ledgerMessages(lcm, TESTNET), [])

    def test_v0Envelope(self):
        """
        A pre-protocol-13 envelope (raw key source) is paired and read like the others.
        """
        envelope = lb.envelopeV0(lb.account(1), [Payment(lb.account(2), Asset.native(), "4")], memo=lb.memoOf("id", 8))
        lcm = ledger([lb.BuiltTransaction(envelope, lb.transactionResult([lb.paymentSuccess()]), lb.metaV1([[]]))],
                     version=0)
        (message,) = ledgerMessages(lcm, TESTNET)
        self.assertEqual((message["from"], message["amount"], message["memo_type"], message["memo"]),
                         (lb.account(1), "4", "id", "8"))


class VersionTests(SynchronousTestCase):
    def test_ledgerVersions(self):
        """
        LedgerCloseMeta v0 (plain set), v1 (generalized) and v2 (parallel Soroban phase) say the
        same.
        """
        built = [payment(lb.account(i), lb.account(50), i) for i in range(1, 5)]
        results = [ledgerMessages(ledger(built, version=v), TESTNET) for v in (0, 1, 2)]
        self.assertEqual([len(r) for r in results], [4, 4, 4])
        self.assertEqual(results[0], results[1])
        self.assertEqual(results[1], results[2])

    def test_transactionMetaVersions(self):
        """
        Operation changes (an order-book trade's listed price) are read from transaction meta
        v1, v2, v3 and v4 alike.
        """
        usd = Asset("USD", lb.account(9))
        offer = lb.offerEntry(lb.account(7), 42, usd, Asset.native(), 1000, 3, 2)
        atom = lb.orderBookAtom(lb.account(7), 42, usd, 100, Asset.native(), 150)
        result = lb.transactionResult([lb.manageOfferSuccess(x.OperationType.MANAGE_BUY_OFFER, [atom])])
        envelope = lb.envelope(lb.account(1), [ManageBuyOffer(Asset.native(), usd, "0.00001", "1.5")])
        changes = [lb.offerState(offer)]
        metas = [lb.metaV1([changes]), lb.metaV2([changes]), lb.metaV3([changes]), lb.metaV4([(changes, [])])]
        for meta in metas:
            (trade,) = ledgerMessages(ledger([lb.BuiltTransaction(envelope, result, meta)]), TESTNET)
            self.assertEqual((trade["price"], trade["sold_amount"], trade["bought_amount"]),
                             ({"n": "3", "d": "2"}, "0.00001", "0.000015"), meta.v)

    def test_unsupportedVersion(self):
        lcm = ledger([])
        lcm.v = 3
        self.assertRaises(ValueError, ledgerMessages, lcm, TESTNET)
