"""
The events table read back in id order: the durable history that WebSocket clients resume from
when their position is older than the server's in-memory window.

Reads are paged (``WHERE id > %s ORDER BY id LIMIT n`` on each message table, events,
payments and trades, merged here: a walk along each primary key, which the planner picks even
before the tables have statistics; rows past the requested end are dropped here) on a connection of their own (a L{ConnectionKeeper} of single statements, opened on
demand: a read while the server is unreachable fails rather than waits), so a replay never waits
behind the consumer's writes, nor they behind it.  Each event comes back as the exact bytes the WebSocket server streamed: the ``message``
column (schema version 2).  Rows written before that version are rebuilt from their columns
(L{messageFromRow}); events PostgreSQL refused are read from the dead-letter table, where the
whole message is kept as JSON text.

A page also says whether the table is I{complete} up to the requested position: the pipeline's
checkpoint is committed with the events it covers, so a checkpoint at or after that position
means no event up to it is still waiting to be written.  Page and checkpoint are read by one
statement (one snapshot), so they agree; one statement is also one round trip per page.
"""

import datetime

from twisted.internet.defer import inlineCallbacks
from zope.interface import implementer

from stellarflow.interfaces import IEventHistory
from stellarflow.message import seal
from stellarflow.postgres import dsn as dsnlib
from stellarflow.postgres import rows as rowlib
from stellarflow.postgres.keeper import ConnectionKeeper, DatabaseUnavailable


class HistoryUnavailable(Exception):
    """
    The history could not be read (no connection, a query failed); the text has no secrets.
    """


#: Only ids in the event id / cursor format take part (a stray id cannot become the floor).
_POSITION_PATTERN = "^[0-9]{19}-[0-9]{10}$"

#: Columns a row written before the ``message`` column is rebuilt from, in message key order.
LEGACY_COLUMNS = (
    "id", "ledger", "ledger_closed_at", "transaction_hash", "contract_id", "operation_index",
    "transaction_index", "in_successful_contract_call", "event_kind", "type", "topics", "data",
    "event_type", "from_account", "to_account", "account_ids", "asset_code", "asset_issuer",
    "amount::text", "amount_raw::text", "asset_verified", "to_muxed_id", "decode_error", "extra",
)
_ENVELOPE_KEYS = (
    "id", "ledger", "ledger_closed_at", "transaction_hash", "contract_id", "operation_index",
    "transaction_index", "in_successful_contract_call", "event_kind",
)
_TOKEN_KEYS = (
    "event_type", "from", "to", "account_ids", "asset_code", "asset_issuer", "amount",
    "amount_raw", "asset_verified", "to_muxed_id",
)


def formatTime(value):
    """
    A ``timestamptz`` as the RPC writes ``ledgerClosedAt``: RFC 3339 in UTC with ``Z``, whole
    seconds unless there is a fraction.
    """
    if value is None:
        return None
    value = value.astimezone(datetime.timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += (".%06d" % value.microsecond).rstrip("0")
    return text + "Z"


def messageFromRow(row):
    """
    Rebuild the message of a row written before schema version 2 (C{row} in
    L{LEGACY_COLUMNS} order), in the processor's key order.

    Best effort: the columns do not keep everything.  ``ledger_closed_at`` comes back in the
    RPC's usual ``...T18:01:10Z`` form, and objects inside ``topics``/``data`` in JSONB's key
    order; token keys are present when ``event_type`` is set (as the processor does).
    """
    (id_, ledger, closed, txhash, contract, opIndex, txIndex, success, kind, type_, topics, data,
     eventType, sender, receiver, accounts, code, issuer, amount, amountRaw, verified, muxed,
     decodeError, extra) = row
    message = {"type": type_ if type_ is not None else "contract_event"}
    values = (id_, ledger, formatTime(closed), txhash, contract, opIndex, txIndex, success, kind)
    message.update(zip(_ENVELOPE_KEYS, values))
    message["topics"] = topics if topics is not None else []
    message["data"] = data
    if eventType is not None:
        message.update(
            zip(
                _TOKEN_KEYS,
                (eventType, sender, receiver, accounts, code, issuer, amount, amountRaw, verified, muxed),
            )
        )
    if decodeError is not None:
        message["decode_error"] = decodeError
    if extra:
        message.update(extra)
    return message


@implementer(IEventHistory)
class PostgresHistory:
    """
    Reads one pipeline's events table in id order (see L{IEventHistory}).

    @param names: the L{TableNames} of the store.
    @param pipeline: the pipeline whose checkpoint and dead letters are read.
    @param keeper: the L{IConnectionKeeper} to read through; by default a L{ConnectionKeeper}
        of C{dsn} running single statements, connected on demand.
    """

    def __init__(
        self, reactor, dsn, names, pipeline, connectTimeout=10.0, queryTimeout=60.0, secrets=(), keeper=None
    ):
        self.names = names
        self.pipeline = pipeline
        if keeper is None:
            keeper = ConnectionKeeper(
                reactor,
                dsn,
                transactional=False,
                connectTimeout=connectTimeout,
                queryTimeout=queryTimeout,
                secrets=secrets,
            )
        self.keeper = keeper
        self.where = dsnlib.describe(dsn)
        self._secrets = tuple(s for s in tuple(secrets) + dsnlib.secretsOf(dsn) if s)
        rejected = names.rejected
        tables = [names.message(table) for table in rowlib.TABLES]
        self._oldestSQL = "SELECT least({}, {})".format(
            ", ".join("(SELECT id FROM {} WHERE id ~ %(p)s ORDER BY id LIMIT 1)".format(t) for t in tables),
            "(SELECT id FROM {} WHERE pipeline = %(pipeline)s AND id ~ %(p)s ORDER BY id LIMIT 1)".format(rejected),
        )
        # Among the first `limit` ids after `after` of each table, those up to `upto`.
        self._countSQL = (
            "SELECT {}, (SELECT count(*) FROM {} WHERE pipeline = %(pipeline)s AND id > %(after)s "
            "AND id <= %(upto)s)"
        ).format(
            " + ".join(
                "(SELECT count(*) FROM (SELECT id FROM {} WHERE id > %(after)s ORDER BY id LIMIT %(limit)s) s "
                "WHERE s.id <= %(upto)s)".format(t)
                for t in tables
            ),
            rejected,
        )
        # The page of each table, the dead letters in its range, and the checkpoint (the row
        # with a NULL id).
        self._pageSQL = " UNION ALL ".join(
            ["(SELECT id, message FROM {} WHERE id > %(after)s ORDER BY id LIMIT %(limit)s)".format(t) for t in tables]
            + [
                "(SELECT id, message FROM {} WHERE pipeline = %(pipeline)s AND id > %(after)s "
                "AND id <= %(upto)s ORDER BY id LIMIT %(limit)s)".format(rejected),
                "(SELECT NULL, cursor FROM {} WHERE pipeline = %(pipeline)s)".format(names.checkpoints),
            ]
        )
        events = names.events
        self._legacySQL = "SELECT {} FROM {} WHERE id = ANY(%s) ORDER BY id".format(
            ", ".join(LEGACY_COLUMNS), events
        )

    def __repr__(self):
        return "<PostgresHistory {} table {}>".format(self.where, self.names.events)

    # -- IEventHistory -----------------------------------------------------------------

    def oldest(self):
        return self._run(self._oldest)

    def count(self, after, upto, limit):
        return self._run(self._count, after, upto, limit)

    def read(self, after, upto, limit):
        return self._run(self._read, after, upto, limit)

    @inlineCallbacks
    def _oldest(self, cursor):
        yield cursor.execute(self._oldestSQL, {"p": _POSITION_PATTERN, "pipeline": self.pipeline})
        return cursor.fetchall()[0][0]

    @inlineCallbacks
    def _count(self, cursor, after, upto, limit):
        yield cursor.execute(
            self._countSQL, {"after": after, "upto": upto, "limit": limit, "pipeline": self.pipeline}
        )
        stored, rejected = cursor.fetchall()[0]
        return min(limit, stored + rejected)

    @inlineCallbacks
    def _read(self, cursor, after, upto, limit):
        yield cursor.execute(
            self._pageSQL, {"after": after, "upto": upto, "limit": limit, "pipeline": self.pipeline}
        )
        rows = cursor.fetchall()
        position = None
        if rows and rows[-1][0] is None:
            position = rows.pop()[1]
        rows = [row for row in rows if row[0] <= upto]
        legacy = [id_ for id_, message in rows if message is None]
        rebuilt = {}
        if legacy:
            yield cursor.execute(self._legacySQL, (legacy,))
            for row in cursor.fetchall():
                rebuilt[row[0]] = seal(messageFromRow(row)).json.decode("ascii")
        events = [(id_, (message if message is not None else rebuilt[id_]).encode("utf-8")) for id_, message in rows]
        # Dead letters follow the page: merge them in (a sorted run costs one pass), keep the first.
        events.sort(key=_first)
        del events[limit:]
        complete = position is not None and position >= upto
        return events, complete

    # -- connection ----------------------------------------------------------------------

    def close(self):
        """
        Close the connection (the consumer stops); later reads fail.
        """
        self.keeper.stop()

    def _run(self, work, *args):
        """
        Run C{work(cursor, *args)} on the connection, opening one if there is none; a failure
        drops the connection (the next call opens a new one) and is passed on as
        L{HistoryUnavailable}.
        """
        d = self.keeper.whenReady(failAfterFailures=1)
        d.addCallback(lambda _: self.keeper.run(work, *args))

        def failed(f):
            if f.check(DatabaseUnavailable):
                raise HistoryUnavailable(str(f.value))
            raise HistoryUnavailable("PostgreSQL at {}: {}".format(self.where, dsnlib.errorText(f, self._secrets)))

        return d.addErrback(failed)


def _first(pair):
    return pair[0]

