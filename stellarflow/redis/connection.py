"""
One connection to Redis, kept open: connected and reconnected with backoff by a Twisted
C{ClientService} on the reactor we are given, every command bounded by a timeout.

txredisapi's own connections wait forever for a command issued while disconnected, and its
pools send commands over random connections (which reorders XADDs); so each user here holds
one L{RedisConnection} per purpose (writes, the blocking read, history reads) and a command
issued while it is down fails at once with L{RedisUnavailable}.  A command that times out costs
the connection (the server is presumed gone; it is rebuilt with backoff), so a late reply can
never be taken for the answer to another command.
"""

import random

from twisted.application.internet import ClientService
from twisted.internet.defer import CancelledError, Deferred, DeferredList, TimeoutError, fail
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger

from stellarflow.compat import txredisapi as compat

#: Error replies meaning that this server is not the one to talk to (the connection is rebuilt).
_WRONG_SERVER = ("READONLY", "MASTERDOWN", "LOADING")


class RedisUnavailable(Exception):
    """
    Redis cannot be used right now (not connected, the connection was lost, a command timed
    out); the text says which server, never a password.
    """


class RedisTimeout(RedisUnavailable):
    """
    A command got no reply within its timeout.
    """


def retryDelay(initial=0.5, maximum=10.0, rand=random.random):
    """
    A C{ClientService} retry policy: C{initial * 2 ** (attempt - 1)} capped at C{maximum}, with
    jitter on its upper half.
    """

    def policy(attempt):
        delay = min(maximum, initial * 2 ** min(30, max(0, attempt - 1)))
        return delay / 2 + rand() * delay / 2

    return policy


class SentinelEndpoint:
    """
    A client endpoint that asks the Sentinels of C{address}, in turn, for the address of the
    master of its service, then connects there (the connection is then checked with ROLE).
    """

    log = Logger()

    def __init__(self, reactor, address, timeout):
        self.reactor = reactor
        self.address = address
        self.timeout = timeout

    async def _master(self):
        errors = []
        for host, port in self.address.hosts:
            factory = compat.ProtocolFactory()
            try:
                d = HostnameEndpoint(self.reactor, host, port, timeout=self.timeout).connect(factory)
                d.addTimeout(self.timeout, self.reactor)
                protocol = await d
            except Exception as e:
                errors.append("{}:{}: {}".format(host, port, _text(e)))
                continue
            try:
                d = compat.command(protocol, "SENTINEL", "get-master-addr-by-name", self.address.service)
                d.addTimeout(self.timeout, self.reactor)
                reply = await d
            except Exception as e:
                errors.append("{}:{}: {}".format(host, port, _text(e)))
                continue
            finally:
                protocol.transport.loseConnection()
            if reply:
                return reply[0].decode(), int(reply[1])
            errors.append("{}:{}: no master known for {}".format(host, port, self.address.service))
        raise RedisUnavailable("no Sentinel named a master ({})".format("; ".join(errors)))

    def connect(self, factory):
        d = Deferred.fromCoroutine(self._master())

        def found(hostPort):
            host, port = hostPort
            return HostnameEndpoint(self.reactor, host, port, timeout=self.timeout).connect(factory)

        return d.addCallback(found)


class RedisConnection:
    """
    A kept connection to the Redis at C{address} (a L{stellarflow.redis.url.RedisAddress}).

    @param name: what the connection is for, in logs ("writes", "blocking reads", ...).
    @param commandTimeout: seconds a command may wait for its reply (blocking commands add
        their own block time).
    @param onReady: called with no argument each time a connection becomes usable.
    @param onLost: called with the reason (text) each time the usable connection is lost.

    @ivar ready: whether a connection is usable now.
    @ivar failures: connection attempts that failed in a row; C{retries}: in total.
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        address,
        name="redis",
        commandTimeout=5.0,
        connectTimeout=5.0,
        onReady=None,
        onLost=None,
        retryPolicy=None,
        endpoint=None,
    ):
        self.reactor = reactor
        self.address = address
        self.name = name
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.onReady = onReady
        self.onLost = onLost
        self.retryPolicy = retryPolicy or retryDelay()
        self._endpointGiven = endpoint
        self.protocol = None
        self.failures = 0
        self.retries = 0
        self.lastError = None
        self._service = None
        self._stopped = False
        self._authError = None

    def __repr__(self):
        return "<RedisConnection {} to {}>".format(self.name, self.address.describe())

    @property
    def where(self):
        return self.address.describe()

    @property
    def ready(self):
        return self.protocol is not None and compat.isOpen(self.protocol)

    def _endpoint(self):
        if self._endpointGiven is not None:
            return self._endpointGiven
        address = self.address
        if address.kind == "unix":
            return UNIXClientEndpoint(self.reactor, address.path, timeout=self.connectTimeout)
        if address.kind == "sentinel":
            return SentinelEndpoint(self.reactor, address, self.connectTimeout)
        host, port = address.hosts[0]
        endpoint = HostnameEndpoint(self.reactor, host, port, timeout=self.connectTimeout)
        if address.tls:
            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        return endpoint

    def start(self):
        """
        Connect, and again with backoff whenever the connection is lost, until L{stop}.
        """
        if self._service is not None:
            return
        self._stopped = False
        factory = compat.ProtocolFactory(
            db=self.address.db, username=self.address.username, password=self.address.password, onError=self._onAuthError
        )
        self._service = ClientService(
            self._endpoint(), factory, retryPolicy=self._retry, clock=self.reactor, prepareConnection=self._prepare
        )
        self._service.startService()

    def _retry(self, attempt):
        self.failures += 1
        self.retries += 1
        return self.retryPolicy(attempt)

    def _onAuthError(self, message):
        self._authError = message

    def _prepare(self, protocol):
        """
        A connection is open: wait for AUTH and SELECT (and, behind Sentinel, check that it is
        the master), bounded by the connect timeout; then it is ready.
        """
        self._authError = None
        d = protocol.whenConnected()
        if self.address.kind == "sentinel":
            d.addCallback(lambda _: compat.command(protocol, "ROLE"))
            d.addCallback(self._checkMaster)
        d.addTimeout(self.connectTimeout, self.reactor)
        d.addCallbacks(lambda _: self._ready(protocol), lambda f: self._prepareFailed(f, protocol))
        return d

    def _checkMaster(self, role):
        if not role or role[0] != b"master":
            raise RedisUnavailable("the server Sentinel named is not a master (a failover is under way)")

    def _prepareFailed(self, failure, protocol):
        error = self._authError or _text(failure.value)
        self.lastError = error
        self.log.warn(
            "Cannot use Redis at {where} ({name}): {error}", where=self.where, name=self.name, error=error
        )
        protocol.transport.abortConnection()
        return failure

    def _ready(self, protocol):
        self.protocol = protocol
        self.failures = 0
        self.lastError = None
        protocol.whenDisconnected().addCallback(self._lost)
        self.log.info("Connected to Redis at {where} ({name})", where=self.where, name=self.name)
        if self.onReady is not None:
            self.onReady()

    def _lost(self, protocol):
        if protocol is not self.protocol:
            return
        self.protocol = None
        if self._stopped:
            return
        self.lastError = "connection lost"
        self.log.warn("Lost the connection to Redis at {where} ({name}); reconnecting", where=self.where, name=self.name)
        if self.onLost is not None:
            self.onLost("connection lost")

    def whenReady(self, failAfterFailures=None):
        """
        A Deferred firing once a connection is usable (at once when one is); with
        C{failAfterFailures}, it fails with L{RedisUnavailable} after that many failed attempts.
        """
        if self.ready:
            d = Deferred()
            d.callback(None)
            return d
        if self._service is None:
            self.start()
        d = self._service.whenConnected(failAfterFailures=failAfterFailures)

        def failed(f):
            if f.check(CancelledError):
                raise RedisUnavailable("the connection to Redis at {} was stopped".format(self.where))
            raise RedisUnavailable("cannot connect to Redis at {}: {}".format(self.where, self.lastError or _text(f.value)))

        d.addCallbacks(lambda _: None, failed)
        # The service fires it from within a state transition, which cannot be re-entered
        # (a caller that stops the connection on failure): pass the result on a turn later.
        later = Deferred()
        d.addBoth(lambda result: self.reactor.callLater(0, later.callback, result) and None)
        return later

    def _unavailable(self):
        return RedisUnavailable(
            "not connected to Redis at {}{}".format(self.where, ": " + self.lastError if self.lastError else "")
        )

    def execute(self, *args, timeout=None):
        """
        Send one command; a Deferred of its reply (bytes, lists of them, ints).  Fails with
        L{RedisUnavailable} at once when not connected, with L{RedisTimeout} after C{timeout}
        seconds (default: C{commandTimeout}) and with C{ResponseError} on an error reply.
        """
        protocol = self.protocol
        if protocol is None or not compat.isOpen(protocol):
            return fail(self._unavailable())
        d = compat.command(protocol, *args)
        return self._bounded(d, protocol, timeout, args[0])

    def executeMany(self, commands, timeout=None):
        """
        Send several commands back to back (one write, one round trip); a Deferred of the list
        of their replies, an error reply in its place as a C{ResponseError}.  One timeout
        bounds them all.
        """
        protocol = self.protocol
        if protocol is None or not compat.isOpen(protocol):
            return fail(self._unavailable())
        replies = [compat.command(protocol, *c) for c in commands]
        d = DeferredList(replies, consumeErrors=True)

        def unpack(results):
            out = []
            for ok, value in results:
                if not ok:
                    if value.check(compat.ResponseError):
                        out.append(value.value)
                        continue
                    value.raiseException()
                out.append(value)
            return out

        d.addCallback(unpack)
        return self._bounded(d, protocol, timeout, commands[0][0] if commands else "")

    def _bounded(self, d, protocol, timeout, what):
        limit = self.commandTimeout if timeout is None else timeout
        d.addTimeout(limit, self.reactor)

        def failed(f):
            if f.check(TimeoutError):
                if compat.isOpen(protocol):
                    protocol.transport.abortConnection()
                raise RedisTimeout(
                    "Redis at {} did not answer {} within {:g}s".format(self.where, _name(what), limit)
                )
            if f.check(compat.ConnectionError):
                raise RedisUnavailable("lost the connection to Redis at {}".format(self.where))
            if f.check(compat.ResponseError) and str(f.value).startswith(_WRONG_SERVER):
                # A master that became a replica (a Sentinel failover): find the master again.
                if compat.isOpen(protocol):
                    protocol.transport.abortConnection()
                raise RedisUnavailable("Redis at {} no longer takes writes: {}".format(self.where, f.value))
            return f

        return d.addErrback(failed)

    def reconnect(self):
        """
        Drop the connection (it talks to the wrong server); it is rebuilt with backoff.
        """
        protocol = self.protocol
        if protocol is not None and compat.isOpen(protocol):
            protocol.transport.abortConnection()

    def stop(self):
        """
        Close the connection for good; a Deferred firing once closed.
        """
        self._stopped = True
        service, self._service = self._service, None
        if service is None:
            d = Deferred()
            d.callback(None)
            return d
        return service.stopService()


def _name(what):
    return what.decode() if isinstance(what, bytes) else str(what)


def _text(error):
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]
