"""
``GET /events``: stored events by WebSocket filter and range, paged, as the WebSocket sent them.

Served on the admin port when a pipeline has C{SaveToPostgreSQL} (``history_endpoint: admin``,
the default).  Parameters (``docs/postgresql.md`` has examples):

- the four WebSocket filter fields: C{types}, C{account_ids}, C{asset_codes} (each repeated or
  comma-separated) and C{min_amount}, parsed by the WebSocket's own parser
  (L{stellarflow.websocket.filters.parseFilters}), so an error reads as it does there;
- a range: C{from_ledger}/C{to_ledger} (inclusive) and/or C{since}/C{until} (RFC 3339; ledgers
  closed at or after C{since} and before C{until});
- C{after}: an exclusive event id (the id a WebSocket client resumes with, or the last page's
  C{next}); C{limit}: the page size (default 100, at most the configured C{history_max_limit});
- C{pipeline}: which pipeline's store, needed only when several pipelines have one.

The answer is C{{"pipeline", "events": [...], "next", "stored_through"}}: C{events} are the
stored messages, byte for byte the WebSocket's frames, in id order; C{next} is the C{after} of
the next page (C{null}: no more stored events in the range); C{stored_through} is the pipeline's
PostgreSQL checkpoint (events up to it are all stored; later ones may still be written).  A bad
parameter gets 400 with C{{"error": {"code", "message", "parameter"}}} naming it; a query past
the statement timeout 503 (C{query_timeout}); an unreachable database 503 (C{unavailable}).
"""

import datetime
import json

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from stellarflow import positions
from stellarflow.postgres.query import QueryTimeout, QueryUnavailable
from stellarflow.websocket.filters import FilterError, parseFilters

LIST_FIELDS = ("types", "account_ids", "asset_codes")
PARAMETERS = LIST_FIELDS + ("min_amount", "after", "from_ledger", "to_ledger", "since", "until", "limit", "pipeline")
DEFAULT_LIMIT = 100


class BadParameter(ValueError):
    """
    A request parameter is invalid: C{code}, C{message} and the C{parameter} it names.
    """

    def __init__(self, code, message, parameter):
        ValueError.__init__(self, message)
        self.code = code
        self.message = message
        self.parameter = parameter


def _single(args, name):
    values = args.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadParameter("repeated_parameter", "{} may be given once".format(name), name)
    return values[0]


def _ledger(args, name):
    text = _single(args, name)
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= positions.MAX_LEDGER:
        raise BadParameter(
            "invalid_" + name, "{} must be a ledger sequence (1 to {}), not {!r}".format(
                name, positions.MAX_LEDGER, text[:60]), name)
    return int(text)


def _time(args, name):
    text = _single(args, name)
    if text is None:
        return None
    try:
        value = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise BadParameter(
            "invalid_" + name,
            "{} must be an RFC 3339 time with its offset, like 2026-07-21T18:01:10Z, not {!r}".format(name, text[:60]),
            name,
        )
    return value


def parseRequest(args, queries):
    """
    The query's parameters from a request's C{args} (str -> [str]).

    @param queries: pipeline name -> L{IEventQuery}.
    @return: C{(query, filters, keyword arguments of IEventQuery.page)}.
    @raise BadParameter: naming the first bad parameter.
    """
    for name in args:
        if name not in PARAMETERS:
            raise BadParameter(
                "unknown_parameter", "unknown parameter {!r}; known: {}".format(name[:60], ", ".join(PARAMETERS)), name)
    pipeline = _single(args, "pipeline")
    if pipeline is None:
        if len(queries) != 1:
            raise BadParameter(
                "missing_pipeline", "pipeline is required: one of {}".format(", ".join(sorted(queries))), "pipeline")
        (query,) = queries.values()
    elif pipeline in queries:
        query = queries[pipeline]
    else:
        raise BadParameter(
            "unknown_pipeline", "pipeline {!r} has no PostgreSQL store here; one of {}".format(
                pipeline[:60], ", ".join(sorted(queries))), "pipeline")
    raw = {}
    for name in LIST_FIELDS:
        if name in args:
            raw[name] = [item for value in args[name] for item in value.split(",") if item]
    if "min_amount" in args:
        raw["min_amount"] = _single(args, "min_amount")
    try:
        filters = parseFilters(raw)
    except FilterError as e:
        raise BadParameter(e.code, e.message, e.field) from None
    page = {}
    after = _single(args, "after")
    if after is not None:
        try:
            page["after"] = positions.parsePosition(after)
        except ValueError as e:
            raise BadParameter("invalid_after", "after: {}".format(e), "after") from None
    page["fromLedger"] = _ledger(args, "from_ledger")
    page["toLedger"] = _ledger(args, "to_ledger")
    if page["fromLedger"] is not None and page["toLedger"] is not None and page["fromLedger"] > page["toLedger"]:
        raise BadParameter("invalid_range", "from_ledger is after to_ledger", "to_ledger")
    page["since"] = _time(args, "since")
    page["until"] = _time(args, "until")
    if page["since"] is not None and page["until"] is not None and page["since"] >= page["until"]:
        raise BadParameter("invalid_range", "since must be before until", "until")
    limit = _single(args, "limit")
    if limit is None:
        page["limit"] = min(DEFAULT_LIMIT, query.maxLimit)
    elif not limit.isdigit() or not 1 <= int(limit) <= query.maxLimit:
        raise BadParameter(
            "invalid_limit", "limit must be a whole number from 1 to {}, not {!r}".format(query.maxLimit, limit[:60]),
            "limit")
    else:
        page["limit"] = int(limit)
    return query, filters, page


def pageBody(pipeline, page):
    """
    The JSON answer for a page: the events' stored bytes are copied in, never re-encoded.
    """
    head = '{{"pipeline":{},"next":{},"stored_through":{},"events":['.format(
        json.dumps(pipeline), json.dumps(page.next), json.dumps(page.stored_through)).encode("ascii")
    return head + b",".join(message for _, message in page.events) + b"]}"


def errorBody(code, message, parameter=None):
    return json.dumps({"error": {"code": code, "message": message, "parameter": parameter}}).encode("utf-8")


class EventsResource(Resource):
    """
    ``GET /events`` over the L{IEventQuery}s of a daemon's pipelines (by pipeline name).
    """

    isLeaf = True
    log = Logger()

    def __init__(self, queries):
        Resource.__init__(self)
        self.queries = dict(queries)

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        try:
            args = {k.decode("utf-8"): [v.decode("utf-8") for v in vs] for k, vs in request.args.items()}
        except UnicodeDecodeError:
            request.setResponseCode(400)
            return errorBody("invalid_encoding", "parameters must be UTF-8")
        try:
            query, filters, page = parseRequest(args, self.queries)
        except BadParameter as e:
            request.setResponseCode(400)
            return errorBody(e.code, e.message, e.parameter)
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = query.page(filters, **page)

        def answer(result):
            if not finished:
                request.write(pageBody(query.pipeline, result))
                request.finish()

        def failed(failure):
            if failure.check(QueryTimeout):
                code = "query_timeout"
            elif failure.check(QueryUnavailable):
                code = "unavailable"
            else:
                self.log.failure("GET /events failed", failure)
                code = "internal_error"
            if not finished:
                request.setResponseCode(503 if code != "internal_error" else 500)
                request.write(errorBody(code, failure.getErrorMessage()))
                request.finish()

        d.addCallbacks(answer, failed)
        return NOT_DONE_YET
