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


class DefaultLevelTests(SynchronousTestCase):
    """
    The default text log shows info and above; per-connection debug lines stay out.
    """

    def test_textDropsDebug(self):
        import io

        from twisted.logger import Logger

        from stellarflow.logs import text

        stream = io.StringIO()
        log = Logger(observer=text(stream), namespace="t")
        log.debug("client {peer} connected", peer="x")
        log.info("listening")
        log.warn("careful")
        self.assertNotIn("connected", stream.getvalue())
        self.assertIn("listening", stream.getvalue())
        self.assertIn("careful", stream.getvalue())

    def test_twistdDefault(self):
        """
        twistd -n without --logger/--logfile/--syslog gets stellarflow.logs.text; a log file,
        syslog or an explicit logger are left alone.
        """
        from stellarflow.logs import defaultLogger

        cases = [
            ({"logger": None, "logfile": None, "nodaemon": True, "syslog": False}, "stellarflow.logs.text"),
            ({"logger": None, "logfile": "-", "nodaemon": False}, "stellarflow.logs.text"),
            ({"logger": None, "logfile": "/var/log/sf.log", "nodaemon": True}, None),
            ({"logger": None, "logfile": None, "nodaemon": True, "syslog": True}, None),
            ({"logger": None, "logfile": None, "nodaemon": False}, None),
            ({"logger": "stellarflow.logs.json", "logfile": None, "nodaemon": True}, "stellarflow.logs.json"),
        ]
        for options, expected in cases:
            defaultLogger(options)
            self.assertEqual(options["logger"], expected, options)
        defaultLogger(None)
