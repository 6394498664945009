"""
Tests for L{stellarflow.compat.txpostgres}: what stellarflow relies on inside txpostgres is still
there.  The first tests fail, naming what is missing, if an installed txpostgres lacks a name;
the others check the behaviour against the real server (failed under ``CI=true`` without it).
"""

import inspect
import socket

import psycopg2
import txpostgres
from psycopg2.extensions import make_dsn
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from txpostgres import txpostgres as library

from stellarflow.compat import txpostgres as compat
from stellarflow.postgres.testing import TemporarySchema, testDSN, waitUntil


class NamesTests(SynchronousTestCase):
    def test_reliedUponNamesExist(self):
        """
        Every name the fence uses exists in the installed txpostgres, as a method.
        """
        version = getattr(txpostgres, "__version__", "?")
        for dotted in compat.RELIED_UPON:
            owner = library
            for part in dotted.split("."):
                self.assertTrue(
                    hasattr(owner, part),
                    "txpostgres {} has no {}: stellarflow.compat.txpostgres relies on it".format(version, dotted),
                )
                owner = getattr(owner, part)
            self.assertTrue(callable(owner), "txpostgres.{} is no longer callable".format(dotted))

    def test_constructorTakesReactor(self):
        self.assertIn("reactor", inspect.signature(library.Connection.__init__).parameters)

    def test_doReadOverridden(self):
        """
        The fence's subclass still overrides C{doRead} (the hook for idle deaths).
        """
        self.assertIn("doRead", vars(compat.Connection))
        self.assertTrue(issubclass(compat.Connection, library.Connection))

    def test_pollableBeforeConnect(self):
        """
        Before C{connect}, C{pollable()} is C{None}: L{compat.closeQuietly} and
        L{compat.isOpen} depend on it.
        """
        conn = compat.Connection(reactor)
        self.assertIsNone(conn.pollable())
        self.assertFalse(compat.isOpen(conn))
        compat.closeQuietly(conn)


class _DyingRawConnection:
    """
    A stand-in for an async psycopg2 connection over one end of a socket pair, whose server is
    gone: executing a query fails at once, and libpq closes the socket while doing so.
    """

    def __init__(self, *args, **kwargs):
        self.socket, self.peer = socket.socketpair()
        self.closed = 0
        self.notifies = []

    def poll(self):
        return psycopg2.extensions.POLL_OK

    def fileno(self):
        return self.socket.fileno()

    def cursor(self):
        return self

    def execute(self, query, params=None):
        self.socket.close()
        self.peer.close()
        self.closed = 2
        raise psycopg2.OperationalError("server closed the connection unexpectedly")

    def close(self):
        if not self.closed:
            self.socket.close()
            self.peer.close()
        self.closed = 1


class SendFailsTests(TestCase):
    """
    A query whose sending fails at once, the socket closed under it, leaves the reactor's
    tables sound (the epoll reactor would otherwise keep watching the closed descriptor).
    """

    @inlineCallbacks
    def test_reactorForgetsTheConnection(self):
        conn = compat.Connection(reactor)
        conn.connectionFactory = _DyingRawConnection
        yield conn.connect("fake")
        self.assertIn(conn, reactor.getReaders())
        with self.assertRaises(psycopg2.OperationalError):
            yield conn.cursor().execute("SELECT 1")
        compat.closeQuietly(conn)
        readers = reactor.getReaders()  # a KeyError here: a closed descriptor is still watched
        self.assertNotIn(conn, readers)
        # the next socket given the same number can be watched
        replacement = compat.Connection(reactor)
        replacement.connectionFactory = _DyingRawConnection
        yield replacement.connect("fake")
        self.assertIn(replacement, reactor.getReaders())
        compat.closeQuietly(replacement)
        self.assertNotIn(replacement, reactor.getReaders())

    @inlineCallbacks
    def test_refusedBeforeSendingKeepsWatching(self):
        """
        A query psycopg2 refuses before sending anything (wrong parameters) leaves the open
        connection watched, so its death while idle is still noticed.
        """
        conn = compat.Connection(reactor)
        conn.connectionFactory = _DyingRawConnection
        self.addCleanup(compat.closeQuietly, conn)
        yield conn.connect("fake")
        raw = conn.pollable()
        raw.execute = lambda query, params=None: (_ for _ in ()).throw(TypeError("not all arguments converted"))
        with self.assertRaises(TypeError):
            yield conn.cursor().execute("SELECT %s")
        self.assertIn(conn, reactor.getReaders())


class LiveTests(TestCase):
    timeout = 20

    def setUp(self):
        self.db = TemporarySchema(self)

    @inlineCallbacks
    def connected(self, onLost=None):
        conn = compat.Connection(reactor, onLost=onLost)
        self.addCleanup(compat.closeQuietly, conn)
        yield conn.connect(make_dsn(testDSN(), application_name=self.db.applicationName))
        return conn

    @inlineCallbacks
    def test_idleDeathReported(self):
        """
        The server ends an idle connection: C{onLost} is called with the psycopg2 error, and
        nothing escapes into the reactor (trial would report it as a logged error).
        """
        lost = Deferred()
        conn = yield self.connected(lambda c, e: lost.callback((c, e)))
        self.assertTrue(compat.isOpen(conn))
        self.assertEqual(self.db.terminate(), 1)
        which, error = yield lost
        self.assertIs(which, conn)
        self.assertIsInstance(error, psycopg2.Error)
        compat.closeQuietly(conn)
        self.assertFalse(compat.isOpen(conn))

    @inlineCallbacks
    def test_queryAndClose(self):
        conn = yield self.connected()
        cursor = conn.cursor()
        yield cursor.execute("SELECT 41 + 1")
        self.assertEqual(cursor.fetchall(), [(42,)])
        self.assertIsInstance(conn.pollable(), psycopg2.extensions.connection)
        compat.closeQuietly(conn)
        compat.closeQuietly(conn)
        self.assertFalse(compat.isOpen(conn))
        yield waitUntil(reactor, lambda: not self.db.backendsOf(self.db.applicationName), what="the backend to go")
