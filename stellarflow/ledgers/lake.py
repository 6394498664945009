"""
The Stellar data lake (SEP-54, written by galexie): its layout, and reading its objects from a
local directory or a plain HTTP(S) object store.

A lake is a manifest, C{<root>/.config.json} (C{networkPassphrase}, C{version}, C{compression},
C{ledgersPerBatch}, C{batchesPerPartition}), and objects C{<root>/<partition>/<batch>.xdr.zst}
(older lakes: C{.xdr.zstd}), each a zstd-compressed C{LedgerCloseMetaBatch}.  Names count down
from C{0xFFFFFFFF} so that the newest list first: a partition is
C{%08X--%d-%d} of C{0xFFFFFFFF - start}, its first and last ledger; a batch C{%08X--%d} (one
ledger) or C{%08X--%d-%d}.  Public lakes are object stores read with plain GETs (no cloud SDK).

L{objectPaths} names the object holding a ledger; L{DirectoryLake} and L{HTTPLake} read the
manifest and objects (C{None} for an object that is not there yet) as Deferreds.
"""

import json
import os
import struct

import attr
import zstandard
from hyperlink import URL
from twisted.internet.defer import fail, maybeDeferred, succeed

from stellarflow.ledgers.header import metaFacts
from stellarflow.ledgers.items import LedgerItem
from stellarflow.rpc.client import endpointOf, makeHTTPClient

EXTENSIONS = (".xdr.zst", ".xdr.zstd")
_U32 = struct.Struct(">I")
#: How much of an object is decompressed to read its first ledger's header (a header with
#: every upgrade and a signature is under 1 KiB).
_PREFIX = 4096


class LakeError(Exception):
    """
    The lake cannot be read as a SEP-54 lake (no manifest, a bad object), or a read failed.
    """


class ObjectError(LakeError):
    """
    An object is not a zstd C{LedgerCloseMetaBatch} of the ledgers its name says.
    """


@attr.s(frozen=True)
class Manifest:
    """
    A lake's C{.config.json}.
    """

    networkPassphrase = attr.ib()
    ledgersPerBatch = attr.ib()
    batchesPerPartition = attr.ib()
    compression = attr.ib(default="zstd")
    version = attr.ib(default=None)

    @classmethod
    def fromJSON(cls, data):
        try:
            document = json.loads(data)
            manifest = cls(document["networkPassphrase"], int(document["ledgersPerBatch"]),
                           int(document["batchesPerPartition"]), document.get("compression", "zstd"),
                           document.get("version"))
        except (ValueError, KeyError, TypeError) as e:
            raise LakeError("the lake's .config.json is not a SEP-54 manifest: {}".format(e)) from None
        if manifest.ledgersPerBatch < 1 or manifest.batchesPerPartition < 1:
            raise LakeError("the lake's .config.json has ledgersPerBatch {} and batchesPerPartition {}".format(
                manifest.ledgersPerBatch, manifest.batchesPerPartition))
        if manifest.compression != "zstd":
            raise LakeError("the lake is compressed with {!r}; only zstd is read".format(manifest.compression))
        return manifest

    def batchOf(self, ledger):
        """
        C{(first, last)} ledgers of the object holding C{ledger}.
        """
        first = ledger // self.ledgersPerBatch * self.ledgersPerBatch
        return first, first + self.ledgersPerBatch - 1


def objectPaths(manifest, ledger):
    """
    The paths (relative to the lake's root, one per extension, the current one first) of the
    object holding C{ledger}.
    """
    perPartition = manifest.ledgersPerBatch * manifest.batchesPerPartition
    partition = ledger // perPartition * perPartition
    folder = "%08X--%d-%d" % (0xFFFFFFFF - partition, partition, partition + perPartition - 1)
    first, last = manifest.batchOf(ledger)
    name = "%08X--%d" % (0xFFFFFFFF - first, first) if first == last else "%08X--%d-%d" % (0xFFFFFFFF - first,
                                                                                          first, last)
    if manifest.batchesPerPartition == 1:  # galexie writes partition folders only for more
        return ["{}{}".format(name, ext) for ext in EXTENSIONS]
    return ["{}/{}{}".format(folder, name, ext) for ext in EXTENSIONS]


def objectItem(data, manifest, ledger):
    """
    The L{LedgerItem} of an object's bytes (compressed), its header facts read from a
    decompressed prefix: the first ledger's previous hash, and the hash when it holds one ledger.

    @raise ObjectError: it is not the object of C{ledger}.
    """
    first, last = manifest.batchOf(ledger)
    try:
        with zstandard.ZstdDecompressor().stream_reader(data) as reader:
            prefix = reader.read(_PREFIX)
        start, end, count = _U32.unpack_from(prefix, 0)[0], _U32.unpack_from(prefix, 4)[0], _U32.unpack_from(
            prefix, 8)[0]
        facts = metaFacts(prefix, 12)
    except Exception as e:
        raise ObjectError("the lake object of ledgers {}-{} is not a zstd LedgerCloseMetaBatch: {}".format(
            first, last, e)) from None
    if (start, end) != (first, last) or count != last - first + 1 or facts.sequence != first:
        raise ObjectError("the lake object named for ledgers {}-{} holds ledgers {}-{} ({} ledgers, first {})".format(
            first, last, start, end, count, facts.sequence))
    return LedgerItem(sequence=first, last=last, hash=facts.hash if first == last else None,
                      previousHash=facts.previousHash, format="zstd", payload=data, protocol=facts.protocol,
                      closeTime=facts.closeTime)


class DirectoryLake:
    """
    A lake in a local directory.  Objects are some tens of KB: read at once (no thread).
    """

    def __init__(self, root):
        self.root = root
        self.endpoint = root

    def _read(self, path):
        try:
            with open(os.path.join(self.root, *path.split("/")), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise LakeError("cannot read {}: {}".format(path, e)) from None

    def read(self, path):
        """
        A Deferred of the bytes at C{path}, or C{None} when there is no such object.
        """
        return maybeDeferred(self._read, path)

    def close(self):
        return succeed(None)


class HTTPLake:
    """
    A lake behind a base URL (an object store's public endpoint), read with GETs over treq.

    @param http: a treq C{HTTPClient} (or C{StubTreq}).
    @param clock: for each read's deadline (headers and body).
    """

    def __init__(self, http, base, clock, timeout=30.0, pool=None):
        self.http = http
        self.base = base.rstrip("/") + "/"
        self.clock = clock
        self.timeout = timeout
        self.pool = pool
        self.endpoint = endpointOf(base)

    @classmethod
    def fromReactor(cls, reactor, base, timeout=30.0):
        http, pool = makeHTTPClient(reactor, maxPersistentPerHost=4, connectTimeout=timeout)
        return cls(http, base, reactor, timeout, pool)

    def read(self, path):
        url = self.base + path
        try:
            d = self.http.get(url)
        except Exception as e:
            return fail(LakeError("GET {}: {}".format(path, e)))

        def gotResponse(response):
            if response.code == 404:
                return response.content().addCallback(lambda _: None)
            if response.code != 200:
                return response.content().addCallback(
                    lambda _: _raise(LakeError("GET {} answered HTTP {}".format(path, response.code))))
            return response.content()

        def failed(failure):
            if failure.check(LakeError):
                return failure
            raise LakeError("GET {} of {} failed: {}".format(path, self.endpoint, failure.getErrorMessage()
                                                             or failure.type.__name__))

        d.addCallback(gotResponse)
        d.addTimeout(self.timeout, self.clock)
        return d.addErrback(failed)

    def close(self):
        return self.pool.closeCachedConnections() if self.pool is not None else succeed(None)


def _raise(error):
    raise error


def openLake(location, reactor, timeout=30.0):
    """
    A L{DirectoryLake} or L{HTTPLake} for C{location}: an ``http(s)://`` base URL, a
    ``file://`` URL or a directory path.
    """
    if location.startswith(("http://", "https://")):
        return HTTPLake.fromReactor(reactor, location, timeout)
    if location.startswith("file://"):
        location = "/" + "/".join(URL.from_text(location).path)
    return DirectoryLake(location)
