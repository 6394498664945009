"""
Ledger entry changes left undecoded until read: the worker's shortcut through stellar-sdk.

A decoded ledger is mostly C{LedgerEntryChanges}, the state every transaction and operation
left (accounts, trust lines, offers...): ~80% of stellar-sdk's decode time for a pubnet ledger.
Extraction (L{stellarflow.meta}) reads them only for the operations that traded (the maker
offer's state before, for its price).  L{install} makes C{xdr.LedgerEntryChanges.unpack} skip
over the bytes of changes it can measure (every classic entry type and TTLs) and return a
L{LazyChanges} holding them, decoded by stellar-sdk itself on first access of
C{ledger_entry_changes}; changes with Soroban contract data, contract code or config settings
are decoded at once as before.  It packs back to the same bytes.

This module is the only place that replaces a stellar-sdk method; C{tests/test_ledgers_lazy}
checks every recorded ledger decodes to the same messages and re-encodes to the same bytes with
and without it, and fails if an upgrade changes what it relies on.
"""

import struct

from stellar_sdk import xdr
from xdrlib3 import Unpacker

_U32 = struct.Struct(">I").unpack_from
_original = xdr.LedgerEntryChanges.unpack.__func__
_MAX = 1 << 32


class Unmeasured(Exception):
    """
    The changes hold an entry this module does not skip over (decode them the usual way).
    """


def _opaque(buf, at, limit):
    size = _U32(buf, at)[0]
    if size > limit:
        raise Unmeasured()
    return at + 4 + ((size + 3) & ~3)


def _asset(buf, at, pool=False):
    kind = _U32(buf, at)[0]
    if kind == 0:
        return at + 4
    if kind == 1:
        return at + 4 + 4 + 36
    if kind == 2:
        return at + 4 + 12 + 36
    if kind == 3 and pool:
        return at + 4 + 32
    raise Unmeasured()


def _optionalAccount(buf, at):
    return at + 4 + (36 if _U32(buf, at)[0] else 0)


def _ext0(buf, at):
    if _U32(buf, at)[0] != 0:
        raise Unmeasured()
    return at + 4


def _predicate(buf, at, depth=0):
    if depth > 8:
        raise Unmeasured()
    kind = _U32(buf, at)[0]
    at += 4
    if kind == 0:
        return at
    if kind in (1, 2):
        count = _U32(buf, at)[0]
        if count > 2:
            raise Unmeasured()
        at += 4
        for _ in range(count):
            at = _predicate(buf, at, depth + 1)
        return at
    if kind == 3:
        present = _U32(buf, at)[0]
        return _predicate(buf, at + 4, depth + 1) if present else at + 4
    if kind in (4, 5):
        return at + 8
    raise Unmeasured()


def _account(buf, at):
    at += 36 + 8 + 8 + 4
    at = _optionalAccount(buf, at)
    at += 4
    at = _opaque(buf, at, 32)
    at += 4
    signers = _U32(buf, at)[0]
    if signers > 20:
        raise Unmeasured()
    at += 4
    for _ in range(signers):
        kind = _U32(buf, at)[0]
        at += 4 + 32
        if kind == 3:
            at = _opaque(buf, at, 64)
        elif kind > 3:
            raise Unmeasured()
        at += 4
    ext = _U32(buf, at)[0]
    at += 4
    if ext == 0:
        return at
    if ext != 1:
        raise Unmeasured()
    at += 16
    ext = _U32(buf, at)[0]
    at += 4
    if ext == 0:
        return at
    if ext != 2:
        raise Unmeasured()
    at += 8
    sponsors = _U32(buf, at)[0]
    if sponsors > 20:
        raise Unmeasured()
    at += 4
    for _ in range(sponsors):
        at = _optionalAccount(buf, at)
    ext = _U32(buf, at)[0]
    at += 4
    if ext == 0:
        return at
    if ext != 3:
        raise Unmeasured()
    return _ext0(buf, at) + 4 + 8


def _trustline(buf, at):
    at = _asset(buf, at + 36, pool=True)
    at += 8 + 8 + 4
    ext = _U32(buf, at)[0]
    at += 4
    if ext == 0:
        return at
    if ext != 1:
        raise Unmeasured()
    at += 16
    ext = _U32(buf, at)[0]
    at += 4
    if ext == 0:
        return at
    if ext != 2:
        raise Unmeasured()
    return _ext0(buf, at + 4)


def _offer(buf, at):
    at = _asset(buf, at + 36 + 8)
    at = _asset(buf, at)
    return _ext0(buf, at + 8 + 8 + 4)


def _data(buf, at):
    at = _opaque(buf, at + 36, 64)
    at = _opaque(buf, at, 64)
    return _ext0(buf, at)


def _claimableBalance(buf, at):
    if _U32(buf, at)[0] != 0:
        raise Unmeasured()
    at += 4 + 32
    claimants = _U32(buf, at)[0]
    if claimants > 10:
        raise Unmeasured()
    at += 4
    for _ in range(claimants):
        if _U32(buf, at)[0] != 0:
            raise Unmeasured()
        at = _predicate(buf, at + 4 + 36)
    at = _asset(buf, at) + 8
    ext = _U32(buf, at)[0]
    at += 4
    if ext == 0:
        return at
    if ext != 1:
        raise Unmeasured()
    return _ext0(buf, at) + 4


def _pool(buf, at):
    at += 32
    if _U32(buf, at)[0] != 0:
        raise Unmeasured()
    at = _asset(buf, at + 4)
    at = _asset(buf, at)
    return at + 4 + 8 * 4


_ENTRIES = {0: _account, 1: _trustline, 2: _offer, 3: _data, 4: _claimableBalance, 5: _pool,
            9: lambda buf, at: at + 36}


def _entry(buf, at):
    kind = _U32(buf, at + 4)[0]
    skip = _ENTRIES.get(kind)
    if skip is None:
        raise Unmeasured()
    at = skip(buf, at + 8)
    ext = _U32(buf, at)[0]
    at += 4
    if ext == 0:
        return at
    if ext != 1:
        raise Unmeasured()
    return _ext0(buf, _optionalAccount(buf, at))


def _key(buf, at):
    kind = _U32(buf, at)[0]
    at += 4
    if kind == 0:
        return at + 36
    if kind == 1:
        return _asset(buf, at + 36, pool=True)
    if kind == 2:
        return at + 36 + 8
    if kind == 3:
        return _opaque(buf, at + 36, 64)
    if kind == 4:
        if _U32(buf, at)[0] != 0:
            raise Unmeasured()
        return at + 4 + 32
    if kind in (5, 7, 9):
        return at + 32
    if kind == 8:
        return at + 4
    raise Unmeasured()


def measure(buf, at):
    """
    The offset just after the C{LedgerEntryChanges} at C{at} of C{buf}.

    @raise Unmeasured: it holds an entry this module does not skip over.
    """
    count = _U32(buf, at)[0]
    at += 4
    for _ in range(count):
        kind = _U32(buf, at)[0]
        at += 4
        if kind == 2:
            at = _key(buf, at)
        elif kind in (0, 1, 3, 4):
            at = _entry(buf, at)
        else:
            raise Unmeasured()
    if at > len(buf):
        raise Unmeasured()
    return at


class LazyChanges:
    """
    An undecoded C{LedgerEntryChanges}: its XDR, decoded by stellar-sdk when
    C{ledger_entry_changes} is first read.
    """

    __slots__ = ("raw", "_changes")

    def __init__(self, raw):
        self.raw = raw
        self._changes = None

    @property
    def ledger_entry_changes(self):
        if self._changes is None:
            self._changes = _original(xdr.LedgerEntryChanges, Unpacker(self.raw)).ledger_entry_changes
        return self._changes

    def pack(self, packer):
        if self._changes is None:
            packer.pack_fstring(len(self.raw), self.raw)
        else:
            xdr.LedgerEntryChanges(self._changes).pack(packer)


def _unpack(cls, unpacker, *args, **kw):
    start = unpacker.get_position()
    buf = unpacker.get_buffer()
    try:
        end = measure(buf, start)
    except (Unmeasured, struct.error):
        return _original(cls, unpacker, *args, **kw)
    unpacker.set_position(end)
    return LazyChanges(buf[start:end])


def install():
    """
    From now on, in this process, C{xdr.LedgerEntryChanges} are decoded lazily.
    """
    xdr.LedgerEntryChanges.unpack = classmethod(_unpack)


def uninstall():
    """
    Decode C{xdr.LedgerEntryChanges} at once again.
    """
    xdr.LedgerEntryChanges.unpack = classmethod(_original)
