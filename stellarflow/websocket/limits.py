"""
The WebSocket server's limits on what one address or one client may take, and the descriptors
the daemon keeps for itself.

  - L{TokenBucket}: a rate with a burst (new connections per address, C{register} messages
    per client), on an injected clock;
  - L{ConnectionGuard}: every accepted socket is counted from the moment TCP connects, per
    source address (the C{X-Forwarded-For} client behind a trusted proxy) and in total; it
    says whether a new one is admitted, refused with an HTTP status once its request is in, or
    dropped at once (more than a few refusals already pending for that address, or the
    descriptor budget spent);
  - L{socketBudget}: at start, the sockets the server may hold (C{max_connections} plus
    half-finished upgrades) against C{RLIMIT_NOFILE}, less a reserve for the state file, the
    database, the RPC and the admin endpoint, so that a flood of clients can never make a
    checkpoint write fail with "Too many open files".
"""

import ipaddress

import attr
from twisted.internet.protocol import Factory, Protocol

__all__ = [
    "TokenBucket", "ConnectionGuard", "Ticket", "GuardCounters", "socketBudget", "parseNetworks",
    "clientAddress", "networksValidator", "GuardedFactory",
]

#: Refusals waiting for their request (to answer it with an HTTP status) per address; more are
#: dropped at once, so that one address cannot hold descriptors with refused connections.
MAX_REFUSING_PER_ADDRESS = 16
#: Accepted sockets between two sweeps of idle per-address state.
SWEEP_EVERY = 1024


class TokenBucket:
    """
    C{burst} tokens, refilled at C{rate} per second; L{take} spends one if there is one.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate, burst, now):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now):
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now):
        """
        Spend a token: whether there was one.
        """
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full(self, now):
        """
        Whether it has refilled completely (it is then the same as a new one).
        """
        self._refill(now)
        return self.tokens >= self.burst


def networksValidator(values):
    """
    Config validator for C{trusted_proxies}: each an IP address or CIDR network.
    """
    for value in values or ():
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return "IP addresses or CIDR networks (bad: {!r})".format(value)
    return None


def parseNetworks(values):
    """
    The networks of a C{trusted_proxies} list.
    """
    return tuple(ipaddress.ip_network(v, strict=False) for v in values or ())


def _address(text):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def isTrusted(host, networks):
    """
    Whether C{host} (an address string) is in one of C{networks}.
    """
    if not networks:
        return False
    address = _address(host)
    if address is None:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def clientAddress(peer, forwardedFor, networks):
    """
    The client's address: C{peer}'s, unless C{peer} is a trusted proxy; then the right-most
    C{X-Forwarded-For} entry that is not a trusted proxy (a client can prepend anything, so
    only what trusted proxies appended counts).  A malformed entry stops the walk: the address
    is then the last trusted hop's, so such requests share one limit.
    """
    if not forwardedFor or not isTrusted(peer, networks):
        return peer
    address = peer
    for entry in reversed(forwardedFor.split(",")[-32:]):
        parsed = _address(entry)
        if parsed is None:
            return address
        address = str(parsed)
        if not isTrusted(address, networks):
            return address
    return address


def socketBudget(maxConnections, maxUpgrading, reserve, getrlimit=None, setrlimit=None):
    """
    How many sockets the WebSocket server may hold, and a warning when that is less than it
    was configured for.

    Raises the soft C{RLIMIT_NOFILE} toward the hard one when more is needed.

    @return: C{(budget, warning or None)}.
    """
    import resource

    getrlimit = getrlimit or resource.getrlimit
    setrlimit = setrlimit or resource.setrlimit
    wanted = maxConnections + maxUpgrading
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + reserve
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted, None
    budget = max(0, soft - reserve)
    return budget, (
        "the open-file limit ({soft}) is below max_connections ({connections}) + upgrading sockets ({upgrading}) "
        "+ reserve ({reserve}); at most {budget} client sockets will be accepted (raise `ulimit -n`)".format(
            soft=soft, connections=maxConnections, upgrading=maxUpgrading, reserve=reserve, budget=budget
        )
    )


@attr.s(slots=True)
class GuardCounters:
    """
    Refusals by cause (for metrics).
    """

    refusedAddress = attr.ib(default=0)
    refusedRate = attr.ib(default=0)
    refusedReserve = attr.ib(default=0)
    dropped = attr.ib(default=0)


class Ticket:
    """
    What the guard counted for one socket, handed back to L{ConnectionGuard.release}.

    @ivar address: the address it is counted under, or C{None} (a trusted proxy's socket,
        before its request named the client).
    @ivar refusal: C{(status, reason)} to answer its request with, or C{None}.
    @ivar drop: close it at once, without an answer.
    """

    __slots__ = ("address", "refusal", "drop", "held", "refusing", "socket", "upgrading", "acceptedAt")

    def __init__(self):
        self.acceptedAt = None
        self.address = None
        self.refusal = None
        self.drop = False
        self.held = self.refusing = self.socket = self.upgrading = False


class ConnectionGuard:
    """
    Counts sockets per address and in total, and admits or refuses new ones.

    @param clock: an L{IReactorTime}.
    @param maxPerAddress: sockets one address may hold (open or upgrading).
    @param rate: new connections per second one address may open, sustained.
    @param burst: new connections one address may open at once.
    @param budget: sockets the server may hold in all (L{socketBudget}).
    @param trusted: the trusted proxies' networks (L{parseNetworks}).
    """

    def __init__(self, clock, maxPerAddress, rate, burst, budget, trusted=()):
        self.clock = clock
        self.maxPerAddress = maxPerAddress
        self.rate = rate
        self.burst = burst
        self.budget = budget
        self.trusted = tuple(trusted)
        self.counters = GuardCounters()
        self.sockets = 0
        self.upgrading = 0
        self._held = {}
        self._refusing = {}
        self._buckets = {}
        self._sinceSweep = 0
        #: the tickets of sockets a L{GuardedFactory} accepted, by peer address, for their
        #: WebSocket protocol to find
        self.tickets = {}

    def held(self, address):
        """
        How many sockets C{address} holds.
        """
        return self._held.get(address, 0)

    def accept(self, peer):
        """
        A TCP connection from C{peer} (an address string) was accepted.

        @return: its L{Ticket}.
        """
        ticket = Ticket()
        ticket.acceptedAt = self.clock.seconds()
        if self.sockets >= self.budget:
            self.counters.refusedReserve += 1
            ticket.drop = True
            return ticket
        self.sockets += 1
        self.upgrading += 1
        ticket.socket = ticket.upgrading = True
        self._sinceSweep += 1
        if self._sinceSweep >= SWEEP_EVERY:
            self._sweep()
        if isTrusted(peer, self.trusted):
            return ticket
        self._admit(ticket, peer)
        return ticket

    def forwarded(self, ticket, address):
        """
        A trusted proxy's request names its client C{address}: count it there.
        """
        if ticket.address is None and not ticket.drop:
            self._admit(ticket, address)
        return ticket

    def _admit(self, ticket, address):
        ticket.address = address
        held = self._held.get(address, 0)
        if held >= self.maxPerAddress:
            self.counters.refusedAddress += 1
            ticket.refusal = (429, "too many connections from your address")
        else:
            now = self.clock.seconds()
            bucket = self._buckets.get(address)
            if bucket is None:
                bucket = self._buckets[address] = TokenBucket(self.rate, self.burst, now)
            if bucket.take(now):
                self._held[address] = held + 1
                ticket.held = True
                return
            self.counters.refusedRate += 1
            ticket.refusal = (429, "too many new connections from your address")
        refusing = self._refusing.get(address, 0)
        if refusing >= MAX_REFUSING_PER_ADDRESS:
            self.counters.dropped += 1
            ticket.drop = True
            return
        self._refusing[address] = refusing + 1
        ticket.refusing = True

    def opened(self, ticket):
        """
        Its upgrade completed.
        """
        if ticket.upgrading:
            ticket.upgrading = False
            self.upgrading -= 1

    def release(self, ticket):
        """
        The socket is closed.  Idempotent.
        """
        self.opened(ticket)
        if ticket.socket:
            ticket.socket = False
            self.sockets -= 1
        address = ticket.address
        if ticket.held:
            ticket.held = False
            count = self._held[address] - 1
            if count:
                self._held[address] = count
            else:
                del self._held[address]
        if ticket.refusing:
            ticket.refusing = False
            count = self._refusing[address] - 1
            if count:
                self._refusing[address] = count
            else:
                del self._refusing[address]

    def _sweep(self):
        """
        Forget the buckets of addresses that hold nothing and have refilled (bounded memory
        whatever the number of addresses seen).
        """
        self._sinceSweep = 0
        now = self.clock.seconds()
        for address in [a for a, b in self._buckets.items() if a not in self._held and b.full(now)]:
            del self._buckets[address]

    def stats(self):
        counters = self.counters
        return {
            "sockets": self.sockets,
            "upgrading": self.upgrading,
            "addresses": len(self._held),
            "refused_address": counters.refusedAddress,
            "refused_rate": counters.refusedRate,
            "refused_reserve": counters.refusedReserve,
            "dropped": counters.dropped,
        }


class _Refused(Protocol):
    """
    A socket closed at once, before anything is read (works under TLS too, where a factory
    cannot decline with C{None}).
    """

    def connectionMade(self):
        self.transport.abortConnection()


class GuardedFactory(Factory):
    """
    Wraps what listens (the WebSocket factory, or the front that shares its port with the
    dashboard) so that every socket is counted by the L{ConnectionGuard} when TCP accepts it,
    before a byte is read: over the descriptor budget, or with 16 refusals of its address
    already waiting, it is closed at once.  Its ticket is released when its protocol's
    connection is lost, whichever protocol serves it.

    @param onDrop: called with the ticket of each socket closed at once (for the log).
    """

    noisy = False

    def __init__(self, guard, inner, onDrop=None):
        self.guard = guard
        self.inner = inner
        self.onDrop = onDrop

    def startFactory(self):
        self.inner.doStart()

    def stopFactory(self):
        self.inner.doStop()

    def buildProtocol(self, addr):
        guard = self.guard
        ticket = guard.accept(getattr(addr, "host", str(addr)))
        if ticket.drop:
            guard.release(ticket)
            if self.onDrop is not None:
                self.onDrop(ticket)
            return _Refused()
        proto = self.inner.buildProtocol(addr)
        if proto is None:
            guard.release(ticket)
            return None
        guard.tickets[addr] = ticket
        lost = proto.connectionLost

        def connectionLost(reason):
            try:
                lost(reason)
            finally:
                guard.tickets.pop(addr, None)
                guard.release(ticket)

        proto.connectionLost = connectionLost
        return proto
