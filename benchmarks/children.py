"""
Load-generator processes, spoken to in JSON lines: one command per line on their stdin, one
answer per line on their stdout.  The benchmark (the process under test) runs them with its
reactor, so that waiting for them never blocks the daemon code being measured.
"""

import json
import os
import sys
from collections import deque

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater

from benchmarks.common import REPO


class ChildFailed(Exception):
    """A load-generator process died, timed out or broke its protocol."""


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(reactor, module, args=(), name=None):
    """
    Start ``python -m <module> <args>`` in the repository; returns its L{Child}.
    """
    child = Child(reactor, name or module)
    argv = [sys.executable, "-m", module] + [str(a) for a in args]
    reactor.spawnProcess(child, sys.executable, argv, env=environment(), path=REPO)
    child.pid = child.transport.pid
    return child


def spawnCommand(reactor, argv, name=None):
    """
    Start the program C{argv} (a list) in the repository; returns its L{Child}.
    """
    child = Child(reactor, name or os.path.basename(argv[0]))
    reactor.spawnProcess(child, argv[0], [str(a) for a in argv], env=environment(), path=REPO)
    child.pid = child.transport.pid
    return child


class Child(ProcessProtocol):
    """
    One load-generator process.  L{send} writes a command; L{next} is a Deferred of its next
    message (a dict).  The tail of its stderr is kept for error reports.
    """

    def __init__(self, reactor, name):
        self.reactor = reactor
        self.name = name
        self.pid = None
        self._buffer = b""
        self._lines = deque()
        self._waiters = deque()
        self.stderr = b""
        self.exitReason = None
        self.ended = Deferred()

    # -- ProcessProtocol --------------------------------------------------------------

    def outReceived(self, data):
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                self.stderr = (self.stderr + b"[stdout] " + line + b"\n")[-8192:]
                continue
            if self._waiters:
                self._waiters.popleft().callback(message)
            else:
                self._lines.append(message)

    def errReceived(self, data):
        self.stderr = (self.stderr + data)[-8192:]

    def processEnded(self, reason):
        self.exitReason = reason
        waiters, self._waiters = self._waiters, deque()
        for d in waiters:
            d.errback(ChildFailed("{} exited ({}):\n{}".format(self.name, reason.value, self.tail())))
        self.ended.callback(None)

    # -- use -----------------------------------------------------------------------------

    def tail(self):
        return self.stderr.decode("utf-8", "replace")[-3000:]

    def next(self, timeout=120.0):
        """A Deferred of the next message; fails with L{ChildFailed} on timeout or exit."""
        if self._lines:
            return succeed(self._lines.popleft())
        if self.exitReason is not None:
            return fail(ChildFailed("{} has exited ({}):\n{}".format(self.name, self.exitReason.value, self.tail())))
        d = Deferred()
        self._waiters.append(d)

        def expired():
            if d in self._waiters:
                self._waiters.remove(d)
                d.errback(ChildFailed("{} did not answer within {} s:\n{}".format(self.name, timeout, self.tail())))

        call = self.reactor.callLater(timeout, expired)

        def done(result):
            if call.active():
                call.cancel()
            return result

        return d.addBoth(done)

    def send(self, **command):
        if self.exitReason is None:
            self.transport.write(json.dumps(command).encode("utf-8") + b"\n")

    def request(self, wait=120.0, **command):
        """Send a command; a Deferred of its answer (failing after C{wait} seconds)."""
        self.send(**command)
        return self.next(wait)

    def stop(self, timeout=10.0):
        """Close its stdin (it exits at EOF); kill it if it lingers.  Fires once it is gone."""
        if self.exitReason is not None:
            return succeed(None)
        try:
            self.transport.closeStdin()
        except Exception:
            pass

        def kill():
            if self.exitReason is None:
                try:
                    self.transport.signalProcess("KILL")
                except Exception:
                    pass

        call = self.reactor.callLater(timeout, kill)
        d = Deferred()

        def ended(result):
            if call.active():
                call.cancel()
            d.callback(None)
            return result

        self.ended.addBoth(ended)
        return d


def sleep(reactor, seconds):
    """A Deferred firing after C{seconds} on C{reactor}."""
    return deferLater(reactor, seconds, lambda: None)
