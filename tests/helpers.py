"""
Shared test helpers: locating the read-only material in ../shared beside the repository.
"""

import os

from twisted.trial.unittest import SkipTest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")


def sharedPath(*parts):
    """
    The path of C{../shared/<parts>}; skip the test when it is absent, except under CI
    (C{CI=true}), where its absence is a failure.
    """
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        if os.environ.get("CI") == "true":
            raise AssertionError("{} is required under CI but is missing".format(path))
        raise SkipTest("{} is not present (it ships beside the repository, not in it)".format(path))
    return path


def httpClient(testCase):
    """
    A treq client whose connections are closed when C{testCase} ends (a clean reactor).
    """
    from treq.client import HTTPClient
    from twisted.internet import reactor
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=False)
    testCase.addCleanup(pool.closeCachedConnections)
    return HTTPClient(Agent(reactor, pool=pool))
