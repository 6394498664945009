"""
Smoke tests of the benchmark suite (benchmarks/): each benchmark runs at tiny sizes against the
real daemon code and its load-generator processes, and must return a well-formed result that
the suite can tabulate.  No timing is asserted: benchmarks are not tests.

The helpers the figures depend on (the load generator's frame counting, percentiles, the
latency analysis, the strkeys of the benchmark accounts) are checked exactly.
"""

import json
import os
import tempfile
from array import array

from stellar_sdk import StrKey
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from benchmarks import fanout, history, ingest, latency, memory, postgres, run
from benchmarks.children import spawnCommand
from benchmarks.clients import compiledClient
from benchmarks.common import account, median, percentile, summarise, transferMessage
from benchmarks.wsclient import Conn, Fleet, masked, readDump
from stellarflow.compat.autobahn import cancelBatchedTimers


def serverFrame(payload, opcode=0x1):
    """An unmasked frame, as the server sends."""
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return header + payload


class FakeSocket:
    def __init__(self):
        self.sent = []

    def fileno(self):
        return -1

    def sendall(self, data):
        self.sent.append(data)


def fleet():
    class Args:
        first = 0
        timestamps = True
        filters = "all"

    f = Fleet.__new__(Fleet)
    f.args = Args()
    f.closed = 0
    f.closeCodes = {}
    f.lastFrame = 0.0
    return f


class FrameCountingTests(SynchronousTestCase):
    """
    The load generator counts server frames from their headers alone, across any split.
    """

    def stream(self):
        payloads = [b"x" * 10, b"y" * 125, b"z" * 126, b"w" * 70000, b'{"id":"%019d-%010d"}' % (5, 1)]
        data = b"".join(serverFrame(p) for p in payloads)
        data += serverFrame(b"ping", 0x9) + serverFrame(b"t" * 300)
        return data, len(payloads) + 1

    def test_wholeStream(self):
        data, texts = self.stream()
        f = fleet()
        conn = Conn(FakeSocket(), 0)
        conn.times = array("d")
        f.scan(conn, data, 1.0)
        self.assertEqual((conn.texts, list(conn.times)), (texts, [1.0] * texts))
        self.assertEqual(conn.sock.sent and len(conn.sock.sent), 1)  # the ping was answered

    def test_everySplit(self):
        """Cut in two at every offset (headers and payloads split), the count is the same."""
        data, texts = self.stream()
        for cut in list(range(0, 40)) + list(range(70000, 70200, 7)) + [len(data) - 3]:
            f = fleet()
            conn = Conn(FakeSocket(), 0)
            f.scan(conn, data[:cut], 1.0)
            f.scan(conn, data[cut:], 2.0)
            self.assertEqual((cut, conn.texts, conn.skip, conn.partial), (cut, texts, 0, b""))

    def test_byteByByte(self):
        data, texts = self.stream()
        f = fleet()
        conn = Conn(FakeSocket(), 0)
        for i in range(len(data)):
            f.scan(conn, data[i:i + 1], float(i))
        self.assertEqual(conn.texts, texts)

    def test_fullParseKeepsIds(self):
        """The client that keeps payloads extracts each event's id, across splits."""
        events = [json.dumps(transferMessage(n, account(n))).encode() for n in range(3)]
        data = serverFrame(b'{"type":"welcome"}') + b"".join(serverFrame(e) for e in events)
        f = fleet()
        conn = Conn(FakeSocket(), 0)
        conn.ids = []
        conn.times = array("d")
        for i in range(0, len(data), 100):
            f.parseFull(conn, data[i:i + 100], 1.0)
        self.assertEqual(conn.ids, ["%019d-%010d" % (n << 12, 0) for n in range(3)])
        self.assertEqual(conn.texts, 4)

    def test_closeFrameCode(self):
        f = fleet()
        f.sel = None
        conn = Conn(FakeSocket(), 0)
        conn.sock.close = lambda: None
        conn.state = "open"
        f.lost = lambda c: (setattr(c, "state", "closed"), f.closeCodes.update({str(c.closeCode): 1}))
        f.scan(conn, serverFrame((4029).to_bytes(2, "big") + b"message queue full", 0x8), 1.0)
        self.assertEqual((conn.closeCode, f.closeCodes), (4029, {"4029": 1}))

    def test_maskedFrame(self):
        """Client frames are masked, and unmask to the payload."""
        frame = masked(b"hello" * 30)
        self.assertEqual((frame[0], frame[1]), (0x81, 0x80 | 126))
        length = int.from_bytes(frame[2:4], "big")
        mask = frame[4:8]
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(frame[8:]))
        self.assertEqual((length, body), (150, b"hello" * 30))


class HelperTests(SynchronousTestCase):
    def test_accountsAreValidStrkeys(self):
        accounts = {account(i) for i in range(300)}
        self.assertEqual(len(accounts), 300)
        for a in accounts:
            self.assertTrue(StrKey.is_valid_ed25519_public_key(a), a)

    def test_statistics(self):
        values = list(range(1, 101))
        self.assertEqual((percentile(values, 50), percentile(values, 99), percentile(values, 100)), (50, 99, 100))
        self.assertEqual(median([3, 1, 2, None]), 2)
        self.assertEqual(median([4, 1, 2, 3]), 2.5)
        self.assertEqual(summarise([0.001, 0.002], 1000.0), {"n": 2, "p50": 1.0, "p95": 2.0, "p99": 2.0, "max": 2.0})

    def test_accountMessagesMatchOneClientEach(self):
        messages = fanout.accountMessages(25, 10)
        counts = fanout.accountCounts(25, 10)
        self.assertEqual(counts, [3] * 5 + [2] * 5)
        self.assertEqual(sum(1 for m in messages if account(3) in m["account_ids"]), counts[3])

    def test_latencyAnalysis(self):
        """Latency and spread come from the answer times and every client's receive times."""
        ids = ["%019d-%010d" % (n, 0) for n in (1, 2, 3)]
        answers = [[10.0, ids[:2]], [11.0, ids[2:]]]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "dump")
            with open(path, "wb") as f:
                f.write(json.dumps({"first": 0, "counts": [3, 3], "ids": ids}).encode() + b"\n")
                array("d", [10.010, 10.020, 11.001]).tofile(f)  # arrived
                array("d", [10.030, 10.020, 11.005]).tofile(f)
                array("d", [10.050, 10.050, 11.050]).tofile(f)  # read
                array("d", [10.090, 10.090, 11.090]).tofile(f)
            header, arrived, read = readDump(path)
            self.assertEqual((header["counts"], list(read[1])), ([3, 3], [10.090, 10.090, 11.090]))
            stats = latency.analyse(answers, [path])
        self.assertEqual((stats["events"], stats["clients"], stats["clients_short"]), (3, 2, 0))
        self.assertAlmostEqual(stats["spread_ms"]["max"], 20.0, places=6)
        self.assertAlmostEqual(stats["latency_ms"]["max"], 30.0, places=6)
        self.assertAlmostEqual(stats["first_client_ms"]["p50"], 10.0, places=6)
        self.assertAlmostEqual(stats["read_spread_ms"]["max"], 40.0, places=6)
        self.assertAlmostEqual(stats["read_latency_ms"]["max"], 90.0, places=6)

    def test_goals(self):
        rows = run.evaluate({"fanout.saturation.deliveries_per_s": 300000, "postgres.default.events_per_s": 100})
        verdicts = {r["metric"]: r["verdict"] for r in rows}
        self.assertEqual(verdicts["fanout.saturation.deliveries_per_s"], "pass")
        self.assertEqual(verdicts["postgres.default.events_per_s"], "MISS")
        self.assertEqual(verdicts["ingest.json.decode_events_per_s"], "n/a")


class BenchmarkSmokeTests(TestCase):
    """
    Every benchmark at tiny sizes: a result the suite can tabulate (numbers, not speeds).
    """

    timeout = 120

    def setUp(self):
        # a stalled client closed for a full queue keeps Autobahn's closing-handshake timer
        # (its 30 s drain) in the reactor after the server stopped
        self.addCleanup(cancelBatchedTimers, reactor)

    def check(self, module, result):
        self.assertEqual(result["benchmark"], module.__name__.split(".")[-1])
        self.assertTrue(result["metrics"])
        for key, value in result["metrics"].items():
            self.assertIsInstance(value, (int, float), key)
        rows = module.describe(result)
        self.assertTrue(rows)
        for row in rows:
            self.assertEqual(set(row) >= {"label", "value", "unit"}, True, row)
            self.assertIsInstance(row["value"], (int, float), row)
        json.dumps(result)
        report = {"date": "now", "quick": True, "machine": {"nproc": 1, "cpu_model": "x", "python": "3"},
                  "results": [dict(result, rows=rows)], "goals": run.evaluate(result["metrics"])}
        self.assertIn(rows[0]["label"], run.render(report))
        return result

    @defer.inlineCallbacks
    def test_fanout(self):
        result = yield fanout.measure(
            reactor, clients=[3], filtered_clients=[2, 4], deliveries=60, naive_deliveries=30, filtered_events=40,
            naive_checks=80, page=10, repeats=1, steady_clients=3, steady_rate=40, steady_seconds=0.3, tick=0.05,
            saturation_rates=[40, 80], saturation_seconds=0.3)
        self.check(fanout, result)
        m = result["metrics"]
        self.assertEqual(m["fanout.all.optimised.3.deliveries"], 60)
        self.assertEqual(m["fanout.account.optimised.4.deliveries"], 40)
        self.assertIn("fanout.account.ratio.4.2.server_cpu_us_per_event", m)
        self.assertIn(m["fanout.saturation.rate"], (0, 40, 80))

    @defer.inlineCallbacks
    def test_fanoutPythonClient(self):
        """The Python load generator, used when there is no C compiler, gives the same counts."""
        result = yield fanout.measure(
            reactor, clients=[3], filtered_clients=[2], deliveries=30, naive_deliveries=30, filtered_events=20,
            naive_checks=40, page=10, repeats=1, steady_clients=2, steady_rate=40, steady_seconds=0.2,
            saturation_rates=[40], saturation_seconds=0.2, client="python")
        self.check(fanout, result)
        self.assertEqual(result["load_generator"], "python")
        self.assertEqual(result["metrics"]["fanout.account.optimised.2.deliveries"], 20)

    @defer.inlineCallbacks
    def test_latency(self):
        result = yield latency.measure(reactor, clients=3, rates=[40], ledger_close_time=0.5, window_ledgers=1,
                                       poll_interval=0.2, repeats=1)
        self.check(latency, result)
        window = result["runs"]["40"][0]
        self.assertEqual((window["clients"], window["clients_short"]), (3, 0))
        self.assertEqual(window["latency_ms"]["n"], 3 * window["events"])

    @defer.inlineCallbacks
    def test_memory(self):
        result = yield memory.measure(reactor, clients=[4, 6], stall_events=5000, readers=2, page=20,
                                      stall_queue_sizes=[200], part="both")
        self.check(memory, result)
        m = result["metrics"]
        self.assertEqual(m["memory.stalled.200.closed_queue_full"], 1)  # the stalled client, not a reader
        self.assertTrue(result["runs"]["stalled"][0]["readers_ok"])
        self.assertEqual([r["registered"] for r in result["runs"]["idle"]], [4, 6])

    @defer.inlineCallbacks
    def test_ingest(self):
        result = yield ingest.measure(reactor, limit=20, pages=2, repeats=1, accounts=30, events_per_ledger=10)
        self.check(ingest, result)
        self.assertEqual(result["metrics"]["ingest.base64.events"], 40)
        self.assertEqual(result["metrics"]["ingest.json.decode_errors"], 0)

    @defer.inlineCallbacks
    def test_postgres(self):
        from stellarflow.postgres.testing import connect, testDSN

        connect().close()  # skips (or fails under CI) without a server
        result = yield postgres.measure(reactor, events=60, events_batch_1=10, page=20, repeats=1, dsn=testDSN())
        self.check(postgres, result)
        self.assertEqual(result["metrics"]["postgres.batch_1.batch_size"], 1)
        self.assertGreater(result["metrics"]["postgres.default.ratio_to_copy"], 0)
        self.assertGreater(result["metrics"]["postgres.mix.copy_events_per_s"], 0)

    @defer.inlineCallbacks
    def test_history(self):
        from stellarflow.postgres.testing import connect, testDSN

        connect().close()  # skips (or fails under CI) without a server
        result = yield history.measure(reactor, stored=500, accounts=10, requests=5, limit=20, chunk=200, dsn=testDSN())
        self.check(history, result)
        self.assertEqual(result["runs"]["first_page"]["events_per_page_min"], 20)
        self.assertEqual(result["runs"]["middle_page"]["events_per_page_min"], 20)



class _Scripted(Protocol):
    """
    A WebSocket server that answers the upgrade with the welcome and registered replies cut in
    odd pieces, then, when told (L{play}: the client is ready, as a real server sends events
    only after registering), writes the rest of its script in odd pieces too.
    """

    def connectionMade(self):
        self.buffer = b""
        self.factory.instance = self

    def dataReceived(self, data):
        if self.buffer is None:  # the register frame, and nothing else, after the upgrade
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        self.buffer = None
        self.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Accept: x\r\n\r\n" + self.factory.head, self.factory.headCuts)

    def play(self):
        self.write(self.factory.stream, self.factory.cuts)

    def write(self, stream, cuts):
        pieces = []
        pos = 0
        for size in cuts:
            pieces.append(stream[pos:pos + size])
            pos += size
        pieces.append(stream[pos:])
        self.factory.calls = [reactor.callLater(0.002 * i, self.transport.write, piece)
                              for i, piece in enumerate(pieces)]


class CompiledClientTests(TestCase):
    """
    The compiled load generator (benchmarks/wsclient.c) counts frames like the Python one,
    across reads that cut headers and payloads anywhere.
    """

    timeout = 60

    @defer.inlineCallbacks
    def test_countsFramesAcrossCuts(self):
        binary = compiledClient()
        if binary is None:
            if os.environ.get("CI") == "true":
                self.fail("the C load generator must build under CI (gcc is on every machine here)")
            raise SkipTest("no C compiler: the benchmarks use the Python load generator")
        ids = ["%019d-%010d" % (n << 12, 0) for n in range(4)]
        events = [serverFrame(json.dumps({"type": "contract_event", "id": i}, separators=(",", ":")).encode())
                  for i in ids]
        factory = Factory.forProtocol(_Scripted)
        factory.head = serverFrame(b'{"type":"welcome"}') + serverFrame(b'{"type":"registered"}')
        factory.headCuts = [100, 1, 1, 3]
        factory.stream = (events[0] + serverFrame(b"p", 0x9) + events[1] + serverFrame(b"x" * 70000) + events[2]
                          + serverFrame(b"y" * 300) + events[3])
        factory.cuts = [30, 1, 1, 1, 3, 40, 2, 1, 9, 65000, 5001, 7, 1]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        child = spawnCommand(reactor, [binary, "--port", port.getHost().port, "--count", 1, "--filters", "all",
                                       "--timestamps"])
        self.addCleanup(child.stop)
        ready = yield child.next(20)
        self.assertEqual(ready["event"], "ready")
        factory.instance.play()
        reached = yield child.request(wait=20, cmd="expect", counts=6, timeout=10)
        self.assertTrue(reached["ok"], reached)
        path = os.path.abspath(self.mktemp())
        yield child.request(wait=20, cmd="dump", path=path)
        header, arrived, read = readDump(path)
        # 6 text frames after the welcome and registered replies (counted since the start)
        self.assertEqual((header["counts"], len(read[0])), ([6], 6))
        self.assertEqual(header["ids"], ids)
