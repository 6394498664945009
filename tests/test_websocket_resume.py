"""
Tests for resuming WebSocket clients without sockets: the history window
(L{stellarflow.websocket.history}), replays (L{stellarflow.websocket.replay}) through the
L{ClientHub}, an in-memory durable store, and C{cursor} messages, on a Clock.
"""

import gc
import json
import tracemalloc

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stellarflow.batch import Batch
from stellarflow.interfaces import IEventHistory
from stellarflow.positions import after, before, ledgerOf, parsePosition
from stellarflow.websocket import broadcaster as broadcasterModule
from stellarflow.websocket import cursors as cursorsModule
from stellarflow.websocket import hub as hubModule
from stellarflow.websocket import replay as replayModule
from stellarflow.websocket import resume as resumeModule
from stellarflow.websocket import session as sessionModule
from stellarflow.websocket.consumer import SaveToWebSocket
from stellarflow.websocket.history import Event, HistoryWindow
from stellarflow.websocket.hub import ClientHub
from stellarflow.websocket.matching import eventKeys
from stellarflow.websocket.messages import encode
from tests.wshelpers import G2, G3, FakeConnection, eventId, register, tokenEvent


def pos(ledger, index=0):
    """A position in C{ledger} (transaction 0, operation 0)."""
    return "%019d-%010d" % (ledger << 32, index)


def stream(n):
    """Event n of a steady stream: USDC transfers G1->G2 (even n), XLM G2->G3 (odd n)."""
    if n % 2:
        return tokenEvent(n, code="XLM", frm=G2, to=G3)
    return tokenEvent(n)


def held(message):
    """A message as the window holds it."""
    return Event(message["id"], eventKeys(message), encode(message))


@implementer(IEventHistory)
class FakeStore:
    """
    An in-memory IEventHistory.  With C{manual}, calls wait in C{waiting} until the test fires
    them; C{failing} makes them fail.
    """

    def __init__(self, messages=(), checkpoint=None):
        self.events = []
        self.checkpoint = checkpoint
        self.calls = []
        self.manual = False
        self.waiting = []
        self.failing = None
        for m in messages:
            self.add(m)

    def add(self, message, commit=True):
        self.events.append((message["id"], encode(message)))
        if commit:
            self.checkpoint = message["id"]

    def _answer(self, value):
        if self.failing is not None:
            return fail(self.failing)
        if self.manual:
            d = Deferred()
            self.waiting.append((d, value))
            return d
        return succeed(value)

    def release(self):
        waiting, self.waiting = self.waiting, []
        for d, value in waiting:
            d.callback(value)

    def oldest(self):
        self.calls.append(("oldest",))
        return self._answer(self.events[0][0] if self.events else None)

    def count(self, after, upto, limit):
        self.calls.append(("count", after, upto, limit))
        return self._answer(min(limit, sum(1 for i, _ in self.events if after < i <= upto)))

    def read(self, after, upto, limit):
        self.calls.append(("read", after, upto, limit))
        page = [(i, p) for i, p in self.events if after < i <= upto][:limit]
        complete = self.checkpoint is not None and self.checkpoint >= upto
        return self._answer((page, complete))


class TurnClock(Clock):
    """
    A Clock whose L{turn} runs only the calls already due, like one reactor iteration (a
    C{callLater(0)} made during it runs in the next turn; C{Clock.advance(0)} would run it too).
    """

    def turn(self):
        now = self.seconds()
        due = [c for c in self.calls if c.getTime() <= now]
        for call in due:
            self.calls.remove(call)
            call.called = 1
            call.func(*call.args, **call.kw)
        return len(due)


class Mixin:
    def setUp(self):
        self.clock = TurnClock()
        self.logged = []
        observer = Logger(observer=self.logged.append)
        for module in (hubModule, sessionModule, broadcasterModule, cursorsModule, replayModule, resumeModule):
            self.patch(module, "log", observer)

    def make(self, **kw):
        kw.setdefault("cursorInterval", 0)
        return ClientHub(self.clock, **kw)

    def connect(self, b, peer="tcp4:10.0.0.1:4000"):
        conn = FakeConnection(peer)
        return conn, b.connect(conn)

    def drive(self, turns=1000):
        """Let the replays run (each reactor turn is a Clock.advance(0))."""
        for _ in range(turns):
            if not self.clock.turn():
                return
        self.fail("replays still running after {} turns".format(turns))

    def feed(self, b, numbers, make=stream):
        batch = [make(n) for n in numbers]
        b.broadcast(batch, batch[-1]["id"] if batch else None)
        return batch

    def replies(self, conn, kind):
        return [m for m in conn.messages() if m["type"] == kind]


# -- positions and the window ------------------------------------------------------------


class PositionTests(SynchronousTestCase):
    def test_parse(self):
        self.assertEqual(parsePosition(pos(5, 1)), pos(5, 1))
        for bad in (None, 5, "", "abc", "0000000000000000001-000000000", "0000000000000000001_0000000000",
                    "0000000000000000001-00000000001", " 0000000000000000001-0000000000",
                    "9999999999999999999-0000000000", "0000000000000000001-9999999999", ["x"]):
            self.assertRaises(ValueError, parsePosition, bad)

    def test_neighbours(self):
        """
        before/after give the adjacent positions: no event id lies strictly between.
        """
        self.assertEqual(before(pos(7, 3)), pos(7, 2))
        self.assertEqual(before(pos(7, 0)), "%019d-%010d" % ((7 << 32) - 1, 2**32 - 1))
        self.assertEqual(after(before(pos(7, 0))), pos(7, 0))
        self.assertEqual(after(pos(7, 3)), pos(7, 4))
        self.assertEqual(ledgerOf(pos(123456, 9)), 123456)
        self.assertEqual(ledgerOf(before(pos(7, 0))), 6)


class HistoryWindowTests(SynchronousTestCase):
    def test_sizeBound(self):
        """
        Beyond C{size} events the oldest are evicted; the floor is the newest evicted id.
        """
        w = HistoryWindow(size=10)
        for n in range(1, 26):
            self.assertTrue(w.append(held(stream(n))))
        w.advance(eventId(25))
        self.assertEqual(len(w), 10)
        self.assertEqual(w.evicted, 15)
        self.assertEqual(w.floor, eventId(15))
        self.assertEqual((w.first, w.end), (15, 25))
        self.assertEqual(w.at(w.first).id, eventId(16))
        self.assertEqual(w.seqAfter(eventId(20)), 20)
        self.assertEqual(w.at(20).id, eventId(21))
        self.assertEqual(w.countAfter(eventId(20)), 5)
        self.assertEqual(w.countAfter(eventId(3)), 10)
        self.assertEqual(w.countAfter(eventId(25)), 0)

    def test_ledgerBound(self):
        """
        With C{ledgers}, only the events of the newest N ledgers are kept (and C{size} still
        applies).
        """
        w = HistoryWindow(size=100, ledgers=3)
        ids = [pos(ledger, i) for ledger in range(10, 20) for i in range(4)]
        for i in ids:
            w.append(Event(i, None, b""))
            w.advance(i)
        self.assertEqual(len(w), 12)
        self.assertEqual(w.at(w.first).id, pos(17, 0))
        self.assertEqual(w.floor, pos(16, 3))
        small = HistoryWindow(size=5, ledgers=3)
        for i in ids:
            small.append(Event(i, None, b""))
        small.advance(None)
        self.assertEqual(len(small), 5)

    def test_floorBeforeFirstEvent(self):
        """
        Before anything is evicted the floor is the position just before the first event
        (nothing earlier was seen), or an empty first batch's cursor.
        """
        w = HistoryWindow(size=10)
        self.assertIsNone(w.floor)
        w.append(held(stream(5)))
        self.assertEqual(w.floor, before(eventId(5)))
        w = HistoryWindow(size=10)
        w.advance(eventId(3))
        self.assertEqual(w.floor, eventId(3))
        w.append(held(stream(5)))
        self.assertEqual(w.floor, eventId(3))

    def test_unplaceableEventsSkipped(self):
        """
        An event without a usable id, or not after the newest, is not kept.
        """
        w = HistoryWindow(size=10)
        w.append(held(stream(5)))
        for event in (Event(None, None, b""), Event("x", None, b""), Event(eventId(5), None, b""),
                      Event(eventId(4), None, b"")):
            self.assertFalse(w.append(event))
        self.assertEqual((len(w), w.skipped), (1, 4))

    def test_compaction(self):
        """
        The storage is compacted as events are evicted; sequence numbers stay valid.
        """
        w = HistoryWindow(size=100)
        for n in range(1, 5001):
            w.append(Event(eventId(n), None, b""))
            w.advance(None)
        self.assertLess(len(w._events), 2200)
        self.assertEqual((w.first, w.end), (4900, 5000))
        self.assertEqual(w.at(4900).id, eventId(4901))
        self.assertEqual(w.at(4999).id, eventId(5000))
        self.assertEqual(w.seqAfter(eventId(4950)), 4950)

    def test_memoryPerEvent(self):
        """
        The window's own cost per event besides the frame (the payload plus a few bytes, shared
        with the live fan-out): the Event, its id and its filter keys, well under 1.6 KB.
        """
        messages = [stream(n) for n in range(1, 2001)]
        w = HistoryWindow(size=1000)
        gc.collect()
        tracemalloc.start()
        try:
            start = tracemalloc.take_snapshot()
            for m in messages:
                w.append(Event(str(m["id"]), eventKeys(m), None))
                w.advance(None)
            gc.collect()
            end = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        growth = sum(s.size_diff for s in end.compare_to(start, "filename"))
        perEvent = growth / len(w)
        self.assertEqual(len(w), 1000)
        self.assertLess(perEvent, 1600, "{:.0f} bytes per event".format(perEvent))


# -- resuming from memory ----------------------------------------------------------------


class ResumeTests(Mixin, SynchronousTestCase):
    def test_resumeMissesNothing(self):
        """
        A client drops, events go on, it comes back with resume_after = its last event: it is
        replayed what it missed, then live, and altogether it got exactly what an
        always-connected client with the same filters got.
        """
        b = self.make()
        filters = {"asset_codes": ["USDC"]}
        always, alwaysClient = self.connect(b, "always")
        register(b, alwaysClient, filters)
        first, firstClient = self.connect(b, "first")
        register(b, firstClient, filters)
        self.feed(b, range(1, 11))
        last = first.events()[-1]
        b.disconnected(firstClient)
        self.feed(b, range(11, 21))
        second, secondClient = self.connect(b, "second")
        register(b, secondClient, filters, resume_after=last)
        reply = self.replies(second, "registered")[0]
        self.assertEqual(reply["resumed"], True)
        self.assertEqual(reply["resume_after"], last)
        self.assertNotIn("gap", reply)
        self.assertEqual(reply["filters"]["asset_codes"], ["USDC"])
        self.assertEqual(b.replayer.replaying, 1)
        self.assertEqual(b.registered, 1)  # not live yet
        self.drive()
        self.assertEqual(b.replayer.replaying, 0)
        self.assertEqual(b.registered, 2)
        self.feed(b, range(21, 31))
        self.assertEqual(first.events() + second.events(), always.events())
        self.assertEqual(len(always.events()), 15)
        self.assertEqual(second.types()[:2], ["welcome", "registered"])

    def test_eventsDuringReplay(self):
        """
        Events that arrive while the replay runs (over many reactor turns) reach the client
        through the replay, once, in order, and the client goes live without a gap.
        """
        b = self.make(replayOptions={"chunk": 10, "turnBudget": 10})
        always, alwaysClient = self.connect(b, "always")
        register(b, alwaysClient)
        self.feed(b, range(1, 101))
        conn, client = self.connect(b, "resumer")
        register(b, client, resume_after=eventId(0))
        n = 101
        for _ in range(200):
            self.assertEqual(self.clock.turn(), 1)
            self.feed(b, [n])
            n += 1
            if not b.replayer.isReplaying(client):
                break
        self.assertFalse(b.replayer.isReplaying(client))
        self.feed(b, range(n, n + 5))
        self.assertEqual(conn.events(), always.events())
        self.assertEqual(len(conn.events()), n + 4)

    def test_filtersChange(self):
        """
        The second connection may use other filters: the replay follows the new ones.
        """
        b = self.make()
        always, alwaysClient = self.connect(b, "always")
        register(b, alwaysClient, {"asset_codes": ["XLM"]})
        first, firstClient = self.connect(b, "first")
        register(b, firstClient, {"asset_codes": ["USDC"]})
        self.feed(b, range(1, 11))
        self.assertEqual(first.events(), [eventId(n) for n in range(2, 11, 2)])
        b.disconnected(firstClient)
        self.feed(b, range(11, 21))
        second, secondClient = self.connect(b, "second")
        register(b, secondClient, {"asset_codes": ["XLM"]}, resume_after=eventId(10))
        self.drive()
        self.feed(b, range(21, 25))
        self.assertEqual(second.events(), [eventId(n) for n in range(11, 25, 2)])
        self.assertEqual(second.events(), always.events()[5:])

    def test_resumeWithNothingMissed(self):
        """
        Resuming at the newest position: nothing to replay, live at once.
        """
        b = self.make()
        self.feed(b, range(1, 6))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(5))
        self.assertEqual(self.replies(conn, "registered")[0]["resumed"], True)
        self.drive()
        self.assertEqual(b.registered, 1)
        self.feed(b, [6])
        self.assertEqual(conn.events(), [eventId(6)])

    def test_resumeAfterCursor(self):
        """
        resume_after may be an RPC cursor (between event ids), like the cursor messages carry.
        """
        b = self.make()
        b.broadcast([stream(1), stream(2)], "%019d-%010d" % (2, 4294967295))
        b.broadcast([stream(3)], eventId(3))
        conn, client = self.connect(b)
        register(b, client, resume_after="%019d-%010d" % (2, 4294967295))
        self.drive()
        self.assertEqual(conn.events(), [eventId(3)])

    def test_gapWithoutStore(self):
        """
        A position older than the window, without a store: resumed is false and the gap says
        exactly which ids cannot be replayed; the replay starts with the oldest event held.
        """
        b = self.make(historySize=5)
        self.feed(b, range(1, 21))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(3))
        reply = self.replies(conn, "registered")[0]
        self.assertEqual(reply["resumed"], False)
        self.assertEqual(
            reply["gap"],
            {"from_after": eventId(3), "to": eventId(15), "ledgers": [0, 0]},
        )
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(16, 21)])

    def test_gapLedgers(self):
        b = self.make(historySize=4)
        ids = [pos(ledger, i) for ledger in range(100, 110) for i in range(2)]
        b.broadcast([dict(stream(1), id=i) for i in ids], ids[-1])
        conn, client = self.connect(b)
        register(b, client, resume_after=pos(101, 0))
        self.assertEqual(
            self.replies(conn, "registered")[0]["gap"],
            {"from_after": pos(101, 0), "to": pos(107, 1), "ledgers": [101, 107]},
        )

    def test_gapAfterRestart(self):
        """
        A fresh server (window starting at its first batch) cannot vouch for positions before
        it: the gap ends just before its first event.
        """
        b = self.make()
        self.feed(b, range(50, 53))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(40))
        reply = self.replies(conn, "registered")[0]
        self.assertEqual(reply["gap"]["to"], before(eventId(50)))
        self.drive()
        self.assertEqual(conn.events(), [eventId(50), eventId(51), eventId(52)])
        conn, client = self.connect(b)
        register(b, client, resume_after=before(eventId(50)))
        self.assertEqual(self.replies(conn, "registered")[0]["resumed"], True)

    def test_unregisteredQueueReplacedByReplay(self):
        """
        Events queued while the client was unregistered are not sent twice: the replay covers
        them.
        """
        b = self.make()
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        self.feed(b, range(4, 7))
        register(b, client, resume_after=eventId(2))
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(3, 7)])
        self.assertEqual(client.queued, 0)


class RefusalTests(Mixin, SynchronousTestCase):
    def assertRefused(self, conn, code, field="resume_after"):
        error = conn.messages()[-1]
        self.assertEqual(error["type"], "error")
        self.assertEqual(error["error"], code)
        if field:
            self.assertEqual(error.get("field"), field)
        self.assertIsNone(conn.closed)
        return error

    def test_malformed(self):
        b = self.make()
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        for value in (5, "5", "latest", "0000000000000000001-00000000x0", {"id": 1}, True):
            register(b, client, resume_after=value)
            error = self.assertRefused(conn, "invalid_resume_after")
            self.assertIn("resume_after", error["message"])
        self.assertFalse(client.registered)
        register(b, client)
        self.assertTrue(client.registered)

    def test_nullIsNoResume(self):
        b = self.make()
        conn, client = self.connect(b)
        b.received(client, b'{"type": "register", "filters": {}, "resume_after": null}', False)
        reply = conn.messages()[-1]
        self.assertEqual(reply["type"], "registered")
        self.assertNotIn("resumed", reply)

    def test_ahead(self):
        """
        A position after everything the server processed: an error, the connection stays open
        and a live client keeps its filters.
        """
        b = self.make()
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        register(b, client, {"asset_codes": ["XLM"]})
        register(b, client, resume_after=eventId(4))
        self.clock.advance(b.replayer.aheadWait)
        error = self.assertRefused(conn, "resume_after_ahead")
        self.assertIn(eventId(3), error["message"])
        self.feed(b, [5, 6])
        self.assertEqual(conn.events(), [eventId(5)])

    def test_aheadOfBatchCursor(self):
        """
        The batch cursor counts as processed: resuming right at it is fine, beyond it is not.
        """
        b = self.make()
        b.broadcast([stream(1)], eventId(9))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(9))
        self.assertEqual(conn.messages()[-1]["type"], "registered")
        conn, client = self.connect(b)
        register(b, client, resume_after=after(eventId(9)))
        self.clock.advance(b.replayer.aheadWait)
        self.assertRefused(conn, "resume_after_ahead")

    def test_maxReplay(self):
        """
        A resume needing more than max_replay events is refused with the limit named; a later
        position is accepted.
        """
        b = self.make(maxReplay=5)
        self.feed(b, range(1, 11))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(4))
        error = self.assertRefused(conn, "replay_too_large")
        self.assertIn("max_replay (5)", error["message"])
        self.assertFalse(client.registered)
        register(b, client, resume_after=eventId(5))
        self.assertEqual(conn.messages()[-1]["resumed"], True)
        self.assertEqual(b.replayer.refused, 1)

    def test_noHistory(self):
        b = self.make(historySize=0)
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(2))
        self.assertRefused(conn, "resume_not_available")

    def test_refusalRestartsRegistrationTimer(self):
        """
        A refused resume does not count as registering: the client has registration_timeout
        again.
        """
        b = self.make(registrationTimeout=10)
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        self.clock.advance(9)
        register(b, client, resume_after=eventId(99))
        self.clock.advance(b.replayer.aheadWait)
        self.assertRefused(conn, "resume_after_ahead")
        self.clock.advance(9)
        self.assertIsNone(conn.closed)
        self.clock.advance(1)
        self.assertEqual(conn.closed, (4008, "registration timeout"))


class WaitingTests(Mixin, SynchronousTestCase):
    def test_beforeFirstBatch(self):
        """
        Right after a start nothing is known: the resume waits for the first batch, then is
        answered.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(3))
        self.assertEqual(conn.types(), ["welcome"])
        b.broadcast([], eventId(2))
        self.clock.advance(b.replayer.aheadWait)
        self.assertEqual(conn.messages()[-1]["error"], "resume_after_ahead")
        register(b, client, resume_after=eventId(2))
        self.drive()
        self.assertEqual(conn.messages()[-1]["resumed"], True)
        self.feed(b, [3])
        self.assertEqual(conn.events(), [eventId(3)])

    def test_aheadWaitsForThePosition(self):
        """
        A resume_after a little ahead of this server (a client moving from an edge a moment
        ahead) waits for the position: the batch that reaches it answers, with nothing
        skipped or repeated.
        """
        b = self.make()
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(5))
        self.clock.advance(1)
        self.feed(b, [4])
        self.assertEqual(conn.types(), ["welcome"])  # still behind: waiting
        self.feed(b, [5, 6])
        self.drive()
        reply = [m for m in conn.messages() if m["type"] == "registered"][-1]
        self.assertEqual(reply["resumed"], True)
        self.feed(b, [7])
        self.assertEqual(conn.events(), [eventId(6), eventId(7)])
        self.clock.advance(10)
        self.assertNotIn("error", conn.types())
        self.assertEqual(b.replayer._waitingAhead, [])

    def test_aheadRefusedAtTheBoundary(self):
        """
        Still ahead after aheadWait: refused exactly then, not before.
        """
        b = self.make()
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(9))
        self.clock.advance(b.replayer.aheadWait - 0.01)
        self.feed(b, [4])
        self.assertEqual(conn.types(), ["welcome"])
        self.clock.advance(0.01)
        self.assertEqual(conn.messages()[-1]["error"], "resume_after_ahead")
        self.assertEqual(b.replayer._waitingAhead, [])

    def test_goneWhileWaitingAhead(self):
        """
        A client that leaves while its resume waits is forgotten and its timer cancelled.
        """
        b = self.make()
        self.feed(b, range(1, 4))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(9))
        b.disconnected(client)
        self.assertEqual(b.replayer._waitingAhead, [])
        self.clock.advance(b.replayer.aheadWait)
        self.assertEqual(conn.types(), ["welcome"])

    def test_registerWhilePreparing(self):
        """
        While a resume is being prepared (the store is slow), another register is refused with
        resume_in_progress; the first one completes.
        """
        store = FakeStore([stream(n) for n in range(1, 11)])
        b = self.make(historySize=3, store=store)
        self.feed(b, range(1, 11))
        store.manual = True
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(2))
        self.assertEqual(conn.types(), ["welcome"])
        register(b, client)
        self.assertEqual(conn.messages()[-1]["error"], "resume_in_progress")
        self.assertFalse(client.registered)
        while store.waiting:
            store.release()
        self.assertEqual(conn.messages()[-1]["type"], "registered")
        store.manual = False
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(3, 11)])

    def test_disconnectWhilePreparing(self):
        store = FakeStore([stream(n) for n in range(1, 11)])
        b = self.make(historySize=3, store=store)
        self.feed(b, range(1, 11))
        store.manual = True
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(2))
        b.disconnected(client)
        store.release()
        self.assertEqual(conn.types(), ["welcome"])
        self.assertEqual(b.replayer.replaying, 0)

    def test_reregisterDuringReplay(self):
        """
        A register without resume_after during a replay changes the filters from there on; the
        replay goes on.  With resume_after it starts over from the new position.
        """
        b = self.make(replayOptions={"chunk": 4, "turnBudget": 4})
        self.feed(b, range(1, 21))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(0))
        self.clock.turn()
        got = len(conn.events())
        self.assertTrue(0 < got < 20)
        register(b, client, {"asset_codes": ["XLM"]})
        self.drive()
        events = conn.events()
        self.assertEqual(events[:got], [eventId(n) for n in range(1, got + 1)])
        self.assertEqual(events[got:], [eventId(n) for n in range(got + 1, 21) if n % 2])
        register(b, client, {}, resume_after=eventId(18))
        self.drive()
        self.assertEqual(conn.events()[len(events):], [eventId(19), eventId(20)])
        self.assertEqual(b.registered, 1)


class FlowControlTests(Mixin, SynchronousTestCase):
    def test_replayWaitsForSlowClient(self):
        """
        The replay sends only while the client's transport is not paused: it stops when the
        write buffer fills, resumes when it drains, and the held backlog stays small.  A live
        client meanwhile gets everything at once.
        """
        b = self.make(maxQueueSize=10)
        live, liveClient = self.connect(b, "live")
        register(b, liveClient)
        self.feed(b, range(1, 201))
        conn, client = self.connect(b, "slow")
        conn.bufferLimit = 25
        register(b, client, resume_after=eventId(0))
        self.drive()
        sent = len(conn.events())
        self.assertTrue(20 <= sent <= 25, sent)
        self.feed(b, [201])
        self.assertEqual(live.events()[-1], eventId(201))
        self.drive()
        self.assertEqual(len(conn.events()), sent)
        for _ in range(20):
            conn.drain()
            self.drive()
            self.assertIsNone(conn.closed)
        self.assertEqual(conn.events(), live.events())
        self.assertFalse(b.replayer.isReplaying(client))

    def test_replayBugClosesClient(self):
        """
        An unexpected error in a replay is logged and the client closed with 1011 (it would be
        neither replaying nor live otherwise); other replays go on.
        """
        b = self.make()
        self.feed(b, range(1, 11))
        conn, client = self.connect(b, "broken")
        other, otherClient = self.connect(b, "fine")
        register(b, client, resume_after=eventId(0))
        register(b, otherClient, resume_after=eventId(0))
        step = b.replayer._step

        def failing(replay, budget):
            if replay.session is client:
                raise RuntimeError("bug")
            return step(replay, budget)

        b.replayer._step = failing
        self.drive()
        self.assertEqual(conn.messages()[-1]["error"], "internal_error")
        self.assertEqual(conn.closed, (1011, "replay failed"))
        self.assertEqual(other.events(), [eventId(n) for n in range(1, 11)])
        self.assertEqual(len([e for e in self.logged if e.get("log_failure")]), 1)

    def test_overrunWithoutStore(self):
        """
        A client that stops reading during its replay until the window moved past it is closed
        (4029, replay_overrun): it would otherwise miss events silently.
        """
        b = self.make(historySize=20)
        self.feed(b, range(1, 21))
        conn, client = self.connect(b)
        conn.bufferLimit = 5
        register(b, client, resume_after=eventId(0))
        self.drive()
        self.feed(b, range(21, 41))
        conn.drain()
        self.drive()
        self.assertEqual(conn.messages()[-1]["error"], "replay_overrun")
        self.assertEqual(conn.closed, (4029, "replay fell behind"))

    def test_overrunWithStoreReadsStore(self):
        """
        With a store, a replay that fell out of the window reads the store instead.
        """
        store = FakeStore()
        b = self.make(historySize=20, store=store)
        messages = self.feed(b, range(1, 21))
        for m in messages:
            store.add(m)
        conn, client = self.connect(b)
        conn.bufferLimit = 5
        register(b, client, resume_after=eventId(0))
        self.drive()
        for m in self.feed(b, range(21, 41)):
            store.add(m)
        conn.bufferLimit = None
        conn.drain()
        self.drive()
        self.assertIsNone(conn.closed)
        self.assertEqual(conn.events(), [eventId(n) for n in range(1, 41)])
        self.assertTrue([c for c in store.calls if c[0] == "read"])

    def test_manyResumingWhileOthersLive(self):
        """
        Fifty clients replaying 2000 events each: every reactor turn is bounded by the turn
        budget, and live clients get each new event when it is broadcast.
        """
        budget = 3000
        b = self.make(replayOptions={"turnBudget": budget, "chunk": 1000})
        lives = [self.connect(b, "live%d" % i) for i in range(10)]
        for _, c in lives:
            register(b, c)
        self.feed(b, range(1, 2001))
        resumers = [self.connect(b, "r%d" % i) for i in range(50)]
        for _, c in resumers:
            register(b, c, resume_after=eventId(0))
        n = 2001
        turns = 0
        while b.replayer.replaying:
            before_ = sum(len(conn.frames) for conn, _ in resumers)
            self.clock.turn()
            sent = sum(len(conn.frames) for conn, _ in resumers) - before_
            self.assertLessEqual(sent, budget // replayModule.SEND_COST + 1)
            self.feed(b, [n])
            for conn, _ in lives:
                self.assertEqual(json.loads(conn.frames[-1])["id"], eventId(n))
            n += 1
            turns += 1
            self.assertLess(turns, 1000)
        expected = [eventId(i) for i in range(1, n)]
        for conn, _ in resumers + lives:
            self.assertEqual(conn.events(), expected)


# -- the durable store -----------------------------------------------------------------


class StoreTests(Mixin, SynchronousTestCase):
    def setUp(self):
        Mixin.setUp(self)
        self.store = FakeStore()
        verifyObject(IEventHistory, self.store)
        self.b = self.make(historySize=10, replayOptions={"pageSize": 7}, store=self.store)
        for m in self.feed(self.b, range(1, 101)):
            self.store.add(m)

    def test_olderPositionsFromStore(self):
        """
        Positions older than the window are replayed from the store in pages, then from memory;
        the replayed frames are the stored payloads, and the result is complete and in order.
        """
        conn, client = self.connect(self.b)
        register(self.b, client, {"asset_codes": ["USDC"]}, resume_after=eventId(5))
        self.assertEqual(self.replies(conn, "registered")[0]["resumed"], True)
        self.drive()
        self.feed(self.b, [101, 102])
        self.assertEqual(conn.events(), [eventId(n) for n in range(6, 103) if n % 2 == 0])
        self.assertEqual(conn.messages()[2], stream(6))
        reads = [c for c in self.store.calls if c[0] == "read"]
        self.assertEqual(reads[0], ("read", eventId(5), eventId(90), 7))
        self.assertTrue(all(c[2] <= eventId(90) for c in reads))

    def test_nextPageReadAhead(self):
        """
        While a full page goes out, the next one is already being read (one read in flight).
        """
        self.store.manual = True
        conn, client = self.connect(self.b)
        register(self.b, client, resume_after=eventId(5))
        while self.store.waiting:
            self.store.release()  # oldest, count
        self.drive()
        self.assertEqual([c[:2] for c in self.store.calls if c[0] == "read"], [("read", eventId(5))])
        self.store.release()  # the first page: events 6-12
        self.clock.turn()
        self.assertEqual([c[:2] for c in self.store.calls if c[0] == "read"],
                         [("read", eventId(5)), ("read", eventId(12))])
        self.assertEqual(conn.events(), [eventId(n) for n in range(6, 13)])
        self.drive()
        self.assertEqual(len(conn.events()), 7)
        self.store.manual = False
        self.store.release()
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(6, 101)])

    def test_gapBeforeStore(self):
        """
        The store does not reach back far enough: the gap ends just before its oldest event.
        """
        del self.store.events[:20]
        conn, client = self.connect(self.b)
        register(self.b, client, resume_after=eventId(5))
        reply = self.replies(conn, "registered")[0]
        self.assertEqual(reply["resumed"], False)
        self.assertEqual(reply["gap"], {"from_after": eventId(5), "to": before(eventId(21)), "ledgers": [0, 0]})
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(21, 101)])

    def test_windowMovesWhileStoreAsked(self):
        """
        A store with nothing older than the window: while it is asked, the window moves on; the
        gap reported reaches the floor at the time of the reply, so nothing is skipped silently.
        """
        store = FakeStore()
        store.manual = True
        b = self.make(historySize=10, store=store)
        self.feed(b, range(1, 21))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(3))
        self.feed(b, range(21, 26))
        store.release()
        reply = self.replies(conn, "registered")[0]
        self.assertEqual(reply["gap"]["to"], eventId(15))
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(16, 26)])

    def test_maxReplayCountsStore(self):
        store = FakeStore([stream(n) for n in range(1, 101)])
        b = self.make(historySize=10, maxReplay=50, store=store)
        self.feed(b, range(1, 101))
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(40))
        self.assertEqual(conn.messages()[-1]["error"], "replay_too_large")
        self.assertIn(("count", eventId(40), eventId(90), 51), store.calls)
        register(b, client, resume_after=eventId(50))
        self.assertEqual(conn.messages()[-1]["resumed"], True)

    def test_storeLagging(self):
        """
        Events the store has not written yet (its checkpoint is behind): the replay waits and
        asks again, and misses nothing.
        """
        store = FakeStore()
        b = self.make(historySize=10, replayOptions={"lagDelay": 0.5}, store=store)
        messages = self.feed(b, range(1, 101))
        for m in messages[:50]:
            store.add(m)
        conn, client = self.connect(b)
        register(b, client, resume_after=eventId(0))
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(1, 51)])
        self.clock.advance(0.5)
        self.drive()
        self.assertEqual(len(conn.events()), 50)
        for m in messages[50:]:
            store.add(m)
        self.clock.advance(0.5)
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(1, 101)])
        self.assertEqual(len(self.logsOf("waits for the database")), 1)

    def logsOf(self, fragment):
        return [e for e in self.logged if fragment in e.get("log_format", "")]

    def test_storeUnavailableAtStart(self):
        self.store.failing = ConnectionError("down")
        conn, client = self.connect(self.b)
        register(self.b, client, resume_after=eventId(5))
        error = conn.messages()[-1]
        self.assertEqual(error["error"], "history_unavailable")
        self.assertIsNone(conn.closed)
        self.assertEqual(len(self.logsOf("Cannot read the event history")), 1)

    def test_storeFailsMidReplay(self):
        """
        A failed read is retried with backoff; the replay then completes.
        """
        conn, client = self.connect(self.b)
        register(self.b, client, resume_after=eventId(5))
        self.store.failing = ConnectionError("down")
        self.drive()
        self.assertEqual(conn.events(), [])
        self.store.failing = None
        self.clock.advance(1)
        self.drive()
        self.assertEqual(conn.events(), [eventId(n) for n in range(6, 101)])
        self.assertEqual(len(self.logsOf("Cannot read the event history")), 1)


# -- cursor messages ---------------------------------------------------------------------


class CursorTests(Mixin, SynchronousTestCase):
    def make(self, **kw):
        kw.setdefault("cursorInterval", 30)
        return ClientHub(self.clock, **kw)

    def cursors(self, conn):
        return [m["cursor"] for m in conn.messages() if m["type"] == "cursor"]

    def test_quietClientGetsCursor(self):
        """
        A client whose filters matched nothing gets the position every cursor_interval, only
        when it moved; an empty batch moves it too.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client, {"account_ids": [G3], "types": ["mint"]}, cursor_updates=True)
        self.feed(b, range(1, 5))
        self.clock.advance(29.9)
        self.assertEqual(self.cursors(conn), [])
        self.clock.advance(0.1)
        self.assertEqual(self.cursors(conn), [eventId(4)])
        self.clock.advance(30)
        self.assertEqual(self.cursors(conn), [eventId(4)])
        b.broadcast([], pos(9))
        self.clock.advance(30)
        self.assertEqual(self.cursors(conn), [eventId(4), pos(9)])

    def test_rateLimited(self):
        """
        However many batches arrive, at most one cursor message per interval.
        """
        b = self.make(cursorInterval=10)
        conn, client = self.connect(b)
        register(b, client, {"types": ["mint"]}, cursor_updates=True)
        for n in range(1, 101):
            self.feed(b, [n])
            self.clock.advance(1)
        self.assertEqual(self.cursors(conn), [eventId(n) for n in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)])

    def test_notWhileEventsFlow(self):
        """
        A client that received an event since the last tick gets no cursor then.
        """
        b = self.make()
        conn, client = self.connect(b)
        register(b, client, {"asset_codes": ["USDC"]}, cursor_updates=True)
        self.feed(b, [2])
        self.clock.advance(30)
        self.assertEqual(self.cursors(conn), [])
        self.feed(b, [3])
        self.clock.advance(30)
        self.assertEqual(self.cursors(conn), [eventId(3)])
        self.assertEqual(conn.types(), ["welcome", "registered", "contract_event", "cursor"])

    def test_off(self):
        b = self.make(cursorInterval=0)
        conn, client = self.connect(b)
        register(b, client, {"types": ["mint"]})
        self.feed(b, range(1, 5))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(300)
        self.assertEqual(self.cursors(conn), [])

    def test_onlyLiveClients(self):
        """
        Unregistered and replaying clients get no cursor; the frame is built once per tick.
        """
        prepared = []

        def prepare(payload):
            prepared.append(payload)
            return payload

        b = self.make(prepare=prepare, replayOptions={"chunk": 1, "turnBudget": 1})
        quiet = [self.connect(b, "q%d" % i) for i in range(3)]
        for _, c in quiet:
            register(b, c, {"types": ["mint"]}, cursor_updates=True)
        unregistered, _ = self.connect(b, "u")
        self.feed(b, range(1, 5))
        replaying, r = self.connect(b, "r")
        register(b, r, {"types": ["mint"]}, resume_after=eventId(0))
        r.pauseProducing()  # keeps it replaying
        del prepared[:]
        self.clock.advance(30)
        for conn, _ in quiet:
            self.assertEqual(self.cursors(conn), [eventId(4)])
        self.assertEqual(self.cursors(unregistered), [])
        self.assertEqual(self.cursors(replaying), [])
        self.assertEqual(len([p for p in prepared if b'"cursor"' in p]), 1, prepared)

    def test_onlyWhenAsked(self):
        """
        A client that sends exactly the guide's register gets no cursor messages; one that
        resumes, or asks with cursor_updates, gets them; cursor_updates false (also beside
        resume_after) turns them off, and a later register without the field keeps the choice.
        """
        b = self.make()
        guide, g = self.connect(b, "guide")
        register(b, g, {"types": ["mint"], "account_ids": [], "asset_codes": [], "min_amount": ""})
        asked, a = self.connect(b, "asked")
        register(b, a, {"types": ["mint"]}, cursor_updates=True)
        declined, d = self.connect(b, "declined")
        register(b, d, {"types": ["mint"]}, resume_after=eventId(0), cursor_updates=False)
        self.feed(b, range(1, 3))
        resumed, r = self.connect(b, "resumed")
        register(b, r, {"types": ["mint"]}, resume_after=eventId(0))
        self.clock.advance(0)
        self.clock.advance(30)
        self.assertEqual(self.cursors(guide), [])
        self.assertEqual(self.cursors(asked), [eventId(2)])
        self.assertEqual(self.cursors(declined), [])
        self.assertEqual(self.cursors(resumed), [eventId(2)])
        self.assertEqual(set(guide.types()), {"welcome", "registered"})
        # re-registering without the field keeps each choice; false turns them off
        register(b, r, {"types": ["burn"]})
        register(b, a, {"types": ["burn"]}, cursor_updates=False)
        self.feed(b, [3])
        self.clock.advance(30)
        self.assertEqual(self.cursors(resumed), [eventId(2), eventId(3)])
        self.assertEqual(self.cursors(asked), [eventId(2)])

    def test_badCursorUpdates(self):
        """
        cursor_updates must be a boolean: anything else is an error naming the field.
        """
        b = self.make()
        conn, client = self.connect(b)
        for bad in ("yes", 1, [], {}):
            register(b, client, {}, cursor_updates=bad)
        errors = [m for m in conn.messages() if m["type"] == "error"]
        self.assertEqual([e["error"] for e in errors], ["invalid_field_type"] * 4)
        self.assertEqual({e["field"] for e in errors}, {"cursor_updates"})
        self.assertFalse(client.registered)

    def test_stoppedAtShutdown(self):
        b = self.make()
        conn, client = self.connect(b)
        register(b, client)
        b.shutdown(5)
        b.disconnected(client)
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ConsumerTests(SynchronousTestCase):
    def test_configKeys(self):
        config, problems = SaveToWebSocket.configSchema.validate(
            {"history_size": 50, "history_ledgers": 3, "max_replay": 70, "cursor_interval": 0}
        )
        self.assertEqual(list(problems), [])
        consumer = SaveToWebSocket(Clock(), **config)
        hub = consumer.hub
        self.assertEqual((hub.history.size, hub.history.ledgers, hub.replayer.maxReplay, hub.cursors.interval), (50, 3, 70, 0))
        for bad in ({"history_size": -1}, {"max_replay": 0}, {"cursor_interval": -1}, {"history_ledgers": "x"}):
            _, problems = SaveToWebSocket.configSchema.validate(bad)
            self.assertTrue(list(problems), bad)

    def test_consumePassesCursor(self):
        """
        consume() hands the batch cursor on: an empty batch moves the position.
        """
        consumer = SaveToWebSocket(Clock())
        consumer.consume(Batch(items=[], messages=[], cursor=pos(7)))
        self.assertEqual(consumer.hub.position, pos(7))

    def test_historyFromConstructor(self):
        store = FakeStore()
        consumer = SaveToWebSocket(Clock(), history=store)
        self.assertIs(consumer.hub.replayer.store, store)
