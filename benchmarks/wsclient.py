"""
The WebSocket load generator: many minimal clients in one process, as cheap as Python allows.

    python -m benchmarks.wsclient --port P --count N [--first I] [--filters all|account|none]
        [--timestamps] [--stall] [--rcvbuf BYTES]

Each client is a raw non-blocking socket: it sends the HTTP upgrade and its ``register`` frame
in one write, then only parses frame HEADERS to count text frames (payloads are skipped
unread), answering pings.  One selector serves every socket and stdin.  Client ``i`` (counting
from ``--first``) filters on ``benchmarks.common.account(i)`` with ``--filters account``.

Commands (JSON lines on stdin; each gets one JSON line on stdout):

- ``{"cmd": "register", "filters": "all"|"account"}``: register every client again; answered
  once each has its ``registered`` reply.
- ``{"cmd": "mark"}``: start counting events from zero (and drop recorded timestamps).
- ``{"cmd": "expect", "counts": K or [K0, K1...], "timeout": S}``: answered once client ``i``
  has ``counts[i]`` events since the mark (``ok`` false, with what is missing, after S seconds).
- ``{"cmd": "report"}``: events since the mark, closes seen, CPU used so far.
- ``{"cmd": "dump", "path": P}``: write every client's event receive times since the mark, for
  the latency benchmark: a JSON header line (``counts`` per client, the ``ids`` client 0 saw),
  then the times as native doubles, client after client: first when each event ARRIVED (the
  kernel's receive timestamp, SO_TIMESTAMPNS, so that this process's own speed does not count),
  then when this process READ it (see L{readDump}).

It first prints ``{"event": "ready", ...}`` once every client has its welcome (and its
``registered`` reply unless ``--filters none``).  With ``--stall`` the clients stop reading
once ready (a client that never reads).  It exits at EOF on stdin.  Times are ``time.time()``.
"""

import argparse
import errno
import json
import os
import re
import resource
import selectors
import socket
import struct
import sys
import time
from array import array

from benchmarks.common import account

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: kernel receive timestamps
_TIMESPEC = struct.Struct("@qq")
_ID = re.compile(rb'"id": ?"([0-9]{19}-[0-9]{10})"')
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def masked(payload, opcode=0x1):
    """A client frame (masked, as RFC 6455 requires) carrying C{payload}."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return header + mask + body


def registerMessage(filters, index):
    if filters == "account":
        body = {"type": "register", "filters": {"account_ids": [account(index)]}}
    else:
        body = {"type": "register", "filters": {}}
    return json.dumps(body).encode("ascii")


class Conn:
    """
    One client's socket and frame-parsing state.

    @ivar skip: payload bytes of the current frame still to come (skipped).
    @ivar partial: the start of a frame header cut by the end of a read.
    @ivar texts: text frames received (welcome, replies, events).
    """

    __slots__ = (
        "sock", "index", "state", "head", "skip", "skipOp", "partial", "texts", "base",
        "times", "reads", "closeCode", "full", "buffer", "ids", "fd",
    )

    def __init__(self, sock, index):
        self.sock = sock
        self.fd = sock.fileno()
        self.index = index
        self.state = "connecting"
        self.head = b""
        self.skip = 0
        self.skipOp = 0
        self.partial = b""
        self.texts = 0
        self.base = 0
        self.times = None
        self.reads = None
        self.closeCode = None
        self.full = False
        self.buffer = b""
        self.ids = None


class Fleet:
    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.out = sys.stdout
        self.stdinBuffer = b""
        self.closed = 0
        self.closeCodes = {}
        self.waiting = None  # the pending "expect" / "register" command
        self.lastFrame = 0.0
        self.running = True
        self.registerWith = None if args.filters == "none" else args.filters

    def emit(self, **message):
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    # -- connecting ---------------------------------------------------------------------

    def request(self, conn):
        req = (
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).format(self.args.path, self.args.port, KEY.decode()).encode("ascii")
        if self.registerWith is not None:
            req += masked(registerMessage(self.registerWith, conn.index))
        return req

    def connectAll(self):
        """Open every connection, at most C{--parallel} handshakes at a time."""
        want = self.args.count
        started = 0
        opening = 0
        needed = 1 if self.registerWith is None else 2
        ready = 0
        deadline = time.time() + self.args.connect_timeout
        while ready < want:
            while started < want and opening < self.args.parallel:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                if self.args.rcvbuf:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.args.rcvbuf)
                s.setblocking(False)
                err = s.connect_ex((self.args.host, self.args.port))
                if err not in (0, errno.EINPROGRESS):
                    raise SystemExit("connect failed: {}".format(os.strerror(err)))
                conn = Conn(s, self.args.first + started)
                if started == 0 and self.args.timestamps:
                    conn.full = True
                    conn.ids = []
                self.conns.append(conn)
                self.sel.register(s, selectors.EVENT_WRITE, conn)
                started += 1
                opening += 1
            if time.time() > deadline:
                raise SystemExit("only {} of {} clients ready after {} s".format(ready, want, self.args.connect_timeout))
            for key, _ in self.sel.select(timeout=1.0):
                conn = key.data
                if conn is None:
                    continue
                if conn.state == "connecting":
                    err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise SystemExit("connect failed: {}".format(os.strerror(err)))
                    conn.sock.sendall(self.request(conn))
                    conn.state = "handshake"
                    self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
                    continue
                before = conn.texts
                self.read(conn)
                if before < needed <= conn.texts:
                    ready += 1
                    opening -= 1
                if conn.state == "closed":
                    raise SystemExit("the server closed client {} during the handshake (code {})".format(
                        conn.index, conn.closeCode))
        for conn in self.conns:
            conn.base = conn.texts
            if self.args.timestamps:
                conn.times = array("d")
                conn.reads = array("d")
                conn.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    # -- reading ------------------------------------------------------------------------

    def read(self, conn):
        received = self.receive(conn)
        if received is not None:
            now = time.time()
            self.handle(conn, received[0], received[1] or now, now)

    def receive(self, conn):
        """
        C{(data, kernel receive time or None)} from the socket; C{None} when there is nothing,
        or the connection is gone.
        """
        try:
            if conn.times is None:
                data, stamp = conn.sock.recv(1 << 18), None
            else:
                # in 64 KiB reads, so that one read rarely spans data that arrived apart: the
                # kernel stamps a read with the arrival time of its newest segment
                data, ancillary, _, _ = conn.sock.recvmsg(1 << 16, 64)
                stamp = None
                for level, kind, raw in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                        seconds, nanoseconds = _TIMESPEC.unpack_from(raw)
                        stamp = seconds + nanoseconds * 1e-9
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            self.lost(conn)
            return None
        return data, stamp

    def handle(self, conn, data, now, readAt):
        """
        Count (or parse) the frames of C{data}: arrived at C{now} (the kernel's timestamp with
        ``--timestamps``), read at C{readAt}.
        """
        if conn.state == "handshake":
            conn.head += data
            end = conn.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not conn.head.startswith(b"HTTP/1.1 101"):
                raise SystemExit("handshake refused: {!r}".format(conn.head[:200]))
            data = conn.head[end + 4:]
            conn.head = b""
            conn.state = "open"
            if not data:
                return
        times = conn.times
        before = len(times) if times is not None else 0
        if conn.full:
            self.parseFull(conn, data, now)
        else:
            self.scan(conn, data, now)
        if times is not None and conn.times is times and len(times) > before:
            conn.reads.extend([readAt] * (len(times) - before))

    def scan(self, conn, data, now):
        """Count the frames in C{data} from their headers alone (payloads are skipped)."""
        if conn.partial:
            data = conn.partial + data
            conn.partial = b""
        n = len(data)
        pos = 0
        skip = conn.skip
        if skip:
            if skip > n:
                conn.skip = skip - n
                return
            pos = skip
            conn.skip = 0
            self.frame(conn, conn.skipOp, None, now)
        times = conn.times
        texts = 0
        while pos < n:
            if n - pos < 2:
                conn.partial = data[pos:]
                break
            op = data[pos] & 0x0F
            length = data[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if n - pos < 4:
                    conn.partial = data[pos:]
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    conn.partial = data[pos:]
                    break
                length = int.from_bytes(data[pos + 2:pos + 10], "big")
                start = pos + 10
            end = start + length
            if op == 1:
                if end > n:
                    conn.skip = end - n
                    conn.skipOp = 1
                    break
                texts += 1
                if times is not None:
                    times.append(now)
            elif end > n:
                conn.skip = end - n
                conn.skipOp = op
                break
            else:
                self.frame(conn, op, data[start:end], now)
            pos = end
        if texts:
            conn.texts += texts
            self.lastFrame = now

    def parseFull(self, conn, data, now):
        """Like L{scan}, keeping payloads: the ids of the events this client receives."""
        data = conn.buffer + data
        pos = 0
        n = len(data)
        while n - pos >= 2:
            length = data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2:pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2:pos + 10], "big")
                start = pos + 10
            if start + length > n:
                break
            op = data[pos] & 0x0F
            payload = data[start:start + length]
            pos = start + length
            if op == 1:
                match = _ID.search(payload, 0, 120)
                if match and conn.texts >= conn.base:
                    conn.ids.append(match.group(1).decode("ascii"))
            self.frame(conn, op, payload, now)
        conn.buffer = data[pos:]

    def frame(self, conn, op, payload, now):
        """A whole frame other than a text frame counted by L{scan}."""
        if op == 1:
            conn.texts += 1
            self.lastFrame = now
            if conn.times is not None:
                conn.times.append(now)
        elif op == 8:
            code = int.from_bytes(payload[:2], "big") if payload and len(payload) >= 2 else None
            conn.closeCode = code
            self.lost(conn)
        elif op == 9 and payload is not None:
            try:
                conn.sock.sendall(masked(payload, 0xA))
            except OSError:
                pass

    def lost(self, conn):
        if conn.state == "closed":
            return
        conn.state = "closed"
        self.closed += 1
        key = str(conn.closeCode)
        self.closeCodes[key] = self.closeCodes.get(key, 0) + 1
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    # -- commands -----------------------------------------------------------------------

    def received(self):
        return [conn.texts - conn.base for conn in self.conns]

    def command(self, message):
        cmd = message.get("cmd")
        if cmd == "register":
            self.registerWith = message["filters"]
            for conn in self.conns:
                if conn.state == "open":
                    conn.sock.sendall(masked(registerMessage(self.registerWith, conn.index)))
            self.waiting = ("register", [conn.texts + 1 for conn in self.conns], time.time() + 120)
        elif cmd == "mark":
            for conn in self.conns:
                conn.base = conn.texts
                if conn.times is not None:
                    conn.times = array("d")
                    conn.reads = array("d")
                if conn.ids is not None:
                    conn.ids = []
            self.emit(event="marked", cpu=cpu(), t=time.time())
        elif cmd == "expect":
            counts = message["counts"]
            if isinstance(counts, int):
                counts = [counts] * len(self.conns)
            targets = [conn.base + k for conn, k in zip(self.conns, counts)]
            self.waiting = ("expect", targets, time.time() + message.get("timeout", 60))
        elif cmd == "report":
            received = self.received()
            self.emit(event="report", received=sum(received), least=min(received) if received else 0,
                      cpu=cpu(), t=time.time(), closed=self.closed, close_codes=self.closeCodes)
        elif cmd == "dump":
            header = {
                "first": self.args.first,
                "counts": [len(conn.times or ()) for conn in self.conns],
                "ids": self.conns[0].ids if self.conns and self.conns[0].ids is not None else None,
            }
            with open(message["path"], "wb") as f:
                f.write(json.dumps(header).encode("ascii") + b"\n")
                for conn in self.conns:
                    if conn.times:
                        conn.times.tofile(f)
                for conn in self.conns:
                    if conn.reads:
                        conn.reads.tofile(f)
            self.emit(event="dumped", path=message["path"])
        else:
            self.emit(event="error", error="unknown command {!r}".format(cmd))
        self.check()

    def check(self):
        """Answer the pending command if it is satisfied (or timed out)."""
        if self.waiting is None:
            return
        kind, targets, deadline = self.waiting
        missing = sum(max(0, t - conn.texts) for conn, t in zip(self.conns, targets) if conn.state != "closed")
        lostTargets = sum(1 for conn, t in zip(self.conns, targets) if conn.state == "closed" and conn.texts < t)
        if missing == 0:
            self.waiting = None
            self.emit(event="registered" if kind == "register" else "reached", ok=lostTargets == 0,
                      t=self.lastFrame, cpu=cpu(), closed=self.closed, close_codes=self.closeCodes,
                      received=sum(self.received()), lost_clients=lostTargets)
        elif time.time() > deadline:
            self.waiting = None
            self.emit(event="registered" if kind == "register" else "reached", ok=False, missing=missing,
                      t=self.lastFrame, cpu=cpu(), closed=self.closed, close_codes=self.closeCodes,
                      received=sum(self.received()), lost_clients=lostTargets)

    def stdinReadable(self):
        data = os.read(sys.stdin.fileno(), 1 << 16)
        if not data:
            self.running = False
            return
        self.stdinBuffer += data
        *lines, self.stdinBuffer = self.stdinBuffer.split(b"\n")
        for line in lines:
            if line.strip():
                self.command(json.loads(line))

    # -- main loop ----------------------------------------------------------------------

    def run(self):
        self.connectAll()
        if self.args.stall:
            for conn in self.conns:
                self.sel.unregister(conn.sock)
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, None)
        self.emit(event="ready", clients=len(self.conns), cpu=cpu(), t=time.time())
        select = self.sel.select
        receive = self.receive
        clock = time.time
        while self.running:
            # Read every ready socket first, timestamping each read, and count frames after:
            # the time spent counting must not delay (and so inflate) the next socket's time.
            received = []
            command = False
            for key, _ in select(timeout=0.2 if self.waiting else 1.0):
                conn = key.data
                if conn is None:
                    command = True
                    continue
                data = receive(conn)
                if data is not None:
                    received.append((conn, data, clock()))
            for conn, (data, stamp), readAt in received:
                self.handle(conn, data, stamp or readAt, readAt)
            if command:
                self.stdinReadable()
            if self.waiting is not None:
                self.check()


def readDump(path):
    """
    The header and per-client arrays of a L{Fleet} dump: C{(header, arrived, read)}, where
    C{arrived[i][k]} is when client i's k-th event arrived (kernel timestamp) and C{read[i][k]}
    when this process read it.
    """
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        sections = []
        for _ in range(2):
            arrays = []
            for count in header["counts"]:
                values = array("d")
                values.fromfile(f, count)
                arrays.append(values)
            sections.append(arrays)
    return header, sections[0], sections[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first", type=int, default=0, help="index of the first client (its account)")
    parser.add_argument("--filters", choices=["all", "account", "none"], default="all")
    parser.add_argument("--timestamps", action="store_true", help="record each event's receive time")
    parser.add_argument("--stall", action="store_true", help="never read once registered")
    parser.add_argument("--rcvbuf", type=int, default=0,
                        help="SO_RCVBUF of each socket (0: the system's); a large one keeps this process's "
                             "reading speed from holding the server back")
    parser.add_argument("--parallel", type=int, default=256, help="handshakes in progress at once")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.count + 64), hard))
    Fleet(args).run()


if __name__ == "__main__":
    main()
