"""
The test server's chain of ledgers: for each sequence a C{LedgerCloseMeta} whose header hash,
previous-ledger hash, sequence and close time make one consistent chain, as stellar-core's do.

A ledger's body comes from a I{template}: synthetic classic traffic
(L{stellarflow.testing.ledgertraffic}), or recorded ledgers (the fixtures: a pubnet ledger of
370 KB for the benchmarks) reused in turn.  Its header is then rewritten in the XDR bytes
(L{stellarflow.ledgers.header} finds the fields): sequence, close time, previous hash, and the
header hash recomputed.  Headers are chained from the first ledger on, cheaply (byte patches
and one C{sha256} each); bodies are built when asked for and the newest kept.

Scripting: L{fork} (from a ledger on, the chain is another one: a provider that switched
history), L{omit} (ledgers left out of answers: a gap) and L{undecodable} (a ledger of a
newer protocol).
"""

import base64
import hashlib
import struct
from collections import OrderedDict

from stellarflow.ledgers.header import metaFacts
from stellarflow.testing import ledgerbuild
from stellarflow.testing.ledgertraffic import classicTransactions

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
ZERO = b"\x00" * 32


def resequence(raw, sequence, closeTime, previousHash, variant=0):
    """
    The bytes of the C{LedgerCloseMeta} C{raw} as ledger C{sequence} closed at C{closeTime} after
    a ledger with hash C{previousHash} (32 bytes), and its new hash.  C{variant} changes the
    header's transaction set hash (another history, same transactions).
    """
    facts = metaFacts(raw)
    out = bytearray(raw)
    entry = facts.end
    start = _entryStart(raw)
    header = start + 32
    out[header + 4 : header + 36] = previousHash
    out[header + 36 : header + 68] = hashlib.sha256(b"variant %d" % variant).digest() if variant else raw[
        header + 36 : header + 68]
    _U64.pack_into(out, header + 68, max(0, int(closeTime)))
    _U32.pack_into(out, facts.sequenceAt, sequence)
    digest = hashlib.sha256(bytes(out[header : entry - 4])).digest()
    out[start : start + 32] = digest
    return bytes(out), digest


def _entryStart(raw):
    version = _U32.unpack_from(raw, 0)[0]
    if version == 0:
        return 4
    return 8 if _U32.unpack_from(raw, 4)[0] == 0 else 20


class LedgerChain:
    """
    Ledgers C{first} onwards of one chain.

    @param closeTime: a callable giving a ledger's close time (the server's L{LedgerModel}).
    @param templates: C{LedgerCloseMeta} XDR bytes to reuse in turn, or C{None} for synthetic
        classic traffic of C{transactions} transactions per ledger, seeded with C{seed}.
    @param previousHash: the hash (32 bytes) of the ledger before C{first} (to continue a
        recorded chain, such as the data-lake fixtures).
    """

    def __init__(self, first, closeTime, passphrase, seed=0, templates=None, transactions=8, previousHash=ZERO,
                 keep=64):
        self.first = first
        self.closeTime = closeTime
        self.passphrase = passphrase
        self.seed = seed
        self.templates = list(templates) if templates else None
        self.transactions = transactions
        self.keep = keep
        self._hashes = [previousHash]  # _hashes[i]: the hash of ledger first - 1 + i
        self._forks = []
        self.omitted = set()
        self.future = set()
        self._records = OrderedDict()
        self._synthetic = OrderedDict()

    def fork(self, ledger):
        """
        From C{ledger} on, serve another history (other hashes).
        """
        self._forks.append(ledger)
        self._truncate(ledger)

    def undecodable(self, ledger):
        """
        Serve C{ledger}'s metadata as a C{LedgerCloseMeta} of a version no stellar-sdk knows
        (what a newer protocol brings); its header stays valid.
        """
        self.future.add(ledger)

    def omit(self, *ledgers):
        """
        Leave C{ledgers} out of getLedgers answers (a gap no real server makes).
        """
        self.omitted.update(ledgers)

    def _truncate(self, ledger):
        # Bodies do not change with the history (records are cached per history): only hashes.
        del self._hashes[max(1, ledger - self.first + 1):]

    def variant(self, ledger):
        return sum(1 for f in self._forks if f <= ledger)

    def template(self, ledger):
        """
        The body of C{ledger} before its header is set: XDR bytes.
        """
        if self.templates is not None:
            return self.templates[(ledger - self.first) % len(self.templates)]
        raw = self._synthetic.get(ledger)
        if raw is None:
            header = ledgerbuild.ledgerHeader(ledger, max(0, int(self.closeTime(ledger))))
            transactions = classicTransactions(self.seed, ledger, self.passphrase, self.transactions)
            raw = ledgerbuild.ledgerCloseMeta(header, transactions, self.passphrase).to_xdr_bytes()
            self._synthetic[ledger] = raw
            while len(self._synthetic) > self.keep:
                self._synthetic.popitem(last=False)
        return raw

    def hash(self, ledger):
        """
        The hash (32 bytes) of C{ledger} on the current history.
        """
        while len(self._hashes) <= ledger - self.first + 1:
            sequence = self.first + len(self._hashes) - 1
            self._hashes.append(self._header(sequence)[1])
        return self._hashes[ledger - self.first + 1]

    def _header(self, ledger):
        return resequence(self.template(ledger) if self.templates is not None else self._headerTemplate(ledger),
                          ledger, self.closeTime(ledger), self._hashes[ledger - self.first], self.variant(ledger))

    def _headerTemplate(self, ledger):
        # Synthetic headers do not depend on the body: chain them without building bodies.
        return _EMPTY_META

    def meta(self, ledger):
        """
        The XDR bytes of C{ledger}'s C{LedgerCloseMeta}.
        """
        previous = self.hash(ledger - 1) if ledger > self.first else self._hashes[0]
        raw, digest = resequence(self.template(ledger), ledger, self.closeTime(ledger), previous,
                                 self.variant(ledger))
        if ledger in self.future:
            raw = struct.pack(">I", 9) + raw[4:]
        return raw

    def record(self, ledger):
        """
        The getLedgers ``ledgers[]`` item of C{ledger} (base64), cached for the newest ledgers.
        """
        key = (ledger, self.variant(ledger), ledger in self.future)
        record = self._records.get(key)
        if record is None:
            raw = self.meta(ledger)
            valid = raw if ledger not in self.future else self.template(ledger)[:4] + raw[4:]
            facts = metaFacts(valid)
            start = _entryStart(valid)
            record = {
                "hash": facts.hash,
                "sequence": ledger,
                "ledgerCloseTime": str(facts.closeTime),
                "headerXdr": base64.b64encode(valid[start : facts.end]).decode("ascii"),
                "metadataXdr": base64.b64encode(raw).decode("ascii"),
            }
            self._records[key] = record
            while len(self._records) > self.keep:
                self._records.popitem(last=False)
        return record


_EMPTY_META = ledgerbuild.ledgerCloseMeta(ledgerbuild.ledgerHeader(1, 0), [], "stellarflow test").to_xdr_bytes()
