"""
RedisStreamSource: an edge node follows the stream C{SaveToRedis} writes and hands its
messages, as they were sealed on the ingest node, to its consumers (a C{SaveToWebSocket}).

- Reads are ``XREAD COUNT n BLOCK ms STREAMS <stream> <last id>`` on a connection of their own
  (a blocking read holds its connection), always from the last id read (the checkpoint's on a
  restart; without one, the stream's newest entry or its oldest: never ``$``).
- Each entry names its predecessor; an entry whose predecessor is after the position read so
  far (or unknown) means the stream broke there: the ids in between were trimmed, lost by
  Redis or never written.  That gap is logged with its exact bounds and counted, and the
  history stops at it (clients resuming from before it are told).  A gap after the first
  batch of a run stops the source with L{StreamGap} (``on_gap: stop``): the daemon exits, its
  supervisor restarts it, its clients reconnect and resume, and are told about the gap.
- A batch's cursor is its last entry id, or the stream's recorded position when the read
  took everything up to it: positions move on even when no event matched.
- While Redis is down the source waits for it (no read, nothing buffered).
"""

import json

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from zope.interface import implementer, provider

from stellarflow.batch import Batch
from stellarflow.interfaces import IComponentFactory, IEventHistorySource, ISource, IStatsProvider
from stellarflow.message import sealed
from stellarflow.positions import before, ledgerOf
from stellarflow.redis import entries as E
from stellarflow.redis.config import SOURCE_SCHEMA
from stellarflow.redis.connection import RedisConnection
from stellarflow.redis.history import RedisHistory
from stellarflow.redis.url import parseRedisURL


class StreamGap(Exception):
    """
    The stream broke after the first batch of a run and C{on_gap} is ``stop``.
    """


@provider(IComponentFactory)
@implementer(ISource, IEventHistorySource, IStatsProvider)
class RedisStreamSource:
    """
    Follows a Redis Stream written by C{SaveToRedis} (see the module docstring).  Constructor
    arguments are the config keys.
    """

    log = Logger()

    configSchema = SOURCE_SCHEMA

    @classmethod
    def fromConfig(cls, config, context):
        return cls(context.reactor, pipeline=context.pipeline, **config)

    def __init__(
        self,
        reactor,
        redis_url="redis://127.0.0.1:6379/0",
        stream="stellarflow:events",
        pipeline=None,
        count=1000,
        block=1.0,
        start="latest",
        on_gap="stop",
        history_verify_limit=100000,
        command_timeout=5.0,
        connect_timeout=5.0,
        retryPolicy=None,
    ):
        self.reactor = reactor
        self.address = parseRedisURL(redis_url)
        self.redisURL = redis_url
        self.stream = stream
        self.positionKey = E.positionKey(stream)
        self.pipeline = pipeline
        self.count = count
        self.block = block
        self.startAt = start
        self.onGap = on_gap
        self.verifyLimit = history_verify_limit
        self.commandTimeout = command_timeout
        self.connectTimeout = connect_timeout
        self.connection = RedisConnection(
            reactor,
            self.address,
            name="reads of " + stream,
            commandTimeout=command_timeout,
            connectTimeout=connect_timeout,
            retryPolicy=retryPolicy,
        )
        self.network = None
        self.position = None
        self.streamPosition = None
        self._history = None
        self._pendingGap = None
        self._stopped = False
        self._done = None
        self._loop = None
        self.batchesDelivered = 0
        self.entriesRead = 0
        self.undecodable = 0
        self.gaps = 0
        self.lastGap = None
        self.readErrors = 0
        self.lastSuccess = None
        self.lastError = None

    def __repr__(self):
        return "<RedisStreamSource {} stream {}>".format(self.address.describe(), self.stream)

    def eventHistory(self):
        """
        The stream read back with XRANGE (an L{IEventHistory}): WebSocket clients resuming on
        this edge after another edge served them get what they missed from it.
        """
        if self._history is None:
            self._history = RedisHistory(
                self.reactor,
                self.address,
                self.stream,
                commandTimeout=self.commandTimeout,
                connectTimeout=self.connectTimeout,
                verifyLimit=self.verifyLimit,
            )
        return self._history

    # -- ISource ----------------------------------------------------------------------------

    def start(self, deliver, checkpoint):
        self._deliver = deliver
        self.position = checkpoint.cursor if checkpoint is not None else None
        self._done = Deferred()
        self.connection.start()
        self._loop = Deferred.fromCoroutine(self._run())
        self._loop.addErrback(self._crashed)
        return self._done

    def stop(self):
        self._stopped = True
        d = self.connection.stop()
        if self._history is not None:
            self._history.close()
        self._end(None)
        return d

    def _end(self, failure):
        done, self._done = self._done, None
        if done is not None:
            if failure is None:
                done.callback(None)
            else:
                done.errback(failure)

    def _crashed(self, failure):
        if self._stopped:
            return None
        if failure.check(StreamGap):
            self._end(failure)
            return None
        self.log.failure("The Redis stream reader of {stream} stopped unexpectedly", failure, stream=self.stream)
        self._end(failure)
        return None

    # -- reading ----------------------------------------------------------------------------

    async def _run(self):
        started = False
        while not self._stopped:
            try:
                await self.connection.whenReady()
                if not started:
                    await self._resolveStart()
                    started = True
                batch = await self._read()
            except CancelledError:
                return
            except Exception as e:
                if self._stopped:
                    return
                self.readErrors += 1
                self.lastError = str(e)
                self.log.warn("Cannot read stream {stream}: {error}; retrying", stream=self.stream, error=str(e))
                await self._sleep(min(5.0, self.commandTimeout))
                continue
            if batch is None:
                continue
            if batch.items or batch.cursor != batch.previous:
                await self._deliver(batch)
                self.batchesDelivered += 1
            if self._pendingGap is not None:
                raise self._pendingGap

    def _sleep(self, seconds):
        d = Deferred()
        self.reactor.callLater(seconds, d.callback, None)
        return d

    async def _resolveStart(self):
        """
        Where to read from without a checkpoint: the stream's newest entry (or its recorded
        position, when later) or, with C{start: oldest}, before its first entry.
        """
        if self.position is not None:
            self.log.info("Following stream {stream} after {position}", stream=self.stream, position=self.position)
        elif self.startAt == "latest":
            top, stored = await self.connection.executeMany(
                [("XREVRANGE", self.stream, "+", "-", "COUNT", "1"), ("HGET", self.positionKey, "cursor")]
            )
            last = E.positionOf(top[0][0]) if top else None
            stored = stored.decode() if isinstance(stored, bytes) else None
            self.position = stored if E.later(stored, last) else last
            self.log.info(
                "Following stream {stream} from its newest position {position}",
                stream=self.stream,
                position=self.position or "(empty stream)",
            )
        else:
            self.log.info("Following stream {stream} from its oldest entry", stream=self.stream)
        self.eventHistory().liveFrom(self.position)

    async def _read(self):
        after = E.streamId(self.position) if self.position is not None else "0-0"
        stored, raw = await self.connection.executeMany(
            [
                ("HGET", self.positionKey, "cursor"),
                ("XREAD", "COUNT", self.count, "BLOCK", int(self.block * 1000), "STREAMS", self.stream, after),
            ],
            timeout=self.block + self.commandTimeout,
        )
        self.lastSuccess = self.reactor.seconds()
        self.lastError = None
        stored = stored.decode() if isinstance(stored, bytes) else None
        if stored is not None:
            self.streamPosition = stored
        entries = E.parseEntries(raw[0][1]) if raw else []
        previous = self.position
        items = []
        for entry in entries:
            self._check(entry)
            if self._pendingGap is not None:
                break  # deliver what came before the gap, then stop
            self.position = entry.id
            self.entriesRead += 1
            try:
                fields = json.loads(entry.json)
                if not isinstance(fields, dict):
                    raise ValueError("not an object")
            except (TypeError, ValueError):
                self.undecodable += 1
                self.log.warn("Entry {id} of stream {stream} is not a JSON object; skipped", id=entry.id, stream=self.stream)
                continue
            items.append(sealed(fields, entry.json))
        if self._pendingGap is None and len(entries) < self.count and E.later(stored, self.position):
            # The read took every entry up to the recorded position (written with them).
            self.position = stored
        if self.position == previous and self._pendingGap is None:
            return None
        return Batch(items, cursor=self.position, previous=previous, latestLedger=ledgerOf(self.streamPosition))

    def _check(self, entry):
        """
        Whether C{entry} follows the position read so far; a gap is logged, counted and
        marked in the history (and, with C{on_gap: stop} after the first batch, ends the run).
        """
        position = self.position
        if position is None:
            return
        if entry.previous is not None and not E.later(entry.previous, position):
            return
        upto = entry.previous if entry.previous is not None else before(entry.id)
        self.gaps += 1
        self.lastGap = (position, upto)
        self.log.warn(
            "GAP in stream {stream}: the entries after {after} up to {upto} {how}; the stream goes on "
            "at {id}. Clients resuming from before it are told.",
            stream=self.stream,
            after=position,
            upto=upto,
            how="are missing (trimmed, or lost by Redis)"
            if entry.previous is not None
            else "cannot be verified (the writer did not know the predecessor) and are treated as missing",
            id=entry.id,
        )
        self.eventHistory().chainBroken(entry.id)
        if self.onGap == "stop" and self.batchesDelivered:
            self._pendingGap = StreamGap(
                "stream {} broke after {} (entries up to {} missing); stopping so that clients "
                "reconnect and are told (on_gap: stop)".format(self.stream, position, upto)
            )

    # -- statistics -------------------------------------------------------------------------

    def stats(self):
        now = self.reactor.seconds()
        mine, theirs = ledgerOf(self.position), ledgerOf(self.streamPosition)
        return {
            "polling": self.connection.ready and not self._stopped,
            "latest_ledger": theirs,
            "lag_ledgers": max(0, theirs - mine) if mine is not None and theirs is not None else None,
            "entries_read_total": self.entriesRead,
            "batches_total": self.batchesDelivered,
            "undecodable_total": self.undecodable,
            "gaps_total": self.gaps,
            "read_errors_total": self.readErrors,
            "connect_retries_total": self.connection.retries,
            "seconds_since_success": now - self.lastSuccess if self.lastSuccess is not None else None,
            "health_timeout_seconds": max(30.0, 3 * (self.block + self.commandTimeout)),
            "last_error": self.lastError,
        }
