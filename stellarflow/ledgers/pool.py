"""
A pool of ledger worker processes (L{stellarflow.ledgers.worker}), as a Twisted service.

Decoding a pubnet ledger with stellar-sdk is 50-200 ms of pure Python, far too long for the
reactor thread; the pool sends each ledger to a worker process and fires a Deferred with what
came back.  Its own C{spawnProcess} and frames (L{stellarflow.ledgers.framing}), not AMP: a
ledger is hundreds of KB and AMP values stop at 64 KiB, and frames carry the XDR and the
messages' encoded JSON as they are.

- At most C{perWorker} ledgers are sent to one worker at a time (so a worker is never idle
  while the parent reads its last answer); the others wait in the parent, in order.  The
  caller bounds how many it submits (the pipeline holds one batch per reader).
- A worker that dies (killed, out of memory, crashed in C) is replaced after
  C{restartDelay}; the ledgers it held are sent again, first, to the next free worker.  A
  ledger that was held by C{maxAttempts} dying workers fails with L{LedgerDecodeError}: it is
  never skipped.
- C{stopService} closes the workers' stdin, waits for them to exit (killing those that do not
  within C{stopTimeout}) and fails what is still waiting with L{PoolStopped}.
"""

import json
import os
import sys

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from stellarflow.ledgers.framing import FrameError, FrameReader, frame
from stellarflow.message import sealed


class LedgerDecodeError(Exception):
    """
    A ledger that cannot be turned into messages: stellar-sdk cannot decode it (a newer
    protocol), its messages cannot be extracted, or it keeps killing workers.  The pipeline
    stops at that ledger (never skips it).

    @ivar ledger: the ledger sequence, when known.
    """

    def __init__(self, message, ledger=None):
        Exception.__init__(self, message)
        self.ledger = ledger


class PoolStopped(Exception):
    """
    The pool stopped before the ledger was decoded.
    """


@attr.s(slots=True)
class LedgerResult:
    """
    One decoded ledger: its header facts and its sealed messages.
    """

    sequence = attr.ib()
    hash = attr.ib()
    previousHash = attr.ib()
    protocol = attr.ib()
    messages = attr.ib()


@attr.s(slots=True, eq=False)
class _Task:
    id = attr.ib()
    ledger = attr.ib()
    format = attr.ib()
    body = attr.ib()
    protocol = attr.ib()
    result = attr.ib()
    attempts = attr.ib(default=0)


def undecodableMessage(error):
    """
    The text of a worker's C{error}: the ledger, its protocol and the stellar-sdk version.
    """
    return "ledger {} (protocol {}) cannot be {} by stellar-sdk {}: {}; the pipeline stops at this ledger{}".format(
        error.get("ledger") if error.get("ledger") is not None else "?",
        error.get("protocol") if error.get("protocol") is not None else "unknown",
        "decoded" if error.get("kind") == "undecodable" else "turned into messages",
        error.get("sdk"),
        error.get("message"),
        " (a newer stellar-sdk is needed for a newer protocol)" if error.get("kind") == "undecodable" else "",
    )


def resultsOf(head, body):
    """
    The L{LedgerResult}s of a worker's answer: each message a sealed L{stellarflow.message.Message}
    built from its fields (parsed once, with the C{json} module's C parser, for the consumers'
    filters and columns) and its text as the worker encoded it.
    """
    results = []
    offset = 0
    for info in head["ledgers"]:
        sizes = info["sizes"]
        length = 2 + sum(sizes) + max(0, len(sizes) - 1)
        text = body[offset : offset + length]
        offset += length
        fields = json.loads(text)
        messages = []
        at = 1
        for size, value in zip(sizes, fields):
            messages.append(sealed(value, text[at : at + size]))
            at += size + 1
        results.append(LedgerResult(info["sequence"], info["hash"], info["previousHash"], info["protocol"], messages))
    return results


class _WorkerProtocol(ProcessProtocol):
    def __init__(self, pool):
        self.pool = pool
        self.reader = FrameReader()
        self.tasks = []
        self.ended = Deferred()
        self.exited = False
        self.pid = None

    def connectionMade(self):
        self.pid = self.transport.pid

    def send(self, task):
        self.tasks.append(task)
        head = {"id": task.id, "format": task.format, "ledger": task.ledger, "protocol": task.protocol}
        self.transport.write(frame(head, task.body))

    def outReceived(self, data):
        try:
            frames = self.reader.feed(data)
        except FrameError as e:
            self.pool.log.error("Ledger worker {pid} wrote garbage ({error}); killing it", pid=self.pid, error=str(e))
            self.kill()
            return
        for head, body in frames:
            task = self.tasks.pop(0) if self.tasks else None
            if task is None or task.id != head.get("id"):
                self.pool.log.error("Ledger worker {pid} answered an unknown request; killing it", pid=self.pid)
                self.kill()
                return
            self.pool._answered(self, task, head, body)

    def errReceived(self, data):
        for line in data.decode("utf-8", "replace").splitlines():
            if line.strip():
                self.pool.log.warn("Ledger worker {pid}: {line}", pid=self.pid, line=line)

    def kill(self):
        try:
            self.transport.signalProcess("KILL")
        except Exception:
            pass

    def processEnded(self, reason):
        self.exited = True
        self.pool._ended(self, reason)
        self.ended.callback(None)


class WorkerPool(Service):
    """
    Worker processes decoding ledgers; see the module docstring.

    @param reactor: provides C{spawnProcess} and C{callLater}.
    @param passphrase: the network passphrase (pairs envelopes with results).
    @param emit: the message types wanted (L{stellarflow.meta.MESSAGE_TYPES}).
    @param workers: how many processes.
    @param crashOn: ledgers at which a worker exits at once (tests of worker death).
    """

    log = Logger()

    def __init__(self, reactor, passphrase, emit, workers=2, perWorker=2, maxAttempts=3, restartDelay=0.5,
                 stopTimeout=10.0, executable=None, crashOn=None):
        self.reactor = reactor
        self.passphrase = passphrase
        self.emit = list(emit)
        self.size = workers
        self.perWorker = perWorker
        self.maxAttempts = maxAttempts
        self.restartDelay = restartDelay
        self.stopTimeout = stopTimeout
        self.executable = executable or sys.executable
        self.crashOn = list(crashOn) if crashOn else None
        self.workers = []
        self._queue = []
        self._nextId = 0
        self._restarts = []
        self.deaths = 0
        self.decoded = 0

    # -- lifecycle ---------------------------------------------------------------------

    def startService(self):
        Service.startService(self)
        for _ in range(self.size):
            self._spawn()

    def _spawn(self):
        if not self.running:
            return
        config = {"passphrase": self.passphrase, "emit": self.emit}
        if self.crashOn:
            config["crash_on"] = self.crashOn
        protocol = _WorkerProtocol(self)
        argv = [self.executable, "-m", "stellarflow.ledgers.worker", json.dumps(config)]
        self.reactor.spawnProcess(protocol, self.executable, argv, env=dict(os.environ),
                                  childFDs={0: "w", 1: "r", 2: "r"})
        self.workers.append(protocol)
        self._dispatch()

    def stopService(self):
        Service.stopService(self)
        for call in self._restarts:
            if call.active():
                call.cancel()
        self._restarts = []
        queued, self._queue = self._queue, []
        for task in queued:
            task.result.errback(PoolStopped("the ledger worker pool stopped"))
        waits = []
        for worker in list(self.workers):
            if worker.exited:
                continue
            worker.transport.closeStdin()
            timer = self.reactor.callLater(self.stopTimeout, worker.kill)
            worker.ended.addBoth(lambda _, timer=timer: timer.active() and timer.cancel())
            waits.append(worker.ended)
        if not waits:
            return succeed(None)
        return DeferredList(waits).addCallback(lambda _: None)

    # -- work ------------------------------------------------------------------------

    def submit(self, body, format, ledger=None, protocol=None):
        """
        Decode one ledger (or data-lake object) in a worker.

        @param body: the ledger's bytes in C{format} (``base64``, ``xdr`` or ``zstd``).
        @param ledger: the sequence it should be, for messages and errors.
        @return: a Deferred firing with a list of L{LedgerResult} (one per ledger in C{body}),
            or failing with L{LedgerDecodeError} or L{PoolStopped}.
        """
        if not self.running:
            raise PoolStopped("the ledger worker pool is not running")
        self._nextId += 1
        task = _Task(self._nextId, ledger, format, body, protocol, Deferred())
        self._queue.append(task)
        self._dispatch()
        return task.result

    @property
    def queued(self):
        """How many ledgers wait for a worker."""
        return len(self._queue)

    @property
    def inFlight(self):
        """How many ledgers workers are decoding now."""
        return sum(len(w.tasks) for w in self.workers)

    def _dispatch(self):
        while self._queue:
            free = [w for w in self.workers if not w.exited and len(w.tasks) < self.perWorker]
            if not free:
                return
            worker = min(free, key=lambda w: len(w.tasks))
            worker.send(self._queue.pop(0))

    def _answered(self, worker, task, head, body):
        error = head.get("error")
        if error is not None:
            if error.get("ledger") is None:
                error["ledger"] = task.ledger
            task.result.errback(LedgerDecodeError(undecodableMessage(error), error.get("ledger")))
        else:
            try:
                results = resultsOf(head, body)
            except Exception as e:
                task.result.errback(LedgerDecodeError(
                    "the worker's answer for ledger {} is unreadable: {}".format(task.ledger, e), task.ledger))
            else:
                self.decoded += len(results)
                task.result.callback(results)
        self._dispatch()

    def _ended(self, worker, reason):
        if worker in self.workers:
            self.workers.remove(worker)
        held, worker.tasks = worker.tasks, []
        if not self.running:
            for task in held:
                task.result.errback(PoolStopped("the ledger worker pool stopped"))
            return
        self.deaths += 1
        status = reason.value.exitCode if reason.check(ProcessDone) is None else 0
        signal = getattr(reason.value, "signal", None)
        self.log.error(
            "Ledger worker {pid} died (exit status {status}, signal {signal}) holding ledger(s) {ledgers}; "
            "starting another in {delay}s",
            pid=worker.pid,
            status=status,
            signal=signal,
            ledgers=", ".join(str(t.ledger) for t in held) or "none",
            delay=self.restartDelay,
        )
        retry = []
        for task in held:
            task.attempts += 1
            if task.attempts >= self.maxAttempts:
                task.result.errback(LedgerDecodeError(
                    "ledger {} killed {} worker processes in a row; the pipeline stops at this ledger".format(
                        task.ledger, task.attempts), task.ledger))
            else:
                retry.append(task)
        self._queue[:0] = retry
        self._restarts = [c for c in self._restarts if c.active()]
        self._restarts.append(self.reactor.callLater(self.restartDelay, self._spawn))
        self._dispatch()
