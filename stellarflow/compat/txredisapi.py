"""
What stellarflow relies on inside txredisapi (1.6.0), fenced in here.

We use its protocol (the RESP parser, hiredis when installed) and run the connection ourselves,
through a Twisted C{ClientService} that takes our reactor, so that there is exactly one
connection per use (never a pool: a pool reorders XADDs) and every command has our timeout.
The protocol expects a few things of its factory, which L{ProtocolFactory} provides.

Relied upon (checked by C{tests.test_compat_txredisapi}):

- C{txredisapi.RedisProtocol(charset, replyTimeout=, password=, dbid=, convertNumbers=,
  username=)}: with C{charset=None} bulk replies are bytes; C{convertNumbers=False} keeps
  C{"007"} a string; C{replyTimeout=None} leaves timeouts to us;
- C{protocol.factory}, on which a failed AUTH or SELECT calls C{stopTrying()} and
  C{connectionError(message)} and reads C{isLazy};
- C{protocol.whenConnected()} (fires once AUTH and SELECT are done) and
  C{protocol.whenDisconnected()};
- C{protocol.execute_command(*args, apply_timeout=False)} returning a Deferred, failing with
  C{ResponseError} on an error reply; in an C{EXEC} reply, errors are C{ResponseError} items;
- C{protocol.connected} (0 once the connection is lost) and C{protocol.transport};
- C{protocol.tryConvertData(data)}, which the parser calls on every reply (walking every list)
  and which, with C{charset=None} and C{convertNumbers=False}, returns C{data} unchanged: we
  skip the walk (a third of an edge's cost of reading an entry).
"""

import txredisapi
from twisted.internet.protocol import Factory

#: The txredisapi names this module uses, for the test that guards them.
RELIED_UPON = (
    "RedisProtocol",
    "RedisProtocol.whenConnected",
    "RedisProtocol.whenDisconnected",
    "RedisProtocol.execute_command",
    "RedisProtocol.tryConvertData",
    "ResponseError",
    "ConnectionError",
)

ResponseError = txredisapi.ResponseError


class _Protocol(txredisapi.RedisProtocol):
    """
    The library's protocol without the reply walk that converts nothing for us.
    """

    def tryConvertData(self, data):
        return data


class ProtocolFactory(Factory):
    """
    Builds txredisapi protocols for one connection: bytes replies, numbers left as text, no
    timeout of the library's own.

    @param onError: called with the text of a failed AUTH or SELECT.
    """

    isLazy = True
    noisy = False

    def __init__(self, db=0, username=None, password=None, onError=None):
        self.db = db
        self.username = username
        self.password = password
        self.onError = onError

    def buildProtocol(self, addr):
        protocol = _Protocol(
            None,
            replyTimeout=None,
            password=self.password,
            dbid=self.db or None,
            convertNumbers=False,
            username=self.username,
        )
        protocol.factory = self
        return protocol

    # -- what the protocol calls on its factory ---------------------------------------------

    def stopTrying(self):
        """AUTH or SELECT failed: the connection is closed by the protocol; we retry with backoff."""

    def connectionError(self, message):
        if self.onError is not None:
            self.onError(message)


def command(protocol, *args):
    """
    Send one command on C{protocol}; a Deferred of its reply (no timeout: the caller adds it).
    """
    return protocol.execute_command(*args, apply_timeout=False)


def isOpen(protocol):
    """Whether C{protocol}'s connection is usable."""
    return bool(protocol.connected)
ConnectionError = txredisapi.ConnectionError
