"""
Cost of a WebSocket resume: how fast one client is replayed its history (from memory, or from
PostgreSQL), and what the replay does to the delivery latency of live clients.

    .venv/bin/python benchmarks/ws_replay.py [--live 100] [--replay 50000] [--rate 200]
        [--seconds 5] [--database "host=127.0.0.1 user=postgres dbname=test"] [--filtered]

This process runs SaveToWebSocket on 127.0.0.1 (and, with ``--database``, SaveToPostgreSQL
in a throw-away schema, the in-memory window then holding only the last 1000 events so that
the replay reads the table).  It first feeds ``--replay`` ~700-byte events (pages of 1000, no
client connected), then streams live events at ``--rate`` per second in pages every 50 ms,
each stamped with its send time.  A child process opens ``--live`` raw WebSocket clients
(no filters; each live event's latency = receipt - stamp) and one more client that, in the
second phase, registers with ``resume_after`` before the first event and counts its frames.

Phases, ``--seconds`` each: live only (baseline latency); then the resume, measured until the
resuming client has every history event (replay rate) with the live latency meanwhile.  With
``--filtered`` the resuming client filters on the events' contract (every event still matches,
but each one is checked against the filters: from PostgreSQL that means parsing it).
"""

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import account, summarise, transferMessage  # noqa: E402
from benchmarks.wsclient import masked  # noqa: E402

REGISTER = b'{"type": "register", "filters": {}}'
#: The account every benchmark event involves (a filtered resumer matches every event).
SENDER = account(1, "replay")
HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def position(n):
    return "%019d-%010d" % (n << 12, 0)


# -- the client process --------------------------------------------------------------------


class Reader:
    """
    One raw connection: splits server frames (unmasked) and hands payloads to C{onFrame}.
    """

    def __init__(self, port, sel, onFrame, register=True):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(HANDSHAKE.format(port).encode() + (masked(REGISTER) if register else b""))
        self.sock.setblocking(False)
        self.buffer = b""
        self.open = False
        self.onFrame = onFrame
        sel.register(self.sock, selectors.EVENT_READ, self)

    def send(self, payload):
        self.sock.setblocking(True)
        self.sock.sendall(masked(payload))
        self.sock.setblocking(False)

    def read(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise SystemExit("server closed a connection")
        buf = self.buffer + data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buf
                return
            buf = buf[end + 4 :]
            self.open = True
        now = time.time()
        i, n = 0, len(buf)
        while n - i >= 2:
            length = buf[i + 1] & 0x7F
            head = 2
            if length == 126:
                if n - i < 4:
                    break
                length = int.from_bytes(buf[i + 2 : i + 4], "big")
                head = 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(buf[i + 2 : i + 10], "big")
                head = 10
            if n - i < head + length:
                break
            self.onFrame(buf[i + head : i + head + length], now)
            i += head + length
        self.buffer = buf[i:]


def runClients(port, live, history):
    """
    Commands on stdin: ``measure`` (start recording live latencies), ``resume <position>``,
    ``report`` (print the latencies recorded since ``measure``, and the replay figures).
    """
    sel = selectors.DefaultSelector()
    latencies = []
    recording = [False]

    def liveFrame(payload, now):
        if recording[0] and payload.startswith(b'{"type":"contract_event"'):
            sent = json.loads(payload).get("sent_at")
            if sent:
                latencies.append(now - sent)

    replay = {"events": 0, "first": None, "done": None, "registered": None}

    def resumerFrame(payload, now):
        if payload.startswith(b'{"type":"registered"'):
            replay["registered"] = now
            replay["reply"] = json.loads(payload)
        elif payload.startswith(b'{"type":"contract_event"'):
            replay["events"] += 1
            if replay["first"] is None:
                replay["first"] = now
            if replay["events"] == history:
                replay["done"] = now
        elif payload.startswith(b'{"type":"error"'):
            replay["error"] = json.loads(payload)

    for _ in range(live):
        Reader(port, sel, liveFrame)  # registered with the selector, which keeps it
    resumer = Reader(port, sel, resumerFrame, register=False)
    stdin = sys.stdin.fileno()
    sel.register(stdin, selectors.EVENT_READ, None)
    pending = [b""]
    print("ready", flush=True)

    def commands():
        # os.read, not readline: a buffered line would not wake select()
        data = os.read(stdin, 4096)
        if not data:
            raise SystemExit(0)
        lines = (pending[0] + data).split(b"\n")
        pending[0] = lines.pop()
        return [line.decode().split() for line in lines if line.strip()]

    while True:
        for key, _ in sel.select(timeout=60):
            if key.data is not None:
                key.data.read()
                continue
            for line in commands():
                if line[0] == "measure":
                    del latencies[:]
                    recording[0] = True
                elif line[0] == "resume":
                    replay["asked"] = time.time()
                    filters = json.loads(line[2]) if len(line) > 2 else {}
                    resumer.send(json.dumps({"type": "register", "filters": filters, "resume_after": line[1]}).encode())
                elif line[0] == "report":
                    recording[0] = False
                    print(json.dumps({"latency": summarise(latencies, 1000.0), "replay": replay}), flush=True)


# -- the server process --------------------------------------------------------------------


def runServer(args):
    from twisted.internet import reactor, task
    from twisted.internet.defer import inlineCallbacks

    from stellarflow.batch import Batch
    from stellarflow.websocket.consumer import SaveToWebSocket

    stores = []
    schema = None
    if args.database:
        import psycopg2

        from stellarflow.postgres.consumer import SaveToPostgreSQL

        schema = "sf_bench_" + uuid.uuid4().hex[:8]
        pg = SaveToPostgreSQL(reactor, args.database, "bench", schema=schema, batch_size=1000, flush_interval=0.05)
        stores.append(pg)
    ws = SaveToWebSocket(
        reactor,
        host="127.0.0.1",
        port=0,
        max_queue_size=10000,
        ping_interval=0,
        registration_timeout=600,
        cursor_interval=0,
        history_size=1000 if args.database else args.replay + 10000,
        max_replay=args.replay + 10000,
        history=stores[0].eventHistory() if stores else None,
    )
    consumers = [ws] + stores
    counter = [0]

    def page(count, stamped):
        batch = []
        for _ in range(count):
            m = transferMessage(counter[0], SENDER)
            if stamped:
                m["sent_at"] = time.time()
            batch.append(m)
            counter[0] += 1
        return Batch(items=[], messages=batch, cursor=batch[-1]["id"])

    @inlineCallbacks
    def main():
        for c in consumers:
            yield c.start()
        if stores:
            yield stores[0].load("bench")
        t = time.perf_counter()
        while counter[0] < args.replay:
            batch = page(min(1000, args.replay - counter[0]), False)
            for c in consumers:
                d = c.consume(batch)
            yield d
        print("filled {} events in {:.1f} s".format(args.replay, time.perf_counter() - t), flush=True)
        port = ws.listeningPort.getHost().port
        child = subprocess.Popen(
            [sys.executable, __file__, "--client-port", str(port), "--live", str(args.live), "--replay", str(args.replay)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        yield _line(reactor, child, "ready")
        while ws.hub.registered < args.live:
            yield task.deferLater(reactor, 0.05, lambda: None)
        perPage = max(1, int(args.rate * 0.05))
        def tick():
            batch = page(perPage, True)
            for c in consumers:
                c.consume(batch)

        loop = task.LoopingCall(tick)
        loop.start(0.05)
        yield task.deferLater(reactor, 1, lambda: None)
        _send(child, "measure")
        yield task.deferLater(reactor, args.seconds, lambda: None)
        _send(child, "report")
        baseline = json.loads((yield _line(reactor, child)))
        cpu = time.process_time()
        _send(child, "measure")
        filters = {"account_ids": [SENDER]} if args.filtered else {}
        _send(child, "resume " + "%019d-%010d" % (0, 0) + " " + json.dumps(filters, separators=(",", ":")))
        waited = 0.0
        while ws.hub.replayer.completed < 1 and waited < 600:
            yield task.deferLater(reactor, 0.1, lambda: None)
            waited += 0.1
        replayCpu = time.process_time() - cpu
        _send(child, "report")
        during = json.loads((yield _line(reactor, child)))
        loop.stop()
        r = during["replay"]
        seconds = (r["done"] or time.time()) - r["asked"]
        source = "PostgreSQL" if args.database else "memory"
        source += " (filtered)" if args.filtered else ""
        print("replay of {} events from {}: {:.2f} s from register to last history event, {:,.0f} events/s "
              "(first event after {:.0f} ms); server CPU meanwhile {:.2f} s".format(
                  r["events"] if r["done"] is None else args.replay, source, seconds,
                  args.replay / seconds, ((r["first"] or 0) - r["asked"]) * 1000, replayCpu))
        for name, result in (("live only", baseline), ("during the replay", during)):
            lat = result["latency"]
            print("{} live clients, {} events/s, latency {}: n={} p50 {:.1f} ms p95 {:.1f} ms p99 {:.1f} ms max {:.1f} ms".format(
                args.live, args.rate, name, lat["n"], lat["p50"] or 0, lat["p95"] or 0, lat["p99"] or 0, lat["max"] or 0))
        child.stdin.close()
        child.wait()
        for c in consumers:
            yield c.stop()
        if schema:
            conn = psycopg2.connect(args.database)
            conn.autocommit = True
            conn.cursor().execute("DROP SCHEMA {} CASCADE".format(schema))
            conn.close()

    def done(result):
        if hasattr(result, "printTraceback"):
            result.printTraceback()
        reactor.stop()

    reactor.callWhenRunning(lambda: main().addBoth(done))
    reactor.run()


def _send(child, line):
    child.stdin.write(line + "\n")
    child.stdin.flush()


def _line(reactor, child, expect=None):
    from twisted.internet.threads import deferToThread

    def read():
        text = child.stdout.readline().strip()
        if expect is not None and text != expect:
            raise SystemExit("client process said {!r}".format(text))
        return text

    return deferToThread(read)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", type=int, default=100)
    parser.add_argument("--replay", type=int, default=50000)
    parser.add_argument("--rate", type=int, default=200, help="live events per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--database", help="a libpq DSN: replay from PostgreSQL")
    parser.add_argument("--filtered", action="store_true", help="the resuming client has (matching) filters")
    parser.add_argument("--client-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_port:
        runClients(args.client_port, args.live, args.replay)
    else:
        runServer(args)


if __name__ == "__main__":
    main()
