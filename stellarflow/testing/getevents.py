"""
The rules of Stellar RPC ``getEvents`` requests: cursors, validation, filters.

Transcribed from stellar/stellar-rpc (``methods/get_events.go``, ``event_filter.go``) and the
request types of stellar/go-stellar-sdk (``protocols/rpc/get_events.go``, ``cursor.go``), so that
the test server rejects what the real server rejects, with the same codes and (as far as they are
known) the same messages, checked in the same order.  Positions (TOIDs, event ids, cursors) are
packed by L{stellarflow.positions}; only L{parseCursor} is the server's own, because Go's parser
accepts what a position string does not (a signed TOID).
"""

import base64
import binascii
import re

import attr
from stellar_sdk import StrKey, xdr

from stellarflow import positions

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

_SIGNED = re.compile(r"[+-]?[0-9]+")
_UNSIGNED = re.compile(r"[0-9]+")

FORMAT_BASE64 = "base64"
FORMAT_JSON = "json"

# Since RPC v23 diagnostic events are no longer stored, and a filter asking for
# type "diagnostic" is rejected (EventTypeSet.valid admits only these two).
EVENT_TYPES = ("system", "contract")


class RPCError(Exception):
    """
    A JSON-RPC error the server answers with.
    """

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def toJSON(self):
        """
        The ``error`` member of the response.
        """
        return {"code": self.code, "message": self.message}


def invalidParams(message):
    """
    A -32602 L{RPCError}.
    """
    return RPCError(INVALID_PARAMS, message)


def parseCursor(text):
    """
    C{"<toid>-<event>"} -> C{(ledger, tx, op, event)}; C{ValueError} where Go's C{ParseCursor}
    fails.  The TOID may be signed (as Go's C{strconv.ParseInt} allows): its bits are read as
    an unsigned 64-bit TOID.
    """
    parts = text.split("-", 1) if isinstance(text, str) else []
    if len(parts) != 2:
        raise ValueError("invalid event id %s" % (text,))
    if not _SIGNED.fullmatch(parts[0]) or not _UNSIGNED.fullmatch(parts[1]):
        raise ValueError("invalid event id %s" % (text,))
    packed = int(parts[0])
    event = int(parts[1])
    if not -(1 << 63) <= packed < (1 << 63) or event > positions.MAX_INDEX:
        raise ValueError("invalid event id %s" % (text,))
    packed &= (1 << 64) - 1  # the bits of a negative TOID, as Go's uint64 conversion reads them
    return (packed >> 32, (packed >> 12) & positions.TX_MASK, packed & positions.OP_MASK, event)


def canonicalScVal(text):
    """
    Base64 ScVal -> its canonical base64 (what events carry); C{ValueError} if it is not one.
    """
    try:
        raw = base64.b64decode(text, validate=True)
        value = xdr.SCVal.from_xdr_bytes(raw)
    except (binascii.Error, ValueError, EOFError, TypeError, KeyError, IndexError) as e:
        raise ValueError(str(e) or "truncated XDR") from None
    return value.to_xdr()


@attr.s
class TopicFilter:
    """
    One topic filter.

    @ivar segments: the canonical base64 ScVal each position must equal (C{None}: ``*``).
    @ivar at_least: whether a trailing ``**`` lets more topics follow.
    """

    segments = attr.ib()
    at_least = attr.ib()

    def matches(self, topic):
        if len(topic) < len(self.segments):
            return False
        if not self.at_least and len(topic) != len(self.segments):
            return False
        for want, got in zip(self.segments, topic):
            if want is not None and want != got:
                return False
        return True


@attr.s
class EventFilter:
    """
    One request filter; an empty field matches everything.  Filters are OR-ed.
    """

    types = attr.ib(default=frozenset())
    contract_ids = attr.ib(default=frozenset())
    topics = attr.ib(factory=list)

    def matches(self, event):
        if self.types and event.type not in self.types:
            return False
        if self.contract_ids and event.contract_id not in self.contract_ids:
            return False
        if self.topics and not any(t.matches(event.topic) for t in self.topics):
            return False
        return True


@attr.s
class EventsRequest:
    """
    A validated getEvents request.

    @ivar cursor: C{(ledger, tx, op, event)} of the exclusive cursor, or C{None}.
    """

    start_ledger = attr.ib(default=0)
    end_ledger = attr.ib(default=0)
    cursor = attr.ib(default=None)
    limit = attr.ib(default=0)
    xdr_format = attr.ib(default=FORMAT_BASE64)
    filters = attr.ib(factory=list)

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


def _unmarshalError(value, where, goType):
    # Go's encoding/json wording, wrapped by jrpc2 as invalid parameters.
    return invalidParams(
        "invalid parameters: json: cannot unmarshal %s into Go struct field %s of type %s"
        % (_describe(value), where, goType)
    )


def _uint(value, where, bits):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise _unmarshalError(value, where, "uint32" if bits == 32 else "uint")
    return value


def _string(value, where):
    if value is None:
        return None
    if not isinstance(value, str):
        raise _unmarshalError(value, where, "string")
    return value


def _list(value, where, goType):
    if value is None:
        return []
    if not isinstance(value, list):
        raise _unmarshalError(value, where, goType)
    return value


def _object(value, where, goType):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _unmarshalError(value, where, goType)
    return value


def _decodeFilter(raw, index):
    """
    Unmarshal one filter: C{(type names, contract ids, topics as raw segment lists)}.
    """
    where = "GetEventsRequest.filters"
    raw = _object(raw, where, "protocol.EventFilter")
    joined = _string(raw.get("type"), where + ".type")
    types = [t for t in joined.split(",")] if joined else []
    contractIds = []
    for cid in _list(raw.get("contractIds"), where + ".contractIds", "[]string"):
        contractIds.append(_string(cid, where + ".contractIds"))
    topics = []
    for topic in _list(raw.get("topics"), where + ".topics", "[]protocol.TopicFilter"):
        segments = []
        for segment in _list(topic, where + ".topics", "protocol.TopicFilter"):
            if not isinstance(segment, str):
                raise _unmarshalError(segment, where + ".topics", "string")
            if segment in (WILDCARD_ONE, WILDCARD_ZERO_OR_MORE):
                segments.append(segment)
                continue
            try:
                segments.append(("scval", canonicalScVal(segment)))
            except ValueError as e:
                raise invalidParams(
                    "invalid parameters: filter %d: topic segment %r is not a base64 ScVal (%s)"
                    % (index + 1, segment, e)
                ) from None
        topics.append(segments)
    return types, contractIds, topics


def _validateTopic(segments):
    """
    Go's C{TopicFilter.Valid}, returning the compiled L{TopicFilter}.
    """
    if len(segments) < MIN_TOPIC_SEGMENTS:
        raise ValueError("topic must have at least %d segment" % MIN_TOPIC_SEGMENTS)
    atLeast = segments[-1] == WILDCARD_ZERO_OR_MORE
    fixed = segments[:-1] if atLeast else segments
    for i, segment in enumerate(fixed):
        if segment == WILDCARD_ZERO_OR_MORE:
            raise ValueError(
                "segment %d invalid: wildcard '**' is only allowed as the last segment" % (i + 1)
            )
    if len(fixed) > MAX_TOPIC_SEGMENTS:
        raise ValueError("topic cannot have more than %d segments" % MAX_TOPIC_SEGMENTS)
    compiled = tuple(None if s == WILDCARD_ONE else s[1] for s in fixed)
    return TopicFilter(compiled, atLeast)


def _validateFilter(types, contractIds, topics):
    """
    Go's C{EventFilter.Valid}, returning the compiled L{EventFilter}.
    """
    for name in types:
        if name not in EVENT_TYPES:
            raise ValueError("filter type invalid: if set, type must be either 'system' or 'contract'")
    if len(contractIds) > MAX_CONTRACT_IDS:
        raise ValueError("maximum %d contract IDs per filter" % MAX_CONTRACT_IDS)
    if len(topics) > MAX_TOPICS:
        raise ValueError("maximum %d topics per filter" % MAX_TOPICS)
    for i, cid in enumerate(contractIds):
        if not StrKey.is_valid_contract(cid):
            raise ValueError("contract ID %d invalid" % (i + 1))
    compiled = []
    for i, segments in enumerate(topics):
        try:
            compiled.append(_validateTopic(segments))
        except ValueError as e:
            raise ValueError("topic %d invalid: %s" % (i + 1, e)) from None
    return EventFilter(frozenset(types), frozenset(contractIds), compiled)


def parseRequest(params, maxLimit=MAX_LIMIT):
    """
    Decode and validate getEvents C{params}; raise L{RPCError} (-32602) like the real server.

    Order: JSON decoding (types, cursor syntax, topic segment XDR), then
    C{GetEventsRequest.Valid}: xdrFormat, cursor vs ledger range, startLedger, limit, filter
    count, then each filter.  The ledger range check is the caller's.

    @rtype: L{EventsRequest}
    """
    if params is None:
        params = {}
    if isinstance(params, list):
        raise invalidParams("invalid parameters: array parameters are not allowed")
    if not isinstance(params, dict):
        raise invalidParams("invalid parameters: params must be an object")

    start = _uint(params.get("startLedger"), "GetEventsRequest.startLedger", 32)
    end = _uint(params.get("endLedger"), "GetEventsRequest.endLedger", 32)
    xdrFormat = _string(params.get("xdrFormat"), "GetEventsRequest.xdrFormat") or ""
    pagination = params.get("pagination")
    cursor = None
    limit = 0
    if pagination is not None:
        pagination = _object(pagination, "GetEventsRequest.pagination", "protocol.PaginationOptions")
        rawCursor = pagination.get("cursor")
        if rawCursor is not None:
            if not isinstance(rawCursor, str):
                raise _unmarshalError(rawCursor, "PaginationOptions.cursor", "string")
            try:
                cursor = parseCursor(rawCursor)
            except ValueError as e:
                raise invalidParams("invalid parameters: %s" % (e,)) from None
        limit = _uint(pagination.get("limit"), "PaginationOptions.limit", 64)
    rawFilters = _list(params.get("filters"), "GetEventsRequest.filters", "[]protocol.EventFilter")
    decoded = [_decodeFilter(f, i) for i, f in enumerate(rawFilters)]

    if xdrFormat not in ("", FORMAT_BASE64, FORMAT_JSON):
        raise invalidParams(
            "got '%s': expected %s, %s for optional 'xdrFormat'" % (xdrFormat, FORMAT_BASE64, FORMAT_JSON)
        )
    if cursor is not None:
        if start != 0 or end != 0:
            raise invalidParams("ledger ranges and cursor cannot both be set")
    elif start <= 0:
        raise invalidParams("startLedger must be positive")
    if limit > maxLimit:
        raise invalidParams("limit must not exceed %d" % maxLimit)
    if len(decoded) > MAX_FILTERS:
        raise invalidParams("maximum %d filters per request" % MAX_FILTERS)
    filters = []
    for i, (types, contractIds, topics) in enumerate(decoded):
        try:
            filters.append(_validateFilter(types, contractIds, topics))
        except ValueError as e:
            raise invalidParams("filter %d invalid: %s" % (i + 1, e)) from None
    return EventsRequest(
        start_ledger=start,
        end_ledger=end,
        cursor=cursor,
        limit=limit,
        xdr_format=xdrFormat or FORMAT_BASE64,
        filters=filters,
    )
