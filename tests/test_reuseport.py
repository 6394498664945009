"""
C{reuse_port}: several WebSocket servers (in real deployments, processes) listen on one port and
the kernel spreads connections over them.
"""

import json
import os
import ssl

import websocket
from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from stellarflow.testing.tls import selfSigned
from stellarflow.websocket.consumer import ListenError, SaveToWebSocket
from tests.test_websocket_e2e import cancelAutobahnTimers


def talk(url, sslopt=None):
    """Connect, read the welcome, close (in a thread)."""
    ws = websocket.create_connection(url, timeout=5, sslopt=sslopt)
    try:
        return json.loads(ws.recv())
    finally:
        ws.close()


class ReusePortTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def server(self, port=0, **kwargs):
        consumer = SaveToWebSocket(reactor, host="127.0.0.1", port=port, close_timeout=1, **kwargs)
        yield consumer.start()
        self.addCleanup(consumer.stop)
        return consumer

    def setUp(self):
        self.addCleanup(cancelAutobahnTimers)

    def test_configKey(self):
        config, problems = SaveToWebSocket.configSchema.validate({"reuse_port": True}, "c")
        self.assertEqual((config["reuse_port"], list(problems)), (True, []))
        self.assertFalse(SaveToWebSocket.configSchema.validate({}, "c")[0]["reuse_port"])
        _, problems = SaveToWebSocket.configSchema.validate({"reuse_port": "yes please"}, "c")
        self.assertEqual([p.path for p in problems], ["c.reuse_port"])

    @inlineCallbacks
    def test_twoServersShareOnePort(self):
        """
        Both bind the port; connections reach both (the kernel hashes each connection's
        addresses: 40 connections all on one of two listeners would be a 1 in 2**39 chance).
        """
        first = yield self.server(reuse_port=True)
        port = first.listeningPort.getHost().port
        second = yield self.server(port=port, reuse_port=True)
        self.assertEqual(second.listeningPort.getHost().port, port)
        for _ in range(40):
            welcome = yield threads.deferToThread(talk, "ws://127.0.0.1:{}/ws".format(port))
            self.assertEqual(welcome["type"], "welcome")
        counts = [first.stats()["connections_total"], second.stats()["connections_total"]]
        self.assertEqual(sum(counts), 40)
        self.assertGreater(min(counts), 0, counts)

    @inlineCallbacks
    def test_withoutReusePortTheSecondCannotListen(self):
        first = yield self.server(reuse_port=True)
        port = first.listeningPort.getHost().port
        with self.assertRaises(ListenError):
            yield self.server(port=port)  # a server without the option does not share

    @inlineCallbacks
    def test_wss(self):
        cert, key = selfSigned(os.path.abspath(self.mktemp()))
        server = yield self.server(reuse_port=True, tls_certificate=cert, tls_key=key)
        port = server.listeningPort.getHost().port
        welcome = yield threads.deferToThread(
            talk, "wss://127.0.0.1:{}/ws".format(port), {"ca_certs": cert, "cert_reqs": ssl.CERT_REQUIRED}
        )
        self.assertEqual(welcome["type"], "welcome")
