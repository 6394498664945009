"""
A run by hand of the outages of issue 17, against the real daemon (the C{stellarflow} command in
its own process), the Stellar RPC test server (in this process, so that it can refuse
connections), a real WebSocket client, a PostgreSQL cluster of its own that this script can stop
and start, and the admin endpoint.  It prints a timeline and a summary:

  1. the pipeline starts with its database missing: WebSocket clients receive at once;
  2. the database is created: it catches up with every event;
  3. PostgreSQL is stopped (immediate shutdown) for a while, then started: the stream goes on,
     the database catches up again;
  4. the RPC refuses connections for a while: /healthz turns 503 within the source's health
     timeout, 200 again after the RPC is back, and no event is missed.

Not a test (it takes minutes and needs a second PostgreSQL cluster); the figures go in the issue
notes.  Set up the cluster once, as root:

    pg_createcluster 15 handrun -p 5440 -- --auth=trust
    pg_ctlcluster --skip-systemctl-redirect 15 handrun start

    .venv/bin/python tools/outages.py --pg-port 5440 --pg-cluster "15 handrun"

The outage lengths are options (defaults: 30 s database missing, 30 s PostgreSQL down, 60 s
RPC refusing).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import psycopg2
import treq
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.python import usage

from stellarflow import positions
from stellarflow.testing.rpcserver import StellarRPCResource, serve

START = 20010


class Options(usage.Options):
    optParameters = [
        ["pg-port", None, 5440, "port of the PostgreSQL cluster this script may stop", int],
        ["pg-cluster", None, "15 handrun", "pg_ctlcluster's VERSION NAME of that cluster"],
        ["missing", None, 30.0, "seconds the database is missing at start", float],
        ["pg-down", None, 30.0, "seconds PostgreSQL is stopped mid-stream", float],
        ["rpc-down", None, 60.0, "seconds the RPC refuses connections", float],
    ]


class Client(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.client = self

    def onMessage(self, payload, isBinary):
        message = json.loads(payload)
        now = time.time()
        if message["type"] == "welcome":
            self.sendMessage(json.dumps({"type": "register", "filters": {"types": [], "account_ids": [], "asset_codes": [], "min_amount": ""}}).encode())
        elif message["type"] == "contract_event":
            self.factory.ids.append(message["id"])
            self.factory.arrivals.append(now)
        else:
            self.factory.other.append(message["type"])


def pg(port, sql, database="postgres"):
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def cluster(action, name):
    version, cname = name.split()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cname, action] + (["-m", "immediate"] if action == "stop" else []), check=True)


class Timeline:
    def __init__(self):
        self.t0 = time.time()
        self.lines = []

    def __call__(self, text):
        line = "{:7.1f}s  {}".format(time.time() - self.t0, text)
        self.lines.append(line)
        print(line, flush=True)


@defer.inlineCallbacks
def main(reactor, options):
    say = Timeline()
    port = options["pg-port"]
    pg(port, "DROP DATABASE IF EXISTS stellar_events WITH (FORCE)")
    server = StellarRPCResource(reactor, seed=42, events_per_ledger=4, ledger_close_time=1.0, first_ledger=20000, history=20)
    rpcPort = yield serve(0, server, reactor=reactor)
    work = tempfile.mkdtemp(prefix="sf-outages-")
    config = os.path.join(work, "pipeline.yaml")
    with open(config, "w") as f:
        f.write(
            "state_dir: {work}/state\n"
            "admin: {{host: 127.0.0.1, port: 9391}}\n"
            "pipelines:\n"
            "  ContractEventsWebSocket:\n"
            "    source:\n"
            "      type: RPCSourceAdapter\n"
            "      config: {{rpc_url: 'http://127.0.0.1:{rpc}', network: testnet, start_ledger: {start}, poll_interval: 1,\n"
            "               health_timeout: 10, filters: [{{type: contract, topics: [['**']]}}]}}\n"
            "    consumers:\n"
            "      - {{type: SaveToWebSocket, config: {{host: 127.0.0.1, port: 9390}}}}\n"
            "      - {{type: SaveToPostgreSQL, config: {{host: 127.0.0.1, port: {pg}, database: stellar_events, username: postgres}}}}\n".format(
                work=work, rpc=rpcPort, start=START, pg=port
            )
        )
    log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen([sys.executable, "-c", "from stellarflow.run import main; main()", "-c", config], stdout=log, stderr=subprocess.STDOUT)
    say("daemon started (pid {}), database missing; log {}".format(daemon.pid, log.name))

    health = []

    @defer.inlineCallbacks
    def poll():
        try:
            response = yield treq.get("http://127.0.0.1:9391/healthz", timeout=2)
            body = yield response.json()
            reasons = [r.split(" for ")[0] for p in body["pipelines"].values() for r in p["reasons"]]
            state = (response.code, tuple(reasons))
        except Exception as e:
            state = ("down", (type(e).__name__,))
        if not health or health[-1][1] != state:
            health.append((time.time(), state))
            say("/healthz {} {}".format(state[0], "; ".join(state[1])))

    poller = task.LoopingCall(poll)
    poller.start(0.5)

    factory = WebSocketClientFactory("ws://127.0.0.1:9390/ws", reactor=reactor)
    factory.protocol = Client
    factory.ids, factory.arrivals, factory.other = [], [], []
    for _ in range(50):
        try:
            yield TCP4ClientEndpoint(reactor, "127.0.0.1", 9390).connect(factory)
            break
        except Exception:
            yield task.deferLater(reactor, 0.2, lambda: None)

    def wait(seconds):
        return task.deferLater(reactor, seconds, lambda: None)

    @defer.inlineCallbacks
    def metric(name):
        response = yield treq.get("http://127.0.0.1:9391/metrics", timeout=2)
        text = yield response.text()
        for line in text.splitlines():
            if line.startswith(name + "{") and "SaveToPostgreSQL" in line:
                return float(line.rsplit(" ", 1)[1])
        return None

    @defer.inlineCallbacks
    def untilAttached(what):
        since = time.time()
        while (yield metric("stellarflow_consumer_attached")) != 1.0:
            yield wait(0.5)
        say("PostgreSQL {} after {:.1f}s".format(what, time.time() - since))

    def gaps(since, until_):
        times = [t for t in factory.arrivals if since <= t <= until_]
        return max((b - a for a, b in zip(times, times[1:])), default=None), len(times)

    yield wait(options["missing"])
    phase1 = time.time()
    say("{} events received while the database was missing".format(len(factory.ids)))
    pg(port, "CREATE DATABASE stellar_events")
    say("database created")
    yield untilAttached("caught up and rejoined the live flow")
    yield wait(10)

    cluster("stop", options["pg-cluster"])
    down = time.time()
    say("PostgreSQL stopped (immediate)")
    yield wait(options["pg-down"])
    cluster("start", options["pg-cluster"])
    up = time.time()
    gap, count = gaps(down, up)
    say("PostgreSQL started; while it was down the client received {} events, longest pause {:.1f}s".format(count, gap or 0))
    yield untilAttached("caught up and rejoined")
    yield wait(10)

    server.refuseConnections()
    refused = time.time()
    say("RPC refusing connections")
    yield wait(options["rpc-down"])
    server.acceptConnections()
    back = time.time()
    say("RPC accepting again")
    while not factory.arrivals or factory.arrivals[-1] < back:
        yield wait(0.1)
    say("first event after the RPC came back: {:.1f}s later".format(factory.arrivals[-1] - back))
    yield wait(10)

    daemon.terminate()
    for _ in range(100):
        if daemon.poll() is not None:
            break
        yield wait(0.2)
    poller.stop()
    say("daemon stopped, exit status {}".format(daemon.returncode))

    ids = factory.ids
    # the client connected a moment after the daemon started: from its first event on
    expected = [e.id for ledger in range(START, positions.ledgerOf(ids[-1]) + 1) for e in server.eventsInLedger(ledger)
                if e.type == "contract" and ids[0] <= e.id <= ids[-1]]
    stored = [r[0] for r in pg(port, "SELECT id FROM stellar_events ORDER BY id", database="stellar_events")]
    checkpoint = pg(port, "SELECT cursor FROM stellar_events_checkpoints", database="stellar_events")[0][0]
    storedExpected = [e.id for ledger in range(START, positions.ledgerOf(checkpoint) + 1)
                      for e in server.eventsInLedger(ledger) if e.type == "contract" and e.id <= checkpoint]
    to503 = next((t - refused for t, s in health if t >= refused and s[0] == 503), None)
    to200 = next((t - back for t, s in health if t >= back and s[0] == 200), None)
    print()
    print("WebSocket client: {} events, {} expected up to its last; identical and in order: {}; duplicates: {}; other messages: {}".format(
        len(ids), len(expected), ids == expected, len(ids) - len(set(ids)), sorted(set(factory.other))))
    print("PostgreSQL: {} rows, {} distinct; every event from start_ledger up to its checkpoint {} stored, once: {}".format(
        len(stored), len(set(stored)), checkpoint, stored == storedExpected))
    print("/healthz: 503 {:.1f}s after the RPC went away (health_timeout 10 s), 200 {:.1f}s after it came back".format(to503 or -1, to200 or -1))
    print("events received before the database existed: {} (first {:.1f}s after start)".format(
        sum(1 for t in factory.arrivals if t < phase1), (factory.arrivals[0] - say.t0) if factory.arrivals else -1))
    server.stopServing()


if __name__ == "__main__":
    options = Options()
    options.parseOptions()
    task.react(main, (options,))
