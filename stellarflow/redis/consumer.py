"""
SaveToRedis: every message appended to a Redis Stream (L{stellarflow.redis.entries}), for edge
nodes to fan out.  A durable consumer: its position is kept in Redis with the entries.

- ``consume(batch)`` queues the batch; its Deferred fires only once the MULTI/EXEC holding its
  entries and the stream's new position was EXECuted.  Batches are written in order, one
  transaction at a time, over one connection (never a pool: XADDs with explicit ids must not
  be reordered).
- An entry's id is the message's event id; an id at or below the stream's top is not sent
  again (and Redis would refuse it), so a redelivered batch is a no-op: no duplicates.
- While Redis is down, what was accepted is held (acknowledgements withheld) and written once
  it is back, after the stream's position was read again; the pipeline detaches the consumer
  once it holds C{max_in_flight} batches, and its catch-up reader waits: nothing more is read
  from the source for it meanwhile.
- Every command has a timeout (C{command_timeout}); one that expires costs the connection.
- A Redis that comes back with fewer entries than were written (restarted without persistence)
  is refilled from the newest C{refill_size} entries held in memory, with their original
  predecessors: edges that were further behind see the exact gap.
"""

import collections

import attr
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.logger import Logger
from zope.interface import implementer, provider

from stellarflow.backoff import Backoff
from stellarflow.checkpoint import Checkpoint
from stellarflow.compat.txredisapi import ResponseError
from stellarflow.durable import notBefore
from stellarflow.events.network import networkPassphrase
from stellarflow.interfaces import ICheckpointStore, IComponentFactory, IConsumer, IStatsProvider
from stellarflow.positions import ledgerOf, position, toid
from stellarflow.redis import entries as E
from stellarflow.redis.config import CONSUMER_SCHEMA
from stellarflow.redis.connection import RedisConnection, RedisUnavailable
from stellarflow.redis.url import parseRedisURL

#: How Redis says an XADD id is not above the top.
_NOT_ABOVE_TOP = "equal or smaller than the target stream top"


#: Seconds between checks of a stream that holds another network's events.
FOREIGN_RETRY = 30.0


class ForeignStream(Exception):
    """
    The stream was written for another network.
    """


@attr.s(slots=True, eq=False)
class _Queued:
    batch = attr.ib()
    done = attr.ib(factory=Deferred)


@provider(IComponentFactory)
@implementer(IConsumer, ICheckpointStore, IStatsProvider)
class SaveToRedis:
    """
    Appends event messages to the Redis Stream C{stream} (see the module docstring).
    Constructor arguments are the config keys.

    @ivar last: the newest entry id in the stream, as far as known; C{cursor}: the source
        position up to which the stream is complete (its checkpoint).
    """

    log = Logger()

    configSchema = CONSUMER_SCHEMA

    @classmethod
    def fromConfig(cls, config, context):
        return cls(context.reactor, pipeline=context.pipeline, network=context.network, **config)

    def __init__(
        self,
        reactor,
        redis_url="redis://127.0.0.1:6379/0",
        stream="stellarflow:events",
        pipeline=None,
        network=None,
        max_length=1000000,
        max_ledgers=0,
        refill_size=10000,
        max_transaction=5000,
        command_timeout=5.0,
        connect_timeout=5.0,
        retryPolicy=None,
    ):
        self.reactor = reactor
        self.address = parseRedisURL(redis_url)
        self.stream = stream
        self.positionKey = E.positionKey(stream)
        self.pipeline = pipeline
        self.network = _passphrase(network)
        self.maxLength = max_length
        self.maxLedgers = max_ledgers
        self.maxTransaction = max_transaction
        self.connection = RedisConnection(
            reactor,
            self.address,
            name="writes to " + stream,
            commandTimeout=command_timeout,
            connectTimeout=connect_timeout,
            onReady=self._connected,
            onLost=self._lost,
            retryPolicy=retryPolicy,
        )
        self.backoff = Backoff(initial=0.5, maximum=10.0)
        self.last = None
        self.cursor = None
        self._held = collections.deque(maxlen=refill_size) if refill_size else None
        self._queue = collections.deque()
        self._writing = None
        self._known = False  # whether the stream's position was read on this connection
        self._reading = None
        self._retry = None
        self._stopping = False
        self._writeWaiters = []
        # counters
        self.appended = 0
        self.duplicates = 0
        self.skipped = 0
        self.transactions = 0
        self.writeErrors = 0
        self.losses = 0
        self.refilled = 0
        self.foreign = None

    def __repr__(self):
        return "<SaveToRedis {} stream {}>".format(self.address.describe(), self.stream)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self):
        """
        Begin connecting in the background; never fails for an unreachable Redis.
        """
        self.log.info(
            "Redis consumer for pipeline {pipeline} writing to stream {stream} at {where}",
            pipeline=self.pipeline,
            stream=self.stream,
            where=self.address.describe(),
        )
        self.connection.start()
        return succeed(None)

    @inlineCallbacks
    def stop(self):
        """
        Finish the transaction in flight (bounded by the command timeout), then close.
        """
        self._stopping = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self._writing is not None:
            waiter = Deferred()
            self._writeWaiters.append(waiter)
            yield waiter
        held = sum(len(q.batch.messages or ()) for q in self._queue)
        if held:
            self.log.warn(
                "Redis consumer for stream {stream} stopping with {count} message(s) not written; "
                "they will be read again from its position",
                stream=self.stream,
                count=held,
            )
        for queued in self._queue:
            queued.done.errback(RedisUnavailable("the Redis consumer stopped"))
            queued.done.addErrback(lambda _: None)
        self._queue.clear()
        yield self.connection.stop()

    # -- the connection --------------------------------------------------------------------

    def _connected(self):
        """
        A new connection: read the stream's position before writing (it may have changed while
        we were away: another run wrote, or Redis lost data), refilling what Redis lost.
        """
        self._known = False
        self._reading = self._readPosition()
        self._reading.addErrback(self._positionFailed)

    def _lost(self, reason):
        self._known = False

    @inlineCallbacks
    def _readPosition(self):
        top, stored = yield self.connection.executeMany(
            [("XREVRANGE", self.stream, "+", "-", "COUNT", "1"), ("HGETALL", self.positionKey)]
        )
        if isinstance(top, ResponseError) or isinstance(stored, ResponseError):
            raise RedisUnavailable("cannot read the stream's position: {}".format(top if isinstance(top, ResponseError) else stored))
        redisLast = E.positionOf(top[0][0]) if top else None
        stored = E.decodeHash(stored)
        redisCursor = stored.get("cursor") or None
        theirs = stored.get("network") or None
        if theirs and self.network and theirs != self.network:
            # Ids of another network (a testnet reset) would sort below the top and be taken
            # for duplicates: events dropped in silence.  Refuse, loudly, until an operator acts.
            self.foreign = theirs
            raise ForeignStream(
                "stream {} holds the events of network {!r}, this pipeline follows {!r}: use another "
                "stream (or delete this one and {}) to go on".format(self.stream, theirs, self.network, self.positionKey)
            )
        self.foreign = None
        if self.last is not None and E.later(self.last, redisLast):
            yield self._refill(redisLast, redisCursor)
        else:
            if E.later(redisLast, self.last):
                self.last = redisLast
            if E.later(redisCursor, self.cursor):
                self.cursor = redisCursor
        self._known = True
        self._pump()

    def _positionFailed(self, failure):
        self.writeErrors += 1
        if failure.check(ForeignStream):
            self.log.critical("{error}; nothing is appended meanwhile", error=failure.getErrorMessage())
            self._retry = self.reactor.callLater(FOREIGN_RETRY, self._retryNow)
            return
        self.log.warn(
            "Cannot read the position of stream {stream}: {error}; retrying",
            stream=self.stream,
            error=failure.getErrorMessage(),
        )
        self._scheduleRetry()

    @inlineCallbacks
    def _refill(self, redisLast, redisCursor):
        """
        Redis holds fewer entries than we wrote (restarted without persistence, or failed over
        to a replica that lagged): append again those held in memory after its top.
        """
        self.losses += 1
        held = [h for h in (self._held or ()) if E.later(h[0], redisLast)]
        commands = [("MULTI",)]
        for id_, json, previous in held:
            commands.append(("XADD", self.stream, E.streamId(id_), E.MESSAGE, json, E.PREDECESSOR, E.streamId(previous) or ""))
        commands.append(self._positionCommand(self.cursor, self.last))
        commands.append(("EXEC",))
        replies = yield self.connection.executeMany(commands)
        self._checkExec(replies[-1])
        refilledFrom = held[0][0] if held else None
        whole = bool(held) and (held[0][2] is not None and not E.later(held[0][2], redisLast))
        self.refilled += len(held)
        self.log.warn(
            "DATA LOSS: Redis at {where} holds stream {stream} only up to {top} (position {cursor}) but "
            "{last} was written: it lost entries (a restart without persistence?). Refilled {count} "
            "entr{ies} from memory{start}; {verdict}",
            where=self.address.describe(),
            stream=self.stream,
            top=redisLast or "nothing",
            cursor=redisCursor or "none",
            last=self.last,
            count=len(held),
            ies="y" if len(held) == 1 else "ies",
            start=" from {}".format(refilledFrom) if refilledFrom else "",
            verdict="nothing is missing"
            if whole
            else "entries before {} are lost from the stream: edges report the gap".format(refilledFrom or "the next one"),
        )

    def _checkExec(self, reply):
        if isinstance(reply, ResponseError):
            if str(reply).startswith(("READONLY", "EXECABORT")) and self.connection.ready:
                self.connection.reconnect()
            raise reply
        if reply is None:
            raise RedisUnavailable("the transaction was aborted")
        for item in reply:
            if isinstance(item, ResponseError) and _NOT_ABOVE_TOP not in str(item):
                raise item
        return reply

    # -- consuming -------------------------------------------------------------------------

    def consume(self, batch):
        if self._stopping:
            return fail(RedisUnavailable("the Redis consumer is stopping"))
        queued = _Queued(batch)
        self._queue.append(queued)
        self._pump()
        return queued.done

    def _pump(self):
        if self._writing is not None or not self._queue or not self._known or self._stopping:
            return
        if not self.connection.ready:
            return
        if self._retry is not None and self._retry.active():
            return
        taken, count = [], 0
        while self._queue and (not taken or count + len(self._queue[0].batch.messages or ()) <= self.maxTransaction):
            queued = self._queue.popleft()
            taken.append(queued)
            count += len(queued.batch.messages or ())
        commands, plan = self._commands(taken)
        if plan["appended"] == 0 and plan["cursor"] == self.cursor:
            self._written(None, taken, plan)  # nothing new: redelivered batches
            return
        self._writing = self.connection.executeMany(commands)
        self._writing.addCallbacks(self._written, self._failed, callbackArgs=(taken, plan), errbackArgs=(taken,))

    def _commands(self, taken):
        """
        The MULTI/EXEC that appends C{taken}'s new messages and records the new position, and
        what it will change (applied once it succeeded).
        """
        last, cursor = self.last, self.cursor
        commands = [("MULTI",)]
        held, duplicates, skipped = [], 0, 0
        newestLedger = None
        for queued in taken:
            batch = queued.batch
            # The batch continues the chain the stream holds when it starts at or before the
            # position the stream is complete up to; else its first entry's predecessor is unknown.
            chained = cursor is not None and batch.previous is not None and notBefore(cursor, batch.previous)
            for message in batch.messages or ():
                id_ = message.id
                if message.json is None or not E.canStore(id_):
                    skipped += 1
                    continue
                if last is not None and not E.later(id_, last):
                    duplicates += 1
                    continue
                previous = (last if last is not None else cursor) if chained else None
                commands.append(
                    ("XADD", self.stream, E.streamId(id_), E.MESSAGE, message.json, E.PREDECESSOR, E.streamId(previous) or "")
                )
                held.append((id_, message.json, previous))
                last, chained = id_, True
                newestLedger = ledgerOf(id_)
            if batch.cursor is not None and E.later(batch.cursor, cursor):
                cursor = batch.cursor
        if held:
            if self.maxLength:
                commands.append(("XTRIM", self.stream, "MAXLEN", "~", self.maxLength))
            if self.maxLedgers and newestLedger is not None and newestLedger > self.maxLedgers:
                oldest = position(toid(newestLedger - self.maxLedgers + 1))
                commands.append(("XTRIM", self.stream, "MINID", "~", E.streamId(oldest)))
        commands.append(self._positionCommand(cursor, last))
        commands.append(("EXEC",))
        return commands, {
            "appended": len(held),
            "held": held,
            "duplicates": duplicates,
            "skipped": skipped,
            "last": last,
            "cursor": cursor,
        }

    def _positionCommand(self, cursor, last):
        fields = []
        if cursor is not None:
            fields += ["cursor", cursor]
        if last is not None:
            fields += ["last", last]
        if self.network:
            fields += ["network", self.network]
        if not fields:
            return ("EXISTS", self.positionKey)  # a no-op in its place
        return ("HSET", self.positionKey) + tuple(fields)

    def _written(self, replies, taken, plan):
        self._writing = None
        refused = 0
        if replies is not None:
            try:
                result = self._checkExec(replies[-1])
            except Exception as e:
                return self._failed(_failure(e), taken)
            refused = sum(1 for item in result if isinstance(item, ResponseError))
            self.transactions += 1
        self.backoff.reset()
        self.appended += plan["appended"] - refused
        self.duplicates += plan["duplicates"] + refused
        self.skipped += plan["skipped"]
        if E.later(plan["last"], self.last):
            self.last = plan["last"]
        if E.later(plan["cursor"], self.cursor):
            self.cursor = plan["cursor"]
        if self._held is not None:
            self._held.extend(plan["held"])
        for queued in taken:
            queued.done.callback(None)
        self._wroteOne()

    def _failed(self, failure, taken):
        self._writing = None
        self.writeErrors += 1
        self._queue.extendleft(reversed(taken))
        self._known = False  # the transaction may or may not have been applied: read the top again
        self.log.warn(
            "Cannot append to stream {stream} at {where}: {error}; {count} batch(es) held, acknowledgements withheld",
            stream=self.stream,
            where=self.address.describe(),
            error=failure.getErrorMessage(),
            count=len(self._queue),
        )
        self._wroteOne()
        if not self._stopping and self.connection.ready:
            self._scheduleRetry()

    def _scheduleRetry(self):
        if self._stopping or (self._retry is not None and self._retry.active()):
            return
        self._retry = self.reactor.callLater(self.backoff.next(), self._retryNow)

    def _retryNow(self):
        self._retry = None
        if not self.connection.ready:
            return  # the next connection reads the position again
        if not self._known:
            self._connected()
        else:
            self._pump()

    def _wroteOne(self):
        waiters, self._writeWaiters = self._writeWaiters, []
        for waiter in waiters:
            waiter.callback(None)
        self._pump()

    # -- checkpoints and statistics ---------------------------------------------------------

    @inlineCallbacks
    def load(self, pipeline):
        """
        The stream's position (the cursor it is complete up to), or C{None}; waits while Redis
        is unreachable, and never fires once the consumer stops.
        """
        warned = False
        while True:
            if self._stopping:
                yield Deferred()
            try:
                yield self.connection.whenReady(failAfterFailures=1)
                stored = yield self.connection.execute("HGETALL", self.positionKey)
            except Exception as e:
                if not warned and not self._stopping:
                    warned = True
                    self.log.warn(
                        "Redis at {where} holds the position of stream {stream}: {error}; its messages are "
                        "appended from there once Redis answers (the live stream does not wait)",
                        where=self.address.describe(),
                        stream=self.stream,
                        error=str(e),
                    )
                wait = Deferred()
                self.reactor.callLater(self.backoff.next(), wait.callback, None)
                yield wait
                continue
            stored = E.decodeHash(stored)
            if not stored.get("cursor"):
                return None
            return Checkpoint(stored["cursor"], network=stored.get("network") or None)

    def save(self, pipeline, checkpoint):
        """
        A no-op: the position is written with the entries (a cursor alone moves with the
        next transaction).
        """
        return succeed(None)

    def stats(self):
        """
        Counters for /metrics (names as in docs/operations.md).
        """
        return {
            "appended_total": self.appended,
            "duplicates_total": self.duplicates,
            "skipped_total": self.skipped,
            "transactions_total": self.transactions,
            "write_errors_total": self.writeErrors,
            "data_losses_total": self.losses,
            "refilled_total": self.refilled,
            "connect_retries_total": self.connection.retries,
            "pending_batches": len(self._queue),
            "connected": self.connection.ready,
            "foreign_stream": self.foreign is not None,
        }


def _passphrase(network):
    """The passphrase of a network setting ("testnet" or a passphrase); C{None} when unknown."""
    if not network:
        return None
    try:
        return networkPassphrase(network)
    except ValueError:
        return network


def _failure(error):
    from twisted.python.failure import Failure

    return Failure(error)
