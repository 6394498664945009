"""
Tests for L{stellarflow.postgres.keeper.ConnectionKeeper} against the real server, with outages
played by L{FlakyProxy} and ``pg_terminate_backend`` (failed under ``CI=true`` without a server).
"""

import psycopg2
from psycopg2.extensions import make_dsn
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stellarflow.backoff import Backoff
from stellarflow.interfaces import IConnectionKeeper, IConnectionListener
from stellarflow.postgres.keeper import ConnectionKeeper, DatabaseUnavailable
from stellarflow.postgres.testing import FlakyProxy, TemporarySchema, closedPort, testDSN, waitUntil


@implementer(IConnectionListener)
class Listener:
    def __init__(self):
        self.events = []

    def connectionReady(self, prepared):
        self.events.append(("ready", prepared))

    def connectionFailed(self, error, delay):
        self.events.append(("failed", error, delay))

    def connectionLost(self, error, delay):
        self.events.append(("lost", error, delay))

    def kinds(self):
        return [e[0] for e in self.events]


class KeeperTestCase(TestCase):
    timeout = 30

    def setUp(self):
        self.db = TemporarySchema(self)
        self.db.execute("CREATE TABLE {}.t (n integer PRIMARY KEY)".format(self.db.name))
        self.listener = Listener()

    def keeper(self, dsn=None, **kwargs):
        kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.2, jitter=False))
        keeper = ConnectionKeeper(
            reactor, make_dsn(dsn or testDSN(), application_name=self.db.applicationName), **kwargs
        )
        keeper.addListener(self.listener)
        self.addCleanup(keeper.stop)
        return keeper

    def proxy(self):
        proxy = FlakyProxy(reactor)
        proxy.accept()
        self.addCleanup(proxy.stop)
        return proxy

    def numbers(self):
        return [r[0] for r in self.db.query("SELECT n FROM {schema}.t ORDER BY n")]

    def insert(self, *numbers):
        table = self.db.name + ".t"

        @inlineCallbacks
        def work(cursor):
            for n in numbers:
                yield cursor.execute("INSERT INTO {} VALUES (%s)".format(table), (n,))
            return len(numbers)

        return work


class RunTests(KeeperTestCase):
    def test_interface(self):
        verifyObject(IConnectionKeeper, self.keeper())

    @inlineCallbacks
    def test_transaction(self):
        """
        Work runs in a transaction: all of it or (on failure) none; a failure that is not
        passed on costs the connection, which a started keeper rebuilds.
        """
        keeper = self.keeper(prepare=lambda cursor: "prepared")
        keeper.start()
        yield keeper.whenReady()
        yield waitUntil(reactor, lambda: self.listener.events == [("ready", "prepared")], what="the ready signal")
        self.assertEqual((yield keeper.run(self.insert(1, 2))), 2)
        self.assertEqual(self.numbers(), [1, 2])
        with self.assertRaises(psycopg2.IntegrityError):
            yield keeper.run(self.insert(3, 1))
        self.assertEqual(self.numbers(), [1, 2])
        self.assertFalse(keeper.ready)
        self.assertEqual(self.listener.kinds(), ["ready", "lost"])
        yield waitUntil(reactor, lambda: keeper.ready, what="the new connection")
        yield keeper.run(self.insert(3))
        self.assertEqual(self.numbers(), [1, 2, 3])

    @inlineCallbacks
    def test_passOn(self):
        """
        An error the keeper is told to pass on fails the work (rolled back) but keeps the
        connection.
        """
        keeper = self.keeper(passOn=(psycopg2.IntegrityError,))
        keeper.start()
        yield keeper.whenReady()
        yield keeper.run(self.insert(1))
        with self.assertRaises(psycopg2.IntegrityError):
            yield keeper.run(self.insert(2, 1))
        self.assertTrue(keeper.ready)
        yield keeper.run(self.insert(2))
        self.assertEqual(self.numbers(), [1, 2])

    @inlineCallbacks
    def test_singleStatements(self):
        """
        Without transactions each statement stands alone: the one before a failure stays.
        """
        keeper = self.keeper(transactional=False)
        yield keeper.whenReady()
        with self.assertRaises(psycopg2.IntegrityError):
            yield keeper.run(self.insert(1, 1))
        self.assertEqual(self.numbers(), [1])

    @inlineCallbacks
    def test_oneAtATime(self):
        keeper = self.keeper()
        yield keeper.whenReady()
        results = yield keeper.run(self.insert(1)), keeper.run(self.insert(2)), keeper.run(self.insert(3))
        for d in results:
            self.assertEqual((yield d), 1)
        self.assertEqual(self.numbers(), [1, 2, 3])

    def test_notReady(self):
        keeper = self.keeper()
        self.failureResultOf(keeper.run(self.insert(1)), DatabaseUnavailable)

    @inlineCallbacks
    def test_stop(self):
        keeper = self.keeper()
        keeper.start()
        yield keeper.whenReady()
        yield keeper.stop()
        self.assertFalse(keeper.ready)
        self.failureResultOf(keeper.run(self.insert(1)), DatabaseUnavailable)
        self.failureResultOf(keeper.whenReady(), DatabaseUnavailable)
        yield waitUntil(reactor, lambda: not self.db.backendsOf(self.db.applicationName), what="the backend to go")


class ConnectionTests(KeeperTestCase):
    @inlineCallbacks
    def test_onDemand(self):
        """
        A keeper that was not started connects when asked and, once that attempt failed, gives
        up (the caller fails rather than waits); it never retries in the background.
        """
        dsn = make_dsn(testDSN(), host="127.0.0.1", port=closedPort(reactor), password="sekrit-pw")
        keeper = self.keeper(dsn)
        with self.assertRaises(DatabaseUnavailable) as caught:
            yield keeper.whenReady()
        self.assertNotIn("sekrit-pw", str(caught.exception))
        self.assertIn("cannot use PostgreSQL at postgres@127.0.0.1", str(caught.exception))
        self.assertEqual(self.listener.events, [("failed", self.listener.events[0][1], None)])
        self.assertEqual((keeper.failures, keeper.retries), (1, 1))
        keeper = self.keeper()
        yield keeper.whenReady()
        self.assertTrue(keeper.ready)

    @inlineCallbacks
    def test_retriesWithBackoff(self):
        """
        A started keeper retries refused attempts with backoff; C{whenReady} waits through
        them (or fails after C{failAfterFailures}); the first connection resets the count.
        """
        proxy = self.proxy()
        yield proxy.refuse()
        keeper = self.keeper(proxy.dsn())
        keeper.start()
        patient = keeper.whenReady()
        impatient = keeper.whenReady(failAfterFailures=2)
        yield waitUntil(reactor, lambda: keeper.failures >= 2, what="failed attempts")
        self.failureResultOf(impatient, DatabaseUnavailable)
        self.assertNoResult(patient)
        delays = [e[2] for e in self.listener.events]
        self.assertEqual(delays[:2], [0.05, 0.1])
        proxy.accept()
        yield patient
        self.assertEqual(keeper.failures, 0)
        self.assertGreaterEqual(keeper.retries, 2)
        yield waitUntil(reactor, lambda: self.listener.kinds()[-1] == "ready", what="the ready signal")

    @inlineCallbacks
    def test_idleDeath(self):
        keeper = self.keeper()
        keeper.start()
        yield keeper.whenReady()
        self.assertEqual(self.db.terminate(), 1)
        yield waitUntil(reactor, lambda: "lost" in self.listener.kinds(), what="the loss")
        yield waitUntil(reactor, lambda: keeper.ready, what="the new connection")

    @inlineCallbacks
    def test_reconnect(self):
        keeper = self.keeper()
        keeper.start()
        yield keeper.whenReady()
        keeper.reconnect(ValueError("cannot get past this"))
        self.assertFalse(keeper.ready)
        self.assertEqual(self.listener.events[-1], ("lost", "cannot get past this", 0.05))
        yield waitUntil(reactor, lambda: keeper.ready, what="the new connection")

    @inlineCallbacks
    def test_prepareFails(self):
        """
        A connection whose preparation fails is not ready: the attempt counts as failed.
        """

        def prepare(cursor):
            return cursor.execute("SELECT * FROM no_such_table")

        keeper = self.keeper(prepare=prepare)
        with self.assertRaises(DatabaseUnavailable) as caught:
            yield keeper.whenReady()
        self.assertIn("no_such_table", str(caught.exception))
        self.assertFalse(keeper.ready)

    @inlineCallbacks
    def test_queryTimeout(self):
        """
        Work on a connection that stops answering is given up after C{queryTimeout}: the
        connection is closed, the work fails, the keeper connects again once it can.
        """
        proxy = self.proxy()
        keeper = self.keeper(proxy.dsn(), queryTimeout=0.3, connectTimeout=0.3)
        keeper.start()
        yield keeper.whenReady()
        proxy.stall()
        with self.assertRaises(DatabaseUnavailable) as caught:
            yield keeper.run(self.insert(1))
        self.assertIn("did not finish a transaction within 0.3s", str(caught.exception))
        self.assertIn("lost", self.listener.kinds())
        proxy.unstall()
        yield waitUntil(reactor, lambda: keeper.ready, what="the new connection")
        yield keeper.run(self.insert(2))
        self.assertEqual(self.numbers(), [2])
