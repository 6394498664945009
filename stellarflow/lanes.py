"""
A lane: the batches on their way to one consumer, kept in order, retried after a failure.
"""

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger

from stellarflow.backoff import Backoff


class ConsumerLane:
    """
    Delivers batches to one consumer, in the order submitted, retrying a failed one with
    backoff (consumers are idempotent per message id, so a retry is a redelivery).

    @param onAck: called with C{(lane, batch)} once the consumer acknowledged C{batch}.
    @ivar outstanding: batches submitted and not acknowledged yet, in submission order.
    """

    log = Logger()

    def __init__(self, consumer, name, clock, onAck, backoff=None):
        self.consumer = consumer
        self.name = name
        self.clock = clock
        self.onAck = onAck
        self.backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self.outstanding = {}
        self.stopping = False
        self._key = 0
        self._generation = 0
        self._retries = {}
        self._drainWaiters = []

    def __len__(self):
        return len(self.outstanding)

    def submit(self, batch):
        """
        Hand C{batch} to the consumer now (C{consume} is called before this returns).
        """
        self._key += 1
        self.outstanding[self._key] = batch
        self._attempt(self._key, batch, self._generation)

    def _attempt(self, key, batch, generation):
        self._retries.pop(key, None)
        d = maybeDeferred(self.consumer.consume, batch)
        d.addCallbacks(
            self._succeeded, self._failed, callbackArgs=(key, batch, generation), errbackArgs=(key, batch, generation)
        )

    def _succeeded(self, _, key, batch, generation):
        if generation != self._generation:
            return  # the lane was reset: this batch no longer counts
        self.backoff.reset()
        self.outstanding.pop(key, None)
        self.onAck(self, batch)
        if not self.outstanding:
            self._fireDrained()

    def _failed(self, failure, key, batch, generation):
        if generation != self._generation:
            return
        delay = self.backoff.next()
        self.log.failure(
            "Consumer {consumer} failed on a batch ({cursor}); retrying in {delay:.1f}s",
            failure,
            consumer=self.name,
            cursor=batch.cursor,
            delay=delay,
        )
        if self.stopping:
            return
        self._retries[key] = self.clock.callLater(delay, self._attempt, key, batch, generation)

    def drained(self):
        """
        A Deferred firing once no batch is outstanding.
        """
        if not self.outstanding:
            return succeed(None)
        d = Deferred()
        self._drainWaiters.append(d)
        return d

    def _fireDrained(self):
        waiters, self._drainWaiters = self._drainWaiters, []
        for d in waiters:
            d.callback(None)

    def _cancelRetries(self):
        for call in self._retries.values():
            if call.active():
                call.cancel()
        self._retries.clear()

    def reset(self):
        """
        Forget every outstanding batch: acknowledgements of batches already handed over are
        ignored from now on and nothing is retried (the consumer will be fed again from its
        own position).
        """
        self._generation += 1
        self._cancelRetries()
        self.outstanding.clear()
        self._fireDrained()

    def stop(self):
        """
        Stop retrying: what is still outstanding will be redelivered on the next start.
        """
        self.stopping = True
        self._cancelRetries()
