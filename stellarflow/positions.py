"""
Positions in the chain: TOIDs, event ids and cursors, and the arithmetic on them.

A TOID (SEP-35 "total order id") packs a ledger, a transaction's application order and an
operation's index: C{ledger << 32 | transaction << 12 | operation}.  An event id, a getEvents
cursor and a ``resume_after`` value are all one I{position}: ``"%019d-%010d" % (toid, index)``.
Positions sort as strings in chain order and are exclusive, like the RPC's cursor: "after X"
means the events whose id is greater than X.

Every module that reads, compares or builds a position uses these functions; none does the
arithmetic itself.
"""

import re

#: Bits of a TOID: 32 for the ledger, 20 for the transaction, 12 for the operation.
TX_MASK = (1 << 20) - 1
OP_MASK = (1 << 12) - 1
#: The largest TOID (a signed 64-bit integer, as the RPC parses it).
MAX_TOID = (1 << 63) - 1
#: The largest event index within an operation (uint32, as the RPC's cursor parser allows).
MAX_INDEX = (1 << 32) - 1
#: The largest ledger sequence.
MAX_LEDGER = (1 << 32) - 1

_POSITION = re.compile(r"[0-9]{19}-[0-9]{10}\Z")


def toid(ledger, transaction=0, operation=0):
    """
    The TOID of an operation (transaction and operation orders as SEP-35 counts them).
    """
    return (ledger << 32) | (transaction << 12) | operation


def position(toid, index=0):
    """
    The position string of event C{index} of the operation with C{toid}.
    """
    return "%019d-%010d" % (toid, index)


def eventId(ledger, transaction, operation, index):
    """
    The id of event C{index} of an operation, as getEvents writes it.
    """
    return position(toid(ledger, transaction, operation), index)


def isPosition(value):
    """
    Whether C{value} is a position string (19 digits, ``-``, 10 digits).
    """
    return isinstance(value, str) and _POSITION.match(value) is not None


def parsePosition(value):
    """
    C{value} if it is a position within range; otherwise raise C{ValueError} saying what is
    wrong with it (the text is meant for a client).
    """
    if not isinstance(value, str):
        raise ValueError('must be a string (an event id or cursor like "0016010972359577600-0000000001")')
    if not _POSITION.match(value):
        raise ValueError("{} is not an event id or cursor: expected 19 digits, '-', 10 digits".format(_shown(value)))
    if int(value[:19]) > MAX_TOID or int(value[20:]) > MAX_INDEX:
        raise ValueError("{} is out of range for an event id or cursor".format(_shown(value)))
    return value


def split(value):
    """
    C{(toid, index)} of a position, or C{None} when C{value} is not one.  Lenient about
    padding (old servers' paging tokens), so it also orders ids that are not canonical.
    """
    if not isinstance(value, str):
        return None
    head, sep, tail = value.partition("-")
    if not sep or not head.isdigit() or not tail.isdigit():
        return None
    return int(head), int(tail)


def ledgerOf(value):
    """
    The ledger a position lies in (its TOID's upper 32 bits), or C{None} if it is not one.
    """
    key = split(value)
    return None if key is None else key[0] >> 32


def before(value):
    """
    The greatest position below C{value}: no event id lies strictly between the two.
    """
    toid_, index = split(value)
    if index:
        return position(toid_, index - 1)
    return position(toid_ - 1, MAX_INDEX)


def after(value):
    """
    The smallest position above C{value} (the first event id that could follow it).
    """
    toid_, index = split(value)
    if index < MAX_INDEX:
        return position(toid_, index + 1)
    return position(toid_ + 1, 0)


def ledgerStart(ledger):
    """
    The position just before every event of C{ledger}: resuming after it starts at the
    ledger's first event.
    """
    return before(position(toid(ledger)))


def ledgerEnd(ledger):
    """
    The position after every event of C{ledger} (what getEvents returns as the cursor of a
    page that scanned the whole ledger).
    """
    return position(toid(ledger, TX_MASK, OP_MASK), MAX_INDEX)


def _shown(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
