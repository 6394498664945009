"""
How a message is kept in a Redis Stream, and read back.

An entry's id is the message's event id: position ``%019d-%010d`` (TOID, index) is stream id
``<toid>-<index>``.  Redis keeps the order, and refuses an id at or below the stream's top, so
appending a message again is a no-op.  An entry has two fields: ``m``, the message's JSON text
exactly as WebSocket clients receive it (sealed once on the ingest node), and ``p``, the id of
the entry before it in the same unbroken chain (``""`` when the writer does not know it), from
which a reader tells a gap (trimming, a Redis restart without persistence, a source gap) from
an unbroken stream.

Beside the stream, the hash ``<stream>:position`` holds, written in the same transaction as the
entries: ``cursor`` (the source position up to which the stream is complete: the writer's
checkpoint), ``last`` (the newest entry id) and ``network`` (the passphrase).
"""

import attr

from stellarflow.positions import isPosition, split

#: Entry field names.
MESSAGE, PREDECESSOR = b"m", b"p"


def positionKey(stream):
    """The key of the hash that holds C{stream}'s position."""
    return stream + ":position"


def streamId(value):
    """
    The stream id of a position (``16010972359577600-1``), or C{None} when C{value} is not one.
    """
    key = split(value)
    return None if key is None else "{}-{}".format(*key)


def positionOf(entryId):
    """
    The position (padded, as event ids are written) of a stream id (bytes or text).
    """
    head, _, tail = entryId.partition(b"-" if isinstance(entryId, bytes) else "-")
    return "%019d-%010d" % (int(head), int(tail))


def later(a, b):
    """Whether position C{a} is strictly after C{b}; C{None} comes before every position."""
    if a is None:
        return False
    if b is None:
        return True
    if len(a) == len(b) == 30:
        return a > b  # canonical positions sort as strings
    return split(a) > split(b)


def canStore(messageId):
    """Whether a message id can be an entry id (a position, and not 0-0)."""
    return isPosition(messageId) and split(messageId) != (0, 0)


@attr.s(slots=True, frozen=True)
class Entry:
    """
    One entry read back: C{id} (a position), C{json} (the message bytes), C{previous} (the
    predecessor's position, or C{None} when the writer did not know it).
    """

    id = attr.ib()
    json = attr.ib()
    previous = attr.ib()


def parseEntries(raw):
    """
    The L{Entry}s of an XRANGE reply (or of one stream of an XREAD reply): C{[[id, [field,
    value, ...]], ...]}.  Fields other than ours are ignored; an entry without ``m`` is kept with
    C{json=None} (the reader counts and skips it).
    """
    out = []
    for entryId, fields in raw or ():
        values = dict(zip(fields[::2], fields[1::2]))
        previous = values.get(PREDECESSOR) or None
        if previous is not None:
            try:
                previous = positionOf(previous)
            except ValueError:
                previous = None
        out.append(Entry(positionOf(entryId), values.get(MESSAGE), previous))
    return out


def decodeHash(reply):
    """
    A HGETALL reply (a flat list of bytes) as a dict of text.
    """
    reply = reply or []
    return {k.decode(): v.decode() for k, v in zip(reply[::2], reply[1::2])}
