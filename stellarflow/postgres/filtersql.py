"""
WebSocket filters (L{stellarflow.websocket.filters.Filters}) as SQL conditions on the message
tables, one condition per filter field and table, so that a stored message passes exactly when
L{stellarflow.websocket.matching.matches} passes it (``tests/test_postgres_filtersql.py`` checks
that over many generated messages).

The conditions read the filter columns of L{stellarflow.postgres.rows}: ``accounts`` and
``assets`` (GIN-indexed arrays, so a filter on them is an index lookup), ``two_party``, and the
message's ``type``, ``event_type``, asset and amount columns.  Per table, as
C{matching.eventKeys} and C{matching.matches} (the rules of
L{stellarflow.websocket.filters}):

- the events table (contract events): ``types`` by ``type`` and ``event_type`` (and, where
  ``payment`` means two-party transfers, ``two_party``), ``account_ids`` by ``accounts``, an
  asset by ``assets`` (verified assets only), ``min_amount`` by ``amount``;
- payments: ``types`` ``payment`` (every row); ``account_ids`` by ``accounts`` (``from``,
  ``to``, a SAC payment's ``contract_id``); an asset by either side, delivered
  (``asset_code``/``asset_issuer``) or source (``source_asset_*``), with ``min_amount`` on
  that side's amount (``amount``, ``source_amount``); without an asset, ``min_amount`` on
  ``amount``;
- trades: ``types`` ``trade``; ``account_ids`` by ``accounts`` (``seller``, ``buyer`` and the
  pool, stored as hex: an ``L...`` filter entry is looked up as its hex too); an asset by the
  sold or the bought side, ``min_amount`` on that side's amount; without an asset, on either
  side's.

A condition is C{None} when every row of the table passes, C{False} when none does (the table
is then not read at all).
"""

from stellar_sdk import StrKey

from stellarflow.postgres import rows as rowlib
from stellarflow.websocket.filters import KNOWN_TYPES, TOKEN_EVENT_TYPES, TWO_PARTY_TRANSFER

__all__ = ["conditions", "assetKey"]

_AMOUNT = "{0} >= %(min_amount)s::numeric AND {0} < 'Infinity'::numeric"

#: A side's asset against the filter keys (see L{rowlib.assetKeys}): a side without issuer by
#: its code (``XLM``: native), a credit asset by ``CODE:ISSUER`` or, unless named ``XLM``, by
#: ``CODE`` alone.
_SIDE_ASSET = (
    "(CASE WHEN COALESCE({1}, '') = '' THEN {0} = ANY(%(asset_codes)s::text[]) "
    "ELSE ({0} || ':' || {1} = ANY(%(asset_codes)s::text[]) "
    "OR ({0} <> 'XLM' AND {0} = ANY(%(asset_codes)s::text[]))) END)"
)

#: C{(code, issuer, amount)} columns of each side of the typed tables.
_SIDES = {
    rowlib.PAYMENTS: (("asset_code", "asset_issuer", "amount"),
                      ("source_asset_code", "source_asset_issuer", "source_amount")),
    rowlib.TRADES: (("sold_asset_code", "sold_asset_issuer", "sold_amount"),
                    ("bought_asset_code", "bought_asset_issuer", "bought_amount")),
}


def assetKey(asset):
    """
    The filter key of an asset filter entry C{(code, issuer)} (see L{rowlib.assetKeys}).
    """
    code, issuer = asset
    return code if issuer is None else code + ":" + issuer


def _types(table, filters):
    types = filters.types
    if table is rowlib.PAYMENTS:
        return None if "payment" in types else False
    if table is rowlib.TRADES:
        return None if "trade" in types else False
    known = sorted(types & KNOWN_TYPES)
    tokens = sorted(types & TOKEN_EVENT_TYPES)
    transfers = TWO_PARTY_TRANSFER in filters.matchTypes
    if not known:
        return False
    parts = ["type = ANY(%(known_types)s)"]
    params = {"known_types": known}
    if tokens:
        parts.append("event_type = ANY(%(token_types)s)")
        params["token_types"] = tokens
    if transfers:
        parts.append("(event_type = 'transfer' AND two_party)")
    return "(" + " OR ".join(parts) + ")", params


def _accounts(table, filters):
    accounts = sorted(filters.account_ids)
    if table is rowlib.TRADES:
        accounts += sorted(StrKey.decode_liquidity_pool(a).hex() for a in filters.account_ids if a[:1] == "L")
    return "accounts && %(account_ids)s::text[]", {"account_ids": accounts}


def _amountParams(filters):
    return {"min_amount": format(filters.min_amount, "f")}


def _assetsAndAmount(table, filters):
    """
    The condition of C{asset_codes} and C{min_amount} together (either may be empty): a side
    whose asset matched must hold the amount.
    """
    params = {}
    minimum = filters.min_amount is not None
    if minimum:
        params.update(_amountParams(filters))
    if filters.asset_codes:
        params["asset_codes"] = sorted(assetKey(a) for a in filters.asset_codes)
        if table is rowlib.EVENTS:
            parts = ["assets && %(asset_codes)s::text[]"]
            if minimum:
                parts.append(_AMOUNT.format("amount"))
            return " AND ".join(parts), params
        sides = []
        for code, issuer, amount in _SIDES[table]:
            side = _SIDE_ASSET.format(code, issuer)
            if minimum:
                side = "(" + side + " AND " + _AMOUNT.format(amount) + ")"
            sides.append(side)
        return "assets && %(asset_codes)s::text[] AND COALESCE(" + " OR ".join(sides) + ", false)", params
    if table is rowlib.TRADES:
        return "(" + " OR ".join("(" + _AMOUNT.format(amount) + ")" for _, _, amount in _SIDES[table]) + ")", params
    return _AMOUNT.format("amount"), params


def conditions(table, filters):
    """
    The WHERE condition of C{filters} on C{table}: C{(sql, params)} (C{sql} C{None} when every
    row passes), or C{None} when no row can pass.
    """
    parts, params = [], {}
    for present, condition in (
        (filters.types, _types),
        (filters.account_ids, _accounts),
        (filters.asset_codes or filters.min_amount is not None, _assetsAndAmount),
    ):
        if not present:
            continue
        result = condition(table, filters)
        if result is False:
            return None
        if result is not None:
            sql, values = result
            parts.append(sql)
            params.update(values)
    return (" AND ".join(parts) if parts else None), params
