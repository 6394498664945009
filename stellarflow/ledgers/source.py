"""
The getLedgers source: follows Stellar RPC ``getLedgers`` ledger by ledger and hands each page
to the pipeline as a batch of L{LedgerItem}s (the C{GetLedgersRPC} processor decodes them).

It is what C{RPCSourceAdapter} builds with ``rpc_method: getLedgers`` (same config block;
L{stellarflow.rpc.config}).  One request at a time, at once while behind (then the next
page is asked for while the pipeline processes the last one: one page ahead at most), every
``poll_interval`` at the tip.  While catching up it continues with ``pagination.cursor`` (the
last ledger delivered); at the tip it asks with ``startLedger`` (latest + 1), as the official Go
consumer does.  There the server answers an error, not an empty page (-32600 for a
``startLedger`` past the latest ledger, -32602 for a cursor at it): that means "not yet", decided
from the code and the latest ledger the source knows (from the last answer, or from
``getHealth`` when it cannot tell), never from the message text.

Every ledger must follow the one before it (L{stellarflow.ledgers.chain}): the next sequence,
and a previous-ledger hash equal to the hash delivered before (across pages, and across
restarts: the checkpoint keeps the last hash).  A break is logged with the exact ledgers,
counted and handled by ``on_gap`` like a retention gap.  Every other failure follows the
getEvents source's policy (L{stellarflow.rpc.policy}); a ledger the processor cannot decode
stops the source at that ledger.
"""

from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stellarflow import positions
from stellarflow.backoff import Backoff
from stellarflow.batch import Batch
from stellarflow.checkpoint import Checkpoint
from stellarflow.events.network import networkPassphrase
from stellarflow.interfaces import ISource, IStatsProvider
from stellarflow.ledgers.chain import follow
from stellarflow.ledgers.pool import LedgerDecodeError
from stellarflow.rpc.config import DEFAULT_LEDGER_LIMIT
from stellarflow.rpc.errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    LedgerRangeError,
    MethodNotFound,
    RPCError,
)
from stellarflow.rpc.policy import DeliveryFailed, FailurePolicy, SkipGap, Stop
from stellarflow.rpc.status import SourceStatus


class NotYet(Exception):
    """
    The ledger asked for has not closed yet (the tip error).
    """


@implementer(ISource, IStatsProvider)
class GetLedgersSource(SourceStatus):
    """
    Polls ``getLedgers``; see the module docstring.

    @param client: a L{stellarflow.rpc.client.StellarRPCClient}.
    @param clock: an L{IReactorTime}.
    @param network: the configured network (a name or a passphrase): checked against
        ``getNetwork`` before the first ledger (a mismatch stops the source: transaction
        hashes, and so every payment and trade, depend on it).

    Observable state (L{SourceStatus} reports it as the getEvents source's): C{polling},
    C{latestLedger}, C{oldestLedger}, C{last} (the last ledger delivered), C{lastHash},
    C{requests}, C{errors}, C{ledgersDelivered}, C{lastError}, C{fatal}, C{complete}, C{gaps};
    C{network} is the passphrase followed (the server's once checked).
    """

    log = Logger()

    @classmethod
    def fromConfig(cls, config, context):
        from stellarflow.rpc.client import StellarRPCClient

        client = StellarRPCClient.fromReactor(
            context.reactor,
            config["rpc_url"],
            auth_header=config["auth_header"],
            request_timeout=config["request_timeout"],
        )
        return cls(
            client,
            context.reactor,
            start_ledger=config["start_ledger"],
            end_ledger=config["end_ledger"],
            poll_interval=config["poll_interval"],
            limit=config["pagination"]["limit"],
            on_gap=config["on_gap"],
            network=config["network"],
            health_timeout=config.get("health_timeout", 0),
            name=context.pipeline,
        )

    def __init__(self, client, clock, start_ledger=0, end_ledger=0, poll_interval=5.0, limit=DEFAULT_LEDGER_LIMIT,
                 on_gap="skip", network=None, verifyNetwork=True, backoff=None, health_timeout=0, name=""):
        self.client = client
        self.clock = clock
        self.start_ledger = start_ledger or None
        self.end_ledger = end_ledger or None
        self.poll_interval = poll_interval
        self.limit = limit
        self.on_gap = on_gap
        self.configuredNetwork = network
        self.servedNetwork = None
        self.passphrase = networkPassphrase(network) if network is not None else None
        self.healthTimeout = health_timeout or max(30.0, 3 * poll_interval)
        self.verifyNetwork = verifyNetwork and network is not None
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.policy = FailurePolicy(client.endpoint, on_gap, self.backoff, self.log, method="getLedgers")
        self.name = name

        self.last = None
        self.lastHash = None
        self._startLedger = self.start_ledger
        self._deliver = None
        self._ended = None
        self._timer = None
        self._cycleD = None
        self._request = None
        self._stage = None
        self._stopping = False
        self._stopWaiters = []
        self._atTip = False
        self._prefetched = None

        self.startedAt = None
        self.polling = False
        self.latestLedger = None
        self.oldestLedger = None
        self.lastSuccessTime = None
        self.requests = 0
        self.requestSeconds = 0.0
        self.errors = 0
        self.ledgersDelivered = 0
        self.lastError = None
        self.fatal = None
        self.complete = False
        self.gaps = []

    def __repr__(self):
        return "<GetLedgersSource {} last={!r}>".format(self.client.endpoint, self.last)

    @property
    def cursor(self):
        """The position after the last ledger delivered, or C{None}."""
        return None if self.last is None else positions.ledgerEnd(self.last)

    def stats(self):
        """
        The RPC source's counters and health figures (L{SourceStatus}), with ledgers for events.
        """
        return {
            "requests_total": self.requests,
            "request_errors_total": self.errors,
            "request_seconds_total": self.requestSeconds,
            "ledgers_total": self.ledgersDelivered,
            "gaps_total": len(self.gaps),
            "latest_ledger": self.latestLedger,
            "lag_ledgers": self.lagLedgers,
            "polling": self.polling,
            "last_success_timestamp_seconds": self.lastSuccessTime,
            "seconds_since_success": self.secondsSinceSuccess,
            "health_timeout_seconds": self.healthTimeout,
            "last_error": self.lastError,
        }

    # -- ISource -----------------------------------------------------------

    def start(self, deliver, checkpoint):
        self._deliver = deliver
        self._ended = ended = Deferred()
        self.polling = True
        self.startedAt = self.clock.seconds()
        checkpoint = Checkpoint.of(checkpoint)
        if checkpoint is not None:
            ledger = positions.ledgerOf(checkpoint.cursor)
            if ledger is None:
                self._fatal("the checkpoint {!r} is not a position; remove the checkpoint file to start from "
                            "start_ledger".format(checkpoint.cursor), None)
                return ended
            if checkpoint.network is not None and self.passphrase is not None and \
                    networkPassphrase(checkpoint.network) != self.passphrase:
                self._fatal("the checkpoint was taken on network {!r}, the source follows {!r}; remove the checkpoint "
                            "file to start afresh".format(checkpoint.network, self.configuredNetwork), None)
                return ended
            if checkpoint.cursor == positions.ledgerEnd(ledger):
                self.last, self.lastHash = ledger, checkpoint.hash
            else:  # inside a ledger (a getEvents position): that ledger again, whole
                self.last, self.lastHash = ledger - 1, None
            where = "checkpoint after ledger {}{}".format(
                self.last, " (hash {})".format(self.lastHash) if self.lastHash else "")
        elif self._startLedger is not None:
            where = "start_ledger {}".format(self._startLedger)
        else:
            where = "the RPC's latest ledger"
        self.log.info(
            "Following getLedgers at {endpoint} from {where}{until}",
            endpoint=self.client.endpoint,
            where=where,
            until=" until ledger {}".format(self.end_ledger) if self.end_ledger else "",
        )
        self._schedule(0)
        return ended

    def stop(self):
        self._stopping = True
        self.polling = False
        self._end(None)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._request is not None:
            self._request.cancel()
        self._dropPrefetch()
        if self._cycleD is None or self._stage == "delivering":
            d = succeed(None)
        else:
            d = Deferred()
            self._stopWaiters.append(d)
        d.addCallback(lambda _: self.client.close())
        return d

    # -- the loop ----------------------------------------------------------

    def _schedule(self, delay):
        self._timer = self.clock.callLater(delay, self._tick)

    def _tick(self):
        self._timer = None
        if self._stopping or not self.polling:
            return
        d = self._cycleD = self._cycle()
        d.addCallbacks(self._cycleDone, self._cycleFailed)
        d.addErrback(self._bug)

    def _cycleDone(self, delay):
        self._cycleD = None
        self._stage = None
        if delay is not None and self.polling and not self._stopping:
            self._schedule(delay)
        self._notifyStopped()

    def _cycleFailed(self, failure):
        self._cycleD = None
        self._stage = None
        delay = self._failed(failure)
        if delay is not None and self.polling and not self._stopping:
            self._schedule(delay)
        self._notifyStopped()

    def _bug(self, failure):
        self.log.failure("getLedgers source {pipeline}: internal error; polling again in 60s", failure,
                         pipeline=self.name)
        if self.polling and not self._stopping and (self._timer is None or not self._timer.active()):
            self._schedule(60.0)

    def _notifyStopped(self):
        if self._stopping:
            waiters, self._stopWaiters = self._stopWaiters, []
            for d in waiters:
                d.callback(None)

    def _rpc(self, d):
        self.requests += 1
        self._request = d
        self._stage = "requesting"
        started = self.clock.seconds()

        def clear(result):
            self.requestSeconds += self.clock.seconds() - started
            if self._request is d:
                self._request = None
            return result

        return d.addBoth(clear)

    @property
    def nextLedger(self):
        """The ledger the next request asks for first."""
        return self.last + 1 if self.last is not None else self._startLedger

    @inlineCallbacks
    def _cycle(self):
        """
        One request and its delivery; the delay before the next, or C{None} to stop.
        """
        if self.verifyNetwork:
            yield self._checkNetwork()
            if self._stopping or not self.polling:
                return None
        if self.last is None and self._startLedger is None:
            info = yield self._rpc(self.client.getLatestLedger())
            if self._stopping:
                return None
            self._startLedger = self.latestLedger = info["sequence"]
            self.log.info("Starting at the RPC's latest ledger {ledger}", ledger=self._startLedger)

        first = self.nextLedger
        if self.end_ledger is not None and first > self.end_ledger:
            self._complete()
            return None
        limit = self._limitFrom(first)
        try:
            page = yield self._fetch(first, limit)
        except RPCError as e:
            if self._stopping:
                return None
            if e.code not in (INVALID_REQUEST, INVALID_PARAMS):
                raise
            yield self._classify(e, first)
            self.lastSuccessTime = self.clock.seconds()  # the RPC answered: the ledger has not closed yet
            return self._waitAtTip(first)
        if self._stopping:
            return None
        self.lastSuccessTime = self.clock.seconds()
        if page.latestLedger is not None:
            self.latestLedger = page.latestLedger
        if page.oldestLedger is not None:
            self.oldestLedger = page.oldestLedger

        items, stop = self._accept(page.ledgers)
        if items:
            previous = self.cursor if self.last is not None else positions.ledgerStart(first)
            tail = items[-1]
            batch = Batch(items=items, cursor=positions.ledgerEnd(tail.last), previous=previous,
                          latestLedger=self.latestLedger, hash=tail.hash)
            self._stage = "delivering"
            delivered = maybeDeferred(self._deliver, batch)
            if not delivered.called and self._behind(tail.last, len(page.ledgers) >= limit):
                self._prefetch(tail.last + 1)
            try:
                yield delivered
            except Exception:
                self._dropPrefetch()
                raise DeliveryFailed(Failure())
            self._stage = None
            self.last, self.lastHash = tail.last, tail.hash
            self.ledgersDelivered += sum(i.last - i.sequence + 1 for i in items)
        self._recovered()
        if stop is not None:
            self._fatal(stop.reason, None)
            return None
        if self.end_ledger is not None and self.last is not None and self.last >= self.end_ledger:
            self._complete()
            return None
        if self._stopping:
            return None
        if items and self._behind(self.last, len(page.ledgers) >= limit):
            if self._atTip:
                self.log.info("Behind the RPC again (latest ledger {latest}); catching up", latest=self.latestLedger)
            self._atTip = False
            return 0
        return self._waitAtTip(first)

    def _waitAtTip(self, requested):
        if not self._atTip:
            self.log.info("At the tip of {endpoint}: ledger {ledger} has not closed yet; polling every {interval}s",
                          endpoint=self.client.endpoint, ledger=requested, interval=self.poll_interval)
        self._atTip = True
        return self.poll_interval

    def _limitFrom(self, first):
        return self.limit if self.end_ledger is None else min(self.limit, self.end_ledger - first + 1)

    def _behind(self, last, full):
        """
        Whether ledgers after C{last} are known to exist (so the next request goes out at once).
        """
        if self.end_ledger is not None and last >= self.end_ledger:
            return False
        return full or (self.latestLedger is not None and last < self.latestLedger)

    def _fetch(self, first, limit):
        """
        The page from C{first}: the one fetched ahead if it asked for that, else a request now.
        """
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            if prefetched[:2] == (first, limit):
                return self._rpc(prefetched[2])
            self._discard(prefetched[2])
        return self._rpc(self.client.getLedgers(self._params(first, limit)))

    def _prefetch(self, first):
        """
        While catching up, ask for the next page while the pipeline processes this one (the
        workers do not wait for the network): one page ahead at most.
        """
        self._dropPrefetch()
        if self._stopping:
            return  # stopped while delivering (a catch-up reader that rejoined): nothing more
        limit = self._limitFrom(first)
        params = {"pagination": {"cursor": str(first - 1), "limit": limit}}
        self._prefetched = (first, limit, self.client.getLedgers(params))

    def _dropPrefetch(self):
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            self._discard(prefetched[2])

    @staticmethod
    def _discard(d):
        d.addErrback(lambda _: None)
        d.cancel()

    def _params(self, first, limit):
        """
        A cursor while catching up; ``startLedger`` for the first request and at the tip.
        """
        if self.last is not None and self.latestLedger is not None and self.last < self.latestLedger:
            return {"pagination": {"cursor": str(self.last), "limit": limit}}
        return {"startLedger": first, "pagination": {"limit": limit}}

    @inlineCallbacks
    def _classify(self, error, requested):
        """
        A -32600 or -32602 answer: "not yet" when C{requested} is past the latest ledger known;
        when that is not known (or the ledger should exist) ask ``getHealth`` and decide from its
        range: not yet, a retention gap, rejected parameters, or a window that moved.
        Returns normally for "not yet"; raises what the failure policy should decide on.
        """
        if self.latestLedger is not None and requested > self.latestLedger:
            return
        health = yield self._rpc(self.client.getHealth())
        latest, oldest = health.get("latestLedger"), health.get("oldestLedger")
        if isinstance(latest, int):
            self.latestLedger = latest
        if isinstance(oldest, int):
            self.oldestLedger = oldest
        if isinstance(latest, int) and requested > latest:
            if self.last is not None:
                self.log.warn("Ledger {requested} is ahead of {endpoint} (latest {latest}); waiting for it",
                              requested=requested, endpoint=self.client.endpoint, latest=latest)
            return
        if isinstance(oldest, int) and isinstance(latest, int) and requested < oldest:
            raise LedgerRangeError(error.code, error.message, error.data, oldest, latest)
        raise error

    @inlineCallbacks
    def _checkNetwork(self):
        """
        Compare the configured network with the server's before the first ledger.  A mismatch
        stops the source; a server without ``getNetwork`` only gets a warning; other errors are
        retried.
        """
        try:
            result = yield self._rpc(self.client.getNetwork())
        except MethodNotFound as e:
            self.verifyNetwork = False
            self.log.warn("{endpoint} cannot tell its network ({error}); assuming {network}",
                          endpoint=self.client.endpoint, error=str(e), network=self.configuredNetwork)
            return
        self.verifyNetwork = False
        actual = result.get("passphrase")
        if isinstance(actual, str):
            self.servedNetwork = actual
        if isinstance(actual, str) and actual != self.passphrase:
            self._fatal("NETWORK MISMATCH: the source is configured for {!r} ({!r}) but {} serves {!r}; transaction "
                        "hashes would not match. Set 'network' in the source config".format(
                            self.configuredNetwork, self.passphrase, self.client.endpoint, actual), None)

    def _accept(self, ledgers):
        """
        The ledgers of a page that follow the chain, and a L{Stop} when a break stops it.
        """
        lastSequence = self.last
        if lastSequence is None and self._startLedger is not None:
            lastSequence = self._startLedger - 1
        items = sorted(ledgers, key=lambda i: i.sequence)
        if self.end_ledger is not None:
            items = [item for item in items if item.sequence <= self.end_ledger]
        return follow(items, lastSequence, self.lastHash, self.policy, self.gaps)

    def _recovered(self):
        if self.backoff.failures:
            self.log.info("RPC at {endpoint} answering again after {count} failed attempt(s)",
                          endpoint=self.client.endpoint, count=self.backoff.failures)
        self.backoff.reset()

    # -- outcomes ----------------------------------------------------------

    def _complete(self):
        self.complete = True
        self.polling = False
        self.log.info("Backfill complete: every ledger up to {ledger} delivered", ledger=self.end_ledger)
        self._end(None)

    def _fatal(self, reason, failure):
        self.fatal = reason
        self.lastError = reason
        self.polling = False
        self.log.critical("getLedgers source {pipeline} stopped at ledger {ledger} ({endpoint}): {reason}",
                          pipeline=self.name, ledger=self.nextLedger, endpoint=self.client.endpoint, reason=reason)
        self._end(failure if failure is not None else Failure(RuntimeError(reason)))

    def _end(self, result):
        self._dropPrefetch()  # a page asked for ahead is not wanted any more (nor its error)
        ended, self._ended = self._ended, None
        if ended is not None:
            ended.callback(result) if result is None else ended.errback(result)

    def _failed(self, failure):
        if self._stopping:
            return None
        self.errors += 1
        self.lastError = str(failure.value)
        if failure.check(DeliveryFailed) and failure.value.failure.check(LedgerDecodeError):
            self._fatal(str(failure.value.failure.value), failure.value.failure)
            return None
        outcome = self.policy.decide(failure, self.nextLedger, self.cursor)
        if isinstance(outcome, Stop):
            if outcome.gap is not None:
                self.gaps.append(outcome.gap)
            self._fatal(outcome.reason, failure)
            return None
        if isinstance(outcome, SkipGap):
            self.gaps.append((outcome.first, outcome.last))
            self.last, self.lastHash = outcome.last, None
            return 0
        return outcome.delay
