"""
Waiting in tests that run on the real reactor (real sockets, real servers): poll a condition
with a deadline, or let real time pass.  Shared by the PostgreSQL and Redis test helpers.
"""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import FailTest


def waitUntil(reactor, predicate, timeout=10.0, interval=0.01, what="condition"):
    """
    A Deferred firing once C{predicate()} is true, polling every C{interval} seconds on
    C{reactor}; it fails with C{FailTest} after C{timeout} seconds.
    """
    deadline = reactor.seconds() + timeout
    result = Deferred()

    def check():
        try:
            done = predicate()
        except Exception:
            result.errback()
            return
        if done:
            result.callback(None)
        elif reactor.seconds() > deadline:
            result.errback(FailTest("timed out after {}s waiting for {}".format(timeout, what)))
        else:
            reactor.callLater(interval, check)

    check()
    return result


def sleep(reactor, seconds):
    """
    A Deferred firing after C{seconds} of real time.
    """
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
