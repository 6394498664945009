"""
Tests for the twistd plugin and its options.
"""

import io

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stellarflow import tap
from stellarflow.checkpoint import FileCheckpointStore

VALID = """
pipelines:
  one:
    source: {type: MemorySource, config: {count: 3}}
    processors: []
    consumers: [{type: MemoryConsumer}]
  two:
    source: {type: MemorySource}
    processors: []
    consumers: [{type: MemoryConsumer, config: {path: ""}}]
"""


def options(environ=None):
    o = tap.Options()
    o.stderr = io.StringIO()
    o.stdout = io.StringIO()
    o.environ = environ or {}
    return o


class PluginTests(SynchronousTestCase):
    def test_discovered(self):
        """
        twistd finds the plugin by name, and it is a valid IServiceMaker.
        """
        import twisted.plugins

        makers = [p for p in getPlugins(IServiceMaker, twisted.plugins) if p.tapname == "stellarflow"]
        self.assertTrue(makers)
        verifyObject(IServiceMaker, makers[0])
        self.assertIs(makers[0].options, tap.Options)

    def test_helpDocumentsConfig(self):
        text = str(tap.Options())
        self.assertIn("-c, --config=", text)
        self.assertIn("--check", text)


class OptionsTests(SynchronousTestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_configRequired(self):
        with self.assertRaises(UsageError) as e:
            options().parseOptions([])
        self.assertIn("--config/-c FILE is required", str(e.exception))

    def test_unknownOption(self):
        self.assertRaises(UsageError, options().parseOptions, ["--bogus"])

    def test_valid(self):
        o = options()
        path = self.write(VALID)
        o.parseOptions(["-c", path])
        self.assertEqual([p.name for p in o.loaded.pipelines], ["one", "two"])

    def test_configErrorExitsWithMessageNoTraceback(self):
        o = options()
        path = self.write("source: {type: MemorySource}\nprocessors: []\nconsumers: [{type: SaveToKafka}]\n")
        with self.assertRaises(SystemExit) as e:
            o.parseOptions(["--config", path])
        self.assertEqual(e.exception.code, 1)
        err = o.stderr.getvalue()
        self.assertIn(path + ": 1 configuration error", err)
        self.assertIn("consumers[0].type: unknown consumer type 'SaveToKafka'", err)
        self.assertNotIn("Traceback", err)

    def test_checkValid(self):
        o = options()
        path = self.write(VALID)
        with self.assertRaises(SystemExit) as e:
            o.parseOptions(["-c", path, "--check"])
        self.assertEqual(e.exception.code, 0)
        self.assertEqual(
            o.stdout.getvalue(),
            "{}: OK, 2 pipeline(s)\n  one: MemorySource -> (no processors) -> MemoryConsumer\n"
            "  two: MemorySource -> (no processors) -> MemoryConsumer\n".format(path),
        )

    def test_checkWarnsAboutTopicFiltersMatchingNoTokenEvent(self):
        """
        The guide's complete example filters topics ["*"]: valid, but it matches one-topic
        events only, so no token event; --check says so (exit status 0: it is not an error).
        """
        o = options()
        path = self.write(
            "source:\n  type: RPCSourceAdapter\n  config:\n    filters:\n"
            '      - {type: contract, topics: [["*"], ["AAAADwAAAAh0cmFuc2Zlcg==", "*"], ["**"]]}\n'
            "consumers: [{type: MemoryConsumer}]\n"
        )
        with self.assertRaises(SystemExit) as e:
            o.parseOptions(["-c", path, "--check"])
        self.assertEqual(e.exception.code, 0)
        warnings = [line for line in o.stdout.getvalue().splitlines() if line.startswith("warning:")]
        self.assertEqual(len(warnings), 2)
        self.assertEqual(
            warnings[0],
            'warning: {}: source.config.filters[0].topics[0]: ["*"] has no trailing "**": the RPC matches '
            "only events with exactly 1 topic(s), and token events have 2 to 4 (a transfer has 4), so it "
            'matches no token event. End it with "**" to match longer topic lists'.format(path),
        )
        self.assertIn("source.config.filters[0].topics[1]: ", warnings[1])
        self.assertIn("it may miss token events", warnings[1])

    def test_resetCheckpoint(self):
        """
        --reset-checkpoint removes the pipeline's state file and says what a durable consumer
        keeps; an unknown pipeline is a usage error naming the known ones.
        """
        state = self.mktemp()
        path = self.write(
            "state_dir: {}\npipelines:\n  one: {{source: {{type: MemorySource}}, consumers: [{{type: SaveToPostgreSQL, "
            "config: {{database: d}}}}]}}\n  two: {{source: {{type: MemorySource}}, consumers: [{{type: MemoryConsumer}}]}}\n".format(state)
        )
        store = FileCheckpointStore(state)
        store.save("one", "c1")
        store.save("two", "c2")
        o = options()
        with self.assertRaises(SystemExit) as e:
            o.parseOptions(["-c", path, "--reset-checkpoint", "one"])
        self.assertEqual(e.exception.code, 0)
        self.assertEqual(
            o.stdout.getvalue(),
            "Removed {}\npipelines.one.consumers[0] keeps its own position; to reset it too: "
            "DELETE FROM stellar_events_checkpoints WHERE pipeline = 'one';\n".format(store.path("one")),
        )
        self.assertIsNone(self.successResultOf(store.load("one")))
        self.assertEqual(self.successResultOf(store.load("two")).cursor, "c2")
        e = self.assertRaises(UsageError, options().parseOptions, ["-c", path, "--reset-checkpoint", "three"])
        self.assertIn("no pipeline 'three' in", str(e))
        self.assertIn("its pipelines: one, two", str(e))

    def test_checkMain(self):
        good = self.write(VALID)
        bad = self.write("pipelines: {}\n")
        self.assertEqual(tap.checkMain([good]), 0)
        self.assertEqual(tap.checkMain([good, bad]), 1)
        self.assertEqual(tap.checkMain([]), 2)
