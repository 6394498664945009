"""
wss://: the WebSocket listener serves TLS with a certificate and key from config.
"""

import json
import os
import ssl

import websocket
from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow.testing.tls import selfSigned
from stellarflow.websocket.consumer import SaveToWebSocket
from tests.test_websocket_e2e import cancelAutobahnTimers


class TLSConfigTests(SynchronousTestCase):
    def validate(self, **config):
        return SaveToWebSocket.configSchema.validate(config, "c")

    def test_bothOrNeither(self):
        cert, key = selfSigned(self.mktemp())
        _, problems = self.validate(tls_certificate=cert)
        self.assertEqual([(p.path, p.message) for p in problems], [("c.tls_key", "missing; expected it beside tls_certificate")])
        config, problems = self.validate(tls_certificate=cert, tls_key=key)
        self.assertEqual(list(problems), [])

    def test_unreadableAndMismatched(self):
        cert, key = selfSigned(self.mktemp())
        _, otherKey = selfSigned(self.mktemp())
        _, problems = self.validate(tls_certificate="/no/such.pem", tls_key=key)
        self.assertIn("cannot read tls_certificate /no/such.pem: No such file or directory", problems[0].message)
        _, problems = self.validate(tls_certificate=cert, tls_key=otherKey)
        self.assertIn("does not match tls_certificate", problems[0].message)
        _, problems = self.validate(tls_certificate=key, tls_key=key)
        self.assertIn("holds no PEM certificate", problems[0].message)


class WSSTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_wss(self):
        """
        A client that trusts the self-signed certificate connects over wss://, gets the welcome
        and registers; the plain ws:// scheme is not served on that port.
        """
        cert, key = selfSigned(os.path.abspath(self.mktemp()))
        consumer = SaveToWebSocket(reactor, host="127.0.0.1", port=0, tls_certificate=cert, tls_key=key, close_timeout=1)
        yield consumer.start()
        self.addCleanup(cancelAutobahnTimers)
        self.addCleanup(consumer.stop)
        port = consumer.listeningPort.getHost().port

        def talk(url, sslopt):
            ws = websocket.create_connection(url, timeout=5, sslopt=sslopt)
            try:
                welcome = json.loads(ws.recv())
                ws.send(json.dumps({"type": "register", "filters": {}}))
                return welcome, json.loads(ws.recv())
            finally:
                ws.close()

        welcome, registered = yield threads.deferToThread(
            talk, "wss://127.0.0.1:{}/ws".format(port), {"ca_certs": cert, "cert_reqs": ssl.CERT_REQUIRED}
        )
        self.assertEqual(welcome["type"], "welcome")
        self.assertEqual(registered["type"], "registered")

        def plain():
            try:
                websocket.create_connection("ws://127.0.0.1:{}/ws".format(port), timeout=5)
            except Exception as e:
                return e
            return None

        error = yield threads.deferToThread(plain)
        self.assertIsNotNone(error)
