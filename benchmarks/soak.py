"""
Soak: the real daemon for a long while under churn, stalled readers, abusive clients, RPC
faults and a PostgreSQL restart, checking that it stays flat and that every well-behaved
client gets every event exactly once.

    .venv/bin/python -m benchmarks.soak [--minutes 30] [--pg-port 5441 --pg-cluster "15 soak"]

Not part of CI.  It runs, as separate processes, the Stellar RPC test server
(C{python -m stellarflow.testing.rpcserver}, synthetic events every ledger) and the daemon
(C{twistd -n stellarflow -c soak.yaml}: RPCSourceAdapter -> GetEventsRPC -> SaveToWebSocket
with static-token auth and tight limits, and SaveToPostgreSQL on a private cluster).  The RPC
is reached through a fault proxy in this process.  This process also runs every client:

  - steady clients (no filters) connected for the whole run: each must receive every event
    stored in PostgreSQL from its first one on, exactly once;
  - resumers: connect, register with C{resume_after} their last id, stay 5-40 s, leave
    (cleanly or by abort), come back: across all their connections, every event once;
  - churners: connect, register, re-register, disconnect;
  - stalled readers: register, then stop reading (dropped by the heartbeat, or closed 4029);
  - abusers, each from its own loopback address, hitting every limit: too many sockets (429),
    too many new connections (429), slowloris (408), register spam (4429), oversized filters
    (error), garbage requests (400), bad tokens (401);
  - RPC faults (connections refused, HTTP 503) for 20 s every 5 minutes, and a restart of the
    PostgreSQL cluster half-way (C{pg_ctlcluster}; never the shared server: give a private
    cluster, e.g. C{pg_createcluster 15 soak -p 5441 -- --auth=trust}).

Every C{--sample} seconds it samples the daemon's RSS and open descriptors (/proc), its
reactor lag (time to answer /healthz on the admin port), delivered and stored counts, and
prints a summary with the drift allowed.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, protocol, reactor, task, threads
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.protocols import portforward

TOKEN = "soak-token"
#: RSS growth allowed from the warm sample to the end (ratio), and open-descriptor drift.
RSS_DRIFT = 0.25
FD_DRIFT = 30

CONFIG = """
state_dir: "{work}/state"
admin: {{host: 127.0.0.1, port: {admin}}}
pipelines:
  soak:
    source:
      type: RPCSourceAdapter
      config:
        rpc_url: "http://127.0.0.1:{proxy}/"
        network: testnet
        poll_interval: 1
        request_timeout: 5
    processors:
      - type: GetEventsRPC
    consumers:
      - type: SaveToWebSocket
        config:
          host: 127.0.0.1
          port: {ws}
          auth: {{tokens: ["{token}"]}}
          max_queue_size: 300
          history_size: 2000
          registration_timeout: 5
          max_connections: 2000
          max_connections_per_ip: 20
          connection_rate_per_ip: 5
          connection_burst_per_ip: 20
          upgrade_timeout: 3
          max_registers_per_minute: 10
          max_filter_entries: 100
      - type: SaveToPostgreSQL
        config:
          host: 127.0.0.1
          port: {pg}
          database: {db}
          username: postgres
          schema: {schema}
"""


def freePort():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint(port, source):
    return TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5, bindAddress=(source, 0))


# -- the RPC fault proxy ---------------------------------------------------------------------


class FaultyProxyServer(portforward.ProxyServer):
    """
    Forwards to the RPC server, or fails as the factory's C{mode} says.
    """

    def connectionMade(self):
        self.factory.open.add(self)
        mode = self.factory.mode
        if mode == "refuse":
            self.transport.abortConnection()
        elif mode == "503":
            self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.transport.loseConnection()
        else:
            portforward.ProxyServer.connectionMade(self)

    def connectionLost(self, reason):
        self.factory.open.discard(self)
        portforward.ProxyServer.connectionLost(self, reason)


class FaultyProxy(portforward.ProxyFactory):
    protocol = FaultyProxyServer
    mode = "up"
    noisy = False

    def __init__(self, host, port):
        portforward.ProxyFactory.__init__(self, host, port)
        self.open = set()

    def fail(self, mode):
        """
        Fail from now on (C{"refuse"}: connections reset; C{"503"}: HTTP 503), cutting the
        keep-alive connections in use too.
        """
        self.mode = mode
        for proto in list(self.open):
            proto.transport.abortConnection()


# -- clients ---------------------------------------------------------------------------------


class Tracked(WebSocketClientProtocol):
    """
    A well-behaved client: registers after the welcome (with resume_after when it has one) and
    records event ids.
    """

    def onOpen(self):
        self.owner.opened(self)

    def onMessage(self, payload, isBinary):
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "welcome":
            register = {"type": "register", "filters": self.owner.filters}
            if self.owner.resumeAfter is not None:
                register["resume_after"] = self.owner.resumeAfter
            self.sendMessage(json.dumps(register).encode())
        elif kind == "contract_event":
            self.owner.event(message["id"])
        elif kind == "error":
            self.owner.errors.append(message["error"])

    def onClose(self, wasClean, code, reason):
        self.owner.closed(self, code)


class Owner:
    """
    One logical client across its connections.
    """

    def __init__(self, name, source, port, filters=None, resume=False):
        self.name = name
        self.source = source
        self.port = port
        self.filters = filters or {}
        self.resume = resume
        self.resumeAfter = None
        self.ids = []
        self.errors = []
        self.closes = []
        self.connections = 0
        self.current = None
        self.unexpected = 0
        self.leaving = False

    def connect(self, headers=None):
        factory = WebSocketClientFactory(
            "ws://127.0.0.1:%d/ws" % self.port, headers=headers or {"Authorization": "Bearer " + TOKEN}
        )
        factory.protocol = Tracked
        factory.noisy = False

        def built(proto):
            proto.owner = self
            return proto

        original = factory.buildProtocol
        factory.buildProtocol = lambda addr: built(original(addr))
        self.connections += 1
        return endpoint(self.port, self.source).connect(factory)

    def opened(self, proto):
        self.current = proto

    def event(self, eventId):
        self.ids.append(eventId)
        if self.resume:
            self.resumeAfter = eventId

    def closed(self, proto, code):
        self.closes.append(code)
        if self.current is proto:
            self.current = None
        if not self.leaving:
            self.unexpected += 1

    def leave(self, abort=False):
        proto, self.current = self.current, None
        if proto is None:
            return
        self.leaving = True
        if abort:
            proto.dropConnection(abort=True)
        else:
            proto.sendClose(1000)


class Raw(protocol.Protocol):
    """
    A raw client: writes C{data}, optionally stops reading, records what comes back.
    """

    def __init__(self, data=b"", stall=False):
        self.data = data
        self.stall = stall
        self.received = b""
        self.done = defer.Deferred()

    def connectionMade(self):
        if self.data:
            self.transport.write(self.data)
        if self.stall:
            self.transport.pauseProducing()

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(self.received)

    @property
    def status(self):
        return int(self.received[9:12]) if self.received.startswith(b"HTTP/1.1 ") else None


def upgrade(token=TOKEN, path="/ws"):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if token:
        lines.append("Authorization: Bearer " + token)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def maskedText(payload):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def stalledSocket(port, source):
    """
    A connected socket with a 4 KiB receive buffer set before connecting (so the window the
    server sees stays small and a reader that stops is noticed within minutes, not after
    the megabytes of loopback autotuning).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


@defer.inlineCallbacks
def raw(port, source, data=b"", stall=False, hold=None):
    proto = Raw(data, stall)
    try:
        if stall:
            sock = stalledSocket(port, source)
            reactor.adoptStreamConnection(sock.fileno(), socket.AF_INET, protocol.Factory.forProtocol(lambda: proto))
            sock.close()  # the reactor holds its own duplicate
        else:
            yield endpoint(port, source).connect(protocol.Factory.forProtocol(lambda: proto))
    except Exception:
        return None
    if hold is not None:
        reactor.callLater(hold, lambda: proto.transport.abortConnection())
    return proto


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


# -- the soak --------------------------------------------------------------------------------


class Soak:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="sf-soak-")
        self.rpcPort, self.proxyPort, self.wsPort, self.adminPort = (freePort() for _ in range(4))
        self.schema = "soak_%d" % int(time.time())
        self.samples = []
        self.steady = []
        self.resumers = []
        self.churns = 0
        self.stalled = 0
        self.abuse = {}
        self.faults = []
        self.pgRestarts = []
        self.running = True
        self.proxy = FaultyProxy("127.0.0.1", self.rpcPort)

    # processes

    def startProcesses(self):
        python = sys.executable
        self.rpcLog = open(os.path.join(self.work, "rpc.log"), "w")
        self.rpc = subprocess.Popen(
            [python, "-m", "stellarflow.testing.rpcserver", "--port", str(self.rpcPort), "--rate",
             str(self.args.rate), "--ledger-close-time", "1", "--seed", "7"],
            stdout=self.rpcLog, stderr=subprocess.STDOUT,
        )
        with open(os.path.join(self.work, "soak.yaml"), "w") as f:
            f.write(CONFIG.format(work=self.work, admin=self.adminPort, proxy=self.proxyPort, ws=self.wsPort,
                                  token=TOKEN, pg=self.args.pg_port, db=self.args.pg_database, schema=self.schema))
        twistd = os.path.join(os.path.dirname(python), "twistd")
        self.daemonLog = open(os.path.join(self.work, "daemon.log"), "w")
        self.daemon = subprocess.Popen(
            [twistd, "-n", "--pidfile=", "stellarflow", "-c", os.path.join(self.work, "soak.yaml")],
            stdout=self.daemonLog, stderr=subprocess.STDOUT, cwd=self.work,
        )

    def stopProcesses(self):
        for proc in (getattr(self, "daemon", None), getattr(self, "rpc", None)):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    @defer.inlineCallbacks
    def waitForDaemon(self):
        for _ in range(300):
            if self.daemon.poll() is not None:
                raise RuntimeError("the daemon exited; see " + self.daemonLog.name)
            try:
                yield threads.deferToThread(urllib.request.urlopen, "http://127.0.0.1:%d/healthz" % self.adminPort, None, 2)
                with socket.create_connection(("127.0.0.1", self.wsPort), 1):
                    return
            except Exception:
                yield sleep(0.2)
        raise RuntimeError("the daemon did not start")

    # sampling

    def metrics(self):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.adminPort, None, 10).read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r"(stellarflow_[a-z_]+)(?:\{([^}]*)\})? ([-0-9.e+]+)$", line)
            if m:
                name = m.group(1)
                if "consumer=" in (m.group(2) or ""):
                    consumer = re.search(r'consumer="([^"]*)"', m.group(2)).group(1)
                    name = consumer + ":" + name
                out[name] = out.get(name, 0) + float(m.group(3))
        return out

    def healthLatency(self):
        started = time.monotonic()
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.adminPort, None, 30).read()
        except urllib.error.HTTPError as e:
            e.read()
        return time.monotonic() - started

    def stored(self):
        import psycopg2

        try:
            conn = psycopg2.connect(host="127.0.0.1", port=self.args.pg_port, dbname=self.args.pg_database,
                                    user="postgres", connect_timeout=3)
        except psycopg2.Error:
            return None
        try:
            with conn.cursor() as cur:
                cur.execute('SELECT count(*) FROM "%s".stellar_events' % self.schema)
                return cur.fetchone()[0]
        except psycopg2.Error:
            return None
        finally:
            conn.close()

    def procFigures(self):
        pid = self.daemon.pid
        with open("/proc/%d/status" % pid) as f:
            rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024
        fds = len(os.listdir("/proc/%d/fd" % pid))
        return rss, fds

    @defer.inlineCallbacks
    def sampler(self, started):
        while self.running:
            lag = yield threads.deferToThread(self.healthLatency)
            stored = yield threads.deferToThread(self.stored)
            rss, fds = self.procFigures()
            delivered = sum(len(o.ids) for o in self.steady)
            sample = {"t": time.monotonic() - started, "rss": rss, "fds": fds, "lag": lag, "stored": stored,
                      "delivered": delivered, "ownLag": self.ownLag}
            self.samples.append(sample)
            print("t=%5.0fs rss=%6.1fMB fds=%4d healthz=%6.1fms stored=%s delivered=%d" % (
                sample["t"], rss / 2**20, fds, lag * 1000, stored, delivered), flush=True)
            yield self.nap(self.args.sample)

    @defer.inlineCallbacks
    def ownLagLoop(self):
        self.ownLag = 0.0
        while self.running:
            t = time.monotonic()
            yield sleep(0.5)
            self.ownLag = max(0.0, time.monotonic() - t - 0.5)

    # clients

    @defer.inlineCallbacks
    def startSteady(self):
        for i in range(self.args.steady):
            owner = Owner("steady%d" % i, "127.0.1.%d" % (1 + i // 10), self.wsPort)
            self.steady.append(owner)
            yield owner.connect()

    @defer.inlineCallbacks
    def resumer(self, i):
        owner = Owner("resumer%d" % i, "127.0.2.%d" % (1 + i // 10), self.wsPort, resume=True)
        self.resumers.append(owner)
        while self.running:
            owner.leaving = False
            try:
                yield owner.connect()
            except Exception:
                yield sleep(1)
                continue
            yield self.nap(random.uniform(5, 40))
            owner.leave(abort=random.random() < 0.3)
            yield sleep(random.uniform(0.1, 5))

    @defer.inlineCallbacks
    def churner(self, i):
        source = "127.0.3.%d" % (1 + i)
        while self.running:
            owner = Owner("churn", source, self.wsPort, filters={"types": ["transfer"]})
            try:
                proto = yield owner.connect()
                yield sleep(random.uniform(0.5, 3))
                proto.sendMessage(json.dumps({"type": "register", "filters": {"asset_codes": ["USDC"]}}).encode())
                yield sleep(random.uniform(0.5, 3))
                owner.leave(abort=random.random() < 0.5)
                self.churns += 1
            except Exception:
                pass
            yield sleep(random.uniform(0.2, 2))

    @defer.inlineCallbacks
    def stalledReaders(self):
        register = maskedText(json.dumps({"type": "register", "filters": {}}).encode())
        n = 0
        while self.running:
            for _ in range(3):
                n += 1
                proto = yield raw(self.wsPort, "127.0.4.%d" % (1 + n % 200), upgrade() + register, stall=True, hold=600)
                if proto is not None:
                    self.stalled += 1
            yield self.nap(180)

    @defer.inlineCallbacks
    def nap(self, seconds):
        """
        Sleep C{seconds}, or less once the run is over.
        """
        end = time.monotonic() + seconds
        while self.running and time.monotonic() < end:
            yield sleep(min(1.0, end - time.monotonic()))

    def count(self, kind, value):
        value = str(value)
        bucket = self.abuse.setdefault(kind, {})
        bucket[value] = bucket.get(value, 0) + 1

    @defer.inlineCallbacks
    def abusers(self):
        port = self.wsPort
        while self.running:
            # too many sockets from one address: 60 at once, held 8 s
            protos = yield defer.gatherResults([raw(port, "127.0.9.1", upgrade(), hold=8) for _ in range(60)])
            yield sleep(1)
            for p in protos:
                self.count("sockets", p.status if p else "connect failed")
            # too many new connections: 40 short ones in a row
            for _ in range(40):
                p = yield raw(port, "127.0.9.2", upgrade(), hold=0.3)
                yield sleep(0.01)
                if p:
                    self.count("rate", p.status)
            # slowloris: half a request, never finished
            slow = yield defer.gatherResults([raw(port, "127.0.9.3", b"GET /ws HTTP/1.1\r\nHost: x\r\n") for _ in range(10)])
            # garbage and bad tokens
            garbage = []
            for _ in range(10):
                garbage.append((yield raw(port, "127.0.9.6", os.urandom(random.randint(1, 300)) + b"\r\n\r\n")))
            bad = []
            for _ in range(5):
                bad.append((yield raw(port, "127.0.9.7", upgrade(token="nope-%d" % random.randint(0, 10**6)))))
            # register spam and oversized filters
            spam = Owner("spam", "127.0.9.4", port)
            big = Owner("big", "127.0.9.5", port)
            try:
                proto = yield spam.connect()
                yield sleep(0.5)
                for _ in range(30):
                    proto.sendMessage(json.dumps({"type": "register", "filters": {}}).encode())
                big = Owner("big", "127.0.9.5", port)
                proto2 = yield big.connect()
                yield sleep(0.5)
                codes = ["C%d" % i for i in range(150)]
                proto2.sendMessage(json.dumps({"type": "register", "filters": {"asset_codes": codes}}).encode())
            except Exception:
                pass
            yield sleep(5)
            for p in slow:
                self.count("slowloris", p.status if p else "connect failed")
            for p in garbage:
                self.count("garbage", p.status if p else "connect failed")
            for p in bad:
                self.count("badtoken", p.status if p else "connect failed")
            self.count("spam", tuple(spam.closes) and spam.closes[-1])
            self.count("bigfilter", ",".join(big.errors) or "none")
            spam.leave(abort=True)
            big.leave(abort=True)
            yield self.nap(50)

    @defer.inlineCallbacks
    def rpcFaults(self, every):
        kinds = ["refuse", "503"]
        n = 0
        while self.running:
            yield self.nap(every)
            if not self.running:
                return
            self.proxy.fail(kinds[n % 2])
            self.faults.append(self.proxy.mode)
            print("RPC fault:", self.proxy.mode, flush=True)
            yield self.nap(20)
            self.proxy.mode = "up"
            n += 1

    @defer.inlineCallbacks
    def pgRestart(self, at):
        yield self.nap(at)
        if not self.running:
            return
        print("restarting PostgreSQL cluster", self.args.pg_cluster, flush=True)
        version, name = self.args.pg_cluster.split()
        result = yield threads.deferToThread(
            subprocess.run, ["pg_ctlcluster", version, name, "restart"], capture_output=True, text=True
        )
        self.pgRestarts.append(result.returncode)

    # the check

    def storedIds(self):
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.args.pg_port, dbname=self.args.pg_database, user="postgres")
        try:
            with conn.cursor() as cur:
                cur.execute('SELECT id FROM "%s".stellar_events ORDER BY id' % self.schema)
                return [r[0] for r in cur.fetchall()]
        finally:
            conn.close()

    def check(self, owners, stored):
        """
        Per owner: its ids against the stored ids from its first to min(its last, stored last).
        """
        results = []
        for o in owners:
            if not o.ids:
                results.append((o.name, "no events", 0, 0, 0))
                continue
            first, last = o.ids[0], min(o.ids[-1], stored[-1] if stored else "")
            expected = [i for i in stored if first <= i <= last]
            got = [i for i in o.ids if i <= last]
            dups = len(got) - len(set(got))
            missing = len(set(expected) - set(got))
            extra = len(set(got) - set(expected))
            ok = dups == 0 and missing == 0 and extra == 0
            results.append((o.name, "ok" if ok else "MISMATCH", len(expected), missing, dups + extra))
        return results

    @defer.inlineCallbacks
    def run(self):
        args = self.args
        duration = args.minutes * 60
        self.startProcesses()
        listening = reactor.listenTCP(self.proxyPort, self.proxy, interface="127.0.0.1")
        try:
            yield self.waitForDaemon()
            started = time.monotonic()
            self.ownLagLoop()
            yield self.startSteady()
            work = [self.resumer(i) for i in range(args.resumers)]
            work += [self.churner(i) for i in range(args.churners)]
            work += [self.stalledReaders(), self.abusers(), self.rpcFaults(min(300, duration / 3)),
                     self.pgRestart(duration / 2)]
            sampling = self.sampler(started)
            yield sleep(duration)
            self.running = False
            for o in self.resumers:
                o.leave()
            yield defer.DeferredList(work)
            print("settling 15 s", flush=True)
            yield sleep(15)
            yield sampling
            metrics = yield threads.deferToThread(self.metrics)
            stored = yield threads.deferToThread(self.storedIds)
            self.report(metrics, stored)
        finally:
            self.running = False
            for o in self.steady:
                o.leave(abort=True)
            yield listening.stopListening()
            self.stopProcesses()

    def report(self, metrics, stored):
        samples = self.samples
        warm = [s for s in samples if s["t"] >= min(120, self.args.minutes * 60 * 0.1)]
        base, end = warm[0], warm[-1]
        lags = sorted(s["lag"] for s in samples)
        steady = self.check(self.steady, stored)
        resumers = self.check(self.resumers, stored)
        rssOk = end["rss"] <= base["rss"] * (1 + RSS_DRIFT)
        fdOk = abs(end["fds"] - base["fds"]) <= FD_DRIFT
        deliveredOk = all(r[1] == "ok" for r in steady + resumers)
        lost = sum(o.unexpected for o in self.steady)

        def pct(p):
            return lags[min(len(lags) - 1, int(p * len(lags)))] * 1000

        print()
        print("== soak summary ({:.0f} min, {} samples every {} s) ==".format(self.args.minutes, len(samples), self.args.sample))
        print("events stored in PostgreSQL: {}".format(len(stored)))
        print("RSS: warm {:.1f} MB -> end {:.1f} MB (max {:.1f} MB; allowed +{:.0%}): {}".format(
            base["rss"] / 2**20, end["rss"] / 2**20, max(s["rss"] for s in samples) / 2**20, RSS_DRIFT,
            "flat" if rssOk else "GROWING"))
        print("open fds: warm {} -> end {} (max {}; allowed +-{}): {}".format(
            base["fds"], end["fds"], max(s["fds"] for s in samples), FD_DRIFT, "flat" if fdOk else "DRIFTING"))
        print("reactor lag (/healthz answer): p50 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms; load generator's own lag max {:.0f} ms".format(
            pct(0.5), pct(0.99), lags[-1] * 1000, max(s["ownLag"] for s in samples) * 1000))
        print("steady clients: {} , every event exactly once: {} of {} (unexpected closes: {})".format(
            len(steady), sum(r[1] == "ok" for r in steady), len(steady), lost))
        print("resumers: {} , {} connections, exactly once across reconnects: {} of {}".format(
            len(resumers), sum(o.connections for o in self.resumers), sum(r[1] == "ok" for r in resumers), len(resumers)))
        for r in steady + resumers:
            if r[1] != "ok":
                print("  {}: {} expected {} missing {} duplicate/extra {}".format(*r))
        print("churn cycles: {}, stalled readers: {}, RPC faults: {}, PostgreSQL restarts: {} (exit codes)".format(
            self.churns, self.stalled, self.faults, self.pgRestarts))
        print("abusers (answers seen): " + json.dumps(self.abuse, sort_keys=True, default=str))
        keys = ["connections_total", "messages_delivered_total", "queue_full_closes_total", "refused_ip_connections_total",
                "refused_ip_rate_total", "dropped_connections_total", "upgrade_timeouts_total", "auth_refused_total",
                "registers_limited_total", "filters_refused_total", "refused_reserve_total", "requests_too_large_total"]
        shown = {}
        for k in keys:
            for name, v in metrics.items():
                if name.endswith("stellarflow_consumer_" + k):
                    shown[k] = int(v)
        print("daemon metrics: " + json.dumps(shown, sort_keys=True))
        self.daemonLog.flush()
        with open(self.daemonLog.name, errors="replace") as f:
            lines = f.read().splitlines()
        tracebacks = [line for line in lines if "Traceback" in line or "Unhandled" in line]
        print("daemon log: {} lines in {:.0f} min, {} tracebacks/unhandled errors".format(
            len(lines), self.args.minutes, len(tracebacks)))
        print("verdict: {}".format("PASS" if rssOk and fdOk and deliveredOk and not lost and not tracebacks else "FAIL"))
        print("work dir (logs): " + self.work)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20, help="events per ledger (one ledger a second)")
    parser.add_argument("--steady", type=int, default=40)
    parser.add_argument("--resumers", type=int, default=10)
    parser.add_argument("--churners", type=int, default=10)
    parser.add_argument("--sample", type=float, default=5)
    parser.add_argument("--pg-port", type=int, default=5441)
    parser.add_argument("--pg-database", default="soak")
    parser.add_argument("--pg-cluster", default="15 soak", help='"VERSION NAME" for pg_ctlcluster (a private cluster)')
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    from benchmarks.common import raiseFileLimit

    raiseFileLimit(4096)
    soak = Soak(args)
    outcome = []

    def done(result):
        outcome.append(result)
        reactor.stop()

    import atexit

    atexit.register(soak.stopProcesses)  # killed (SIGTERM), the children go too
    reactor.callWhenRunning(lambda: soak.run().addBoth(done))
    reactor.run()
    if not args.keep and outcome and not isinstance(outcome[0], Exception) and not hasattr(outcome[0], "getTraceback"):
        shutil.rmtree(soak.work, ignore_errors=True)
    if outcome and hasattr(outcome[0], "getTraceback"):
        print(outcome[0].getTraceback())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
