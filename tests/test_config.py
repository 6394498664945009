"""
Tests for L{stellarflow.config}: both file forms, defaults, env expansion, every error path.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer, provider

from stellarflow.config import load, parse
from stellarflow.interfaces import IComponentFactory, IConsumer, IProcessor, ISource
from stellarflow.registry import Registry
from stellarflow.schema import ConfigError, Field, Integer, Schema, String
from tests.helpers import guidePath


@provider(IComponentFactory)
@implementer(ISource)
class FakeSource:
    configSchema = Schema(
        {
            "rpc_url": Field(String(nonEmpty=True), "https://rpc.example"),
            "auth_header": Field(String(secret=True), ""),
            "poll_interval": Field(Integer(0), 5),
        }
    )


@provider(IComponentFactory)
@implementer(IProcessor)
class FakeProcessor:
    configSchema = Schema({})
    producedTypes = None


@provider(IComponentFactory)
@implementer(IConsumer)
class FakeWebSocket:
    configSchema = Schema(
        {
            "port": Field(Integer(0, 65535), 8080),
            "path": Field(String(), "/ws"),
            "max_queue_size": Field(Integer(1), 1000),
        }
    )


@provider(IComponentFactory)
@implementer(IConsumer)
class FakePostgres:
    configSchema = Schema(
        {
            "host": Field(String(), "localhost"),
            "database": Field(String(nonEmpty=True)),
            "username": Field(String(), "postgres"),
            "password": Field(String(secret=True), ""),
        }
    )


def registry():
    return Registry(
        extra={
            "source": {"RPCSourceAdapter": FakeSource},
            "processor": {"GetEventsRPC": FakeProcessor},
            "consumer": {"SaveToWebSocket": FakeWebSocket, "SaveToPostgreSQL": FakePostgres},
        },
        useEntryPoints=False,
    )


COMPLETE = """
pipelines:
  ContractEventsWebSocket:
    source:
      type: RPCSourceAdapter
      config:
        rpc_url: "https://rpc-mainnet.stellar.org"
        auth_header: "${AUTH:-}"
        poll_interval: 5
    processors:
      - type: GetEventsRPC
        config: {}
    consumers:
      - type: SaveToWebSocket
        config:
          port: "8080"
          path: "/ws"
          max_queue_size: 5000
      - type: SaveToPostgreSQL
        config:
          host: "localhost"
          database: "stellar_events"
          username: "postgres"
          password: "${PGPASSWORD}"
"""

BASIC = """
consumers:
  - type: SaveToWebSocket
    config:
      port: "8080"           # Port to listen on (default: 8080)
      path: "/ws"            # WebSocket endpoint (default: /ws)
      max_queue_size: 1000   # Messages to queue per client (default: 1000)
"""


def errors(text, environ=None, filename="pipe.yaml"):
    try:
        parse(text, filename, environ or {}, registry())
    except ConfigError as e:
        return [p.render(filename) for p in e.problems]
    raise AssertionError("no ConfigError")


class FormTests(SynchronousTestCase):
    def test_completeForm(self):
        config = parse(COMPLETE, "pipe.yaml", {"PGPASSWORD": "p w'd"}, registry())
        [p] = config.pipelines
        self.assertEqual(p.name, "ContractEventsWebSocket")
        self.assertIs(p.source.factory, FakeSource)
        self.assertEqual(p.source.config["rpc_url"], "https://rpc-mainnet.stellar.org")
        self.assertEqual([c.type for c in p.processors], ["GetEventsRPC"])
        self.assertEqual([c.type for c in p.consumers], ["SaveToWebSocket", "SaveToPostgreSQL"])
        self.assertEqual(p.consumers[0].config["port"], 8080)
        self.assertEqual(p.consumers[0].config["max_queue_size"], 5000)
        self.assertEqual(p.consumers[1].config["password"], "p w'd")
        self.assertEqual(p.consumers[1].path, "pipelines.ContractEventsWebSocket.consumers[1]")

    def test_basicFormIsPipelineDefault(self):
        """
        The guide's short form runs as one pipeline named C{default}, with the default source
        and processor.
        """
        config = parse(BASIC, "pipe.yaml", {}, registry())
        [p] = config.pipelines
        self.assertEqual(p.name, "default")
        self.assertEqual(p.source.type, "RPCSourceAdapter")
        self.assertEqual(p.source.config["rpc_url"], "https://rpc.example")
        self.assertEqual([x.type for x in p.processors], ["GetEventsRPC"])
        self.assertEqual(p.consumers[0].config, {"port": 8080, "path": "/ws", "max_queue_size": 1000})

    def test_basicFormWithSourceBeside(self):
        text = BASIC + "source:\n  type: RPCSourceAdapter\n  config: {poll_interval: 1}\nprocessors: []\n"
        [p] = parse(text, "pipe.yaml", {}, registry()).pipelines
        self.assertEqual(p.source.config["poll_interval"], 1)
        self.assertEqual(p.processors, [])

    def test_severalPipelines(self):
        text = """
pipelines:
  a: {consumers: [{type: SaveToWebSocket, config: {port: 1}}]}
  b: {consumers: [{type: SaveToWebSocket, config: {port: 2}}], max_in_flight: 2}
"""
        config = parse(text, "pipe.yaml", {}, registry())
        self.assertEqual([p.name for p in config.pipelines], ["a", "b"])
        self.assertEqual([p.max_in_flight for p in config.pipelines], [8, 2])

    def test_portStringOrInt(self):
        for port in ("8080", '"8080"'):
            text = "consumers: [{type: SaveToWebSocket, config: {port: %s}}]" % port
            [p] = parse(text, "f", {}, registry()).pipelines
            self.assertEqual(p.consumers[0].config["port"], 8080)

    def test_redactedHidesSecrets(self):
        config = parse(COMPLETE, "pipe.yaml", {"PGPASSWORD": "topsecret"}, registry())
        shown = config.pipelines[0].consumers[1].redacted()
        self.assertEqual(shown["password"], "<hidden>")
        self.assertNotIn("topsecret", repr(shown))

    def test_stateDir(self):
        config = parse(BASIC + "state_dir: /var/lib/sf\n", "f", {}, registry())
        self.assertEqual(config.state_dir, "/var/lib/sf")

    def test_loadFromFile(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(BASIC)
        config = load(path, environ={}, registry=registry())
        self.assertEqual(config.filename, path)

    def test_guideFilesUnchanged(self):
        """
        The guide's YAML blocks validate as they are written there (with fakes standing in for
        components; tests/test_config_seed.py runs them against the real ones).
        """
        with open(guidePath()) as f:
            text = f.read()
        blocks = text.split("```yaml\n")[1:]
        yamls = [b.split("```")[0] for b in blocks]
        full = [y for y in yamls if y.startswith("pipelines:")]
        basic = [y for y in yamls if y.startswith("consumers:")]
        self.assertEqual((len(full), len(basic)), (1, 1))
        # the complete example's source has keys our fakes do not know; only check the basic one here
        parse(basic[0], "guide.yaml", {}, registry())


class ErrorTests(SynchronousTestCase):
    def test_badYAML(self):
        [message] = errors("pipelines: [\n  a: b")
        self.assertTrue(message.startswith("pipe.yaml: line "), message)
        self.assertIn("not valid YAML", message)

    def test_notAMapping(self):
        self.assertEqual(
            errors("- a\n- b\n"),
            ["pipe.yaml: got ['a', 'b']; expected a mapping with 'pipelines:' or 'consumers:'"],
        )

    def test_empty(self):
        self.assertEqual(
            errors(""),
            ["pipe.yaml: no pipelines; expected a top-level 'pipelines:' mapping or a 'consumers:' list"],
        )

    def test_unknownTopKey(self):
        self.assertIn(
            "pipe.yaml: pipline: unknown key (did you mean 'pipelines'?); known keys: "
            "pipelines, state_dir, admin, source, processors, consumers, max_in_flight",
            errors(BASIC + "pipline: {}\n"),
        )

    def test_everyProblemAtOnceWithPaths(self):
        text = COMPLETE.replace('port: "8080"', "port: http").replace('path: "/ws"', "pth: /ws")
        text = text.replace("type: GetEventsRPC", "type: GetEvents")
        found = errors(text)
        self.assertEqual(
            sorted(found),
            sorted(
                [
                    "pipe.yaml: pipelines.ContractEventsWebSocket.processors[0].type: unknown processor type "
                    "'GetEvents' (did you mean 'GetEventsRPC'?); known processor types: GetEventsRPC, GetLedgersRPC",
                    "pipe.yaml: pipelines.ContractEventsWebSocket.consumers[0].config.pth: unknown key "
                    "(did you mean 'path'?); known keys: max_queue_size, path, port",
                    "pipe.yaml: pipelines.ContractEventsWebSocket.consumers[0].config.port: got 'http'; "
                    "expected an integer from 0 to 65535",
                    "pipe.yaml: pipelines.ContractEventsWebSocket.consumers[1].config.password: environment "
                    "variable PGPASSWORD is not set; set it or write ${PGPASSWORD:-default}",
                ]
            ),
        )

    def test_unknownConsumerTypeListsKnown(self):
        [message] = errors("consumers: [{type: SaveToKafka}]")
        self.assertEqual(
            message,
            "pipe.yaml: consumers[0].type: unknown consumer type 'SaveToKafka'; known consumer types: "
            "DurableMemoryConsumer, MemoryConsumer, SaveToPostgreSQL, SaveToRedis, SaveToWebSocket",
        )

    def test_missingType(self):
        [message] = errors("consumers: [{config: {}}]")
        self.assertIn("consumers[0].type: got None; expected a consumer type, one of:", message)

    def test_entryKeys(self):
        [message] = errors("consumers: [{type: SaveToWebSocket, confg: {}}]")
        self.assertEqual(
            message, "pipe.yaml: consumers[0].confg: unknown key (did you mean 'config'?); expected only 'type' and 'config'"
        )

    def test_noConsumers(self):
        self.assertEqual(
            errors("pipelines: {a: {consumers: []}}"),
            ["pipe.yaml: pipelines.a.consumers: got []; expected a non-empty list of {type, config}"],
        )

    def test_pipelinesNotMapping(self):
        self.assertEqual(
            errors("pipelines: [a]"),
            ["pipe.yaml: pipelines: got ['a']; expected a mapping of pipeline names to pipelines"],
        )

    def test_strayBesidePipelines(self):
        found = errors("pipelines: {a: {consumers: [{type: SaveToWebSocket}]}}\nconsumers: []\n")
        self.assertEqual(
            found,
            ["pipe.yaml: consumers: cannot be used beside 'pipelines:'; move it into a pipeline under 'pipelines:'"],
        )

    def test_processorsNotList(self):
        found = errors(BASIC + "processors: GetEventsRPC\n")
        self.assertEqual(found, ["pipe.yaml: processors: got 'GetEventsRPC'; expected a list of {type, config}"])

    def test_maxInFlight(self):
        found = errors(BASIC + "max_in_flight: 0\n")
        self.assertEqual(found, ["pipe.yaml: max_in_flight: got 0; expected an integer from 1 to 1000"])

    def test_secretNotEchoed(self):
        text = COMPLETE.replace('password: "${PGPASSWORD}"', "password: [hunter2]")
        [message] = errors(text)
        self.assertNotIn("hunter2", message)
        self.assertIn("password: got <hidden>; expected a string", message)

    def test_unreadableFile(self):
        missing = self.mktemp()
        with self.assertRaises(ConfigError) as e:
            load(missing, environ={}, registry=registry())
        self.assertIn(missing, str(e.exception))
        self.assertIn("cannot read file: No such file or directory", str(e.exception))

    def test_brokenPluginDoesNotHideOthers(self):
        reg = Registry(extra={"consumer": {"Broken": "no.such.module:Thing"}}, useEntryPoints=False)
        with self.assertRaises(ConfigError) as e:
            parse("source: {type: MemorySource}\nprocessors: []\nconsumers: [{type: Broken}, {type: Nope}]", "f", {}, reg)
        messages = [p.message for p in e.exception.problems]
        self.assertEqual(len(messages), 2)
        self.assertIn("consumer type 'Broken' could not be loaded: ModuleNotFoundError", messages[0])
        self.assertIn("unknown consumer type 'Nope'", messages[1])
