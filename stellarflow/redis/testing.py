"""
Test helpers for the Redis components: the shared test server (127.0.0.1:6379, or
C{STELLARFLOW_TEST_REDIS}), a stream key of a test's own (deleted afterwards: never FLUSHALL),
and a private C{redis-server} on a free port for tests that stop or restart Redis.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

from twisted.trial.unittest import FailTest, SkipTest

from stellarflow.testing.waiting import sleep, waitUntil  # noqa: F401 (re-exported for tests)

DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/0"


def testRedisURL():
    return os.environ.get("STELLARFLOW_TEST_REDIS") or DEFAULT_TEST_REDIS


def _hostPort(url):
    from stellarflow.redis.url import parseRedisURL

    return parseRedisURL(url).hosts[0]


def redisCLI(*args, url=None):
    """
    Run C{redis-cli} against the test server (or C{url}); its output as text.
    """
    host, port = _hostPort(url or testRedisURL())
    out = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port)] + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout.strip()


def requireRedis():
    """
    Skip (or, under CI, fail) when the test server does not answer.
    """
    reason = None
    if shutil.which("redis-cli") is None:
        reason = "redis-cli is not installed"
    else:
        try:
            if redisCLI("PING") != "PONG":
                reason = "no PONG from {}".format(testRedisURL())
        except Exception as e:
            reason = str(e)
    if reason is not None:
        if os.environ.get("CI") == "true":
            raise FailTest("Redis is required under CI: {}".format(reason))
        raise SkipTest("Redis test server unavailable: {}".format(reason))


def uniqueStream(testCase, url=None):
    """
    A stream key no other test uses; it and its position are deleted when the test ends.
    """
    key = "stellarflow:test:{}:{}".format(testCase.id().rsplit(".", 1)[-1], uuid.uuid4().hex[:12])
    testCase.addCleanup(redisCLI, "DEL", key, key + ":position", url=url)
    return key


def freePort():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """
    A C{redis-server} of a test's own on a free port, without persistence, that the test may
    stop and start again (losing everything, as a restart without persistence does).
    """

    def __init__(self, testCase, port=None):
        if shutil.which("redis-server") is None:
            if os.environ.get("CI") == "true":
                raise FailTest("redis-server is required under CI")
            raise SkipTest("redis-server is not installed")
        self.port = port or freePort()
        self.dir = tempfile.mkdtemp(prefix="stellarflow-redis-")
        self.process = None
        testCase.addCleanup(self.cleanup)

    @property
    def url(self):
        return "redis://127.0.0.1:{}/0".format(self.port)

    def start(self, timeout=10.0):
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if redisCLI("PING", url=self.url) == "PONG":
                return
            time.sleep(0.02)
        raise FailTest("private redis-server on port {} did not answer".format(self.port))

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
