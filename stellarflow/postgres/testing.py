"""
Helpers for tests against a real PostgreSQL: a throw-away schema per test, and a TCP proxy that
can refuse connections or cut them, to play a database outage without touching the server.  The
proxy listens on 127.0.0.1 whether the server is reached over TCP or through a Unix socket, so
the outage tests always run.

The server is ``STELLARFLOW_TEST_DSN`` or ``host=127.0.0.1 port=5432 user=postgres dbname=test``.
When it cannot be reached a test is skipped with the reason, except under CI (``CI=true``),
where it fails: a CI run that silently skipped its database tests would prove nothing.
"""

import os
import uuid

import psycopg2
from psycopg2.extensions import make_dsn, parse_dsn
from twisted.internet import protocol
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.protocols import portforward
from twisted.trial.unittest import FailTest, SkipTest

from stellarflow.backoff import Backoff
from stellarflow.postgres.consumer import SaveToPostgreSQL
from stellarflow.testing.waiting import sleep, waitUntil  # noqa: F401 (re-exported for tests)

DEFAULT_TEST_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def testDSN():
    """
    The connection string of the test server.
    """
    return os.environ.get("STELLARFLOW_TEST_DSN") or DEFAULT_TEST_DSN


def unavailable(reason):
    """
    Skip (or, under CI, fail) because the test database cannot be used.
    """
    if os.environ.get("CI") == "true":
        raise FailTest("PostgreSQL is required under CI: {}".format(reason))
    raise SkipTest("PostgreSQL test server unavailable ({}): {}".format(describeTestServer(), reason))


def describeTestServer():
    parts = parse_dsn(testDSN())
    return "{}:{}/{}".format(parts.get("host", "localhost"), parts.get("port", 5432), parts.get("dbname", ""))


def connect(dsn=None):
    """
    A blocking, autocommit connection for test set-up and assertions (or skip/fail).
    """
    try:
        conn = psycopg2.connect(make_dsn(dsn or testDSN(), connect_timeout=3))
    except psycopg2.OperationalError as e:
        unavailable(str(e).strip().splitlines()[0])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET lock_timeout = '5s'")
    return conn


class TemporarySchema:
    """
    A schema named ``sf_test_<random>`` for one test, dropped (with everything in it) in the
    test's cleanup.  Stop consumers before that cleanup runs (add their cleanup later).
    """

    def __init__(self, testCase):
        self.conn = connect()
        self.name = "sf_test_" + uuid.uuid4().hex[:12]
        self.applicationName = self.name
        self.execute("CREATE SCHEMA " + self.name)
        testCase.addCleanup(self.drop)

    def drop(self):
        try:
            self.execute("DROP SCHEMA IF EXISTS {} CASCADE".format(self.name))
        finally:
            self.conn.close()

    def execute(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def query(self, sql, params=None):
        """
        Rows of C{sql}; C{{schema}} in it is replaced by the quoted schema name.
        """
        with self.conn.cursor() as cur:
            cur.execute(sql.replace("{schema}", '"{}"'.format(self.name)), params)
            return cur.fetchall()

    def consumer(self, reactor, dsn=None, pipeline="test", **kwargs):
        """
        A L{SaveToPostgreSQL} writing into this schema, with a fast backoff.
        """
        kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.2, jitter=False))
        kwargs.setdefault("flush_interval", 0.01)
        dsn = make_dsn(dsn or testDSN(), application_name=self.applicationName)
        return SaveToPostgreSQL(reactor, dsn, pipeline, schema=self.name, **kwargs)

    def backendsOf(self, applicationName):
        """
        The server process ids of connections using C{applicationName}.
        """
        rows = self.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (applicationName,),
        )
        return [r[0] for r in rows]

    def terminate(self, applicationName=None, wait=False):
        """
        ``pg_terminate_backend`` every connection using C{applicationName} (default: the
        consumers made by L{consumer}); returns how many.

        @param wait: return only once the server processes have exited (up to 5 s each).
        """
        pids = self.backendsOf(applicationName or self.applicationName)
        for pid in pids:
            if wait:
                self.query("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            else:
                self.query("SELECT pg_terminate_backend(%s)", (pid,))
        return len(pids)


class _ProxyClientFactory(portforward.ProxyClientFactory):
    noisy = False


class _ProxyServer(portforward.ProxyServer):
    noisy = False
    clientProtocolFactory = _ProxyClientFactory

    def connectionMade(self):
        self.reactor = self.factory.reactor
        self.factory.active.add(self)
        # Nothing is read from the client until the server side is connected.
        self.transport.pauseProducing()
        if self.factory.stalled:
            return  # a black hole: accepted, never forwarded (the client waits for the server)
        client = self.clientProtocolFactory()
        client.setServer(self)
        if self.factory.socketPath is not None:
            self.reactor.connectUNIX(self.factory.socketPath, client)
        else:
            self.reactor.connectTCP(self.factory.host, self.factory.port, client)

    def connectionLost(self, reason):
        self.factory.active.discard(self)
        portforward.ProxyServer.connectionLost(self, reason)
        if not self.factory.active:
            waiters, self.factory.idleWaiters = self.factory.idleWaiters, []
            for waiter in waiters:
                waiter.callback(None)


class _ProxyFactory(portforward.ProxyFactory):
    noisy = False
    protocol = _ProxyServer

    def __init__(self, reactor, host, port):
        portforward.ProxyFactory.__init__(self, host, port)
        self.reactor = reactor
        # libpq's socket for a host that is a directory
        self.socketPath = "{}/.s.PGSQL.{}".format(host.rstrip("/"), port) if host.startswith("/") else None
        self.active = set()
        self.stalled = False
        self.idleWaiters = []


class FlakyProxy:
    """
    A TCP proxy on 127.0.0.1 in front of the test server (reached over TCP, or through its Unix
    socket when the test DSN's host is a directory).

    L{refuse} stops listening (clients get "connection refused") and cuts every open
    connection; L{accept} listens again on the same port; L{cut} only cuts open connections.
    """

    def __init__(self, reactor, host=None, port=None):
        parts = parse_dsn(testDSN())
        host = host or parts.get("host") or "127.0.0.1"
        self.reactor = reactor
        self.factory = _ProxyFactory(reactor, host, int(port or parts.get("port") or 5432))
        self.listening = None
        self.port = None

    def accept(self):
        """
        Listen (again); returns the port number.
        """
        if self.listening is None:
            self.listening = self.reactor.listenTCP(self.port or 0, self.factory, interface="127.0.0.1")
            self.port = self.listening.getHost().port
        return self.port

    def refuse(self):
        """
        Stop listening and cut open connections; a Deferred fires once the port is closed.
        """
        self.cut()
        if self.listening is None:
            return succeed(None)
        listening, self.listening = self.listening, None
        return maybeDeferred(listening.stopListening)

    def cut(self):
        """
        Abort every proxied connection (both directions); returns how many there were.
        """
        count = len(self.factory.active)
        for server in list(self.factory.active):
            server.transport.abortConnection()
        return count

    def stall(self):
        """
        Stop forwarding in both directions without closing anything, and leave new connections
        unanswered: a network that silently drops packets.
        """
        self.factory.stalled = True
        for server in self.factory.active:
            server.transport.pauseProducing()
            if server.peer is not None:
                server.peer.transport.pauseProducing()

    def unstall(self):
        """
        Forward again; connections opened while stalled (never forwarded) are cut.
        """
        self.factory.stalled = False
        for server in list(self.factory.active):
            if server.peer is None:
                server.transport.abortConnection()
                continue
            server.transport.resumeProducing()
            server.peer.transport.resumeProducing()

    def dsn(self, base=None):
        """
        C{base} (the test DSN) pointed at the proxy.
        """
        return make_dsn(base or testDSN(), host="127.0.0.1", port=self.accept() if self.port is None else self.port)

    def stop(self):
        """
        Refuse and cut everything; fires once every proxied connection is closed.
        """
        self.factory.stalled = False
        d = self.refuse()
        if self.factory.active:
            idle = Deferred()
            self.factory.idleWaiters.append(idle)
            d.addCallback(lambda _: idle)
        return d


def closedPort(reactor):
    """
    A 127.0.0.1 port where nothing listens (it was bound and released).
    """
    port = reactor.listenTCP(0, protocol.Factory(), interface="127.0.0.1")
    number = port.getHost().port
    port.stopListening()
    return number
