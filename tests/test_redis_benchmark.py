"""
Smoke test of benchmarks/redis.py at tiny sizes: the real ingest, redis-server and edge daemons
run and the result tabulates.  No timing is asserted.
"""

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from benchmarks import redis as redisBenchmark
from stellarflow.redis.testing import PrivateRedis
from tests import test_benchmarks


class RedisBenchmarkTests(TestCase):
    timeout = 180
    check = test_benchmarks.BenchmarkSmokeTests.check

    @defer.inlineCallbacks
    def test_redis(self):
        PrivateRedis(self)  # skips (or fails under CI) without redis-server
        result = yield redisBenchmark.measure(
            reactor, clients=4, events=40, page=10, latency_clients=4, latency_seconds=0.3, tick=0.05, read_events=200,
            repeats=1,
        )
        self.check(redisBenchmark, result)
        metrics = result["metrics"]
        self.assertEqual(metrics["redis.saturation.2.deliveries"], 40)  # own-account filters: one each
        self.assertGreater(metrics["redis.read.events_per_s"], 0)
        self.assertEqual(result["runs"]["read"][0]["events"], 200)
