"""
What stellarflow relies on inside txpostgres (1.7.0, the last release), fenced in here.

txpostgres does not notice that an I{idle} connection died: the server's goodbye (a restart,
``pg_terminate_backend``) makes the connection readable, ``Connection.doRead`` polls psycopg2,
which raises, and with no query waiting for the result the error escapes into the reactor.
L{Connection} turns that into a call of its C{onLost}.  L{isOpen} and L{closeQuietly} look at
the psycopg2 connection through ``pollable()``.

Relied upon (checked by C{tests.test_compat_txpostgres}, which fails loudly when an installed
txpostgres no longer has it):

- C{txpostgres.Connection.doRead(self)} re-raises a C{psycopg2.Error} from ``poll()`` when no
  query is waiting;
- C{txpostgres.Connection.pollable()} is the psycopg2 connection, C{None} before ``connect``;
- C{txpostgres.Connection.__init__(reactor=...)}, and C{self.reactor} set from it.
"""

import psycopg2
from txpostgres import txpostgres

#: The txpostgres names this module uses, for the test that guards them.
RELIED_UPON = ("Connection.doRead", "Connection.pollable", "Connection.close", "Connection.connect")


class Connection(txpostgres.Connection):
    """
    A txpostgres connection that reports the death of an idle connection to C{onLost} instead
    of raising into the reactor.

    @param onLost: called with C{(connection, error)} when the server closed the idle
        connection; the connection is no longer read from.
    """

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
