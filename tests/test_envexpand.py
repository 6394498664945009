"""
Tests for C{${VAR}} expansion in config values.
"""

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.envexpand import expand
from stellarflow.schema import Problems


def run(value, environ):
    problems = Problems()
    return expand(value, environ, "root", problems), [p.render("f") for p in problems]


class ExpandTests(SynchronousTestCase):
    def test_variable(self):
        self.assertEqual(run("pw=${PW}", {"PW": "a b'c"}), ("pw=a b'c", []))

    def test_default(self):
        self.assertEqual(run("${HOST:-localhost}", {}), ("localhost", []))
        self.assertEqual(run("${HOST:-localhost}", {"HOST": "db"}), ("db", []))
        self.assertEqual(run("${HOST:-localhost}", {"HOST": ""}), ("localhost", []))
        self.assertEqual(run("${EMPTY:-}", {}), ("", []))

    def test_setButEmpty(self):
        self.assertEqual(run("x${E}y", {"E": ""}), ("xy", []))

    def test_missingIsAnErrorWithPath(self):
        value, problems = run({"a": [1, "${NOPE}"]}, {})
        self.assertEqual(
            problems,
            ["f: root.a[1]: environment variable NOPE is not set; set it or write ${NOPE:-default}"],
        )

    def test_escape(self):
        self.assertEqual(run("$${LITERAL}", {}), ("${LITERAL}", []))

    def test_malformed(self):
        _, problems = run("${1BAD}", {})
        self.assertEqual(len(problems), 1)
        self.assertIn("malformed variable reference", problems[0])

    def test_nonStringsUntouched(self):
        self.assertEqual(run({"n": 5, "b": True, "x": None}, {}), ({"n": 5, "b": True, "x": None}, []))

    def test_dollarWithoutBrace(self):
        self.assertEqual(run("cost $5", {}), ("cost $5", []))

    def test_valueNotReexpanded(self):
        """
        A variable's value is inserted as it is, not expanded again.
        """
        self.assertEqual(run("${A}", {"A": "${B}", "B": "x"}), ("${B}", []))
