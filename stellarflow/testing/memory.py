"""
In-memory source and consumer: for tests of the pipeline contract and for trying a config
without any network.
"""

import json

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer, provider

from stellarflow.batch import Batch
from stellarflow.checkpoint import Checkpoint
from stellarflow.interfaces import ICheckpointStore, IComponentFactory, IConsumer, ISource, IStatsProvider
from stellarflow.schema import Boolean, Field, Integer, Number, Schema, String


@provider(IComponentFactory)
@implementer(ISource, IStatsProvider)
class MemorySource:
    """
    Emits batches handed to L{emit}, or, when configured with C{count}, generates C{count}
    numbered items in batches of C{batch_size} every C{interval} seconds.

    Items are C{{"id": "%019d-%010d", "n": n}} so they sort like RPC event ids; the cursor of a
    batch is its last id, and a restart from a checkpoint continues after it.
    """

    log = Logger()

    configSchema = Schema(
        {
            "count": Field(Integer(0), 0, "how many items to generate (0: only what tests emit)"),
            "batch_size": Field(Integer(1), 10, "items per batch"),
            "interval": Field(Number(0), 0.1, "seconds between batches"),
            "stop_when_done": Field(Boolean(), False, "finish once count items were delivered (like a backfill)"),
        }
    )

    @classmethod
    def fromConfig(cls, config, context):
        return cls(context.reactor, **config)

    def __init__(self, clock, count=0, batch_size=10, interval=0.1, stop_when_done=False, network=None):
        self.stop_when_done = stop_when_done
        self.network = network
        self.clock = clock
        self.count = count
        self.batch_size = batch_size
        self.interval = interval
        self.deliver = None
        self.checkpoint = None
        self.started = False
        self.stopped = False
        self.waiting = None
        self._call = None
        self._next = 1
        self._ended = None

    def start(self, deliver, checkpoint):
        self.deliver = deliver
        self.checkpoint = checkpoint
        self.started = True
        self._ended = Deferred()
        if checkpoint is not None:
            self._next = int(Checkpoint.of(checkpoint).cursor.split("-")[0]) + 1
        if self.count:
            self._schedule(0)
        return self._ended

    def stop(self):
        self.stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self.finish()
        return succeed(None)

    def finish(self, failure=None):
        """
        End the source: it delivered everything (C{failure} C{None}) or cannot go on.
        """
        ended, self._ended = self._ended, None
        if ended is not None:
            ended.callback(None) if failure is None else ended.errback(failure)

    def stats(self):
        return {"items_total": self._next - 1, "polling": self.started and not self.stopped}

    def emit(self, items, cursor=None, previous=None):
        """
        Deliver one batch now; returns the pipeline's readiness Deferred.
        """
        self.waiting = self.deliver(Batch(items=list(items), cursor=cursor, previous=previous))
        return self.waiting

    def _schedule(self, delay):
        self._call = self.clock.callLater(delay, self._produce)

    def _produce(self):
        if self.stopped or self._next > self.count:
            return
        last = min(self.count, self._next + self.batch_size - 1)
        items = [{"id": itemId(n), "n": n} for n in range(self._next, last + 1)]
        self._next = last + 1
        d = self.emit(items, cursor=items[-1]["id"], previous=itemId(items[0]["n"] - 1))

        def again(_):
            if not self.stopped and self._next <= self.count:
                self._schedule(self.interval)
            elif self.stop_when_done:
                self.finish()

        def failed(f):
            self.log.failure("Delivery failed; retrying the batch", f)
            self._next = items[0]["n"]
            self._schedule(max(self.interval, 1.0))

        d.addCallbacks(again, failed)


def itemId(n):
    """
    An RPC-style id for item C{n}.
    """
    return "%019d-%010d" % (n, 0)


@provider(IComponentFactory)
@implementer(IConsumer, IStatsProvider)
class MemoryConsumer:
    """
    Keeps every batch it receives; optionally appends each message as a JSON line to C{path}.

    Set C{hold = True} to keep acknowledgements back until L{release} (tests of backpressure),
    or C{failures = n} to fail the next n batches.
    """

    configSchema = Schema({"path": Field(String(), "", "append messages to this file as JSON lines")})

    @classmethod
    def fromConfig(cls, config, context):
        return cls(path=config["path"] or None)

    def __init__(self, path=None):
        self.path = path
        self.batches = []
        self.held = []
        self.hold = False
        self.failures = 0
        self.started = False
        self.stopped = False

    @property
    def messages(self):
        return [m for b in self.batches for m in b.messages]

    def start(self):
        self.started = True
        return succeed(None)

    def consume(self, batch):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("injected consumer failure")
        self.batches.append(batch)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                for m in batch.messages:
                    f.write(json.dumps(m) + "\n")
        if self.hold:
            d = Deferred()
            self.held.append(d)
            return d
        return succeed(None)

    def stats(self):
        return {"messages_total": len(self.messages), "held_batches": len(self.held)}

    def release(self, count=None):
        """
        Acknowledge held batches, oldest first.
        """
        count = len(self.held) if count is None else count
        for _ in range(count):
            self.held.pop(0).callback(None)

    def stop(self):
        self.stopped = True
        return succeed(None)


@provider(IComponentFactory)
@implementer(IConsumer, ICheckpointStore)
class DurableMemoryConsumer:
    """
    A stand-in for a database: it stores each message once by id and commits the batch's
    cursor with it, so it is a durable consumer with a position of its own.

    While L{down} (see L{fail} and L{recover}) it accepts batches but acknowledges none, and
    C{load} waits, as C{SaveToPostgreSQL} does during an outage.
    """

    configSchema = Schema({})

    @classmethod
    def fromConfig(cls, config, context):
        return cls()

    def __init__(self, position=None):
        self.stored = {}
        self.order = []
        self.position = position
        self.down = False
        self.duplicates = 0
        self.batches = 0
        self._held = []
        self._loads = []

    def start(self):
        return succeed(None)

    def consume(self, batch):
        d = Deferred()
        self._held.append((batch, d))
        if not self.down:
            self._commit()
        return d

    def _commit(self):
        held, self._held = self._held, []
        for batch, d in held:
            for m in batch.messages:
                if m["id"] in self.stored:
                    self.duplicates += 1
                else:
                    self.stored[m["id"]] = m
                    self.order.append(m["id"])
            if batch.cursor is not None:
                self.position = batch.cursor
            self.batches += 1
            d.callback(None)

    def fail(self):
        """The database goes away: acknowledgements and loads wait."""
        self.down = True

    def recover(self):
        """The database is back: commit what was held, answer waiting loads."""
        self.down = False
        self._commit()
        loads, self._loads = self._loads, []
        for d in loads:
            d.callback(self.position)

    def load(self, pipeline):
        if self.down:
            d = Deferred()
            self._loads.append(d)
            return d
        return succeed(self.position)

    def save(self, pipeline, checkpoint):
        return succeed(None)  # the position is written with the data

    def stop(self):
        return succeed(None)
