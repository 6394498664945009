"""
Tests for L{stellarflow.websocket.broadcaster}: the fan-out of events to the clients' sessions,
through the hub with fake connections and a Clock (no sockets).
"""

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.websocket import broadcaster as broadcasterModule
from tests.test_websocket_hub import HubTestsMixin
from tests.wshelpers import G3, LOOKALIKE, eventId, plainEvent, register, tokenEvent


class FanOutTests(HubTestsMixin, SynchronousTestCase):
    def test_serialisedAndFramedOnce(self):
        """
        Each event is serialised, keyed and framed once however many clients receive it, and
        all of them receive the very same frame.
        """
        encoded, prepared, keyed = [], [], []
        realSeal, realKeys = broadcasterModule.seal, broadcasterModule.eventKeys

        def seal(message):
            encoded.append(message["id"])
            return realSeal(message)

        def eventKeys(message):
            keyed.append(message["id"])
            return realKeys(message)

        def prepare(payload):
            frame = ("frame", payload)
            prepared.append(frame)
            return frame

        hub = self.make(prepare=prepare)
        conns = []
        for i in range(50):
            conn, session = self.connect(hub, "tcp4:10.0.1.%d:1" % i)
            register(hub, session, {} if i % 2 else {"asset_codes": ["USDC"]})
            conns.append(conn)
        self.patch(broadcasterModule, "seal", seal)
        self.patch(broadcasterModule, "eventKeys", eventKeys)
        prepared[:] = []
        hub.broadcast([tokenEvent(1), tokenEvent(2, code="XLM"), plainEvent(3)])
        self.assertEqual(encoded, [eventId(1), eventId(2), eventId(3)])
        self.assertEqual(keyed, [eventId(1), eventId(2), eventId(3)])
        self.assertEqual(len(prepared), 3)
        self.assertEqual(sum(len(c.frames) - 2 for c in conns), 50 + 25 + 25)
        self.assertIs(conns[0].frames[-1], conns[1].frames[-3])
        self.assertEqual(hub.counters.delivered, 100)

    def test_oneWritePerChunk(self):
        """
        Each client gets one write per chunk of CHUNK_EVENTS events (of those it matches), in
        order.
        """
        hub = self.make()
        everything, allSession = self.connect(hub, "all")
        some, someSession = self.connect(hub, "some")
        register(hub, allSession)
        register(hub, someSession, {"asset_codes": ["XLM"]})
        writes = (len(everything.writes), len(some.writes))
        events = [tokenEvent(n, code="XLM" if n % 2 else "USDC") for n in range(1, 26)]
        hub.broadcast(events)
        self.assertEqual(broadcasterModule.CHUNK_EVENTS, 10)
        self.assertEqual(everything.writes[writes[0]:], [10, 10, 5])
        self.assertEqual(some.writes[writes[1]:], [5, 5, 3])
        self.assertEqual(everything.events(), [eventId(n) for n in range(1, 26)])
        self.assertEqual(some.events(), [eventId(n) for n in range(1, 26, 2)])

    def test_filtersEndToEnd(self):
        """
        Each client receives exactly the events its filters match.
        """
        hub = self.make()
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
            conn, session = self.connect(hub, name)
            register(hub, session, filters)
            conns[name] = conn
        events = [
            tokenEvent(1),
            tokenEvent(2, code="XLM", to=G3, amount="5000"),
            tokenEvent(3, verified=False, contract=LOOKALIKE),
            tokenEvent(4, event_type="mint", frm=None, to=G3),
            plainEvent(5),
        ]
        hub.broadcast(events)
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
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session)
        bad = plainEvent(2)
        bad["data"] = object()
        hub.broadcast([plainEvent(1), bad, plainEvent(3)])
        self.assertEqual(conn.events(), [eventId(1), eventId(3)])
        [line] = [e for e in self.logged if e.get("id") == eventId(2)]
        self.assertIn("is not JSON serializable", line["error"])

    def test_disconnectedGetsNothing(self):
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session)
        hub.disconnected(session)
        hub.disconnected(session)
        hub.broadcast([plainEvent(1)])
        self.assertEqual(conn.events(), [])
        self.assertEqual((hub.connected, hub.registered), (0, 0))

    def test_noClientsNoWork(self):
        """
        Without history, an event nobody takes is not framed.
        """
        calls = []
        hub = self.make(historySize=0, prepare=lambda payload: calls.append(payload) or payload)
        hub.broadcast([plainEvent(1)])
        conn, session = self.connect(hub)
        register(hub, session, {"asset_codes": ["USDC"]})
        hub.broadcast([plainEvent(2), tokenEvent(3, code="XLM"), tokenEvent(4)])
        events = [c for c in calls if c.startswith(b'{"type":"contract_event"')]
        self.assertEqual(len(events), 1)  # the USDC event only
