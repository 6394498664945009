"""
Tests for the history endpoint against a real PostgreSQL: the SQL of each filter field agrees
with L{stellarflow.websocket.matching.matches} over many generated messages
(L{stellarflow.postgres.filtersql}); ``GET /events`` pages a range while events arrive, answers
bad parameters with 400 naming them and a slow query with 503; and its answers equal what a
WebSocket client with the same filter received.
"""

import json
import random
from decimal import Decimal

import treq
from hypothesis import given, settings
from hypothesis import strategies as st
from stellar_sdk import Keypair, MuxedAccount, StrKey
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, maybeDeferred, succeed
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface.verify import verifyObject

from stellarflow import positions
from stellarflow.batch import Batch
from stellarflow.interfaces import IEventQuery
from stellarflow.message import seal
from stellarflow.postgres.endpoint import EventsResource
from stellarflow.postgres.query import EventQuery
from stellarflow.postgres.testing import TemporarySchema, connect
from stellarflow.websocket.filters import parseFilters
from stellarflow.websocket.matching import eventKeys, matches
from tests import test_websocket_e2e as e2e

ACCOUNTS = [Keypair.from_raw_ed25519_seed(bytes([i + 7]) * 32).public_key for i in range(4)]
MUXED = MuxedAccount(ACCOUNTS[0], 77).account_muxed
CONTRACTS = ["CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA", "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"]
ISSUERS = ACCOUNTS[2:]
POOLS = ["04" * 32, "5c" * 32]  # liquidity pool ids as trades carry them (hex)
ADDRESSES = ACCOUNTS + [MUXED] + CONTRACTS + [StrKey.encode_liquidity_pool(bytes.fromhex(POOLS[0]))]
#: The message types of a whole-ledger pipeline.
LEDGER_TYPES = frozenset(["payment", "trade", "contract_event"])
ASSETS = [("XLM", None), ("USDC", ISSUERS[0]), ("USDC", ISSUERS[1]), ("XLM", ISSUERS[0]), ("EURC", ISSUERS[1])]
AMOUNTS = [None, "0", "0.5", "1", "1.0000000", "12.5", "100", "-3", "NaN", "1e2", "999999999999.9999999"]
TYPES = ["contract_event", "payment", "trade", "transfer", "mint", "burn", "fee", "approve", "clawback", "foo"]
FIRST_LEDGER = 500


def _party(rng):
    return rng.choice(ADDRESSES + [None, ""])


def generatedMessage(rng, n):
    """
    A message of any stored type with fields drawn from small pools, so that filters often hit.
    """
    ledger = FIRST_LEDGER + n // 4
    eventId = positions.eventId(ledger, 1 + n % 4, 0, n)
    closed = "2026-07-21T18:%02d:%02dZ" % (ledger // 60 % 60, ledger % 60)
    kind = rng.choice(["contract_event"] * 3 + ["payment", "trade"])
    code, issuer = rng.choice(ASSETS)
    if kind == "contract_event":
        message = {
            "type": "contract_event", "id": eventId, "ledger": ledger, "ledger_closed_at": closed,
            "transaction_hash": "%064x" % n, "contract_id": rng.choice(CONTRACTS + [None]), "operation_index": 0,
            "transaction_index": 1, "in_successful_contract_call": True, "event_kind": "contract",
            "topics": ["x", n], "data": {"n": n},
        }
        eventType = rng.choice([None, "transfer", "transfer", "mint", "burn", "fee", "approve", "clawback"])
        if eventType is not None:
            sender, receiver = _party(rng), _party(rng)
            message.update({
                "event_type": eventType, "from": sender, "to": receiver,
                "account_ids": [a for a in (sender, receiver, rng.choice(ADDRESSES)) if a],
                "asset_code": code, "asset_issuer": issuer, "amount": rng.choice(AMOUNTS),
                "amount_raw": "1", "asset_verified": rng.random() < 0.8, "to_muxed_id": None,
            })
    elif kind == "payment":
        message = {
            "type": "payment", "id": eventId, "ledger": ledger, "ledger_closed_at": closed,
            "transaction_hash": "%064x" % n, "transaction_index": 1, "operation_index": 0,
            "operation_type": "payment", "from": _party(rng), "to": _party(rng), "asset_code": code,
            "asset_issuer": issuer, "amount": rng.choice(AMOUNTS),
        }
        if rng.random() < 0.4:
            message.update({"contract_id": rng.choice(CONTRACTS), "event_type": rng.choice(["transfer", "mint", "burn"])})
        if rng.random() < 0.3:
            source = rng.choice(ASSETS)
            message.update({"source_asset_code": source[0], "source_asset_issuer": source[1],
                            "source_amount": rng.choice(AMOUNTS)})
    else:
        sold, bought = rng.choice(ASSETS), rng.choice(ASSETS)
        pool = rng.choice([None, None] + POOLS)
        message = {
            "type": "trade", "id": eventId, "ledger": ledger, "ledger_closed_at": closed,
            "transaction_hash": "%064x" % n, "transaction_index": 1, "operation_index": 0,
            "operation_type": "manage_sell_offer", "trade_type": "liquidity_pool" if pool else "orderbook",
            "seller": None if pool else rng.choice(ACCOUNTS), "liquidity_pool_id": pool,
            "offer_id": None if pool else str(n), "buyer": rng.choice(ACCOUNTS + [MUXED]),
            "buyer_offer_id": None, "sold_asset_code": sold[0], "sold_asset_issuer": sold[1],
            "sold_amount": rng.choice(AMOUNTS[1:6]), "bought_asset_code": bought[0],
            "bought_asset_issuer": bought[1], "bought_amount": rng.choice(AMOUNTS), "price": {"n": "1", "d": "3"},
        }
    return seal(message)


def generatedMessages(count=400, seed=15):
    rng = random.Random(seed)
    return [generatedMessage(rng, n) for n in range(count)]


filterValues = st.fixed_dictionaries(
    {},
    optional={
        "types": st.lists(st.sampled_from(TYPES), max_size=3),
        "account_ids": st.lists(st.sampled_from(ADDRESSES), max_size=3),
        "asset_codes": st.lists(st.sampled_from(["XLM", "native", "USDC", "EURC", "XLM:" + ISSUERS[0],
                                                 "USDC:" + ISSUERS[0], "EURC:" + ISSUERS[0]]), max_size=3),
        "min_amount": st.sampled_from(["", "0", "0.5", "1", "12.5", "100", "1000"]),
    },
)


class BlockingKeeper:
    """
    Runs an L{EventQuery}'s work on a blocking cursor at once (for hypothesis, which does not wait
    for Deferreds): the query's C{inlineCallbacks} see each result at once.
    """

    def __init__(self, conn):
        self.conn = conn

    def whenReady(self, failAfterFailures=None):
        return succeed(None)

    def run(self, work, *args):
        with self.conn.cursor() as cursor:
            return maybeDeferred(work, cursor, *args)

    def stop(self):
        pass


class StoreTestCase(TestCase):
    timeout = 60
    #: The message types of the pipeline the store is on (C{None}: not known, as getEvents).
    producedTypes = None

    def setUp(self):
        self.db = TemporarySchema(self)
        self.consumer = self.db.consumer(reactor, pipeline="main", batch_size=100, produced_types=self.producedTypes)
        self.addCleanup(self.consumer.stop)
        self.consumer.start()
        return self.consumer.load("main")

    @inlineCallbacks
    def store(self, messages, page=50):
        for start in range(0, len(messages), page):
            chunk = messages[start : start + page]
            yield self.consumer.consume(Batch(items=[], messages=chunk, cursor=chunk[-1]["id"]))


class FilterSQLTests(StoreTestCase):
    """
    Each filter, as SQL over the stored messages, selects exactly the messages
    C{matching.matches} passes.
    """

    def setUp(self):
        d = StoreTestCase.setUp(self)
        self.messages = generatedMessages()
        d.addCallback(lambda _: self.store(self.messages))

        def ready(_):
            self.conn = connect()
            self.addCleanup(self.conn.close)
            self.query = EventQuery(
                reactor, "", self.consumer.names, "main", maxLimit=10000, keeper=BlockingKeeper(self.conn)
            )

        return d.addCallback(ready)

    def select(self, filters, **page):
        box = []
        self.query.page(filters, limit=10000, **page).addBoth(box.append)
        if hasattr(box[0], "raiseException"):
            box[0].raiseException()
        return box[0]

    def test_interface(self):
        verifyObject(IEventQuery, self.consumer.eventQuery())

    def test_noFilterEverything(self):
        page = self.select(parseFilters({}))
        self.assertEqual([i for i, _ in page.events], [m["id"] for m in self.messages])
        self.assertEqual([p for _, p in page.events], [m.json for m in self.messages])
        self.assertIsNone(page.next)
        self.assertEqual(page.stored_through, self.messages[-1]["id"])

    @settings(max_examples=300, deadline=None)
    @given(filterValues, st.sampled_from([None, LEDGER_TYPES]))
    def test_sqlEqualsMatches(self, values, produced):
        """
        On a getEvents pipeline (C{payment} also means two-party transfers) and on a
        whole-ledger one (only payment messages).
        """
        self.query.producedTypes = produced
        filters = parseFilters(values)
        expected = [m["id"] for m in self.messages if matches(filters.forPipeline(produced), eventKeys(m))]
        self.assertEqual([i for i, _ in self.select(filters).events], expected, values)

    def test_paymentsAndTradesBySide(self):
        """
        Pinned cases of the side rules: an asset on either side of a path payment or a trade,
        with C{min_amount} on the amount of the side that matched; a pool by its C{L...}.
        """
        self.query.producedTypes = LEDGER_TYPES
        cases = [
            {"types": ["payment"], "asset_codes": ["USDC"], "min_amount": "12.5"},
            {"types": ["trade"], "asset_codes": ["XLM"], "min_amount": "1"},
            {"types": ["trade"], "min_amount": "100"},
            {"types": ["payment"], "min_amount": "100"},
            {"account_ids": [ADDRESSES[-1]]},
            {"types": ["payment", "trade"], "asset_codes": ["XLM:" + ISSUERS[0], "EURC"], "min_amount": "0.5"},
        ]
        for values in cases:
            filters = parseFilters(values)
            expected = [m["id"] for m in self.messages if matches(filters.forPipeline(LEDGER_TYPES), eventKeys(m))]
            self.assertGreater(len(expected), 0, values)
            self.assertEqual([i for i, _ in self.select(filters).events], expected, values)

    @settings(max_examples=60, deadline=None)
    @given(filterValues, st.integers(FIRST_LEDGER, FIRST_LEDGER + 100), st.integers(0, 30))
    def test_ledgerRange(self, values, first, length):
        filters = parseFilters(values)
        last = first + length
        expected = [
            m["id"] for m in self.messages if first <= m["ledger"] <= last and matches(filters, eventKeys(m))
        ]
        page = self.select(filters, fromLedger=first, toLedger=last)
        self.assertEqual([i for i, _ in page.events], expected)


class HTTPTestCase(StoreTestCase):
    def setUp(self):
        d = StoreTestCase.setUp(self)
        root = Resource()
        root.putChild(b"events", EventsResource({"main": self.consumer.eventQuery()}))
        site = Site(root)
        site.noisy = False
        self.listening = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.listening.stopListening)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.eventsURL = "http://127.0.0.1:%d/events" % self.listening.getHost().port
        return d

    @inlineCallbacks
    def get(self, params=()):
        response = yield treq.get(self.eventsURL, params=list(params), pool=self.pool)
        body = yield treq.content(response)
        return response.code, json.loads(body), body


class EndpointTests(HTTPTestCase):
    @inlineCallbacks
    def test_pagingWhileEventsArrive(self):
        """
        A client pages a ledger range with a small limit while more events of that range are
        written: it ends with every matching event of the range, in order, each once.
        """
        messages = generatedMessages(240, seed=3)
        first, last = FIRST_LEDGER + 5, FIRST_LEDGER + 50
        yield self.store(messages[:100])
        params = [("account_ids", ACCOUNTS[0]), ("account_ids", CONTRACTS[0]), ("from_ledger", str(first)),
                  ("to_ledger", str(last)), ("limit", "7")]
        received, after, pages = [], None, 0
        while True:
            code, answer, body = yield self.get(params + ([("after", after)] if after else []))
            self.assertEqual(code, 200, answer)
            received.extend(answer["events"])
            pages += 1
            if pages == 2:
                yield self.store(messages[100:])
            if answer["next"] is None:
                break
            after = answer["next"]
        filters = parseFilters({"account_ids": [ACCOUNTS[0], CONTRACTS[0]]})
        expected = [m for m in messages if first <= m["ledger"] <= last and matches(filters, eventKeys(m))]
        self.assertGreater(len(expected), 14)
        self.assertEqual([e["id"] for e in received], [m["id"] for m in expected])
        self.assertEqual(received, [json.loads(m.json) for m in expected])
        self.assertEqual(answer["stored_through"], messages[-1]["id"])

    @inlineCallbacks
    def test_exactBytes(self):
        messages = generatedMessages(20, seed=4)
        yield self.store(messages)
        code, answer, body = yield self.get([("limit", "5")])
        self.assertEqual(code, 200)
        self.assertEqual(body.count(b",".join(m.json for m in messages[:5])), 1)
        self.assertEqual(answer["next"], messages[4]["id"])
        self.assertEqual(answer["pipeline"], "main")

    @inlineCallbacks
    def test_timeRange(self):
        messages = generatedMessages(80, seed=5)
        yield self.store(messages)
        since, until = "2026-07-21T18:08:25Z", "2026-07-21T18:08:30Z"
        code, answer, _ = yield self.get([("since", since), ("until", until)])
        self.assertEqual(code, 200, answer)
        expected = [m["id"] for m in messages if since <= m["ledger_closed_at"] < until]
        self.assertTrue(expected)
        self.assertEqual([e["id"] for e in answer["events"]], expected)

    @inlineCallbacks
    def test_badParameters(self):
        """
        A bad parameter gets 400 with a JSON error naming it; a filter error reads as the
        WebSocket's.
        """
        cases = [
            ([("account_ids", "GNOPE")], "account_ids", "invalid_account_id"),
            ([("asset_codes", "US DC")], "asset_codes", "invalid_asset_code"),
            ([("min_amount", "-1")], "min_amount", "invalid_min_amount"),
            ([("after", "12")], "after", "invalid_after"),
            ([("limit", "0")], "limit", "invalid_limit"),
            ([("limit", "100000")], "limit", "invalid_limit"),
            ([("from_ledger", "9"), ("to_ledger", "8")], "to_ledger", "invalid_range"),
            ([("since", "yesterday")], "since", "invalid_since"),
            ([("accounts", "G")], "accounts", "unknown_parameter"),
            ([("pipeline", "other")], "pipeline", "unknown_pipeline"),
            ([("limit", "1"), ("limit", "2")], "limit", "repeated_parameter"),
        ]
        for params, parameter, errorCode in cases:
            code, answer, _ = yield self.get(params)
            self.assertEqual(code, 400, params)
            self.assertEqual((answer["error"]["parameter"], answer["error"]["code"]), (parameter, errorCode))
        _, answer, _ = yield self.get([("account_ids", "GNOPE")])
        try:
            parseFilters({"account_ids": ["GNOPE"]})
        except ValueError as e:
            self.assertEqual(answer["error"]["message"], e.message)

    @inlineCallbacks
    def test_statementTimeout(self):
        """
        A query that cannot finish within the statement timeout (here: it waits for a lock) is
        cancelled by the server: 503, and the endpoint answers again afterwards.
        """
        self.consumer.historyStatementTimeout = 0.2
        self.consumer._query = None
        resource = EventsResource({"main": self.consumer.eventQuery()})
        self.listening.factory.resource.putChild(b"events", resource)
        yield self.store(generatedMessages(10))
        locker = connect()
        self.addCleanup(locker.close)
        locker.autocommit = False
        with locker.cursor() as cursor:
            cursor.execute('LOCK TABLE "{}".stellar_events IN ACCESS EXCLUSIVE MODE'.format(self.db.name))
        code, answer, _ = yield self.get()
        self.assertEqual((code, answer["error"]["code"]), (503, "query_timeout"), answer)
        locker.rollback()
        code, answer, _ = yield self.get()
        self.assertEqual(code, 200)
        self.assertEqual(len(answer["events"]), 10)


class WebSocketEqualityTests(HTTPTestCase, e2e.E2EMixin):
    """
    What a WebSocket client registered with a filter received equals ``GET /events`` with the
    same filter over the same range.
    """

    filters = {"types": ["transfer", "payment"], "account_ids": [MUXED, CONTRACTS[1]], "min_amount": "0.5"}

    @inlineCallbacks
    def test_sameAsWebSocketClient(self):
        yield self.startServer(produced_types=self.producedTypes)
        filters = self.filters
        client = yield self.connect()
        client.send({"type": "register", "filters": filters})
        yield client.waitFor(lambda c: "registered" in c.types())
        messages = generatedMessages(300, seed=8)
        for start in range(0, len(messages), 30):
            chunk = messages[start : start + 30]
            batch = Batch(items=[], messages=chunk, cursor=chunk[-1]["id"])
            yield self.consumer.consume(batch)
            yield self.pgConsumer.consume(batch)
        yield client.barrier()
        live = [m for m in client.received if m["type"] not in ("welcome", "registered", "error")]
        self.assertGreater(len(live), 10)
        params = [(name, value) for name, values in filters.items() for value in ([values] if isinstance(values, str) else values)]
        params += [("from_ledger", str(FIRST_LEDGER)), ("to_ledger", str(messages[-1]["ledger"])), ("limit", "1000")]
        code, answer, _ = yield self.get(params)
        self.assertEqual(code, 200, answer)
        self.assertEqual(answer["events"], live)
        client.transport.loseConnection()

    def setUp(self):
        d = HTTPTestCase.setUp(self)

        def keep(_):
            self.pgConsumer = self.consumer  # E2EMixin's startServer takes self.consumer

        return d.addCallback(keep)


class WholeLedgerWebSocketEqualityTests(WebSocketEqualityTests):
    """
    The same on a whole-ledger pipeline: C{payment} is payment messages only, and assets and
    C{min_amount} apply side by side to payments and trades.
    """

    producedTypes = LEDGER_TYPES
    filters = {"types": ["payment", "trade"], "asset_codes": ["USDC", "XLM"], "min_amount": "1"}


class MixedWebSocketEqualityTests(WebSocketEqualityTests):
    """
    And with an account filter (a pool among them) on every type, on a whole-ledger pipeline.
    """

    producedTypes = LEDGER_TYPES
    filters = {"account_ids": [MUXED, ADDRESSES[-1]], "min_amount": "0.5"}


class BackfillExampleTests(HTTPTestCase):
    """
    examples/clients/python/backfill.py pages GET /events (in a thread: it is a blocking
    script) and ends with the id to resume the WebSocket with.
    """

    @inlineCallbacks
    def test_backfill(self):
        import importlib.util
        import os

        from twisted.internet import threads

        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "clients",
                            "python", "backfill.py")
        spec = importlib.util.spec_from_file_location("backfill_example", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        messages = generatedMessages(120, seed=9)
        yield self.store(messages)
        lines = []
        filters = {"account_ids": [ACCOUNTS[1]], "types": []}
        last = yield threads.deferToThread(
            module.backfill, self.eventsURL, messages[9]["id"], filters, None, 4, lines.append
        )
        parsed = parseFilters(filters)
        expected = [m for m in messages[10:] if matches(parsed, eventKeys(m))]
        self.assertEqual(lines, [m.json.decode() for m in expected])
        self.assertEqual(last, expected[-1]["id"])


def docQuery(heading):
    """
    The SQL block that follows the paragraph starting with C{heading} in docs/postgresql.md.
    """
    import os

    from tests.helpers import REPO

    with open(os.path.join(REPO, "docs", "postgresql.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n" + heading)
    block = text.index("```sql\n", start) + len("```sql\n")
    return text[block:text.index("```", block)]


class DocsQueriesTests(StoreTestCase):
    """
    The example queries of docs/postgresql.md for payments and trades, run on the pubnet ledger
    53312000 as a whole-ledger pipeline stores it, give what L{stellarflow.meta} extracted.
    """

    producedTypes = LEDGER_TYPES

    def setUp(self):
        from stellarflow.events.network import PUBLIC
        from stellarflow.meta import ledgerMessages
        from stellarflow.testing.ledgerfiles import fixtureLedgers

        d = StoreTestCase.setUp(self)
        (lcm,) = fixtureLedgers("galexie-pubnet-53312000.xdr.zstd")
        self.messages = [seal(m) for m in ledgerMessages(lcm, PUBLIC)]
        return d.addCallback(lambda _: self.store(self.messages))

    def runDocQuery(self, heading):
        sql = docQuery(heading)
        names = self.consumer.names
        sql = sql.replace("stellar_events_payments", names.payments).replace("stellar_events_trades", names.trades)
        return self.db.query(sql)

    def test_paymentsOfAnAccount(self):
        account = "GABIOWBZG6IXN7ASBBCDPJ2KK5OWQ76UDV3PN4WPQT5MUCFCUQR4JZLE"
        rows = self.runDocQuery("Payments of an account")
        expected = [m for m in self.messages if m["type"] == "payment" and account in (m["from"], m["to"])][::-1]
        self.assertEqual(len(rows), len(expected))
        self.assertGreater(len(rows), 0)
        self.assertEqual([(r[1], r[2], str(r[4]), r[5]) for r in rows],
                         [(m["operation_type"], m["from"], m["amount"], m["asset_code"]) for m in expected])

    def test_usdcXlmTrades(self):
        usdc = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
        rows = self.runDocQuery("USDC/XLM trades in a time range")

        def side(m, prefix):
            return (m[prefix + "asset_code"], m[prefix + "asset_issuer"])

        expected = [m for m in self.messages if m["type"] == "trade"
                    and {side(m, "sold_"), side(m, "bought_")} == {("USDC", usdc), ("XLM", None)}]
        self.assertEqual(len(expected), 6)
        self.assertEqual(len(rows), len(expected))
        for row, m in zip(rows, expected):
            usdcAmount, xlmAmount = ((m["sold_amount"], m["bought_amount"]) if m["sold_asset_code"] == "USDC"
                                     else (m["bought_amount"], m["sold_amount"]))
            self.assertEqual((str(row[5]), str(row[6])), (usdcAmount, xlmAmount))
            # PostgreSQL divides numerics to 16 decimals or so
            self.assertLess(abs(row[7] - Decimal(xlmAmount) / Decimal(usdcAmount)), Decimal("1e-12"))
