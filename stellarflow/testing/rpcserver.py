"""A Stellar RPC test server: ``getEvents``, ``getLatestLedger`` and ``getHealth`` over JSON-RPC.

stellarflow's tests, and users trying the daemon offline, point the RPC source at this server
instead of a real stellar-rpc node::

    python -m stellarflow.testing.rpcserver --port 8000 --rate 3 --seed 1

Faithful to stellar/stellar-rpc (v23+ response shape, ``methods/get_events.go``):
  * JSON-RPC 2.0 over HTTP POST, batches included; -32700 for unparseable bodies, -32600 for
    invalid envelopes, -32601 for unknown methods; ``params`` must be an object.
  * ``getEvents``: ``startLedger`` inclusive / ``endLedger`` exclusive XOR an exclusive
    ``pagination.cursor``; every validation rule of ``GetEventsRequest.Valid`` in the same order,
    with its messages (see ``getevents.py``); the -32600 ``startLedger must be within the ledger
    range: <oldest> - <latest>`` error, also for a cursor older than retention; a scan window of
    at most 10000 ledgers ending at the latest ledger; the page cursor is the last event id
    for a full page, else the largest cursor of the window's last ledger (an empty page still
    advances); ids ``%019d-%010d`` (TOID, event index); ``xdrFormat`` base64 or json
    (stellar-xdr-json shapes via stellar_sdk's ``to_json_dict``).
  * Ledgers close every ``ledger_close_time`` seconds on the injected clock; ``retention``
    ledgers are kept; close times never change once a ledger exists.
  * Token events are CAP-67 shaped SAC events from the real SAC contract ids of the network;
    fee events sit at transaction index 0 (before all transactions), like the real ones.
  * A filter of type "diagnostic" is rejected: since v23 diagnostic events are not served.

Simplified:
  * Events are synthetic (``traffic.py``), deterministic for ``(seed, ledger)``; "system"
    events are illustrative; CAP-67 fee refunds (after all transactions) are not generated.
  * JSON decoding errors (wrong JSON types, bad cursors, bad topic XDR) are -32602 like the
    real server's, but their wording only approximates Go's ``encoding/json`` / jrpc2 text.
  * ``getLatestLedger`` omits ``headerXdr`` / ``metadataXdr``; ``getHealth`` is always healthy.
  * Recorded pages (``RecordedPages``) are served in order whatever the request asks for
    (after the request is validated).
  * Overload (-32001, -32098, HTTP 503/504), outages and node resets only happen when injected.

Pieces: ``getevents`` (request rules), ``ledgers`` (ledger model), ``traffic`` (synthetic
events), ``recorded`` (recorded pages), ``faults`` (scripted failures), this module (the
resource, ``serve`` and the command line).

Tests script failures with ``server.inject(kind, ...)`` (see ``faults.py``) and inspect
``server.requests``.
"""

import hashlib
import json
import sys

from stellar_sdk import Network, StrKey
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.protocols.policies import WrappingFactory
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from stellarflow.testing import getevents
from stellarflow.testing.faults import Fault, FaultQueue
from stellarflow.testing.getevents import RPCError
from stellarflow.testing.ledgers import (
    DEFAULT_CLOSE_TIME,
    DEFAULT_FIRST_LEDGER,
    DEFAULT_RETENTION,
    LedgerModel,
)
from stellarflow.testing.recorded import RecordedPages
from stellarflow.testing.traffic import DEFAULT_ASSETS, DEFAULT_PASSPHRASE, TrafficGenerator

log = Logger()

__all__ = [
    "LedgerModel", "Options", "RecordedPages", "RecordedRequest", "StellarRPCResource", "main",
    "resource_from_options", "serve",
]

DEFAULT_PROTOCOL_VERSION = 25
MAX_RECORDED_REQUESTS = 10000

NETWORKS = {
    "testnet": Network.TESTNET_NETWORK_PASSPHRASE,
    "pubnet": Network.PUBLIC_NETWORK_PASSPHRASE,
    "public": Network.PUBLIC_NETWORK_PASSPHRASE,
    "mainnet": Network.PUBLIC_NETWORK_PASSPHRASE,
    "futurenet": Network.FUTURENET_NETWORK_PASSPHRASE,
}


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class RecordedRequest:
    """One JSON-RPC call the server received (or an unparseable body: method None)."""

    __slots__ = ("method", "params", "id", "headers", "body", "received_at", "in_flight")

    def __init__(self, method, params, id_, headers, body, received_at, in_flight):
        self.method = method
        self.params = params
        self.id = id_
        self.headers = headers
        self.body = body
        self.received_at = received_at
        self.in_flight = in_flight

    def __repr__(self):
        return "<RecordedRequest %s %r at %s>" % (self.method, self.params, self.received_at)


class _Listener:
    """A port the resource is served on, which ``refuse`` faults close and reopen.

    Stops and starts run one after the other; each call returns its own Deferred.
    """

    def __init__(self, port, factory, reactor, endpoint):
        self.port = port
        self.factory = factory
        self.reactor = reactor
        self.endpoint = endpoint
        host = port.getHost()
        self.number = host.port
        self.interface = host.host
        self._ops = succeed(None)

    def _enqueue(self, operation):
        result = Deferred()

        def run(_):
            d = maybeDeferred(operation)
            d.addCallbacks(result.callback, result.errback)
            return d

        self._ops.addCallback(run)
        return result

    def stop(self):
        return self._enqueue(self._stop)

    def start(self):
        return self._enqueue(self._start)

    def _stop(self):
        if self.port is None:
            return None
        port, self.port = self.port, None
        return port.stopListening()

    def _start(self):
        if self.port is not None:
            return self.port
        if self.reactor is not None:
            endpoint = TCP4ServerEndpoint(self.reactor, self.number, interface=self.interface)
        else:
            endpoint = self.endpoint
        return endpoint.listen(self.factory).addCallback(self._listening)

    def _listening(self, port):
        self.port = port
        self.number = port.getHost().port
        return port


class StellarRPCResource(Resource):
    """The test server as a ``twisted.web`` resource (serves POST on any path).

    :param clock: ``IReactorTime`` driving ledgers and delays (a ``Clock`` in tests).
    :param recorded: a ``RecordedPages`` to serve instead of synthetic traffic.
    Other keyword arguments configure the ledgers (``first_ledger``, ``ledger_close_time``,
    ``retention``, ``history``) and the traffic (``seed``, ``events_per_ledger``,
    ``network_passphrase``, ``accounts``, ``assets``, ``kinds``); see ``LedgerModel`` and
    ``traffic.TrafficGenerator``.
    """

    isLeaf = True

    def __init__(self, clock, *, seed=0, events_per_ledger=3.0, ledger_close_time=DEFAULT_CLOSE_TIME,
                 first_ledger=DEFAULT_FIRST_LEDGER, retention=DEFAULT_RETENTION, history=0,
                 network_passphrase=DEFAULT_PASSPHRASE, accounts=None, assets=DEFAULT_ASSETS,
                 kinds=None, recorded=None, default_limit=getevents.DEFAULT_LIMIT,
                 max_limit=getevents.MAX_LIMIT, protocol_version=DEFAULT_PROTOCOL_VERSION,
                 include_successful=True):
        super().__init__()
        self.clock = clock
        self.seed = seed
        self.ledgers = LedgerModel(clock, first_ledger, ledger_close_time, retention, history)
        self.traffic = TrafficGenerator(
            seed=seed, events_per_ledger=events_per_ledger, passphrase=network_passphrase,
            accounts=accounts, assets=assets, kinds=kinds,
        )
        self.network_passphrase = network_passphrase
        self.recorded = recorded
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.protocol_version = protocol_version
        self.include_successful = include_successful
        self.faults = FaultQueue()
        self.requests = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._listeners = []
        self._wrappers = []
        self._accept_call = None
        self._methods = {
            "getEvents": self._get_events,
            "getLatestLedger": self._get_latest_ledger,
            "getHealth": self._get_health,
        }

    # -- scripting from tests

    def advance_ledgers(self, n=1):
        """Close ``n`` ledgers now (on top of the clock-driven ones)."""
        self.ledgers.advance(n)

    def node_reset(self, ledgers=10):
        """The node lost its history: ``ledgers`` close now, oldest becomes latest."""
        self.ledgers.reset(ledgers)
        log.info("Node reset: ledgers now {oldest} - {latest}",
                 oldest=self.ledgers.oldest, latest=self.ledgers.latest)

    def inject(self, kind, count=1, **fields):
        """Queue a fault for the next ``count`` requests; see ``faults.KINDS``."""
        return self.faults.push(Fault(kind, count=count, **fields))

    def events_in_ledger(self, ledger):
        """The synthetic events of ``ledger`` (``traffic.SyntheticEvent``), in id order."""
        return self.traffic.events(ledger, self.ledgers.close_time(ledger))

    @property
    def in_flight(self):
        return self._in_flight

    # -- serving

    def _add_listener(self, listener, wrapper):
        self._listeners.append(listener)
        self._wrappers.append(wrapper)

    def refuse_connections(self, seconds=None):
        """Stop listening and drop open connections; reopen after ``seconds`` if given."""
        for listener in self._listeners:
            listener.stop()
        self._drop_connections()
        if self._accept_call is not None and self._accept_call.active():
            self._accept_call.cancel()
        self._accept_call = None
        if seconds is not None:
            self._accept_call = self.clock.callLater(seconds, self.accept_connections)
        log.info("Refusing connections for {seconds} s", seconds=seconds)

    def accept_connections(self):
        """Listen again on the ports refuse_connections closed; Deferred when listening."""
        if self._accept_call is not None and self._accept_call.active():
            self._accept_call.cancel()
        self._accept_call = None
        starts = [listener.start() for listener in self._listeners]
        return DeferredList(starts, fireOnOneErrback=True, consumeErrors=True)

    def stop_serving(self):
        """Close every port and connection (test cleanup); Deferred when closed."""
        if self._accept_call is not None and self._accept_call.active():
            self._accept_call.cancel()
        self._accept_call = None
        self._drop_connections()
        return DeferredList([listener.stop() for listener in self._listeners])

    def _drop_connections(self):
        for wrapper in self._wrappers:
            for protocol in list(wrapper.protocols):
                if protocol.transport is not None:
                    protocol.transport.abortConnection()

    # -- HTTP

    def render_GET(self, request):
        request.setResponseCode(405)
        request.setHeader(b"allow", b"POST")
        return b""

    def render_POST(self, request):
        body = request.content.read()
        try:
            message = json.loads(body)
        except ValueError:
            message = _MALFORMED
        calls = message if isinstance(message, list) else [message]
        first = calls[0] if calls and isinstance(calls[0], dict) else {}
        method = first.get("method") if isinstance(first.get("method"), str) else None

        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        request.notifyFinish().addBoth(self._finished)
        headers = {
            k.decode("latin-1").lower(): v[-1].decode("latin-1")
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        now = self.clock.seconds()
        for call in calls:
            if isinstance(call, dict):
                self._record(RecordedRequest(call.get("method"), call.get("params"), call.get("id"),
                                             headers, body, now, self._in_flight))
            else:
                self._record(RecordedRequest(None, None, None, headers, body, now, self._in_flight))

        fault = self.faults.take(method)
        if fault is not None:
            log.info("Injecting fault {kind} into a {method} request", kind=fault.kind, method=method)
            return self._apply_fault(fault, request, message, first)
        return self._send(request, self._answer(message))

    def _record(self, entry):
        self.requests.append(entry)
        if len(self.requests) > MAX_RECORDED_REQUESTS:
            del self.requests[: len(self.requests) - MAX_RECORDED_REQUESTS]

    def _finished(self, _):
        self._in_flight -= 1

    def _send(self, request, payload):
        request.setHeader(b"content-type", b"application/json")
        return payload

    def _apply_fault(self, fault, request, message, first):
        if fault.kind in ("refuse", "disconnect"):
            if fault.kind == "refuse":
                self.refuse_connections(fault.seconds)
            request.channel.transport.abortConnection()
            return NOT_DONE_YET
        if fault.kind == "delay":
            payload = self._answer(message)
            call = self.clock.callLater(fault.seconds, self._send_later, request, payload)
            request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
            return NOT_DONE_YET
        if fault.kind == "http_status":
            request.setResponseCode(fault.status)
            request.defaultContentType = None
            return b""
        if fault.kind == "garbage":
            request.setHeader(b"content-type", b"text/html")
            return fault.body
        if fault.kind == "rpc_error":
            error = RPCError(fault.code, fault.message or self._default_message(fault.code, first))
            return self._send(request, self._error(first.get("id"), error))
        if fault.kind == "node_reset":
            self.node_reset(fault.ledgers)
            return self._send(request, self._answer(message))
        raise AssertionError(fault.kind)

    def _send_later(self, request, payload):
        if request.finished:
            return
        request.write(self._send(request, payload))
        request.finish()

    def _default_message(self, code, call):
        if code == getevents.PROCESSING_LIMIT:
            return "request exceeded processing limit threshold"
        if code == getevents.SYSTEM_ERROR:
            return "rpc queue for %s surpassed queue limit of 10 requests" % (call.get("method"),)
        if code == getevents.INVALID_REQUEST:
            return "startLedger must be within the ledger range: %d - %d" % (
                self.ledgers.oldest, self.ledgers.latest)
        return "injected error"

    # -- JSON-RPC

    def _answer(self, message):
        if message is _MALFORMED:
            return self._error(None, RPCError(getevents.PARSE_ERROR, "parse error: invalid JSON"))
        if isinstance(message, list):
            if not message:
                return self._error(None, RPCError(getevents.INVALID_REQUEST, "empty request batch"))
            return b"[" + b",".join(self._call(m) for m in message) + b"]"
        return self._call(message)

    def _call(self, message):
        if not isinstance(message, dict):
            return self._error(None, RPCError(getevents.INVALID_REQUEST, "invalid request object"))
        id_ = message.get("id")
        if message.get("jsonrpc") != "2.0":
            return self._error(id_, RPCError(getevents.INVALID_REQUEST, "invalid version marker"))
        method = message.get("method")
        if not isinstance(method, str):
            return self._error(id_, RPCError(getevents.INVALID_REQUEST, "invalid request: missing method"))
        handler = self._methods.get(method)
        if handler is None:
            return self._error(id_, RPCError(getevents.METHOD_NOT_FOUND, 'no such method "%s"' % (method,)))
        try:
            result = handler(message.get("params"))
        except RPCError as e:
            log.debug("{method} error {code}: {message}", method=method, code=e.code, message=e.message)
            return self._error(id_, e)
        return b'{"jsonrpc":"2.0","id":' + _dumps(id_) + b',"result":' + result + b"}"

    @staticmethod
    def _error(id_, error):
        return _dumps({"jsonrpc": "2.0", "id": id_, "error": error.to_json()})

    def _get_events(self, params):
        request = getevents.parse_request(params, self.max_limit)
        if self.recorded is not None:
            return _dumps(self.recorded.next_result())
        ledgers = self.ledgers
        latest, oldest = ledgers.latest, ledgers.oldest
        if request.cursor is not None:
            c = request.cursor
            # Exclusive cursor: the event index is incremented (uint32, as in Go).
            start = (c[0], c[1], c[2], (c[3] + 1) & getevents.EVENT_MAX)
        else:
            start = (request.start_ledger, 0, 0, 0)
        limit = request.limit or self.default_limit
        end_ledger = min(start[0] + getevents.LEDGER_SCAN_LIMIT, latest + 1)
        if request.end_ledger:
            end_ledger = min(request.end_ledger, end_ledger)
        if start[0] < oldest or start[0] > latest:
            raise RPCError(
                getevents.INVALID_REQUEST,
                "startLedger must be within the ledger range: %d - %d" % (oldest, latest),
            )
        found = []
        for ledger in range(start[0], end_ledger):
            for event in self.events_in_ledger(ledger):
                if event.key >= start and request.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        break
            if len(found) == limit:
                break
        if len(found) == limit:
            cursor = found[-1].id
        else:
            cursor = getevents.max_cursor((end_ledger - 1) & 0xFFFFFFFF)
        fmt = request.xdr_format
        events = b",".join(e.encoded(fmt, self.include_successful, _dumps) for e in found)
        rest = _dumps({
            "cursor": cursor,
            "latestLedger": latest,
            "oldestLedger": oldest,
            "latestLedgerCloseTime": str(ledgers.close_time(latest)),
            "oldestLedgerCloseTime": str(ledgers.close_time(oldest)),
        })
        log.debug("getEvents {start} -> {count} events, cursor {cursor}",
                  start=start, count=len(found), cursor=cursor)
        return b'{"events":[' + events + b"]," + rest[1:]

    def _ledger_view(self):
        if self.recorded is not None:
            return self.recorded.ledgers()
        latest, oldest = self.ledgers.latest, self.ledgers.oldest
        return latest, oldest, self.ledgers.close_time(latest), self.ledgers.close_time(oldest)

    def _get_latest_ledger(self, params):
        latest, _, close_time, _ = self._ledger_view()
        return _dumps({
            "id": hashlib.sha256(("stellarflow-rpc/%s/ledger/%d" % (self.seed, latest)).encode()).hexdigest(),
            "protocolVersion": self.protocol_version,
            "sequence": latest,
            "closeTime": str(close_time),
        })

    def _get_health(self, params):
        latest, oldest, close_time, _ = self._ledger_view()
        return _dumps({
            "status": "healthy",
            "latestLedger": latest,
            "latestLedgerCloseTime": close_time,
            "oldestLedger": oldest,
            "ledgerRetentionWindow": self.ledgers.retention,
        })


_MALFORMED = object()


def serve(endpoint_or_port, resource, reactor=None, interface="127.0.0.1"):
    """Serve ``resource`` over HTTP; Deferred firing with the port number.

    ``endpoint_or_port``: a port number (0 picks a free one; needs ``reactor``), an endpoint
    description string (needs ``reactor``) or an ``IStreamServerEndpoint``. With a reactor,
    ``refuse`` faults reopen the same port number.
    """
    site = Site(resource)
    wrapper = WrappingFactory(site)
    if isinstance(endpoint_or_port, int):
        if reactor is None:
            raise TypeError("serve() needs a reactor to listen on a port number")
        endpoint = TCP4ServerEndpoint(reactor, endpoint_or_port, interface=interface)
    elif isinstance(endpoint_or_port, str):
        if reactor is None:
            raise TypeError("serve() needs a reactor to parse an endpoint description")
        endpoint = serverFromString(reactor, endpoint_or_port)
    else:
        endpoint = endpoint_or_port

    def listening(port):
        listener = _Listener(port, wrapper, reactor, endpoint)
        resource._add_listener(listener, wrapper)
        return listener.number

    return endpoint.listen(wrapper).addCallback(listening)


def _passphrase(network):
    return NETWORKS.get(network.lower(), network)


class Options(usage.Options):
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
    ]

    optFlags = [["verbose", "v", "Log every getEvents answer (debug level)."]]

    def __init__(self):
        super().__init__()
        self["assets"] = []
        self["recorded"] = []

    def opt_asset(self, value):
        """An asset as "native" or "CODE:ISSUER" (repeatable; default: native and USDC)."""
        self["assets"].append(value)

    def opt_recorded(self, path):
        """Serve this recorded getEvents result file (repeatable; in order)."""
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


def resource_from_options(options, clock):
    """A StellarRPCResource configured from parsed ``Options``."""
    recorded = RecordedPages.from_files(options["recorded"]) if options["recorded"] else None
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
    )


def main(argv=None, reactor=None):
    """Run the server until interrupted; returns the process exit status."""
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
    resource = resource_from_options(options, reactor)
    status = []

    def listening(port):
        log.info(
            "Stellar RPC test server on http://{interface}:{port}/ "
            "(network {network!r}, ledgers {oldest} - {latest})",
            interface=options["interface"], port=port, network=options["passphrase"],
            oldest=resource.ledgers.oldest, latest=resource.ledgers.latest,
        )

    def failed(failure):
        log.failure("Could not listen on port {port}", failure, port=options["port"])
        status.append(1)
        reactor.stop()

    serve(options["port"], resource, reactor, interface=options["interface"]).addCallbacks(listening, failed)
    reactor.run()
    return status[0] if status else 0


if __name__ == "__main__":
    raise SystemExit(main())
