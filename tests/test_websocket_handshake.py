"""
Tests for L{stellarflow.websocket.handshake}: a C{Sec-WebSocket-Key} that is not 16 bytes gets
a 400 saying what to send, and a good key is left to Autobahn.
"""

import base64
import os

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.websocket.handshake import EXAMPLE_KEY, keyProblem, keyRefusal

GUIDE_KEY = "SGVsbG8sIHdvcmxkIQ=="  # the guide's troubleshooting line: 13 bytes


def head(key, host="localhost:8080"):
    lines = ["GET /ws HTTP/1.1", "Host: " + host, "Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    lines.append("Sec-WebSocket-Version: 13")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class KeyProblemTests(SynchronousTestCase):
    def test_guideKey(self):
        self.assertEqual(keyProblem(head(GUIDE_KEY)), "got 'SGVsbG8sIHdvcmxkIQ==', which is 13 bytes")

    def test_goodKeys(self):
        self.assertIsNone(keyProblem(head(EXAMPLE_KEY)))
        self.assertIsNone(keyProblem(head(base64.b64encode(os.urandom(16)).decode())))

    def test_absentLeftToAutobahn(self):
        self.assertIsNone(keyProblem(head(None)))

    def test_lengthBoundaries(self):
        """
        15 and 17 bytes are refused, 16 accepted: the exact length the RFC asks for.
        """
        for n, expected in ((15, "15 bytes"), (16, None), (17, "17 bytes"), (1, "1 byte"), (0, "0 bytes")):
            problem = keyProblem(head(base64.b64encode(b"k" * n).decode()))
            if expected is None:
                self.assertIsNone(problem)
            else:
                self.assertTrue(problem.endswith("which is " + expected), problem)

    def test_notBase64(self):
        self.assertEqual(keyProblem(head("not a key!")), "got a value that is not base64")
        self.assertEqual(keyProblem(head("abc")), "got 'abc', which is not valid base64")

    def test_caseAndSpacing(self):
        data = head(GUIDE_KEY).replace(b"Sec-WebSocket-Key: ", b"sec-websocket-KEY:\t ")
        self.assertIn("13 bytes", keyProblem(data))

    @given(st.binary(max_size=400))
    def test_anyHeadNeverRaises(self, junk):
        problem = keyProblem(b"GET /ws HTTP/1.1\r\nSec-WebSocket-Key: " + junk + b"\r\n\r\n")
        self.assertTrue(problem is None or isinstance(problem, str))


class KeyRefusalTests(SynchronousTestCase):
    def test_answer(self):
        answer = keyRefusal(head(GUIDE_KEY, "example.org:9000"), "/stream", keyProblem(head(GUIDE_KEY)))
        status, rest = answer.split(b"\r\n", 1)
        headers, body = rest.split(b"\r\n\r\n", 1)
        self.assertEqual(status, b"HTTP/1.1 400 Bad Sec-WebSocket-Key")
        self.assertIn(b"Content-Length: %d" % len(body), headers)
        text = body.decode()
        self.assertIn("16 random bytes", text)
        self.assertIn("'SGVsbG8sIHdvcmxkIQ==', which is 13 bytes", text)
        self.assertIn("$(head -c 16 /dev/urandom | base64)", text)
        self.assertIn("http://example.org:9000/stream", text)

    def test_hostNotEchoedWhenOdd(self):
        """
        A Host header with characters no host name has is not copied into the body.
        """
        answer = keyRefusal(head(GUIDE_KEY, "<script>"), "/ws", "x")
        self.assertNotIn(b"<script>", answer)
        self.assertIn(b"http://localhost:8080/ws", answer)
