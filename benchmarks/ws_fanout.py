"""
Fan-out rate of SaveToWebSocket: deliveries per second to many loopback clients all matching.

    .venv/bin/python benchmarks/ws_fanout.py [--clients 1000] [--events 2000] [--page 100]
        [--kind plain|transfer]

The server (this process) listens on 127.0.0.1; a child process opens ``--clients`` raw
WebSocket connections, registers each with empty filters and only counts bytes (no parsing), so
the client side costs little.  Once all are registered, ``--events`` messages (``plain``: ~700-byte
contract events; ``transfer``: ~965-byte token transfers with every token field) go out in pages of ``--page``, one ``consume`` per reactor turn.  Reported:

- fan-out: time spent inside ``consume`` (keys, serialise and frame once, hand the frame to
  every client's transport or queue), per delivery;
- end to end: deliveries per second from the first ``consume`` until every client has read
  every byte (includes the socket writes, and the client process sharing the machine).
"""

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ACCOUNT_A = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
ACCOUNT_B = "GDVEU3DD4KOFECV66VIHWEZOYX4ZKR3WV27L464SIIPOU2IUI3JCZA57"
REGISTER = b'{"type": "register", "filters": {}}'


def message(n, kind="plain"):
    """
    Event C{n} as GetEventsRPC emits it: a non-token contract event of ~700 bytes of JSON
    ("plain") or a native transfer with every token field, ~965 bytes ("transfer").
    """
    if kind == "plain":
        return {
            "type": "contract_event",
            "id": "%019d-%010d" % (n << 12, 0),
            "ledger": 3727845 + n // 50,
            "ledger_closed_at": "2026-07-21T18:01:10Z",
            "transaction_hash": "%064x" % n,
            "contract_id": "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75",
            "operation_index": 0,
            "transaction_index": n % 50,
            "in_successful_contract_call": True,
            "event_kind": "contract",
            "topics": ["swap", ACCOUNT_A, "%d" % (1000 + n)],
            "data": {
                "amount_in": str(123456789 + n),
                "amount_out": str(987654321 - n),
                "pool": "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA",
                "to": ACCOUNT_B,
                "fee_bps": 30,
                "path": ["CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75", "native"],
            },
        }
    return {
        "type": "contract_event",
        "id": "%019d-%010d" % (n << 12, 0),
        "ledger": 3727845 + n // 50,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "%064x" % n,
        "contract_id": "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA",
        "operation_index": 0,
        "transaction_index": n % 50,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": ["transfer", ACCOUNT_A, ACCOUNT_B, "native"],
        "data": str(123456789 + n),
        "event_type": "transfer",
        "from": ACCOUNT_A,
        "to": ACCOUNT_B,
        "account_ids": [ACCOUNT_A, ACCOUNT_B],
        "asset_code": "XLM",
        "asset_issuer": None,
        "amount": "%.7f" % (12.3456789 + n),
        "amount_raw": str(123456789 + n),
        "asset_verified": True,
        "to_muxed_id": None,
    }


def frameSize(payload):
    n = len(payload)
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


def expectedBytes(events, kind):
    """
    What each client reads after the HTTP response: welcome, registered, every event.
    """
    from stellarflow.websocket import messages
    from stellarflow.websocket.filters import parse_filters

    total = frameSize(messages.welcome()) + frameSize(messages.registered(parse_filters({})))
    return total + sum(frameSize(messages.encode(message(n, kind))) for n in range(events))


def maskedFrame(payload):
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# -- the client process --------------------------------------------------------------------


def runClients(port, count, expected):
    """
    Open C{count} connections, register them, then read until each got C{expected} bytes after
    its HTTP response.  Prints "registered" once all requests are out, "done <seconds>" at the end
    (seconds from the first event byte).
    """
    sel = selectors.DefaultSelector()
    request = (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).format(port).encode()
    state = {}
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request + maskedFrame(REGISTER))
        s.setblocking(False)
        state[s] = [b"", -1]  # header bytes until the response ends; then bytes counted
        sel.register(s, selectors.EVENT_READ)
    print("registered", flush=True)
    remaining = count
    started = None
    while remaining:
        for key, _ in sel.select(timeout=30):
            s = key.fileobj
            data = s.recv(1 << 20)
            if not data:
                raise SystemExit("server closed a connection")
            st = state[s]
            if st[1] < 0:
                st[0] += data
                end = st[0].find(b"\r\n\r\n")
                if end < 0:
                    continue
                data = st[0][end + 4:]
                st[1] = 0
            if started is None:
                started = time.perf_counter()
            st[1] += len(data)
            if st[1] >= expected:
                sel.unregister(s)
                remaining -= 1
    print("done {:.3f}".format(time.perf_counter() - started), flush=True)


# -- the server process --------------------------------------------------------------------


def runServer(args):
    from twisted.internet import reactor

    from stellarflow.batch import Batch
    from stellarflow.websocket.consumer import SaveToWebSocket

    consumer = SaveToWebSocket(
        reactor, host="127.0.0.1", port=0, max_queue_size=100000, ping_interval=0, registration_timeout=600
    )
    pages = [[message(n, args.kind) for n in range(i, min(args.events, i + args.page))] for i in range(0, args.events, args.page)]
    size = len(json.dumps(pages[0][0], separators=(",", ":")))
    result = {}

    def started(_):
        port = consumer.listeningPort.getHost().port
        child = subprocess.Popen(
            [sys.executable, __file__, "--client-port", str(port), "--clients", str(args.clients),
             "--events", str(args.events), "--kind", args.kind],
            stdout=subprocess.PIPE,
            text=True,
        )
        result["child"] = child
        reactor.callInThread(waitChildRegistered)

    def waitChildRegistered():
        if result["child"].stdout.readline().strip() != "registered":
            reactor.callFromThread(reactor.stop)
            raise SystemExit("client process failed")
        reactor.callFromThread(waitRegistered)

    def waitRegistered():
        if consumer.broadcaster.registered < args.clients:
            reactor.callLater(0.05, waitRegistered)
            return
        result["start"] = time.perf_counter()
        result["cpu"] = time.process_time()
        result["inConsume"] = 0.0
        sendPages(list(pages))

    def sendPages(remaining):
        page = remaining.pop(0)
        t = time.perf_counter()
        consumer.consume(Batch(items=[], messages=page))
        result["inConsume"] += time.perf_counter() - t
        if remaining:
            reactor.callLater(0, sendPages, remaining)
        else:
            reactor.callInThread(waitChild)

    def waitChild():
        line = result["child"].stdout.readline().strip()
        result["clientSeconds"] = float(line.split()[1]) if line.startswith("done") else None
        reactor.callFromThread(finish)

    def finish():
        result["end"] = time.perf_counter()
        cpu = time.process_time() - result["cpu"]
        deliveries = args.clients * args.events
        wall = result["end"] - result["start"]
        stats = consumer.broadcaster.stats()
        print("clients {}, events {} of {} bytes, pages of {}".format(args.clients, args.events, size, args.page))
        print("deliveries {} (server counted {}), closed for queue full {}".format(
            deliveries, stats["delivered"], stats["closed_queue_full"]))
        print("inside consume(): {:.2f} s ({:.2f} us per delivery; writes beyond a full 64 KiB "
              "transport buffer are queued here and sent on resume)".format(
                  result["inConsume"], result["inConsume"] / deliveries * 1e6))
        print("server CPU (fan-out + socket writes): {:.2f} s, {:.2f} us per delivery, {:,.0f} deliveries/s".format(
            cpu, cpu / deliveries * 1e6, deliveries / cpu))
        print("end to end (all bytes read by the clients): {:.2f} s, {:,.0f} deliveries/s".format(
            wall, deliveries / wall))
        consumer.stop().addBoth(lambda _: reactor.stop())

    consumer.start().addCallback(started).addErrback(lambda f: (f.printTraceback(), reactor.stop()))
    reactor.run()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--kind", choices=["plain", "transfer"], default="plain")
    parser.add_argument("--client-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_port:
        runClients(args.client_port, args.clients, expectedBytes(args.events, args.kind))
    else:
        runServer(args)


if __name__ == "__main__":
    main()
