"""
The SQL of one flush, apart from any connection: messages rendered as ``COPY`` rows of their
tables, written with ``COPY ... FROM STDIN``, the messages PostgreSQL refuses isolated and stored
as dead letters, and the checkpoint upserted, all through the cursor of the caller's transaction
(so the checkpoint commits with the events it covers).

Rendering (L{EventWriter.render}) needs no cursor: the consumer does it ahead, in the reactor
thread, while the previous flush runs in the database.

Writing (L{EventWriter.write}): every table's rows go in one ``COPY`` straight into the table,
under a savepoint.  A ``COPY`` cannot skip rows that are already there, so when one is (a
batch delivered again after a restart or a retry) PostgreSQL refuses the ``COPY`` whole; the
writer rolls back to the savepoint and writes the same rows through a staging table instead:
``COPY`` into a temporary table, then ``INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING``,
which stores the new rows only.  Either way a redelivered event is never stored twice.

Isolation: when PostgreSQL refuses a row, the flush is written again I{carefully}: each chunk
of at most C{batchSize} rows through the staging table under a savepoint, a refused chunk
rolled back and written again in halves, down to single rows, which become dead letters.  A
batch of M{n} rows with M{k} bad ones costs M{O(k log n)} statements, and no good row is lost.

Nothing here waits on anything but the cursor, so it runs on a blocking cursor in the writer's
thread (L{stellarflow.postgres.keeper.ThreadedConnectionKeeper}), and is tested with a scripted
cursor (L{stellarflow.postgres.fakes.FakeCursor}) as well as against the real server.
"""

import io
import threading

import attr
import psycopg2
import psycopg2.errors
from twisted.internet.defer import inlineCallbacks

from stellarflow.postgres import dsn as dsnlib
from stellarflow.postgres import rows as rowlib

#: Errors that belong to the rows of a statement rather than to the connection.
ROW_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)

#: The error of a ``COPY`` that met a row already stored.
DUPLICATE = psycopg2.errors.UniqueViolation

_RENDER_ERRORS = (ValueError, TypeError, UnicodeError, RecursionError)


@attr.s(slots=True, frozen=True)
class Rendered:
    """
    Messages rendered as COPY rows once, kept for a retry of their flush.

    @ivar rows: C{[(message, table, line)]}: C{table} a L{stellarflow.postgres.rows.Table},
        C{line} the row as COPY text (bytes, with its newline).
    @ivar rejects: C{[(message, error text)]} for messages that cannot become a row.
    """

    rows = attr.ib()
    rejects = attr.ib()


class PredecessorFailed(Exception):
    """
    The flush written before this one on the other connection did not commit: this one rolls
    back too (it must not commit events, nor a checkpoint, past a hole).
    """


class Predecessor:
    """
    The outcome of the flush before, for a flush written meanwhile on a second connection:
    that flush waits here (in its own thread) before it writes its checkpoint and commits, so
    flushes commit in the order they were taken.
    """

    def __init__(self):
        self._event = threading.Event()
        self.committed = None

    def settle(self, committed):
        """The flush before ended (from the reactor thread): C{committed} or not."""
        self.committed = committed
        self._event.set()

    def wait(self, timeout):
        """
        Whether the flush before committed; false when it did not, or did not end within
        C{timeout} seconds (then this one rolls back and is written again).
        """
        return self._event.wait(timeout) and bool(self.committed)


@attr.s(slots=True, frozen=True)
class Written:
    """
    What a flush wrote: C{inserted} new rows, and the C{rejects} (C{[(message, error text)]})
    stored as dead letters.
    """

    inserted = attr.ib()
    rejects = attr.ib()


class EventWriter:
    """
    Writes rendered messages, dead letters and the checkpoint of one pipeline into one store.

    @param names: the L{stellarflow.postgres.schema.TableNames} of the store.
    @param pipeline: the pipeline whose checkpoint and dead letters are written.
    @param batchSize: rows per statement when isolating refused rows.
    @param storeMessage: fill the events table's C{message} column (the message's JSON, for
        replays; the typed tables always keep it).
    @param describeError: error -> one line of text (the consumer's scrubs secrets).
    """

    def __init__(self, names, pipeline, batchSize=500, storeMessage=True, describeError=dsnlib.errorText):
        self.names = names
        self.pipeline = pipeline
        self.batchSize = batchSize
        self.storeMessage = storeMessage
        self.describeError = describeError
        self._copySQL = {}
        self._stageSQL = {}
        self._moveSQL = {}
        self._createStageSQL = {}
        for table in rowlib.TABLES:
            target = names.message(table)
            stage = "pg_temp." + _stageName(table)
            columns = table.columnList
            self._copySQL[table] = "COPY {} ({}) FROM STDIN".format(target, columns)
            self._stageSQL[table] = "COPY {} ({}) FROM STDIN".format(stage, columns)
            self._createStageSQL[table] = (
                "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(_stageName(table), target)
            self._moveSQL[table] = (
                "WITH moved AS (DELETE FROM {stage} RETURNING {columns}) "
                "INSERT INTO {target} ({columns}) SELECT {columns} FROM moved ON CONFLICT (id) DO NOTHING"
            ).format(stage=stage, target=target, columns=columns)
        self._rejectPrefix = "INSERT INTO {} ({}) VALUES ".format(names.rejected, rowlib.DEAD_LETTER_COLUMNS).encode()
        self._checkpointSQL = (
            "INSERT INTO {} (pipeline, cursor, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (pipeline) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at"
        ).format(names.checkpoints)
        self._selectCheckpointSQL = "SELECT cursor FROM {} WHERE pipeline = %s".format(names.checkpoints)

    def render(self, messages):
        """
        Render each message as a COPY row of its table once; messages that cannot be rendered
        (no id, a NUL character in a text value, a value that is not JSON) are rejected here.

        @return: a L{Rendered}.
        """
        rendered, rejects = [], []
        tableOf, storeMessage, events = rowlib.tableOf, self.storeMessage, rowlib.EVENTS
        for message in messages or ():
            table = tableOf(message)
            try:
                rendered.append((message, table, table.line(message, storeMessage or table is not events)))
            except _RENDER_ERRORS as e:
                rejects.append((message, self.describeError(e)))
        return Rendered(rendered, rejects)

    @inlineCallbacks
    def write(self, cursor, pages, position, careful=False, after=None, patience=60.0):
        """
        The body of a flush transaction: events, dead letters, checkpoint.

        @param pages: L{Rendered} messages, in order.
        @param position: the cursor to store as the pipeline's checkpoint, or C{None}.
        @param careful: isolate rows PostgreSQL refuses (savepoints, halving) instead of failing.
        @param after: the L{Predecessor} of a flush taken before this one and still being
            written on another connection: its outcome is waited for (at most C{patience}
            seconds) before the checkpoint is written.
        @return: a Deferred firing with a L{Written}.
        @raise ROW_ERRORS: (not careful) a row was refused.
        @raise PredecessorFailed: the flush before did not commit.
        """
        byTable = {table: [] for table in rowlib.TABLES}
        rejects = []
        for page in pages:
            for row in page.rows:
                byTable[row[1]].append(row)
            rejects.extend(page.rejects)
        inserted = 0
        tables = [(table, rows) for table, rows in byTable.items() if rows]
        if careful:
            size = self.batchSize
            for table, rows in tables:
                yield cursor.execute(self._createStageSQL[table])
                for start in range(0, len(rows), size):
                    inserted += yield self.insertIsolating(cursor, table, rows[start : start + size], rejects)
        elif tables:
            inserted = yield self.copy(cursor, tables)
        if rejects:
            yield cursor.execute(self.deadLettersSQL(cursor, rejects))
        if after is not None and not after.wait(patience):
            raise PredecessorFailed("the flush before this one did not commit")
        if position is not None:
            yield self.saveCheckpoint(cursor, self.pipeline, position)
        return Written(inserted, rejects)

    @inlineCallbacks
    def copy(self, cursor, tables):
        """
        C{COPY} each table's rows (C{[(table, [(message, table, line)])]}) straight into it
        under a savepoint; if a row is already stored, through the staging tables instead.

        @return: a Deferred firing with the number of rows inserted.
        """
        yield cursor.execute("SAVEPOINT sf_copy")
        try:
            inserted = 0
            for table, rows in tables:
                yield cursor.copy_expert(self._copySQL[table], *_data(rows))
                inserted += cursor.rowcount
            yield cursor.execute("RELEASE SAVEPOINT sf_copy")
            return inserted
        except DUPLICATE:
            yield cursor.execute("ROLLBACK TO SAVEPOINT sf_copy; RELEASE SAVEPOINT sf_copy")
        inserted = 0
        for table, rows in tables:
            inserted += yield self.staged(cursor, table, rows)
        return inserted

    @inlineCallbacks
    def staged(self, cursor, table, rows):
        """
        Write C{rows} through the staging table: only those not stored yet are inserted.

        @return: a Deferred firing with the number of rows inserted.
        """
        yield cursor.execute(self._createStageSQL[table])
        yield cursor.copy_expert(self._stageSQL[table], *_data(rows))
        yield cursor.execute(self._moveSQL[table])
        return cursor.rowcount

    def deadLettersSQL(self, cursor, rejects):
        """
        The C{INSERT} of C{rejects} into the dead-letter table (an id already there is kept).
        """
        pipeline = self.pipeline
        values = b",".join(
            cursor.mogrify("(%s, %s, %s, %s)", rowlib.deadLetterRow(message, error, pipeline))
            for message, error in rejects
        )
        return self._rejectPrefix + values + b" ON CONFLICT (id) DO NOTHING"

    @inlineCallbacks
    def insertIsolating(self, cursor, table, rows, rejects):
        """
        Write C{rows} (of C{table}, through its staging table) under a savepoint; when
        PostgreSQL refuses them, roll back to the savepoint and try each half, down to single
        rows, which are added to C{rejects}.

        @return: a Deferred firing with the number of rows inserted.
        """
        try:
            yield cursor.execute("SAVEPOINT sf_rows")
            yield cursor.copy_expert(self._stageSQL[table], *_data(rows))
            yield cursor.execute(self._moveSQL[table])
            inserted = cursor.rowcount
            yield cursor.execute("RELEASE SAVEPOINT sf_rows")
            return inserted
        except ROW_ERRORS as e:
            yield cursor.execute("ROLLBACK TO SAVEPOINT sf_rows; RELEASE SAVEPOINT sf_rows")
            if len(rows) == 1:
                rejects.append((rows[0][0], self.describeError(e)))
                return 0
        middle = len(rows) // 2
        first = yield self.insertIsolating(cursor, table, rows[:middle], rejects)
        second = yield self.insertIsolating(cursor, table, rows[middle:], rejects)
        return first + second

    def saveCheckpoint(self, cursor, pipeline, position):
        """
        Upsert C{position} as the checkpoint of C{pipeline}; returns the cursor's result.
        """
        return cursor.execute(self._checkpointSQL, (pipeline, position))

    @inlineCallbacks
    def loadCheckpoint(self, cursor, pipeline):
        """
        The checkpoint stored for C{pipeline}, or C{None}.
        """
        yield cursor.execute(self._selectCheckpointSQL, (pipeline,))
        rows = cursor.fetchall()
        return rows[0][0] if rows else None


def _stageName(table):
    return "sf_stage_" + table.kind


def _data(rows):
    """
    The COPY data of C{rows} as C{copy_expert}'s file and read size: all of it in one read, so
    the writer's thread takes the GIL once per COPY, not once per 8 KiB (the reactor thread,
    rendering meanwhile, would make it wait up to the switch interval each time).
    """
    data = b"".join([line for _, _, line in rows])
    return io.BytesIO(data), max(8192, len(data))
