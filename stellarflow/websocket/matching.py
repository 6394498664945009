"""
Matching events against filters.

Each event is reduced once, whatever the number of clients, to the L{EventKeys} filters look
at (L{eventKeys}); L{matches} is the plain per-client check, the reference the
L{stellarflow.websocket.index.FilterIndex} (and the SQL of
L{stellarflow.postgres.filtersql}) must agree with.  The rules are those of
L{stellarflow.websocket.filters}.
"""

import functools
import re
from decimal import Decimal, InvalidOperation

import attr
from stellar_sdk import MuxedAccount, StrKey

from stellarflow.websocket.filters import KNOWN_TYPES, TOKEN_EVENT_TYPES, TWO_PARTY_TRANSFER

__all__ = ["EventKeys", "eventKeys", "matches", "assetMatches"]

_PAYMENT = frozenset(["payment"])
_TRADE = frozenset(["trade"])
_POOL_HEX = re.compile(r"[0-9a-f]{64}\Z")


@attr.s(frozen=True, slots=True, weakref_slot=False)
class EventKeys:
    """
    What filters look at in one event, computed once per event by L{eventKeys}.

    @ivar types: the type keys the event has: known type names, and L{TWO_PARTY_TRANSFER} for
        a transfer contract event between two parties.
    @ivar accounts: the addresses involved (muxed ones as their C{G...} account).
    @ivar sides: C{((code, issuer), amount)} of each asset side an asset filter looks at: a
        contract event's VERIFIED asset, a payment's delivered then source asset, a trade's
        sold then bought asset; C{amount} a L{Decimal} or C{None}.
    @ivar amount: the amount C{min_amount} compares when the filter names no asset (a
        L{Decimal}), or C{None}: a contract event's or payment's C{amount}, the larger side of a
        trade.
    """

    types = attr.ib(default=frozenset())
    accounts = attr.ib(default=frozenset())
    sides = attr.ib(default=())
    amount = attr.ib(default=None)

    @property
    def assets(self):
        """
        The assets of the sides, in order.
        """
        return tuple(asset for asset, _ in self.sides)


@functools.lru_cache(maxsize=8192)
def eventAccount(address):
    """
    An event address as matched: C{M...} becomes its C{G...}; anything else (or an C{M...} that
    does not decode) as is.  PostgreSQL's filter columns are built with it too
    (L{stellarflow.postgres.rows}), so that stored and live events match alike.
    """
    if address[:1] == "M":
        try:
            return MuxedAccount.from_account(address).account_id
        except Exception:
            return address
    return address


@functools.lru_cache(maxsize=4096)
def _poolAddress(poolId):
    """
    A trade's C{liquidity_pool_id} (64 lowercase hex digits) as its C{L...} strkey, or C{None}.
    """
    if not _POOL_HEX.match(poolId):
        return None
    return StrKey.encode_liquidity_pool(bytes.fromhex(poolId))


def _amount(value):
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _party(message, key):
    value = message.get(key)
    return eventAccount(value) if isinstance(value, str) and value else None


def _asset(message, prefix):
    """
    C{(code, issuer)} of the message's C{<prefix>asset_code}/C{_issuer}, or C{None}.
    """
    code = message.get(prefix + "asset_code")
    if not isinstance(code, str) or not code:
        return None
    issuer = message.get(prefix + "asset_issuer")
    return (code, issuer if isinstance(issuer, str) and issuer else None)


def _sides(message, *pairs):
    sides = []
    for prefix, amountKey in pairs:
        asset = _asset(message, prefix)
        if asset is not None:
            sides.append((asset, _amount(message.get(amountKey))))
    return tuple(sides)


def _paymentKeys(message):
    accounts = set()
    for key in ("from", "to"):
        party = _party(message, key)
        if party:
            accounts.add(party)
    contract = message.get("contract_id")
    if isinstance(contract, str) and contract:
        accounts.add(contract)
    return EventKeys(
        types=_PAYMENT, accounts=frozenset(accounts),
        sides=_sides(message, ("", "amount"), ("source_", "source_amount")),
        amount=_amount(message.get("amount")))


def _tradeKeys(message):
    accounts = set()
    for key in ("seller", "buyer"):
        party = _party(message, key)
        if party:
            accounts.add(party)
    pool = message.get("liquidity_pool_id")
    if isinstance(pool, str) and pool:
        address = _poolAddress(pool)
        if address:
            accounts.add(address)
    sides = _sides(message, ("sold_", "sold_amount"), ("bought_", "bought_amount"))
    amounts = [a for a in (_amount(message.get("sold_amount")), _amount(message.get("bought_amount")))
               if a is not None]
    return EventKeys(
        types=_TRADE, accounts=frozenset(accounts), sides=sides,
        amount=max(amounts) if amounts else None)


def eventKeys(message):
    """
    Reduce an event message (a contract event as the processors make it, a payment or a trade:
    see L{stellarflow.meta.messages}) to its L{EventKeys}.
    """
    kind = message.get("type")
    if kind == "payment":
        return _paymentKeys(message)
    if kind == "trade":
        return _tradeKeys(message)
    types = set()
    if kind in KNOWN_TYPES:
        types.add(kind)
    eventType = message.get("event_type")
    if eventType in TOKEN_EVENT_TYPES:
        types.add(eventType)

    accounts = set()
    involved = message.get("account_ids")
    if isinstance(involved, list):
        for address in involved:
            if isinstance(address, str):
                accounts.add(eventAccount(address))
    sender = _party(message, "from")
    receiver = _party(message, "to")
    if sender:
        accounts.add(sender)
    if receiver:
        accounts.add(receiver)
    contract = message.get("contract_id")
    if isinstance(contract, str) and contract:
        accounts.add(contract)
    if eventType == "transfer" and sender and receiver and sender != receiver:
        types.add(TWO_PARTY_TRANSFER)

    amount = _amount(message.get("amount"))
    asset = _asset(message, "") if message.get("asset_verified") is True else None
    return EventKeys(
        types=frozenset(types), accounts=frozenset(accounts),
        sides=() if asset is None else ((asset, amount),), amount=amount)


def assetMatches(assets, asset):
    """
    Whether an asset key C{(code, issuer)} passes a filter's C{assets} (a non-empty set of
    C{(code, issuer)}): the exact asset, or its code with any issuer (never for C{XLM}).
    """
    if asset is None:
        return False
    if asset in assets:
        return True
    code, issuer = asset
    return issuer is not None and code != "XLM" and (code, None) in assets


def matches(filters, keys):
    """
    Whether an event with these L{EventKeys} passes these L{Filters} (the reference check).
    """
    if filters.types and filters.matchTypes.isdisjoint(keys.types):
        return False
    if filters.account_ids and filters.account_ids.isdisjoint(keys.accounts):
        return False
    minimum = filters.min_amount
    if filters.asset_codes:
        assets = filters.asset_codes
        for asset, amount in keys.sides:
            if assetMatches(assets, asset) and (minimum is None or (amount is not None and amount >= minimum)):
                return True
        return False
    if minimum is not None and (keys.amount is None or keys.amount < minimum):
        return False
    return True
