"""
A getLedgers answer, checked and normalised: each ledger an L{LedgerItem} whose header facts
were read from its ``headerXdr`` (a C{LedgerHeaderHistoryEntry}) and must agree with the
record's own ``hash`` and ``sequence``.  The ``metadataXdr`` stays base64 text, for a worker
to decode.  ``ledgerCloseTime`` is a string and ``latestLedgerCloseTime`` a number in this
method (the reverse of getEvents); both shapes are accepted.
"""

import base64
import binascii

import attr

from stellarflow.ledgers.header import HeaderError, entryFacts
from stellarflow.ledgers.items import LedgerItem
from stellarflow.rpc.errors import BadResponse
from stellarflow.rpc.pages import ledgerNumber


@attr.s(slots=True)
class LedgersPage:
    """
    One getLedgers answer.

    @ivar ledgers: L{LedgerItem}s, as sent (the source checks their order and chain).
    @ivar cursor: the ``cursor`` member as a ledger sequence, or C{None}.
    @ivar latestLedger: ``latestLedger``, or C{None}.
    @ivar oldestLedger: ``oldestLedger``, or C{None}.
    @ivar latestCloseTime: ``latestLedgerCloseTime`` in unix seconds, or C{None}.
    """

    ledgers = attr.ib()
    cursor = attr.ib(default=None)
    latestLedger = attr.ib(default=None)
    oldestLedger = attr.ib(default=None)
    latestCloseTime = attr.ib(default=None)


def parseLedgerRecord(record):
    """
    The L{LedgerItem} of one ``ledgers[]`` record; raise L{BadResponse} when it is not one.
    """
    if not isinstance(record, dict):
        raise BadResponse("getLedgers 'ledgers' holds {}, not an object".format(type(record).__name__))
    sequence = ledgerNumber(record.get("sequence"), "getLedgers ledger sequence")
    meta = record.get("metadataXdr")
    header = record.get("headerXdr")
    if sequence is None or not isinstance(meta, str) or not isinstance(header, str):
        raise BadResponse("getLedgers ledger {} lacks its sequence, headerXdr or metadataXdr (xdrFormat must be "
                          "base64)".format(sequence))
    try:
        facts = entryFacts(base64.b64decode(header, validate=True))
    except (binascii.Error, HeaderError) as e:
        raise BadResponse("getLedgers ledger {}: headerXdr is not a ledger header: {}".format(sequence, e)) from None
    declared = record.get("hash")
    if facts.sequence != sequence or (declared is not None and declared.lower() != facts.hash):
        raise BadResponse("getLedgers ledger {} (hash {}) carries the header of ledger {} (hash {})".format(
            sequence, declared, facts.sequence, facts.hash))
    return LedgerItem(
        sequence=sequence,
        hash=facts.hash,
        previousHash=facts.previousHash,
        format="base64",
        payload=meta.encode("ascii"),
        protocol=facts.protocol,
        closeTime=facts.closeTime,
    )


def parseLedgersPage(result):
    """
    Check and normalise a getLedgers C{result}; raise L{BadResponse} when it is not one.
    """
    if not isinstance(result, dict):
        raise BadResponse("getLedgers result is {}, not an object".format(type(result).__name__))
    records = result.get("ledgers")
    if records is None:
        records = []
    if not isinstance(records, list):
        raise BadResponse("getLedgers 'ledgers' is not a list")
    cursor = result.get("cursor")
    return LedgersPage(
        ledgers=[parseLedgerRecord(r) for r in records],
        cursor=ledgerNumber(cursor, "getLedgers cursor") if cursor not in (None, "") else None,
        latestLedger=ledgerNumber(result.get("latestLedger"), "latestLedger"),
        oldestLedger=ledgerNumber(result.get("oldestLedger"), "oldestLedger"),
        latestCloseTime=ledgerNumber(result.get("latestLedgerCloseTime"), "latestLedgerCloseTime"),
    )
