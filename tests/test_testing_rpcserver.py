"""Tests for stellarflow.testing.rpcserver: the Stellar RPC test server."""

import json
import os
import re
import socket
import subprocess
import sys

import treq
from stellar_sdk import Asset, Network, StrKey, scval, xdr
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.error import ConnectError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import HTTPConnectionPool, ResponseNeverReceived
from twisted.web.resource import IResource
from zope.interface.verify import verifyObject

from stellarflow import positions
from stellarflow.testing.faults import Fault, FaultQueue
from stellarflow.testing.fixtures import fixturePath
from stellarflow.testing.getevents import parseCursor
from stellarflow.testing.rpcserver import (
    LedgerModel,
    Options,
    RecordedPages,
    StellarRPCResource,
    resourceFromOptions,
    serve,
)
from stellarflow.testing.traffic import rfc3339

URL = "http://rpc.test/"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = 1_750_000_000
ID_RE = re.compile(r"^\d{19}-\d{10}$")
PUBNET_USDC_SAC = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
PUBNET_NATIVE_SAC = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA"
TRANSFER = scval.to_symbol("transfer").to_xdr()
FEE = scval.to_symbol("fee").to_xdr()


def makeServer(clock=None, **kw):
    """A server whose latest ledger is 1100 and oldest 1000, 4 events in every ledger."""
    if clock is None:
        clock = Clock()
        clock.advance(T0)
    settings = dict(seed=7, events_per_ledger=4, retention=200, history=100, first_ledger=1000,
                    ledger_close_time=5)
    settings.update(kw)
    return StellarRPCResource(clock, **settings)


def envelope(method, params=None, id_=1):
    body = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        body["params"] = params
    return json.dumps(body).encode("utf-8")


class RPCTestMixin:
    """Synchronous JSON-RPC calls through StubTreq."""

    def stub(self, server):
        return StubTreq(server)

    def post(self, stub, data, headers=None):
        response = self.successResultOf(stub.post(URL, data=data, headers=headers or {}))
        return response.code, self.successResultOf(stub.content(response))

    def call(self, stub, method, params=None, headers=None):
        code, body = self.post(stub, envelope(method, params), headers)
        self.assertEqual(code, 200)
        return json.loads(body)

    def result(self, stub, method, params=None, headers=None):
        reply = self.call(stub, method, params, headers)
        self.assertNotIn("error", reply, reply)
        self.assertEqual(reply["jsonrpc"], "2.0")
        return reply["result"]

    def error(self, stub, method, params=None):
        reply = self.call(stub, method, params)
        self.assertNotIn("result", reply, reply)
        return reply["error"]["code"], reply["error"]["message"]


class LedgerModelTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(T0)

    def test_latestFollowsTheClock(self):
        model = LedgerModel(self.clock, first_ledger=1000, close_time=5)
        self.assertEqual((model.oldest, model.latest), (1000, 1000))
        self.clock.advance(4.9)
        self.assertEqual(model.latest, 1000)
        self.clock.advance(0.1)
        self.assertEqual(model.latest, 1001)
        self.assertEqual(model.closeTime(1000), T0)
        self.assertEqual(model.closeTime(1001), T0 + 5)

    def test_fractionalCloseTime(self):
        model = LedgerModel(self.clock, first_ledger=50, close_time=0.5)
        self.clock.advance(2)
        self.assertEqual(model.latest, 54)

    def test_historyAndRetention(self):
        model = LedgerModel(self.clock, first_ledger=1000, close_time=5, retention=10, history=30)
        self.assertEqual((model.oldest, model.latest), (1021, 1030))
        self.assertEqual(model.closeTime(1030), T0)
        self.assertEqual(model.closeTime(1021), T0 - 45)

    def test_advanceClosesLedgersNowWithoutRewritingHistory(self):
        model = LedgerModel(self.clock, first_ledger=1000, close_time=5, history=4)
        before = [model.closeTime(n) for n in range(1000, 1005)]
        self.clock.advance(2)
        model.advance(3)
        self.assertEqual(model.latest, 1007)
        self.assertEqual([model.closeTime(n) for n in range(1000, 1005)], before)
        times = [model.closeTime(n) for n in range(1000, 1008)]
        self.assertEqual(times, sorted(times))
        self.assertEqual(model.closeTime(1007), T0 + 2)
        self.clock.advance(5)
        self.assertEqual(model.latest, 1008)
        self.assertEqual(model.closeTime(1008), T0 + 7)

    def test_resetForgetsHistory(self):
        model = LedgerModel(self.clock, first_ledger=1000, close_time=5, history=50)
        model.reset(5)
        self.assertEqual((model.oldest, model.latest), (1055, 1055))
        self.clock.advance(10)
        self.assertEqual((model.oldest, model.latest), (1055, 1057))

    def test_rejectsBadSettings(self):
        self.assertRaises(ValueError, LedgerModel, self.clock, close_time=0)
        self.assertRaises(ValueError, LedgerModel, self.clock, retention=0)


class CursorTests(SynchronousTestCase):
    def test_realIdsRoundTrip(self):
        # From the 2026 testnet fixtures: a transfer at tx 5 op 0, a fee event at tx 0.
        self.assertEqual(parseCursor("0016010972359577600-0000000001"), (3727845, 5, 0, 1))
        self.assertEqual(positions.eventId(3727845, 5, 0, 1), "0016010972359577600-0000000001")
        self.assertEqual(parseCursor("0016019351840751616-0000000001"), (3729796, 0, 0, 1))
        self.assertEqual(parseCursor(positions.eventId(1000, 7, 3, 9)), (1000, 7, 3, 9))

    def test_maxCursor(self):
        self.assertEqual(positions.ledgerEnd(1000), "0000004299262263295-4294967295")
        self.assertEqual(parseCursor(positions.ledgerEnd(1000)), (1000, 0xFFFFF, 0xFFF, 0xFFFFFFFF))

    def test_badCursors(self):
        for bad in ("", "123", "abc-1", "1-x", "1--1", "1-99999999999", "1-+1"):
            self.assertRaises(ValueError, parseCursor, bad)


class GetEventsTests(RPCTestMixin, SynchronousTestCase):
    def setUp(self):
        self.server = makeServer()
        self.rpc = self.stub(self.server)

    def allEvents(self, first, last):
        return [e for n in range(first, last + 1) for e in self.server.eventsInLedger(n)]

    def test_pagesChainThroughEveryEventExactlyOnce(self):
        expected = [e.id for e in self.allEvents(1000, 1100)]
        self.assertEqual(len(expected), 404)
        page = self.result(self.rpc, "getEvents", {"startLedger": 1000, "pagination": {"limit": 7}})
        seen = []
        while page["events"]:
            ids = [e["id"] for e in page["events"]]
            seen.extend(ids)
            if len(ids) == 7:
                self.assertEqual(page["cursor"], ids[-1])
            page = self.result(self.rpc, "getEvents", {"pagination": {"cursor": page["cursor"], "limit": 7}})
        self.assertEqual(seen, expected)
        self.assertEqual(page["cursor"], positions.ledgerEnd(1100))

    def test_cursorIsExclusive(self):
        events = self.allEvents(1010, 1011)
        page = self.result(self.rpc, "getEvents", {"pagination": {"cursor": events[2].id, "limit": 3}})
        self.assertEqual([e["id"] for e in page["events"]], [e.id for e in events[3:6]])
        self.assertEqual(page["cursor"], events[5].id)

    def test_emptyPageStillAdvancesAndNewLedgersFollow(self):
        page = self.result(self.rpc, "getEvents", {"startLedger": 1100, "pagination": {"limit": 50}})
        self.assertEqual([e["id"] for e in page["events"]], [e.id for e in self.allEvents(1100, 1100)])
        self.assertEqual(page["cursor"], positions.ledgerEnd(1100))
        empty = self.result(self.rpc, "getEvents", {"pagination": {"cursor": page["cursor"]}})
        self.assertEqual(empty["events"], [])
        self.assertEqual(empty["cursor"], positions.ledgerEnd(1100))
        self.server.advanceLedgers(2)
        more = self.result(self.rpc, "getEvents", {"pagination": {"cursor": empty["cursor"]}})
        self.assertEqual([e["id"] for e in more["events"]], [e.id for e in self.allEvents(1101, 1102)])
        self.assertEqual(more["cursor"], positions.ledgerEnd(1102))
        self.assertEqual(more["latestLedger"], 1102)

    def test_anEmptyWindowMovesTheCursorOverEmptyLedgers(self):
        server = makeServer(events_per_ledger=0)
        page = self.result(self.stub(server), "getEvents", {"startLedger": 1050})
        self.assertEqual((page["events"], page["cursor"]), ([], positions.ledgerEnd(1100)))

    def test_endLedgerIsExclusive(self):
        page = self.result(self.rpc, "getEvents", {"startLedger": 1010, "endLedger": 1012})
        self.assertEqual([e["id"] for e in page["events"]], [e.id for e in self.allEvents(1010, 1011)])
        self.assertEqual(page["cursor"], positions.ledgerEnd(1011))

    def test_oneRequestScansAtMost10000Ledgers(self):
        server = makeServer(events_per_ledger=0, retention=20000, history=15000)
        page = self.result(self.stub(server), "getEvents", {"startLedger": 1000})
        self.assertEqual(page["events"], [])
        self.assertEqual(page["cursor"], positions.ledgerEnd(10999))
        self.assertEqual((page["oldestLedger"], page["latestLedger"]), (1000, 16000))

    def test_responseFields(self):
        page = self.result(self.rpc, "getEvents", {"startLedger": 1040, "pagination": {"limit": 20}})
        self.assertEqual(list(page), ["events", "cursor", "latestLedger", "oldestLedger",
                                      "latestLedgerCloseTime", "oldestLedgerCloseTime"])
        self.assertEqual((page["latestLedger"], page["oldestLedger"]), (1100, 1000))
        self.assertEqual(page["latestLedgerCloseTime"], str(T0))
        self.assertEqual(page["oldestLedgerCloseTime"], str(T0 - 500))
        ids = [e["id"] for e in page["events"]]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 20)
        for event in page["events"]:
            self.assertRegex(event["id"], ID_RE)
            toid, _ = positions.split(event["id"])
            self.assertEqual(
                toid, positions.toid(event["ledger"], event["transactionIndex"], event["operationIndex"])
            )
            self.assertEqual(event["ledgerClosedAt"], rfc3339(T0 - (1100 - event["ledger"]) * 5))
            self.assertRegex(event["txHash"], "^[0-9a-f]{64}$")
            self.assertIn(event["type"], ("contract", "system"))
            self.assertTrue(StrKey.is_valid_contract(event["contractId"]))
            self.assertIsInstance(event["inSuccessfulContractCall"], bool)
            for segment in event["topic"] + [event["value"]]:
                xdr.SCVal.from_xdr(segment)
            if event["transactionIndex"] == 0:
                self.assertEqual(event["topic"][0], FEE)

    def test_startLedgerOutsideRetention(self):
        message = "startLedger must be within the ledger range: 1000 - 1100"
        self.assertEqual(self.error(self.rpc, "getEvents", {"startLedger": 999}), (-32600, message))
        self.assertEqual(self.error(self.rpc, "getEvents", {"startLedger": 1101}), (-32600, message))

    def test_cursorOlderThanRetention(self):
        page = self.result(self.rpc, "getEvents", {"startLedger": 1000, "pagination": {"limit": 1}})
        self.server.clock.advance(5 * 150)
        self.assertEqual(
            self.error(self.rpc, "getEvents", {"pagination": {"cursor": page["cursor"]}}),
            (-32600, "startLedger must be within the ledger range: 1051 - 1250"),
        )

    def test_invalidParams(self):
        usdc = self.server.traffic.assets[1].contract_id
        cases = [
            ({"startLedger": 1000, "pagination": {"cursor": positions.ledgerEnd(1000)}},
             "ledger ranges and cursor cannot both be set"),
            ({"endLedger": 1050, "pagination": {"cursor": positions.ledgerEnd(1000)}},
             "ledger ranges and cursor cannot both be set"),
            ({}, "startLedger must be positive"),
            ({"startLedger": 1000, "pagination": {"limit": 10001}}, "limit must not exceed 10000"),
            ({"startLedger": 1000, "xdrFormat": "xml"},
             "got 'xml': expected base64, json for optional 'xdrFormat'"),
            ({"startLedger": 1000, "filters": [{}] * 6}, "maximum 5 filters per request"),
            ({"startLedger": 1000, "filters": [{"type": "diagnostic"}]},
             "filter 1 invalid: filter type invalid: if set, type must be either 'system' or 'contract'"),
            ({"startLedger": 1000, "filters": [{}, {"contractIds": [usdc] * 6}]},
             "filter 2 invalid: maximum 5 contract IDs per filter"),
            ({"startLedger": 1000, "filters": [{"contractIds": [usdc, "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"]}]},
             "filter 1 invalid: contract ID 2 invalid"),
            ({"startLedger": 1000, "filters": [{"topics": [["*"]] * 6}]},
             "filter 1 invalid: maximum 5 topics per filter"),
            ({"startLedger": 1000, "filters": [{"topics": [["*"], []]}]},
             "filter 1 invalid: topic 2 invalid: topic must have at least 1 segment"),
            ({"startLedger": 1000, "filters": [{"topics": [[TRANSFER, "*", "*", "*", "*"]]}]},
             "filter 1 invalid: topic 1 invalid: topic cannot have more than 4 segments"),
            ({"startLedger": 1000, "filters": [{"topics": [[TRANSFER, "**", "*"]]}]},
             "filter 1 invalid: topic 1 invalid: segment 2 invalid: "
             "wildcard '**' is only allowed as the last segment"),
        ]
        for params, message in cases:
            self.assertEqual(self.error(self.rpc, "getEvents", params), (-32602, message), params)

    def test_undecodableParams(self):
        for params in ([1000], {"startLedger": "1000"}, {"startLedger": -1},
                       {"pagination": {"cursor": "not-a-cursor"}},
                       {"startLedger": 1000, "filters": [{"topics": [["AAAA!"]]}]},
                       {"startLedger": 1000, "filters": [{"topics": [[TRANSFER[:-4]]]}]},
                       {"startLedger": 1000, "filters": {"type": "contract"}}):
            code, message = self.error(self.rpc, "getEvents", params)
            self.assertEqual(code, -32602, params)
            self.assertTrue(message.startswith("invalid parameters: "), message)

    def test_fourSegmentsAndATrailingDoubleStarAreAllowed(self):
        page = self.result(self.rpc, "getEvents", {
            "startLedger": 1000, "filters": [{"topics": [[TRANSFER, "*", "*", "*", "**"]]}]})
        self.assertTrue(page["events"])

    def test_jsonAndBase64FormatsDecodeToTheSameScvals(self):
        params = {"startLedger": 1000, "pagination": {"limit": 200}}
        b64 = self.result(self.rpc, "getEvents", params)
        js = self.result(self.rpc, "getEvents", dict(params, xdrFormat="json"))
        self.assertEqual(len(b64["events"]), 200)
        self.assertEqual(len(js["events"]), 200)
        kinds = set()
        for a, b in zip(b64["events"], js["events"]):
            self.assertNotIn("topic", b)
            self.assertNotIn("valueJson", a)
            self.assertEqual({k: v for k, v in a.items() if k not in ("topic", "value")},
                             {k: v for k, v in b.items() if k not in ("topicJson", "valueJson")})
            self.assertEqual([xdr.SCVal.from_xdr(t) for t in a["topic"]],
                             [xdr.SCVal.from_json_dict(t) for t in b["topicJson"]])
            self.assertEqual(xdr.SCVal.from_xdr(a["value"]), xdr.SCVal.from_json_dict(b["valueJson"]))
            kinds.add(xdr.SCVal.from_xdr(a["value"]).type)
        # Values cover i128, maps (muxed transfers), vecs, bools, u32, addresses, void.
        self.assertGreaterEqual(len(kinds), 5)

    def test_sameSeedSameEvents(self):
        params = envelope("getEvents", {"startLedger": 1000, "pagination": {"limit": 300}})
        bodies = [self.post(self.stub(makeServer(seed=s)), params)[1] for s in (7, 7, 8)]
        self.assertEqual(bodies[0], bodies[1])
        self.assertNotEqual(bodies[0], bodies[2])
        self.assertEqual(len(json.loads(bodies[0])["result"]["events"]), 300)

    def test_tokenEventsComeFromTheRealSac(self):
        server = makeServer(network_passphrase=Network.PUBLIC_NETWORK_PASSPHRASE)
        page = self.result(self.stub(server), "getEvents", {"startLedger": 1000, "pagination": {"limit": 400}})
        by_asset = {"native": PUBNET_NATIVE_SAC,
                    "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN": PUBNET_USDC_SAC}
        self.assertEqual(Asset.native().contract_id(Network.PUBLIC_NETWORK_PASSPHRASE), PUBNET_NATIVE_SAC)
        names = {}
        lookalikes = 0
        for event in page["events"]:
            topic = [scval.to_native(xdr.SCVal.from_xdr(t)) for t in event["topic"]]
            if topic[0] == "fee":
                self.assertEqual(event["contractId"], PUBNET_NATIVE_SAC)
                self.assertEqual(len(topic), 2)
            elif topic[0] in ("transfer", "mint", "burn", "clawback", "approve", "set_authorized", "set_admin"):
                asset = topic[-1]
                if event["contractId"] == by_asset.get(asset):
                    names[topic[0]] = names.get(topic[0], 0) + 1
                else:
                    self.assertEqual(event["contractId"], server.traffic.contracts["lookalike"])
                    lookalikes += 1
        self.assertTrue({"transfer", "mint", "burn", "approve"} <= set(names), names)
        self.assertGreater(lookalikes, 0)

    def test_filterByContractIds(self):
        native = self.server.traffic.native.contract_id
        counter = self.server.traffic.contracts["counter"]
        page = self.result(self.rpc, "getEvents", {
            "startLedger": 1000, "filters": [{"contractIds": [native, counter]}], "pagination": {"limit": 1000}})
        expected = [e.id for e in self.allEvents(1000, 1100) if e.contract_id in (native, counter)]
        self.assertEqual([e["id"] for e in page["events"]], expected)
        self.assertTrue(expected)

    def test_filterByTopics(self):
        def ids(topics):
            page = self.result(self.rpc, "getEvents", {
                "startLedger": 1000, "filters": [{"topics": topics}], "pagination": {"limit": 1000}})
            return [e["id"] for e in page["events"]]

        events = self.allEvents(1000, 1100)
        transfers = [e.id for e in events if e.topic[0] == TRANSFER]
        fees = [e.id for e in events if e.topic[0] == FEE]
        self.assertTrue(transfers and fees)
        self.assertEqual(ids([[TRANSFER, "*", "*", "*"]]), transfers)
        self.assertEqual(ids([[TRANSFER, "**"]]), transfers)
        self.assertEqual(ids([[TRANSFER, "*", "*"]]), [])  # exact length without **
        self.assertEqual(ids([[FEE, "*"], [TRANSFER, "**"]]), sorted(fees + transfers))
        account = events[[e.id for e in events].index(fees[0])].topic[1]
        self.assertEqual(ids([[FEE, account]]), [e.id for e in events if e.topic[:2] == (FEE, account)])
        self.assertEqual(len(ids([["**"]])), len(events))

    def test_filterByTypeAndFiltersAreOred(self):
        events = self.allEvents(1000, 1100)
        system = [e.id for e in events if e.type == "system"]
        self.assertTrue(system)
        page = self.result(self.rpc, "getEvents", {
            "startLedger": 1000, "filters": [{"type": "system"}], "pagination": {"limit": 1000}})
        self.assertEqual([e["id"] for e in page["events"]], system)
        native = self.server.traffic.native.contract_id
        page = self.result(self.rpc, "getEvents", {
            "startLedger": 1000, "pagination": {"limit": 1000},
            "filters": [{"type": "system"}, {"type": "contract", "contractIds": [native]}]})
        self.assertEqual([e["id"] for e in page["events"]],
                         [e.id for e in events if e.type == "system" or e.contract_id == native])

    def test_filteredFullPageCursorIsTheLastMatch(self):
        native = self.server.traffic.native.contract_id
        page = self.result(self.rpc, "getEvents", {
            "startLedger": 1000, "filters": [{"contractIds": [native]}], "pagination": {"limit": 3}})
        self.assertEqual(len(page["events"]), 3)
        self.assertEqual(page["cursor"], page["events"][-1]["id"])

    def test_isAWebResource(self):
        self.assertTrue(verifyObject(IResource, self.server))

    def test_inSuccessfulContractCallCanBeLeftOut(self):
        server = makeServer(include_successful=False)
        page = self.result(self.stub(server), "getEvents", {"startLedger": 1000})
        self.assertTrue(page["events"])
        for event in page["events"]:
            self.assertNotIn("inSuccessfulContractCall", event)

    def test_latestLedgerAndHealth(self):
        latest = self.result(self.rpc, "getLatestLedger")
        self.assertEqual(latest["sequence"], 1100)
        self.assertEqual(latest["closeTime"], str(T0))
        self.assertRegex(latest["id"], "^[0-9a-f]{64}$")
        self.assertEqual(latest["protocolVersion"], 25)
        health = self.result(self.rpc, "getHealth")
        self.assertEqual(health, {"status": "healthy", "latestLedger": 1100, "latestLedgerCloseTime": T0,
                                  "oldestLedger": 1000, "ledgerRetentionWindow": 200})

    def test_protocolErrors(self):
        self.assertEqual(self.error(self.rpc, "getTransactions", {}), (-32601, 'no such method "getTransactions"'))
        code, body = self.post(self.rpc, b'{"jsonrpc": "2.0", "method": ')
        self.assertEqual((code, json.loads(body)["error"]["code"]), (200, -32700))
        code, body = self.post(self.rpc, b'{"jsonrpc": "1.0", "id": 3, "method": "getHealth"}')
        reply = json.loads(body)
        self.assertEqual((reply["id"], reply["error"]["code"]), (3, -32600))
        code, body = self.post(self.rpc, b"[" + envelope("getHealth", id_=1) + b"," + envelope("nope", id_=2) + b"]")
        replies = json.loads(body)
        self.assertEqual([r["id"] for r in replies], [1, 2])
        self.assertEqual((replies[0]["result"]["status"], replies[1]["error"]["code"]), ("healthy", -32601))

    def test_requestsAreRecorded(self):
        self.result(self.rpc, "getEvents", {"startLedger": 1000}, headers={"Authorization": "Bearer s3cret"})
        self.result(self.rpc, "getEvents", {"pagination": {"cursor": positions.ledgerEnd(1000)}})
        self.post(self.rpc, b"garbage")
        first, second, third = self.server.requests
        self.assertEqual((first.method, first.params), ("getEvents", {"startLedger": 1000}))
        self.assertEqual(first.headers["authorization"], "Bearer s3cret")
        self.assertNotIn("authorization", second.headers)
        self.assertEqual(second.params, {"pagination": {"cursor": positions.ledgerEnd(1000)}})
        self.assertEqual((third.method, third.body), (None, b"garbage"))
        self.assertEqual(first.receivedAt, T0)
        self.assertEqual(self.server.maxInFlight, 1)
        self.assertEqual(self.server.inFlight, 0)


class RecordedPagesTests(RPCTestMixin, SynchronousTestCase):
    NAMES = ["docs-2026-native-xlm-transfer-events-base64.json",
             "docs-2026-any-events-fee-base64.json",
             "pysdk-2025-fee-events-testnet.json"]

    def setUp(self):
        self.paths = [fixturePath("rpc", name) for name in self.NAMES]
        self.pages = []
        for path in self.paths:
            with open(path) as f:
                page = json.load(f)
            self.pages.append(page.get("result", page))
        self.server = makeServer(recorded=RecordedPages.fromFiles(self.paths))
        self.rpc = self.stub(self.server)

    def test_pagesAreServedInOrderThenEmpty(self):
        self.assertEqual(self.result(self.rpc, "getLatestLedger")["sequence"], self.pages[0]["latestLedger"])
        served = [self.result(self.rpc, "getEvents", {"startLedger": 1}) for _ in self.pages]
        self.assertEqual(served, self.pages)
        empty = self.result(self.rpc, "getEvents", {"pagination": {"cursor": served[-1]["cursor"]}})
        last = self.pages[-1]
        self.assertEqual(empty, dict(last, events=[]))
        self.assertEqual(self.result(self.rpc, "getLatestLedger")["sequence"], last["latestLedger"])
        health = self.result(self.rpc, "getHealth")
        self.assertEqual((health["latestLedger"], health["oldestLedger"]), (last["latestLedger"], last["oldestLedger"]))

    def test_invalidRequestsAreStillRejectedWithoutUsingAPage(self):
        self.assertEqual(self.error(self.rpc, "getEvents", {"startLedger": 0})[0], -32602)
        self.assertEqual(self.result(self.rpc, "getEvents", {"startLedger": 5}), self.pages[0])

    def test_aRecordedErrorIsAnswered(self):
        server = makeServer(recorded=RecordedPages([
            {"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "request exceeded processing limit threshold"}},
            self.pages[0]]))
        rpc = self.stub(server)
        self.assertEqual(self.error(rpc, "getEvents", {"startLedger": 5}),
                         (-32001, "request exceeded processing limit threshold"))
        self.assertEqual(self.result(rpc, "getEvents", {"startLedger": 5}), self.pages[0])


class FaultTests(RPCTestMixin, SynchronousTestCase):
    def setUp(self):
        self.server = makeServer()
        self.rpc = self.stub(self.server)

    def test_httpStatusWithEmptyBody(self):
        for status in (500, 503, 504):
            self.server.inject("http_status", status=status)
            code, body = self.post(self.rpc, envelope("getEvents", {"startLedger": 1000}))
            self.assertEqual((code, body), (status, b""))
        self.assertEqual(self.result(self.rpc, "getHealth")["status"], "healthy")

    def test_garbageBody(self):
        self.server.inject("garbage")
        code, body = self.post(self.rpc, envelope("getEvents", {"startLedger": 1000}))
        self.assertEqual(code, 200)
        self.assertRaises(ValueError, json.loads, body)

    def test_rpcErrorsWithRealMessages(self):
        self.server.inject("rpc_error", code=-32001)
        self.server.inject("rpc_error", code=-32098)
        self.server.inject("rpc_error", code=-32600)
        self.server.inject("rpc_error", code=-32603, message="boom")
        self.assertEqual(self.error(self.rpc, "getEvents", {"startLedger": 1000}),
                         (-32001, "request exceeded processing limit threshold"))
        self.assertEqual(self.error(self.rpc, "getEvents", {"startLedger": 1000}),
                         (-32098, "rpc queue for getEvents surpassed queue limit of 10 requests"))
        self.assertEqual(self.error(self.rpc, "getEvents", {"startLedger": 1000}),
                         (-32600, "startLedger must be within the ledger range: 1000 - 1100"))
        self.assertEqual(self.error(self.rpc, "getEvents", {"startLedger": 1000}), (-32603, "boom"))
        self.assertEqual(len(self.server.faults), 0)
        self.assertEqual([f.code for f in self.server.faults.fired], [-32001, -32098, -32600, -32603])

    def test_delayOnTheInjectedClock(self):
        self.server.inject("delay", seconds=30)
        d = self.rpc.post(URL, data=envelope("getEvents", {"startLedger": 1000}))
        self.assertNoResult(d)
        self.assertEqual(self.server.inFlight, 1)
        self.server.clock.advance(29)
        self.rpc.flush()
        self.assertNoResult(d)
        self.server.clock.advance(1)
        self.rpc.flush()
        response = self.successResultOf(d)
        reply = json.loads(self.successResultOf(self.rpc.content(response)))
        self.assertEqual(reply["result"]["events"][0]["ledger"], 1000)
        self.assertEqual(self.server.inFlight, 0)

    def test_concurrentRequestsAreVisible(self):
        self.server.inject("delay", seconds=1, count=2)
        first = self.rpc.post(URL, data=envelope("getHealth"))
        second = self.rpc.post(URL, data=envelope("getHealth"))
        self.assertEqual(self.server.maxInFlight, 2)
        self.assertEqual([r.inFlight for r in self.server.requests], [1, 2])
        self.server.clock.advance(1)
        self.rpc.flush()
        self.assertEqual(self.successResultOf(first).code, 200)
        self.assertEqual(self.successResultOf(second).code, 200)

    def test_disconnectAnswersNothing(self):
        self.server.inject("disconnect")
        d = self.rpc.post(URL, data=envelope("getEvents", {"startLedger": 1000}))
        self.rpc.flush()
        self.failureResultOf(d)
        self.assertEqual(self.result(self.rpc, "getHealth")["status"], "healthy")

    def test_nodeResetPutsTheCursorOutOfRange(self):
        page = self.result(self.rpc, "getEvents", {"startLedger": 1100})
        self.server.inject("node_reset", ledgers=3)
        self.assertEqual(self.error(self.rpc, "getEvents", {"pagination": {"cursor": page["cursor"]}}),
                         (-32600, "startLedger must be within the ledger range: 1103 - 1103"))
        self.assertEqual(self.result(self.rpc, "getEvents", {"startLedger": 1103})["oldestLedger"], 1103)

    def test_faultsTargetAMethodAndACount(self):
        self.server.inject("http_status", status=503, count=2, method="getEvents")
        self.assertEqual(self.result(self.rpc, "getHealth")["status"], "healthy")
        for _ in range(2):
            self.assertEqual(self.post(self.rpc, envelope("getEvents", {"startLedger": 1000}))[0], 503)
        self.assertEqual(self.post(self.rpc, envelope("getEvents", {"startLedger": 1000}))[0], 200)

    def test_faultValidation(self):
        self.assertRaises(ValueError, Fault, "explode")
        self.assertRaises(ValueError, Fault, "delay")
        self.assertRaises(ValueError, Fault, "rpc_error")
        self.assertRaises(ValueError, Fault, "garbage", count=0)
        queue = FaultQueue()
        queue.push(Fault("garbage", method="getEvents"))
        self.assertIsNone(queue.take("getHealth"))
        self.assertEqual(queue.take("getEvents").kind, "garbage")
        self.assertIsNone(queue.take("getEvents"))


class OptionsTests(SynchronousTestCase):
    def test_defaultsAndValues(self):
        options = Options()
        options.parseOptions(["--port", "0", "--rate", "0.5", "--seed", "9", "--network", "pubnet",
                              "--asset", "native", "--retention", "50", "--history", "10"])
        server = resourceFromOptions(options, Clock())
        self.assertEqual(server.network_passphrase, Network.PUBLIC_NETWORK_PASSPHRASE)
        self.assertEqual([a.contract_id for a in server.traffic.assets], [PUBNET_NATIVE_SAC])
        self.assertEqual((server.ledgers.oldest, server.ledgers.latest), (1000, 1010))
        self.assertEqual(server.traffic.events_per_ledger, 0.5)

    def test_badValuesAreNamed(self):
        from twisted.python.usage import UsageError
        for argv, word in ((["--rate", "-1"], "--rate"), (["--asset", "USDC"], "'USDC'"),
                           (["--accounts", "CAS3"], "'CAS3'"), (["--ledger-close-time", "0"], "--ledger-close-time")):
            e = self.assertRaises(UsageError, Options().parseOptions, argv)
            self.assertIn(word, str(e))


class CommandLineTests(SynchronousTestCase):
    """
    C{python -m stellarflow.testing.rpcserver}, as a process.
    """

    def runServer(self, *args):
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.run([sys.executable, "-m", "stellarflow.testing.rpcserver", *args],
                              capture_output=True, timeout=60, env=env)

    def test_exitsWhenItCannotListen(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = self.runServer("--port", str(port))
        self.assertEqual(result.returncode, 1, result)
        self.assertIn("could not start: Couldn't listen on 127.0.0.1:%d" % (port,), result.stdout.decode())

    def test_badOptions(self):
        result = self.runServer("--rate", "-1")
        self.assertEqual(result.returncode, 2, result)
        self.assertIn("--rate must be >= 0", result.stderr.decode())


class LoopbackTests(TestCase):
    """The same server on a real 127.0.0.1 port, through treq."""

    timeout = 10

    @inlineCallbacks
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(T0)
        self.server = makeServer(self.clock)
        self.port = yield serve(0, self.server, reactor)
        self.addCleanup(self.server.stopServing)
        self.url = "http://127.0.0.1:%d/" % (self.port,)

    def post(self, data, headers=None):
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        return treq.post(self.url, data=data, headers=headers, pool=pool, timeout=5)

    @inlineCallbacks
    def call(self, method, params=None, headers=None):
        response = yield self.post(envelope(method, params), headers)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        body = yield treq.content(response)
        return json.loads(body)

    @inlineCallbacks
    def test_getEventsOverTcp(self):
        reply = yield self.call("getEvents", {"startLedger": 1000, "pagination": {"limit": 5}},
                                headers={"Authorization": "Bearer t0ken"})
        self.assertEqual([e["id"] for e in reply["result"]["events"]],
                         [e.id for e in self.server.eventsInLedger(1000) + self.server.eventsInLedger(1001)][:5])
        self.assertEqual(self.server.requests[-1].headers["authorization"], "Bearer t0ken")

    @inlineCallbacks
    def test_httpFaultsOverTcp(self):
        self.server.inject("http_status", status=504)
        self.server.inject("garbage")
        response = yield self.post(envelope("getHealth"))
        self.assertEqual(response.code, 504)
        self.assertEqual((yield treq.content(response)), b"")
        response = yield self.post(envelope("getHealth"))
        self.assertTrue((yield treq.content(response)).startswith(b"<html>"))
        reply = yield self.call("getHealth")
        self.assertEqual(reply["result"]["status"], "healthy")

    @inlineCallbacks
    def test_refuseThenAccept(self):
        self.server.inject("refuse")
        yield self.assertFailure(self.post(envelope("getHealth")), ResponseNeverReceived)
        yield self.assertFailure(self.post(envelope("getHealth")), ConnectError)
        yield self.server.acceptConnections()
        reply = yield self.call("getHealth")
        self.assertEqual(reply["result"]["latestLedger"], 1100)

    @inlineCallbacks
    def test_refuseForSomeSeconds(self):
        self.server.refuseConnections(seconds=5)
        yield self.assertFailure(self.post(envelope("getHealth")), ConnectError)
        self.clock.advance(5)
        yield self.server.acceptConnections()
        reply = yield self.call("getHealth")
        self.assertEqual(reply["result"]["latestLedger"], 1101)
