"""
Locate the recorded fixtures the tests read: real Stellar RPC responses and the streaming
guide, committed under ``tests/fixtures`` (each with a ``.source.txt`` naming its origin), so a
fresh clone runs every test.  They are copies of ``../shared`` beside the repository;
C{tests/test_fixtures.py} checks that the copies still equal it when it is present.

A fixture missing from the checkout skips its test with the path in the reason, except under CI
(``CI=true``) where it fails: a CI run that silently skipped its real-data tests would prove
nothing.
"""

import json
import os

from twisted.trial.unittest import FailTest, SkipTest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
#: The steering repository's shared folder, where the originals live (absent in a user's clone).
SHARED = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared"))


#: The recorded fixtures that are getEvents results (the others are fragments or getTransaction
#: responses).
GETEVENTS_FIXTURES = (
    "docs-2023-any-events-diagnostic-legacy-value-object",
    "docs-2023-native-xlm-transfer-events-legacy-value-object",
    "docs-2024-any-events-diagnostic",
    "docs-2024-native-xlm-transfer-events-g-to-g",
    "docs-2025-any-events-reflector-oracle",
    "docs-2025-native-xlm-transfer-events-pagingtoken",
    "docs-2026-any-events-fee-base64",
    "docs-2026-native-xlm-transfer-events-base64",
    "javasdk-events-contract-system-diagnostic",
    "pysdk-2023-counter-events-pagingtoken",
    "pysdk-2025-empty-page-after-cursor",
    "pysdk-2025-fee-events-testnet",
)


def _required(path):
    """
    C{path} if it exists; otherwise skip (outside CI) or fail (under CI).
    """
    if not os.path.exists(path):
        if os.environ.get("CI") == "true":
            raise FailTest("{} is required under CI but is missing".format(path))
        raise SkipTest("{} is missing".format(path))
    return path


def fixturePath(*parts):
    """
    The absolute path of ``tests/fixtures/<parts...>``.

    @raise SkipTest: it does not exist (outside CI).
    @raise FailTest: it does not exist and ``CI`` is ``"true"``.
    """
    return _required(os.path.join(FIXTURES, *parts))


def guidePath():
    """
    The absolute path of the copy of the WebSocket streaming guide (see L{fixturePath}).
    """
    return fixturePath("guide", "websocket-streaming-consumer-guide.md")


def loadRPCResult(name):
    """
    Load ``rpc/<name>`` (``.json`` optional): the ``result`` of a JSON-RPC envelope, or the
    object itself when the fixture is a bare result or fragment.
    """
    if not name.endswith(".json"):
        name += ".json"
    with open(fixturePath("rpc", name), encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and data.get("jsonrpc") == "2.0" and "result" in data:
        return data["result"]
    return data
