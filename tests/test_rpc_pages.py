"""
Tests for L{stellarflow.rpc.pages}: what a getEvents page brings a reader.  (C{parseEventsPage}
is tested with the client, in C{test_rpc_client}.)
"""

from twisted.trial.unittest import SynchronousTestCase

from stellarflow import positions
from stellarflow.rpc.pages import AcceptedPage, EventsPage, acceptPage, eventLedgerOf


def ev(ledger, index=0, **extra):
    event = {"ledger": ledger, "id": positions.eventId(ledger, 1, 0, index)}
    event.update(extra)
    return event


class AcceptPageTests(SynchronousTestCase):
    def test_dropsWhatWasDelivered(self):
        a, b, c = ev(10), ev(10, 1), ev(11)
        page = EventsPage([c, a, b], cursor=positions.ledgerEnd(11))
        accepted = acceptPage(page, positions.split(a["id"]), None, full=False)
        self.assertEqual(accepted, AcceptedPage([b, c], positions.ledgerEnd(11), False, 1))

    def test_legacyPageWithoutCursor(self):
        a, b = ev(10), ev(12, pagingToken="x")
        accepted = acceptPage(EventsPage([b, a]), None, None, full=True)
        self.assertEqual((accepted.events, accepted.cursor), ([a, b], b["id"]))
        self.assertIsNone(acceptPage(EventsPage([]), None, None, full=False).cursor)

    def test_backfillEnd(self):
        a, b = ev(10), ev(11)
        # Scanned past the end: events after it are dropped, the cursor is clamped, done.
        past = acceptPage(EventsPage([a, b], cursor=b["id"]), None, 10, full=True)
        self.assertEqual(past, AcceptedPage([a], positions.ledgerEnd(10), True, 0))
        # Scanned exactly up to it with a partial page: done; a full page may have more.
        partial = acceptPage(EventsPage([a], cursor=positions.ledgerEnd(10)), None, 10, full=False)
        self.assertEqual((partial.cursor, partial.done), (positions.ledgerEnd(10), True))
        self.assertFalse(acceptPage(EventsPage([a], cursor=a["id"]), None, 10, full=True).done)

    def test_eventLedgerOf(self):
        self.assertEqual(eventLedgerOf({"ledger": "12"}), 12)
        self.assertEqual(eventLedgerOf({"id": positions.eventId(13, 0, 0, 0)}), 13)
        self.assertIsNone(eventLedgerOf({"ledger": True}))
