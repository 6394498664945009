"""
A ledger worker process: decodes ledgers and extracts their messages, off the reactor.

Run by L{stellarflow.ledgers.pool} as ``python -m stellarflow.ledgers.worker CONFIG`` (C{CONFIG}
a JSON object: C{passphrase}, C{emit}).  It reads request frames (L{stellarflow.ledgers.framing})
on stdin and writes one answer frame per request on stdout, in order, until stdin closes.  A
request's head is C{{"id", "format", "ledger"}} and its body the ledger: C{format} ``base64``
(a getLedgers ``metadataXdr``), ``xdr`` (a C{LedgerCloseMeta}'s bytes) or ``zstd`` (a data-lake
object: a zstd C{LedgerCloseMetaBatch}).

The answer's head is C{{"id", "ledgers": [{"sequence", "hash", "previousHash", "protocol",
"sizes"}], "error"}}; its body holds, for each ledger in turn, the JSON array of the ledger's
messages (L{stellarflow.meta.ledgerMessages}) as L{stellarflow.message.seal} encodes them, so
the parent slices each message's text out with C{sizes} and never encodes it again.  A ledger
that cannot be decoded or extracted is an C{error} naming the ledger, its protocol and the
stellar-sdk version; the worker carries on with the next request.

Two shortcuts through stellar-sdk, for this process only: ledger entry changes are decoded
when read (L{stellarflow.ledgers.lazy}: most of a ledger's bytes, which extraction barely reads),
and the garbage collector is tuned for this load (a decoded ledger is a large acyclic tree freed
by reference counting; collecting the young generation while it is built costs as much as the
decode itself).
"""

import gc
import json
import os
import sys

import stellar_sdk
import zstandard
from stellar_sdk import xdr

from stellarflow.ledgers import lazy
from stellarflow.ledgers.framing import frame, readFrame
from stellarflow.ledgers.header import HeaderError, entryFacts, metaFacts
from stellarflow.message import seal
from stellarflow.meta import ledgerMessages

#: The exit status of a worker told to crash (the pool's tests use it).
CRASH_STATUS = 70


def _protocolOf(raw):
    """
    The protocol of the ledger in C{raw}, best effort: a C{LedgerCloseMeta} of a version this
    reader does not know is read as if it kept v1/v2's layout (an extension, then the header).
    """
    try:
        return metaFacts(raw).protocol
    except HeaderError:
        pass
    try:
        return entryFacts(raw, 8).protocol
    except HeaderError:
        return None


def _ledgers(request, body):
    """
    C{(raw bytes or None, decoded LedgerCloseMeta)} of each ledger in a request's body.
    """
    kind = request.get("format")
    if kind == "base64":
        lcm = xdr.LedgerCloseMeta.from_xdr(body.decode("ascii"))
        return [(None, lcm)]
    if kind == "xdr":
        return [(body, xdr.LedgerCloseMeta.from_xdr_bytes(body))]
    if kind == "zstd":
        with zstandard.ZstdDecompressor().stream_reader(body) as reader:
            raw = reader.read()
        return [(None, lcm) for lcm in xdr.LedgerCloseMetaBatch.from_xdr_bytes(raw).ledger_close_metas]
    raise ValueError("unknown ledger format {!r}".format(kind))


def _encoded(messages, ledger):
    sizes = []
    parts = []
    for fields in messages:
        message = seal(fields)
        if message.json is None:
            raise ValueError("ledger {}: {}".format(ledger, message.encodeError))
        parts.append(message.json)
        sizes.append(len(message.json))
    return b"[" + b",".join(parts) + b"]", sizes


def _describe(error):
    text = str(error) or type(error).__name__
    return "{}: {}".format(type(error).__name__, text[:500])


def handle(request, body, passphrase, emit):
    """
    The answer C{(head, body)} to one request.
    """
    answer = {"id": request.get("id"), "ledgers": [], "error": None}
    ledger = request.get("ledger")
    protocol = request.get("protocol")
    try:
        decoded = _ledgers(request, body)
    except Exception as e:
        if protocol is None and request.get("format") == "xdr":
            protocol = _protocolOf(body)
        answer["error"] = {"kind": "undecodable", "ledger": ledger, "protocol": protocol, "sdk": stellar_sdk.__version__,
                           "message": _describe(e)}
        return answer, b""
    chunks = []
    for _, lcm in decoded:
        entry = (lcm.v0, lcm.v1, lcm.v2)[lcm.v].ledger_header if lcm.v <= 2 else None
        if entry is None:
            answer["error"] = {"kind": "undecodable", "ledger": ledger, "protocol": protocol,
                               "sdk": stellar_sdk.__version__,
                               "message": "LedgerCloseMeta version {} is not supported".format(lcm.v)}
            return answer, b""
        header = entry.header
        sequence = header.ledger_seq.uint32
        info = {
            "sequence": sequence,
            "hash": entry.hash.hash.hex(),
            "previousHash": header.previous_ledger_hash.hash.hex(),
            "protocol": header.ledger_version.uint32,
        }
        try:
            messages = ledgerMessages(lcm, passphrase, emit)
            text, sizes = _encoded(messages, sequence)
        except Exception as e:
            answer["error"] = {"kind": "unextractable", "ledger": sequence, "protocol": info["protocol"],
                               "sdk": stellar_sdk.__version__, "message": _describe(e)}
            return answer, b""
        info["sizes"] = sizes
        answer["ledgers"].append(info)
        chunks.append(text)
    return answer, b"".join(chunks)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    config = json.loads(argv[0]) if argv else {}
    passphrase = config["passphrase"]
    emit = tuple(config.get("emit") or ("payment", "trade", "contract_event"))
    crashOn = config.get("crash_on")
    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb", buffering=0)
    sys.stdout = sys.stderr  # nothing but frames goes to the parent's pipe
    lazy.install()
    gc.freeze()
    gc.set_threshold(50000, 20, 20)
    while True:
        request = readFrame(stdin)
        if request is None:
            return 0
        head, body = request
        if crashOn is not None and head.get("ledger") in crashOn:
            os._exit(CRASH_STATUS)
        answer, out = handle(head, body, passphrase, emit)
        stdout.write(frame(answer, out))


if __name__ == "__main__":
    sys.exit(main())
