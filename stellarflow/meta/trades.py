"""
Trades: one per offer or pool crossed by an operation of a successful transaction, as Horizon's
trades processor reads them.

The operations that trade are ``manage_sell_offer``, ``manage_buy_offer``,
``create_passive_sell_offer`` and both path payments.  Their result lists the crossed offers and
pools as C{ClaimAtom}s, in the order they were crossed, one trade each, except atoms whose two
amounts are both zero (offers that stellar-core removed because their seller could no longer
fund them: nothing changed hands).  Stellar-core writes a ``create_passive_sell_offer``'s result
in the ``manage_sell_offer`` arm: the result's own arm is read, whatever the operation.

Atom arms: ``V0`` (the seller as a raw ed25519 key, from old ledgers), ``ORDER_BOOK``
(``sellerID``, ``offerID``) and ``LIQUIDITY_POOL`` (``liquidityPoolID``).  The I{seller} is the
maker, the offer's account (``seller``, with ``offer_id``) or the pool (``liquidity_pool_id``,
hex; ``seller`` is then C{None}); the I{buyer} is the taker, the operation's source account
(else the transaction's).  ``sold_*`` is what the seller gave (``assetSold``/``amountSold``),
``bought_*`` what it received (``assetBought``/``amountBought``).  ``buyer_offer_id`` is the
taker's own offer when the operation left one on the book (created or updated, per the manage
offer result), else C{None} (Horizon synthesises an id there; we do not).  ``trade_type`` is
``orderbook`` or ``liquidity_pool``.

The price, ``{"n": ..., "d": ...}`` as decimal strings (Horizon's shape; pool amounts can
exceed 2^53), is what the seller asked, in units of the bought asset per unit of the sold asset:

- an order-book trade has the I{maker offer's listed price}, read from the offer's state before
  the operation (the ``LEDGER_ENTRY_STATE`` of that offer in the operation's ledger entry
  changes), as Horizon does.  The exchanged amounts are rounded per fill, in the maker's
  favour, so their ratio is only near the listed price (in pubnet ledger 53312000 the
  3-stroop SolarCity fill exchanged at 573 where the offer asked 28647/50 = 572.94), and the
  listed price is the exact number an order book or a candle is made of.  When the meta lacks
  the offer's state (never seen in a valid ledger) the price is C{None};
- a pool has no listed price: the trade's own rate, ``amountBought/amountSold`` (Horizon's
  choice), not reduced.
"""

from stellarflow.events.tokens import formatAmount
from stellarflow.meta import values

# OperationType values of the operations that trade.
PATH_PAYMENT_STRICT_RECEIVE = 2
MANAGE_SELL_OFFER = 3
CREATE_PASSIVE_SELL_OFFER = 4
MANAGE_BUY_OFFER = 12
PATH_PAYMENT_STRICT_SEND = 13

#: The operation types that can trade.
TRADE_OPERATIONS = frozenset(
    (PATH_PAYMENT_STRICT_RECEIVE, MANAGE_SELL_OFFER, CREATE_PASSIVE_SELL_OFFER, MANAGE_BUY_OFFER,
     PATH_PAYMENT_STRICT_SEND))

ORDERBOOK = "orderbook"
LIQUIDITY_POOL = "liquidity_pool"

_V0, _ORDER_BOOK, _POOL = 0, 1, 2
_STATE = 3  # LedgerEntryChangeType.LEDGER_ENTRY_STATE
_OFFER = 2  # LedgerEntryType.OFFER
_OFFER_LEFT = frozenset((0, 1))  # MANAGE_OFFER_CREATED, MANAGE_OFFER_UPDATED


def claims(result):
    """
    C{(claim atoms, the taker's OfferEntry or None)} of a successful trading operation's
    C{OperationResult}, read from the result's arm.
    """
    tr = result.tr
    kind = tr.type.value
    if kind == PATH_PAYMENT_STRICT_SEND:
        return tr.path_payment_strict_send_result.success.offers, None
    if kind == PATH_PAYMENT_STRICT_RECEIVE:
        return tr.path_payment_strict_receive_result.success.offers, None
    if kind == MANAGE_SELL_OFFER:
        success = tr.manage_sell_offer_result.success
    elif kind == CREATE_PASSIVE_SELL_OFFER:
        success = tr.create_passive_sell_offer_result.success
    elif kind == MANAGE_BUY_OFFER:
        success = tr.manage_buy_offer_result.success
    else:
        raise ValueError("operation result type {} does not trade".format(kind))
    left = success.offer
    return success.offers_claimed, left.offer if left.effect.value in _OFFER_LEFT else None


def listedPrices(changes):
    """
    C{{(seller G address, offer id): (n, d)}} of the offers whose state before the operation its
    ledger entry C{changes} record (the last state wins, as in Horizon's search).
    """
    prices = {}
    for change in changes:
        if change.type.value != _STATE:
            continue
        data = change.state.data
        if data.type.value != _OFFER:
            continue
        offer = data.offer
        prices[(values.accountId(offer.seller_id), offer.offer_id.int64)] = (offer.price.n.int32, offer.price.d.int32)
    return prices


def operationTrades(result, buyer, changes):
    """
    The trades of one successful trading operation: C{(order, fields)} pairs, C{order} being the
    atom's position in the result (skipped atoms keep theirs, like Horizon's ``order``).

    @param result: the operation's C{OperationResult}.
    @param buyer: the ``G...`` address of the operation's effective source.
    @param changes: the operation's C{LedgerEntryChange}s (for order-book prices).
    """
    atoms, taker = claims(result)
    if not atoms:
        return []
    buyerOfferId = None if taker is None else str(taker.offer_id.int64)
    prices = None
    trades = []
    for order, atom in enumerate(atoms):
        kind = atom.type.value
        if kind == _POOL:
            body = atom.liquidity_pool
        elif kind == _ORDER_BOOK:
            body = atom.order_book
        else:
            body = atom.v0
        sold = body.amount_sold.int64
        bought = body.amount_bought.int64
        if sold == 0 and bought == 0:
            continue
        if kind == _POOL:
            tradeType = LIQUIDITY_POOL
            seller = offerId = None
            pool = values.poolId(body.liquidity_pool_id)
            price = {"n": str(bought), "d": str(sold)}
        else:
            tradeType = ORDERBOOK
            seller = values.accountId(body.seller_id) if kind == _ORDER_BOOK else values.rawAccount(body.seller_ed25519)
            pool = None
            offerId = body.offer_id.int64
            if prices is None:
                prices = listedPrices(changes)
            listed = prices.get((seller, offerId))
            price = None if listed is None else {"n": str(listed[0]), "d": str(listed[1])}
            offerId = str(offerId)
        soldCode, soldIssuer = values.asset(body.asset_sold)
        boughtCode, boughtIssuer = values.asset(body.asset_bought)
        trades.append((order, {
            "trade_type": tradeType,
            "seller": seller,
            "liquidity_pool_id": pool,
            "offer_id": offerId,
            "buyer": buyer,
            "buyer_offer_id": buyerOfferId,
            "sold_asset_code": soldCode,
            "sold_asset_issuer": soldIssuer,
            "sold_amount": formatAmount(sold),
            "bought_asset_code": boughtCode,
            "bought_asset_issuer": boughtIssuer,
            "bought_amount": formatAmount(bought),
            "price": price,
        }))
    return trades
