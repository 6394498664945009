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
SHARED = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared"))
FIXTURES = os.path.join(SHARED, "fixtures")


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


def shared_path(*parts):
    """
    The absolute path of ``../shared/<parts...>`` relative to the repository root (the guide,
    the recorded fixtures).

    @raise SkipTest: it does not exist (outside CI).
    @raise FailTest: it does not exist and ``CI`` is ``"true"``.
    """
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        if os.environ.get("CI") == "true":
            raise FailTest("{} is required under CI but is missing".format(path))
        raise SkipTest("{} is missing (../shared ships beside the repository, not in it)".format(path))
    return path


def fixture_path(*parts):
    """
    The absolute path of ``../shared/fixtures/<parts...>``; see L{shared_path}.
    """
    return shared_path("fixtures", *parts)


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
