"""
The benchmark's side of the WebSocket load generators: one or more client processes used as
one fleet of C{count} clients.  The compiled client (benchmarks/wsclient.c, built here with the
system C compiler on first use) is preferred; without a compiler, the Python one
(L{benchmarks.wsclient}), which speaks the same commands.
"""

import hashlib
import os
import subprocess
import sys
import tempfile

from twisted.internet.defer import gatherResults, inlineCallbacks, returnValue

from benchmarks.children import spawn, spawnCommand
from benchmarks.common import REPO, account

SOURCE = os.path.join(REPO, "benchmarks", "wsclient.c")
_built = {}


def compiledClient():
    """
    The path of the compiled load generator, building it if needed (cached by the source's
    hash in the temporary directory); C{None} without a working C compiler.
    """
    if "path" in _built:
        return _built["path"]
    path = None
    try:
        with open(SOURCE, "rb") as f:
            digest = hashlib.sha1(f.read()).hexdigest()[:12]
        target = os.path.join(tempfile.gettempdir(), "stellarflow-bench-{}".format(digest), "wsclient")
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            compiler = os.environ.get("CC", "cc")
            partial = target + ".{}".format(os.getpid())
            subprocess.run([compiler, "-O2", "-o", partial, SOURCE], check=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
            os.replace(partial, target)
        path = target
    except (OSError, subprocess.SubprocessError) as e:
        sys.stderr.write("benchmarks: cannot build the compiled load generator ({}); using the Python one\n".format(
            getattr(e, "stdout", None) or e))
    _built["path"] = path
    return path


def registerFile(count, filters, directory):
    """A file of C{count} register messages (line i: client i's) for the compiled client."""
    import json

    path = os.path.join(directory, "register-{}-{}.jsonl".format(filters, count))
    if not os.path.exists(path):
        with open(path, "w") as f:
            for i in range(count):
                body = {"account_ids": [account(i)]} if filters == "account" else {}
                f.write(json.dumps({"type": "register", "filters": body}) + "\n")
    return path


class ClientFleet:
    """
    C{count} WebSocket clients split over C{processes} load-generator processes.

    @param filters: ``all`` (no filtering), ``account`` (client i filters on account(i)) or
        ``none`` (never registers).
    @param client: ``auto`` (compiled if possible), ``c`` or ``python``.
    """

    def __init__(self, reactor, port, count, filters="all", processes=1, timestamps=False, stall=False,
                 path="/ws", rcvbuf=0, client="auto"):
        self.reactor = reactor
        self.port = port
        self.count = count
        self.filters = filters
        self.processes = max(1, min(processes, count or 1))
        self.timestamps = timestamps
        self.stall = stall
        self.path = path
        self.rcvbuf = rcvbuf
        self.binary = compiledClient() if client in ("auto", "c") else None
        if client == "c" and self.binary is None:
            raise RuntimeError("the compiled load generator is not available")
        self.kind = "c" if self.binary else "python"
        self.workdir = tempfile.mkdtemp(prefix="sf-bench-clients-") if self.binary else None
        self.children = []
        self.slices = []

    @inlineCallbacks
    def start(self, timeout=180.0):
        """Connect every client; fires once all are ready (registered unless C{filters} is none)."""
        share, extra = divmod(self.count, self.processes)
        first = 0
        for k in range(self.processes):
            n = share + (1 if k < extra else 0)
            args = ["--port", self.port, "--count", n, "--first", first, "--filters", self.filters,
                    "--path", self.path, "--connect-timeout", timeout, "--rcvbuf", self.rcvbuf]
            if self.timestamps:
                args.append("--timestamps")
            if self.stall:
                args.append("--stall")
            name = "wsclient[{}]".format(k)
            if self.binary:
                if self.filters not in ("all", "none"):
                    args += ["--register-file", registerFile(self.count, self.filters, self.workdir)]
                self.children.append(spawnCommand(self.reactor, [self.binary] + args, name=name))
            else:
                self.children.append(spawn(self.reactor, "benchmarks.wsclient", args, name=name))
            self.slices.append((first, n))
            first += n
        answers = yield self._all(lambda c: c.next(timeout + 10))
        returnValue(_merge(answers))

    @property
    def pids(self):
        return [c.pid for c in self.children]

    def _all(self, call):
        return gatherResults([call(c) for c in self.children], consumeErrors=True).addErrback(
            lambda f: f.value.subFailure)

    @inlineCallbacks
    def register(self, filters, timeout=120.0):
        self.filters = filters
        extra = {}
        if self.binary and filters != "all":
            extra["file"] = registerFile(self.count, filters, self.workdir)
        answers = yield self._all(lambda c: c.request(wait=timeout + 10, cmd="register", filters=filters, **extra))
        returnValue(_merge(answers))

    @inlineCallbacks
    def mark(self):
        answers = yield self._all(lambda c: c.request(cmd="mark"))
        returnValue(_merge(answers))

    @inlineCallbacks
    def expect(self, counts, timeout=60.0):
        """
        Wait until every client has its events: C{counts} is one number for all, or a list
        indexed by client.  The answer's C{t} is when the last needed frame arrived.
        """
        def ask(index):
            first, n = self.slices[index]
            share = counts if isinstance(counts, int) else list(counts[first:first + n])
            return self.children[index].request(wait=timeout + 10, cmd="expect", counts=share, timeout=timeout)

        answers = yield gatherResults([ask(i) for i in range(len(self.children))], consumeErrors=True).addErrback(
            lambda f: f.value.subFailure)
        returnValue(_merge(answers))

    @inlineCallbacks
    def report(self):
        answers = yield self._all(lambda c: c.request(cmd="report"))
        returnValue(_merge(answers))

    @inlineCallbacks
    def dump(self, prefix):
        """Each process writes its receive times to C{prefix}.<k>.json; returns the paths."""
        paths = ["{}.{}.json".format(prefix, k) for k in range(len(self.children))]
        yield gatherResults([c.request(wait=300.0, cmd="dump", path=p) for c, p in zip(self.children, paths)],
                            consumeErrors=True).addErrback(lambda f: f.value.subFailure)
        returnValue(paths)

    def stop(self):
        def cleanup(result):
            if self.workdir:
                import shutil

                shutil.rmtree(self.workdir, ignore_errors=True)
            return result

        return gatherResults([c.stop() for c in self.children]).addBoth(cleanup)


def _merge(answers):
    """One answer from the processes' answers: sums, the latest time, all ok."""
    merged = {"processes": len(answers)}
    for answer in answers:
        for key, value in answer.items():
            if key in ("event", "path"):
                merged[key] = value
            elif key == "ok":
                merged["ok"] = merged.get("ok", True) and value
            elif key == "t":
                merged["t"] = max(merged.get("t", value), value)
            elif key == "least":
                merged["least"] = min(merged.get("least", value), value)
            elif key == "close_codes":
                codes = merged.setdefault("close_codes", {})
                for code, n in value.items():
                    codes[code] = codes.get(code, 0) + n
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                merged[key] = merged.get(key, 0) + value
            else:
                merged[key] = value
    return merged
