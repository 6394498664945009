"""
Messages as rows of the three message tables, in ``COPY`` text format, and rejected messages as
dead-letter rows.

A message goes to the table of its ``type`` (L{tableOf}): ``payment`` and ``trade`` messages to
their typed tables, every other message (``contract_event``, whatever a later processor makes)
to the events table.  Each table's row is a tuple in its L{Table.columns} order (L{Table.row});
keys that have no column of their own are kept in the ``extra`` JSONB column, so no part of a
message is lost, and the ``message`` column holds the whole message exactly as the WebSocket
server streams it (L{stellarflow.message.seal}: never encoded again here).

Besides the message's own fields every table has the columns a history filter looks at,
computed here once per message: ``accounts`` (every address the message involves, a muxed
``M...`` one as its ``G...`` account, sorted), ``assets`` (the message's assets as filter keys:
``CODE:ISSUER`` and, for a credit asset not named ``XLM``, ``CODE`` alone; the native asset is
``XLM``) and, on the events table, ``two_party`` (a transfer between two different accounts).
L{stellarflow.postgres.filtersql} turns a WebSocket filter into conditions on them.

Rows are written as ``COPY ... FROM STDIN`` text (L{copyLine}): values are passed through
unchanged and parsed by PostgreSQL (``'12.5'`` into a ``numeric``), so amounts stay exact and a
value PostgreSQL refuses is detected per row (see L{stellarflow.postgres.writer}).  A text
value containing NUL cannot be sent at all: such a message is rejected here.
"""

import hashlib
import json

import attr

from stellarflow.message import PAYMENT, TRADE, seal
from stellarflow.websocket.matching import eventAccount

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class InvalidMessage(ValueError):
    """
    A message that cannot become a row (no id, not a mapping, not JSON-serialisable).
    """


# -- the filter columns -------------------------------------------------------------------


def _party(value):
    """
    A ``from``/``to``-like field as an involved address, or C{None} when absent or empty.
    """
    return eventAccount(value) if type(value) is str and value else None


def eventAccounts(message):
    """
    The sorted addresses an events-table (or payment) message involves: its ``account_ids``,
    ``from``, ``to`` (muxed ones as their account) and the emitting ``contract_id``.
    """
    accounts = set()
    listed = message.get("account_ids")
    if type(listed) is list:
        for address in listed:
            if type(address) is str:
                accounts.add(eventAccount(address))
    for key in ("from", "to"):
        party = _party(message.get(key))
        if party:
            accounts.add(party)
    contract = message.get("contract_id")
    if type(contract) is str and contract:
        accounts.add(contract)
    return sorted(accounts)


def tradeAccounts(message):
    """
    The sorted addresses a trade involves: ``seller``, ``buyer`` and ``liquidity_pool_id``.
    """
    accounts = set()
    for key in ("seller", "buyer", "liquidity_pool_id"):
        party = _party(message.get(key))
        if party:
            accounts.add(party)
    return sorted(accounts)


def assetKeys(code, issuer):
    """
    The filter keys of one asset: ``CODE:ISSUER`` and ``CODE`` for a credit asset (``CODE``
    alone is left out for a credit asset named ``XLM``: the key ``XLM`` is the native asset's),
    ``CODE`` alone for an asset without issuer (the native ``XLM``); none without a code.
    """
    if type(code) is not str or not code:
        return []
    if type(issuer) is str and issuer:
        if code == "XLM":
            return [code + ":" + issuer]
        return [code, code + ":" + issuer]
    return [code]


def twoParty(message):
    """
    Whether an event is a ``transfer`` between two different accounts (after the muxed
    normalisation): what the filter type ``payment`` matches among contract events.
    """
    if message.get("event_type") != "transfer":
        return False
    sender, receiver = _party(message.get("from")), _party(message.get("to"))
    return bool(sender and receiver and sender != receiver)


# -- the tables ---------------------------------------------------------------------------


def _computeEvent(message):
    verified = message.get("asset_verified") is True
    assets = assetKeys(message.get("asset_code"), message.get("asset_issuer")) if verified else []
    return {"accounts": eventAccounts(message), "two_party": twoParty(message), "assets": assets}


def _computePayment(message):
    return {
        "accounts": eventAccounts(message),
        "assets": sorted(set(
            assetKeys(message.get("asset_code"), message.get("asset_issuer"))
            + assetKeys(message.get("source_asset_code"), message.get("source_asset_issuer"))
        )),
    }


def _computeTrade(message):
    return {
        "accounts": tradeAccounts(message),
        "assets": sorted(set(
            assetKeys(message.get("sold_asset_code"), message.get("sold_asset_issuer"))
            + assetKeys(message.get("bought_asset_code"), message.get("bought_asset_issuer"))
        )),
    }


@attr.s(frozen=True)
class Table:
    """
    One message table: its columns in four groups, in the order rows are written (the table's
    own column order does not matter to C{COPY}): scalar fields, JSON fields, array fields, the
    computed filter columns; then ``extra`` and ``message`` (``inserted_at`` is the
    database's).

    @ivar suffix: the table's name after the events table's (``""``, ``"_payments"``...).
    @ivar scalars: C{(column, SQL type, message key)} of fields written as they are.
    @ivar jsons: C{(column, message key)} of fields kept as ``jsonb``.
    @ivar arrays: C{(column, message key)} of string lists kept as ``text[]``.
    @ivar computed: C{(column, SQL type)} of the filter columns, by name in C{compute(message)}.
    """

    kind = attr.ib()
    suffix = attr.ib()
    scalars = attr.ib(converter=tuple)
    jsons = attr.ib(converter=tuple)
    arrays = attr.ib(converter=tuple)
    computed = attr.ib(converter=tuple)
    compute = attr.ib()

    def __attrs_post_init__(self):
        keys = [key for _, _, key in self.scalars] + [key for _, key in self.jsons + self.arrays]
        set_ = object.__setattr__
        set_(self, "_scalarKeys", tuple(key for _, _, key in self.scalars))
        set_(self, "_jsonKeys", tuple(key for _, key in self.jsons))
        set_(self, "_arrayKeys", tuple(key for _, key in self.arrays))
        set_(self, "_computedNames", tuple(name for name, _ in self.computed))
        set_(self, "_known", frozenset(keys))
        set_(self, "_tabs", len(self.scalars) - 1)

    @property
    def columns(self):
        """
        C{(column, SQL type, message key or None)} in the order rows are written.
        """
        return (
            tuple(self.scalars)
            + tuple((name, "jsonb", key) for name, key in self.jsons)
            + tuple((name, "text[]", key) for name, key in self.arrays)
            + tuple((name, sqlType, None) for name, sqlType in self.computed)
            + (("extra", "jsonb", None), ("message", "text", None))
        )

    @property
    def columnList(self):
        return ", ".join(name for name, _, _ in self.columns)

    def _check(self, message):
        if not isinstance(message, dict):
            raise InvalidMessage("message is not a mapping: {}".format(type(message).__name__))
        eventId = message.get("id")
        if not isinstance(eventId, str) or not eventId:
            raise InvalidMessage("message has no event id")

    def _extra(self, message):
        known = self._known
        if len(message) > len(known) or not known.issuperset(message):
            rest = {k: v for k, v in message.items() if k not in known}
            return _dumps(rest) if rest else None
        return None

    @staticmethod
    def _message(message, withMessage):
        if not withMessage:
            return None
        message = seal(message)
        if message.json is None:
            raise ValueError(message.encodeError)
        return message.json.decode("ascii")

    def row(self, message, withMessage=True):
        """
        The row tuple of C{message}, in L{columns} order: message fields as they are (JSON ones
        serialised, C{None} as SQL NULL), computed columns, ``extra``, ``message``.  Without
        C{withMessage} the ``message`` column is left NULL.  The reference for L{line}.

        @raise InvalidMessage: the message has no string id or is not a mapping.
        @raise ValueError: a JSON value cannot be serialised (NaN, say).
        """
        self._check(message)
        get = message.get
        row = [get(key) for key in self._scalarKeys]
        row.extend(None if get(key) is None else _dumps(get(key)) for key in self._jsonKeys)
        row.extend(get(key) for key in self._arrayKeys)
        computed = self.compute(message)
        row.extend(computed[name] for name in self._computedNames)
        row.append(self._extra(message))
        row.append(self._message(message, withMessage))
        return tuple(row)

    def line(self, message, withMessage=True):
        """
        C{copyLine(self.row(message, withMessage))} encoded as UTF-8, computed faster (the
        common case, strings without special characters, is joined and checked once).

        @raise InvalidMessage: see L{row}; also for a list or mapping where a single value
            belongs.
        @raise ValueError: see L{row}; also for text PostgreSQL cannot hold (NUL, a lone
            surrogate).
        """
        self._check(message)
        get = message.get
        values = [get(key) for key in self._scalarKeys]
        texts = [v if type(v) is str else _scalar(v) for v in values]
        plain = "\t".join(texts)
        # Every backslash must be one of the NULs' (\N): else a text has one, or a tab... to escape.
        if (plain.count("\t") != self._tabs or plain.count("\\") != values.count(None) or "\n" in plain
                or "\r" in plain or "\x00" in plain):
            plain = "\t".join(["\\N" if v is None else _copyText(t) for t, v in zip(texts, values)])
        parts = [plain]
        for key in self._jsonKeys:
            value = get(key)
            if value is None:
                parts.append("\\N")
            else:
                text = _dumps(value)
                parts.append(text.replace("\\", "\\\\") if "\\" in text else text)
        for key in self._arrayKeys:
            parts.append(_array(get(key)))
        computed = self.compute(message)
        for name in self._computedNames:
            value = computed[name]
            parts.append(_array(value) if type(value) is list else ("t" if value else "f"))
        extra = self._extra(message)
        parts.append("\\N" if extra is None else (extra.replace("\\", "\\\\") if "\\" in extra else extra))
        text = self._message(message, withMessage)
        parts.append("\\N" if text is None else text.replace("\\", "\\\\"))
        return ("\t".join(parts) + "\n").encode("utf-8")


def _scalar(value):
    """
    A non-string field value as COPY text (before escaping).
    """
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, (dict, list, tuple)):
        raise InvalidMessage("a {} where a single value belongs".format(type(value).__name__))
    if type(value) is float:
        return repr(value)
    return str(value)


def _array(value):
    """
    A list of strings as a COPY text array literal (C{None}: NULL).
    """
    if value is None:
        return "\\N"
    if type(value) is not list:
        raise InvalidMessage("a {} where a list belongs".format(type(value).__name__))
    if not value:
        return "{}"
    try:
        joined = "".join(value)
    except TypeError:
        return copyValue(value)
    if '"' in joined or "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined or "\x00" in joined:
        return copyValue(value)
    return '{"' + '","'.join(value) + '"}'


EVENTS = Table(
    "events",
    "",
    scalars=[
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
        ("from_account", "text", "from"),
        ("to_account", "text", "to"),
        ("asset_code", "text", "asset_code"),
        ("asset_issuer", "text", "asset_issuer"),
        ("amount", "numeric", "amount"),
        ("amount_raw", "numeric", "amount_raw"),
        ("asset_verified", "boolean", "asset_verified"),
        ("to_muxed_id", "text", "to_muxed_id"),
        ("decode_error", "text", "decode_error"),
    ],
    jsons=[("topics", "topics"), ("data", "data")],
    arrays=[("account_ids", "account_ids")],
    computed=[("accounts", "text[]"), ("two_party", "boolean"), ("assets", "text[]")],
    compute=_computeEvent,
)

_OPERATION = [
    ("id", "text", "id"),
    ("ledger", "bigint", "ledger"),
    ("ledger_closed_at", "timestamptz", "ledger_closed_at"),
    ("transaction_hash", "text", "transaction_hash"),
    ("transaction_index", "integer", "transaction_index"),
    ("operation_index", "integer", "operation_index"),
    ("operation_type", "text", "operation_type"),
    ("type", "text", "type"),
    ("memo_type", "text", "memo_type"),
    ("memo", "text", "memo"),
]

PAYMENTS = Table(
    "payments",
    "_payments",
    scalars=_OPERATION + [
        ("from_account", "text", "from"),
        ("from_muxed", "text", "from_muxed"),
        ("from_muxed_id", "text", "from_muxed_id"),
        ("to_account", "text", "to"),
        ("to_muxed", "text", "to_muxed"),
        ("to_muxed_id", "text", "to_muxed_id"),
        ("asset_code", "text", "asset_code"),
        ("asset_issuer", "text", "asset_issuer"),
        ("amount", "numeric", "amount"),
        ("source_asset_code", "text", "source_asset_code"),
        ("source_asset_issuer", "text", "source_asset_issuer"),
        ("source_amount", "numeric", "source_amount"),
        ("contract_id", "text", "contract_id"),
        ("event_type", "text", "event_type"),
    ],
    jsons=[],
    arrays=[],
    computed=[("accounts", "text[]"), ("assets", "text[]")],
    compute=_computePayment,
)

TRADES = Table(
    "trades",
    "_trades",
    scalars=_OPERATION + [
        ("trade_type", "text", "trade_type"),
        ("seller", "text", "seller"),
        ("liquidity_pool_id", "text", "liquidity_pool_id"),
        ("offer_id", "bigint", "offer_id"),
        ("buyer", "text", "buyer"),
        ("buyer_offer_id", "bigint", "buyer_offer_id"),
        ("sold_asset_code", "text", "sold_asset_code"),
        ("sold_asset_issuer", "text", "sold_asset_issuer"),
        ("sold_amount", "numeric", "sold_amount"),
        ("bought_asset_code", "text", "bought_asset_code"),
        ("bought_asset_issuer", "text", "bought_asset_issuer"),
        ("bought_amount", "numeric", "bought_amount"),
    ],
    jsons=[("price", "price")],
    arrays=[],
    computed=[("accounts", "text[]"), ("assets", "text[]")],
    compute=_computeTrade,
)

#: Every message table, in the order a flush writes them.
TABLES = (EVENTS, PAYMENTS, TRADES)

_BY_TYPE = {PAYMENT: PAYMENTS, TRADE: TRADES}


def tableOf(message):
    """
    The L{Table} a message is stored in (by its ``type``).
    """
    kind = message.get("type") if isinstance(message, dict) else None
    return _BY_TYPE.get(kind, EVENTS) if type(kind) is str else EVENTS


# The events table's columns, under the names the first releases used.
COLUMNS = EVENTS.columns
COLUMN_LIST = EVENTS.columnList


def toRow(message, withMessage=True):
    """
    The events-table tuple for C{message}, in L{COLUMNS} order (see L{Table.row}).
    """
    return EVENTS.row(message, withMessage)


# -- COPY text ------------------------------------------------------------------------------

_NUL = "A string literal cannot contain NUL (0x00) characters."


def _copyText(text):
    if "\x00" in text:
        raise ValueError(_NUL)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _arrayElement(value):
    text = value if type(value) is str else str(value)
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text


def copyValue(value):
    """
    One value in COPY text format: C{None} as ``\\N``, booleans as ``t``/``f``, a list as an
    array literal (every element quoted), anything else as its C{str()}; special characters
    escaped.

    @raise ValueError: a string contains NUL, which PostgreSQL text cannot hold.
    """
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        return _copyText(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is list or kind is tuple:
        if not value:
            return "{}"
        return _copyText('{"' + '","'.join([_arrayElement(v) for v in value]) + '"}')
    if kind is float:
        return repr(value)
    return _copyText(str(value))


def copyLine(row):
    """
    A row tuple as one line of COPY text (with its newline).
    """
    return "\t".join([copyValue(v) for v in row]) + "\n"


# -- dead letters ---------------------------------------------------------------------------

DEAD_LETTER_COLUMNS = "id, pipeline, error, message"


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
