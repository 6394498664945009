"""
Tests for L{stellarflow.websocket.hub}: connections, registration, error replies, counters and
shutdown, with fake connections and a Clock (no sockets).
"""

import gc
import json
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stellarflow.interfaces import IClientConnection, IClientSession, IReplayHost
from stellarflow.websocket import broadcaster as broadcasterModule
from stellarflow.websocket import hub as hubModule
from stellarflow.websocket import session as sessionModule
from stellarflow.websocket.filters import KNOWN_TYPES
from stellarflow.websocket.hub import ClientHub
from tests.wshelpers import (
    G1,
    GUIDE_WELCOME,
    M1,
    FakeConnection,
    eventId,
    plainEvent,
    register,
    tokenEvent,
)


class HubTestsMixin:
    def setUp(self):
        self.clock = Clock()
        self.logged = []
        observer = Logger(observer=self.logged.append)
        for module in (hubModule, sessionModule, broadcasterModule):
            self.patch(module, "log", observer)

    def make(self, **kw):
        kw.setdefault("maxQueueSize", 1000)
        return ClientHub(self.clock, **kw)

    def connect(self, hub, peer="tcp4:10.0.0.1:4000"):
        conn = FakeConnection(peer)
        return conn, hub.connect(conn)

    def logs(self, fragment):
        return [e for e in self.logged if fragment in e.get("log_format", "")]


class ConnectTests(HubTestsMixin, SynchronousTestCase):
    def test_interfaces(self):
        hub = self.make()
        conn, session = self.connect(hub)
        verifyObject(IClientConnection, conn)
        verifyObject(IPushProducer, session)
        verifyObject(IClientSession, session)
        verifyObject(IReplayHost, hub)

    def test_welcome(self):
        """
        A new client gets the guide's welcome, its session is the transport's streaming producer.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        self.assertEqual(conn.messages(), [GUIDE_WELCOME])
        self.assertIs(conn.producer, session)
        self.assertIs(conn.streaming, True)
        self.assertEqual((hub.connected, hub.registered), (1, 0))

    def test_welcomeFramedOnce(self):
        prepared = []

        def prepare(payload):
            prepared.append(payload)
            return payload

        hub = self.make(prepare=prepare)
        for i in range(5):
            self.connect(hub, "tcp4:10.0.0.1:%d" % i)
        self.assertEqual(len(prepared), 1)

    def test_full(self):
        hub = self.make(maxConnections=2)
        self.connect(hub)
        self.assertFalse(hub.full)
        conn, session = self.connect(hub)
        self.assertTrue(hub.full)
        hub.disconnected(session)
        self.assertFalse(hub.full)


class RegistrationTests(HubTestsMixin, SynchronousTestCase):
    def test_timeout(self):
        """
        No register within registration_timeout: an error explaining it, then close 4008.
        """
        hub = self.make(registrationTimeout=10)
        conn, session = self.connect(hub)
        self.clock.advance(9.9)
        self.assertIsNone(conn.closed)
        self.clock.advance(0.1)
        error = conn.messages()[-1]
        self.assertEqual(error["type"], "error")
        self.assertEqual(error["error"], "registration_timeout")
        self.assertIn("10 seconds", error["message"])
        self.assertEqual(conn.closed, (4008, "registration timeout"))
        self.assertEqual(hub.counters.errorsSent, 1)
        # closing: nothing more is sent, but it is counted until the connection is gone
        hub.broadcast([tokenEvent(1)])
        self.assertEqual(len(conn.frames), 2)
        self.assertEqual(hub.connected, 1)
        hub.disconnected(session)
        self.assertEqual(hub.connected, 0)

    def test_registerCancelsTimeout(self):
        hub = self.make(registrationTimeout=10, cursorInterval=0)
        conn, session = self.connect(hub)
        self.clock.advance(5)
        register(hub, session)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertIsNone(conn.closed)

    def test_disconnectCancelsTimeout(self):
        hub = self.make()
        conn, session = self.connect(hub)
        hub.disconnected(session)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_registeredReply(self):
        """
        The reply carries the guide's text and the normalised filters.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session, {"types": ["transfer"], "account_ids": [M1], "asset_codes": ["native"], "min_amount": "1e2"})
        reply = conn.messages()[-1]
        self.assertEqual(
            reply,
            {
                "type": "registered",
                "message": "Registration successful, processing queued events",
                "filters": {"types": ["transfer"], "account_ids": [G1], "asset_codes": ["XLM"], "min_amount": "100"},
                "available_types": sorted(KNOWN_TYPES),
            },
        )
        self.assertEqual((hub.registered, len(hub.broadcaster.unregistered)), (1, 0))

    def test_unknownTypesReported(self):
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session, {"types": ["transfer", "swap"]})
        reply = conn.messages()[-1]
        self.assertEqual(reply["type"], "registered")
        self.assertEqual(reply["filters"]["types"], ["swap", "transfer"])
        self.assertEqual(reply["unknown_types"], ["swap"])
        self.assertEqual(len(reply["warnings"]), 1)
        self.assertIn("'swap'", reply["warnings"][0])
        self.assertNotIn("unavailable_types", reply)

    def test_guideTypesOnAGetEventsPipeline(self):
        """
        The guide's C{["payment", "trade"]} on a getEvents pipeline: the reply says at once that
        C{trade} matches nothing here and what C{payment} means here; the guide's fields stay.
        """
        hub = self.make(producedTypes=frozenset(["contract_event"]))
        conn, session = self.connect(hub)
        register(hub, session, {"types": ["payment", "trade"]})
        reply = conn.messages()[-1]
        self.assertEqual(reply["message"], "Registration successful, processing queued events")
        self.assertEqual(reply["filters"]["types"], ["payment", "trade"])
        self.assertEqual(reply["available_types"], [
            "approve", "burn", "clawback", "contract_event", "fee", "mint", "payment", "set_admin",
            "set_authorized", "transfer"])
        self.assertEqual(reply["unavailable_types"], ["trade"])
        self.assertNotIn("unknown_types", reply)
        self.assertEqual(len(reply["warnings"]), 2)
        self.assertIn("trade are not produced by this pipeline", reply["warnings"][0])
        self.assertIn("getLedgers", reply["warnings"][0])
        self.assertIn("'payment' means a Stellar Asset Contract transfer between two different accounts",
                      reply["warnings"][1])
        # and the session matches two-party transfers as payments
        self.assertTrue(session.filters.paymentTransfers)

    def test_guideTypesOnAWholeLedgerPipeline(self):
        hub = self.make(producedTypes=frozenset(["payment", "trade", "contract_event"]))
        conn, session = self.connect(hub)
        register(hub, session, {"types": ["payment", "trade"]})
        reply = conn.messages()[-1]
        self.assertEqual(reply["available_types"], sorted(KNOWN_TYPES))
        self.assertNotIn("warnings", reply)
        self.assertNotIn("unavailable_types", reply)
        self.assertFalse(session.filters.paymentTransfers)

    def test_paymentOnlyPipeline(self):
        hub = self.make(producedTypes=frozenset(["payment"]))
        conn, session = self.connect(hub)
        register(hub, session, {"types": ["payment", "trade", "transfer"]})
        reply = conn.messages()[-1]
        self.assertEqual(reply["available_types"], ["payment"])
        self.assertEqual(reply["unavailable_types"], ["trade", "transfer"])
        self.assertEqual(len(reply["warnings"]), 1)

    def test_missingFilters(self):
        """
        A register without filters means no filtering.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        hub.received(session, b'{"type": "register"}', False)
        self.assertEqual(conn.messages()[-1]["filters"], GUIDE_WELCOME["format"]["filters"])
        hub.broadcast([plainEvent(1)])
        self.assertEqual(conn.events(), [eventId(1)])

    def test_reregister(self):
        """
        A second register replaces the filters and gets its own reply; events follow the new
        filters.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session, {"asset_codes": ["USDC"]})
        hub.broadcast([tokenEvent(1), tokenEvent(2, code="XLM")])
        register(hub, session, {"asset_codes": ["XLM"]})
        hub.broadcast([tokenEvent(3), tokenEvent(4, code="XLM")])
        self.assertEqual(
            [(m["type"], m.get("id")) for m in conn.messages()],
            [
                ("welcome", None),
                ("registered", None),
                ("contract_event", eventId(1)),
                ("registered", None),
                ("contract_event", eventId(4)),
            ],
        )
        self.assertEqual(conn.messages()[3]["filters"]["asset_codes"], ["XLM"])
        self.assertEqual(hub.registered, 1)


class ErrorReplyTests(HubTestsMixin, SynchronousTestCase):
    """
    Every bad input gets {"type": "error", "error": code, "message": text}; the connection stays
    open and the filters in force stay.
    """

    cases = [
        (b"not json", False, "invalid_json", None),
        (b"\xff\xfe", False, "invalid_json", None),
        (b'{"type": "register"', False, "invalid_json", None),
        (b"[" * 100000 + b"]" * 100000, False, "invalid_json", None),
        (b'{"type": "register"}', True, "binary_not_supported", None),
        (b'["register"]', False, "invalid_message", None),
        (b"42", False, "invalid_message", None),
        (b'{"filters": {}}', False, "invalid_message", "type"),
        (b'{"type": 7}', False, "invalid_field_type", "type"),
        (b'{"type": "subscribe"}', False, "unknown_message_type", "type"),
        (b'{"type": "register", "filters": {}, "resume_from": "1"}', False, "unknown_field", "resume_from"),
        (b'{"type": "register", "filters": {}, "resume_after": "1"}', False, "invalid_resume_after", "resume_after"),
        (b'{"type": "register", "filters": []}', False, "invalid_filters", None),
        (b'{"type": "register", "filters": {"types": "payment"}}', False, "invalid_field_type", "filters.types"),
        (b'{"type": "register", "filters": {"types": [1]}}', False, "invalid_field_type", "filters.types"),
        (b'{"type": "register", "filters": {"min_amount": true}}', False, "invalid_field_type", "filters.min_amount"),
        (b'{"type": "register", "filters": {"min_amount": "-1"}}', False, "invalid_min_amount", "filters.min_amount"),
        (b'{"type": "register", "filters": {"account_ids": ["GABC123"]}}', False, "invalid_account_id", "filters.account_ids"),
        (b'{"type": "register", "filters": {"asset_codes": ["US DC"]}}', False, "invalid_asset_code", "filters.asset_codes"),
        (b'{"type": "register", "filters": {"accounts": []}}', False, "unknown_filter_field", "filters.accounts"),
    ]

    def test_errors(self):
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session, {"asset_codes": ["XLM"]})
        for payload, binary, code, field in self.cases:
            before = len(conn.frames)
            hub.received(session, payload, binary)
            self.assertEqual(len(conn.frames), before + 1, payload[:40])
            reply = conn.messages()[-1]
            self.assertEqual(reply["type"], "error", payload[:40])
            self.assertEqual(reply["error"], code, payload[:40])
            self.assertIsInstance(reply["message"], str)
            self.assertEqual(reply.get("field"), field, payload[:40])
            self.assertEqual(set(reply) - {"field"}, {"type", "error", "message"})
        self.assertIsNone(conn.closed)
        self.assertEqual(hub.counters.errorsSent, len(self.cases))
        # the filters registered before are still in force
        hub.broadcast([tokenEvent(1), tokenEvent(2, code="XLM")])
        self.assertEqual(conn.events(), [eventId(2)])

    def test_errorBeforeRegisterKeepsTimer(self):
        """
        A bad message does not count as registering: the timeout still applies.
        """
        hub = self.make(registrationTimeout=10)
        conn, session = self.connect(hub)
        hub.received(session, b"{}", False)
        self.clock.advance(10)
        self.assertEqual(conn.closed, (4008, "registration timeout"))

    def test_internalErrorKeepsConnection(self):
        """
        A bug while handling a message is logged and answered with internal_error; the
        connection stays open.
        """
        hub = self.make()
        conn, session = self.connect(hub)

        def broken(payload, isBinary, producedTypes):
            raise RuntimeError("bug")

        self.patch(hubModule, "parseRegister", broken)
        register(hub, session)
        self.assertEqual(conn.messages()[-1]["error"], "internal_error")
        self.assertIsNone(conn.closed)
        [failure] = [e["log_failure"] for e in self.logged if "log_failure" in e]
        self.assertIsInstance(failure.value, RuntimeError)

    @settings(max_examples=200, deadline=None)
    @given(
        st.one_of(
            st.binary(max_size=200),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                max_leaves=12,
            ).map(lambda v: json.dumps(v).encode()),
            st.fixed_dictionaries(
                {"type": st.just("register")},
                optional={
                    "filters": st.dictionaries(
                        st.sampled_from(["types", "account_ids", "asset_codes", "min_amount", "other"]),
                        st.one_of(st.none(), st.text(max_size=8), st.lists(st.text(max_size=8), max_size=3), st.integers()),
                    )
                },
            ).map(lambda v: json.dumps(v).encode()),
        ),
        st.booleans(),
    )
    def test_anyInputOneReply(self, payload, binary):
        """
        Whatever a client sends, it gets exactly one reply (registered or error) and stays open.
        """
        self.logged[:] = []
        hub = self.make()
        conn, session = self.connect(hub)
        hub.received(session, payload, binary)
        replies = conn.messages()[1:]
        self.assertEqual(len(replies), 1)
        self.assertIn(replies[0]["type"], ("registered", "error"))
        if replies[0]["type"] == "error":
            self.assertNotEqual(replies[0]["error"], "internal_error")
        self.assertIsNone(conn.closed)
        self.assertEqual([e for e in self.logged if e.get("log_failure")], [])


class CounterTests(HubTestsMixin, SynchronousTestCase):
    def test_stats(self):
        hub = self.make(maxQueueSize=1)
        conn, session = self.connect(hub)
        other, otherSession = self.connect(hub)
        register(hub, session)
        hub.received(session, b"?", False)
        hub.broadcast([plainEvent(1), plainEvent(2)])
        self.assertEqual(
            hub.stats(),
            {
                "connected": 2,
                "registered": 1,
                "connections": 2,
                "delivered": 2,
                "dropped": 1,
                "closed_queue_full": 0,
                "errors_sent": 1,
                "replaying": 0,
                "replays": 0,
                "replays_refused": 0,
                "registers_limited": 0,
                "filters_refused": 0,
                "tokens_expired": 0,
                "replayed": 0,
                "history_events": 2,
            },
        )

    def test_memoryPerIdleClient(self):
        """
        Our own state for an idle registered client (filtering on one account) stays within
        1 KiB: the Session, its filters and its index entry.
        """
        silent = Logger(observer=lambda event: None)
        for module in (hubModule, sessionModule, broadcasterModule):
            self.patch(module, "log", silent)
        hub = self.make()
        conns = [FakeConnection("tcp4:10.2.%d.%d:1" % (i // 256, i % 256)) for i in range(1000)]
        payload = json.dumps({"type": "register", "filters": {"account_ids": [G1]}}).encode()
        # one client first, outside the measure: what its path imports lazily is not per client
        hub.received(hub.connect(FakeConnection("tcp4:10.1.0.0:1")), payload, False)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for conn in conns:
                session = hub.connect(conn)
                hub.received(session, payload, False)
                conn.frames = []
                conn.writes = []
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
        perClient = growth / len(conns)
        self.assertLess(perClient, 1024, "{:.0f} bytes per client".format(perClient))


class ShutdownTests(HubTestsMixin, SynchronousTestCase):
    def test_closesAllAndWaits(self):
        hub = self.make()
        conns = [self.connect(hub, "c%d" % i) for i in range(3)]
        register(hub, conns[0][1])
        d = hub.shutdown(5)
        self.assertEqual([c.closed for c, _ in conns], [(1001, "server shutting down")] * 3)
        self.assertNoResult(d)
        for _, session in conns:
            hub.disconnected(session)
        # fires a turn later, once the protocol finished its connectionLost
        self.assertNoResult(d)
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_abortsAfterTimeout(self):
        hub = self.make()
        conn, session = self.connect(hub)
        d = hub.shutdown(5)
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.successResultOf(d)
        self.assertTrue(conn.aborted)
        self.assertEqual(hub.connected, 0)

    def test_noClients(self):
        self.successResultOf(self.make().shutdown(5))

    def test_connectWhileStopping(self):
        hub = self.make()
        d = hub.shutdown(5)
        self.successResultOf(d)
        conn, session = self.connect(hub)
        self.assertEqual(conn.closed, (1001, "server shutting down"))
        self.assertEqual(conn.frames, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_transportAlreadyGone(self):
        """
        A transport that is gone when the session registers as its producer stops it at once:
        the session is forgotten, nothing is written and no timer is left.
        """

        class Gone(FakeConnection):
            def registerProducer(self, producer, streaming):
                FakeConnection.registerProducer(self, producer, streaming)
                producer.stopProducing()

        hub = self.make()
        conn = Gone()
        session = hub.connect(conn)
        self.assertTrue(session.closing)
        self.assertEqual((hub.connected, conn.frames), (0, []))
        self.assertEqual(self.clock.getDelayedCalls(), [])
