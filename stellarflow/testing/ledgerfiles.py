"""
The recorded ledgers under ``tests/fixtures/ledgers`` as decoded C{xdr.LedgerCloseMeta}s.

Three shapes are recorded (each file's ``.source.txt`` says where it comes from and what it
holds): data-lake objects (SEP-54, galexie: a zstd-compressed C{LedgerCloseMetaBatch}, ``.xdr.zst``
or older ``.xdr.zstd``), getLedgers results (``ledgers[].metadataXdr``, base64) and a
getLatestLedger result (one ``metadataXdr``).  Galexie writes zstd frames without their content
size, so they are read as a stream.
"""

import json

import zstandard
from stellar_sdk import xdr

from stellarflow.events.network import PUBLIC
from stellarflow.testing import ledgerbuild
from stellarflow.testing.fixtures import fixturePath

#: The mainnet ledger the recorded getTransactions corpus comes from (see L{corpusLedger}).
CORPUS_LEDGER = 63800108


def batchLedgers(compressed):
    """
    The C{LedgerCloseMeta}s of a data-lake object's bytes (zstd of a C{LedgerCloseMetaBatch}).
    """
    with zstandard.ZstdDecompressor().stream_reader(compressed) as reader:
        raw = reader.read()
    return list(xdr.LedgerCloseMetaBatch.from_xdr_bytes(raw).ledger_close_metas)


def batchBytes(name):
    """
    The decompressed bytes of the data-lake object ``ledgers/<name>`` (a C{LedgerCloseMetaBatch}).
    """
    with open(fixturePath("ledgers", name), "rb") as f:
        with zstandard.ZstdDecompressor().stream_reader(f) as reader:
            return reader.read()


def resultLedgers(result):
    """
    The C{LedgerCloseMeta}s of a getLedgers result (or of a getLatestLedger result, which has
    one ``metadataXdr``).
    """
    records = result["ledgers"] if "ledgers" in result else [result]
    return [xdr.LedgerCloseMeta.from_xdr(record["metadataXdr"]) for record in records]


def fixtureLedgers(name):
    """
    The C{LedgerCloseMeta}s of the recorded fixture ``ledgers/<name>``, whatever its shape.
    """
    path = fixturePath("ledgers", name)
    if name.endswith((".zst", ".zstd")):
        with open(path, "rb") as f:
            return batchLedgers(f)
    with open(path, encoding="utf-8") as f:
        return resultLedgers(json.load(f))


def fixtureJson(name):
    """
    The parsed JSON of the recorded fixture ``ledgers/<name>``.
    """
    with open(fixturePath("ledgers", name), encoding="utf-8") as f:
        return json.load(f)


def corpusLedger():
    """
    Mainnet ledger 63800108 (protocol 27) assembled from the 50 recorded transactions of it in
    ``jssdk-mainnet-gettransactions-corpus-p27.json`` (real envelopes, results and meta with
    CAP-67 events, in the order getTransactions returned them) under its real header from
    ``jssdk-mainnet-getledgers-headers-63800060.json``: a C{LedgerCloseMeta} v2 built by
    L{ledgerbuild.ledgerCloseMeta}.  It holds those 50 transactions only, numbered 1 to 50, so
    transaction indexes and ids are not mainnet's.
    """
    corpus = fixtureJson("jssdk-mainnet-gettransactions-corpus-p27.json")
    headers = fixtureJson("jssdk-mainnet-getledgers-headers-63800060.json")
    (record,) = [r for r in headers["records"] if r["sequence"] == CORPUS_LEDGER]
    header = xdr.LedgerHeaderHistoryEntry.from_xdr(record["headerXdr"])
    return ledgerbuild.ledgerCloseMeta(header, ledgerbuild.assembledTransactions(corpus["records"], PUBLIC), PUBLIC)
