"""
Tests for L{stellarflow.schema}: kinds, paths, collected problems, secrets.
"""

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.schema import (
    Boolean,
    ConfigError,
    Field,
    Integer,
    ListOf,
    Number,
    OneOf,
    Problems,
    Schema,
    String,
    redact,
)


def check(kind, value):
    problems = Problems()
    result = kind.check(value, "a.b", problems)
    return result, [p.message for p in problems]


class KindTests(SynchronousTestCase):
    def test_integerAcceptsDigitsString(self):
        """
        C{port: 8080} and C{port: "8080"} both validate to the integer 8080.
        """
        self.assertEqual(check(Integer(1, 65535), 8080), (8080, []))
        self.assertEqual(check(Integer(1, 65535), "8080"), (8080, []))

    def test_integerRejects(self):
        for bad in ("80a", 1.5, True, None, 70000, 0):
            result, messages = check(Integer(1, 65535), bad)
            self.assertEqual(len(messages), 1, bad)
            self.assertIn("expected an integer from 1 to 65535", messages[0])
            self.assertIn(repr(bad), messages[0])

    def test_number(self):
        self.assertEqual(check(Number(0), "0.5"), (0.5, []))
        self.assertEqual(check(Number(0), 2), (2, []))
        _, messages = check(Number(0, exclusiveMinimum=True), 0)
        self.assertEqual(messages, ["got 0; expected a number > 0"])
        _, messages = check(Number(), float("nan"))
        self.assertEqual(len(messages), 1)

    def test_stringChoices(self):
        kind = String(choices=("json", "base64"))
        self.assertEqual(check(kind, "json"), ("json", []))
        _, messages = check(kind, "xml")
        self.assertEqual(messages, ["got 'xml'; expected one of 'json', 'base64'"])

    def test_stringConvertsNumbers(self):
        """
        YAML reads C{port: 8080} as a number; a string field takes it as text.
        """
        self.assertEqual(check(String(), 8080), ("8080", []))
        _, messages = check(String(), ["x"])
        self.assertEqual(messages, ["got ['x']; expected a string"])

    def test_secretNeverShown(self):
        _, messages = check(String(choices=("a",), secret=True), "hunter2")
        self.assertEqual(messages, ["got <hidden>; expected one of 'a'"])

    def test_boolean(self):
        self.assertEqual(check(Boolean(), "yes"), (True, []))
        self.assertEqual(check(Boolean(), False), (False, []))
        self.assertEqual(len(check(Boolean(), 3)[1]), 1)

    def test_listPathsPerItem(self):
        problems = Problems()
        ListOf(Integer()).check([1, "x", 3, "y"], "root.list", problems)
        self.assertEqual([p.path for p in problems], ["root.list[1]", "root.list[3]"])

    def test_listMaxItems(self):
        _, messages = check(ListOf(Integer(), maxItems=2), [1, 2, 3])
        self.assertEqual(messages, ["got '3 items'; expected at most 2 items"])

    def test_oneOf(self):
        kind = OneOf(Integer(), String(choices=("auto",)))
        self.assertEqual(check(kind, "auto"), ("auto", []))
        self.assertEqual(check(kind, "7"), (7, []))
        _, messages = check(kind, "x")
        self.assertEqual(messages, ["got 'x'; expected an integer or one of 'auto'"])


class SchemaTests(SynchronousTestCase):
    schema = Schema(
        {
            "port": Field(Integer(1, 65535), 8080),
            "path": Field(String(), "/ws"),
            "password": Field(String(secret=True), ""),
            "name": Field(String(nonEmpty=True)),
        }
    )

    def test_defaults(self):
        config, problems = self.schema.validate({"name": "x"})
        self.assertEqual(problems, [])
        self.assertEqual(config, {"port": 8080, "path": "/ws", "password": "", "name": "x"})

    def test_allProblemsAtOnce(self):
        """
        Every problem is reported, with its path; unknown keys get a "did you mean" hint.
        """
        config, problems = self.schema.validate({"prot": 1, "port": "http", "path": []}, "p.config")
        self.assertIsNone(config)
        rendered = sorted(p.render("f.yaml") for p in problems)
        self.assertEqual(
            rendered,
            sorted(
                [
                    "f.yaml: p.config.prot: unknown key (did you mean 'port'?); known keys: name, password, path, port",
                    "f.yaml: p.config.port: got 'http'; expected an integer from 1 to 65535",
                    "f.yaml: p.config.path: got []; expected a string",
                    "f.yaml: p.config.name: missing; expected a non-empty string",
                ]
            ),
        )

    def test_notAMapping(self):
        _, problems = self.schema.validate(["x"], "c")
        self.assertEqual([p.render("f") for p in problems], ["f: c: got ['x']; expected a mapping"])

    def test_crossCheckOnlyWhenFieldsValid(self):
        seen = []

        def cross(config, path, problems):
            seen.append(config)
            if config["low"] > config["high"]:
                problems.add(path + ".low", "must not exceed high")

        schema = Schema({"low": Field(Integer()), "high": Field(Integer())}, check=cross)
        _, problems = schema.validate({"low": 5, "high": 1}, "x")
        self.assertEqual([p.message for p in problems], ["must not exceed high"])
        _, problems = schema.validate({"low": "a", "high": 1}, "x")
        self.assertEqual(len(seen), 1)

    def test_redact(self):
        config, _ = self.schema.validate({"name": "n", "password": "s3cret"})
        self.assertEqual(redact(config, self.schema)["password"], "<hidden>")
        self.assertEqual(config["password"], "s3cret")

    def test_configErrorRendering(self):
        problems = Problems()
        problems.add("a.b", "got 1; expected x")
        problems.add("c", "missing; expected y")
        error = ConfigError("pipe.yaml", problems)
        self.assertEqual(
            str(error),
            "pipe.yaml: 2 configuration errors\n"
            "  pipe.yaml: a.b: got 1; expected x\n"
            "  pipe.yaml: c: missing; expected y",
        )
