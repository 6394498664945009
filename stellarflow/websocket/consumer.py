"""
SaveToWebSocket: the consumer that streams events to WebSocket clients with per-client filters.

It listens with Autobahn on a Twisted endpoint; its L{ClientHub} owns the clients.
C{consume} fans a whole batch out synchronously and acknowledges at once: the batch is then in
the clients' queues.  What a slow client cannot take is dropped for that client alone (see
docs/websocket.md), never held against the pipeline.

Recent events are kept for clients that resume after a reconnect; when the pipeline also stores
its events durably (PostgreSQL), the consumer is built with that store (C{history}) and older
positions are replayed from it.

The constructor's arguments are the config keys (C{fromConfig} passes the validated config as
keyword arguments), which is why they are spelled as in the YAML file.
"""

from twisted.internet.defer import gatherResults, maybeDeferred, succeed
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from zope.interface import implementer, provider

from stellarflow.compat.autobahn import prepareTextFrame
from stellarflow.interfaces import IComponentFactory, IConsumer, IStatsProvider
from stellarflow.logs import RateLimitedLog
from stellarflow.reuseport import ReusePortEndpoint
from stellarflow.schema import Boolean, Field, Integer, ListOf, Number, Schema, String, join
from stellarflow.websocket.auth import Authenticator, authSchema
from stellarflow.websocket.hub import ClientHub
from stellarflow.websocket.limits import (
    ConnectionGuard,
    GuardedFactory,
    networksValidator,
    parseNetworks,
    socketBudget,
)
from stellarflow.websocket.protocol import BroadcastServerFactory
from stellarflow.websocket.tls import TLSConfigError, serverOptions


class ListenError(Exception):
    """
    The server cannot listen (port in use, address not available).
    """


def _path(value):
    if not value.startswith("/"):
        return 'a path starting with "/"'
    if "?" in value or "#" in value or " " in value:
        return "a path without query, fragment or spaces"
    return None


def _checkTLS(config, path, problems):
    """
    wss:// needs both files, readable, holding a matching certificate and key.
    """
    cert, key = config["tls_certificate"], config["tls_key"]
    if bool(cert) != bool(key):
        missing = "tls_key" if cert else "tls_certificate"
        problems.add(join(path, missing), "missing; expected it beside {}".format("tls_certificate" if cert else "tls_key"))
        return
    if cert:
        try:
            serverOptions(cert, key)
        except TLSConfigError as e:
            problems.add(join(path, "tls_certificate"), str(e))


@provider(IComponentFactory)
@implementer(IConsumer, IStatsProvider)
class SaveToWebSocket:
    """
    A WebSocket server streaming every message of its pipeline to the clients whose filters
    match.  Constructor arguments are the config keys, plus timeouts tests may shorten.
    """

    log = Logger()

    #: Most connections the kernel queues before we accept them (capped by net.core.somaxconn).
    backlog = 1024

    configSchema = Schema(
        {
            "port": Field(Integer(0, 65535), 8080, 'TCP port ("8080" or 8080; 0: any free port)'),
            "path": Field(String(validator=_path), "/ws", "the WebSocket endpoint; other paths get HTTP 404"),
            "max_queue_size": Field(
                Integer(1), 1000, "events queued per unregistered client / held per client that is not reading"
            ),
            "host": Field(String(), "", 'interface to listen on ("": all IPv4 interfaces; "::" for IPv6)'),
            "ping_interval": Field(Number(0), 30, "seconds from a pong to the next ping (0: no heartbeat)"),
            "pong_timeout": Field(Number(0), 60, "seconds to wait for a pong before dropping the client"),
            "registration_timeout": Field(
                Number(0, exclusiveMinimum=True), 10, "seconds a client has to send its register message"
            ),
            "max_message_size": Field(Integer(64), 65536, "largest message a client may send, in bytes"),
            "max_connections": Field(Integer(1), 10000, "concurrent clients; more get HTTP 503"),
            "allowed_origins": Field(
                ListOf(String(nonEmpty=True)), [], "accepted browser Origin headers (exact); empty: any"
            ),
            "history_size": Field(
                Integer(0), 10000, "recent events kept for clients that resume (0: no resume)"
            ),
            "history_ledgers": Field(
                Integer(0), 0, "keep only the events of the newest N ledgers too (0: no ledger bound)"
            ),
            "max_replay": Field(Integer(1), 100000, "most events one resume may replay; larger ones are refused"),
            "cursor_interval": Field(
                Number(0), 30, "seconds between cursor messages to clients that got no event (0: none)"
            ),
            "tls_certificate": Field(
                String(), "", "PEM file: the server certificate, then its chain; serves wss:// (with tls_key)"
            ),
            "tls_key": Field(String(), "", "PEM file: the certificate's private key (unencrypted)"),
            "auth": Field(authSchema, {}, "client authentication (off unless tokens or a JWT key are set; below)"),
            "max_connections_per_ip": Field(
                Integer(1), 500, "sockets one address may hold, open or upgrading; more get HTTP 429"
            ),
            "connection_rate_per_ip": Field(
                Number(0, exclusiveMinimum=True), 20, "new connections per second one address may open, sustained (HTTP 429 beyond)"
            ),
            "connection_burst_per_ip": Field(
                Integer(1), 200, "new connections one address may open at once before connection_rate_per_ip applies"
            ),
            "trusted_proxies": Field(
                ListOf(String(nonEmpty=True, validator=lambda v: networksValidator([v]))),
                [],
                "reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the client for the per-address limits",
            ),
            "upgrade_timeout": Field(
                Number(0), 5, "seconds from TCP connect to a completed WebSocket upgrade (HTTP 408 beyond; 0: none)"
            ),
            "max_upgrading": Field(
                Integer(1), 1000, "sockets still upgrading, beyond max_connections, held at once (more are closed at once)"
            ),
            "max_registers_per_minute": Field(
                Integer(1), 30, "register messages per client per minute (a burst of as many); more: close 4429"
            ),
            "max_filter_entries": Field(
                Integer(1), 2000, "entries in a client's filters (types, account_ids and asset_codes together)"
            ),
            "fd_reserve": Field(
                Integer(0), 64, "descriptors kept for the state file, database, RPC and admin (see docs/operations.md)"
            ),
            "dashboard": Field(Boolean(), True, "serve the live dashboard page (docs/dashboard.md) on this port"),
            "dashboard_path": Field(
                String(validator=_path), "/", "where the page is (its files and /client.js beside it)"
            ),
            "reuse_port": Field(
                Boolean(), False, "listen with SO_REUSEPORT: N processes share the port (docs/scaling.md)"
            ),
        },
        check=_checkTLS,
    )

    @classmethod
    def fromConfig(cls, config, context):
        return cls(context.reactor, history=context.history, produced_types=context.produced_types, **config)

    def stats(self):
        """
        Counters for /metrics (names as in docs/operations.md).
        """
        counts = self.hub.stats()
        guard = self.guard.stats()
        refused = self.factory.counters
        return {
            "clients_connected": counts["connected"],
            "clients_registered": counts["registered"],
            "connections_total": counts["connections"],
            "messages_delivered_total": counts["delivered"],
            "messages_dropped_total": counts["dropped"],
            "queue_full_closes_total": counts["closed_queue_full"],
            "errors_sent_total": counts["errors_sent"],
            "clients_replaying": counts["replaying"],
            "replays_total": counts["replays"],
            "replays_refused_total": counts["replays_refused"],
            "events_replayed_total": counts["replayed"],
            "history_events": counts["history_events"],
            "connections_upgrading": guard["upgrading"],
            "sockets": guard["sockets"],
            "socket_budget": self.guard.budget,
            "refused_ip_connections_total": guard["refused_address"],
            "refused_ip_rate_total": guard["refused_rate"],
            "refused_reserve_total": guard["refused_reserve"],
            "dropped_connections_total": guard["dropped"],
            "upgrade_timeouts_total": refused["upgrade_timeouts"],
            "requests_too_large_total": refused["request_too_large"],
            "bad_key_total": refused["bad_key"],
            "refused_full_total": refused["refused_full"],
            "auth_refused_total": refused["auth_refused"],
            "tokens_expired_total": counts["tokens_expired"],
            "registers_limited_total": counts["registers_limited"],
            "filters_refused_total": counts["filters_refused"],
        }

    def __init__(
        self,
        reactor,
        port=8080,
        path="/ws",
        max_queue_size=1000,
        host="",
        ping_interval=30,
        pong_timeout=60,
        registration_timeout=10,
        max_message_size=65536,
        max_connections=10000,
        allowed_origins=(),
        history_size=10000,
        history_ledgers=0,
        max_replay=100000,
        cursor_interval=30,
        replay_options=None,
        tls_certificate="",
        tls_key="",
        auth=None,
        max_connections_per_ip=500,
        connection_rate_per_ip=20,
        connection_burst_per_ip=200,
        trusted_proxies=(),
        upgrade_timeout=5,
        max_upgrading=1000,
        max_registers_per_minute=30,
        max_filter_entries=2000,
        fd_reserve=64,
        dashboard=True,
        dashboard_path="/",
        reuse_port=False,
        close_timeout=2.0,
        shutdown_timeout=5.0,
        history=None,
        produced_types=None,
        fileLimits=None,
    ):
        self.reactor = reactor
        self.tls = serverOptions(tls_certificate, tls_key) if tls_certificate else None
        self.scheme = "wss" if self.tls else "ws"
        self.port = int(port)
        self.path = path
        self.host = host
        self.shutdownTimeout = shutdown_timeout
        self.clientLog = RateLimitedLog(reactor)
        self.authenticator = Authenticator.fromConfig(reactor, auth)
        self.maxConnections = max_connections
        self.maxUpgrading = max_upgrading
        self.fdReserve = fd_reserve
        self.fileLimits = fileLimits or (None, None)
        self.guard = ConnectionGuard(
            reactor,
            max_connections_per_ip,
            connection_rate_per_ip,
            connection_burst_per_ip,
            max_connections + max_upgrading,
            parseNetworks(trusted_proxies),
        )
        self.reusePort = reuse_port
        self.hub = ClientHub(
            reactor,
            prepare=prepareTextFrame,
            maxQueueSize=max_queue_size,
            registrationTimeout=registration_timeout,
            maxConnections=max_connections,
            historySize=history_size,
            historyLedgers=history_ledgers,
            maxReplay=max_replay,
            cursorInterval=cursor_interval,
            store=history,
            replayOptions=replay_options,
            maxRegistersPerMinute=max_registers_per_minute,
            maxFilterEntries=max_filter_entries,
            clientLog=self.clientLog,
            producedTypes=produced_types,
        )
        self.factory = BroadcastServerFactory(
            reactor,
            self.hub,
            path=path,
            maxMessageSize=max_message_size,
            pingInterval=ping_interval,
            pongTimeout=pong_timeout,
            allowedOrigins=allowed_origins,
            upgradeTimeout=upgrade_timeout,
            closeTimeout=close_timeout,
            secure=self.tls is not None,
            guard=self.guard,
            authenticator=self.authenticator,
            clientLog=self.clientLog,
        )
        self.listeningPort = None
        self.dashboard = dashboard
        self.dashboard_path = dashboard_path
        # the dashboard's front waits this long for a request line (then the upgrade deadline,
        # counted from TCP accept, applies)
        self.openTimeout = upgrade_timeout or 5.0

    @property
    def address(self):
        """
        C{host:port} as configured, or as bound once listening (port 0 becomes the real one).
        """
        port = self.listeningPort.getHost().port if self.listeningPort is not None else self.port
        host = self.host or "0.0.0.0"
        return "[{}]:{}".format(host, port) if ":" in host else "{}:{}".format(host, port)

    def _endpoint(self):
        # A deep accept backlog: Twisted's default of 50 makes a burst of reconnecting clients
        # (after a restart, say) wait for SYN retransmissions, one second and more each.
        backlog = min(self.backlog, max(50, self.hub.maxConnections))
        if self.reusePort:
            return ReusePortEndpoint(self.reactor, self.port, backlog=backlog, interface=self.host, tls=self.tls)
        if self.tls is not None:
            return SSL4ServerEndpoint(self.reactor, self.port, self.tls, backlog=backlog, interface=self.host)
        if ":" in self.host:
            return TCP6ServerEndpoint(self.reactor, self.port, backlog=backlog, interface=self.host)
        return TCP4ServerEndpoint(self.reactor, self.port, backlog=backlog, interface=self.host)

    def _site(self):
        """
        What listens: the WebSocket factory alone, or with the dashboard page beside it.
        """
        if not self.dashboard:
            return self.factory
        from stellarflow.dashboard.front import FrontFactory
        from stellarflow.dashboard.site import DashboardResource

        page = DashboardResource(self.path, self.dashboard_path)
        return FrontFactory(self.reactor, self.factory, self.path, page, timeout=self.openTimeout)

    def start(self):
        getrlimit, setrlimit = self.fileLimits
        self.guard.budget, warning = socketBudget(
            self.maxConnections, self.maxUpgrading, self.fdReserve, getrlimit, setrlimit
        )
        if warning:
            self.log.warn("WebSocket server: {problem}", problem=warning)
        site = self._site()
        if site is not self.factory:
            # the dashboard's front reads a request line before the WebSocket protocol exists:
            # count each socket when TCP accepts it (alone, the protocol does that itself)
            site = GuardedFactory(self.guard, site, onDrop=self.factory.dropped)
        d = maybeDeferred(self._endpoint().listen, site)

        def listening(port):
            self.listeningPort = port
            self.log.info(
                "WebSocket server listening on {scheme}://{address}{path} (authentication: {auth})",
                scheme=self.scheme,
                address=self.address,
                path=self.path,
                auth=self.authenticator.kinds if self.authenticator is not None else "off",
            )
            if self.dashboard:
                self.log.info(
                    "Dashboard on {scheme}://{address}{page}",
                    scheme="https" if self.tls else "http",
                    address=self.address,
                    page=self.dashboard_path,
                )

        def failed(f):
            f.trap(CannotListenError)
            raise ListenError("cannot listen on {}: {}".format(self.address, _reason(f.value)))

        return d.addCallbacks(listening, failed)

    def consume(self, batch):
        self.hub.broadcast(batch.messages, batch.cursor)
        return succeed(None)

    def stop(self):
        """
        Close every client with 1001 (going away) and stop listening.  Fires once the port is
        closed and the clients are gone (those still there after C{shutdown_timeout} are
        aborted).
        """
        address = self.address
        port, self.listeningPort = self.listeningPort, None
        stopped = maybeDeferred(port.stopListening) if port is not None else succeed(None)
        closed = self.hub.shutdown(self.shutdownTimeout)
        d = gatherResults([stopped, closed], consumeErrors=True)

        def done(_):
            self.log.info("WebSocket server on {address} stopped", address=address)

        return d.addCallback(done)


def _reason(error):
    """
    Why listening failed, in lower case: "address already in use".
    """
    cause = getattr(error, "socketError", None)
    text = getattr(cause, "strerror", None) or str(cause or error)
    return text[:1].lower() + text[1:]
