"""
SaveToPostgreSQL: every event message as a row of a PostgreSQL table, written in batched,
idempotent transactions that also carry the pipeline's checkpoint.  This module holds the
admission, batching and acknowledgements; the SQL is L{stellarflow.postgres.writer}'s, the
connection L{stellarflow.postgres.keeper}'s.

- ``consume(batch)`` queues the batch; its Deferred fires only after the transaction holding
  all its rows COMMITted.  Queued batches are written together once ``batch_size`` rows are
  waiting or the oldest has waited ``flush_interval`` seconds, with ``ON CONFLICT (id) DO
  NOTHING`` and the checkpoint upsert: a redelivered event is a no-op, and the stored checkpoint
  never runs ahead of the stored events.  With a second writer connection the next transaction
  is written while one commits, and commits only after it (L{SaveToPostgreSQL._pipeline}).
- While the database is down the keeper reconnects with backoff; the held batches are written
  once it is back, their acknowledgements withheld meanwhile (backpressure on the source).  At
  most ``max_pending`` events are admitted; further batches are parked, unconverted, until
  there is room.  Nothing is dropped, and ``start()`` never fails for an unreachable database.
- As the checkpoint store, ``load(pipeline)`` waits until the database answers, and ``save`` is a
  no-op for a cursor already written with its events.  ``eventHistory()`` lends the table, read
  on a connection of its own, to the consumers that replay it.
"""

import collections
import copy
import functools

import attr
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.logger import Logger
from zope.interface import implementer, provider

from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import (
    ICheckpointStore,
    IComponentFactory,
    IConnectionListener,
    IConsumer,
    IEventHistorySource,
    IEventQuerySource,
    IStatsProvider,
)
from stellarflow.postgres import dsn as dsnlib
from stellarflow.postgres import rows as rowlib
from stellarflow.postgres.config import CONFIG_SCHEMA, DEFAULT_TABLE
from stellarflow.postgres.history import PostgresHistory
from stellarflow.postgres.keeper import DatabaseUnavailable, ThreadedConnectionKeeper
from stellarflow.postgres.query import EventQuery
from stellarflow.postgres.schema import TableNames, migrate
from stellarflow.postgres.writer import ROW_ERRORS, EventWriter, Predecessor, PredecessorFailed

# How many recently written cursors are remembered so that save() can skip them.
_REMEMBERED_CURSORS = 4096

__all__ = ["SaveToPostgreSQL", "DatabaseUnavailable", "DEFAULT_TABLE"]


@attr.s(slots=True, eq=False)
class _Entry:
    """
    One pipeline batch held by the consumer; C{rendered}: its messages as COPY rows (a
    L{stellarflow.postgres.writer.Rendered}), rendered once, ahead of their flush.
    """

    batch = attr.ib()
    arrived = attr.ib()
    done = attr.ib(factory=Deferred)
    count = attr.ib(default=attr.Factory(lambda self: len(self.batch.messages or ()), takes_self=True))
    rendered = attr.ib(default=None)


@attr.s(slots=True, eq=False)
class _Flush:
    """
    One flush transaction in flight: its entries, the keeper (connection) writing it, the
    outcome of the flush taken before it when that one was still being written (C{after}), and
    its own outcome for the flush taken after it.
    """

    entries = attr.ib()
    keeper = attr.ib()
    sequence = attr.ib()
    after = attr.ib(default=None)
    outcome = attr.ib(factory=Predecessor)
    ids = attr.ib(default=None)


def _idOf(message):
    """A message's id, or C{None} (a message that is not a mapping is rejected when rendered)."""
    return message.get("id") if isinstance(message, dict) else None


class _SecondWriter:
    """
    The second writer connection's news: it only speeds writing up, so it is logged quietly;
    once it is ready the consumer may use it.
    """

    def __init__(self, consumer):
        self.consumer = consumer

    def connectionReady(self, applied):
        self.consumer._schedule()

    def connectionFailed(self, error, delay):
        self.consumer.log.debug("Second PostgreSQL writer connection: {error}", error=error)

    connectionLost = connectionFailed


@provider(IComponentFactory)
@implementer(IConsumer, ICheckpointStore, IEventHistorySource, IEventQuerySource, IStatsProvider, IConnectionListener)
class SaveToPostgreSQL:
    """
    Writes event messages to PostgreSQL and keeps the pipeline's checkpoint there.

    Its keyword arguments are named after the config keys (C{batch_size}, ...), as
    L{fromConfig} passes them.

    @param reactor: the reactor (timers and the txpostgres connection).
    @param dsn: a libpq connection string (see L{stellarflow.postgres.dsn.buildDSN}).
    @param pipeline: the pipeline name under which the cursor is stored.
    @param backoff: a L{Backoff} for reconnecting (tests pass a fast one).
    @param secrets: extra strings to scrub from logged error text (the DSN's password always is).
    @param keeper: the L{IConnectionKeeper} to write through (tests pass a fake); by default a
        L{ThreadedConnectionKeeper} of C{dsn} that migrates the schema on every connection,
        and C{writer_connections - 1} more that write the next flush while one commits.
    @param keepers: instead of C{keeper}, several (tests pass fakes): the first is C{keeper}.

    @ivar pending: events accepted and not yet committed.
    @ivar inserted: rows inserted so far; C{duplicates}: rows already present; C{rejected}: rows
        sent to the dead-letter table.
    """

    log = Logger()

    configSchema = CONFIG_SCHEMA

    @classmethod
    def fromConfig(cls, config, context):
        return cls(
            context.reactor,
            dsnlib.buildDSN(config, "stellarflow:" + context.pipeline),
            context.pipeline,
            table=config["table"],
            schema=config["schema"],
            batch_size=config["batch_size"],
            flush_interval=config["flush_interval"],
            max_pending=config["max_pending"],
            writer_connections=config["writer_connections"],
            connect_timeout=config["connect_timeout"],
            query_timeout=config["query_timeout"],
            store_message=config["store_message"],
            history_endpoint=config["history_endpoint"],
            history_max_limit=config["history_max_limit"],
            history_statement_timeout=config["history_statement_timeout"],
            secrets=[config["password"]] if config["password"] else (),
            produced_types=context.produced_types,
        )

    def __init__(
        self,
        reactor,
        dsn,
        pipeline,
        table=DEFAULT_TABLE,
        schema=None,
        batch_size=500,
        flush_interval=0.2,
        max_pending=100000,
        writer_connections=2,
        connect_timeout=10.0,
        query_timeout=60.0,
        store_message=True,
        history_endpoint="admin",
        history_max_limit=1000,
        history_statement_timeout=10.0,
        backoff=None,
        secrets=(),
        keeper=None,
        produced_types=None,
        keepers=None,
    ):
        self.reactor = reactor
        self.producedTypes = produced_types
        self.dsn = dsn
        self.pipeline = pipeline
        self.names = TableNames(table, schema)
        self.batchSize = batch_size
        self.flushInterval = flush_interval
        self.maxPending = max_pending
        self.connectTimeout = connect_timeout
        self.queryTimeout = query_timeout
        self.storeMessage = store_message
        self.historyEndpoint = history_endpoint
        self.historyMaxLimit = history_max_limit
        self.historyStatementTimeout = history_statement_timeout
        self._query = None
        self.where = dsnlib.describe(dsn)
        self._historySecrets = tuple(secrets)
        self._secrets = tuple(s for s in tuple(secrets) + dsnlib.secretsOf(dsn) if s)
        if keepers:
            keeper = keepers[0]
        self._keepers = list(keepers or [keeper])
        if keeper is None:
            # Each writer connection has its own thread; a second one writes the next flush
            # while the first commits (see _pipeline).  Only the first migrates the schema.
            self._keepers = [
                ThreadedConnectionKeeper(
                    reactor,
                    dsn,
                    prepare=functools.partial(migrate, names=self.names) if n == 0 else None,
                    connectTimeout=connect_timeout,
                    queryTimeout=query_timeout,
                    backoff=backoff if n == 0 or backoff is None else copy.deepcopy(backoff),
                    secrets=secrets,
                    passOn=ROW_ERRORS + (PredecessorFailed,),
                )
                for n in range(max(1, writer_connections))
            ]
            keeper = self._keepers[0]
        self.keeper = keeper
        self.writer = EventWriter(self.names, pipeline, batch_size, store_message, self._text)

        self.pending = 0
        self.transactions = 0
        self.inserted = 0
        self.duplicates = 0
        self.rejected = 0
        self._queue = collections.deque()
        self._ahead = collections.deque()  # admitted entries not rendered yet, in order
        self._renderedRows = 0  # rows rendered and queued (not in a flush)
        self._parked = collections.deque()
        self._flushes = []  # in flight, oldest first (at most one per writer connection)
        self._returned = []  # flushes that failed while an earlier one was still in flight
        self._pipelineCall = None
        self._flushCount = 0
        self.pipelined = 0  # flushes written while the one before was in flight
        self.rolledBack = 0  # ... and rolled back because that one failed
        self._flushTimer = None
        self._flushWaiters = []
        self._written = collections.OrderedDict()
        self._stopping = False
        self._parkedWarned = False
        self._history = None
        keeper.addListener(self)
        for other in self._keepers[1:]:
            other.addListener(_SecondWriter(self))

    def __repr__(self):
        return "<SaveToPostgreSQL {} table {}>".format(self.where, self.names.events)

    def eventHistory(self):
        """
        This pipeline's events read back in id order (an L{IEventHistory}), for replaying to
        WebSocket clients that resume; one instance, closed when the consumer stops.
        """
        if self._history is None:
            self._history = PostgresHistory(
                self.reactor,
                self.dsn,
                self.names,
                self.pipeline,
                connectTimeout=self.connectTimeout,
                queryTimeout=self.queryTimeout,
                secrets=self._historySecrets,
            )
        return self._history

    def eventQuery(self):
        """
        The store read with WebSocket filters and ranges (an L{IEventQuery}) for ``GET /events``,
        on a connection of its own; C{None} with C{history_endpoint: off}.
        """
        if self.historyEndpoint == "off":
            return None
        if self._query is None:
            self._query = EventQuery(
                self.reactor,
                self.dsn,
                self.names,
                self.pipeline,
                statementTimeout=self.historyStatementTimeout,
                maxLimit=self.historyMaxLimit,
                connectTimeout=self.connectTimeout,
                secrets=self._historySecrets,
                producedTypes=self.producedTypes,
            )
        return self._query

    @property
    def ready(self):
        """Whether a connection is open and the schema is up to date."""
        return self.keeper.ready

    @property
    def backoff(self):
        """The L{Backoff} between connection attempts."""
        return self.keeper.backoff

    @property
    def connectFailures(self):
        """Connection attempts failed in a row (0 once connected)."""
        return self.keeper.failures

    @property
    def connectRetries(self):
        """Connection attempts failed in total."""
        return self.keeper.retries

    @property
    def parked(self):
        """How many batches wait for room under C{max_pending}."""
        return len(self._parked)

    def _text(self, error):
        """An error as one line of text for logs, with secrets removed."""
        return dsnlib.errorText(error, self._secrets)

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        """
        Begin connecting in the background; never fails for an unreachable database.
        """
        self.log.info(
            "PostgreSQL consumer for pipeline {pipeline} connecting to {where}, table {table}",
            pipeline=self.pipeline,
            where=self.where,
            table=self.names.events,
        )
        for keeper in self._keepers:
            keeper.start()
        return succeed(None)

    @inlineCallbacks
    def stop(self):
        """
        Write what was accepted while the database answers, then close.
        """
        self._stopping = True
        if self._flushTimer is not None and self._flushTimer.active():
            self._flushTimer.cancel()
        self._flushTimer = None
        if self._pipelineCall is not None and self._pipelineCall.active():
            self._pipelineCall.cancel()
        self._pipelineCall = None
        while True:
            self._admitParked(force=True)
            if not self._flushes and not self._returned and self.ready and self._queue:
                self._flush(self.keeper)
            if not self._flushes:
                break
            waiter = Deferred()
            self._flushWaiters.append(waiter)
            yield waiter
        if self.pending or self._parked:
            self.log.warn(
                "PostgreSQL consumer for pipeline {pipeline} stopping with {count} event(s) not "
                "written; they will be fetched again from the checkpoint",
                pipeline=self.pipeline,
                count=self.pending + sum(e.count for e in self._parked),
            )
        for keeper in self._keepers:
            yield keeper.stop()
        if self._history is not None:
            self._history.close()
        if self._query is not None:
            self._query.close()

    # -- IConnectionListener: the keeper's news, logged with what is held ----------

    def connectionReady(self, applied):
        if applied:
            self.log.info(
                "Applied schema migration(s) {versions} to {table}",
                versions=", ".join(str(v) for v in applied),
                table=self.names.events,
            )
        self.log.info(
            "Connected to PostgreSQL at {where}; {pending} event(s) waiting to be written",
            where=self.where,
            pending=self.pending,
        )
        self._schedule()

    def connectionFailed(self, error, delay):
        if self._stopping:
            return
        self.log.warn(
            "Cannot use PostgreSQL at {where}: {error}; retrying in {delay:.1f}s "
            "({pending} event(s) waiting, acknowledgements withheld)",
            where=self.where,
            error=error,
            delay=delay or 0,
            pending=self.pending,
        )

    def connectionLost(self, error, delay):
        if self._stopping:
            return
        self.log.warn(
            "Lost the PostgreSQL connection to {where}: {error}; reconnecting in {delay:.1f}s "
            "({pending} event(s) held)",
            where=self.where,
            error=error,
            delay=delay or 0,
            pending=self.pending,
        )

    # -- consuming -------------------------------------------------------------

    def consume(self, batch):
        if self._stopping:
            return fail(DatabaseUnavailable("the PostgreSQL consumer is stopping"))
        entry = _Entry(batch, self.reactor.seconds())
        if self._parked or (self.pending and self.pending + entry.count > self.maxPending):
            if not self._parkedWarned:
                self._parkedWarned = True
                self.log.warn(
                    "PostgreSQL consumer for pipeline {pipeline} holds {pending} event(s) "
                    "(max_pending {maximum}); withholding acknowledgements until they are written",
                    pipeline=self.pipeline,
                    pending=self.pending,
                    maximum=self.maxPending,
                )
            self._parked.append(entry)
        else:
            self._admit(entry)
        return entry.done

    def _admit(self, entry):
        entry.arrived = self.reactor.seconds()
        self._queue.append(entry)
        self._ahead.append(entry)
        self.pending += entry.count
        self._schedule()
        self._renderAhead()

    def _renderAhead(self):
        """
        Render queued batches, in order, until about two flushes' worth of rows are ready: the
        reactor thread does it while the database works on the flush in flight.
        """
        limit = 2 * self.batchSize
        while self._ahead and self._renderedRows < limit:
            entry = self._ahead.popleft()
            entry.rendered = self.writer.render(entry.batch.messages)
            self._renderedRows += entry.count

    def _admitParked(self, force=False):
        while self._parked and (force or not self.pending or self.pending + self._parked[0].count <= self.maxPending):
            self._admit(self._parked.popleft())
        if not self._parked:
            self._parkedWarned = False

    def _schedule(self, writerFreed=False):
        """
        Start a flush if one is due, or arm the timer for when it will be.

        @param writerFreed: a flush just ended.  What queued meanwhile is written at once,
            however little (group commit): it waited for the writer already, and waiting for
            C{flush_interval} too would leave the database idle while the pipeline, whose
            acknowledgements wait on this flush, cannot send more.  C{batch_size} and
            C{flush_interval} gather rows only while the writer is idle.
        """
        if not self.ready or not self._queue or self._returned:
            return
        if self._flushes:
            if len(self._flushes) < len(self._keepers) and self._pipelineCall is None:
                # After this reactor turn: the batches arriving in it go into the same flush.
                self._pipelineCall = self.reactor.callLater(0, self._pipeline)
            return
        waited = self.reactor.seconds() - self._queue[0].arrived
        queued = sum(e.count for e in self._queue)
        if writerFreed or queued >= self.batchSize or waited >= self.flushInterval or self._stopping:
            self._flush(self.keeper)
        elif self._flushTimer is None or not self._flushTimer.active():
            self._flushTimer = self.reactor.callLater(self.flushInterval - waited, self._flushTimerFired)

    def _flushTimerFired(self):
        self._flushTimer = None
        self._schedule()

    def _pipeline(self):
        """
        A flush is being written and another writer connection is free: write what queued
        meanwhile on it now.  It commits only after the flush before it did (it waits for it
        before its checkpoint, L{Predecessor}), so the database never holds a flush, or a
        checkpoint, past one that is not there; if the one before fails it rolls back too.
        Rows sharing an id with the flush in flight wait for it instead (each transaction
        would wait for the other's row).
        """
        self._pipelineCall = None
        if not self.ready or not self._queue or self._returned or len(self._flushes) != 1:
            return
        current = self._flushes[0]
        free = [k for k in self._keepers if k is not current.keeper and k.ready]
        if not free or self._sharesIds(current):
            return
        self.pipelined += 1
        self._flush(free[0], after=current.outcome)

    def _sharesIds(self, flush):
        """
        Whether the rows the next flush would take share an id with C{flush}'s.
        """
        if flush.ids is None:
            flush.ids = {_idOf(m) for e in flush.entries for m in e.batch.messages or ()}
        ids, rows = flush.ids, 0
        for entry in self._queue:
            for m in entry.batch.messages or ():
                if _idOf(m) in ids:
                    return True
            rows += entry.count
            if rows >= self.batchSize:
                break
        return False

    def _flush(self, keeper, after=None):
        if self._flushTimer is not None and self._flushTimer.active():
            self._flushTimer.cancel()
        self._flushTimer = None
        entries = []
        rows = 0
        while self._queue and (not entries or rows < self.batchSize):
            entry = self._queue.popleft()
            entries.append(entry)
            rows += entry.count
            if entry.rendered is None:
                if self._ahead and self._ahead[0] is entry:
                    self._ahead.popleft()
                entry.rendered = self.writer.render(entry.batch.messages)
            else:
                self._renderedRows -= entry.count
        self._flushCount += 1
        flush = _Flush(entries, keeper, self._flushCount, after)
        self._flushes.append(flush)
        d = self._write(flush)
        d.addCallbacks(self._flushed, self._flushFailed, callbackArgs=(flush,), errbackArgs=(flush,))
        self._renderAhead()

    @inlineCallbacks
    def _write(self, flush):
        keeper, entries, after = flush.keeper, flush.entries, flush.after
        try:
            written = yield keeper.run(self._transaction, entries, False, after)
        except ROW_ERRORS as e:
            self.log.info(
                "PostgreSQL refused a batch of {count} event(s) ({error}); isolating the bad rows",
                count=sum(entry.count for entry in entries),
                error=self._text(e),
            )
            written = yield keeper.run(self._transaction, entries, True, after)
        return written

    def _transaction(self, cursor, entries, careful, after=None):
        """
        The flush transaction (in the writer's thread): the writer writes the rendered
        C{entries}, with the newest cursor of C{entries} as the checkpoint, after the flush
        before it committed (C{after}, when that one was still being written).
        """
        position = None
        for entry in entries:
            if entry.batch.cursor is not None:
                position = entry.batch.cursor
        return self.writer.write(
            cursor, [entry.rendered for entry in entries], position, careful, after, self.queryTimeout
        )

    def _flushed(self, written, flush):
        flush.outcome.settle(True)  # the flush after it may commit now
        self._flushes.remove(flush)
        entries = flush.entries
        inserted, rejects = written.inserted, written.rejects
        count = sum(e.count for e in entries)
        self.pending -= count
        self.transactions += 1
        self.inserted += inserted
        self.rejected += len(rejects)
        self.duplicates += count - inserted - len(rejects)
        for message, error in rejects:
            self.log.warn(
                "PostgreSQL refused event {id}: {error}; stored in {table}",
                id=rowlib.escaped(message.get("id") if isinstance(message, dict) else None),
                error=error,
                table=self.names.rejected,
            )
        for entry in entries:
            entry.rendered = None
            if entry.batch.cursor is not None:
                self._remember(entry.batch.cursor)
        self._requeueReturned()
        self._admitParked()
        for entry in entries:
            entry.done.callback(None)
        self._flushEnded()

    def _flushFailed(self, failure, flush):
        """
        Put a failed flush's entries back at the head of the queue, in order: when a flush
        after it is still in flight (it will roll back), once that one ended too.
        """
        flush.outcome.settle(False)
        self._flushes.remove(flush)
        self._returned.append(flush)
        self._requeueReturned()
        if failure.check(PredecessorFailed):
            self.rolledBack += 1
        else:
            # A connection problem already cost the connection (the keeper rebuilds it); anything
            # else costs it too, so that a persistent failure is retried with backoff, not in a loop.
            flush.keeper.reconnect(failure)
        self._flushEnded()

    def _requeueReturned(self):
        """
        Once no flush is in flight, the failed ones' entries go back to the head of the
        queue in the order they were taken.
        """
        if self._flushes or not self._returned:
            return
        returned, self._returned = self._returned, []
        for flush in sorted(returned, key=lambda f: f.sequence, reverse=True):
            self._queue.extendleft(reversed(flush.entries))
            self._renderedRows += sum(e.count for e in flush.entries)

    def _flushEnded(self):
        waiters, self._flushWaiters = self._flushWaiters, []
        for waiter in waiters:
            waiter.callback(None)
        if not self._stopping:
            self._schedule(writerFreed=True)

    def _remember(self, cursor):
        self._written[cursor] = True
        self._written.move_to_end(cursor)
        while len(self._written) > _REMEMBERED_CURSORS:
            self._written.popitem(last=False)

    # -- statistics and checkpoints ----------------------------------------------

    def stats(self):
        """
        Counters for /metrics (names as in docs/operations.md).
        """
        return {
            "batches_total": self.transactions,
            "inserted_total": self.inserted,
            "duplicates_total": self.duplicates,
            "rejected_total": self.rejected,
            "connect_retries_total": self.connectRetries,
            "pending_events": self.pending + sum(e.count for e in self._parked),
            "connected": self.ready,
        }

    @inlineCallbacks
    def load(self, pipeline):
        """
        The cursor stored for C{pipeline}, or C{None}; waits (retrying with backoff) while the
        database is unreachable: the consumer rejoins the pipeline's live flow from there once
        it answers (it is a durable consumer).  Once the consumer stops it never fires.
        """
        warned = False
        self.keeper.start()
        while True:
            if self._stopping:
                yield Deferred()  # never fires
            try:
                yield self.keeper.whenReady(failAfterFailures=1)
            except DatabaseUnavailable:
                if not warned and not self._stopping:
                    warned = True
                    self.log.warn(
                        "PostgreSQL at {where} holds the position of pipeline {pipeline}'s events; "
                        "they are stored from there once the database answers (the live stream "
                        "does not wait)",
                        pipeline=pipeline,
                        where=self.where,
                    )
                continue
            try:
                position = yield self.keeper.run(self.writer.loadCheckpoint, pipeline)
            except Exception as e:
                self.log.warn(
                    "Could not read the checkpoint of pipeline {pipeline}: {error}; retrying",
                    pipeline=pipeline,
                    error=self._text(e),
                )
                continue
            if warned:
                self.log.info("PostgreSQL answered; pipeline {pipeline}'s events are stored from its position", pipeline=pipeline)
            return position

    def save(self, pipeline, checkpoint):
        """
        Record C{checkpoint}'s cursor; a no-op when it was written together with its events.
        Fails at once (the pipeline logs it) when the database is unreachable: the cursor is
        also written by the next flush.
        """
        cursor = Checkpoint.of(checkpoint).cursor
        if pipeline == self.pipeline and cursor in self._written:
            return succeed(None)
        return self.keeper.run(self.writer.saveCheckpoint, pipeline, cursor)

