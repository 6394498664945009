"""
The SQL of one flush, apart from any connection: messages rendered as rows, written with
multi-row ``INSERT ... ON CONFLICT (id) DO NOTHING`` statements, the messages PostgreSQL refuses
isolated and stored as dead letters, and the checkpoint upserted, all through the cursor of the
caller's transaction (so the checkpoint commits with the events it covers).

Isolation: when a statement is refused, the flush is written again I{carefully}: each chunk
under a savepoint, a refused chunk rolled back and written again in halves, down to single rows,
which become dead letters.  A batch of M{n} rows with M{k} bad ones costs M{O(k log n)}
statements, and no good row is lost.

Nothing here waits on anything but the cursor's Deferreds, so it is tested with a scripted cursor
(L{stellarflow.postgres.fakes.FakeCursor}) as well as against the real server.
"""

import attr
import psycopg2
from twisted.internet.defer import inlineCallbacks

from stellarflow.postgres import dsn as dsnlib
from stellarflow.postgres import rows as rowlib

#: Errors that belong to the rows of a statement rather than to the connection.
ROW_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)


@attr.s(slots=True, frozen=True)
class Rendered:
    """
    Messages rendered as SQL once, kept for a retry of their flush.

    @ivar rows: C{[(message, SQL bytes of its row)]}.
    @ivar rejects: C{[(message, error text)]} for messages that cannot become a row.
    """

    rows = attr.ib()
    rejects = attr.ib()


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
    @param batchSize: rows per C{INSERT} statement.
    @param storeMessage: fill the C{message} column (the message's JSON, for replays).
    @param describeError: error -> one line of text (the consumer's scrubs secrets).
    """

    def __init__(self, names, pipeline, batchSize=500, storeMessage=True, describeError=dsnlib.errorText):
        self.names = names
        self.pipeline = pipeline
        self.batchSize = batchSize
        self.storeMessage = storeMessage
        self.describeError = describeError
        self._insertPrefix = "INSERT INTO {} ({}) VALUES ".format(names.events, rowlib.COLUMN_LIST).encode()
        self._insertSuffix = b" ON CONFLICT (id) DO NOTHING"
        self._rejectPrefix = "INSERT INTO {} (id, pipeline, error, message) VALUES ".format(names.rejected).encode()
        self._checkpointSQL = (
            "INSERT INTO {} (pipeline, cursor, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (pipeline) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at"
        ).format(names.checkpoints)
        self._selectCheckpointSQL = "SELECT cursor FROM {} WHERE pipeline = %s".format(names.checkpoints)

    def render(self, cursor, messages):
        """
        Render each message as SQL once (C{cursor.mogrify}); messages that cannot be rendered
        (no id, a NUL character in a text value, a value psycopg2 cannot adapt) are rejected here.

        @return: a L{Rendered}.
        """
        rendered, rejects = [], []
        mogrify = cursor.mogrify
        template, toRow, storeMessage = rowlib.ROW_TEMPLATE, rowlib.toRow, self.storeMessage
        for message in messages or ():
            try:
                rendered.append((message, mogrify(template, toRow(message, storeMessage))))
            except (ValueError, TypeError, psycopg2.Error) as e:
                rejects.append((message, self.describeError(e)))
        return Rendered(rendered, rejects)

    @inlineCallbacks
    def write(self, cursor, pages, position, careful=False):
        """
        The body of a flush transaction: events, dead letters, checkpoint.

        @param pages: L{Rendered} messages, in order.
        @param position: the cursor to store as the pipeline's checkpoint, or C{None}.
        @param careful: isolate rows PostgreSQL refuses (savepoints, halving) instead of failing.
        @return: a Deferred firing with a L{Written}.
        @raise ROW_ERRORS: (not careful) a statement was refused.
        """
        rendered, rejects = [], []
        for page in pages:
            rendered.extend(page.rows)
            rejects.extend(page.rejects)
        inserted = 0
        size = self.batchSize
        for start in range(0, len(rendered), size):
            chunk = rendered[start : start + size]
            if careful:
                inserted += yield self.insertIsolating(cursor, chunk, rejects)
            else:
                yield cursor.execute(self.insertSQL(chunk))
                inserted += cursor.rowcount
        if rejects:
            yield cursor.execute(self.deadLettersSQL(cursor, rejects))
        if position is not None:
            yield self.saveCheckpoint(cursor, self.pipeline, position)
        return Written(inserted, rejects)

    def insertSQL(self, chunk):
        """
        The C{INSERT ... ON CONFLICT (id) DO NOTHING} of C{chunk} (C{[(message, row SQL)]}).
        """
        return self._insertPrefix + b",".join(sql for _, sql in chunk) + self._insertSuffix

    def deadLettersSQL(self, cursor, rejects):
        """
        The C{INSERT} of C{rejects} into the dead-letter table (an id already there is kept).
        """
        pipeline = self.pipeline
        values = b",".join(
            cursor.mogrify(rowlib.DEAD_LETTER_TEMPLATE, rowlib.deadLetterRow(message, error, pipeline))
            for message, error in rejects
        )
        return self._rejectPrefix + values + b" ON CONFLICT (id) DO NOTHING"

    @inlineCallbacks
    def insertIsolating(self, cursor, chunk, rejects):
        """
        Insert C{chunk} under a savepoint; when PostgreSQL refuses it, roll back to the savepoint
        and try each half, down to single rows, which are added to C{rejects}.

        @return: a Deferred firing with the number of rows inserted.
        """
        try:
            yield cursor.execute(b"SAVEPOINT sf_rows; " + self.insertSQL(chunk))
            inserted = cursor.rowcount
            yield cursor.execute("RELEASE SAVEPOINT sf_rows")
            return inserted
        except ROW_ERRORS as e:
            yield cursor.execute("ROLLBACK TO SAVEPOINT sf_rows; RELEASE SAVEPOINT sf_rows")
            if len(chunk) == 1:
                rejects.append((chunk[0][0], self.describeError(e)))
                return 0
        middle = len(chunk) // 2
        first = yield self.insertIsolating(cursor, chunk[:middle], rejects)
        second = yield self.insertIsolating(cursor, chunk[middle:], rejects)
        return first + second

    def saveCheckpoint(self, cursor, pipeline, position):
        """
        Upsert C{position} as the checkpoint of C{pipeline}; returns the cursor's Deferred.
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
