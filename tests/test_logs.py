"""
Tests for the JSON lines log observer.
"""

import io
import json

from twisted.logger import Logger, LogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.logs import JSONLinesObserver


class JSONLinesTests(SynchronousTestCase):
    def setUp(self):
        self.stream = io.StringIO()
        publisher = LogPublisher(JSONLinesObserver(self.stream))
        self.log = Logger(namespace="stellarflow.test", observer=publisher)

    def records(self):
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def test_oneObjectPerLineNoSeparator(self):
        self.log.info("Polled {count} events up to ledger {ledger}", count=3, ledger=1000)
        self.log.warn("second")
        text = self.stream.getvalue()
        self.assertNotIn("\x1e", text)
        first, second = self.records()
        self.assertEqual(first["message"], "Polled 3 events up to ledger 1000")
        self.assertEqual((first["count"], first["ledger"]), (3, 1000))
        self.assertEqual(first["level"], "info")
        self.assertEqual(first["namespace"], "stellarflow.test")
        self.assertTrue(first["time"].endswith("Z"))
        self.assertEqual(second["level"], "warn")

    def test_nonPlainFieldsLeftOut(self):
        self.log.info("x {obj}", obj=object())
        [record] = self.records()
        self.assertNotIn("obj", record)
        self.assertTrue(record["message"].startswith("x <object"))

    def test_failureTraceback(self):
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            self.log.failure("boom", Failure())
        [record] = self.records()
        self.assertEqual(record["level"], "critical")
        self.assertIn("ZeroDivisionError", record["traceback"])
