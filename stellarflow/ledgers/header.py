"""
The facts of a ledger header read straight from its XDR bytes: sequence, hash, previous hash,
protocol and close time.

The parent process checks every ledger's place in the chain before it is decoded, and decoding
a whole C{LedgerCloseMeta} with stellar-sdk costs tens of milliseconds; these few fields sit at
the start of the XDR (a C{LedgerHeaderHistoryEntry} is C{hash, LedgerHeader, ext}; a
C{LedgerCloseMeta} starts with one after its version and extension), so they are read with
C{struct} in microseconds.  The header hash is recomputed (C{sha256} of the C{LedgerHeader}
bytes) and must equal the entry's, so a truncated or altered header is not trusted.
"""

import hashlib
import struct

import attr

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class HeaderError(ValueError):
    """
    Bytes that are not a ledger header (or not one this reader knows).
    """


@attr.s(frozen=True, slots=True)
class HeaderFacts:
    """
    What the chain checks need of one ledger header.

    @ivar sequence: the ledger sequence.
    @ivar hash: the ledger hash, lowercase hex.
    @ivar previousHash: the previous ledger's hash, lowercase hex.
    @ivar protocol: the header's ledger (protocol) version.
    @ivar closeTime: unix seconds.
    @ivar end: the offset just after the C{LedgerHeaderHistoryEntry} in the bytes read.
    @ivar sequenceAt: the offset of the header's C{ledgerSeq} in the bytes read.
    """

    sequence = attr.ib()
    hash = attr.ib()
    previousHash = attr.ib()
    protocol = attr.ib()
    closeTime = attr.ib()
    end = attr.ib(default=None)
    sequenceAt = attr.ib(default=None)


def _u32(raw, at):
    if at + 4 > len(raw):
        raise HeaderError("truncated ledger header")
    return _U32.unpack_from(raw, at)[0]


def _opaque(raw, at, limit):
    size = _u32(raw, at)
    if size > limit:
        raise HeaderError("variable-length field of {} bytes (at most {})".format(size, limit))
    return at + 4 + ((size + 3) & ~3)


def entryFacts(raw, offset=0):
    """
    The L{HeaderFacts} of the C{LedgerHeaderHistoryEntry} at C{offset} of C{raw} (bytes).

    @raise HeaderError: the bytes are not one, or its hash is not the hash of its header.
    """
    start = offset + 32
    if start + 112 > len(raw):
        raise HeaderError("truncated ledger header")
    protocol = _u32(raw, start)
    previous = raw[start + 4 : start + 36]
    closeTime = _U64.unpack_from(raw, start + 68)[0]
    at = start + 76
    upgrades = _u32(raw, at)
    if upgrades > 6:
        raise HeaderError("{} upgrades (at most 6)".format(upgrades))
    at += 4
    for _ in range(upgrades):
        at = _opaque(raw, at, 128)
    kind = _u32(raw, at)  # StellarValue.ext: BASIC or SIGNED
    at += 4
    if kind == 1:
        at += 4 + 32  # nodeID: a PublicKey
        at = _opaque(raw, at, 64)
    elif kind != 0:
        raise HeaderError("unknown StellarValue type {}".format(kind))
    at += 32 + 32  # txSetResultHash, bucketListHash
    sequenceAt = at
    sequence = _u32(raw, at)
    at += 4 + 8 + 8 + 4 + 8 + 4 + 4 + 4 + 4 * 32  # ... skipList
    ext = _u32(raw, at)
    at += 4
    if ext == 1:
        at += 4 + 4  # LedgerHeaderExtensionV1: flags, ext v0
    elif ext != 0:
        raise HeaderError("unknown LedgerHeader extension {}".format(ext))
    if at + 4 > len(raw):
        raise HeaderError("truncated ledger header")
    declared = raw[offset:start]
    if hashlib.sha256(raw[start:at]).digest() != declared:
        raise HeaderError("the header of ledger {} does not hash to its entry's hash".format(sequence))
    if _u32(raw, at) != 0:
        raise HeaderError("unknown LedgerHeaderHistoryEntry extension")
    return HeaderFacts(sequence, bytes(declared).hex(), bytes(previous).hex(), protocol, closeTime, at + 4, sequenceAt)


def metaFacts(raw, offset=0):
    """
    The L{HeaderFacts} of the ledger a C{LedgerCloseMeta} (v0, v1 or v2, at C{offset} of the
    bytes C{raw}) closed.
    """
    version = _u32(raw, offset)
    at = offset + 4
    if version in (1, 2):
        ext = _u32(raw, at)
        at += 4
        if ext == 1:
            at += 4 + 8  # LedgerCloseMetaExtV1: ext v0, sorobanFeeWrite1KB
        elif ext != 0:
            raise HeaderError("unknown LedgerCloseMeta extension {}".format(ext))
    elif version != 0:
        raise HeaderError("unknown LedgerCloseMeta version {}".format(version))
    return entryFacts(raw, at)
