"""
The WebSocket server's limits over real loopback sockets, each with its exact HTTP status or
close code and its metric: connections per address, new connections per address, the upgrade
deadline (slowloris), oversized requests, register messages per minute, filter entries, the
descriptor budget, trusted proxies; and the log staying quiet under a flood of bad clients.
"""

import resource

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from tests import edgehelpers as eh
from tests.test_websocket_e2e import E2EMixin, until
from tests.wshelpers import G1, G2, G3


class EdgeTests(E2EMixin, TestCase):
    timeout = 30

    def setUp(self):
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    @defer.inlineCallbacks
    def hold(self, request=None):
        """
        A raw connection that stays open (sends C{request}, if any); aborted at cleanup.
        """
        protocol = eh.RawHTTP(request, untilHeaders=True)
        yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(Factory.forProtocol(lambda: protocol))
        self.addCleanup(lambda: protocol.closed or protocol.transport.abortConnection())
        return protocol

    @defer.inlineCallbacks
    def test_connectionsPerAddress(self):
        """
        max_connections_per_ip sockets from one address are served; one more gets HTTP 429
        with Retry-After; once one closes there is room again.
        """
        yield self.startServer(max_connections_per_ip=2)
        a, b = yield self.connect(2)
        code, data, _ = yield eh.exchange(self.port, eh.upgradeRequest())
        self.assertEqual((code, eh.reasonPhrase(data)), (429, "too many connections from your address"))
        self.assertEqual(eh.header(data, "Retry-After"), "1")
        self.assertEqual(self.consumer.stats()["refused_ip_connections_total"], 1)
        a.dropConnection(abort=True)
        yield until(lambda: self.consumer.guard.held("127.0.0.1") == 1)
        code, _, _ = yield eh.exchange(self.port, eh.upgradeRequest(), untilHeaders=True)
        self.assertEqual(code, 101)

    @defer.inlineCallbacks
    def test_upgradingSocketsCount(self):
        """
        Sockets that have not finished their upgrade hold their address's slots too.
        """
        yield self.startServer(max_connections_per_ip=2)
        yield self.hold()
        yield self.hold()
        yield until(lambda: self.consumer.guard.held("127.0.0.1") == 2)
        code, _, _ = yield eh.exchange(self.port, eh.upgradeRequest())
        self.assertEqual(code, 429)

    @defer.inlineCallbacks
    def test_refusedBeyondPendingAreDropped(self):
        """
        Refused sockets that have not sent their request are held at most 16 per address;
        more are closed at once with no answer (counted in dropped_connections_total).
        """
        from stellarflow.websocket.limits import MAX_REFUSING_PER_ADDRESS

        yield self.startServer(max_connections_per_ip=1)
        yield self.connect()
        for _ in range(MAX_REFUSING_PER_ADDRESS):
            yield self.hold()
        yield until(lambda: self.consumer.guard.stats()["sockets"] == 1 + MAX_REFUSING_PER_ADDRESS)
        code, data, protocol = yield eh.exchange(self.port, None)
        self.assertEqual((code, data, protocol.closed), (None, b"", True))
        self.assertEqual(self.consumer.stats()["dropped_connections_total"], 1)

    @defer.inlineCallbacks
    def test_newConnectionRate(self):
        yield self.startServer(connection_burst_per_ip=3, connection_rate_per_ip=0.001)
        for _ in range(3):
            code, data, _ = yield eh.exchange(self.port, eh.upgradeRequest(), untilHeaders=True)
            self.assertEqual(code, 101)
        code, data, _ = yield eh.exchange(self.port, eh.upgradeRequest())
        self.assertEqual((code, eh.reasonPhrase(data)), (429, "too many new connections from your address"))
        self.assertEqual(self.consumer.stats()["refused_ip_rate_total"], 1)

    @defer.inlineCallbacks
    def test_upgradeTimeout(self):
        """
        A client that does not complete its upgrade within upgrade_timeout (counted from TCP
        connect) gets HTTP 408 and is closed.  With the dashboard sharing the port (the
        default), one that sends no request line at all is closed at the same deadline with no
        answer (the WebSocket protocol does not exist yet).
        """
        yield self.startServer(upgrade_timeout=0.5)
        started = reactor.seconds()
        code, data, protocol = yield eh.exchange(self.port, b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        self.assertEqual((code, eh.reasonPhrase(data), protocol.closed), (408, "Request Timeout", True))
        self.assertGreaterEqual(reactor.seconds() - started, 0.45)
        started = reactor.seconds()
        code, data, protocol = yield eh.exchange(self.port, None)
        self.assertEqual((code, data, protocol.closed), (None, b"", True))
        self.assertGreaterEqual(reactor.seconds() - started, 0.45)
        self.assertEqual(self.consumer.stats()["upgrade_timeouts_total"], 1)
        self.assertEqual(self.consumer.stats()["sockets"], 0)

    @defer.inlineCallbacks
    def test_upgradeTimeoutWithoutDashboard(self):
        yield self.startServer(upgrade_timeout=0.5, dashboard=False)
        code, _, _ = yield eh.exchange(self.port, None)
        self.assertEqual(code, 408)
        code, _, _ = yield eh.exchange(self.port, b"GET /ws HTTP/1.1\r\n")
        self.assertEqual(code, 408)
        self.assertEqual(self.consumer.stats()["upgrade_timeouts_total"], 2)

    @defer.inlineCallbacks
    def test_requestTooLarge(self):
        yield self.startServer()
        big = b"GET /ws HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n"
        code, data, _ = yield eh.exchange(self.port, big)
        self.assertEqual((code, eh.reasonPhrase(data)), (431, "Request Header Fields Too Large"))
        self.assertEqual(self.consumer.stats()["requests_too_large_total"], 1)

    @defer.inlineCallbacks
    def test_registerRate(self):
        """
        The register message after max_registers_per_minute gets an error rate_limited and
        close 4429.
        """
        yield self.startServer(max_registers_per_minute=3)
        client = yield self.connect()
        for _ in range(3):
            yield self.register(client, {"account_ids": [G1]})
        client.send({"type": "register", "filters": {}})
        wasClean, code, reason = yield client.closedDeferred.addTimeout(10, reactor)
        self.assertEqual((code, reason), (4429, "too many register messages"))
        self.assertEqual(client.errors(), ["rate_limited"])
        self.assertEqual(self.consumer.stats()["registers_limited_total"], 1)

    @defer.inlineCallbacks
    def test_filterEntries(self):
        yield self.startServer(max_filter_entries=2)
        client = yield self.connect()
        yield self.register(client, {"account_ids": [G1, G2]})
        client.send({"type": "register", "filters": {"account_ids": [G1, G2, G3]}})
        yield client.waitFor(lambda c: c.errors())
        self.assertEqual(client.errors(), ["too_many_filter_entries"])
        self.assertIsNone(client.closedWith)
        self.assertEqual(self.consumer.stats()["filters_refused_total"], 1)

    @defer.inlineCallbacks
    def test_descriptorReserve(self):
        """
        With an open-file limit short of max_connections + max_upgrading + fd_reserve, the
        server accepts only what leaves the reserve free: a warning at start, then new sockets
        beyond the budget are closed at once, counted, while open clients go on.
        """
        hard = 64 + 2

        def getrlimit(which):
            return hard, hard

        def setrlimit(which, pair):
            raise ValueError("cannot raise")

        yield self.startServer(fd_reserve=64, max_connections=100, fileLimits=(getrlimit, setrlimit))
        self.assertEqual(self.consumer.guard.budget, 2)
        warnings = [e for e in self.logged if "open-file limit" in str(e.get("problem", ""))]
        self.assertEqual(len(warnings), 1)
        clients = yield self.connect(2)
        code, data, protocol = yield eh.exchange(self.port, eh.upgradeRequest())
        self.assertEqual((code, data, protocol.closed), (None, b"", True))
        stats = self.consumer.stats()
        self.assertEqual((stats["refused_reserve_total"], stats["socket_budget"]), (1, 2))
        yield self.register(clients[0])

    def test_realLimitLeavesReserve(self):
        """
        The real RLIMIT_NOFILE: the budget never exceeds the soft limit less the reserve.
        """
        from stellarflow.websocket.consumer import SaveToWebSocket

        consumer = SaveToWebSocket(reactor, host="127.0.0.1", port=0, max_connections=10**7)
        from stellarflow.websocket.limits import socketBudget

        budget, warning = socketBudget(10**7, 1000, 64)
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.assertLessEqual(budget, soft - 64)
        self.assertIsNotNone(warning)
        self.assertIsNone(consumer.listeningPort)

    @defer.inlineCallbacks
    def test_trustedProxy(self):
        """
        Behind a trusted proxy the limits are per X-Forwarded-For client; an untrusted peer's
        X-Forwarded-For is ignored.
        """
        yield self.startServer(trusted_proxies=["127.0.0.0/8"], max_connections_per_ip=1)
        a = yield self.hold(eh.upgradeRequest(headers=["X-Forwarded-For: 203.0.113.7"]))
        yield a.done
        self.assertEqual(eh.status(a.data), 101)
        code, data, _ = yield eh.exchange(self.port, eh.upgradeRequest(headers=["X-Forwarded-For: 203.0.113.7"]))
        self.assertEqual((code, eh.reasonPhrase(data)), (429, "too many connections from your address"))
        b = yield self.hold(eh.upgradeRequest(headers=["X-Forwarded-For: 1.1.1.1, 203.0.113.8"]))
        yield b.done
        self.assertEqual(eh.status(b.data), 101)
        self.assertEqual(self.consumer.guard.held("203.0.113.8"), 1)
        self.assertEqual(self.consumer.guard.held("127.0.0.1"), 0)

    @defer.inlineCallbacks
    def test_untrustedForwardedForIgnored(self):
        yield self.startServer(max_connections_per_ip=1)
        a = yield self.hold(eh.upgradeRequest(headers=["X-Forwarded-For: 203.0.113.7"]))
        yield a.done
        code, _, _ = yield eh.exchange(self.port, eh.upgradeRequest(headers=["X-Forwarded-For: 203.0.113.9"]))
        self.assertEqual(code, 429)

    @defer.inlineCallbacks
    def test_floodLogsOneLinePerInterval(self):
        """
        100 bad requests and 100 refused ones write a handful of lines, not one per connection,
        and no Autobahn "dropping connection" warning.
        """
        yield self.startServer(connection_burst_per_ip=100, connection_rate_per_ip=0.001)
        for i in range(200):
            code, _, _ = yield eh.exchange(self.port, b"GARBAGE /ws HTTP/1.1\r\n\r\n" if i < 100 else eh.upgradeRequest())
            self.assertTrue(code is None or 400 <= code < 500, code)
        lines = [e for e in self.logged if e.get("log_namespace", "").startswith("stellarflow.websocket")
                 and e["log_level"].name in ("info", "warn", "error")
                 and "listening" not in e.get("log_format", "")]
        self.assertLessEqual(len(lines), 4, [e.get("log_format") for e in lines])
        self.assertFalse([e for e in self.logged if "dropping connection" in str(e.get("log_format"))])
