"""
The items of a ledger source's batches: one L{LedgerItem} per ledger (or data-lake object), its
place in the chain and its bytes, still encoded.

The sources read each ledger's header facts (L{stellarflow.ledgers.header}) to check the
chain; the bytes travel to a worker process untouched (a getLedgers ``metadataXdr`` as its
base64 text, a data-lake object as its zstd bytes).
"""

import attr


@attr.s(slots=True, eq=False, repr=False)
class LedgerItem:
    """
    One ledger of a batch.

    @ivar sequence: the ledger sequence (the first one of a data-lake object of several).
    @ivar last: the last ledger sequence it holds (C{sequence} but for multi-ledger objects).
    @ivar hash: the ledger's hash, lowercase hex (of C{last}), or C{None} when not known before
        decoding.
    @ivar previousHash: the hash of the ledger before C{sequence}, or C{None}.
    @ivar protocol: the header's protocol version, or C{None}.
    @ivar closeTime: unix seconds, or C{None}.
    @ivar format: how C{payload} is encoded: ``base64``, ``xdr`` or ``zstd`` (see
        L{stellarflow.ledgers.worker}).
    @ivar payload: the ledger's bytes; the processor drops them once they are decoded.
    """

    sequence = attr.ib()
    hash = attr.ib()
    previousHash = attr.ib()
    format = attr.ib()
    payload = attr.ib()
    protocol = attr.ib(default=None)
    closeTime = attr.ib(default=None)
    last = attr.ib(default=None)

    def __attrs_post_init__(self):
        if self.last is None:
            self.last = self.sequence

    def __repr__(self):
        return "<LedgerItem {}{} {}>".format(
            self.sequence, "" if self.last == self.sequence else "-{}".format(self.last), (self.hash or "?")[:8])
