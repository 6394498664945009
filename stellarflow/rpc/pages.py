"""
A getEvents answer, normalised across server versions, and the events in it.

Servers before v22 sent no ``cursor``, ledgers as strings and ``pagingToken`` next to (or
instead of) ``id``; L{parseEventsPage} and the helpers here accept every shape that was ever
sent, so that the client and the source deal with one.
"""

import attr

from stellarflow import positions
from stellarflow.rpc.errors import BadResponse


@attr.s(slots=True)
class EventsPage:
    """
    One getEvents answer, normalised across server versions.

    @ivar events: the event objects, as sent.
    @ivar cursor: the ``cursor`` member, or C{None} when the server sent none (pre-v22).
    @ivar latestLedger: C{latestLedger} as an int (older servers sent a string), or C{None}.
    @ivar oldestLedger: C{oldestLedger} as an int, or C{None} when absent.
    """

    events = attr.ib()
    cursor = attr.ib(default=None)
    latestLedger = attr.ib(default=None)
    oldestLedger = attr.ib(default=None)


def ledgerNumber(value, what):
    """
    A ledger number the server sent as an int or a decimal string; C{None} when absent.

    @param what: names the value in the L{BadResponse} raised when it is neither.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadResponse("{} is {!r}, not a ledger number".format(what, value))
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise BadResponse("{} is {!r}, not a ledger number".format(what, value))


def parseEventsPage(result):
    """
    Check and normalise a getEvents C{result}; raise L{BadResponse} when it is not one.
    """
    if not isinstance(result, dict):
        raise BadResponse("getEvents result is {}, not an object".format(type(result).__name__))
    events = result.get("events")
    if events is None:
        events = []
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise BadResponse("getEvents 'events' is not a list of objects")
    cursor = result.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise BadResponse("getEvents 'cursor' is {!r}, not a string".format(cursor))
    return EventsPage(
        events=events,
        cursor=cursor or None,
        latestLedger=ledgerNumber(result.get("latestLedger"), "latestLedger"),
        oldestLedger=ledgerNumber(result.get("oldestLedger"), "oldestLedger"),
    )


def eventIdOf(event):
    """
    The position of a getEvents event object (its ``id``, else an old server's
    ``pagingToken``), or C{None} when it has neither as a string.
    """
    value = event.get("id") or event.get("pagingToken")
    return value if isinstance(value, str) else None


def eventLedgerOf(event):
    """
    The ledger of a getEvents event object (``ledger`` as an int or a decimal string, else the
    ledger of its id), or C{None}.
    """
    value = event.get("ledger")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return positions.ledgerOf(eventIdOf(event))


def orderEvents(events):
    """
    C{events} sorted by id (servers sort them already; this is a defence); events without a
    usable id keep their relative order, after the others.
    """
    keyed = []
    unkeyed = []
    for event in events:
        key = positions.split(eventIdOf(event))
        if key is None:
            unkeyed.append(event)
        else:
            keyed.append((key, event))
    keyed.sort(key=lambda pair: pair[0])
    return [e for _, e in keyed] + unkeyed


@attr.s(slots=True, frozen=True)
class AcceptedPage:
    """
    What a page brings a reader: see L{acceptPage}.

    @ivar events: the new events, in id order.
    @ivar cursor: where the next request continues from (C{None}: the page did not say).
    @ivar done: whether a backfill has every event up to its end ledger.
    @ivar duplicates: how many events were dropped as already delivered.
    """

    events = attr.ib()
    cursor = attr.ib()
    done = attr.ib()
    duplicates = attr.ib()


def acceptPage(page, lastKey, endLedger, full):
    """
    The events of C{page} not delivered yet, the cursor after them, and whether a backfill is
    complete.

    @param page: an L{EventsPage}.
    @param lastKey: C{positions.split} of the last delivered event id (or of the checkpoint),
        or C{None}: events at or below it are dropped.
    @param endLedger: the last ledger of a backfill, or C{None}.  Events after it are dropped;
        once the server scanned past it (or exactly up to it with a partial page) the backfill
        is done, with the cursor clamped to the end of C{endLedger}.
    @param full: whether the page was full (more events may follow in the same ledger).
    @rtype: L{AcceptedPage}
    """
    events = orderEvents(page.events)
    fresh = []
    for event in events:
        key = positions.split(eventIdOf(event))
        if key is not None and lastKey is not None and key <= lastKey:
            continue
        fresh.append(event)
    duplicates = len(events) - len(fresh)

    cursor = page.cursor
    if cursor is None and events:  # servers before v22 sent no cursor
        cursor = eventIdOf(events[-1])

    done = False
    if endLedger is not None:
        kept = [e for e in fresh if (eventLedgerOf(e) or 0) <= endLedger]
        beyond = len(kept) < len(fresh)
        fresh = kept
        position = positions.ledgerOf(cursor)
        past = position is not None and position > endLedger
        done = beyond or past or (position == endLedger and not full)
        if beyond or past:
            cursor = positions.ledgerEnd(endLedger)
    return AcceptedPage(fresh, cursor, done, duplicates)
