"""The rules of Stellar RPC ``getEvents`` requests: cursors, validation, filters.

Transcribed from stellar/stellar-rpc (``methods/get_events.go``, ``event_filter.go``) and the
request types of stellar/go-stellar-sdk (``protocols/rpc/get_events.go``, ``cursor.go``), so that
the test server rejects what the real server rejects, with the same codes and (as far as they are
known) the same messages, checked in the same order.
"""

import base64
import binascii
import re
from dataclasses import dataclass, field

from stellar_sdk import StrKey, xdr

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PROCESSING_LIMIT = -32001
SYSTEM_ERROR = -32098

MAX_FILTERS = 5
MAX_CONTRACT_IDS = 5
MAX_TOPICS = 5
MIN_TOPIC_SEGMENTS = 1
MAX_TOPIC_SEGMENTS = 4
WILDCARD_ONE = "*"
WILDCARD_ZERO_OR_MORE = "**"
LEDGER_SCAN_LIMIT = 10000
DEFAULT_LIMIT = 100
MAX_LIMIT = 10000

# toid masks: ledger << 32 | tx << 12 | op; the largest cursor of a ledger uses them all.
TX_MASK = (1 << 20) - 1
OP_MASK = (1 << 12) - 1
EVENT_MAX = (1 << 32) - 1

_SIGNED = re.compile(r"[+-]?[0-9]+")
_UNSIGNED = re.compile(r"[0-9]+")

FORMAT_BASE64 = "base64"
FORMAT_JSON = "json"

# Since RPC v23 diagnostic events are no longer stored, and a filter asking for
# type "diagnostic" is rejected (EventTypeSet.valid admits only these two).
EVENT_TYPES = ("system", "contract")


class RPCError(Exception):
    """A JSON-RPC error the server answers with."""

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def to_json(self):
        return {"code": self.code, "message": self.message}


def invalid_params(message):
    return RPCError(INVALID_PARAMS, message)


def toid(ledger, tx, op):
    return (ledger << 32) | (tx << 12) | op


def format_id(ledger, tx, op, event):
    """The event id / cursor string: ``%019d-%010d`` of the TOID and the event index."""
    return "%019d-%010d" % (toid(ledger, tx, op), event)


def max_cursor(ledger):
    """The cursor after every event of ``ledger``: what an incomplete page returns."""
    return format_id(ledger, TX_MASK, OP_MASK, EVENT_MAX)


def parse_cursor(text):
    """``"<toid>-<event>"`` -> ``(ledger, tx, op, event)``; ValueError like ParseCursor."""
    parts = text.split("-", 1) if isinstance(text, str) else []
    if len(parts) != 2:
        raise ValueError("invalid event id %s" % (text,))
    if not _SIGNED.fullmatch(parts[0]) or not _UNSIGNED.fullmatch(parts[1]):
        raise ValueError("invalid event id %s" % (text,))
    packed = int(parts[0])
    event = int(parts[1])
    if not -(1 << 63) <= packed < (1 << 63) or event > EVENT_MAX:
        raise ValueError("invalid event id %s" % (text,))
    return ((packed >> 32) & 0xFFFFFFFF, (packed >> 12) & TX_MASK, packed & OP_MASK, event)


def canonical_scval(text):
    """Base64 ScVal -> its canonical base64 (what events carry); ValueError if not one."""
    try:
        raw = base64.b64decode(text, validate=True)
        value = xdr.SCVal.from_xdr_bytes(raw)
    except (binascii.Error, ValueError, EOFError, TypeError, KeyError, IndexError) as e:
        raise ValueError(str(e) or "truncated XDR") from None
    return value.to_xdr()


@dataclass
class TopicFilter:
    """One topic filter: canonical base64 per position (None = ``*``), ``**`` as at_least."""

    segments: tuple
    at_least: bool

    def matches(self, topic):
        if len(topic) < len(self.segments):
            return False
        if not self.at_least and len(topic) != len(self.segments):
            return False
        for want, got in zip(self.segments, topic):
            if want is not None and want != got:
                return False
        return True


@dataclass
class EventFilter:
    """One request filter; an empty field matches everything. Filters are OR-ed."""

    types: frozenset = frozenset()
    contract_ids: frozenset = frozenset()
    topics: list = field(default_factory=list)

    def matches(self, event):
        if self.types and event.type not in self.types:
            return False
        if self.contract_ids and event.contract_id not in self.contract_ids:
            return False
        if self.topics and not any(t.matches(event.topic) for t in self.topics):
            return False
        return True


@dataclass
class EventsRequest:
    """A validated getEvents request."""

    start_ledger: int = 0
    end_ledger: int = 0
    cursor: tuple = None
    limit: int = 0
    xdr_format: str = FORMAT_BASE64
    filters: list = field(default_factory=list)

    def matches(self, event):
        return not self.filters or any(f.matches(event) for f in self.filters)


def _describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number %s" % (value,)
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _unmarshal_error(value, where, go_type):
    # Go's encoding/json wording, wrapped by jrpc2 as invalid parameters.
    return invalid_params(
        "invalid parameters: json: cannot unmarshal %s into Go struct field %s of type %s"
        % (_describe(value), where, go_type)
    )


def _uint(value, where, bits):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise _unmarshal_error(value, where, "uint32" if bits == 32 else "uint")
    return value


def _string(value, where):
    if value is None:
        return None
    if not isinstance(value, str):
        raise _unmarshal_error(value, where, "string")
    return value


def _list(value, where, go_type):
    if value is None:
        return []
    if not isinstance(value, list):
        raise _unmarshal_error(value, where, go_type)
    return value


def _object(value, where, go_type):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _unmarshal_error(value, where, go_type)
    return value


def _decode_filter(raw, index):
    """Unmarshal one filter: (type names, contract ids, topics as raw segment lists)."""
    where = "GetEventsRequest.filters"
    raw = _object(raw, where, "protocol.EventFilter")
    joined = _string(raw.get("type"), where + ".type")
    types = [t for t in joined.split(",")] if joined else []
    contract_ids = []
    for cid in _list(raw.get("contractIds"), where + ".contractIds", "[]string"):
        contract_ids.append(_string(cid, where + ".contractIds"))
    topics = []
    for topic in _list(raw.get("topics"), where + ".topics", "[]protocol.TopicFilter"):
        segments = []
        for segment in _list(topic, where + ".topics", "protocol.TopicFilter"):
            if not isinstance(segment, str):
                raise _unmarshal_error(segment, where + ".topics", "string")
            if segment in (WILDCARD_ONE, WILDCARD_ZERO_OR_MORE):
                segments.append(segment)
                continue
            try:
                segments.append(("scval", canonical_scval(segment)))
            except ValueError as e:
                raise invalid_params(
                    "invalid parameters: filter %d: topic segment %r is not a base64 ScVal (%s)"
                    % (index + 1, segment, e)
                ) from None
        topics.append(segments)
    return types, contract_ids, topics


def _validate_topic(segments):
    """TopicFilter.Valid, returning the compiled filter."""
    if len(segments) < MIN_TOPIC_SEGMENTS:
        raise ValueError("topic must have at least %d segment" % MIN_TOPIC_SEGMENTS)
    at_least = segments[-1] == WILDCARD_ZERO_OR_MORE
    fixed = segments[:-1] if at_least else segments
    for i, segment in enumerate(fixed):
        if segment == WILDCARD_ZERO_OR_MORE:
            raise ValueError(
                "segment %d invalid: wildcard '**' is only allowed as the last segment" % (i + 1)
            )
    if len(fixed) > MAX_TOPIC_SEGMENTS:
        raise ValueError("topic cannot have more than %d segments" % MAX_TOPIC_SEGMENTS)
    compiled = tuple(None if s == WILDCARD_ONE else s[1] for s in fixed)
    return TopicFilter(compiled, at_least)


def _validate_filter(types, contract_ids, topics):
    """EventFilter.Valid, returning the compiled filter."""
    for name in types:
        if name not in EVENT_TYPES:
            raise ValueError("filter type invalid: if set, type must be either 'system' or 'contract'")
    if len(contract_ids) > MAX_CONTRACT_IDS:
        raise ValueError("maximum %d contract IDs per filter" % MAX_CONTRACT_IDS)
    if len(topics) > MAX_TOPICS:
        raise ValueError("maximum %d topics per filter" % MAX_TOPICS)
    for i, cid in enumerate(contract_ids):
        if not StrKey.is_valid_contract(cid):
            raise ValueError("contract ID %d invalid" % (i + 1))
    compiled = []
    for i, segments in enumerate(topics):
        try:
            compiled.append(_validate_topic(segments))
        except ValueError as e:
            raise ValueError("topic %d invalid: %s" % (i + 1, e)) from None
    return EventFilter(frozenset(types), frozenset(contract_ids), compiled)


def parse_request(params, max_limit=MAX_LIMIT):
    """Decode and validate getEvents ``params``; RPCError(-32602) like the real server.

    Order: JSON decoding (types, cursor syntax, topic segment XDR), then
    ``GetEventsRequest.Valid``: xdrFormat, cursor vs ledger range, startLedger,
    limit, filter count, then each filter. The ledger range check is the caller's.
    """
    if params is None:
        params = {}
    if isinstance(params, list):
        raise invalid_params("invalid parameters: array parameters are not allowed")
    if not isinstance(params, dict):
        raise invalid_params("invalid parameters: params must be an object")

    start = _uint(params.get("startLedger"), "GetEventsRequest.startLedger", 32)
    end = _uint(params.get("endLedger"), "GetEventsRequest.endLedger", 32)
    xdr_format = _string(params.get("xdrFormat"), "GetEventsRequest.xdrFormat") or ""
    pagination = params.get("pagination")
    cursor = None
    limit = 0
    if pagination is not None:
        pagination = _object(pagination, "GetEventsRequest.pagination", "protocol.PaginationOptions")
        raw_cursor = pagination.get("cursor")
        if raw_cursor is not None:
            if not isinstance(raw_cursor, str):
                raise _unmarshal_error(raw_cursor, "PaginationOptions.cursor", "string")
            try:
                cursor = parse_cursor(raw_cursor)
            except ValueError as e:
                raise invalid_params("invalid parameters: %s" % (e,)) from None
        limit = _uint(pagination.get("limit"), "PaginationOptions.limit", 64)
    raw_filters = _list(params.get("filters"), "GetEventsRequest.filters", "[]protocol.EventFilter")
    decoded = [_decode_filter(f, i) for i, f in enumerate(raw_filters)]

    if xdr_format not in ("", FORMAT_BASE64, FORMAT_JSON):
        raise invalid_params(
            "got '%s': expected %s, %s for optional 'xdrFormat'" % (xdr_format, FORMAT_BASE64, FORMAT_JSON)
        )
    if cursor is not None:
        if start != 0 or end != 0:
            raise invalid_params("ledger ranges and cursor cannot both be set")
    elif start <= 0:
        raise invalid_params("startLedger must be positive")
    if limit > max_limit:
        raise invalid_params("limit must not exceed %d" % max_limit)
    if len(decoded) > MAX_FILTERS:
        raise invalid_params("maximum %d filters per request" % MAX_FILTERS)
    filters = []
    for i, (types, contract_ids, topics) in enumerate(decoded):
        try:
            filters.append(_validate_filter(types, contract_ids, topics))
        except ValueError as e:
            raise invalid_params("filter %d invalid: %s" % (i + 1, e)) from None
    return EventsRequest(
        start_ledger=start,
        end_ledger=end,
        cursor=cursor,
        limit=limit,
        xdr_format=xdr_format or FORMAT_BASE64,
        filters=filters,
    )
