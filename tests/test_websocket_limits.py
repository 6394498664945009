"""
Tests for L{stellarflow.websocket.limits} (token buckets, the connection guard, trusted
proxies, the descriptor budget), the hub's per-client limits (register rate, filter entries,
token grants and expiry) on a L{Clock}, and L{stellarflow.logs.RateLimitedLog}.
"""

import resource

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.logs import RateLimitedLog
from stellarflow.websocket import hub as hubModule
from stellarflow.websocket.auth import Grant
from stellarflow.websocket.hub import ClientHub
from stellarflow.websocket.limits import (
    MAX_REFUSING_PER_ADDRESS,
    ConnectionGuard,
    TokenBucket,
    clientAddress,
    parseNetworks,
    socketBudget,
)
from tests.wshelpers import G1, G2, G3, FakeConnection, register


class TokenBucketTests(SynchronousTestCase):
    def test_burstThenRate(self):
        bucket = TokenBucket(2, 3, now=0)
        self.assertEqual([bucket.take(0) for _ in range(4)], [True, True, True, False])
        self.assertFalse(bucket.take(0.49))
        self.assertTrue(bucket.take(0.5))
        self.assertFalse(bucket.take(0.5))
        self.assertTrue(bucket.full(100))


class GuardTests(SynchronousTestCase):
    def make(self, perAddress=2, rate=1.0, burst=5, budget=100, trusted=()):
        self.clock = Clock()
        return ConnectionGuard(self.clock, perAddress, rate, burst, budget, parseNetworks(trusted))

    def test_perAddressExactly(self):
        """
        An address holds up to C{maxPerAddress} sockets; one more is refused with 429;
        another address is not affected; a release makes room again.
        """
        guard = self.make(perAddress=2)
        a, b = guard.accept("10.0.0.1"), guard.accept("10.0.0.1")
        self.assertEqual((a.refusal, b.refusal), (None, None))
        c = guard.accept("10.0.0.1")
        self.assertEqual(c.refusal, (429, "too many connections from your address"))
        self.assertIsNone(guard.accept("10.0.0.2").refusal)
        self.assertEqual(guard.counters.refusedAddress, 1)
        guard.release(a)
        guard.release(a)  # idempotent
        self.assertIsNone(guard.accept("10.0.0.1").refusal)
        self.assertEqual(guard.held("10.0.0.1"), 2)

    def test_rate(self):
        guard = self.make(perAddress=100, rate=1.0, burst=3)
        tickets = [guard.accept("10.0.0.1") for _ in range(4)]
        self.assertEqual([t.refusal for t in tickets[:3]], [None] * 3)
        self.assertEqual(tickets[3].refusal, (429, "too many new connections from your address"))
        self.clock.advance(1)
        self.assertIsNone(guard.accept("10.0.0.1").refusal)
        self.assertEqual(guard.counters.refusedRate, 1)

    def test_refusalsBoundedThenDropped(self):
        """
        At most MAX_REFUSING_PER_ADDRESS refused sockets wait for their request; more are
        dropped at once.
        """
        guard = self.make(perAddress=1)
        guard.accept("10.0.0.1")
        refused = [guard.accept("10.0.0.1") for _ in range(MAX_REFUSING_PER_ADDRESS)]
        self.assertTrue(all(t.refusal and not t.drop for t in refused))
        dropped = guard.accept("10.0.0.1")
        self.assertTrue(dropped.drop)
        self.assertEqual(guard.counters.dropped, 1)
        guard.release(dropped)
        guard.release(refused[0])
        self.assertFalse(guard.accept("10.0.0.1").drop)

    def test_budget(self):
        """
        Beyond the socket budget every new socket is dropped, whatever its address; the
        counts come back to zero once all are released.
        """
        guard = self.make(perAddress=10, budget=3)
        tickets = [guard.accept("10.0.0.%d" % i) for i in range(3)]
        over = guard.accept("10.0.0.9")
        self.assertTrue(over.drop)
        self.assertEqual(guard.counters.refusedReserve, 1)
        for t in tickets + [over]:
            guard.release(t)
        self.assertEqual((guard.sockets, guard.upgrading, guard.stats()["addresses"]), (0, 0, 0))

    def test_trustedProxy(self):
        """
        A trusted proxy's sockets are counted under the client its request names.
        """
        guard = self.make(perAddress=1, trusted=["127.0.0.1"])
        t1 = guard.accept("127.0.0.1")
        self.assertIsNone(t1.address)
        guard.forwarded(t1, "203.0.113.5")
        self.assertIsNone(t1.refusal)
        t2 = guard.forwarded(guard.accept("127.0.0.1"), "203.0.113.5")
        self.assertEqual(t2.refusal[0], 429)
        t3 = guard.forwarded(guard.accept("127.0.0.1"), "203.0.113.6")
        self.assertIsNone(t3.refusal)

    def test_sweepForgetsIdleAddresses(self):
        guard = self.make(perAddress=10, rate=1000, burst=1)
        for i in range(2000):
            guard.release(guard.accept("10.1.%d.%d" % (i // 256, i % 256)))
            self.clock.advance(0.01)
        self.assertLess(len(guard._buckets), 1100)


class ClientAddressTests(SynchronousTestCase):
    trusted = parseNetworks(["127.0.0.1", "10.0.0.0/8"])

    def test_untrustedPeerIgnoresHeader(self):
        self.assertEqual(clientAddress("198.51.100.1", "1.2.3.4", self.trusted), "198.51.100.1")

    def test_rightmostUntrusted(self):
        self.assertEqual(clientAddress("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.1.1", self.trusted), "203.0.113.9")

    def test_allTrustedGivesLeftmost(self):
        self.assertEqual(clientAddress("127.0.0.1", "10.0.0.2, 10.0.0.3", self.trusted), "10.0.0.2")

    def test_malformedStops(self):
        self.assertEqual(clientAddress("127.0.0.1", "203.0.113.9, bogus", self.trusted), "127.0.0.1")
        self.assertEqual(clientAddress("127.0.0.1", "", self.trusted), "127.0.0.1")

    def test_ipv6(self):
        self.assertEqual(clientAddress("127.0.0.1", "2001:db8::1", self.trusted), "2001:db8::1")


class SocketBudgetTests(SynchronousTestCase):
    def limits(self, soft, hard, settable=True):
        state = {"soft": soft, "hard": hard, "set": []}

        def getrlimit(which):
            return state["soft"], state["hard"]

        def setrlimit(which, pair):
            state["set"].append(pair)
            if not settable or pair[0] > state["hard"]:
                raise ValueError("not allowed")
            state["soft"] = pair[0]

        return state, getrlimit, setrlimit

    def test_enough(self):
        state, get, set_ = self.limits(100000, 100000)
        self.assertEqual(socketBudget(10000, 1000, 64, get, set_), (11000, None))
        self.assertEqual(state["set"], [])

    def test_raisesSoftLimit(self):
        state, get, set_ = self.limits(1024, 1048576)
        self.assertEqual(socketBudget(10000, 1000, 64, get, set_), (11000, None))
        self.assertEqual(state["soft"], 11064)

    def test_shortKeepsReserve(self):
        """
        Hard limit too low: the budget leaves the reserve free and a warning says why.
        """
        state, get, set_ = self.limits(1024, 4096)
        budget, warning = socketBudget(10000, 1000, 64, get, set_)
        self.assertEqual(budget, 4096 - 64)
        self.assertIn("open-file limit (4096)", warning)
        self.assertIn("raise `ulimit -n`", warning)

    def test_infinity(self):
        state, get, set_ = self.limits(resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        self.assertEqual(socketBudget(5, 5, 64, get, set_), (10, None))


class HubLimitTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.logged = []
        self.patch(hubModule, "log", Logger(observer=self.logged.append))

    def make(self, **kw):
        kw.setdefault("registrationTimeout", 1000)
        return ClientHub(self.clock, **kw)

    def connect(self, hub, grant=None, peer="tcp4:10.0.0.1:1"):
        conn = FakeConnection(peer)
        session = hub.connect(conn) if grant is None else hub.connect(conn, grant)
        return conn, session

    def test_registerRateExactly(self):
        """
        C{maxRegistersPerMinute} messages in a burst are answered; the next closes the client
        with an error rate_limited and 4429; other clients are not affected.
        """
        hub = self.make(maxRegistersPerMinute=3)
        conn, session = self.connect(hub)
        other, otherSession = self.connect(hub, peer="tcp4:10.0.0.2:1")
        for _ in range(3):
            register(hub, session, {"account_ids": [G1]})
        self.assertEqual(conn.types().count("registered"), 3)
        self.assertIsNone(conn.closed)
        register(hub, session, {"account_ids": [G1]})
        self.assertEqual(conn.messages()[-1]["error"], "rate_limited")
        self.assertEqual(conn.closed, (4429, "too many register messages"))
        self.assertEqual(hub.stats()["registers_limited"], 1)
        register(hub, otherSession)
        self.assertEqual(other.types(), ["welcome", "registered"])

    def test_registerRateRefills(self):
        """
        Spread out, one message every 60/N seconds goes on for ever; any message counts
        (a bad one too).
        """
        hub = self.make(maxRegistersPerMinute=2)
        conn, session = self.connect(hub)
        hub.received(session, b"nonsense", False)
        register(hub, session)
        self.clock.advance(30)
        register(hub, session)
        for _ in range(10):
            self.clock.advance(30)
            register(hub, session)
        self.assertIsNone(conn.closed)
        register(hub, session)
        self.assertEqual(conn.closed[0], 4429)

    def test_filterEntriesExactly(self):
        hub = self.make(maxFilterEntries=3)
        conn, session = self.connect(hub)
        register(hub, session, {"account_ids": [G1, G2], "types": ["transfer"]})
        self.assertEqual(conn.types()[-1], "registered")
        register(hub, session, {"account_ids": [G1, G2, G3], "types": ["transfer"]})
        reply = conn.messages()[-1]
        self.assertEqual((reply["error"], reply["field"]), ("too_many_filter_entries", "filters"))
        self.assertIn("4 entries", reply["message"])
        self.assertIsNone(conn.closed)
        self.assertEqual(hub.stats()["filters_refused"], 1)
        # the previous filters stay
        self.assertEqual(conn.messages()[-2]["filters"]["types"], ["transfer"])

    def test_grantOverridesEntries(self):
        hub = self.make(maxFilterEntries=1)
        conn, session = self.connect(hub, Grant(maxFilterEntries=2))
        register(hub, session, {"account_ids": [G1, G2]})
        self.assertEqual(conn.types()[-1], "registered")

    def test_grantAllowedTypesAndAccounts(self):
        hub = self.make()
        conn, session = self.connect(hub, Grant(types=frozenset(["transfer", "mint"]), accountIds=frozenset([G1])))
        register(hub, session, {"types": ["transfer"]})
        reply = conn.messages()[-1]
        self.assertEqual((reply["error"], reply["field"]), ("filter_not_allowed", "filters.account_ids"))
        register(hub, session, {"types": ["burn"], "account_ids": [G1]})
        self.assertEqual(conn.messages()[-1]["field"], "filters.types")
        register(hub, session, {"account_ids": [G1]})  # no types: all types, not allowed
        self.assertEqual(conn.messages()[-1]["field"], "filters.types")
        register(hub, session, {"types": ["mint"], "account_ids": [G1]})
        self.assertEqual(conn.types()[-1], "registered")

    def test_tokenExpiryCloses(self):
        """
        At its token's exp the client gets an error token_expired and close 4401; not a
        moment before.
        """
        self.clock.advance(1000)
        hub = self.make()
        conn, session = self.connect(hub, Grant(expiresAt=1010.0))
        register(hub, session)
        self.clock.advance(9.9)
        self.assertIsNone(conn.closed)
        self.clock.advance(0.1)
        self.assertEqual(conn.messages()[-1]["error"], "token_expired")
        self.assertEqual(conn.closed, (4401, "token expired"))
        self.assertEqual(hub.stats()["tokens_expired"], 1)

    def test_disconnectCancelsExpiry(self):
        hub = self.make()
        conn, session = self.connect(hub, Grant(expiresAt=10.0))
        hub.disconnected(session)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual((hub._registerAt, hub._grants, hub._expiries), ({}, {}, {}))

    def test_noTokenNoOwnState(self):
        """
        Without a token the hub keeps one number per client for its limits.
        """
        hub = self.make()
        self.connect(hub)
        self.assertEqual((len(hub._registerAt), hub._grants, hub._expiries), (1, {}, {}))


class RateLimitedLogTests(SynchronousTestCase):
    def test_oneLinePerIntervalWithCount(self):
        clock = Clock()
        events = []
        logger = Logger(observer=events.append)
        limited = RateLimitedLog(clock, interval=10)
        for i in range(5):
            limited.warn(logger, "k", "refused {peer}", peer="p%d" % i)
        limited.warn(logger, "other", "another kind")
        self.assertEqual(len(events), 2)
        clock.advance(10)
        self.assertEqual(len(events), 3)
        from twisted.logger import formatEvent

        self.assertEqual(formatEvent(events[2]), "4 more in the last 10s, the latest: refused p4")
        clock.advance(10)
        clock.advance(10)
        self.assertEqual(clock.getDelayedCalls(), [])
        limited.warn(logger, "k", "refused {peer}", peer="again")
        self.assertEqual(formatEvent(events[-1]), "refused again")

    def test_stopFlushes(self):
        clock = Clock()
        events = []
        logger = Logger(observer=events.append)
        limited = RateLimitedLog(clock, interval=10)
        limited.info(logger, "k", "x")
        limited.info(logger, "k", "x")
        limited.stop()
        self.assertEqual(len(events), 2)
        self.assertEqual(clock.getDelayedCalls(), [])
        limited.info(logger, "k", "after")
        self.assertEqual(len(events), 3)
        self.assertEqual(clock.getDelayedCalls(), [])


