"""
WebSocket filters (L{stellarflow.websocket.filters.Filters}) as SQL conditions on the message
tables, one condition per filter field and table, so that a stored message passes exactly when
L{stellarflow.websocket.matching.matches} passes it (``tests/test_postgres_filtersql.py`` checks
that over many generated messages).

The conditions read the filter columns of L{stellarflow.postgres.rows}: ``accounts`` and
``assets`` (GIN-indexed arrays, so a filter on them is an index lookup), ``two_party``, and the
message's ``type``, ``event_type`` and ``amount``.  What each message type offers today follows
C{matching.eventKeys}:

- the events table (contract events): every field, as for the WebSocket;
- payments: ``types`` (``payment``, and a SAC payment's ``event_type``), ``account_ids``
  (``from``, ``to``, the SAC ``contract_id``) and ``min_amount`` (``amount``); no asset filter
  passes a payment (its message has no ``asset_verified``);
- trades: only the empty filter passes (the WebSocket does not know the type ``trade`` and
  matches none of its fields yet).

The typed tables already carry what richer rules would need (``accounts`` of both parties and
the pool, ``assets`` of both sides, each side's amount); when the WebSocket's rules for payments
and trades change, the conditions here change with them, not the data.

A condition is C{None} when every row of the table passes, C{False} when none does (the table
is then not read at all).
"""

from stellarflow.postgres import rows as rowlib
from stellarflow.websocket.filters import KNOWN_TYPES, TOKEN_EVENT_TYPES

__all__ = ["conditions", "assetKey"]

_AMOUNT = "amount >= %(min_amount)s::numeric AND amount < 'Infinity'::numeric"


def assetKey(asset):
    """
    The filter key of an asset filter entry C{(code, issuer)} (see L{rowlib.assetKeys}).
    """
    code, issuer = asset
    return code if issuer is None else code + ":" + issuer


def _types(table, filters):
    types = filters.types
    known = sorted(types & KNOWN_TYPES)
    tokens = sorted(types & TOKEN_EVENT_TYPES)
    if table is rowlib.TRADES or not known:
        return False
    if table is rowlib.PAYMENTS:
        if "payment" in types:
            return None
        return ("event_type = ANY(%(token_types)s)", {"token_types": tokens}) if tokens else False
    parts = ["type = ANY(%(known_types)s)"]
    params = {"known_types": known}
    if tokens:
        parts.append("event_type = ANY(%(token_types)s)")
        params["token_types"] = tokens
    if "payment" in types:
        parts.append("(event_type = 'transfer' AND two_party)")
    return "(" + " OR ".join(parts) + ")", params


def _accounts(table, filters):
    if table is rowlib.TRADES:
        return False
    return "accounts && %(account_ids)s::text[]", {"account_ids": sorted(filters.account_ids)}


def _assets(table, filters):
    if table is not rowlib.EVENTS:
        return False
    return "assets && %(asset_codes)s::text[]", {"asset_codes": sorted(assetKey(a) for a in filters.asset_codes)}


def _minAmount(table, filters):
    if table is rowlib.TRADES:
        return False
    return _AMOUNT, {"min_amount": format(filters.min_amount, "f")}


def conditions(table, filters):
    """
    The WHERE condition of C{filters} on C{table}: C{(sql, params)} (C{sql} C{None} when every
    row passes), or C{None} when no row can pass.
    """
    parts, params = [], {}
    for present, condition in (
        (filters.types, _types),
        (filters.account_ids, _accounts),
        (filters.asset_codes, _assets),
        (filters.min_amount is not None, _minAmount),
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
