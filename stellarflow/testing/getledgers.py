"""
The rules of Stellar RPC ``getLedgers`` requests, as the test server applies them.

Transcribed from stellar/stellar-rpc (``methods/get_ledgers.go``) and stellar/go's
``protocols/rpc/get_ledgers.go`` (C{GetLedgersRequest.Validate}, C{ValidatePagination}), in
their order and with their messages:

  - JSON decoding (wrong types: -32602, Go's C{encoding/json} wording, approximately);
  - C{Validate} (-32600 ``InvalidRequest``): with a cursor, C{startLedger} must be 0
    (``startLedger (S) and cursor (C) cannot both be set``); without one, C{startLedger} must be
    within the range (``start ledger (S) must be between the oldest ledger: O and the latest
    ledger: L for this rpc instance``: the answer at the tip, for latest + 1); ``limit must
    not exceed 200``; then C{xdrFormat} (joined to the first error by a newline, as
    C{errors.Join});
  - the cursor (-32602 ``InvalidParams``): a uint32 (else Go's C{strconv.ParseUint} error),
    and cursor + 1 within the range (``cursor ('C') must be between the oldest ledger: O and the
    latest ledger: L for this rpc instance``: the answer at the tip for a cursor at latest);
  - a limit of 0 means the default (50); ledgers ``start .. start + limit - 1`` up to the latest;
    the answer's cursor is the last sequence returned, else the request's cursor, else
    C{start - 1}.
"""

import attr

from stellarflow.testing.getevents import INVALID_PARAMS, INVALID_REQUEST, RPCError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@attr.s(frozen=True)
class LedgersRequest:
    """
    A decoded getLedgers request: C{start_ledger}, C{cursor} (text or C{None}), C{limit}
    (0: the default), C{xdr_format}.
    """

    start_ledger = attr.ib()
    cursor = attr.ib()
    limit = attr.ib()
    xdr_format = attr.ib()


def _unmarshal(value, where, goType):
    kind = {bool: "bool", str: "string", list: "array", dict: "object", float: "number", int: "number"}.get(
        type(value), "value")
    return RPCError(INVALID_PARAMS, "invalid parameters: json: cannot unmarshal %s into Go struct field %s of "
                                    "type %s" % (kind, where, goType))


def _uint(value, where, bits):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise _unmarshal(value, where, "uint32" if bits == 32 else "uint")
    return value


def parseLedgersRequest(params):
    """
    Decode getLedgers C{params} (the JSON decoding step); raise L{RPCError} (-32602).
    """
    if params is None:
        params = {}
    if isinstance(params, list):
        raise RPCError(INVALID_PARAMS, "invalid parameters: array parameters are not allowed")
    if not isinstance(params, dict):
        raise RPCError(INVALID_PARAMS, "invalid parameters: params must be an object")
    start = _uint(params.get("startLedger"), "GetLedgersRequest.startLedger", 32)
    xdrFormat = params.get("xdrFormat")
    if xdrFormat is not None and not isinstance(xdrFormat, str):
        raise _unmarshal(xdrFormat, "GetLedgersRequest.xdrFormat", "string")
    pagination = params.get("pagination")
    cursor, limit = None, 0
    if pagination is not None:
        if not isinstance(pagination, dict):
            raise _unmarshal(pagination, "GetLedgersRequest.pagination", "protocol.LedgerPaginationOptions")
        cursor = pagination.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise _unmarshal(cursor, "LedgerPaginationOptions.cursor", "string")
        limit = _uint(pagination.get("limit"), "LedgerPaginationOptions.limit", 64)
    return LedgersRequest(start, cursor or None, limit, xdrFormat or "")


def ledgerRange(request, oldest, latest, maxLimit=MAX_LIMIT, defaultLimit=DEFAULT_LIMIT):
    """
    The C{(first, last)} ledgers to answer C{request} with when the server has C{oldest} to
    C{latest}; raise L{RPCError} as the real server does (see the module docstring).
    """
    problems = []
    badPage = ("start ledger (%d) must be between the oldest ledger: %d and the latest ledger: %d for this rpc "
               "instance" % (request.start_ledger, oldest, latest))
    if request.cursor is not None:
        if request.start_ledger != 0:
            problems.append("startLedger (%d) and cursor (%s) cannot both be set" % (request.start_ledger,
                                                                                      request.cursor))
    elif not oldest <= request.start_ledger <= latest:
        problems.append(badPage)
    if not problems and request.limit > maxLimit:
        problems.append("limit must not exceed %d" % (maxLimit,))
    if request.xdr_format not in ("", "base64", "json"):
        problems.append("got '%s': expected base64, json for optional 'xdrFormat'" % (request.xdr_format,))
    if problems:
        raise RPCError(INVALID_REQUEST, "\n".join(problems))
    start = request.start_ledger
    if request.cursor is not None:
        text = request.cursor
        if not text.isdigit():
            raise RPCError(INVALID_PARAMS, 'strconv.ParseUint: parsing "%s": invalid syntax' % (text,))
        if int(text) >= 1 << 32:
            raise RPCError(INVALID_PARAMS, 'strconv.ParseUint: parsing "%s": value out of range' % (text,))
        start = (int(text) + 1) & 0xFFFFFFFF
        if not oldest <= start <= latest:
            raise RPCError(INVALID_PARAMS, "cursor ('%s') must be between the oldest ledger: %d and the latest "
                                           "ledger: %d for this rpc instance" % (text, oldest, latest))
    limit = request.limit or defaultLimit
    return start, min(start + limit - 1, latest)
