"""
A blocking psycopg2 connection worked from a thread of its own, for the writer: C{COPY} needs a
blocking connection (psycopg2's asynchronous connections, which txpostgres uses, cannot copy),
and a whole transaction runs in the thread in one go, so the reactor thread renders the next
rows while PostgreSQL works on these (libpq releases the GIL while it waits).

L{ThreadedConnection} looks like the txpostgres connection of L{stellarflow.compat.txpostgres}
to the L{stellarflow.postgres.keeper.ConnectionKeeper} (``connect``, ``pollable``, ``close``,
``onLost``) and adds L{ThreadedConnection.transaction}.  Like that one it notices the death of an
I{idle} connection at once: while no work runs, the reactor watches the socket and polls
psycopg2 when it becomes readable.  L{ThreadedConnection.close} from the reactor thread shuts
the socket down first, which ends a call blocked in libpq (a hung server, a dead network path)
with an error, then closes the connection in its thread.

Each connection has its own daemon thread: an attempt stuck in libpq's connect (which cannot be
interrupted from outside) occupies only its own thread, until libpq gives up.
"""

import os
import queue
import socket
import threading

import psycopg2
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReadDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

_STOP = object()


class _Worker:
    """
    A daemon thread running calls one at a time; results come back to the reactor thread.
    """

    def __init__(self, reactor, name):
        self.reactor = reactor
        self._calls = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def call(self, f, *args):
        """
        C{f(*args)} in the thread; a Deferred firing (in the reactor thread) with its result.
        """
        d = Deferred()
        self._calls.put((d, f, args))
        return d

    def stop(self):
        self._calls.put(_STOP)

    def _loop(self):
        while True:
            item = self._calls.get()
            if item is _STOP:
                return
            d, f, args = item
            try:
                result = f(*args)
            except BaseException:
                self.reactor.callFromThread(d.errback, Failure())
            else:
                self.reactor.callFromThread(d.callback, result)
            del item, d, f, args


def _synchronous(result):
    """
    The value of C{result}, which may be a Deferred that has fired (work written with
    C{inlineCallbacks} over a blocking cursor fires before it returns).
    """
    if isinstance(result, Deferred):
        box = []
        result.addBoth(box.append)
        if not box:
            raise RuntimeError("work on a blocking connection returned a Deferred that has not fired")
        result = box[0]
        if isinstance(result, Failure):
            result.raiseException()
    return result


@implementer(IReadDescriptor)
class ThreadedConnection:
    """
    One blocking psycopg2 connection (autocommit; transactions are explicit) and its thread.

    @param onLost: called with C{(connection, error)} when the server closed the idle
        connection.
    """

    def __init__(self, reactor, onLost=None):
        self.reactor = reactor
        self.onLost = onLost
        self._raw = None
        self._busy = False
        self._watching = False
        self._closed = False
        self._fd = -1
        self._connecting = None
        self._worker = _Worker(reactor, "stellarflow-postgres")

    # -- what the keeper uses ----------------------------------------------------------

    def connect(self, dsn):
        """
        Connect in the thread; a Deferred firing once connected, or failing at once when
        L{close} is called meanwhile (the attempt is then closed whenever libpq returns).
        """

        def connect():
            raw = psycopg2.connect(dsn)
            raw.autocommit = True
            return raw

        result = self._connecting = Deferred()

        def connected(raw):
            self._connecting = None
            if self._closed:  # given up while connecting: nobody else uses it
                _closeQuietly(raw)
                return
            self._raw = raw
            self._watch()
            result.callback(self)

        def failed(failure):
            self._connecting = None
            if not result.called:
                result.errback(failure)

        self._worker.call(connect).addCallbacks(connected, failed)
        return result

    def pollable(self):
        """
        The psycopg2 connection, C{None} before it connected (as txpostgres' connection).
        """
        return self._raw

    @property
    def isOpen(self):
        """
        Whether the connection is connected and not closed.
        """
        return self._raw is not None and not self._closed and not self._raw.closed

    def close(self):
        """
        Close from the reactor thread: shut the socket down (ending any call blocked on it),
        then close the connection in its thread and end the thread.
        """
        self._closed = True
        self._unwatch()
        connecting, self._connecting = self._connecting, None
        if connecting is not None and not connecting.called:
            connecting.errback(psycopg2.OperationalError("connection attempt abandoned"))
        raw = self._raw
        if raw is not None and not raw.closed:
            _shutdown(raw)
            self._worker.call(_closeQuietly, raw)
        self._worker.stop()

    def transaction(self, work, args, transactional):
        """
        C{work(cursor, *args)} in the thread, between C{BEGIN} and C{COMMIT} when
        C{transactional} (rolled back when it raises); a Deferred firing with its result.
        """
        raw = self._raw
        self._busy = True
        self._unwatch()

        def run():
            cursor = raw.cursor()
            try:
                if transactional:
                    cursor.execute("BEGIN")
                result = _synchronous(work(cursor, *args))
                if transactional:
                    cursor.execute("COMMIT")
                return result
            except BaseException:
                if transactional and not raw.closed:
                    try:
                        raw.cursor().execute("ROLLBACK")
                    except Exception:
                        pass
                raise
            finally:
                cursor.close()

        d = self._worker.call(run)

        def done(result):
            self._busy = False
            if not self._closed and self._raw is not None and not self._raw.closed:
                self._watch()
            return result

        return d.addBoth(done)

    # -- watching the idle connection ----------------------------------------------------

    def _watch(self):
        if not self._watching and not self._busy and self._raw is not None:
            self._fd = self._raw.fileno()
            self._watching = True
            self.reactor.addReader(self)

    def _unwatch(self):
        if self._watching:
            self._watching = False
            self.reactor.removeReader(self)

    def fileno(self):
        return self._fd

    def doRead(self):
        """
        The idle connection is readable: the server said something (a notice, or goodbye).
        The reactor lets go of the socket first: if psycopg2 finds the connection dead it
        closes the socket, which the reactor must not be watching then.
        """
        self._unwatch()
        try:
            self._raw.poll()
        except psycopg2.Error as e:
            if self.onLost is not None:
                self.onLost(self, e)
            return
        self._watch()

    def connectionLost(self, reason):
        self._watching = False

    def logPrefix(self):
        return "ThreadedConnection"


def _shutdown(raw):
    """
    Shut the connection's socket down in both directions (the descriptor stays libpq's).
    """
    try:
        sock = socket.socket(fileno=os.dup(raw.fileno()))
    except (OSError, psycopg2.Error):
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


def _closeQuietly(raw):
    try:
        raw.close()
    except Exception:
        pass
