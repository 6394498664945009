"""
End-to-end resume tests over 127.0.0.1: the daemon (RPCSourceAdapter -> GetEventsRPC ->
SaveToWebSocket, with SaveToPostgreSQL for the database cases) follows the RPC test server,
whose ledgers close steadily; Autobahn clients drop, come back a few seconds later with
``resume_after`` and must have missed nothing and seen nothing twice.  Every wait is bounded.

The database cases use the real PostgreSQL test server (skipped without it, failed under
``CI=true``; see L{stellarflow.postgres.testing}).
"""

import json

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from stellarflow.config import parse
from stellarflow.daemon import Daemon
from stellarflow.positions import after, ledgerEnd, ledgerOf
from stellarflow.postgres.testing import TemporarySchema, sleep, testDSN
from stellarflow.testing.rpcserver import StellarRPCResource, serve
from stellarflow.websocket.filters import parseFilters
from stellarflow.websocket.matching import eventKeys, matches
from tests.test_websocket_e2e import Client, cancelAutobahnTimers, dropClient, registeredClient, until

FIRST_LEDGER = 9000
TIMEOUT = 20

CONFIG = """
state_dir: {state}
pipelines:
  main:
    source:
      type: RPCSourceAdapter
      config:
        rpc_url: http://127.0.0.1:{rpc}
        network: testnet
        poll_interval: 0.05
        pagination: {{limit: 500}}
    processors: [{{type: GetEventsRPC}}]
    consumers:
      - type: SaveToWebSocket
        config:
          host: 127.0.0.1
          port: 0
          history_size: {history}
          max_replay: {max_replay}
{database}
"""

DATABASE = """
      - type: SaveToPostgreSQL
        config:
          dsn: "{dsn}"
          schema: {schema}
          flush_interval: 0.05
"""


class ResumeE2EMixin:
    timeout = 90

    @defer.inlineCallbacks
    def startRPC(self, eventsPerLedger=4, ledgersPerTick=1, interval=0.05):
        """
        The RPC test server, a ledger closing every C{interval} seconds (L{stopLedgers} stops).
        """
        self.rpc = StellarRPCResource(
            task.Clock(), seed=5, events_per_ledger=eventsPerLedger, first_ledger=FIRST_LEDGER, history=20
        )
        self.rpcPort = yield serve(0, self.rpc, reactor=reactor)
        self.addCleanup(self.rpc.stopServing)
        self.ledgers = task.LoopingCall(self.rpc.advanceLedgers, ledgersPerTick)
        self.ledgers.start(interval, now=False)
        self.addCleanup(self.stopLedgers)

    def stopLedgers(self):
        if self.ledgers.running:
            self.ledgers.stop()

    @defer.inlineCallbacks
    def startDaemon(self, history=10000, max_replay=100000, database=None):
        if not hasattr(self, "state"):
            self.state = self.mktemp()
        text = CONFIG.format(
            state=self.state,
            rpc=self.rpcPort,
            history=history,
            max_replay=max_replay,
            database=DATABASE.format(dsn=testDSN(), schema=database.name) if database else "",
        )
        self.daemon = Daemon(parse(text, "resume.yaml", {}), reactor)
        self.daemon.startService()
        # cleanups run last first: the daemon closes its clients before the timers go
        self.addCleanup(cancelAutobahnTimers)
        self.addCleanup(self.stopDaemon, self.daemon)
        pipeline = self.daemon.pipelines[0]
        self.ws = pipeline.consumers[0][1]
        yield until(lambda: self.ws.listeningPort is not None, TIMEOUT)
        self.port = self.ws.listeningPort.getHost().port
        self.hub = self.ws.hub

    def stopDaemon(self, daemon):
        if daemon.running:
            return daemon.stopService()

    def connect(self, filters=None, resume_after=None, protocol=Client):
        """
        A client that has registered (its ``registered`` reply, or its error, arrived).
        """
        return registeredClient(self, self.port, filters, resume_after, protocol)

    def drop(self, client):
        return dropClient(client)

    def registered(self, client):
        return [m for m in client.received if m["type"] == "registered"][-1]

    @defer.inlineCallbacks
    def settle(self, *clients):
        """
        Stop closing ledgers, wait until the daemon has streamed the last one and no replay
        runs, then until each client has received everything sent to it.
        """
        self.stopLedgers()
        end = ledgerEnd(self.rpc.ledgers.latest)
        yield until(
            lambda: (self.hub.position or "") >= end and not self.hub.replayer.replaying, TIMEOUT
        )
        for client in clients:
            yield client.barrier(TIMEOUT)


class ResumeFromMemoryTests(ResumeE2EMixin, TestCase):
    @defer.inlineCallbacks
    def test_dropAndResume(self):
        """
        A client drops mid-stream and reconnects two seconds later with resume_after: what it
        received over both connections is exactly, in order, what an always-connected client
        with the same filters received.  Its second connection uses other filters: from there
        on it gets what a client with those filters gets.
        """
        yield self.startRPC()
        yield self.startDaemon()
        xlm, usdc = {"asset_codes": ["XLM"]}, {"asset_codes": ["USDC"], "types": ["transfer"]}
        alwaysXlm = yield self.connect(xlm)
        alwaysUsdc = yield self.connect(usdc)
        first = yield self.connect(xlm)
        yield first.waitFor(lambda c: len(c.events()) >= 15, TIMEOUT)
        yield self.drop(first)
        resumeAfter = first.events()[-1]
        yield sleep(reactor, 2)
        second = yield self.connect(xlm, resume_after=resumeAfter)
        third = yield self.connect(usdc, resume_after=resumeAfter)
        for client in (second, third):
            reply = self.registered(client)
            self.assertEqual((reply["resumed"], reply["resume_after"]), (True, resumeAfter))
        yield sleep(reactor, 1)
        yield self.settle(alwaysXlm, alwaysUsdc, second, third)

        reference = alwaysXlm.events()
        start = reference.index(first.events()[0])
        self.assertEqual(first.events() + second.events(), reference[start:])
        self.assertGreater(len(second.events()), 40)
        usdcReference = alwaysUsdc.events()
        self.assertEqual(third.events(), [i for i in usdcReference if i > resumeAfter])
        self.assertTrue(third.events())
        self.assertEqual(self.hub.replayer.started, 2)

    @defer.inlineCallbacks
    def test_gapBeyondWindow(self):
        """
        Without a database, a position older than the window gets resumed false and the exact
        gap: the ids up to ``to`` are what the window no longer holds, and the replay continues
        with the event right after it.
        """
        yield self.startRPC(eventsPerLedger=6)
        yield self.startDaemon(history=40)
        everything = yield self.connect()
        first = yield self.connect()
        yield first.waitFor(lambda c: len(c.events()) >= 5, TIMEOUT)
        yield self.drop(first)
        resumeAfter = first.events()[-1]
        yield everything.waitFor(lambda c: resumeAfter in c.events()[-200:-100], TIMEOUT)
        second = yield self.connect(resume_after=resumeAfter)
        reply = self.registered(second)
        self.assertIs(reply["resumed"], False)
        gap = reply["gap"]
        yield self.settle(everything, second)
        ids = everything.events()
        self.assertEqual(gap["from_after"], resumeAfter)
        self.assertIn(gap["to"], ids)
        self.assertGreater(ids.index(gap["to"]), ids.index(resumeAfter))
        self.assertEqual(gap["ledgers"], [ledgerOf(after(resumeAfter)), ledgerOf(gap["to"])])
        self.assertEqual(second.events(), ids[ids.index(gap["to"]) + 1 :])

    @defer.inlineCallbacks
    def test_errors(self):
        """
        Malformed and ahead positions, and a replay over max_replay, get an error over the
        socket and the connection stays open for a good register.
        """
        yield self.startRPC()
        yield self.startDaemon(max_replay=30)
        watcher = yield self.connect()
        yield watcher.waitFor(lambda c: len(c.events()) >= 60, TIMEOUT)
        client = yield self.connect(resume_after="yesterday")
        self.assertEqual(client.errors(), ["invalid_resume_after"])
        client.send({"type": "register", "filters": {}, "resume_after": "%019d-%010d" % (2**62, 0)})
        yield client.waitFor(lambda c: len(c.errors()) == 2, TIMEOUT)
        self.assertEqual(client.errors()[-1], "resume_after_ahead")
        client.send({"type": "register", "filters": {}, "resume_after": watcher.events()[0]})
        yield client.waitFor(lambda c: len(c.errors()) == 3, TIMEOUT)
        self.assertEqual(client.errors()[-1], "replay_too_large")
        self.assertIn("max_replay (30)", client.received[-1]["message"])
        position = watcher.events()[-10]
        client.send({"type": "register", "filters": {}, "resume_after": position})
        yield client.waitFor(lambda c: "registered" in c.types(), TIMEOUT)
        self.assertIsNone(client.closedWith)
        yield self.settle(watcher, client)
        ids = watcher.events()
        self.assertEqual(client.events(), ids[ids.index(position) + 1 :])

    @defer.inlineCallbacks
    def test_manyResumingWhileOthersLive(self):
        """
        Twenty clients replay ~3000 events each while ten live clients keep receiving: every
        batch the pipeline hands over while replays are under way is written to every live
        client's connection within that C{consume} call (nothing is held back for them behind
        the replays), and in the end every client has exactly the stream, in order.

        The replays are first slowed to a trickle (a turn budget of one work unit) until three
        batches have been consumed while they run, so that live traffic and replays overlap on
        any machine; then they go at full speed while the stream goes on.
        """
        yield self.startRPC(eventsPerLedger=25, ledgersPerTick=1, interval=0.1)
        yield self.startDaemon(history=20000)
        hub, replayer = self.hub, self.hub.replayer
        streamed = {}
        duringReplays = []
        heldBack = []
        written = {}  # live session -> frames written to its connection
        consume = self.ws.consume

        def checkedConsume(batch):
            replaying = replayer.replaying
            for m in batch.messages:
                streamed[m["id"]] = None
            before = dict(written)
            d = consume(batch)
            # no filters anywhere: each live client got each event of the batch, in this call
            late = [written[s] - before[s] for s in written if written[s] - before[s] != len(batch.messages)]
            if late:
                heldBack.append((len(batch.messages), late))
            if replaying and batch.messages:
                duringReplays.append(len(batch.messages))
            return d

        def countWrites(session):
            connection = session.connection
            send, sendMany = connection.send, connection.sendMany

            def counted(frame):
                written[session] += 1
                return send(frame)

            def countedMany(frames):
                written[session] += len(frames)
                return sendMany(frames)

            connection.send, connection.sendMany = counted, countedMany
            written[session] = 0

        self.ws.consume = checkedConsume
        yield until(lambda: hub.position is not None, TIMEOUT)  # the source runs
        self.rpc.advanceLedgers(120)
        yield until(lambda: len(hub.history) >= 2800, TIMEOUT)
        oldest = hub.history.at(hub.history.first).id
        lives = []
        for _ in range(10):
            lives.append((yield self.connect()))
        for session in hub.broadcaster.index:
            countWrites(session)
        self.assertEqual(len(written), 10)
        budget, replayer.turnBudget = replayer.turnBudget, 1
        resumers = yield defer.gatherResults([self.connect(resume_after=oldest) for _ in range(20)])
        for client in resumers:
            self.assertIs(self.registered(client)["resumed"], True)
        yield until(lambda: len(duringReplays) >= 3, TIMEOUT)
        self.assertEqual(replayer.replaying, 20)
        replayer.turnBudget = budget
        yield until(lambda: not replayer.replaying, TIMEOUT)
        yield self.settle(*(lives + resumers))

        self.assertEqual(heldBack, [])
        self.assertGreaterEqual(len(duringReplays), 3)
        streamed = sorted(streamed)
        for client in lives:
            ids = client.events()
            start = streamed.index(ids[0])
            self.assertEqual(ids, streamed[start:])
        expected = streamed[streamed.index(oldest) + 1 :]
        self.assertGreater(len(expected), 2800)
        for client in resumers:
            self.assertEqual(client.events(), expected)


class ResumeFromDatabaseTests(ResumeE2EMixin, TestCase):
    @defer.inlineCallbacks
    def test_resumeAcrossRestart(self):
        """
        The daemon (pipeline and consumers) restarts while the client is away: its memory is
        empty, the events it missed come from PostgreSQL, and what it received over both
        connections is exactly, in order, what the database holds for its filters.
        """
        db = TemporarySchema(self)
        yield self.startRPC()
        yield self.startDaemon(database=db)
        filters = {"types": ["transfer", "fee"]}
        first = yield self.connect(filters)
        yield first.waitFor(lambda c: len(c.events()) >= 15, TIMEOUT)
        yield self.drop(first)
        resumeAfter = first.events()[-1]
        yield sleep(reactor, 1)
        # The database holds what the client saw (a slow first connection makes it catch up).
        database = self.daemon.pipelines[0].members[1]
        yield until(lambda: (database.position or "") >= resumeAfter, TIMEOUT)
        yield self.daemon.stopService()
        yield sleep(reactor, 1)
        yield self.startDaemon(database=db)
        self.assertEqual(len(self.hub.history or ()), 0)
        second = yield self.connect(filters, resume_after=resumeAfter)
        reply = self.registered(second)
        self.assertEqual((reply["resumed"], reply["resume_after"]), (True, resumeAfter))
        floor = self.hub.history.floor
        self.assertGreater(floor, resumeAfter)
        yield sleep(reactor, 1)
        yield self.settle(second)
        # The database has stored everything streamed (it may have been catching up on its own).
        database = self.daemon.pipelines[0].members[1]
        yield until(
            lambda: database.state == "attached"
            and not len(database.lane)
            and (database.position or "") >= self.hub.position,
            TIMEOUT,
        )

        rows = db.query("SELECT message FROM {schema}.stellar_events WHERE id >= %s ORDER BY id", (first.events()[0],))
        wanted = parseFilters(filters)
        expected = [m["id"] for m in (json.loads(r[0]) for r in rows) if matches(wanted, eventKeys(m))]
        received = first.events() + second.events()
        self.assertEqual(received, expected)
        self.assertEqual(len(received), len(set(received)))
        self.assertGreater(len(second.events()), 20)
        # the database was read: the first events replayed came before the new window
        self.assertLessEqual(second.events()[0], floor)

    @defer.inlineCallbacks
    def test_olderThanWindowFromDatabase(self):
        """
        With a database, a position older than a small window is replayed from the database
        (resumed true), with no gap and no duplicate.
        """
        db = TemporarySchema(self)
        yield self.startRPC(eventsPerLedger=6)
        yield self.startDaemon(history=30, database=db)
        everything = yield self.connect()
        first = yield self.connect()
        yield first.waitFor(lambda c: len(c.events()) >= 5, TIMEOUT)
        yield self.drop(first)
        resumeAfter = first.events()[-1]
        yield everything.waitFor(lambda c: resumeAfter in c.events()[-300:-150], TIMEOUT)
        # The database holds the position (a slow first connection makes it catch up first).
        database = self.daemon.pipelines[0].members[1]
        yield until(lambda: (database.position or "") >= resumeAfter, TIMEOUT)
        second = yield self.connect(resume_after=resumeAfter)
        self.assertIs(self.registered(second)["resumed"], True)
        yield sleep(reactor, 0.5)
        yield self.settle(everything, second)
        ids = everything.events()
        self.assertEqual(second.events(), ids[ids.index(resumeAfter) + 1 :])
