"""
The test Stellar RPC server as a C{twisted.web} resource: JSON-RPC 2.0 over HTTP POST.

It answers ``getEvents`` (by the rules of L{stellarflow.testing.getevents}, from the ledgers of
a L{LedgerModel} and the synthetic events of a L{TrafficGenerator}, or from L{RecordedPages}),
``getLedgers`` (by the rules of L{stellarflow.testing.getledgers}, whole ledgers of a
L{LedgerChain}: synthetic classic traffic or recorded ledgers), ``getLatestLedger``,
``getHealth`` and ``getNetwork``; it records every request and applies the scripted
failures of L{stellarflow.testing.faults}.  L{stellarflow.testing.listening.serve} puts it on a
port; L{stellarflow.testing.rpcserver} describes what it does like the real server and what it
simplifies.
"""

import hashlib
import json

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from stellarflow import positions
from stellarflow.testing import getevents, getledgers
from stellarflow.testing.faults import Fault, FaultQueue
from stellarflow.testing.getevents import RPCError
from stellarflow.testing.ledgerchain import ZERO, LedgerChain
from stellarflow.testing.ledgers import (
    DEFAULT_CLOSE_TIME,
    DEFAULT_FIRST_LEDGER,
    DEFAULT_RETENTION,
    LedgerModel,
)
from stellarflow.testing.listening import Listeners
from stellarflow.testing.traffic import DEFAULT_ASSETS, DEFAULT_PASSPHRASE, TrafficGenerator

log = Logger()

DEFAULT_PROTOCOL_VERSION = 25
MAX_RECORDED_REQUESTS = 10000

_MALFORMED = object()


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class RecordedRequest:
    """
    One JSON-RPC call the server received (or an unparseable body: C{method} C{None}).
    """

    __slots__ = ("method", "params", "id", "headers", "body", "receivedAt", "inFlight")

    def __init__(self, method, params, id_, headers, body, receivedAt, inFlight):
        self.method = method
        self.params = params
        self.id = id_
        self.headers = headers
        self.body = body
        self.receivedAt = receivedAt
        self.inFlight = inFlight

    def __repr__(self):
        return "<RecordedRequest %s %r at %s>" % (self.method, self.params, self.receivedAt)


class StellarRPCResource(Resource):
    """
    The test server as a C{twisted.web} resource (serves POST on any path).

    @param clock: C{IReactorTime} driving ledgers and delays (a C{Clock} in tests).
    @param recorded: a L{RecordedPages} to serve instead of synthetic traffic.

    Other keyword arguments configure the ledgers (C{first_ledger}, C{ledger_close_time},
    C{retention}, C{history}; see L{LedgerModel}) and the traffic (C{seed},
    C{events_per_ledger}, C{network_passphrase}, C{accounts}, C{assets}, C{kinds}; see
    L{TrafficGenerator}).  getLedgers serves a L{LedgerChain} from C{first_ledger}: synthetic
    classic traffic of C{ledger_transactions} transactions per ledger, or the recorded
    C{LedgerCloseMeta} bytes of C{ledger_templates} in turn; C{previous_hash} (hex) is the hash
    before C{first_ledger} (to continue a recorded chain).

    Subclasses may override the method handlers (L{getEvents}, L{getLatestLedger},
    L{getHealth}) and L{eventsInLedger}.
    """

    isLeaf = True

    def __init__(self, clock, *, seed=0, events_per_ledger=3.0, ledger_close_time=DEFAULT_CLOSE_TIME,
                 first_ledger=DEFAULT_FIRST_LEDGER, retention=DEFAULT_RETENTION, history=0,
                 network_passphrase=DEFAULT_PASSPHRASE, accounts=None, assets=DEFAULT_ASSETS,
                 kinds=None, recorded=None, default_limit=getevents.DEFAULT_LIMIT,
                 max_limit=getevents.MAX_LIMIT, protocol_version=DEFAULT_PROTOCOL_VERSION,
                 include_successful=True, ledger_transactions=8, ledger_templates=None, previous_hash=None,
                 ledger_default_limit=getledgers.DEFAULT_LIMIT, ledger_max_limit=getledgers.MAX_LIMIT):
        super().__init__()
        self.clock = clock
        self.seed = seed
        self.ledgers = LedgerModel(clock, first_ledger, ledger_close_time, retention, history)
        self.traffic = TrafficGenerator(
            seed=seed, events_per_ledger=events_per_ledger, passphrase=network_passphrase,
            accounts=accounts, assets=assets, kinds=kinds,
        )
        self.network_passphrase = network_passphrase
        self.chain = LedgerChain(
            first_ledger, self.ledgers.closeTime, network_passphrase, seed=seed, templates=ledger_templates,
            transactions=ledger_transactions, previousHash=bytes.fromhex(previous_hash) if previous_hash else ZERO)
        self.ledger_default_limit = ledger_default_limit
        self.ledger_max_limit = ledger_max_limit
        self.recorded = recorded
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.protocol_version = protocol_version
        self.include_successful = include_successful
        self.faults = FaultQueue()
        self.listeners = Listeners()
        self.requests = []
        self.maxInFlight = 0
        self._inFlight = 0
        self._acceptCall = None
        self._methods = {
            "getEvents": self.getEvents,
            "getLatestLedger": self.getLatestLedger,
            "getHealth": self.getHealth,
            "getLedgers": self.getLedgers,
            "getNetwork": self.getNetwork,
        }

    # -- scripting from tests

    def advanceLedgers(self, n=1):
        """
        Close C{n} ledgers now (on top of the clock-driven ones).
        """
        self.ledgers.advance(n)

    def nodeReset(self, ledgers=10):
        """
        The node lost its history: C{ledgers} close now, the oldest becomes the latest.
        """
        self.ledgers.reset(ledgers)
        log.info("Node reset: ledgers now {oldest} - {latest}",
                 oldest=self.ledgers.oldest, latest=self.ledgers.latest)

    def inject(self, kind, count=1, **fields):
        """
        Queue a fault for the next C{count} requests; see L{stellarflow.testing.faults.KINDS}.
        """
        return self.faults.push(Fault(kind, count=count, **fields))

    def eventsInLedger(self, ledger):
        """
        The synthetic events of C{ledger} (L{stellarflow.testing.traffic.SyntheticEvent}s), in
        id order.
        """
        return self.traffic.events(ledger, self.ledgers.closeTime(ledger))

    @property
    def inFlight(self):
        """
        How many requests are being answered now.
        """
        return self._inFlight

    # -- serving

    def refuseConnections(self, seconds=None):
        """
        Stop listening and drop open connections; listen again after C{seconds} if given.
        """
        self.listeners.stop()
        self.listeners.dropConnections()
        self._cancelAccept()
        if seconds is not None:
            self._acceptCall = self.clock.callLater(seconds, self.acceptConnections)
        log.info("Refusing connections for {seconds} s", seconds=seconds)

    def acceptConnections(self):
        """
        Listen again on the ports L{refuseConnections} closed; a Deferred that fires when
        listening.
        """
        self._cancelAccept()
        return self.listeners.start()

    def stopServing(self):
        """
        Close every port and connection (test cleanup); a Deferred that fires when closed.
        """
        self._cancelAccept()
        self.listeners.dropConnections()
        return self.listeners.stop()

    def _cancelAccept(self):
        if self._acceptCall is not None and self._acceptCall.active():
            self._acceptCall.cancel()
        self._acceptCall = None

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

        self._inFlight += 1
        self.maxInFlight = max(self.maxInFlight, self._inFlight)
        request.notifyFinish().addBoth(self._finished)
        headers = {
            k.decode("latin-1").lower(): v[-1].decode("latin-1")
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        now = self.clock.seconds()
        for call in calls:
            if isinstance(call, dict):
                self._record(RecordedRequest(call.get("method"), call.get("params"), call.get("id"),
                                             headers, body, now, self._inFlight))
            else:
                self._record(RecordedRequest(None, None, None, headers, body, now, self._inFlight))

        fault = self.faults.take(method)
        if fault is not None:
            log.info("Injecting fault {kind} into a {method} request", kind=fault.kind, method=method)
            return self._applyFault(fault, request, message, first)
        return self._send(request, self.answer(message))

    def _record(self, entry):
        self.requests.append(entry)
        if len(self.requests) > MAX_RECORDED_REQUESTS:
            del self.requests[: len(self.requests) - MAX_RECORDED_REQUESTS]

    def _finished(self, _):
        self._inFlight -= 1

    def _send(self, request, payload):
        request.setHeader(b"content-type", b"application/json")
        return payload

    def _applyFault(self, fault, request, message, first):
        if fault.kind in ("refuse", "disconnect"):
            if fault.kind == "refuse":
                self.refuseConnections(fault.seconds)
            request.channel.transport.abortConnection()
            return NOT_DONE_YET
        if fault.kind == "delay":
            payload = self.answer(message)
            call = self.clock.callLater(fault.seconds, self._sendLater, request, payload)
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
            error = RPCError(fault.code, fault.message or self._defaultMessage(fault.code, first))
            return self._send(request, self._error(first.get("id"), error))
        if fault.kind == "node_reset":
            self.nodeReset(fault.ledgers)
            return self._send(request, self.answer(message))
        raise AssertionError(fault.kind)

    def _sendLater(self, request, payload):
        if request.finished:
            return
        request.write(self._send(request, payload))
        request.finish()

    def _defaultMessage(self, code, call):
        if code == getevents.PROCESSING_LIMIT:
            return "request exceeded processing limit threshold"
        if code == getevents.SYSTEM_ERROR:
            return "rpc queue for %s surpassed queue limit of 10 requests" % (call.get("method"),)
        if code == getevents.INVALID_REQUEST:
            return "startLedger must be within the ledger range: %d - %d" % (
                self.ledgers.oldest, self.ledgers.latest)
        return "injected error"

    # -- JSON-RPC

    def answer(self, message):
        """
        The response body (bytes) to a decoded JSON-RPC request or batch, as if it came over
        HTTP without a fault.
        """
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
        return _dumps({"jsonrpc": "2.0", "id": id_, "error": error.toJSON()})

    def getEvents(self, params):
        """
        The ``getEvents`` result (JSON bytes) for C{params}; raise L{RPCError} for a request
        the real server rejects.
        """
        request = getevents.parseRequest(params, self.max_limit)
        if self.recorded is not None:
            return _dumps(self.recorded.nextResult())
        ledgers = self.ledgers
        latest, oldest = ledgers.latest, ledgers.oldest
        if request.cursor is not None:
            c = request.cursor
            # Exclusive cursor: the event index is incremented (uint32, as in Go).
            start = (c[0], c[1], c[2], (c[3] + 1) & positions.MAX_INDEX)
        else:
            start = (request.start_ledger, 0, 0, 0)
        limit = request.limit or self.default_limit
        endLedger = min(start[0] + getevents.LEDGER_SCAN_LIMIT, latest + 1)
        if request.end_ledger:
            endLedger = min(request.end_ledger, endLedger)
        if start[0] < oldest or start[0] > latest:
            raise RPCError(
                getevents.INVALID_REQUEST,
                "startLedger must be within the ledger range: %d - %d" % (oldest, latest),
            )
        found = []
        for ledger in range(start[0], endLedger):
            for event in self.eventsInLedger(ledger):
                if event.key >= start and request.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        break
            if len(found) == limit:
                break
        if len(found) == limit:
            cursor = found[-1].id
        else:
            cursor = positions.ledgerEnd((endLedger - 1) & positions.MAX_LEDGER)
        fmt = request.xdr_format
        events = b",".join(e.encoded(fmt, self.include_successful, _dumps) for e in found)
        rest = _dumps({
            "cursor": cursor,
            "latestLedger": latest,
            "oldestLedger": oldest,
            "latestLedgerCloseTime": str(ledgers.closeTime(latest)),
            "oldestLedgerCloseTime": str(ledgers.closeTime(oldest)),
        })
        log.debug("getEvents {start} -> {count} events, cursor {cursor}",
                  start=start, count=len(found), cursor=cursor)
        return b'{"events":[' + events + b"]," + rest[1:]

    def getLedgers(self, params):
        """
        The ``getLedgers`` result (JSON bytes) for C{params}; raise L{RPCError} as the real
        server does (at the tip too: there is no empty page).
        """
        request = getledgers.parseLedgersRequest(params)
        if request.xdr_format == "json":
            raise RPCError(getevents.INVALID_PARAMS, "the test server does not serve xdrFormat json for getLedgers")
        ledgers = self.ledgers
        latest, oldest = ledgers.latest, ledgers.oldest
        first, last = getledgers.ledgerRange(request, oldest, latest, self.ledger_max_limit,
                                             self.ledger_default_limit)
        served = [self.chain.record(n) for n in range(first, last + 1) if n not in self.chain.omitted]
        if served:
            cursor = str(served[-1]["sequence"])
        else:
            cursor = request.cursor if request.cursor is not None else str(first - 1)
        log.debug("getLedgers {first}-{last} ({count} ledgers)", first=first, last=last, count=len(served))
        records = b",".join(_dumps(r) for r in served)
        rest = _dumps({
            "latestLedger": latest,
            "latestLedgerCloseTime": ledgers.closeTime(latest),
            "oldestLedger": oldest,
            "oldestLedgerCloseTime": ledgers.closeTime(oldest),
            "cursor": cursor,
        })
        return b'{"ledgers":[' + records + b"]," + rest[1:]

    def getNetwork(self, params):
        """
        The ``getNetwork`` result (JSON bytes).
        """
        return _dumps({
            "friendbotUrl": "",
            "passphrase": self.network_passphrase,
            "protocolVersion": self.protocol_version,
        })

    def _ledgerView(self):
        if self.recorded is not None:
            return self.recorded.ledgers()
        latest, oldest = self.ledgers.latest, self.ledgers.oldest
        return latest, oldest, self.ledgers.closeTime(latest), self.ledgers.closeTime(oldest)

    def getLatestLedger(self, params):
        """
        The ``getLatestLedger`` result (JSON bytes).
        """
        latest, _, closeTime, _ = self._ledgerView()
        return _dumps({
            "id": hashlib.sha256(("stellarflow-rpc/%s/ledger/%d" % (self.seed, latest)).encode()).hexdigest(),
            "protocolVersion": self.protocol_version,
            "sequence": latest,
            "closeTime": str(closeTime),
        })

    def getHealth(self, params):
        """
        The ``getHealth`` result (JSON bytes): always healthy.
        """
        latest, oldest, closeTime, _ = self._ledgerView()
        return _dumps({
            "status": "healthy",
            "latestLedger": latest,
            "latestLedgerCloseTime": closeTime,
            "oldestLedger": oldest,
            "ledgerRetentionWindow": self.ledgers.retention,
        })
