"""
C{redis_url} forms, the Redis components' config keys and their errors.
"""

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.config import parse
from stellarflow.daemon import buildPipeline
from stellarflow.redis.source import RedisStreamSource
from stellarflow.redis.url import BadRedisURL, RedisAddress, parseRedisURL
from stellarflow.schema import ConfigError


class RedisURLTests(SynchronousTestCase):
    def test_forms(self):
        self.assertEqual(parseRedisURL("redis://127.0.0.1:6379/0"), RedisAddress("tcp", hosts=(("127.0.0.1", 6379),)))
        self.assertEqual(parseRedisURL("redis://cache"), RedisAddress("tcp", hosts=(("cache", 6379),)))
        a = parseRedisURL("rediss://user:p%40ss@cache.example:6380/3")
        self.assertEqual((a.hosts, a.db, a.username, a.password, a.tls), ((("cache.example", 6380),), 3, "user", "p@ss", True))
        a = parseRedisURL("redis://:secret@[::1]:6379/2")
        self.assertEqual((a.hosts, a.db, a.username, a.password), ((("::1", 6379),), 2, None, "secret"))
        a = parseRedisURL("unix:///run/redis/redis.sock?db=4")
        self.assertEqual((a.kind, a.path, a.db), ("unix", "/run/redis/redis.sock", 4))
        a = parseRedisURL("redis+sentinel://:pw@s1:26379,s2,s3:26380/mymaster/1")
        self.assertEqual(
            (a.kind, a.hosts, a.service, a.db, a.password),
            ("sentinel", (("s1", 26379), ("s2", 26379), ("s3", 26380)), "mymaster", 1, "pw"),
        )

    def test_describeHasNoPassword(self):
        for url in ("redis://:hunter2@h:1/0", "redis+sentinel://:hunter2@h/m", "unix://:hunter2@/s.sock"):
            self.assertNotIn("hunter2", parseRedisURL(url).describe())
        self.assertNotIn("hunter2", repr(parseRedisURL("redis://:hunter2@h:1/0")))

    def test_errors(self):
        for url, text in [
            ("127.0.0.1:6379", "expected a URL"),
            ("http://h", "scheme 'http'"),
            ("redis://h:99999/0", "port '99999'"),
            ("redis://h/x", "database 'x'"),
            ("redis+sentinel://h:26379", "service name"),
            ("redis://a,b/0", "only for redis+sentinel"),
            ("unix://", "socket path"),
        ]:
            with self.assertRaises(BadRedisURL) as e:
                parseRedisURL(url)
            self.assertIn(text, str(e.exception))


EDGE = """
source:
  type: RedisStreamSource
  config: {config}
processors: []
consumers:
  - type: SaveToWebSocket
    config: {{port: 0}}
"""


class ConfigTests(SynchronousTestCase):
    def test_badValuesNamed(self):
        text = EDGE.format(config="{redis_url: 'redis://:hunter2@h:99999/0', block: 0, on_gap: maybe, stream: 'a b'}")
        with self.assertRaises(ConfigError) as e:
            parse(text, "edge.yaml", {})
        message = str(e.exception)
        self.assertIn("edge.yaml: source.config.redis_url", message)
        self.assertIn("port '99999'", message)
        self.assertNotIn("hunter2", message)
        self.assertIn("source.config.block", message)
        self.assertIn("source.config.on_gap", message)
        self.assertIn("source.config.stream", message)

    def test_sourceLendsItsHistory(self):
        """
        The daemon hands the edge's WebSocket consumer the stream as its history.
        """
        from twisted.internet.task import Clock

        config = parse(EDGE.format(config="{stream: s}"), "edge.yaml", {})
        pipeline = buildPipeline(config.pipelines[0], config, Clock())
        self.assertIsInstance(pipeline.source, RedisStreamSource)
        ws = pipeline.consumers[0][1]
        self.assertIs(ws.hub.replayer.store, pipeline.source.eventHistory())
