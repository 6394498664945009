"""
In-memory stand-ins for what the PostgreSQL consumer runs on, for unit tests on a
C{twisted.internet.task.Clock}: a L{FakeKeeper} (an L{IConnectionKeeper} whose connection and
transactions the test drives) and a L{FakeCursor} over a L{FakeDatabase} that understands the
statements of L{stellarflow.postgres.writer.EventWriter}: ``COPY`` into the message tables
(refused whole when a row is already stored) and into the staging tables, the staged
``INSERT ... ON CONFLICT (id) DO NOTHING``, savepoints, dead letters and checkpoints.

A transaction's changes reach the L{FakeDatabase} only when it commits, and a statement the
database refuses aborts the transaction (as PostgreSQL does) until a rollback to a savepoint,
so a writer or consumer that commits too early, splits a flush over two transactions or loses
rows while isolating bad ones is caught without a server.
"""

import re

import attr
import psycopg2
import psycopg2.errors
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from zope.interface import implementer

from stellarflow.backoff import Backoff
from stellarflow.interfaces import IConnectionKeeper
from stellarflow.postgres.keeper import DatabaseUnavailable

_TOKEN = re.compile(rb"\x1e(\d+)\x1f")
_ESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
_ESCAPE = re.compile(r"\\[\\tnr]")


def _uncopy(text):
    """
    One value of a COPY text line: C{None} for ``\\N``, else the text unescaped.
    """
    if text == "\\N":
        return None
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text)


class FakeDatabase:
    """
    Committed state: C{rows} (id -> row tuple, of any message table: the row as COPY sent it,
    text or C{None} per column), C{deadLetters} (id -> (pipeline, error, message text)),
    C{checkpoints} (pipeline -> cursor).

    @param refuse: C{refuse(row)} returns why the database refuses an events row (a
        C{psycopg2.DataError} is raised for the statement), or C{None}.
    """

    def __init__(self, refuse=None):
        self.refuse = refuse or (lambda row: None)
        self.rows = {}
        self.deadLetters = {}
        self.checkpoints = {}
        self.rendered = []  # what mogrify produced, by token number

    def ids(self):
        return sorted(self.rows)


class FakeCursor:
    """
    A cursor of one transaction on a L{FakeDatabase}; C{execute} returns a fired Deferred.

    @ivar statements: every statement executed, as C{(sql, params)}.
    """

    def __init__(self, database):
        self.database = database
        self.statements = []
        self.rowcount = -1
        self.aborted = False
        self._rows = {}
        self._deadLetters = {}
        self._checkpoints = {}
        self._stage = []
        self._savepoints = []
        self._results = []

    def mogrify(self, template, params):
        for value in params:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        self.database.rendered.append(tuple(params))
        return b"\x1e%d\x1f" % (len(self.database.rendered) - 1)

    def fetchall(self):
        return self._results

    def copy_expert(self, sql, file, size=8192):
        """
        C{COPY <table> (...) FROM STDIN}: into a message table (refused whole, like PostgreSQL,
        when a row is refused or already stored) or into a staging table.
        """
        try:
            self._copy(sql if isinstance(sql, bytes) else sql.encode(), file.read())
        except psycopg2.Error as e:
            return fail(e)
        return succeed(None)

    def _copy(self, sql, data):
        self.statements.append((sql, data))
        if self.aborted:
            raise psycopg2.InternalError("current transaction is aborted")
        rows = [tuple(_uncopy(v) for v in line.split("\t")) for line in data.decode("utf-8").splitlines()]
        for row in rows:
            reason = self.database.refuse(row)
            if reason is not None:
                self.aborted = True
                raise psycopg2.DataError(reason)
        if b"pg_temp." in sql:
            self._stage.extend(rows)
            self.rowcount = len(rows)
            return
        for row in rows:
            if row[0] in self._rows or row[0] in self.database.rows:
                self.aborted = True
                raise psycopg2.errors.UniqueViolation("duplicate key value violates unique constraint")
            self._rows[row[0]] = row
        self.rowcount = len(rows)

    def execute(self, sql, params=None):
        try:
            self._execute(sql if isinstance(sql, bytes) else sql.encode(), params)
        except psycopg2.Error as e:
            return fail(e)
        return succeed(None)

    def _execute(self, sql, params):
        self.statements.append((sql, params))
        for statement in sql.split(b"; "):
            if self.aborted and not statement.startswith(b"ROLLBACK TO SAVEPOINT"):
                raise psycopg2.InternalError("current transaction is aborted")
            self._one(statement, params)

    def _one(self, sql, params):
        rendered = [self.database.rendered[int(n)] for n in _TOKEN.findall(sql)]
        if sql.startswith(b"SAVEPOINT"):
            self._savepoints.append(
                (dict(self._rows), dict(self._deadLetters), dict(self._checkpoints), list(self._stage))
            )
        elif sql.startswith(b"RELEASE SAVEPOINT"):
            self._savepoints.pop()
        elif sql.startswith(b"ROLLBACK TO SAVEPOINT"):
            rows, deadLetters, checkpoints, stage = self._savepoints[-1]
            self._rows, self._deadLetters, self._checkpoints = dict(rows), dict(deadLetters), dict(checkpoints)
            self._stage = list(stage)
            self.aborted = False
        elif sql.startswith(b"INSERT INTO") and b"(id, pipeline, error, message)" in sql:
            for key, pipeline, error, text in rendered:
                if key not in self.database.deadLetters:
                    self._deadLetters.setdefault(key, (pipeline, error, text))
        elif sql.startswith(b"INSERT INTO") and b"_checkpoints" in sql:
            self._checkpoints[params[0]] = params[1]
        elif sql.startswith(b"WITH moved AS (DELETE FROM pg_temp."):
            staged, self._stage = self._stage, []
            self._insert(staged)
        elif sql.startswith(b"CREATE TEMPORARY TABLE"):
            pass
        elif sql.startswith(b"SELECT cursor FROM"):
            position = self._checkpoints.get(params[0], self.database.checkpoints.get(params[0]))
            self._results = [(position,)] if position is not None else []

    def _insert(self, rows):
        inserted = 0
        for row in rows:
            if row[0] not in self._rows and row[0] not in self.database.rows:
                self._rows[row[0]] = row
                inserted += 1
        self.rowcount = inserted

    def commit(self):
        """
        Make this transaction's changes visible in the database.
        """
        if self.aborted:
            raise psycopg2.InternalError("cannot commit an aborted transaction")
        self.database.rows.update(self._rows)
        self.database.deadLetters.update(self._deadLetters)
        self.database.checkpoints.update(self._checkpoints)


@attr.s(slots=True, eq=False)
class _Transaction:
    """
    One piece of work given to the L{FakeKeeper}; C{finished} once the work returned (it then
    waits for L{FakeKeeper.commit}).
    """

    work = attr.ib()
    args = attr.ib()
    done = attr.ib(factory=Deferred)
    cursor = attr.ib(default=None)
    result = attr.ib(default=None)
    finished = attr.ib(default=False)


@implementer(IConnectionKeeper)
class FakeKeeper:
    """
    An L{IConnectionKeeper} without a server.  The test makes the connection ready
    (L{connect}), fail (L{refuse}) or die (L{lose}); each piece of work runs at once on a
    L{FakeCursor}, one at a time, and its Deferred fires when the test commits it (L{commit};
    or at once with C{autoCommit}).  Work that fails is rolled back; unless its error is in
    C{passOn} it costs the connection, as with the real keeper.

    @ivar transactions: every transaction started (C{.cursor.statements}, C{.work}, C{.args}).
    @ivar committed: the transactions committed, in order.
    """

    def __init__(self, database=None, passOn=(), autoCommit=False, backoff=None):
        self.database = database if database is not None else FakeDatabase()
        self.passOn = tuple(passOn)
        self.autoCommit = autoCommit
        self.backoff = backoff or Backoff(initial=1.0, maximum=4.0, jitter=False)
        self.ready = False
        self.started = False
        self.stopped = False
        self.failures = 0
        self.retries = 0
        self.transactions = []
        self.committed = []
        self._queue = []
        self._running = None
        self._waiters = []
        self._listeners = []

    # -- IConnectionKeeper -----------------------------------------------------------------

    def addListener(self, listener):
        self._listeners.append(listener)

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True
        self.ready = False
        self._failAll(DatabaseUnavailable("stopped"))
        waiters, self._waiters = self._waiters, []
        for d, _ in waiters:
            d.errback(DatabaseUnavailable("stopped"))
        return succeed(None)

    def whenReady(self, failAfterFailures=None):
        if self.ready:
            return succeed(None)
        if self.stopped:
            return fail(DatabaseUnavailable("stopped"))
        d = Deferred()
        self._waiters.append([d, failAfterFailures])
        return d

    def run(self, work, *args):
        if not self.ready:
            return fail(DatabaseUnavailable("not connected"))
        transaction = _Transaction(work, args)
        self._queue.append(transaction)
        self._next()
        return transaction.done

    def reconnect(self, reason):
        if self.ready:
            self.lose(str(reason))

    # -- what the test drives --------------------------------------------------------------

    @property
    def running(self):
        """
        The transaction whose work has run and which waits for L{commit}, or C{None}.
        """
        return self._running

    def connect(self, prepared=None):
        """
        A connection is ready.
        """
        self.ready = True
        self.failures = 0
        waiters, self._waiters = self._waiters, []
        for d, _ in waiters:
            d.callback(None)
        for listener in list(self._listeners):
            listener.connectionReady(prepared)

    def refuse(self, error="connection refused"):
        """
        A connection attempt failed.
        """
        self.failures += 1
        self.retries += 1
        delay = self.backoff.next() if self.started else None
        for listener in list(self._listeners):
            listener.connectionFailed(error, delay)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            d, left = waiter
            left = None if left is None else left - 1
            if left is not None and left <= 0:
                d.errback(DatabaseUnavailable(error))
            else:
                self._waiters.append([d, left])

    def lose(self, error="server closed the connection unexpectedly"):
        """
        The connection died: work in flight or waiting fails, listeners are told.
        """
        if not self.ready:
            return
        self.ready = False
        delay = self.backoff.next() if self.started else None
        for listener in list(self._listeners):
            listener.connectionLost(error, delay)
        self._failAll(psycopg2.OperationalError(error))

    def commit(self):
        """
        Commit the transaction waiting for it; its Deferred fires with the work's result.
        """
        transaction = self._running
        if transaction is None or not transaction.finished:
            raise AssertionError("no transaction waits for a commit")
        transaction.cursor.commit()
        self._running = None
        self.committed.append(transaction)
        self.backoff.reset()
        transaction.done.callback(transaction.result)
        self._next()

    def failRunning(self, error):
        """
        The transaction in flight fails with C{error} (e.g. a timeout) and is rolled back.
        """
        transaction, self._running = self._running, None
        self._finish(transaction, error)

    # -- inside ----------------------------------------------------------------------------

    def _next(self):
        if self._running is not None or not self._queue:
            return
        transaction = self._running = self._queue.pop(0)
        transaction.cursor = FakeCursor(self.database)
        self.transactions.append(transaction)
        d = maybeDeferred(transaction.work, transaction.cursor, *transaction.args)
        d.addCallbacks(self._workDone, self._workFailed, callbackArgs=(transaction,), errbackArgs=(transaction,))

    def _workDone(self, result, transaction):
        transaction.result = result
        transaction.finished = True
        if self.autoCommit and self._running is transaction:
            self.commit()

    def _workFailed(self, failure, transaction):
        if self._running is transaction:
            self._running = None
            self._finish(transaction, failure.value)

    def _finish(self, transaction, error):
        if not isinstance(error, self.passOn):
            self.lose(str(error))
        if not transaction.done.called:
            transaction.done.errback(error)
        self._next()

    def _failAll(self, error):
        transactions = ([self._running] if self._running is not None else []) + self._queue
        self._running, self._queue = None, []
        for transaction in transactions:
            if not transaction.done.called:
                transaction.done.errback(error)
