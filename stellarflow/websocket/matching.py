"""
Matching events against filters.

Each event is reduced once, whatever the number of clients, to the L{EventKeys} filters look
at (L{eventKeys}); L{matches} is the plain per-client check, the reference the
L{stellarflow.websocket.index.FilterIndex} must agree with.  The rules are those of
L{stellarflow.websocket.filters}.
"""

import functools
from decimal import Decimal, InvalidOperation

import attr
from stellar_sdk import MuxedAccount

from stellarflow.websocket.filters import KNOWN_TYPES, TOKEN_EVENT_TYPES

__all__ = ["EventKeys", "eventKeys", "matches"]


@attr.s(frozen=True, slots=True, weakref_slot=False)
class EventKeys:
    """
    What filters look at in one event, computed once per event by L{eventKeys}.

    @ivar types: the known type names the event has.
    @ivar accounts: the addresses involved (muxed ones as their C{G...} account).
    @ivar asset: C{(code, issuer)} of a VERIFIED asset, else C{None}.
    @ivar amount: the signed amount in asset units (a L{Decimal}), or C{None}.
    """

    types = attr.ib(default=frozenset())
    accounts = attr.ib(default=frozenset())
    asset = attr.ib(default=None)
    amount = attr.ib(default=None)


@functools.lru_cache(maxsize=8192)
def _eventAccount(address):
    """
    An event address as matched: C{M...} becomes its C{G...}; anything else as is.
    """
    if address[:1] == "M":
        try:
            return MuxedAccount.from_account(address).account_id
        except Exception:
            return address
    return address


def _amount(value):
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def eventKeys(message):
    """
    Reduce an event message (see the processor's message format) to its L{EventKeys}.
    """
    types = set()
    kind = message.get("type")
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
                accounts.add(_eventAccount(address))
    sender = message.get("from")
    sender = _eventAccount(sender) if isinstance(sender, str) and sender else None
    receiver = message.get("to")
    receiver = _eventAccount(receiver) if isinstance(receiver, str) and receiver else None
    if sender:
        accounts.add(sender)
    if receiver:
        accounts.add(receiver)
    contract = message.get("contract_id")
    if isinstance(contract, str) and contract:
        accounts.add(contract)
    if eventType == "transfer" and sender and receiver and sender != receiver:
        types.add("payment")

    asset = None
    code = message.get("asset_code")
    if message.get("asset_verified") is True and isinstance(code, str) and code:
        issuer = message.get("asset_issuer")
        asset = (code, issuer if isinstance(issuer, str) and issuer else None)

    return EventKeys(
        types=frozenset(types), accounts=frozenset(accounts), asset=asset,
        amount=_amount(message.get("amount")))


def assetMatches(assets, asset):
    """
    Whether an event's C{asset} key passes a filter's C{assets} (a non-empty set of
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
    if filters.types and filters.types.isdisjoint(keys.types):
        return False
    if filters.account_ids and filters.account_ids.isdisjoint(keys.accounts):
        return False
    if filters.asset_codes and not assetMatches(filters.asset_codes, keys.asset):
        return False
    if filters.min_amount is not None and (
            keys.amount is None or keys.amount < filters.min_amount):
        return False
    return True
