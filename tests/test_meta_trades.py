"""
Tests for L{stellarflow.meta.trades}: claim atom arms, the passive offer's result arm, skipped
zero-amount atoms, prices, the taker's offer, on ledgers built with
L{stellarflow.testing.ledgerbuild}.
"""

from stellar_sdk import Asset, CreatePassiveSellOffer, ManageBuyOffer, ManageSellOffer, PathPaymentStrictSend
from stellar_sdk import xdr as x
from twisted.trial.unittest import SynchronousTestCase

from stellarflow import positions
from stellarflow.events.network import TESTNET
from stellarflow.meta import ledgerMessages
from stellarflow.meta.messages import TRADE_INDEX
from stellarflow.testing import ledgerbuild as lb

LEDGER = 900
TAKER = lb.account(1)
MAKER = lb.account(2)
OTHER_MAKER = lb.account(3)
ISSUER = lb.account(4)
USD = Asset("USD", ISSUER)
XLM = Asset.native()
POOL = "4816ceca535ffef323d9e8af39b8a0b8c5227fdd5bd9d7eb414b4caeff27f644"
SELL = x.OperationType.MANAGE_SELL_OFFER
BUY = x.OperationType.MANAGE_BUY_OFFER
PASSIVE = x.OperationType.CREATE_PASSIVE_SELL_OFFER


def tradesOf(operation, result, changes=(), source=TAKER):
    envelope = lb.envelope(source, [operation])
    built = lb.BuiltTransaction(envelope, lb.transactionResult([result]), lb.metaV3([list(changes)]))
    lcm = lb.ledgerCloseMeta(lb.ledgerHeader(LEDGER, 1700000000), [built], TESTNET)
    return ledgerMessages(x.LedgerCloseMeta.from_xdr_bytes(lcm.to_xdr_bytes()), TESTNET, emit=("trade",))


def makerOffer(seller=MAKER, offerId=11, n=5, d=2):
    """The maker's offer selling USD for XLM at n/d, as it stood before the operation."""
    return lb.offerState(lb.offerEntry(seller, offerId, USD, XLM, 10**9, n, d))


def fields(message):
    keep = ("trade_type", "seller", "liquidity_pool_id", "offer_id", "buyer", "buyer_offer_id", "sold_asset_code",
            "sold_amount", "bought_asset_code", "bought_amount", "price")
    return tuple(message[k] for k in keep)


class TradeTests(SynchronousTestCase):
    def test_orderBook(self):
        """
        The maker sold, the taker bought; the price is the maker offer's listed price (5/2), not
        the ratio of the amounts (25000001/10000000).
        """
        atom = lb.orderBookAtom(MAKER, 11, USD, 10000000, XLM, 25000001)
        (m,) = tradesOf(ManageBuyOffer(XLM, USD, "1", "0.4"), lb.manageOfferSuccess(BUY, [atom]), [makerOffer()])
        self.assertEqual(fields(m), ("orderbook", MAKER, None, "11", TAKER, None, "USD", "1", "XLM", "2.5000001",
                                     {"n": "5", "d": "2"}))
        self.assertEqual((m["operation_type"], m["id"]), ("manage_buy_offer", positions.eventId(LEDGER, 1, 0, TRADE_INDEX)))

    def test_claimAtomV0(self):
        """
        An old V0 atom names the seller by its raw key; the listed price is found all the same.
        """
        atom = lb.v0Atom(MAKER, 11, USD, 10000000, XLM, 25000000)
        (m,) = tradesOf(ManageSellOffer(XLM, USD, "2.5", "0.4"), lb.manageOfferSuccess(SELL, [atom]), [makerOffer()])
        self.assertEqual(fields(m), ("orderbook", MAKER, None, "11", TAKER, None, "USD", "1", "XLM", "2.5",
                                     {"n": "5", "d": "2"}))

    def test_liquidityPool(self):
        """
        A pool trade has the pool as seller and the exchanged amounts as its price.
        """
        atom = lb.poolAtom(POOL, USD, 30, XLM, 70)
        op = PathPaymentStrictSend(TAKER, XLM, "0.000007", USD, "0.000001", [])
        (m,) = tradesOf(op, lb.pathPaymentStrictSendSuccess([atom], TAKER, USD, 30))
        self.assertEqual(fields(m), ("liquidity_pool", None, POOL, None, TAKER, None, "USD", "0.000003", "XLM",
                                     "0.000007", {"n": "70", "d": "30"}))

    def test_passiveOfferInManageSellArm(self):
        """
        Stellar-core writes a create_passive_sell_offer's result in the manage-sell arm: its
        trades are read from there (and from the passive arm when that is used).
        """
        atom = lb.orderBookAtom(MAKER, 11, USD, 10000000, XLM, 25000000)
        op = CreatePassiveSellOffer(XLM, USD, "2.5", "0.4")
        for arm in (SELL, PASSIVE):
            (m,) = tradesOf(op, lb.manageOfferSuccess(arm, [atom]), [makerOffer()])
            self.assertEqual((m["operation_type"], m["seller"], m["sold_amount"]),
                             ("create_passive_sell_offer", MAKER, "1"), arm)

    def test_zeroAmountAtomsSkipped(self):
        """
        An atom with both amounts zero (an unfunded offer removed in passing) is no trade; the
        others keep their positions in the result as their order.
        """
        atoms = [
            lb.orderBookAtom(MAKER, 11, USD, 10000000, XLM, 25000000),
            lb.orderBookAtom(OTHER_MAKER, 12, USD, 0, XLM, 0),
            lb.poolAtom(POOL, USD, 5, XLM, 0),
        ]
        changes = [makerOffer(), makerOffer(OTHER_MAKER, 12, 3, 1)]
        messages = tradesOf(ManageBuyOffer(XLM, USD, "2", "0.4"), lb.manageOfferSuccess(BUY, atoms), changes)
        self.assertEqual([(m["seller"] or m["liquidity_pool_id"], int(m["id"][20:]) - TRADE_INDEX) for m in messages],
                         [(MAKER, 0), (POOL, 2)])
        self.assertEqual(messages[1]["price"], {"n": "0", "d": "5"})

    def test_takerOffer(self):
        """
        buyer_offer_id is the taker's offer when the operation left one (created or updated), in
        every trade of the operation; none when it was fully filled.
        """
        atoms = [lb.orderBookAtom(MAKER, 11, USD, 1, XLM, 2), lb.orderBookAtom(OTHER_MAKER, 12, USD, 1, XLM, 3)]
        changes = [makerOffer(), makerOffer(OTHER_MAKER, 12, 3, 1)]
        left = lb.offerEntry(TAKER, 987654321012, XLM, USD, 10**8, 2, 5)
        op = ManageSellOffer(XLM, USD, "10", "0.4")
        effects = x.ManageOfferEffect
        for effect in (effects.MANAGE_OFFER_CREATED, effects.MANAGE_OFFER_UPDATED):
            messages = tradesOf(op, lb.manageOfferSuccess(SELL, atoms, left, effect), changes)
            self.assertEqual([m["buyer_offer_id"] for m in messages], ["987654321012"] * 2)
        messages = tradesOf(op, lb.manageOfferSuccess(SELL, atoms), changes)
        self.assertEqual([m["buyer_offer_id"] for m in messages], [None, None])

    def test_buyerIsTheOperationSource(self):
        """
        The buyer is the operation's source when it has one (its G account when muxed).
        """
        atom = lb.orderBookAtom(MAKER, 11, USD, 1, XLM, 2)
        op = ManageBuyOffer(XLM, USD, "1", "0.4", source=lb.muxedAddress(OTHER_MAKER, 9))
        (m,) = tradesOf(op, lb.manageOfferSuccess(BUY, [atom]), [makerOffer()])
        self.assertEqual(m["buyer"], OTHER_MAKER)

    def test_priceWithoutOfferState(self):
        """
        Without the maker offer's prior state in the meta there is no listed price: C{None}.
        """
        atom = lb.orderBookAtom(MAKER, 11, USD, 1, XLM, 2)
        (m,) = tradesOf(ManageBuyOffer(XLM, USD, "1", "0.4"), lb.manageOfferSuccess(BUY, [atom]),
                        [makerOffer(offerId=12)])
        self.assertIsNone(m["price"])

    def test_noFill(self):
        """
        An offer placed without crossing anything is no trade.
        """
        left = lb.offerEntry(TAKER, 5, XLM, USD, 10**8, 2, 5)
        self.assertEqual(tradesOf(ManageSellOffer(XLM, USD, "10", "0.4"), lb.manageOfferSuccess(SELL, [], left)), [])
