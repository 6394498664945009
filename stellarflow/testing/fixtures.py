"""
Locate the recorded RPC fixtures shared between checkouts, in place (they are never copied in).

They live in ``<repo root>/../shared/fixtures``.  When they are missing a test is skipped with
the path in the reason, except under CI (``CI=true``) where a missing fixture fails the test:
a CI run that silently skipped its real-data tests would prove nothing.
"""

import json
import os

from twisted.trial.unittest import FailTest, SkipTest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "fixtures"))


def fixture_path(*parts):
    """
    The absolute path of ``../shared/fixtures/<parts...>`` relative to the repository root.

    @raise SkipTest: it does not exist (outside CI).
    @raise FailTest: it does not exist and ``CI`` is ``"true"``.
    """
    path = os.path.join(FIXTURES, *parts)
    if not os.path.exists(path):
        if os.environ.get("CI") == "true":
            raise FailTest("fixtures are required under CI, but {} is missing".format(path))
        raise SkipTest("fixture {} is missing (shared fixtures not checked out)".format(path))
    return path


def load_rpc_result(name):
    """
    Load ``rpc/<name>`` (``.json`` optional): the ``result`` of a JSON-RPC envelope, or the
    object itself when the fixture is a bare result or fragment.
    """
    if not name.endswith(".json"):
        name += ".json"
    with open(fixture_path("rpc", name), encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and data.get("jsonrpc") == "2.0" and "result" in data:
        return data["result"]
    return data
