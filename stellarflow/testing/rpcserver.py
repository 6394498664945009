"""
A Stellar RPC test server: C{getEvents}, C{getLedgers}, C{getLatestLedger}, C{getHealth} and
C{getNetwork} over JSON-RPC.

stellarflow's tests, and users trying the daemon offline, point the RPC source at this server
instead of a real stellar-rpc node::

    python -m stellarflow.testing.rpcserver --port 8000 --rate 3 --seed 1

It exits with status 1 when it cannot listen (the port is taken, the interface is not local),
2 for bad options.

Faithful to stellar/stellar-rpc (v23+ response shape, C{methods/get_events.go}):
  - JSON-RPC 2.0 over HTTP POST, batches included; -32700 for unparseable bodies, -32600 for
    invalid envelopes, -32601 for unknown methods; C{params} must be an object.
  - C{getEvents}: C{startLedger} inclusive / C{endLedger} exclusive XOR an exclusive
    C{pagination.cursor}; every validation rule of C{GetEventsRequest.Valid} in the same order,
    with its messages (see L{getevents}); the -32600 C{startLedger must be within the ledger
    range: <oldest> - <latest>} error, also for a cursor older than retention; a scan window of
    at most 10000 ledgers ending at the latest ledger; the page cursor is the last event id
    for a full page, else the largest cursor of the window's last ledger (an empty page still
    advances); ids C{%019d-%010d} (TOID, event index); C{xdrFormat} base64 or json
    (stellar-xdr-json shapes via stellar_sdk's C{to_json_dict}).
  - Ledgers close every C{ledger_close_time} seconds on the injected clock; C{retention}
    ledgers are kept; close times never change once a ledger exists.
  - Token events are CAP-67 shaped SAC events from the real SAC contract ids of the network;
    fee events sit at transaction index 0 (before all transactions), like the real ones.
  - A filter of type "diagnostic" is rejected: since v23 diagnostic events are not served.

  - C{getLedgers}: by the rules of L{getledgers} (stellar-rpc's C{methods/get_ledgers.go}):
    C{startLedger} inclusive or a C{pagination.cursor} (resumes at cursor + 1), limit default 50
    and at most 200, the tip answered with an error (-32600 for C{startLedger} = latest + 1,
    -32602 for a cursor at latest) with the real messages; ledgers from L{ledgerchain}, chained
    by hash, of synthetic classic traffic (L{ledgertraffic}) or recorded ledgers.

Simplified:
  - Events are synthetic (L{traffic}), deterministic for C{(seed, ledger)}; "system" events
    are illustrative; CAP-67 fee refunds (after all transactions) are not generated.
  - JSON decoding errors (wrong JSON types, bad cursors, bad topic XDR) are -32602 like the
    real server's, but their wording only approximates Go's C{encoding/json} / jrpc2 text.
  - C{getLatestLedger} omits C{headerXdr} / C{metadataXdr}; C{getHealth} is always healthy.
  - Recorded pages (L{RecordedPages}) are served in order whatever the request asks for
    (after the request is validated).
  - Overload (-32001, -32098, HTTP 503/504), outages and node resets only happen when injected.

Pieces, one role each: L{getevents} (request rules), L{ledgers} (ledger model), L{traffic}
(synthetic events), L{recorded} (recorded pages), L{faults} (scripted failures), L{rpcresource}
(the resource: JSON-RPC, requests, faults), L{listening} (L{serve}, ports that close and
reopen) and this module (the command line; it also exports the names tests use).

Tests script failures with C{server.inject(kind, ...)} (see L{faults}) and inspect
C{server.requests}.
"""

import sys

from stellar_sdk import StrKey
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python import usage

from stellarflow.events import network
from stellarflow.testing.ledgers import DEFAULT_CLOSE_TIME, DEFAULT_FIRST_LEDGER, DEFAULT_RETENTION, LedgerModel
from stellarflow.testing.listening import serve
from stellarflow.testing.recorded import RecordedPages
from stellarflow.testing.rpcresource import RecordedRequest, StellarRPCResource
from stellarflow.testing.traffic import DEFAULT_ASSETS

log = Logger()

__all__ = [
    "LedgerModel", "Options", "RecordedPages", "RecordedRequest", "StellarRPCResource", "main",
    "resourceFromOptions", "serve",
]


def _passphrase(name):
    """
    The passphrase of a network name (L{stellarflow.events.network.NAMES}), else C{name} itself.
    """
    return network.NAMES.get(name.lower(), name)


class Options(usage.Options):
    """
    The command line of the test server; L{resourceFromOptions} builds the resource from it.
    """

    synopsis = "python -m stellarflow.testing.rpcserver [options]"
    longdesc = "Serve a synthetic (or recorded) Stellar RPC getEvents feed for testing stellarflow."

    optParameters = [
        ["port", "p", 8000, "TCP port to listen on (0 picks a free one).", int],
        ["interface", None, "127.0.0.1", "Interface to listen on."],
        ["rate", "r", 3.0, "Mean events per ledger (fractions allowed).", float],
        ["seed", "s", "0", "Seed of the synthetic traffic."],
        ["ledger-close-time", None, DEFAULT_CLOSE_TIME, "Seconds between ledgers.", float],
        ["first-ledger", None, DEFAULT_FIRST_LEDGER, "Sequence of the first ledger.", int],
        ["retention", None, DEFAULT_RETENTION,
         "Ledgers kept (oldestLedger = latest - retention + 1).", int],
        ["history", None, 720, "Ledgers already closed when the server starts.", int],
        ["network", "n", "testnet", "testnet, pubnet, futurenet or a network passphrase."],
        ["accounts", None, None, "Comma-separated G... accounts (default: 5 derived from the seed)."],
        ["ledger-transactions", None, 8, "Synthetic classic transactions per ledger served by getLedgers.", int],
    ]

    optFlags = [["verbose", "v", "Log every getEvents answer (debug level)."]]

    def __init__(self):
        super().__init__()
        self["assets"] = []
        self["recorded"] = []

    def opt_asset(self, value):
        """
        An asset as "native" or "CODE:ISSUER" (repeatable; default: native and USDC).
        """
        self["assets"].append(value)

    def opt_recorded(self, path):
        """
        Serve this recorded getEvents result file (repeatable; in order).
        """
        self["recorded"].append(path)

    def postOptions(self):
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError("--port must be 0-65535, got %r" % (self["port"],))
        if self["rate"] < 0:
            raise usage.UsageError("--rate must be >= 0, got %r" % (self["rate"],))
        if self["ledger-close-time"] <= 0:
            raise usage.UsageError("--ledger-close-time must be > 0, got %r" % (self["ledger-close-time"],))
        if self["retention"] < 1:
            raise usage.UsageError("--retention must be >= 1, got %r" % (self["retention"],))
        if self["first-ledger"] < 1 or self["history"] < 0:
            raise usage.UsageError("--first-ledger must be >= 1 and --history >= 0")
        self["passphrase"] = _passphrase(self["network"])
        if self["accounts"]:
            accounts = [a.strip() for a in self["accounts"].split(",") if a.strip()]
            for account in accounts:
                if not StrKey.is_valid_ed25519_public_key(account):
                    raise usage.UsageError("--accounts: %r is not a G... account" % (account,))
            self["accounts"] = accounts
        for asset in self["assets"]:
            code, sep, issuer = asset.partition(":")
            if asset != "native" and not (sep and code and StrKey.is_valid_ed25519_public_key(issuer)):
                raise usage.UsageError("--asset: %r is neither native nor CODE:ISSUER" % (asset,))


def resourceFromOptions(options, clock):
    """
    A L{StellarRPCResource} configured from parsed L{Options}.
    """
    recorded = RecordedPages.fromFiles(options["recorded"]) if options["recorded"] else None
    return StellarRPCResource(
        clock,
        seed=options["seed"],
        events_per_ledger=options["rate"],
        ledger_close_time=options["ledger-close-time"],
        first_ledger=options["first-ledger"],
        retention=options["retention"],
        history=options["history"],
        network_passphrase=options["passphrase"],
        accounts=options["accounts"] or None,
        assets=options["assets"] or DEFAULT_ASSETS,
        recorded=recorded,
        ledger_transactions=options["ledger-transactions"],
    )


def main(argv=None, reactor=None):
    """
    Run the server until interrupted; returns the process exit status: 0 after a normal stop,
    1 when it could not listen, 2 for bad options.
    """
    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        sys.stderr.write("%s\n%s: error: %s\n" % (options, sys.argv[0], e))
        return 2
    if reactor is None:
        from twisted.internet import reactor
    level = LogLevel.debug if options["verbose"] else LogLevel.info
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stdout), [LogLevelFilterPredicate(defaultLogLevel=level)])
    globalLogBeginner.beginLoggingTo([observer])
    resource = resourceFromOptions(options, reactor)
    status = []

    def listening(port):
        log.info(
            "Stellar RPC test server on http://{interface}:{port}/ "
            "(network {network!r}, ledgers {oldest} - {latest})",
            interface=options["interface"], port=port, network=options["passphrase"],
            oldest=resource.ledgers.oldest, latest=resource.ledgers.latest,
        )

    def failed(failure):
        log.error("Stellar RPC test server could not start: {error}", error=failure.getErrorMessage())
        status.append(1)
        reactor.stop()

    def start():
        # Once the reactor runs: a listen that fails at once can then stop it.
        serve(options["port"], resource, reactor, interface=options["interface"]).addCallbacks(listening, failed)

    reactor.callWhenRunning(start)
    reactor.run()
    return status[0] if status else 0


if __name__ == "__main__":
    raise SystemExit(main())
