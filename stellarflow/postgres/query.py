"""
Stored messages read back with a WebSocket filter and a range, in id order, a page at a time:
what the history endpoint (L{stellarflow.postgres.endpoint}) answers with.

One page is one statement: for each message table that the filter can match (see
L{stellarflow.postgres.filtersql}), C{WHERE id > lo AND id <= hi AND <filter> ORDER BY id LIMIT
n}, merged (C{UNION ALL}, then sorted here), beside the dead letters of that range (filtered here
with L{stellarflow.websocket.matching}: their columns are not stored) and the pipeline's
checkpoint (how far the tables are complete).  A time range is first turned into a ledger range
with the tables' ``ledger_closed_at`` indexes (close times never decrease), then also checked
row by row.

Reads use a connection of their own, with a C{statement_timeout}: a query that takes longer is
cancelled by the server and reported as L{QueryTimeout}; the connection stays.
"""

import json

import attr
import psycopg2
import psycopg2.errors
from twisted.internet.defer import CancelledError, inlineCallbacks
from zope.interface import implementer

from stellarflow import positions
from stellarflow.interfaces import IEventQuery
from stellarflow.message import seal
from stellarflow.postgres import dsn as dsnlib
from stellarflow.postgres import filtersql
from stellarflow.postgres import rows as rowlib
from stellarflow.postgres.history import LEGACY_COLUMNS, messageFromRow
from stellarflow.postgres.keeper import ConnectionKeeper, DatabaseUnavailable
from stellarflow.websocket.matching import eventKeys, matches

#: The source numbers of the dead letters and of the checkpoint in a page's answer (the message
#: tables are numbered from 0).
_DEAD, _CHECKPOINT = 100, 101


#: A statement cancelled by the server (txpostgres turns psycopg2's error into CancelledError).
_CANCELLED = (psycopg2.errors.QueryCanceled, CancelledError)


class QueryUnavailable(Exception):
    """
    The store could not be read (no connection, a failed query); the text has no secrets.
    """


class QueryTimeout(QueryUnavailable):
    """
    The query ran past the statement timeout and was cancelled.
    """


@attr.s(frozen=True)
class Page:
    """
    One page: C{events} (C{[(id, message JSON bytes)]} in id order), C{next} (the id to read
    after for the next page, C{None} when the range holds no more stored events) and
    C{stored_through} (the pipeline's checkpoint: every event up to it is stored).
    """

    events = attr.ib()
    next = attr.ib()
    stored_through = attr.ib()


@implementer(IEventQuery)
class EventQuery:
    """
    Reads one pipeline's message tables with filters (see L{IEventQuery}).

    @param statementTimeout: seconds a statement may run before the server cancels it.
    @param keeper: the L{IConnectionKeeper} to read through; by default a L{ConnectionKeeper}
        of C{dsn} running single statements, connected on demand.
    @param producedTypes: the message types the pipeline produces (C{None}: not known): filters
        are applied as on that pipeline's WebSocket server (L{Filters.forPipeline}).
    """

    def __init__(
        self, reactor, dsn, names, pipeline, statementTimeout=10.0, maxLimit=1000, connectTimeout=10.0, secrets=(),
        keeper=None, producedTypes=None,
    ):
        self.names = names
        self.producedTypes = producedTypes
        self.pipeline = pipeline
        self.maxLimit = maxLimit
        self.statementTimeout = statementTimeout
        milliseconds = max(1, int(statementTimeout * 1000))

        def prepare(cursor):
            return cursor.execute("SET statement_timeout = %s", (milliseconds,))

        if keeper is None:
            keeper = ConnectionKeeper(
                reactor,
                dsn,
                prepare=prepare,
                transactional=False,
                connectTimeout=connectTimeout,
                # the server cancels a slow statement first; this only catches a dead connection
                queryTimeout=statementTimeout + 30.0,
                secrets=secrets,
                passOn=_CANCELLED,
            )
        self.keeper = keeper
        self.where = dsnlib.describe(dsn)
        self._secrets = tuple(s for s in tuple(secrets) + dsnlib.secretsOf(dsn) if s)
        self._rejectedSQL = (
            "(SELECT id, message, {} FROM {} WHERE pipeline = %(pipeline)s AND id > %(lo)s AND id <= %(hi)s "
            "ORDER BY id LIMIT %(limit)s)"
        ).format(_DEAD, names.rejected)
        self._checkpointSQL = "(SELECT NULL, cursor, {} FROM {} WHERE pipeline = %(pipeline)s)".format(
            _CHECKPOINT, names.checkpoints
        )
        self._legacySQL = "SELECT {} FROM {} WHERE id = ANY(%s) ORDER BY id".format(
            ", ".join(LEGACY_COLUMNS), names.events
        )

    def close(self):
        self.keeper.stop()

    def page(self, filters, after=None, fromLedger=None, toLedger=None, since=None, until=None, limit=100):
        """
        The first C{limit} stored messages after C{after} in the range that pass C{filters}.

        @param filters: L{stellarflow.websocket.filters.Filters}.
        @param after: an exclusive event id (a position), or C{None}.
        @param fromLedger: the first ledger of the range (inclusive), or C{None}.
        @param toLedger: the last ledger of the range (inclusive), or C{None}.
        @param since: an aware C{datetime}: messages of ledgers closed at or after it, or C{None}.
        @param until: an aware C{datetime}: messages of ledgers closed before it, or C{None}.
        @return: a Deferred firing with a L{Page}; failing with L{QueryTimeout} or
            L{QueryUnavailable}.
        """
        lo = positions.position(0, 0)
        if after is not None:
            lo = after
        if fromLedger is not None:
            lo = max(lo, positions.ledgerStart(fromLedger))
        hi = positions.position(positions.MAX_TOID, positions.MAX_INDEX)
        if toLedger is not None:
            hi = min(hi, positions.ledgerEnd(toLedger))
        filters = filters.forPipeline(self.producedTypes)
        return self._run(self._page, filters, lo, hi, since, until, min(limit, self.maxLimit))

    @inlineCallbacks
    def _page(self, cursor, filters, lo, hi, since, until, limit):
        if since is not None or until is not None:
            bounds = yield self._timeBounds(cursor, since, until)
            if bounds is None:
                checkpoint = yield self._checkpoint(cursor)
                return Page([], None, checkpoint)
            first, last = bounds
            if first is not None:
                lo = max(lo, positions.ledgerStart(first))
            if last is not None:
                hi = min(hi, positions.ledgerEnd(last))
        params = {"lo": lo, "hi": hi, "limit": limit, "pipeline": self.pipeline}
        selects = []
        for table in rowlib.TABLES:
            found = filtersql.conditions(table, filters)
            if found is None:
                continue
            condition, values = found
            params.update(values)
            where = ["id > %(lo)s", "id <= %(hi)s"]
            if since is not None:
                where.append("ledger_closed_at >= %(since)s")
                params["since"] = since
            if until is not None:
                where.append("ledger_closed_at < %(until)s")
                params["until"] = until
            if condition:
                where.append(condition)
            selects.append(
                "(SELECT id, message, {} FROM {} WHERE {} ORDER BY id LIMIT %(limit)s)".format(
                    len(selects), self.names.message(table), " AND ".join(where)
                )
            )
        selects.append(self._rejectedSQL)
        selects.append(self._checkpointSQL)
        yield cursor.execute(" UNION ALL ".join(selects), params)
        checkpoint = None
        sources = {}
        legacy = []
        for id_, message, source in cursor.fetchall():
            if source == _CHECKPOINT:
                checkpoint = message
                continue
            sources.setdefault(source, []).append((id_, message))
            if message is None and source != _DEAD:
                legacy.append(id_)
        # Each source gave its first `limit` rows after `lo`: merged, they are right up to the
        # last row of any source that may have more (a full one).
        cap = min((rows[-1][0] for rows in sources.values() if len(rows) >= limit), default=None)
        dead = sources.pop(_DEAD, [])
        events = [row for rows in sources.values() for row in rows]
        events.extend(row for row in dead if row[1] is not None and deadLetterPasses(filters, row[1]))
        if legacy:
            yield cursor.execute(self._legacySQL, (legacy,))
            rebuilt = {row[0]: seal(messageFromRow(row)).json.decode("ascii") for row in cursor.fetchall()}
            events = [(id_, message if message is not None else rebuilt[id_]) for id_, message in events]
        events.sort(key=_first)
        if cap is not None:
            events = [event for event in events if event[0] <= cap]
        events = events[:limit]
        if len(events) == limit:
            following = events[-1][0]
        else:
            following = cap
        return Page([(id_, message.encode("utf-8")) for id_, message in events], following, checkpoint)

    @inlineCallbacks
    def _timeBounds(self, cursor, since, until):
        """
        C{(first ledger closed at or after since, last ledger closed before until)} over every
        message table (C{None} for a missing bound), or C{None} when no stored ledger is in the
        range.
        """
        selects, params = [], {}
        if since is not None:
            params["since"] = since
            selects.append("(SELECT min(ledger) FROM ({}) s)".format(" UNION ALL ".join(
                "(SELECT ledger FROM {} WHERE ledger_closed_at >= %(since)s ORDER BY ledger_closed_at LIMIT 1)".format(
                    self.names.message(t)) for t in rowlib.TABLES)))
        else:
            selects.append("NULL")
        if until is not None:
            params["until"] = until
            selects.append("(SELECT max(ledger) FROM ({}) u)".format(" UNION ALL ".join(
                "(SELECT ledger FROM {} WHERE ledger_closed_at < %(until)s ORDER BY ledger_closed_at DESC LIMIT 1)"
                .format(self.names.message(t)) for t in rowlib.TABLES)))
        else:
            selects.append("NULL")
        yield cursor.execute("SELECT " + ", ".join(selects), params)
        first, last = cursor.fetchall()[0]
        if (since is not None and first is None) or (until is not None and last is None):
            return None
        return first, last

    @inlineCallbacks
    def _checkpoint(self, cursor):
        yield cursor.execute(self._checkpointSQL[1:-1], {"pipeline": self.pipeline})
        rows = cursor.fetchall()
        return rows[0][1] if rows else None

    def _run(self, work, *args):
        d = self.keeper.whenReady(failAfterFailures=1)
        d.addCallback(lambda _: self.keeper.run(work, *args))

        def failed(f):
            if f.check(*_CANCELLED):
                raise QueryTimeout("the query took longer than {:g}s and was cancelled".format(self.statementTimeout))
            if f.check(DatabaseUnavailable):
                raise QueryUnavailable(str(f.value))
            raise QueryUnavailable("PostgreSQL at {}: {}".format(self.where, dsnlib.errorText(f, self._secrets)))

        return d.addErrback(failed)


def _first(pair):
    return pair[0]


def deadLetterPasses(filters, text):
    """
    Whether a dead letter's message (JSON text) passes C{filters}, by the WebSocket's own rules.
    """
    try:
        message = json.loads(text)
    except ValueError:
        return filters.isEmpty
    if not isinstance(message, dict):
        return filters.isEmpty
    return matches(filters, eventKeys(message))
