"""
The unit that flows through a pipeline.
"""

import attr


@attr.s(slots=True, eq=False, repr=False)
class Batch:
    """
    One page of source items and, once processed, their messages.

    @ivar items: raw items from the source (for the RPC source: getEvents event objects).
    @ivar cursor: the source position after this batch, checkpointed once every consumer
        acknowledged it; C{None} when the batch carries no new position.
    @ivar previous: the source position just before this batch (the cursor it continues
        from), or C{None} when the source does not know it.
    @ivar messages: what the processors produced from C{items} (set by the pipeline).
    @ivar latestLedger: the newest ledger the source knows of when the batch was read.
    @ivar sequence: position of the batch in its pipeline run (set by the pipeline).
    @ivar hash: the hash of the last ledger the batch completes, for sources that follow the
        chain ledger by ledger (getLedgers, the data lake); checkpointed with C{cursor}.
    """

    items = attr.ib()
    cursor = attr.ib(default=None)
    previous = attr.ib(default=None)
    messages = attr.ib(default=None)
    latestLedger = attr.ib(default=None)
    sequence = attr.ib(default=None)
    hash = attr.ib(default=None)

    def __repr__(self):
        return "<Batch #{} items={} cursor={!r}>".format(self.sequence, len(self.items), self.cursor)
