"""
The message: what processors produce and every consumer delivers, and its field names.

A message is a JSON object.  After the last processor the pipeline I{seals} each one
(L{seal}): its JSON text is encoded once, there, and travels with it.  WebSocket frames,
PostgreSQL's ``message`` column and replayed history all use that same text, so they are
byte-identical by construction.  A sealed L{Message} is still the mapping of its fields
(consumers read fields to filter and to fill columns) and must not be changed afterwards.

The encoding is compact ASCII JSON (C{separators=(",", ":")}, non-ASCII escaped) so any client
decodes it, without NaN or Infinity, which are not JSON.  A message that cannot be encoded
keeps C{json = None} and the reason in C{encodeError}: a WebSocket consumer skips it, a
durable one files it as a dead letter; neither raises.

Field names of the event messages (``docs/websocket.md`` describes each) are defined here
once; the processor writes them in this order, the PostgreSQL schema maps them to columns.
"""

import json

#: The ``type`` of a contract event message.
CONTRACT_EVENT = "contract_event"

#: Fields every contract event message has, in the order the processor writes them.
ENVELOPE_FIELDS = (
    "type",
    "id",
    "ledger",
    "ledger_closed_at",
    "transaction_hash",
    "contract_id",
    "operation_index",
    "transaction_index",
    "in_successful_contract_call",
    "event_kind",
    "topics",
    "data",
)

#: Fields of a recognised token event (Stellar Asset Contract, SEP-41), in order.
TOKEN_FIELDS = (
    "event_type",
    "from",
    "to",
    "account_ids",
    "asset_code",
    "asset_issuer",
    "amount",
    "amount_raw",
    "asset_verified",
    "to_muxed_id",
)

#: Fields of an event that could not be decoded: the reason and its raw payload.
DECODE_ERROR = "decode_error"
RAW_XDR_FIELDS = ("topics_xdr", "data_xdr")
RAW_JSON_FIELDS = ("topics_json", "data_json")

#: The ``type`` of a payment message and of a trade message (L{stellarflow.meta} builds them
#: from ledgers; ``docs/websocket.md`` describes them).
PAYMENT = "payment"
TRADE = "trade"

#: Fields every payment and trade message starts with, in order.  Ids and positions are those
#: of getEvents (the TOID of the operation, ``transaction_index`` from 1 in apply order,
#: ``operation_index`` from 0); ``operation_type`` is Horizon's name of the operation.
OPERATION_FIELDS = (
    "type",
    "id",
    "ledger",
    "ledger_closed_at",
    "transaction_hash",
    "transaction_index",
    "operation_index",
    "operation_type",
)

#: The transaction's memo, after L{OPERATION_FIELDS}, only when the transaction has one.
MEMO_FIELDS = ("memo_type", "memo")

#: Fields of a payment, in order, after those.  The muxed ones appear only for a muxed account,
#: the ``source_*`` ones only for path payments, ``contract_id`` and ``event_type`` only for a
#: Stellar Asset Contract event; the others always.
PAYMENT_FIELDS = (
    "from",
    "from_muxed",
    "from_muxed_id",
    "to",
    "to_muxed",
    "to_muxed_id",
    "asset_code",
    "asset_issuer",
    "amount",
    "source_asset_code",
    "source_asset_issuer",
    "source_amount",
    "contract_id",
    "event_type",
)

#: The L{PAYMENT_FIELDS} every payment has (the value may be C{None}: see L{stellarflow.meta}).
PAYMENT_REQUIRED_FIELDS = ("from", "to", "asset_code", "asset_issuer", "amount")

#: Fields of a trade, in order, after L{OPERATION_FIELDS} (and L{MEMO_FIELDS}); all always
#: present, C{None} when they do not apply.
TRADE_FIELDS = (
    "trade_type",
    "seller",
    "liquidity_pool_id",
    "offer_id",
    "buyer",
    "buyer_offer_id",
    "sold_asset_code",
    "sold_asset_issuer",
    "sold_amount",
    "bought_asset_code",
    "bought_asset_issuer",
    "bought_amount",
    "price",
)

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


class Message(dict):
    """
    A sealed message: the mapping of its fields, plus C{json}, its encoded text (ASCII bytes),
    or C{None} with the reason in C{encodeError}.
    """

    __slots__ = ("json", "encodeError")

    @property
    def id(self):
        """The message's ``id`` when it is a string, else C{None}."""
        value = self.get("id")
        return value if isinstance(value, str) else None


def seal(fields):
    """
    The L{Message} of C{fields} (a mapping), encoded now; a L{Message} is returned as it is.
    """
    if type(fields) is Message:
        return fields
    if not isinstance(fields, dict):
        # A processor bug; kept (as its repr) so that a durable consumer can file it.
        message = Message(invalid_message=repr(fields)[:1000])
        message.json = None
        message.encodeError = "message is not a mapping: {}".format(type(fields).__name__)
        return message
    message = Message(fields)
    try:
        message.json = _encode(message).encode("ascii")
        message.encodeError = None
    except (TypeError, ValueError, RecursionError) as e:
        message.json = None
        message.encodeError = "cannot encode the message as JSON: {}".format(str(e)[:200] or type(e).__name__)
    return message


def sealAll(messages):
    """
    L{seal} each of C{messages}, keeping their order.
    """
    return [seal(m) for m in messages]


def sealed(fields, encoded):
    """
    The L{Message} of C{fields} whose JSON text C{encoded} (bytes) was produced elsewhere by
    L{seal}'s encoder (a ledger worker process): it is carried as it is, never encoded again.
    """
    message = Message(fields)
    message.json = encoded
    message.encodeError = None
    return message
