"""
The RPC source: polls Stellar RPC ``getEvents`` and hands each page to the pipeline as a Batch.

One request at a time: the first from ``start_ledger`` (or the checkpointed cursor), every later
one from the cursor the server returned.  While behind (a full page, or a cursor older than the
latest ledger) it asks again at once; when caught up it waits ``poll_interval``.  It never
fetches the next page before the pipeline accepted the previous one (backpressure), never hands
on an event id twice, and never stops polling because of an error: configuration errors stop
it once, loudly; everything else is logged and retried with capped, jittered backoff.  What
each failure means is decided by L{stellarflow.rpc.policy} (written down in ``docs/source.md``);
the config schema is L{stellarflow.rpc.config}, page handling L{stellarflow.rpc.pages}.
"""


from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer, provider

from stellarflow import positions
from stellarflow.backoff import Backoff
from stellarflow.batch import Batch
from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import IComponentFactory, ISource, IStatsProvider
from stellarflow.rpc.client import StellarRPCClient
from stellarflow.rpc.config import (
    CONFIG_SCHEMA,
    DEFAULT_LIMIT,
    exactLengthTopicFilters,
    requestFilters,
    topicFilterWarning,
)
from stellarflow.rpc.errors import LedgerRangeError
from stellarflow.rpc.origin import RESTART_FROM_LATEST, STOP, NetworkMismatch, OriginCheck, servedNetwork
from stellarflow.rpc.pages import acceptPage, eventIdOf
from stellarflow.rpc.policy import DeliveryFailed, FailurePolicy, SkipGap, Stop
from stellarflow.rpc.status import SourceStatus


@provider(IComponentFactory)
@implementer(ISource, IStatsProvider)
class RPCSourceAdapter(SourceStatus):
    """
    Polls ``getEvents`` and delivers one L{Batch} per page.  With ``rpc_method: getLedgers``
    L{fromConfig} builds a L{stellarflow.ledgers.source.GetLedgersSource} instead.

    @param client: a L{StellarRPCClient}.
    @param clock: an L{IReactorTime}.
    @param filters: validated config filters.
    @param network: the configured network (name or passphrase), checked once against the
        server's ``getNetwork`` when C{verifyNetwork}; a mismatch is logged as an error.

    L{start} returns a Deferred that fails when polling stops for good on an error (rejected
    params, a gap with C{on_gap="stop"}, an unusable checkpoint) and fires once a backfill
    reached C{end_ledger} (or the source was stopped).

    Attributes for metrics and health: C{polling}, C{latestLedger}, C{oldestLedger},
    C{cursor}, C{lagLedgers}, C{lastSuccessTime}, C{requests}, C{errors},
    C{eventsDelivered}, C{lastError}, C{fatal}, C{complete}, C{gaps}.
    """

    log = Logger()
    configSchema = CONFIG_SCHEMA

    @classmethod
    def fromConfig(cls, config, context):
        if config["rpc_method"] == "getLedgers":
            from stellarflow.ledgers.source import GetLedgersSource

            return GetLedgersSource.fromConfig(config, context)
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
            filters=config["filters"],
            limit=config["pagination"]["limit"],
            xdr_format=config["xdrFormat"],
            on_gap=config["on_gap"],
            network=config["network"],
            name=context.pipeline,
            on_checkpoint_mismatch=config["on_checkpoint_mismatch"],
            checkpoint_ahead_margin=config["checkpoint_ahead_margin"],
            checkpoint_ahead_timeout=config["checkpoint_ahead_timeout"],
            health_timeout=config["health_timeout"],
        )

    def __init__(
        self,
        client,
        clock,
        start_ledger=0,
        end_ledger=0,
        poll_interval=5.0,
        filters=(),
        limit=DEFAULT_LIMIT,
        xdr_format="base64",
        on_gap="skip",
        network=None,
        verifyNetwork=True,
        backoff=None,
        name="",
        on_checkpoint_mismatch=STOP,
        checkpoint_ahead_margin=10,
        checkpoint_ahead_timeout=60.0,
        health_timeout=0,
    ):
        self.client = client
        self.clock = clock
        self.start_ledger = start_ledger or None
        self.end_ledger = end_ledger or None
        self.poll_interval = poll_interval
        self.filters = requestFilters(filters)
        self.limit = limit
        self.xdr_format = xdr_format
        self.on_gap = on_gap
        self.configuredNetwork = network
        self.servedNetwork = None
        self.verifyNetwork = verifyNetwork and network is not None
        self.onCheckpointMismatch = on_checkpoint_mismatch
        self.aheadMargin = checkpoint_ahead_margin
        self.aheadPatience = checkpoint_ahead_timeout
        self.healthTimeout = health_timeout or max(30.0, 3 * poll_interval)
        self.origin = OriginCheck(None, clock)
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.policy = FailurePolicy(client.endpoint, on_gap, self.backoff, self.log)
        self.name = name
        self._ended = None

        # progress
        self.cursor = None
        self._startLedger = self.start_ledger
        self._lastKey = None
        self._deliver = None

        # machinery
        self._timer = None
        self._cycleD = None
        self._request = None
        self._stage = None
        self._stopping = False
        self._stopWaiters = []
        self._catchingUp = None

        # observable state
        self.startedAt = None
        self.polling = False
        self.latestLedger = None
        self.oldestLedger = None
        self.lastSuccessTime = None
        self.requests = 0
        self.requestSeconds = 0.0
        self.errors = 0
        self.eventsDelivered = 0
        self.lastError = None
        self.fatal = None
        self.complete = False
        self.gaps = []

    def __repr__(self):
        return "<RPCSourceAdapter {} cursor={!r}>".format(self.client.endpoint, self.cursor)

    # -- ISource -----------------------------------------------------------

    def start(self, deliver, checkpoint):
        self._deliver = deliver
        self._ended = ended = Deferred()
        self.polling = True
        self.startedAt = self.clock.seconds()
        self.origin = OriginCheck(checkpoint, self.clock, self.aheadMargin, self.aheadPatience)
        if checkpoint is not None:
            checkpoint = Checkpoint.of(checkpoint).cursor
            if positions.split(checkpoint) is None:
                self._fatal(
                    "the checkpoint {!r} is not a getEvents cursor; remove the checkpoint file "
                    "to start from start_ledger".format(checkpoint),
                    None,
                )
                return ended
            self.cursor = checkpoint
            self._lastKey = positions.split(checkpoint)
            where = "checkpoint cursor {} (ledger {})".format(checkpoint, positions.ledgerOf(checkpoint))
        elif self._startLedger is not None:
            where = "start_ledger {}".format(self._startLedger)
        else:
            where = "the RPC's latest ledger"
        if not self.poll_interval and self.end_ledger is None:
            self.log.warn(
                "poll_interval is 0 and no end_ledger is set: once caught up the source will "
                "poll {endpoint} without pause",
                endpoint=self.client.endpoint,
            )
        for topics in exactLengthTopicFilters(self.filters):
            self.log.warn("Topic filter {problem}", problem=topicFilterWarning(topics))
        self.log.info(
            "Polling getEvents at {endpoint} from {where}{until}",
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
        d = self._cycle()
        self._cycleD = d
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
        """
        Last resort: the error handling itself failed.  Log it and keep polling.
        """
        self.log.failure("RPC source {pipeline}: internal error; polling again in 60s", failure, pipeline=self.name)
        if self.polling and not self._stopping and (self._timer is None or not self._timer.active()):
            self._schedule(60.0)

    def _notifyStopped(self):
        if self._stopping:
            waiters, self._stopWaiters = self._stopWaiters, []
            for d in waiters:
                d.callback(None)

    def _rpc(self, d):
        """
        Track the request in flight so that stop() can cancel it.
        """
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

    @inlineCallbacks
    def _cycle(self):
        """
        One fetch and its delivery.  Returns the delay before the next, or C{None} to stop.
        """
        if self.verifyNetwork:
            yield self._checkNetwork()
            if self._stopping or not self.polling:
                return None
        mismatch = self.origin.network(self.network)
        if mismatch is not None:
            return self._mismatched(mismatch)
        if self.cursor is None and self._startLedger is None:
            info = yield self._rpc(self.client.getLatestLedger())
            if self._stopping:
                return None
            self._startLedger = info["sequence"]
            self.latestLedger = info["sequence"]
            self.log.info("Starting at the RPC's latest ledger {ledger}", ledger=self._startLedger)

        previous = self.cursor
        page = yield self._rpc(self.client.getEvents(self._params()))
        if self._stopping:
            return None
        self.lastSuccessTime = self.clock.seconds()
        self.origin.reached()
        if page.latestLedger is not None:
            self.latestLedger = page.latestLedger
        if page.oldestLedger is not None:
            self.oldestLedger = page.oldestLedger

        full = len(page.events) >= self.limit
        accepted = acceptPage(page, self._lastKey, self.end_ledger, full)
        items, cursor, done = accepted.events, accepted.cursor, accepted.done
        if accepted.duplicates:
            self.log.debug("Dropped {count} already delivered event(s)", count=accepted.duplicates)
        self.log.debug(
            "Polled {count} events up to cursor {cursor} (latest ledger {latest})",
            count=len(items),
            cursor=cursor,
            latest=page.latestLedger,
        )

        if items or (cursor is not None and cursor != previous):
            # The position the batch continues from: the cursor, or just before the first
            # ledger asked for (durable consumers rejoining need to know where a run starts).
            start = previous if previous is not None else positions.ledgerStart(self._startLedger)
            batch = Batch(items=items, cursor=cursor, previous=start, latestLedger=self.latestLedger)
            self._stage = "delivering"
            try:
                yield maybeDeferred(self._deliver, batch)
            except Exception:
                raise DeliveryFailed(Failure())
            self._stage = None
        self._advance(items, cursor, page)
        self._recovered()
        if done:
            self._complete()
            return None
        if self._stopping:
            return None

        advanced = self.cursor != previous
        position = positions.ledgerOf(self.cursor)
        behind = position is not None and self.latestLedger is not None and position < self.latestLedger
        catchingUp = advanced and (full or behind)
        if self._catchingUp and not catchingUp:
            self.log.info(
                "Caught up with the RPC at ledger {ledger}; polling every {interval}s",
                ledger=self.latestLedger,
                interval=self.poll_interval,
            )
        self._catchingUp = catchingUp
        return 0 if catchingUp else self.poll_interval

    def _params(self):
        params = {}
        if self.cursor is not None:
            params["pagination"] = {"cursor": self.cursor, "limit": self.limit}
        else:
            params["startLedger"] = self._startLedger
            params["pagination"] = {"limit": self.limit}
        params["filters"] = self.filters
        if self.xdr_format != "base64":
            params["xdrFormat"] = self.xdr_format
        return params

    def _advance(self, items, cursor, page):
        for event in reversed(items):
            key = positions.split(eventIdOf(event))
            if key is not None:
                self._lastKey = max(key, self._lastKey) if self._lastKey else key
                break
        self.eventsDelivered += len(items)
        if cursor is not None:
            self.cursor = cursor
        elif self.cursor is None and page.latestLedger is not None and self._startLedger is not None:
            # An old server's empty page without a cursor: everything up to its latest ledger
            # was scanned.  Rescanning that ledger is harmless (ids are never delivered twice).
            self._startLedger = max(self._startLedger, page.latestLedger)

    def _recovered(self):
        if self.backoff.failures:
            self.log.info(
                "RPC at {endpoint} answering again after {count} failed attempt(s)",
                endpoint=self.client.endpoint,
                count=self.backoff.failures,
            )
        self.backoff.reset()

    @inlineCallbacks
    def _checkNetwork(self):
        """
        Learn the server's network, once; another one than configured stops the source.
        """
        self.verifyNetwork = False
        try:
            self.servedNetwork = yield servedNetwork(
                self._rpc(self.client.getNetwork()), self.configuredNetwork, self.client.endpoint, self.log
            )
        except NetworkMismatch as e:
            if not self._stopping:
                self._fatal(str(e), None)

    # -- outcomes ----------------------------------------------------------

    def _complete(self):
        self.complete = True
        self.polling = False
        self.log.info(
            "Backfill complete: every event up to ledger {ledger} delivered (cursor {cursor})",
            ledger=self.end_ledger,
            cursor=self.cursor,
        )
        self._end(None)

    def _fatal(self, reason, failure):
        self.fatal = reason
        self.lastError = reason
        self.polling = False
        self.log.critical(
            "RPC source {pipeline} stopped polling {endpoint}: {reason}",
            pipeline=self.name,
            endpoint=self.client.endpoint,
            reason=reason,
        )
        self._end(failure if failure is not None else Failure(RuntimeError(reason)))

    def _end(self, result):
        """
        Fire the Deferred L{start} returned (once): C{None}, or the Failure that ended polling.
        """
        ended, self._ended = self._ended, None
        if ended is not None:
            ended.callback(result) if result is None else ended.errback(result)

    def _requested(self):
        position = positions.ledgerOf(self.cursor)
        return position if position is not None else self._startLedger

    def _failed(self, failure):
        """
        Carry out what the failure policy decides.  Returns the delay before the next try, or
        C{None}.
        """
        if self._stopping:
            return None
        self.errors += 1
        self.lastError = str(failure.value)
        if failure.check(LedgerRangeError):
            mismatch = self.origin.ahead(self._requested(), failure.value.latest)
            if mismatch is not None:
                return self._mismatched(mismatch)
        outcome = self.policy.decide(failure, self._requested(), self.cursor)
        if isinstance(outcome, Stop):
            if outcome.gap is not None:
                self.gaps.append(outcome.gap)
            self._fatal(outcome.reason, failure)
            return None
        if isinstance(outcome, SkipGap):
            self.gaps.append((outcome.first, outcome.last))
            if self.cursor is None and outcome.first == self.start_ledger:
                self.log.warn(
                    "start_ledger {start} is outside the retention of {endpoint}: it keeps ledgers "
                    "{oldest} onwards (an RPC keeps about 7 days), so ledgers {start}-{last} cannot be "
                    "read; on_gap is 'skip': starting at ledger {oldest}",
                    start=outcome.first,
                    last=outcome.last,
                    oldest=outcome.last + 1,
                    endpoint=self.client.endpoint,
                )
            self.cursor = None
            self._startLedger = outcome.last + 1
            return 0
        return outcome.delay

    def _mismatched(self, mismatch):
        """
        The checkpoint cannot be followed (L{stellarflow.rpc.origin}): stop, or forget it and
        follow the RPC from its latest ledger.  Returns the delay before the next poll, or
        C{None}.
        """
        self.lastError = mismatch.reason
        if self.onCheckpointMismatch == RESTART_FROM_LATEST:
            self.log.critical(
                "CHECKPOINT MISMATCH in pipeline {pipeline}: {reason}; on_checkpoint_mismatch is "
                "restart_from_latest: forgetting it and following {endpoint} from its latest ledger "
                "(nothing between is read)",
                pipeline=self.name,
                reason=mismatch.reason,
                endpoint=self.client.endpoint,
            )
            self.cursor = self._lastKey = self._startLedger = None
            self.origin.reached()
            return 0
        self._fatal(
            "CHECKPOINT MISMATCH: {}. To start afresh, reset this pipeline's checkpoint (stellarflow -c "
            "CONFIG --reset-checkpoint {}, or remove its state file), or set on_checkpoint_mismatch: "
            "restart_from_latest".format(mismatch.reason, self.name),
            None,
        )
        return None
