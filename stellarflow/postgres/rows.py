"""
Event messages as rows of the events table, and rejected messages as dead-letter rows.

A message maps to one tuple in L{COLUMNS} order; keys that have no column of their own
(``topics_xdr``/``data_xdr`` of undecodable events, anything a later processor adds) are kept in
the ``extra`` JSONB column, so no part of a message is lost.  The ``message`` column holds the
whole message as compact ASCII JSON, byte for byte what the WebSocket server streams, so that a
replay from the table is exactly the live event (JSONB reorders object keys, ``timestamptz``
reformats times).  Values are passed through
unchanged and cast by PostgreSQL (``'12.5'::numeric``), so amounts stay exact and a value
PostgreSQL refuses is detected per row (see L{stellarflow.postgres.writer}).
"""

import hashlib
import json

from stellarflow.message import seal

# (column, SQL type, message key)
COLUMNS = (
    ("id", "text", "id"),
    ("ledger", "bigint", "ledger"),
    ("ledger_closed_at", "timestamptz", "ledger_closed_at"),
    ("transaction_hash", "text", "transaction_hash"),
    ("contract_id", "text", "contract_id"),
    ("operation_index", "integer", "operation_index"),
    ("transaction_index", "integer", "transaction_index"),
    ("in_successful_contract_call", "boolean", "in_successful_contract_call"),
    ("event_kind", "text", "event_kind"),
    ("type", "text", "type"),
    ("event_type", "text", "event_type"),
    ("topics", "jsonb", "topics"),
    ("data", "jsonb", "data"),
    ("account_ids", "text[]", "account_ids"),
    ("from_account", "text", "from"),
    ("to_account", "text", "to"),
    ("asset_code", "text", "asset_code"),
    ("asset_issuer", "text", "asset_issuer"),
    ("amount", "numeric", "amount"),
    ("amount_raw", "numeric", "amount_raw"),
    ("asset_verified", "boolean", "asset_verified"),
    ("to_muxed_id", "text", "to_muxed_id"),
    ("decode_error", "text", "decode_error"),
    ("extra", "jsonb", None),
    ("message", "text", None),
)

COLUMN_LIST = ", ".join(name for name, _, _ in COLUMNS)

# Text values need no cast; the others are cast so a string ("123") is accepted like a number
# and a bad one fails with a data error naming the type.
ROW_TEMPLATE = "(" + ", ".join("%s" if t == "text" else "%s::" + t for _, t, _ in COLUMNS) + ")"

DEAD_LETTER_TEMPLATE = "(%s, %s, %s, %s)"

_KEYS = tuple(key for _, _, key in COLUMNS if key is not None)
_JSON_KEYS = frozenset(key for _, t, key in COLUMNS if t == "jsonb" and key is not None)
_KNOWN = frozenset(_KEYS)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class InvalidMessage(ValueError):
    """
    A message that cannot become a row (no id, not a mapping, not JSON-serialisable).
    """


def toRow(message, withMessage=True):
    """
    The events-table tuple for C{message}, in L{COLUMNS} order.

    JSON values are serialised here (``None`` stays SQL NULL).  Without C{withMessage} the
    ``message`` column is left NULL (replays then rebuild the message from the columns).

    @raise InvalidMessage: the message has no string id or is not a mapping.
    @raise ValueError: a JSON value cannot be serialised (NaN, say).
    """
    if not isinstance(message, dict):
        raise InvalidMessage("message is not a mapping: {}".format(type(message).__name__))
    eventId = message.get("id")
    if not isinstance(eventId, str) or not eventId:
        raise InvalidMessage("message has no event id")
    row = []
    get = message.get
    for key in _KEYS:
        value = get(key)
        if key in _JSON_KEYS and value is not None:
            value = _dumps(value)
        row.append(value)
    extra = None
    if len(message) > len(_KNOWN) or not _KNOWN.issuperset(message):
        rest = {k: v for k, v in message.items() if k not in _KNOWN}
        extra = _dumps(rest) if rest else None
    row.append(extra)
    if withMessage:
        message = seal(message)
        if message.json is None:
            raise ValueError(message.encodeError)
        row.append(message.json.decode("ascii"))
    else:
        row.append(None)
    return tuple(row)


def escaped(text):
    """
    C{text} as plain ASCII with control characters (NUL included) escaped JSON-style, so any
    PostgreSQL text column accepts it.
    """
    if not isinstance(text, str):
        text = repr(text)
    return json.dumps(text)[1:-1]


def messageText(message):
    """
    The raw message as ASCII JSON text (non-JSON values shown by repr), for the dead letters.
    """
    try:
        return json.dumps(message, ensure_ascii=True, default=repr, sort_keys=True)
    except (TypeError, ValueError):
        return escaped(repr(message))


def deadLetterRow(message, error, pipeline):
    """
    The C{(id, pipeline, error, message)} tuple recording a rejected message.

    A message without a usable id gets ``invalid:<sha256 prefix of its text>``.
    """
    text = messageText(message)
    eventId = message.get("id") if isinstance(message, dict) else None
    if isinstance(eventId, str) and eventId:
        key = escaped(eventId)
    else:
        key = "invalid:" + hashlib.sha256(text.encode("ascii")).hexdigest()[:32]
    return (key, escaped(pipeline), escaped(error), text)
