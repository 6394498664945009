"""
Data lakes for tests: a SEP-54 directory laid out from recorded objects (the galexie fixtures)
or written from a L{stellarflow.testing.ledgerchain.LedgerChain}, and served over HTTP on
127.0.0.1 as a plain object store would (C{twisted.web.static.File}: GET, 404 for an object
not written).

    python -m stellarflow.testing.lakeserver DIRECTORY [--port 8001]
"""

import json
import os
import shutil
import struct
import sys

import zstandard
from twisted.web.static import File

from stellarflow.ledgers.lake import Manifest, objectPaths
from stellarflow.testing.listening import Listeners, serve

_U32 = struct.Struct(">I")


def writeManifest(root, passphrase, ledgersPerBatch=1, batchesPerPartition=64000):
    """
    Write C{root/.config.json}; return its L{Manifest}.
    """
    os.makedirs(root, exist_ok=True)
    document = {"networkPassphrase": passphrase, "version": "1.0", "compression": "zstd",
                "ledgersPerBatch": ledgersPerBatch, "batchesPerPartition": batchesPerPartition}
    with open(os.path.join(root, ".config.json"), "w", encoding="utf-8") as f:
        json.dump(document, f)
    return Manifest.fromJSON(json.dumps(document))


def placeObject(root, manifest, ledger, path, extension=0):
    """
    Copy the object file C{path} (holding C{ledger}) to its SEP-54 place under C{root}.
    """
    target = os.path.join(root, *objectPaths(manifest, ledger)[extension].split("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(path, target)
    return target


def batchObject(first, metas):
    """
    The zstd bytes of a C{LedgerCloseMetaBatch} of C{metas} (XDR bytes) from ledger C{first}.
    """
    raw = _U32.pack(first) + _U32.pack(first + len(metas) - 1) + _U32.pack(len(metas)) + b"".join(metas)
    return zstandard.ZstdCompressor().compress(raw)


def writeChain(root, manifest, chain, first, last):
    """
    Write the objects of ledgers C{first} to C{last} of C{chain} (a L{LedgerChain}) under C{root}.
    """
    ledger = first
    while ledger <= last:
        start, end = manifest.batchOf(ledger)
        target = os.path.join(root, *objectPaths(manifest, start)[0].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(batchObject(start, [chain.meta(n) for n in range(start, end + 1)]))
        ledger = end + 1


class LakeResource(File):
    """
    A lake directory as an HTTP resource, with the L{Listeners} that L{serve} needs.
    """

    def __init__(self, *args, **kw):
        File.__init__(self, *args, **kw)
        self.listeners = Listeners()

    def stopServing(self):
        """
        Close the port and every connection; a Deferred.
        """
        self.listeners.dropConnections()
        return self.listeners.stop()


def serveLake(root, reactor, port=0, interface="127.0.0.1"):
    """
    Serve the lake directory C{root} over HTTP; a Deferred firing with C{(resource, port
    number)} (close it with C{resource.stopServing()}).
    """
    resource = LakeResource(root)
    return serve(port, resource, reactor=reactor, interface=interface).addCallback(lambda n: (resource, n))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.stderr.write("usage: python -m stellarflow.testing.lakeserver DIRECTORY [--port N]\n")
        return 2
    from twisted.internet import reactor

    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 8001
    serveLake(argv[0], reactor, port).addCallback(
        lambda served: sys.stdout.write("data lake {} on http://127.0.0.1:{}/\n".format(argv[0], served[1])))
    reactor.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
