"""
The Stellar RPC test server serving pubnet-size ledgers, as a load-generator process for
L{benchmarks.ledgers}.

    python -m benchmarks.ledgerload [--history 400] [--ledger-close-time 1000]

Its getLedgers chain reuses two real ledgers in turn, re-sequenced into one hash chain
(L{stellarflow.testing.ledgerchain}): pubnet 53312000 (372 KB of XDR, 163 transactions,
protocol 21) and mainnet 63800108's 50 recorded transactions (274 KB, protocol 27, CAP-67
events).  It prints ``{"event": "listening", "port", "first", "latest"}``, then answers
``{"cmd": "answers"}`` with ``[[time.time(), [sequences]], ...]``: when each getLedgers answer
that carried ledgers was produced.
"""

import argparse
import json
import sys
import time

from twisted.internet import stdio
from twisted.protocols.basic import LineReceiver

from stellarflow.events.network import PUBLIC
from stellarflow.testing.rpcserver import StellarRPCResource, serve

FIRST_LEDGER = 60000000


def templates():
    from stellarflow.testing.ledgerfiles import corpusLedger, fixtureLedgers

    (pubnet,) = fixtureLedgers("galexie-pubnet-53312000.xdr.zstd")
    return [pubnet.to_xdr_bytes(), corpusLedger().to_xdr_bytes()]


class TimedLedgers(StellarRPCResource):
    def __init__(self, clock, **kw):
        StellarRPCResource.__init__(self, clock, **kw)
        self.answers = []

    def getLedgers(self, params):
        body = StellarRPCResource.getLedgers(self, params)
        head = body[:200000]
        if not head.startswith(b'{"ledgers":[]'):
            sequences = [r["sequence"] for r in json.loads(body)["ledgers"]]
            self.answers.append((time.time(), sequences))
        return body


class Commands(LineReceiver):
    delimiter = b"\n"

    def __init__(self, resource, reactor):
        self.resource = resource
        self.reactor = reactor

    def emit(self, **message):
        self.transport.write(json.dumps(message).encode("utf-8") + b"\n")

    def lineReceived(self, line):
        command = json.loads(line) if line.strip() else {}
        if command.get("cmd") == "answers":
            self.emit(event="answers", answers=self.resource.answers)
        elif command:
            self.emit(event="error", error="unknown command {!r}".format(command.get("cmd")))

    def connectionLost(self, reason):
        if self.reactor.running:
            self.reactor.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--history", type=int, default=400)
    parser.add_argument("--ledger-close-time", type=float, default=1000.0)
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    resource = TimedLedgers(reactor, first_ledger=FIRST_LEDGER, history=args.history,
                            ledger_close_time=args.ledger_close_time, network_passphrase=PUBLIC,
                            ledger_templates=templates())
    resource.chain.hash(resource.ledgers.latest)  # the chain's hashes, before any request
    commands = Commands(resource, reactor)

    def listening(port):
        stdio.StandardIO(commands, reactor=reactor)
        sys.stdout.flush()
        commands.emit(event="listening", port=port, first=FIRST_LEDGER, latest=resource.ledgers.latest)

    serve(0, resource, reactor).addCallback(listening).addErrback(lambda f: (f.printTraceback(), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
