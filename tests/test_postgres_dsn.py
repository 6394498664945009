"""
Tests for L{stellarflow.postgres.dsn} and the PostgreSQL consumer's config schema.
"""

from psycopg2.extensions import parse_dsn
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stellarflow.interfaces import ICheckpointStore, IComponentFactory, IConsumer
from stellarflow.pipeline import ComponentContext
from stellarflow.postgres import SaveToPostgreSQL
from stellarflow.postgres.dsn import buildDSN, describe, dsnProblem, scrub, secretsOf

NASTY = "p a's\"s \\ w=rd '"


def validate(config, path="pipelines.p.consumers[0].config"):
    return SaveToPostgreSQL.configSchema.validate(config, path)


class BuildDSNTests(SynchronousTestCase):
    def test_keysWithQuotesAndSpaces(self):
        """
        Values with spaces, quotes, backslashes and '=' survive a libpq parse unchanged.
        """
        config, problems = validate(
            {"host": "db.example", "port": 6543, "database": "my db", "username": "o'neil", "password": NASTY}
        )
        self.assertEqual(list(problems), [])
        parsed = parse_dsn(buildDSN(config))
        self.assertEqual(parsed["password"], NASTY)
        self.assertEqual(parsed["user"], "o'neil")
        self.assertEqual(parsed["dbname"], "my db")
        self.assertEqual(parsed["host"], "db.example")
        self.assertEqual(parsed["port"], "6543")
        self.assertEqual(parsed["client_encoding"], "UTF8")
        self.assertEqual(parsed["connect_timeout"], "10")

    def test_defaults(self):
        config, _ = validate({"database": "stellar"})
        parsed = parse_dsn(buildDSN(config))
        self.assertEqual((parsed["host"], parsed["port"]), ("localhost", "5432"))
        self.assertNotIn("password", parsed)
        self.assertNotIn("user", parsed)
        self.assertEqual(parsed["application_name"], "stellarflow")

    def test_dsnWithPasswordAndSSL(self):
        """
        A dsn (URI or key=value) is the base; password and sslmode are added to it.
        """
        for base in ("postgresql://alice@db:5433/events", "host=db port=5433 dbname=events user=alice"):
            config, problems = validate({"dsn": base, "password": NASTY, "sslmode": "require"})
            self.assertEqual(list(problems), [])
            parsed = parse_dsn(buildDSN(config))
            keys = ("host", "port", "dbname", "user", "password", "sslmode")
            self.assertEqual(tuple(parsed[k] for k in keys), ("db", "5433", "events", "alice", NASTY, "require"))

    def test_applicationName(self):
        config, _ = validate({"database": "d"})
        self.assertEqual(parse_dsn(buildDSN(config, "stellarflow:main"))["application_name"], "stellarflow:main")
        config, _ = validate({"dsn": "host=db application_name=mine"})
        self.assertEqual(parse_dsn(buildDSN(config, "stellarflow:main"))["application_name"], "mine")

    def test_connectionStringAlias(self):
        config, problems = validate({"connection_string": "host=db dbname=x"})
        self.assertEqual(list(problems), [])
        self.assertEqual(parse_dsn(buildDSN(config))["dbname"], "x")

    def test_describeHidesPassword(self):
        dsn = buildDSN(validate({"database": "ev", "username": "bob", "password": NASTY})[0])
        self.assertEqual(describe(dsn), "bob@localhost:5432/ev")
        self.assertNotIn("w=rd", describe(dsn))

    def test_secretsAndScrub(self):
        dsn = buildDSN(validate({"database": "ev", "password": NASTY})[0])
        self.assertEqual(secretsOf(dsn), (NASTY,))
        self.assertEqual(scrub("error near " + NASTY + " here", secretsOf(dsn)), "error near <hidden> here")
        self.assertEqual(secretsOf("host=x"), ())


class ConfigSchemaTests(SynchronousTestCase):
    def test_defaults(self):
        config, problems = validate({"database": "stellar"})
        self.assertEqual(list(problems), [])
        self.assertEqual(config["table"], "stellar_events")
        self.assertEqual(config["batch_size"], 500)
        self.assertEqual(config["flush_interval"], 0.2)
        self.assertEqual(config["max_pending"], 100000)
        self.assertIsNone(config["schema"])

    def test_databaseRequiredWithoutDSN(self):
        _, problems = validate({"host": "db"})
        self.assertEqual([p.path for p in problems], ["pipelines.p.consumers[0].config.database"])

    def test_dsnExcludesServerKeys(self):
        _, problems = validate({"dsn": "host=a dbname=b", "host": "c", "database": "d"})
        self.assertEqual(
            sorted(p.path for p in problems),
            ["pipelines.p.consumers[0].config.database", "pipelines.p.consumers[0].config.host"],
        )

    def test_dsnAndConnectionString(self):
        _, problems = validate({"dsn": "host=a", "connection_string": "host=b"})
        self.assertEqual([p.path for p in problems], ["pipelines.p.consumers[0].config.connection_string"])

    def test_badDSNNotEchoed(self):
        """
        libpq's parse error quotes the string (here: part of the password); the config error
        must not.
        """
        self.assertIsNotNone(dsnProblem("host=a password=sec ret"))
        _, problems = validate({"dsn": "host=a password=sec ret"})
        text = problems.render("f.yaml")
        self.assertIn("config.dsn", text)
        self.assertNotIn("ret", text.replace("connection string", "").replace("expected", ""))
        self.assertIn("<hidden>", text)

    def test_badNames(self):
        _, problems = validate({"database": "d", "table": "events; drop", "schema": "1x"})
        self.assertEqual(
            sorted(p.path for p in problems),
            ["pipelines.p.consumers[0].config.schema", "pipelines.p.consumers[0].config.table"],
        )
        _, problems = validate({"database": "d", "table": "t" * 60})
        self.assertEqual(len(problems), 1)

    def test_limits(self):
        _, problems = validate({"database": "d", "batch_size": 0, "max_pending": 0, "flush_interval": -1})
        self.assertEqual(len(problems), 3)


class FactoryTests(SynchronousTestCase):
    def test_interfaces(self):
        verifyObject(IComponentFactory, SaveToPostgreSQL)
        config, _ = validate({"database": "d", "password": NASTY, "table": "ev", "schema": "s"})
        consumer = SaveToPostgreSQL.fromConfig(config, ComponentContext(reactor=object(), pipeline="main"))
        verifyObject(IConsumer, consumer)
        verifyObject(ICheckpointStore, consumer)
        self.assertEqual(consumer.pipeline, "main")
        self.assertEqual(consumer.names.events, '"s"."ev"')
        self.assertEqual(consumer.names.checkpoints, '"s"."ev_checkpoints"')
        self.assertEqual(parse_dsn(consumer.dsn)["password"], NASTY)
        self.assertNotIn("w=rd", repr(consumer))
