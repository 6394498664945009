"""
What stellarflow relies on inside txpostgres (1.7.0, the last release), fenced in here.

Two gaps, closed here:

- txpostgres does not notice that an I{idle} connection died: the server's goodbye (a restart,
  ``pg_terminate_backend``) makes the connection readable, ``Connection.doRead`` polls psycopg2,
  which raises, and with no query waiting for the result the error escapes into the reactor.
  L{Connection} turns that into a call of its C{onLost}.
- An idle connection stays registered with the reactor while a cursor starts a query, and only
  leaves once the query is sent.  When sending fails at once (the server is gone: over a Unix
  socket the write fails with EPIPE), libpq closes the socket first, so the reactor is left
  watching a closed descriptor; the epoll reactor's tables then go wrong for the next socket
  given the same number (C{FileNotFoundError} from C{epoll.modify}, a C{KeyError} in
  C{removeAll}).  L{Cursor} takes the connection off the reactor before sending.

L{isOpen} and L{closeQuietly} look at the psycopg2 connection through ``pollable()``.

Relied upon (checked by C{tests.test_compat_txpostgres}, which fails loudly when an installed
txpostgres no longer has it):

- C{txpostgres.Connection.doRead(self)} re-raises a C{psycopg2.Error} from ``poll()`` when no
  query is waiting;
- C{txpostgres.Connection.pollable()} is the psycopg2 connection, C{None} before ``connect``;
- C{txpostgres.Connection.__init__(reactor=...)}, and C{self.reactor} set from it;
- C{txpostgres.Connection.cursorFactory}, called as C{cursorFactory(psycopg2Cursor, connection)},
  and C{txpostgres.Cursor.execute}/C{callproc} returning a Deferred that has already failed when
  psycopg2 raised at once.
"""

import psycopg2
from txpostgres import txpostgres

#: The txpostgres names this module uses, for the test that guards them.
RELIED_UPON = (
    "Connection.doRead",
    "Connection.pollable",
    "Connection.close",
    "Connection.connect",
    "Connection.cursor",
    "Connection.cursorFactory",
    "Cursor.execute",
    "Cursor.callproc",
)


class Cursor(txpostgres.Cursor):
    """
    A txpostgres cursor that takes its idle connection off the reactor before sending a query
    (and puts it back if psycopg2 refused at once while the connection is still open).
    """

    def __init__(self, cursor, connection):
        txpostgres.Cursor.__init__(self, cursor, connection)
        self.owner = connection

    def execute(self, query, params=None):
        return self._sending(txpostgres.Cursor.execute, query, params)

    def callproc(self, procname, params=None):
        return self._sending(txpostgres.Cursor.callproc, procname, params)

    def _sending(self, method, *args):
        owner = self.owner
        owner.reactor.removeReader(owner)
        d = method(self, *args)
        if d.called and isOpen(owner):
            owner.reactor.addReader(owner)  # refused before anything was sent
        return d


class Connection(txpostgres.Connection):
    """
    A txpostgres connection that reports the death of an idle connection to C{onLost} instead
    of raising into the reactor, and whose cursors are L{Cursor}s.

    @param onLost: called with C{(connection, error)} when the server closed the idle
        connection; the connection is no longer read from.
    """

    cursorFactory = Cursor

    def __init__(self, reactor, onLost=None):
        txpostgres.Connection.__init__(self, reactor=reactor)
        self.onLost = onLost

    def doRead(self):
        try:
            txpostgres.Connection.doRead(self)
        except psycopg2.Error as e:
            self.reactor.removeReader(self)
            if self.onLost is not None:
                self.onLost(self, e)


def isOpen(conn):
    """
    Whether C{conn} (a txpostgres connection) has an open psycopg2 connection.
    """
    raw = conn.pollable()
    return raw is not None and not raw.closed


def closeQuietly(conn):
    """
    Close C{conn} if it ever connected; never raises (it may already be dead).
    """
    if conn.pollable() is None:
        return
    try:
        conn.close()
    except Exception:
        pass
