"""
Tests for L{stellarflow.websocket.session}: a client's two bounded queues (events queued while
unregistered, messages held while paused), flow control and broken connections, through the
hub with fake connections and a Clock.
"""

from twisted.trial.unittest import SynchronousTestCase

from tests.test_websocket_hub import HubTestsMixin
from tests.wshelpers import BrokenConnection, eventId, plainEvent, register, tokenEvent


class PendingQueueTests(HubTestsMixin, SynchronousTestCase):
    """
    Events seen while a client is unregistered: queued, oldest dropped at C{max_queue_size}.
    """

    def test_queuedThenLive(self):
        """
        Events seen while unregistered are filtered and sent after the reply, in order, then
        live events follow.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        hub.broadcast([tokenEvent(1), tokenEvent(2, code="XLM"), tokenEvent(3), plainEvent(4)])
        self.assertEqual(conn.types(), ["welcome"])
        register(hub, session, {"asset_codes": ["USDC"]})
        hub.broadcast([tokenEvent(5), tokenEvent(6, code="XLM")])
        self.assertEqual(conn.types(), ["welcome", "registered", "contract_event", "contract_event", "contract_event"])
        self.assertEqual(conn.events(), [eventId(1), eventId(3), eventId(5)])
        self.assertEqual(hub.counters.delivered, 3)

    def test_oldestDropped(self):
        """
        Beyond max_queue_size the oldest queued event is dropped and counted.
        """
        hub = self.make(maxQueueSize=3)
        conn, session = self.connect(hub)
        hub.broadcast([plainEvent(n) for n in range(1, 6)])
        self.assertEqual(hub.counters.dropped, 2)
        register(hub, session)
        self.assertEqual(conn.events(), [eventId(3), eventId(4), eventId(5)])

    def test_limitExactly(self):
        """
        The event that fills the queue to max_queue_size is kept and nothing is dropped; the
        one after it drops exactly the oldest.
        """
        hub = self.make(maxQueueSize=4)
        conn, session = self.connect(hub)
        hub.broadcast([plainEvent(n) for n in range(1, 5)])
        self.assertEqual((session.queued, hub.counters.dropped), (4, 0))
        hub.broadcast([plainEvent(5)])
        self.assertEqual((session.queued, hub.counters.dropped), (4, 1))
        register(hub, session)
        self.assertEqual(conn.events(), [eventId(n) for n in range(2, 6)])
        self.assertEqual(session.queued, 0)

    def test_dropLogRateLimited(self):
        """
        "message queue full" is logged at most once per log_interval per client, with its address
        and the number dropped since the last line; the rest is logged on registration.
        """
        hub = self.make(maxQueueSize=2, logInterval=10, registrationTimeout=100)
        conn, session = self.connect(hub, "tcp4:192.0.2.7:5555")
        other, otherSession = self.connect(hub, "tcp4:192.0.2.8:6666")
        hub.broadcast([plainEvent(n) for n in range(1, 4)])  # one drop each
        lines = self.logs("message queue full")
        self.assertEqual(sorted(e["peer"] for e in lines), ["tcp4:192.0.2.7:5555", "tcp4:192.0.2.8:6666"])
        self.assertEqual([e["count"] for e in lines], [1, 1])
        hub.broadcast([plainEvent(n) for n in range(4, 10)])  # six more each, not logged yet
        self.assertEqual(len(self.logs("message queue full")), 2)
        self.clock.advance(10)
        hub.broadcast([plainEvent(10)])
        lines = self.logs("message queue full")
        self.assertEqual(len(lines), 4)
        self.assertEqual([e["count"] for e in lines[2:]], [7, 7])
        hub.broadcast([plainEvent(11)])
        register(hub, session)
        lines = self.logs("message queue full")
        self.assertEqual(len(lines), 5)
        self.assertEqual((lines[-1]["peer"], lines[-1]["count"]), ("tcp4:192.0.2.7:5555", 1))
        self.assertEqual(hub.counters.dropped, 18)


class BacklogTests(HubTestsMixin, SynchronousTestCase):
    """
    Messages held while a client's transport is paused: sent on resume, closed (4029) beyond
    C{max_queue_size}.
    """

    def test_pauseHoldsAndResumeSends(self):
        """
        While its transport is paused, a client's events are held (and its reads paused); on
        resume they go out in order.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session)
        session.pauseProducing()
        self.assertFalse(conn.reading)
        hub.broadcast([plainEvent(n) for n in range(1, 4)])
        self.assertEqual(conn.events(), [])
        self.assertEqual(hub.counters.delivered, 0)
        conn.drain()
        self.assertEqual(conn.events(), [eventId(1), eventId(2), eventId(3)])
        self.assertTrue(conn.reading)
        self.assertEqual(session.held, 0)
        self.assertFalse(session.holding)
        self.assertEqual(hub.counters.delivered, 3)
        hub.broadcast([plainEvent(4)])
        self.assertEqual(conn.events()[-1], eventId(4))

    def test_pauseMidBatch(self):
        """
        The transport pausing in the middle of a batch holds what comes after the chunk being
        written (the transport buffers the chunk itself); resuming while the buffer fills
        again pauses again, keeping order.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        register(hub, session)
        conn.bufferLimit = 3
        conn.sinceResume = 0
        hub.broadcast([plainEvent(n) for n in range(1, 26)])
        self.assertEqual(conn.events(), [eventId(n) for n in range(1, 11)])
        self.assertEqual(session.held, 15)
        conn.drain()
        self.assertEqual(len(conn.events()), 13)
        self.assertTrue(session.paused)
        self.assertFalse(conn.reading)
        for _ in range(5):
            conn.drain()
        self.assertEqual(conn.events(), [eventId(n) for n in range(1, 26)])
        self.assertEqual(session.held, 0)

    def test_replyBeforeEventsWhilePaused(self):
        """
        The registered reply keeps its place before the queued events even when the client is
        paused while registering.
        """
        hub = self.make()
        conn, session = self.connect(hub)
        hub.broadcast([plainEvent(1), plainEvent(2)])
        session.pauseProducing()
        register(hub, session)
        hub.broadcast([plainEvent(3)])
        self.assertEqual(conn.types(), ["welcome"])
        conn.drain()
        self.assertEqual(conn.types(), ["welcome", "registered"] + ["contract_event"] * 3)
        self.assertEqual(conn.events(), [eventId(1), eventId(2), eventId(3)])

    def test_closedAtLimit(self):
        """
        A paused client with max_queue_size messages held is closed (4029, "message queue full"),
        logged and counted; other clients keep receiving.
        """
        hub = self.make(maxQueueSize=5)
        slow, slowSession = self.connect(hub, "tcp4:198.51.100.1:1")
        fast, fastSession = self.connect(hub, "tcp4:198.51.100.2:2")
        register(hub, slowSession)
        register(hub, fastSession)
        slowSession.pauseProducing()
        hub.broadcast([plainEvent(n) for n in range(1, 6)])
        self.assertIsNone(slow.closed)
        hub.broadcast([plainEvent(6), plainEvent(7)])
        self.assertEqual(slow.closed, (4029, "message queue full"))
        self.assertEqual(slow.messages()[-1]["error"], "queue_full")
        # its backlog is dropped: the error comes right after what was written before it paused
        self.assertEqual(slow.events(), [eventId(n) for n in range(1, 6)][: len(slow.events())])
        self.assertEqual(slowSession.held, 0)
        # it has the drain time to read them and reads again, so its close reply is seen
        self.assertEqual(slow.drainTimeout, hub.queueFullDrain)
        self.assertTrue(slow.reading)
        self.assertEqual(hub.counters.closedQueueFull, 1)
        self.assertEqual(hub.registered, 1)
        self.assertEqual(fast.events(), [eventId(n) for n in range(1, 8)])
        [line] = self.logs("closing WebSocket client")
        self.assertEqual(line["peer"], "tcp4:198.51.100.1:1")
        # a late resume of the closed client sends nothing
        slowSession.resumeProducing()
        self.assertEqual(slow.events(), [])
        hub.disconnected(slowSession)
        self.assertEqual(hub.connected, 1)

    def test_limitExactly(self):
        """
        The message that brings what is held to max_queue_size is held and the client stays
        open; the one after it closes the client.
        """
        hub = self.make(maxQueueSize=4)
        conn, session = self.connect(hub)
        register(hub, session)
        session.pauseProducing()
        hub.broadcast([plainEvent(n) for n in range(1, 5)])
        self.assertEqual(session.held, 4)
        self.assertIsNone(conn.closed)
        self.assertEqual(hub.counters.closedQueueFull, 0)
        hub.broadcast([plainEvent(5)])
        self.assertEqual(conn.closed, (4029, "message queue full"))
        self.assertEqual(hub.counters.closedQueueFull, 1)

    def test_limitCountsRepliesToo(self):
        """
        The server's own messages held count towards the limit like events.
        """
        hub = self.make(maxQueueSize=3)
        conn, session = self.connect(hub)
        session.pauseProducing()
        register(hub, session)  # the reply is held: 1
        hub.broadcast([plainEvent(1), plainEvent(2)])  # 3
        self.assertIsNone(conn.closed)
        hub.received(session, b"?", False)  # an error reply: one more
        self.assertEqual(conn.closed, (4029, "message queue full"))

    def test_brokenConnection(self):
        """
        A connection whose write raises is aborted and forgotten; the others still get the event.
        """
        hub = self.make()
        broken = BrokenConnection("tcp4:203.0.113.1:1")
        brokenSession = hub.connect(broken)
        ok, okSession = self.connect(hub)
        register(hub, brokenSession)
        register(hub, okSession)
        hub.broadcast([plainEvent(1), plainEvent(2)])
        self.assertTrue(broken.aborted)
        self.assertEqual(ok.events(), [eventId(1), eventId(2)])
        self.assertEqual(hub.registered, 1)
        [failure] = [e["log_failure"] for e in self.logged if "log_failure" in e]
        self.assertIsInstance(failure.value, OSError)
