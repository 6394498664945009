"""
The Stellar RPC test server as a load-generator process, instrumented for the benchmarks.

    python -m benchmarks.rpcload [--events-per-ledger 100] [--ledger-close-time 5] [--seed 1]

It is the real L{StellarRPCResource} (ledgers closing on the reactor's clock, synthetic SAC
traffic) with two additions, made by L{TimedRPCResource}:

- ledgers only carry events inside a measurement window, opened by the ``go`` command: the
  next C{ledgers} ledgers to close (so that clients can connect before any event exists);
- the wall-clock time (``time.time()``) at which each ``getEvents`` answer that carries events
  was produced, with the ids it carried.

Commands (JSON lines on stdin): ``{"cmd": "go", "ledgers": K}`` (answers the window and the
number of events it will hold), ``{"cmd": "answers"}`` (answers ``[[time, [ids...]], ...]``
since the last ``go``), ``{"cmd": "page", "limit": L, "format": "base64"|"json", "pages": P}``
(answers P raw getEvents response bodies of L events, generated without a window, from
``skip`` ledgers after the oldest, for the ingest benchmark).  It first prints ``{"event": "listening", "port": P}``.
"""

import argparse
import json
import resource
import sys
import time

from twisted.internet import stdio
from twisted.protocols.basic import LineReceiver

from benchmarks.common import account
from stellarflow.testing.rpcserver import StellarRPCResource, serve


class TimedRPCResource(StellarRPCResource):
    """
    The RPC test server whose ledgers hold events only inside the current window, recording
    when each page of events was answered.
    """

    def __init__(self, clock, **kwargs):
        StellarRPCResource.__init__(self, clock, **kwargs)
        self.window = None  # (first, last) ledgers with events
        self.answers = []
        self._ids = None
        self.gating = True

    def eventsInLedger(self, ledger):
        if self.gating and (self.window is None or not self.window[0] <= ledger <= self.window[1]):
            return []
        return StellarRPCResource.eventsInLedger(self, ledger)

    def getEvents(self, params):
        result = StellarRPCResource.getEvents(self, params)
        if b'"events":[]' not in result[:12]:
            self._ids = [e["id"] for e in json.loads(result)["events"]]
        return result

    def render_POST(self, request):
        self._ids = None
        payload = StellarRPCResource.render_POST(self, request)
        if self._ids:
            self.answers.append((time.time(), self._ids))
            self._ids = None
        return payload

    def openWindow(self, ledgers):
        """Events in the next C{ledgers} ledgers to close; returns (first, last, events)."""
        latest = self.ledgers.latest
        self.window = (latest + 1, latest + ledgers)
        self.answers = []
        count = 0
        for ledger in range(self.window[0], self.window[1] + 1):
            # generated now (and cached), so that answering costs the same as a warm server
            count += len(self.traffic.events(ledger, self.ledgers.closeTime(ledger)))
        return self.window[0], self.window[1], count


class Commands(LineReceiver):
    delimiter = b"\n"

    def __init__(self, resource, reactor):
        self.resource = resource
        self.reactor = reactor

    def emit(self, **message):
        self.transport.write(json.dumps(message).encode("utf-8") + b"\n")

    def lineReceived(self, line):
        if not line.strip():
            return
        command = json.loads(line)
        cmd = command.get("cmd")
        if cmd == "go":
            first, last, count = self.resource.openWindow(command["ledgers"])
            self.emit(event="going", first=first, last=last, events=count, t=time.time(),
                      close_time=self.resource.ledgers.close_time_seconds, cpu=_cpu())
        elif cmd == "answers":
            self.emit(event="answers", answers=self.resource.answers, cpu=_cpu())
        elif cmd == "pages":
            self.emit(event="pages", bodies=self.pages(command["limit"], command["format"], command["pages"],
                                                       command.get("skip", 0)))
        else:
            self.emit(event="error", error="unknown command {!r}".format(cmd))

    def pages(self, limit, fmt, count, skip=0):
        """
        C{count} consecutive full getEvents response bodies of C{limit} events (as text),
        from C{skip} ledgers after the oldest.
        """
        resource = self.resource
        resource.gating = False
        start = resource.ledgers.oldest + skip
        bodies = []
        params = {"startLedger": start, "pagination": {"limit": limit}}
        if fmt == "json":
            params["xdrFormat"] = "json"
        for _ in range(count):
            body = resource.answer({"jsonrpc": "2.0", "id": 1, "method": "getEvents", "params": params})
            bodies.append(body.decode("utf-8"))
            cursor = json.loads(body)["result"]["cursor"]
            params = {"pagination": {"limit": limit, "cursor": cursor}}
            if fmt == "json":
                params["xdrFormat"] = "json"
        resource.gating = True
        return bodies

    def connectionLost(self, reason):
        if self.reactor.running:
            self.reactor.stop()


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--events-per-ledger", type=float, default=100.0)
    parser.add_argument("--ledger-close-time", type=float, default=5.0)
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--seed", default="1")
    parser.add_argument("--accounts", type=int, default=0,
                        help="distinct G... accounts taking part (0: the server's default of 5)")
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    resource_ = TimedRPCResource(
        reactor,
        seed=args.seed,
        events_per_ledger=args.events_per_ledger,
        ledger_close_time=args.ledger_close_time,
        history=args.history,
        accounts=[account(i, "holder") for i in range(args.accounts)] or None,
    )
    commands = Commands(resource_, reactor)

    def listening(port):
        stdio.StandardIO(commands, reactor=reactor)
        sys.stdout.flush()
        commands.emit(event="listening", port=port, latest=resource_.ledgers.latest)

    serve(0, resource_, reactor).addCallback(listening).addErrback(lambda f: (f.printTraceback(), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
