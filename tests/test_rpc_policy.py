"""
Tests for L{stellarflow.rpc.policy}: what a failed poll means.  (The source carrying the outcomes
out is tested in C{test_rpc_source}.)
"""

from twisted.logger import Logger, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.backoff import Backoff
from stellarflow.rpc.errors import HTTPError, InvalidParams, LedgerRangeError, QueueFull
from stellarflow.rpc.policy import DeliveryFailed, FailurePolicy, Retry, SkipGap, Stop

ENDPOINT = "https://rpc.example.com"


def rangeError(oldest, latest):
    message = "startLedger must be within the ledger range: {} - {}".format(oldest, latest)
    return LedgerRangeError(-32600, message, None, oldest, latest)


class FailurePolicyTests(SynchronousTestCase):
    def setUp(self):
        self.logged = []
        self.backoff = Backoff(initial=1.0, maximum=60.0, jitter=False)
        self.policy = self.make("skip")

    def make(self, onGap):
        return FailurePolicy(ENDPOINT, onGap, self.backoff, Logger(observer=self.logged.append))

    def decide(self, error, requested=100, cursor=None, policy=None):
        return (policy or self.policy).decide(Failure(error), requested, cursor)

    def texts(self):
        return [formatEvent(e) for e in self.logged]

    def test_invalidParamsStops(self):
        outcome = self.decide(InvalidParams(-32602, "filter 1 invalid"))
        self.assertIsInstance(outcome, Stop)
        self.assertIn("filter 1 invalid", outcome.reason)
        self.assertIsNone(outcome.gap)
        self.assertEqual(self.backoff.failures, 0)

    def test_transientErrorsBackOff(self):
        self.assertEqual(self.decide(QueueFull(-32098, "queue full")), Retry(1.0))
        self.assertEqual(self.decide(HTTPError(503)), Retry(2.0))
        self.assertEqual(self.backoff.failures, 2)
        self.assertIn("getEvents poll of {} failed (http-error: HTTP 503 (empty body)); retrying in 2.0s "
                      "(attempt 2)".format(ENDPOINT), self.texts())

    def test_retryAfterLengthensTheWait(self):
        self.assertEqual(self.decide(HTTPError(429, retryAfter=30)), Retry(30.0))
        self.assertEqual(self.decide(HTTPError(429, retryAfter=3600)), Retry(600.0))

    def test_gapSkip(self):
        self.assertEqual(self.decide(rangeError(150, 900), requested=100), SkipGap(100, 149))
        self.assertIn("LOST", self.texts()[-1])

    def test_gapStop(self):
        outcome = self.decide(rangeError(150, 900), requested=100, policy=self.make("stop"))
        self.assertIsInstance(outcome, Stop)
        self.assertEqual(outcome.gap, (100, 149))
        self.assertIn("on_gap is 'stop'", self.texts()[-1])

    def test_aheadOrWithinRetries(self):
        self.assertEqual(self.decide(rangeError(10, 90), requested=100), Retry(1.0))
        self.assertIn("Ledger 100 is ahead of", self.texts()[-1])
        self.assertEqual(self.decide(rangeError(10, 900), requested=100), Retry(2.0))

    def test_deliveryFailureAndBugsRetry(self):
        pipeline = Failure(RuntimeError("processor exploded"))
        self.assertEqual(self.decide(DeliveryFailed(pipeline), cursor="c"), Retry(1.0))
        self.assertEqual(self.decide(ZeroDivisionError("bug")), Retry(2.0))
        self.assertEqual([e["log_failure"].type for e in self.logged], [RuntimeError, ZeroDivisionError])
