"""
SaveToPostgreSQL: every event message as a row of a PostgreSQL table, written in batched,
idempotent transactions that also carry the pipeline's checkpoint.

Delivery:

- ``consume(batch)`` queues the batch; its Deferred fires only after the transaction holding
  all its rows COMMITted.  Queued batches are written together once ``batch_size`` rows are
  waiting or the oldest has waited ``flush_interval`` seconds, one transaction at a time, as
  multi-row ``INSERT ... ON CONFLICT (id) DO NOTHING`` statements of at most ``batch_size``
  rows, followed by an upsert of the newest batch cursor into ``<table>_checkpoints``.  A
  redelivered event is therefore a no-op, and the stored checkpoint never runs ahead of the
  stored events.
- Rows PostgreSQL refuses (NUL characters, numbers out of range, bad timestamps) never block
  the pipeline: the batch is written again with savepoints, halving the failing chunk until
  each bad row is isolated; those rows go to ``<table>_rejected`` with the error, in the same
  transaction, and are logged with their event id.
- When the database is down or the connection dies (txpostgres does not reconnect), the
  connection is rebuilt with backoff and the held batches are written once it is back.  Their
  acknowledgements are withheld meanwhile, which stops the pipeline's source (backpressure);
  the consumer admits at most ``max_pending`` events and parks further batches, unconverted,
  until there is room.  Nothing is dropped.
- ``start()`` never fails for an unreachable database: it logs and keeps retrying.

As the pipeline's checkpoint store, ``load(pipeline)`` waits until the database answers (a
pipeline resuming from the wrong place would duplicate or skip events), and ``save`` is a no-op
for a cursor that was already written with its events.

``eventHistory()`` lends the table, read back in id order on a connection of its own, to the
consumers that replay it (WebSocket clients resuming from an old position).
"""

import collections

import psycopg2
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.logger import Logger
from txpostgres import txpostgres
from zope.interface import implementer, provider

from stellarflow.backoff import Backoff
from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import ICheckpointStore, IComponentFactory, IConsumer, IEventHistorySource, IStatsProvider
from stellarflow.postgres import dsn as dsnlib
from stellarflow.postgres import rows as rowlib
from stellarflow.postgres.schema import TableNames, migrate
from stellarflow.schema import Boolean, Field, Integer, Number, Schema, String, join

DEFAULT_TABLE = "stellar_events"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# Errors that belong to the rows of a statement rather than to the connection.
ROW_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)

# How many recently written cursors are remembered so that save() can skip them.
_REMEMBERED_CURSORS = 4096


class DatabaseUnavailable(Exception):
    """
    There is no working connection to PostgreSQL right now.
    """


def _crossCheck(config, path, problems):
    if config["dsn"] and config["connection_string"]:
        problems.add(join(path, "connection_string"), "give either dsn or connection_string, not both")
    base = config["dsn"] or config["connection_string"]
    if base:
        for key in ("host", "port", "database", "username"):
            if config[key] is not None:
                problems.add(
                    join(path, key),
                    "not allowed together with dsn/connection_string (put it in the connection string)",
                )
    elif config["database"] is None:
        problems.add(join(path, "database"), "missing; expected a database name (or a dsn)")


class _Connection(txpostgres.Connection):
    """
    A txpostgres connection that reports the death of an idle connection (server restart,
    ``pg_terminate_backend``) to C{onLost} instead of raising into the reactor.
    """

    onLost = None

    def doRead(self):
        try:
            txpostgres.Connection.doRead(self)
        except psycopg2.Error as e:
            self.reactor.removeReader(self)
            if self.onLost is not None:
                self.onLost(self, e)


def _closeQuietly(conn):
    raw = conn.pollable()
    if raw is None:
        return
    try:
        conn.close()
    except Exception:
        pass


def _isOpen(conn):
    raw = conn.pollable()
    return raw is not None and not raw.closed


class _Entry:
    """
    One pipeline batch held by the consumer.
    """

    __slots__ = ("batch", "done", "count", "arrived", "rows", "rejects")

    def __init__(self, batch, arrived):
        self.batch = batch
        self.done = Deferred()
        self.count = len(batch.messages or ())
        self.arrived = arrived
        self.rows = None  # [(message, SQL bytes)] once prepared
        self.rejects = None  # [(message, error)] found while preparing


@provider(IComponentFactory)
@implementer(IConsumer, ICheckpointStore, IEventHistorySource, IStatsProvider)
class SaveToPostgreSQL:
    """
    Writes event messages to PostgreSQL and keeps the pipeline's checkpoint there.

    @param reactor: the reactor (timers and the txpostgres connection).
    @param dsn: a libpq connection string (see L{stellarflow.postgres.dsn.buildDSN}).
    @param pipeline: the pipeline name under which the cursor is stored.
    @param backoff: a L{Backoff} for reconnecting (tests pass a fast one).
    @param secrets: extra strings to scrub from logged error text (the DSN's password always is).

    @ivar pending: events accepted and not yet committed.
    @ivar inserted: rows inserted so far; C{duplicates}: rows already present; C{rejected}: rows
        sent to the dead-letter table.
    """

    log = Logger()

    configSchema = Schema(
        {
            "host": Field(String(nonEmpty=True), None, 'server host (default "localhost" without dsn)'),
            "port": Field(Integer(1, 65535), None, "server port (default 5432 without dsn)"),
            "database": Field(String(nonEmpty=True), None, "database name (required without dsn)"),
            "username": Field(String(nonEmpty=True), None, "role to connect as"),
            "password": Field(String(secret=True), "", "password; never logged"),
            "sslmode": Field(String(choices=SSLMODES), None, "libpq sslmode"),
            "dsn": Field(
                String(secret=True, validator=dsnlib.dsnProblem),
                "",
                "a libpq connection string or postgresql:// URI instead of host/port/database/username",
            ),
            "connection_string": Field(String(secret=True, validator=dsnlib.dsnProblem), "", "alias of dsn"),
            "schema": Field(
                String(validator=dsnlib.identifierProblem),
                None,
                "schema holding the tables (created if missing); default: the search_path",
            ),
            "table": Field(String(validator=dsnlib.tableNameProblem), DEFAULT_TABLE, "events table name"),
            "batch_size": Field(Integer(1, 10000), 500, "rows per INSERT and per flush"),
            "flush_interval": Field(
                Number(0, 60), 0.2, "seconds a queued batch waits for more rows before it is written"
            ),
            "max_pending": Field(Integer(1), 100000, "events held in memory before acks are withheld"),
            "connect_timeout": Field(Number(0, exclusiveMinimum=True), 10.0, "seconds to connect"),
            "query_timeout": Field(
                Number(0, exclusiveMinimum=True),
                60.0,
                "seconds a transaction may take before the connection is presumed dead",
            ),
            "store_message": Field(
                Boolean(),
                True,
                "also store each message as JSON text, so WebSocket replays are byte-exact",
            ),
        },
        check=_crossCheck,
    )

    @classmethod
    def fromConfig(cls, config, context):
        return cls(
            context.reactor,
            dsnlib.buildDSN(config, "stellarflow:" + context.pipeline),
            context.pipeline,
            table=config["table"],
            schema=config["schema"],
            batch_size=config["batch_size"],
            flush_interval=config["flush_interval"],
            max_pending=config["max_pending"],
            connect_timeout=config["connect_timeout"],
            query_timeout=config["query_timeout"],
            store_message=config["store_message"],
            secrets=[config["password"]] if config["password"] else (),
        )

    def __init__(
        self,
        reactor,
        dsn,
        pipeline,
        table=DEFAULT_TABLE,
        schema=None,
        batch_size=500,
        flush_interval=0.2,
        max_pending=100000,
        connect_timeout=10.0,
        query_timeout=60.0,
        store_message=True,
        backoff=None,
        secrets=(),
    ):
        self.reactor = reactor
        self.dsn = dsn
        self.pipeline = pipeline
        self.names = TableNames(table, schema)
        self.batchSize = batch_size
        self.flushInterval = flush_interval
        self.maxPending = max_pending
        self.connectTimeout = connect_timeout
        self.queryTimeout = query_timeout
        self.storeMessage = store_message
        self.backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self.where = dsnlib.describe(dsn)
        self._secrets = tuple(s for s in tuple(secrets) + dsnlib.secretsOf(dsn) if s)

        self._insertPrefix = "INSERT INTO {} ({}) VALUES ".format(self.names.events, rowlib.COLUMN_LIST).encode()
        self._insertSuffix = b" ON CONFLICT (id) DO NOTHING"
        self._rejectPrefix = "INSERT INTO {} (id, pipeline, error, message) VALUES ".format(
            self.names.rejected
        ).encode()
        self._checkpointSQL = (
            "INSERT INTO {} (pipeline, cursor, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (pipeline) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at"
        ).format(self.names.checkpoints)

        self.pending = 0
        self.transactions = 0
        self.connectRetries = 0
        self.inserted = 0
        self.duplicates = 0
        self.rejected = 0
        self._queue = collections.deque()
        self._parked = collections.deque()
        self._flushing = None
        self._flushTimer = None
        self._flushWaiters = []
        self._written = collections.OrderedDict()

        self._conn = None
        self._connecting = None
        self._reconnectCall = None
        self._attemptWaiters = []
        self.connectFailures = 0
        self._started = False
        self._stopping = False
        self._parkedWarned = False
        self._history = None
        self._historySecrets = tuple(secrets)

    def __repr__(self):
        return "<SaveToPostgreSQL {} table {}>".format(self.where, self.names.events)

    def eventHistory(self):
        """
        This pipeline's events read back in id order (an L{IEventHistory}), for replaying to
        WebSocket clients that resume; one instance, closed when the consumer stops.
        """
        if self._history is None:
            from stellarflow.postgres.history import PostgresHistory

            self._history = PostgresHistory(
                self.reactor,
                self.dsn,
                self.names,
                self.pipeline,
                connect_timeout=self.connectTimeout,
                query_timeout=self.queryTimeout,
                secrets=self._historySecrets,
            )
        return self._history

    @property
    def ready(self):
        """
        Whether a connection is open and the schema is up to date.
        """
        return self._conn is not None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        """
        Begin connecting in the background; never fails for an unreachable database.
        """
        self._started = True
        self.log.info(
            "PostgreSQL consumer for pipeline {pipeline} connecting to {where}, table {table}",
            pipeline=self.pipeline,
            where=self.where,
            table=self.names.events,
        )
        self._connect()
        return succeed(None)

    @inlineCallbacks
    def stop(self):
        """
        Write what was accepted while the database answers, then close.
        """
        self._stopping = True
        self._cancelTimers()
        while True:
            self._admitParked(force=True)
            if self._flushing is None and self.ready and self._queue:
                self._flush()
            if self._flushing is None:
                break
            waiter = Deferred()
            self._flushWaiters.append(waiter)
            yield waiter
        if self.pending or self._parked:
            self.log.warn(
                "PostgreSQL consumer for pipeline {pipeline} stopping with {count} event(s) not "
                "written; they will be fetched again from the checkpoint",
                pipeline=self.pipeline,
                count=self.pending + sum(e.count for e in self._parked),
            )
        conn, self._conn = self._conn, None
        if conn is not None:
            _closeQuietly(conn)
        if self._connecting is not None:
            _closeQuietly(self._connecting)
        if self._history is not None:
            self._history.close()

    def _cancelTimers(self):
        for call in (self._flushTimer, self._reconnectCall):
            if call is not None and call.active():
                call.cancel()
        self._flushTimer = self._reconnectCall = None

    # -- connection ----------------------------------------------------------

    def _text(self, error):
        """
        An error as one line of text for logs, with secrets removed.
        """
        value = getattr(error, "value", error)
        diag = getattr(value, "diag", None)
        primary = getattr(diag, "message_primary", None)
        if primary:
            text = primary + (" ({})".format(diag.message_detail) if diag.message_detail else "")
        else:
            text = str(value).strip() or type(value).__name__
        text = " ".join(line.strip() for line in text.splitlines())
        return dsnlib.scrub(text, self._secrets)

    def _connect(self):
        self._reconnectCall = None
        if self._stopping or self._connecting is not None or self.ready:
            return
        conn = self._connecting = _Connection(reactor=self.reactor)
        conn.onLost = self._idleLost
        timer = self.reactor.callLater(self.connectTimeout, self._connectTimedOut, conn)
        d = conn.connect(self.dsn)

        def connected(_):
            if timer.active():
                timer.cancel()
            return conn.lock.run(self._transaction, conn, migrate, self.names)

        d.addCallback(connected)
        d.addCallbacks(self._connected, self._connectFailed, callbackArgs=(conn,), errbackArgs=(conn, timer))

    def _connectTimedOut(self, conn):
        self.log.warn(
            "PostgreSQL at {where} did not answer within {timeout}s",
            where=self.where,
            timeout=self.connectTimeout,
        )
        _closeQuietly(conn)

    def _connected(self, applied, conn):
        self._connecting = None
        if self._stopping:
            _closeQuietly(conn)
            return
        self._conn = conn
        if applied:
            self.log.info(
                "Applied schema migration(s) {versions} to {table}",
                versions=", ".join(str(v) for v in applied),
                table=self.names.events,
            )
        self.log.info(
            "Connected to PostgreSQL at {where}; {pending} event(s) waiting to be written",
            where=self.where,
            pending=self.pending,
        )
        self.connectFailures = 0
        self._attemptEnded()
        self._schedule()

    def _connectFailed(self, failure, conn, timer):
        self._connecting = None
        if timer.active():
            timer.cancel()
        _closeQuietly(conn)
        if self._stopping:
            return
        self.connectFailures += 1
        self.connectRetries += 1
        delay = self.backoff.next()
        self._reconnectCall = self.reactor.callLater(delay, self._connect)
        self.log.warn(
            "Cannot use PostgreSQL at {where}: {error}; retrying in {delay:.1f}s "
            "({pending} event(s) waiting, acknowledgements withheld)",
            where=self.where,
            error=self._text(failure),
            delay=delay,
            pending=self.pending,
        )
        self._attemptEnded()

    def _idleLost(self, conn, error):
        self._lost(conn, error)

    def _lost(self, conn, error):
        """
        C{conn} is unusable: close it and reconnect with backoff (unless stopping).
        """
        if conn is not self._conn:
            return
        self._conn = None
        _closeQuietly(conn)
        if self._stopping:
            return
        delay = self.backoff.next()
        self.log.warn(
            "Lost the PostgreSQL connection to {where}: {error}; reconnecting in {delay:.1f}s "
            "({pending} event(s) held)",
            where=self.where,
            error=self._text(error),
            delay=delay,
            pending=self.pending,
        )
        self._reconnectCall = self.reactor.callLater(delay, self._connect)

    def _nextAttempt(self):
        """
        A Deferred firing when the next (or current) connection attempt has ended either way.
        """
        d = Deferred()
        self._attemptWaiters.append(d)
        return d

    def _attemptEnded(self):
        waiters, self._attemptWaiters = self._attemptWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    @inlineCallbacks
    def _transaction(self, conn, work, *args):
        """
        Run C{work(cursor, *args)} in a transaction on C{conn} (call it under C{conn.lock}).

        Unlike txpostgres' C{runInteraction}, a rollback on a dead connection is not logged as
        an unhandled error, and the whole transaction is bounded by C{query_timeout}: past it
        the connection is closed, which fails the transaction.
        """
        timer = self.reactor.callLater(self.queryTimeout, self._queryTimedOut, conn)
        try:
            cursor = conn.cursor()
            yield cursor.execute("BEGIN")
            result = yield work(cursor, *args)
            yield cursor.execute("COMMIT")
            return result
        except Exception:
            if _isOpen(conn):
                try:
                    yield conn.cursor().execute("ROLLBACK")
                except Exception:
                    _closeQuietly(conn)
            raise
        finally:
            if timer.active():
                timer.cancel()

    def _queryTimedOut(self, conn):
        self.log.warn(
            "PostgreSQL at {where} did not finish a transaction within {timeout}s; closing the connection",
            where=self.where,
            timeout=self.queryTimeout,
        )
        _closeQuietly(conn)

    def _run(self, work, *args):
        """
        Run C{work} in a transaction on the current connection; a failure other than a row
        error marks the connection lost (so it is rebuilt) and is passed on.
        """
        conn = self._conn
        if conn is None:
            return fail(DatabaseUnavailable("not connected to PostgreSQL at {}".format(self.where)))
        d = conn.lock.run(self._transaction, conn, work, *args)

        def failed(f):
            if not f.check(*ROW_ERRORS):
                self._lost(conn, f)
            return f

        return d.addErrback(failed)

    # -- consuming -------------------------------------------------------------

    def consume(self, batch):
        if self._stopping:
            return fail(DatabaseUnavailable("the PostgreSQL consumer is stopping"))
        entry = _Entry(batch, self.reactor.seconds())
        if self._parked or (self.pending and self.pending + entry.count > self.maxPending):
            if not self._parkedWarned:
                self._parkedWarned = True
                self.log.warn(
                    "PostgreSQL consumer for pipeline {pipeline} holds {pending} event(s) "
                    "(max_pending {maximum}); withholding acknowledgements until they are written",
                    pipeline=self.pipeline,
                    pending=self.pending,
                    maximum=self.maxPending,
                )
            self._parked.append(entry)
        else:
            self._admit(entry)
        return entry.done

    @property
    def parked(self):
        """
        How many batches wait for room under C{max_pending}.
        """
        return len(self._parked)

    def _admit(self, entry):
        entry.arrived = self.reactor.seconds()
        self._queue.append(entry)
        self.pending += entry.count
        self._schedule()

    def _admitParked(self, force=False):
        while self._parked and (force or not self.pending or self.pending + self._parked[0].count <= self.maxPending):
            self._admit(self._parked.popleft())
        if not self._parked:
            self._parkedWarned = False

    def _schedule(self):
        """
        Start a flush if one is due, or arm the timer for when it will be.
        """
        if self._flushing is not None or not self.ready or not self._queue:
            return
        waited = self.reactor.seconds() - self._queue[0].arrived
        queued = sum(e.count for e in self._queue)
        if queued >= self.batchSize or waited >= self.flushInterval or self._stopping:
            self._flush()
        elif self._flushTimer is None or not self._flushTimer.active():
            self._flushTimer = self.reactor.callLater(self.flushInterval - waited, self._flushTimerFired)

    def _flushTimerFired(self):
        self._flushTimer = None
        self._schedule()

    def _flush(self):
        if self._flushTimer is not None and self._flushTimer.active():
            self._flushTimer.cancel()
        self._flushTimer = None
        entries = []
        rows = 0
        while self._queue and (not entries or rows < self.batchSize):
            entry = self._queue.popleft()
            entries.append(entry)
            rows += entry.count
        self._flushing = entries
        d = self._write(entries)
        d.addCallbacks(self._flushed, self._flushFailed, callbackArgs=(entries,), errbackArgs=(entries,))

    @inlineCallbacks
    def _write(self, entries):
        try:
            result = yield self._run(self._writeRows, entries, False)
        except ROW_ERRORS as e:
            self.log.info(
                "PostgreSQL refused a batch of {count} event(s) ({error}); isolating the bad rows",
                count=sum(e_.count for e_ in entries),
                error=self._text(e),
            )
            result = yield self._run(self._writeRows, entries, True)
        return result

    def _prepare(self, entry, cursor):
        """
        Render each message of C{entry} as SQL once; messages that cannot be rendered are
        rejected here (a NUL character in a text value, a value psycopg2 cannot adapt).
        """
        rendered, rejects = [], []
        mogrify = cursor.mogrify
        for message in entry.batch.messages or ():
            try:
                rendered.append((message, mogrify(rowlib.ROW_TEMPLATE, rowlib.toRow(message, self.storeMessage))))
            except (ValueError, TypeError, psycopg2.Error) as e:
                rejects.append((message, self._text(e)))
        entry.rows, entry.rejects = rendered, rejects

    @inlineCallbacks
    def _writeRows(self, cursor, entries, careful):
        """
        The body of a flush transaction: events, dead letters, checkpoint.

        @param careful: isolate rows PostgreSQL refuses (savepoints, halving) instead of failing.
        @return: C{(inserted, rejects)}.
        """
        rendered, rejects = [], []
        for entry in entries:
            if entry.rows is None:
                self._prepare(entry, cursor)
            rendered.extend(entry.rows)
            rejects.extend(entry.rejects)
        inserted = 0
        for start in range(0, len(rendered), self.batchSize):
            chunk = rendered[start : start + self.batchSize]
            if careful:
                inserted += yield self._insertIsolating(cursor, chunk, rejects)
            else:
                yield cursor.execute(self._insertSQL(chunk))
                inserted += cursor.rowcount
        if rejects:
            pipeline = self.pipeline
            values = b",".join(
                cursor.mogrify(rowlib.DEAD_LETTER_TEMPLATE, rowlib.deadLetterRow(m, error, pipeline))
                for m, error in rejects
            )
            yield cursor.execute(self._rejectPrefix + values + b" ON CONFLICT (id) DO NOTHING")
        position = None
        for entry in entries:
            if entry.batch.cursor is not None:
                position = entry.batch.cursor
        if position is not None:
            yield cursor.execute(self._checkpointSQL, (self.pipeline, position))
        return inserted, rejects

    def _insertSQL(self, chunk):
        return self._insertPrefix + b",".join(sql for _, sql in chunk) + self._insertSuffix

    @inlineCallbacks
    def _insertIsolating(self, cursor, chunk, rejects):
        """
        Insert C{chunk} under a savepoint; when PostgreSQL refuses it, roll back to the savepoint
        and try each half, down to single rows, which are added to C{rejects}.
        """
        try:
            yield cursor.execute(b"SAVEPOINT sf_rows; " + self._insertSQL(chunk))
            inserted = cursor.rowcount
            yield cursor.execute("RELEASE SAVEPOINT sf_rows")
            return inserted
        except ROW_ERRORS as e:
            yield cursor.execute("ROLLBACK TO SAVEPOINT sf_rows; RELEASE SAVEPOINT sf_rows")
            if len(chunk) == 1:
                rejects.append((chunk[0][0], self._text(e)))
                return 0
        middle = len(chunk) // 2
        first = yield self._insertIsolating(cursor, chunk[:middle], rejects)
        second = yield self._insertIsolating(cursor, chunk[middle:], rejects)
        return first + second

    def _flushed(self, result, entries):
        inserted, rejects = result
        self._flushing = None
        self.backoff.reset()
        count = sum(e.count for e in entries)
        self.pending -= count
        self.transactions += 1
        self.inserted += inserted
        self.rejected += len(rejects)
        self.duplicates += count - inserted - len(rejects)
        for message, error in rejects:
            self.log.warn(
                "PostgreSQL refused event {id}: {error}; stored in {table}",
                id=rowlib.escaped(message.get("id") if isinstance(message, dict) else None),
                error=error,
                table=self.names.rejected,
            )
        for entry in entries:
            entry.rows = entry.rejects = None
            if entry.batch.cursor is not None:
                self._remember(entry.batch.cursor)
        self._admitParked()
        for entry in entries:
            entry.done.callback(None)
        self._flushEnded()

    def _flushFailed(self, failure, entries):
        self._flushing = None
        self._queue.extendleft(reversed(entries))
        if self._conn is not None:
            # Not a connection problem (_run already handled those): rebuild the connection
            # anyway, so a persistent failure is retried with backoff rather than in a loop.
            self._lost(self._conn, failure)
        self._flushEnded()

    def _flushEnded(self):
        waiters, self._flushWaiters = self._flushWaiters, []
        for waiter in waiters:
            waiter.callback(None)
        if not self._stopping:
            self._schedule()

    def _remember(self, cursor):
        self._written[cursor] = True
        self._written.move_to_end(cursor)
        while len(self._written) > _REMEMBERED_CURSORS:
            self._written.popitem(last=False)

    # -- checkpoints -----------------------------------------------------------

    def stats(self):
        """
        Counters for /metrics (names as in docs/operations.md).
        """
        return {
            "batches_total": self.transactions,
            "inserted_total": self.inserted,
            "duplicates_total": self.duplicates,
            "rejected_total": self.rejected,
            "connect_retries_total": self.connectRetries,
            "pending_events": self.pending + sum(e.count for e in self._parked),
            "connected": self.ready,
        }

    @inlineCallbacks
    def load(self, pipeline):
        """
        The cursor stored for C{pipeline}, or C{None}; waits (retrying with backoff) while the
        database is unreachable, so the pipeline starts only once its position is known.
        """
        warned = False
        if not self._started:
            self._connect()
        while True:
            while not self.ready:
                if self.connectFailures and not warned:
                    warned = True
                    self.log.warn(
                        "Pipeline {pipeline} waits for PostgreSQL at {where}, which holds its "
                        "checkpoint; its source starts once the database answers",
                        pipeline=pipeline,
                        where=self.where,
                    )
                yield self._nextAttempt()
            try:
                rows = yield self._run(self._selectCheckpoint, pipeline)
            except Exception as e:
                self.log.warn(
                    "Could not read the checkpoint of pipeline {pipeline}: {error}; retrying",
                    pipeline=pipeline,
                    error=self._text(e),
                )
                continue
            if warned:
                self.log.info("PostgreSQL answered; pipeline {pipeline} can start", pipeline=pipeline)
            return rows[0][0] if rows else None

    @inlineCallbacks
    def _selectCheckpoint(self, cursor, pipeline):
        yield cursor.execute("SELECT cursor FROM {} WHERE pipeline = %s".format(self.names.checkpoints), (pipeline,))
        return cursor.fetchall()

    def save(self, pipeline, checkpoint):
        """
        Record C{checkpoint}'s cursor; a no-op when it was written together with its events.
        Fails at once (the pipeline logs it) when the database is unreachable: the cursor is
        also written by the next flush.
        """
        cursor = Checkpoint.of(checkpoint).cursor
        if pipeline == self.pipeline and cursor in self._written:
            return succeed(None)
        return self._run(self._upsertCheckpoint, pipeline, cursor)

    def _upsertCheckpoint(self, cursor, pipeline, position):
        return cursor.execute(self._checkpointSQL, (pipeline, position))
