"""
What L{stellarflow.compat.txredisapi} relies on inside txredisapi is still there, and behaves as
it assumes: bytes replies, numbers left as text, error replies inside EXEC as ResponseError
items, and a reply conversion that, for our settings, changes nothing (so skipping it is safe).
"""

import inspect

import txredisapi
from twisted.test.proto_helpers import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.compat import txredisapi as compat


class RelianceTests(SynchronousTestCase):
    def test_namesExist(self):
        for dotted in compat.RELIED_UPON:
            owner = txredisapi
            for part in dotted.split("."):
                self.assertTrue(hasattr(owner, part), "txredisapi has no {}: stellarflow.compat.txredisapi relies on it".format(dotted))
                owner = getattr(owner, part)

    def test_constructorKeywords(self):
        parameters = inspect.signature(txredisapi.BaseRedisProtocol.__init__).parameters  # Hiredis passes them on
        for name in ("replyTimeout", "password", "dbid", "convertNumbers", "username"):
            self.assertIn(name, parameters)

    def test_conversionIsIdentityForOurSettings(self):
        """
        The library's own conversion, with charset None and convertNumbers False, returns what
        it was given: the walk we skip changes nothing.
        """
        original = txredisapi.RedisProtocol(None, replyTimeout=None, convertNumbers=False)
        reply = [[b"16-1", [b"m", b'{"a":"007"}', b"p", b"", b"n", b"007"]], 12, None]
        self.assertEqual(original.tryConvertData(reply), reply)

    def test_parsesRepliesAsBytes(self):
        protocol = compat.ProtocolFactory().buildProtocol(None)
        protocol.makeConnection(StringTransport())
        got = []
        compat.command(protocol, "GET", "k").addCallback(got.append)
        compat.command(protocol, "EXEC").addCallback(got.append)
        protocol.dataReceived(b"$3\r\n007\r\n*2\r\n:1\r\n-ERR The ID specified in XADD is equal or smaller\r\n")
        self.assertEqual(got[0], b"007")
        self.assertEqual(got[1][0], 1)
        self.assertIsInstance(got[1][1], compat.ResponseError)
