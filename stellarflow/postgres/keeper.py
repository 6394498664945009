"""
One PostgreSQL connection, kept: the L{ConnectionKeeper} connects, prepares the connection (the
consumer migrates the schema), runs work on it one piece at a time under a timeout, and, once
started, rebuilds it with backoff whenever an attempt fails or the connection dies, in the
spirit of Twisted's C{ClientService}.  Listeners hear when a connection became ready, when an
attempt failed and when a connection was lost.  On a new connection the C{whenReady} waiters
resume first (a checkpoint read goes before the writes the listeners then start); on a failed
attempt the listeners hear first (their log line comes before the waiters' reaction).

The writer keeps one (transactions: ``BEGIN`` ... ``COMMIT``); the history reader keeps its own
(single statements, connected on demand and never retried in the background), so a replay
never waits behind writes.  Connection details of txpostgres live in L{stellarflow.compat.txpostgres}.

Every error text a keeper passes on names the server as ``user@host:port/db`` and is scrubbed
of the password.
"""

from twisted.internet.defer import Deferred, DeferredLock, fail, inlineCallbacks, succeed
from twisted.logger import Logger
from zope.interface import implementer

from stellarflow.backoff import Backoff
from stellarflow.compat.txpostgres import Connection, closeQuietly, isOpen
from stellarflow.interfaces import IConnectionKeeper
from stellarflow.postgres import dsn as dsnlib
from stellarflow.postgres.threaded import ThreadedConnection


class DatabaseUnavailable(Exception):
    """
    There is no working connection to PostgreSQL right now (or the keeper was stopped).
    """


@implementer(IConnectionKeeper)
class ConnectionKeeper:
    """
    Keeps one connection to the server of C{dsn} (see L{IConnectionKeeper}).

    @param reactor: the reactor (timers, and the txpostgres connection's file descriptor).
    @param dsn: a libpq connection string.
    @param prepare: C{prepare(cursor)} run in a transaction on every new connection before it
        is ready (its result goes to L{IConnectionListener.connectionReady}), or C{None}.
    @param transactional: run work in a transaction (C{BEGIN}/C{COMMIT}, C{ROLLBACK} on
        failure); otherwise as single statements (the connection is in autocommit).
    @param connectTimeout: seconds an attempt may take to connect.
    @param queryTimeout: seconds a piece of work (or the preparation) may take; past it the
        connection is presumed dead and closed, which fails the work.
    @param backoff: a L{Backoff} between attempts while started.
    @param secrets: strings to scrub from error text (the DSN's password always is).
    @param passOn: exception classes that fail a piece of work without costing the connection
        (the consumer's row errors: the transaction was rolled back, the connection is fine).
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        dsn,
        prepare=None,
        transactional=True,
        connectTimeout=10.0,
        queryTimeout=60.0,
        backoff=None,
        secrets=(),
        passOn=(),
    ):
        self.reactor = reactor
        self.dsn = dsn
        self.prepare = prepare
        self.transactional = transactional
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        # Reconnecting costs the server one connection attempt: a few seconds at most, so that
        # storing resumes within seconds of the database coming back (docs/pipeline.md).
        self.backoff = backoff or Backoff(initial=0.5, maximum=5.0)
        self.passOn = tuple(passOn)
        self.where = dsnlib.describe(dsn)
        self.secrets = tuple(s for s in tuple(secrets) + dsnlib.secretsOf(dsn) if s)
        self.failures = 0
        self.retries = 0
        self._conn = None
        self._lock = None
        self._attempt = None
        self._retryCall = None
        self._keeping = False
        self._stopped = False
        self._waiters = []  # [Deferred, failures left or None]
        self._listeners = []

    def __repr__(self):
        return "<ConnectionKeeper {}>".format(self.where)

    @property
    def ready(self):
        return self._conn is not None

    def errorText(self, error):
        """
        C{error} as one line without secrets.
        """
        return dsnlib.errorText(error, self.secrets)

    def addListener(self, listener):
        self._listeners.append(listener)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self):
        if self._keeping or self._stopped:
            return
        self._keeping = True
        self._connect()

    def stop(self):
        self._keeping = False
        self._stopped = True
        if self._retryCall is not None and self._retryCall.active():
            self._retryCall.cancel()
        self._retryCall = None
        conn, self._conn = self._conn, None
        if conn is not None:
            self._close(conn)
        if self._attempt is not None:
            self._close(self._attempt)
        self._failWaiters(None, stopped=True)
        return succeed(None)

    def whenReady(self, failAfterFailures=None):
        if self._conn is not None:
            return succeed(None)
        if self._stopped:
            return fail(self._closed())
        d = Deferred()
        if not self._keeping and failAfterFailures is None:
            failAfterFailures = 1
        self._waiters.append([d, failAfterFailures])
        if not self._keeping:
            self._connect()
        return d

    def reconnect(self, reason):
        if self._conn is not None:
            self._lost(self._conn, reason)

    # -- running work ----------------------------------------------------------------------

    def run(self, work, *args):
        conn = self._conn
        if conn is None:
            if self._stopped:
                return fail(self._closed())
            return fail(DatabaseUnavailable("not connected to PostgreSQL at {}".format(self.where)))
        d = self._lock.run(self._bounded, conn, work, args)

        def succeeded(result):
            self.backoff.reset()
            return result

        def failed(f):
            if not f.check(*self.passOn):
                self._lost(conn, f)
            return f

        return d.addCallbacks(succeeded, failed)

    @inlineCallbacks
    def _bounded(self, conn, work, args, transactional=None):
        """
        C{work(cursor, *args)} on C{conn}, in a transaction unless the keeper runs single
        statements, the whole bounded by C{queryTimeout}.
        """
        if transactional is None:
            transactional = self.transactional
        timer = self.reactor.callLater(self.queryTimeout, self._timedOut, conn, transactional)
        try:
            return (yield self._perform(conn, work, args, transactional))
        except Exception:
            if timer.called:
                raise DatabaseUnavailable(
                    "PostgreSQL at {} did not finish a {} within {}s".format(
                        self.where, "transaction" if transactional else "query", self.queryTimeout
                    )
                ) from None
            raise
        finally:
            if timer.active():
                timer.cancel()

    # -- the connection itself (a txpostgres one here; see ThreadedConnectionKeeper) --------

    def _newConnection(self):
        return Connection(self.reactor, onLost=self._lost)

    def _close(self, conn):
        closeQuietly(conn)

    @inlineCallbacks
    def _perform(self, conn, work, args, transactional):
        """
        C{work(cursor, *args)} on a txpostgres connection.  Unlike txpostgres'
        C{runInteraction}, a rollback on a dead connection is not logged as an unhandled error.
        """
        try:
            cursor = conn.cursor()
            if transactional:
                yield cursor.execute("BEGIN")
            result = yield work(cursor, *args)
            if transactional:
                yield cursor.execute("COMMIT")
            return result
        except Exception:
            if transactional and isOpen(conn):
                try:
                    yield conn.cursor().execute("ROLLBACK")
                except Exception:
                    self._close(conn)
            raise

    def _timedOut(self, conn, transactional):
        self.log.warn(
            "PostgreSQL at {where} did not finish a {what} within {timeout}s; closing the connection",
            where=self.where,
            what="transaction" if transactional else "query",
            timeout=self.queryTimeout,
        )
        self._close(conn)

    # -- connecting ------------------------------------------------------------------------

    def _closed(self):
        return DatabaseUnavailable("the connection to PostgreSQL at {} is closed".format(self.where))

    def _connect(self):
        self._retryCall = None
        if self._stopped or self._attempt is not None or self._conn is not None:
            return
        conn = self._attempt = self._newConnection()
        timer = self.reactor.callLater(self.connectTimeout, self._connectTimedOut, conn)
        d = conn.connect(self.dsn)

        def connected(_):
            if timer.active():
                timer.cancel()
            if self.prepare is None:
                return None
            return self._bounded(conn, self.prepare, (), transactional=True)

        d.addCallback(connected)
        d.addCallbacks(self._connected, self._connectFailed, callbackArgs=(conn,), errbackArgs=(conn, timer))

    def _connectTimedOut(self, conn):
        self.log.warn(
            "PostgreSQL at {where} did not answer within {timeout}s",
            where=self.where,
            timeout=self.connectTimeout,
        )
        self._close(conn)

    def _connected(self, prepared, conn):
        self._attempt = None
        if self._stopped:
            self._close(conn)
            return
        self._conn = conn
        self._lock = DeferredLock()
        self.failures = 0
        waiters, self._waiters = self._waiters, []
        for d, _ in waiters:
            d.callback(None)
        for listener in list(self._listeners):
            listener.connectionReady(prepared)

    def _connectFailed(self, failure, conn, timer):
        self._attempt = None
        if timer.active():
            timer.cancel()
        self._close(conn)
        if self._stopped:
            return
        self.failures += 1
        self.retries += 1
        error = self.errorText(failure)
        delay = self._retryLater()
        for listener in list(self._listeners):
            listener.connectionFailed(error, delay)
        self._failWaiters(error)

    def _lost(self, conn, reason):
        """
        C{conn} is unusable: close it and, while started, reconnect after the backoff.
        """
        if conn is not self._conn:
            return
        self._conn = None
        self._close(conn)
        if self._stopped:
            return
        error = self.errorText(reason)
        delay = self._retryLater()
        for listener in list(self._listeners):
            listener.connectionLost(error, delay)

    def _retryLater(self):
        if not self._keeping:
            return None
        delay = self.backoff.next()
        self._retryCall = self.reactor.callLater(delay, self._connect)
        return delay

    def _failWaiters(self, error, stopped=False):
        """
        An attempt failed with C{error} (or the keeper stopped): fail the waiters out of patience.
        """
        waiters, self._waiters = self._waiters, []
        keep = []
        for waiter in waiters:
            d, left = waiter
            if left is not None:
                left -= 1
            if stopped or (left is not None and left <= 0):
                d.errback(
                    self._closed()
                    if stopped
                    else DatabaseUnavailable("cannot use PostgreSQL at {}: {}".format(self.where, error))
                )
            else:
                waiter[1] = left
                keep.append(waiter)
        self._waiters[:0] = keep


class ThreadedConnectionKeeper(ConnectionKeeper):
    """
    A L{ConnectionKeeper} of a blocking connection worked from its own thread
    (L{stellarflow.postgres.threaded.ThreadedConnection}): a piece of work runs there whole,
    on a blocking psycopg2 cursor (so it may use C{copy_expert}), and must not touch the
    reactor.  Work written with C{inlineCallbacks} over a cursor's results runs unchanged: each
    C{yield} gets the blocking call's value at once.  The writer keeps one.
    """

    def _newConnection(self):
        return ThreadedConnection(self.reactor, onLost=self._lost)

    def _close(self, conn):
        conn.close()

    def _perform(self, conn, work, args, transactional):
        return conn.transaction(work, args, transactional)
