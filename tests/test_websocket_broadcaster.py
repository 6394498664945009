"""
Tests for stellarflow.websocket.broadcaster: clients, registration, queues and fan-out, with fake
connections and a Clock (no sockets).
"""

import gc
import json
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st
from stellar_sdk import Keypair, MuxedAccount
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stellarflow.interfaces import IClientConnection
from stellarflow.websocket import broadcaster as broadcaster_module
from stellarflow.websocket.broadcaster import Broadcaster

# -- event builders (also used by the protocol and end-to-end tests) ----------------------


def account(i):
    return Keypair.from_raw_ed25519_seed(bytes([i + 1]) * 32).public_key


G1, G2, G3 = account(0), account(1), account(2)
M1 = MuxedAccount(G1, 42).account_muxed
USDC_ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
USDC_SAC = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
NATIVE_SAC = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA"
LOOKALIKE = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC"

GUIDE_WELCOME = {
    "type": "welcome",
    "message": "Please send registration message to begin receiving events",
    "format": {
        "type": "register",
        "filters": {"types": [], "account_ids": [], "asset_codes": [], "min_amount": ""},
    },
}


def eventId(n):
    return "%019d-%010d" % (n, 0)


def tokenEvent(n, event_type="transfer", frm=G1, to=G2, code="USDC", amount="150", verified=True, contract=None):
    """
    A token event message as the GetEventsRPC processor emits it (see MESSAGE.md).
    """
    native = code == "XLM"
    if contract is None:
        contract = NATIVE_SAC if native else USDC_SAC
    return {
        "type": "contract_event",
        "id": eventId(n),
        "ledger": 1000 + n,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "ab" * 32,
        "contract_id": contract,
        "operation_index": 0,
        "transaction_index": 1,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": [event_type, frm, to, "native" if native else code + ":" + USDC_ISSUER],
        "data": amount,
        "event_type": event_type,
        "from": frm,
        "to": to,
        "account_ids": [a for a in (frm, to) if a],
        "asset_code": code,
        "asset_issuer": None if native else USDC_ISSUER,
        "amount": amount,
        "amount_raw": None if amount is None else str(int(float(amount) * 10**7)),
        "asset_verified": verified,
    }


def plainEvent(n, contract=LOOKALIKE):
    """
    A contract event that is not a token event.
    """
    return {
        "type": "contract_event",
        "id": eventId(n),
        "ledger": 1000 + n,
        "ledger_closed_at": None,
        "transaction_hash": None,
        "contract_id": contract,
        "operation_index": None,
        "transaction_index": None,
        "in_successful_contract_call": None,
        "event_kind": "contract",
        "topics": ["hello"],
        "data": None,
    }


# -- fakes -------------------------------------------------------------------------------


@implementer(IClientConnection)
class FakeConnection:
    """
    Records what the broadcaster writes.  With C{bufferLimit} set, the fake transport pauses its
    producer once that many frames were written since the last resume (a full write buffer).
    """

    def __init__(self, peer="tcp4:10.0.0.1:4000"):
        self.peer = peer
        self.frames = []
        self.closed = None
        self.aborted = False
        self.reading = True
        self.producer = None
        self.streaming = None
        self.bufferLimit = None
        self._sinceResume = 0

    def registerProducer(self, producer, streaming):
        self.producer = producer
        self.streaming = streaming

    def send(self, frame):
        if self.closed is not None:
            raise AssertionError("frame written after close: {!r}".format(frame))
        self.frames.append(frame)
        self._sinceResume += 1
        if self.bufferLimit is not None and self._sinceResume >= self.bufferLimit:
            self.producer.pauseProducing()

    def sendMany(self, frames):
        for frame in frames:
            self.send(frame)

    def drain(self):
        """The client read everything: the transport resumes its producer."""
        self._sinceResume = 0
        self.producer.resumeProducing()

    def close(self, code, reason):
        self.closed = (code, reason)

    def abort(self):
        self.aborted = True

    def pauseReading(self):
        self.reading = False

    def resumeReading(self):
        self.reading = True

    def messages(self):
        return [json.loads(f) for f in self.frames]

    def events(self):
        return [m["id"] for m in self.messages() if m["type"] == "contract_event"]

    def types(self):
        return [m["type"] for m in self.messages()]


class BrokenConnection(FakeConnection):
    def send(self, frame):
        if self.producer is not None and getattr(self.producer, "filters", None) is not None:
            raise OSError("socket exploded")
        FakeConnection.send(self, frame)


def register(b, client, filters=None):
    b.received(client, json.dumps({"type": "register", "filters": filters or {}}).encode(), False)


class BroadcasterTestsMixin:
    def setUp(self):
        self.clock = Clock()
        self.logged = []
        self.patch(broadcaster_module, "log", Logger(observer=self.logged.append))

    def make(self, **kw):
        kw.setdefault("max_queue_size", 1000)
        return Broadcaster(self.clock, **kw)

    def connect(self, b, peer="tcp4:10.0.0.1:4000"):
        conn = FakeConnection(peer)
        return conn, b.connect(conn)

    def logs(self, fragment):
        return [e for e in self.logged if fragment in e.get("log_format", "")]


class ConnectTests(BroadcasterTestsMixin, SynchronousTestCase):
    def test_interfaces(self):
        b = self.make()
        conn, client = self.connect(b)
        verifyObject(IClientConnection, conn)
        verifyObject(IPushProducer, client)

    def test_welcome(self):
        """
        A new client gets the guide's welcome, the client is the transport's streaming producer.
        """
        b = self.make()
        conn, client = self.connect(b)
        self.assertEqual(conn.messages(), [GUIDE_WELCOME])
        self.assertIs(conn.producer, client)
        self.assertIs(conn.streaming, True)
        self.assertEqual((b.connected, b.registered), (1, 0))

    def test_welcomeFramedOnce(self):
        prepared = []

        def prepare(payload):
            prepared.append(payload)
            return payload

        b = self.make(prepare=prepare)
        for i in range(5):
            self.connect(b, "tcp4:10.0.0.1:%d" % i)
        self.assertEqual(len(prepared), 1)

    def test_full(self):
        b = self.make(max_connections=2)
        self.connect(b)
        self.assertFalse(b.full)
        conn, client = self.connect(b)
        self.assertTrue(b.full)
        b.disconnected(client)
        self.assertFalse(b.full)


class RegistrationTests(BroadcasterTestsMixin, SynchronousTestCase):
    def test_timeout(self):
        """
        No register within registration_timeout: an error explaining it, then close 4008.
        """
        b = self.make(registration_timeout=10)
        conn, client = self.connect(b)
        self.clock.advance(9.9)
        self.assertIsNone(conn.closed)
        self.clock.advance(0.1)
        error = conn.messages()[-1]
        self.assertEqual(error["type"], "error")
        self.assertEqual(error["error"], "registration_timeout")
        self.assertIn("10 seconds", error["message"])
        self.assertEqual(conn.closed, (4008, "registration timeout"))
        self.assertEqual(b.errors_sent, 1)
        # closing: nothing more is sent, but it is counted until the connection is gone
        b.broadcast([tokenEvent(1)])
        self.assertEqual(len(conn.frames), 2)
        self.assertEqual(b.connected, 1)
        b.disconnected(client)
        self.assertEqual(b.connected, 0)

    def test_registerCancelsTimeout(self):
        b = self.make(registration_timeout=10, cursor_interval=0)
        conn, client = self.connect(b)
        self.clock.advance(5)
        register(b, client)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertIsNone(conn.closed)

    def test_disconnectCancelsTimeout(self):
        b = self.make()
        conn, client = self.connect(b)
        b.disconnected(client)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_registeredReply(self):
        """
        The reply carries the guide's text and the normalised filters.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client, {"types": ["transfer"], "account_ids": [M1], "asset_codes": ["native"], "min_amount": "1e2"})
        reply = conn.messages()[-1]
        self.assertEqual(
            reply,
            {
                "type": "registered",
                "message": "Registration successful, processing queued events",
                "filters": {"types": ["transfer"], "account_ids": [G1], "asset_codes": ["XLM"], "min_amount": "100"},
            },
        )
        self.assertEqual((b.registered, len(b.unregistered)), (1, 0))

    def test_unknownTypesReported(self):
        b = self.make()
        conn, client = self.connect(b)
        register(b, client, {"types": ["payment", "trade"]})
        reply = conn.messages()[-1]
        self.assertEqual(reply["type"], "registered")
        self.assertEqual(reply["filters"]["types"], ["payment", "trade"])
        self.assertEqual(reply["unknown_types"], ["trade"])
        self.assertIn("'trade'", reply["warnings"][0])

    def test_missingFilters(self):
        """
        A register without filters means no filtering.
        """
        b = self.make()
        conn, client = self.connect(b)
        b.received(client, b'{"type": "register"}', False)
        self.assertEqual(conn.messages()[-1]["filters"], GUIDE_WELCOME["format"]["filters"])
        b.broadcast([plainEvent(1)])
        self.assertEqual(conn.events(), [eventId(1)])

    def test_reregister(self):
        """
        A second register replaces the filters and gets its own reply; events follow the new
        filters.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client, {"asset_codes": ["USDC"]})
        b.broadcast([tokenEvent(1), tokenEvent(2, code="XLM")])
        register(b, client, {"asset_codes": ["XLM"]})
        b.broadcast([tokenEvent(3), tokenEvent(4, code="XLM")])
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
        self.assertEqual(b.registered, 1)


class QueueTests(BroadcasterTestsMixin, SynchronousTestCase):
    def test_queuedThenLive(self):
        """
        Events seen while unregistered are filtered and sent after the reply, in order, then
        live events follow.
        """
        b = self.make()
        conn, client = self.connect(b)
        b.broadcast([tokenEvent(1), tokenEvent(2, code="XLM"), tokenEvent(3), plainEvent(4)])
        self.assertEqual(conn.types(), ["welcome"])
        register(b, client, {"asset_codes": ["USDC"]})
        b.broadcast([tokenEvent(5), tokenEvent(6, code="XLM")])
        self.assertEqual(conn.types(), ["welcome", "registered", "contract_event", "contract_event", "contract_event"])
        self.assertEqual(conn.events(), [eventId(1), eventId(3), eventId(5)])
        self.assertEqual(b.delivered, 3)

    def test_oldestDropped(self):
        """
        Beyond max_queue_size the oldest queued event is dropped and counted.
        """
        b = self.make(max_queue_size=3)
        conn, client = self.connect(b)
        b.broadcast([plainEvent(n) for n in range(1, 6)])
        self.assertEqual(b.dropped, 2)
        register(b, client)
        self.assertEqual(conn.events(), [eventId(3), eventId(4), eventId(5)])

    def test_dropLogRateLimited(self):
        """
        "message queue full" is logged at most once per log_interval per client, with its address
        and the number dropped since the last line; the rest is logged on registration.
        """
        b = self.make(max_queue_size=2, log_interval=10, registration_timeout=100)
        conn, client = self.connect(b, "tcp4:192.0.2.7:5555")
        other, otherClient = self.connect(b, "tcp4:192.0.2.8:6666")
        b.broadcast([plainEvent(n) for n in range(1, 4)])  # one drop each
        lines = self.logs("message queue full")
        self.assertEqual(sorted(e["peer"] for e in lines), ["tcp4:192.0.2.7:5555", "tcp4:192.0.2.8:6666"])
        self.assertEqual([e["count"] for e in lines], [1, 1])
        b.broadcast([plainEvent(n) for n in range(4, 10)])  # six more each, not logged yet
        self.assertEqual(len(self.logs("message queue full")), 2)
        self.clock.advance(10)
        b.broadcast([plainEvent(10)])
        lines = self.logs("message queue full")
        self.assertEqual(len(lines), 4)
        self.assertEqual([e["count"] for e in lines[2:]], [7, 7])
        b.broadcast([plainEvent(11)])
        register(b, client)
        lines = self.logs("message queue full")
        self.assertEqual(len(lines), 5)
        self.assertEqual((lines[-1]["peer"], lines[-1]["count"]), ("tcp4:192.0.2.7:5555", 1))
        self.assertEqual(b.dropped, 18)

    def test_noClientsNoWork(self):
        """
        Without history, an event nobody takes is not framed.
        """
        calls = []
        b = self.make(history_size=0, prepare=lambda payload: calls.append(payload) or payload)
        b.broadcast([plainEvent(1)])
        conn, client = self.connect(b)
        register(b, client, {"asset_codes": ["USDC"]})
        b.broadcast([plainEvent(2), tokenEvent(3, code="XLM"), tokenEvent(4)])
        events = [c for c in calls if c.startswith(b'{"type":"contract_event"')]
        self.assertEqual(len(events), 1)  # the USDC event only


class ErrorReplyTests(BroadcasterTestsMixin, SynchronousTestCase):
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
        b = self.make()
        conn, client = self.connect(b)
        register(b, client, {"asset_codes": ["XLM"]})
        for payload, binary, code, field in self.cases:
            before = len(conn.frames)
            b.received(client, payload, binary)
            self.assertEqual(len(conn.frames), before + 1, payload[:40])
            reply = conn.messages()[-1]
            self.assertEqual(reply["type"], "error", payload[:40])
            self.assertEqual(reply["error"], code, payload[:40])
            self.assertIsInstance(reply["message"], str)
            self.assertEqual(reply.get("field"), field, payload[:40])
            self.assertEqual(set(reply) - {"field"}, {"type", "error", "message"})
        self.assertIsNone(conn.closed)
        self.assertEqual(b.errors_sent, len(self.cases))
        # the filters registered before are still in force
        b.broadcast([tokenEvent(1), tokenEvent(2, code="XLM")])
        self.assertEqual(conn.events(), [eventId(2)])

    def test_errorBeforeRegisterKeepsTimer(self):
        """
        A bad message does not count as registering: the timeout still applies.
        """
        b = self.make(registration_timeout=10)
        conn, client = self.connect(b)
        b.received(client, b"{}", False)
        self.clock.advance(10)
        self.assertEqual(conn.closed, (4008, "registration timeout"))

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
        b = self.make()
        conn, client = self.connect(b)
        b.received(client, payload, binary)
        replies = conn.messages()[1:]
        self.assertEqual(len(replies), 1)
        self.assertIn(replies[0]["type"], ("registered", "error"))
        if replies[0]["type"] == "error":
            self.assertNotEqual(replies[0]["error"], "internal_error")
        self.assertIsNone(conn.closed)
        self.assertEqual([e for e in self.logged if e.get("log_failure")], [])


class SlowClientTests(BroadcasterTestsMixin, SynchronousTestCase):
    def test_pauseHoldsAndResumeSends(self):
        """
        While its transport is paused, a client's events are held (and its reads paused); on
        resume they go out in order.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client)
        client.pauseProducing()
        self.assertFalse(conn.reading)
        b.broadcast([plainEvent(n) for n in range(1, 4)])
        self.assertEqual(conn.events(), [])
        self.assertEqual(b.delivered, 0)
        conn.drain()
        self.assertEqual(conn.events(), [eventId(1), eventId(2), eventId(3)])
        self.assertTrue(conn.reading)
        self.assertIsNone(client.backlog)
        self.assertEqual(b.delivered, 3)
        b.broadcast([plainEvent(4)])
        self.assertEqual(conn.events()[-1], eventId(4))

    def test_pauseMidBatch(self):
        """
        The transport pausing in the middle of a batch holds what comes after the chunk being
        written (the transport buffers the chunk itself); resuming while the buffer fills
        again pauses again, keeping order.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client)
        conn.bufferLimit = 3
        conn._sinceResume = 0
        b.broadcast([plainEvent(n) for n in range(1, 26)])
        self.assertEqual(conn.events(), [eventId(n) for n in range(1, 11)])
        self.assertEqual(len(client.backlog), 15)
        conn.drain()
        self.assertEqual(len(conn.events()), 13)
        self.assertTrue(client.paused)
        self.assertFalse(conn.reading)
        for _ in range(5):
            conn.drain()
        self.assertEqual(conn.events(), [eventId(n) for n in range(1, 26)])
        self.assertIsNone(client.backlog)

    def test_replyBeforeEventsWhilePaused(self):
        """
        The registered reply keeps its place before the queued events even when the client is
        paused while registering.
        """
        b = self.make()
        conn, client = self.connect(b)
        b.broadcast([plainEvent(1), plainEvent(2)])
        client.pauseProducing()
        register(b, client)
        b.broadcast([plainEvent(3)])
        self.assertEqual(conn.types(), ["welcome"])
        conn.drain()
        self.assertEqual(conn.types(), ["welcome", "registered"] + ["contract_event"] * 3)
        self.assertEqual(conn.events(), [eventId(1), eventId(2), eventId(3)])

    def test_closedAtLimit(self):
        """
        A paused client with max_queue_size messages held is closed (4029, "message queue full"),
        logged and counted; other clients keep receiving.
        """
        b = self.make(max_queue_size=5)
        slow, slowClient = self.connect(b, "tcp4:198.51.100.1:1")
        fast, fastClient = self.connect(b, "tcp4:198.51.100.2:2")
        register(b, slowClient)
        register(b, fastClient)
        slowClient.pauseProducing()
        b.broadcast([plainEvent(n) for n in range(1, 6)])
        self.assertIsNone(slow.closed)
        b.broadcast([plainEvent(6), plainEvent(7)])
        self.assertEqual(slow.closed, (4029, "message queue full"))
        self.assertEqual(slow.messages()[-1]["error"], "queue_full")
        self.assertEqual(b.closed_queue_full, 1)
        self.assertEqual(b.registered, 1)
        self.assertEqual(fast.events(), [eventId(n) for n in range(1, 8)])
        [line] = self.logs("closing WebSocket client")
        self.assertEqual(line["peer"], "tcp4:198.51.100.1:1")
        # a late resume of the closed client sends nothing
        slowClient.resumeProducing()
        self.assertEqual(slow.events(), [])
        b.disconnected(slowClient)
        self.assertEqual(b.connected, 1)

    def test_brokenConnection(self):
        """
        A connection whose write raises is aborted and forgotten; the others still get the event.
        """
        b = self.make()
        broken = BrokenConnection("tcp4:203.0.113.1:1")
        brokenClient = b.connect(broken)
        ok, okClient = self.connect(b)
        register(b, brokenClient)
        register(b, okClient)
        b.broadcast([plainEvent(1), plainEvent(2)])
        self.assertTrue(broken.aborted)
        self.assertEqual(ok.events(), [eventId(1), eventId(2)])
        self.assertEqual(b.registered, 1)
        [failure] = [e["log_failure"] for e in self.logged if "log_failure" in e]
        self.assertIsInstance(failure.value, OSError)


class FanOutTests(BroadcasterTestsMixin, SynchronousTestCase):
    def test_serialisedAndFramedOnce(self):
        """
        Each event is serialised, keyed and framed once however many clients receive it, and
        all of them receive the very same frame.
        """
        encoded, prepared, keyed = [], [], []
        real_seal, real_keys = broadcaster_module.seal, broadcaster_module.eventKeys

        def seal(message):
            encoded.append(message["id"])
            return real_seal(message)

        def event_keys(message):
            keyed.append(message["id"])
            return real_keys(message)

        def prepare(payload):
            frame = ("frame", payload)
            prepared.append(frame)
            return frame

        b = self.make(prepare=prepare)
        conns = []
        for i in range(50):
            conn, client = self.connect(b, "tcp4:10.0.1.%d:1" % i)
            register(b, client, {} if i % 2 else {"asset_codes": ["USDC"]})
            conns.append(conn)
        self.patch(broadcaster_module, "seal", seal)
        self.patch(broadcaster_module, "eventKeys", event_keys)
        prepared[:] = []
        b.broadcast([tokenEvent(1), tokenEvent(2, code="XLM"), plainEvent(3)])
        self.assertEqual(encoded, [eventId(1), eventId(2), eventId(3)])
        self.assertEqual(keyed, [eventId(1), eventId(2), eventId(3)])
        self.assertEqual(len(prepared), 3)
        self.assertEqual(sum(len(c.frames) - 2 for c in conns), 50 + 25 + 25)
        self.assertIs(conns[0].frames[-1], conns[1].frames[-3])
        self.assertEqual(b.delivered, 100)

    def test_filtersEndToEnd(self):
        """
        Each client receives exactly the events its filters match.
        """
        b = self.make()
        cases = {
            "all": {},
            "usdc": {"asset_codes": ["USDC"]},
            "xlm": {"asset_codes": ["XLM"]},
            "g3": {"account_ids": [G3]},
            "big": {"min_amount": "1000"},
            "payment": {"types": ["payment"]},
            "mint": {"types": ["mint"]},
            "trade": {"types": ["trade"]},
        }
        conns = {}
        for name, filters in cases.items():
            conn, client = self.connect(b, name)
            register(b, client, filters)
            conns[name] = conn
        events = [
            tokenEvent(1),
            tokenEvent(2, code="XLM", to=G3, amount="5000"),
            tokenEvent(3, verified=False, contract=LOOKALIKE),
            tokenEvent(4, event_type="mint", frm=None, to=G3),
            plainEvent(5),
        ]
        b.broadcast(events)
        got = {name: [int(i.split("-")[0]) for i in conn.events()] for name, conn in conns.items()}
        self.assertEqual(
            got,
            {
                "all": [1, 2, 3, 4, 5],
                "usdc": [1, 4],
                "xlm": [2],
                "g3": [2, 4],
                "big": [2],
                "payment": [1, 2, 3],
                "mint": [4],
                "trade": [],
            },
        )

    def test_badEventSkipped(self):
        """
        An event that cannot be serialised is logged and skipped; the others go out.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client)
        bad = plainEvent(2)
        bad["data"] = object()
        b.broadcast([plainEvent(1), bad, plainEvent(3)])
        self.assertEqual(conn.events(), [eventId(1), eventId(3)])
        [line] = [e for e in self.logged if e.get("id") == eventId(2)]
        self.assertIn("is not JSON serializable", line["error"])

    def test_disconnectedGetsNothing(self):
        b = self.make()
        conn, client = self.connect(b)
        register(b, client)
        b.disconnected(client)
        b.disconnected(client)
        b.broadcast([plainEvent(1)])
        self.assertEqual(conn.events(), [])
        self.assertEqual((b.connected, b.registered), (0, 0))

    def test_stats(self):
        b = self.make(max_queue_size=1)
        conn, client = self.connect(b)
        other, otherClient = self.connect(b)
        register(b, client)
        b.received(client, b"?", False)
        b.broadcast([plainEvent(1), plainEvent(2)])
        self.assertEqual(
            b.stats(),
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
                "replayed": 0,
                "history_events": 2,
            },
        )

    def test_memoryPerIdleClient(self):
        """
        Our own state for an idle registered client (filtering on one account) stays within
        1 KiB: the Client, its filters and its index entry.
        """
        self.patch(broadcaster_module, "log", Logger(observer=lambda event: None))
        b = self.make()
        conns = [FakeConnection("tcp4:10.2.%d.%d:1" % (i // 256, i % 256)) for i in range(1000)]
        register_payload = json.dumps({"type": "register", "filters": {"account_ids": [G1]}}).encode()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for conn in conns:
                client = b.connect(conn)
                b.received(client, register_payload, False)
                conn.frames = []
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
        perClient = growth / len(conns)
        self.assertLess(perClient, 1024, "{:.0f} bytes per client".format(perClient))


class ShutdownTests(BroadcasterTestsMixin, SynchronousTestCase):
    def test_closesAllAndWaits(self):
        b = self.make()
        conns = [self.connect(b, "c%d" % i) for i in range(3)]
        register(b, conns[0][1])
        d = b.shutdown(5)
        self.assertEqual([c.closed for c, _ in conns], [(1001, "server shutting down")] * 3)
        self.assertNoResult(d)
        for _, client in conns:
            b.disconnected(client)
        # fires a turn later, once the protocol finished its connectionLost
        self.assertNoResult(d)
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_abortsAfterTimeout(self):
        b = self.make()
        conn, client = self.connect(b)
        d = b.shutdown(5)
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.successResultOf(d)
        self.assertTrue(conn.aborted)
        self.assertEqual(b.connected, 0)

    def test_noClients(self):
        self.successResultOf(self.make().shutdown(5))

    def test_connectWhileStopping(self):
        b = self.make()
        d = b.shutdown(5)
        self.successResultOf(d)
        conn, client = self.connect(b)
        self.assertEqual(conn.closed, (1001, "server shutting down"))
        self.assertEqual(conn.frames, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
