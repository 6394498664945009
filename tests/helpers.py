"""
Shared test helpers.
"""

import os

from stellarflow.testing.fixtures import guidePath as guidePath  # noqa: F401 (for tests)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
