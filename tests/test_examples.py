"""
The example clients of C{examples/clients/} against the real daemon on loopback.

Each end-to-end test starts the bundled Stellar RPC test server (C{python -m
stellarflow.testing.rpcserver}) and the real C{twistd -n stellarflow} on a config whose
pipeline is RPCSourceAdapter -> GetEventsRPC -> SaveToWebSocket + MemoryConsumer: the
MemoryConsumer's JSON lines are every message the pipeline delivered, the oracle. A client
registers a filter and must receive, for the span of ids it saw, exactly the oracle's events
that an independent predicate (written here, not the server's filter code) selects, in order.
The guide's C{["payment", "trade"]} runs in each client against a daemon following the test
server's whole ledgers (C{rpc_method: getLedgers} -> GetLedgersRPC): what each received must
also be exactly what L{stellarflow.meta} extracts from the same ledgers, fetched here.

Clients: the guide's Python client, its Node client (C{node}, after C{npm ci} in
examples/clients/node), its browser page in headless Chromium (driven over the DevTools
protocol), and the reconnecting client (across a cut connection and a daemon restart). A
missing C{node} or C{chromium} skips, except under C{CI=true} where it fails. Every process is
ended at cleanup, every wait is bounded, everything binds 127.0.0.1.
"""

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from decimal import Decimal

import websocket
from stellar_sdk import Keypair, MuxedAccount
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.helpers import REPO

CLIENTS = os.path.join(REPO, "examples", "clients")
CHROMIUM = "/usr/bin/chromium"
WAIT = 30.0
MINIMUM = 15

# Five fixed accounts for the RPC test server, so that a test can filter on one of them.
ACCOUNTS = [Keypair.from_raw_ed25519_seed(bytes([n]) * 32).public_key for n in range(1, 6)]


def required(what, reason):
    """
    Skip for C{reason}, except under CI where C{what} is required and its absence fails.
    """
    if os.environ.get("CI") == "true":
        raise AssertionError("{} is required under CI: {}".format(what, reason))
    raise SkipTest(reason)


def waitUntil(predicate, timeout=WAIT, what="condition"):
    """
    Poll C{predicate} until it returns something true (returned), failing after C{timeout} s.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after {}s waiting for {}".format(timeout, what))
        time.sleep(0.05)


def jsonLines(path):
    """
    The complete JSON lines of C{path} (a line still being written is left out).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def loadExample(*parts):
    """
    Import an example client module from its file.
    """
    path = os.path.join(CLIENTS, *parts)
    name = "example_" + os.path.splitext(parts[-1])[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Process:
    """
    A child process whose stdout and stderr go to files; ended at cleanup.
    """

    def __init__(self, testCase, name, argv, cwd=REPO, env=None, group=False):
        self.name = name
        directory = os.path.abspath(testCase.mktemp())
        os.makedirs(directory)
        self.out = os.path.join(directory, name + ".out")
        self.err = os.path.join(directory, name + ".err")
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=group,
            )
        self.group = group
        testCase.addCleanup(self.stop)

    def stdout(self):
        with open(self.out, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err, encoding="utf-8", errors="replace") as f:
            return f.read()

    def events(self):
        return jsonLines(self.out)

    def find(self, pattern, timeout=WAIT, stream="stderr"):
        """
        Wait for C{pattern} in the output; its match. Fails early when the process exits.
        """
        read = self.stderr if stream == "stderr" else self.stdout

        def look():
            match = re.search(pattern, read())
            if match is None and self.proc.poll() is not None:
                match = re.search(pattern, read())
                if match is None:
                    raise AssertionError("{} exited with {} before printing {!r}:\n{}\n{}".format(
                        self.name, self.proc.returncode, pattern, self.stdout()[-3000:], self.stderr()[-3000:]))
            return match

        return waitUntil(look, timeout, "{!r} from {}".format(pattern, self.name))

    def send(self, sig):
        if self.proc.poll() is None:
            if self.group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """
        End the process (C{sig}, then SIGKILL after C{timeout}); its exit status.
        """
        self.send(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.proc.wait(10)
        return self.proc.returncode


def twistdEnv():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Stack:
    """
    The RPC test server and the real daemon streaming its events on 127.0.0.1.
    """

    def __init__(self, testCase, allowedOrigins=(), ledgers=False):
        self.testCase = testCase
        self.ledgers = ledgers
        self.dir = os.path.abspath(testCase.mktemp())
        os.makedirs(self.dir)
        self.delivered = os.path.join(self.dir, "delivered.jsonl")
        self.config = os.path.join(self.dir, "pipe.yaml")
        self.allowedOrigins = list(allowedOrigins)
        self.rpc = Process(testCase, "rpcserver", [
            sys.executable, "-m", "stellarflow.testing.rpcserver", "--port", "0", "--seed", "7",
            "--rate", "20", "--ledger-close-time", "0.2", "--history", "2",
            "--accounts", ",".join(ACCOUNTS),
        ], env=twistdEnv())
        self.rpcPort = int(self.rpc.find(r"Stellar RPC test server on http://127\.0\.0\.1:(\d+)/", stream="stdout").group(1))
        self.wsPort = 0
        self.daemon = None
        self.starts = 0

    @property
    def url(self):
        return "ws://127.0.0.1:{}/ws".format(self.wsPort)

    def startDaemon(self):
        """
        Start twistd (on the port it had before, after a stop); returns once it listens.
        Following whole ledgers (C{ledgers}): C{rpc_method: getLedgers} and C{GetLedgersRPC}
        with its defaults (payments, trades and contract events).
        """
        if self.ledgers:
            source = "{{rpc_url: 'http://127.0.0.1:{rpc}/', network: testnet, poll_interval: 0.1, rpc_method: getLedgers}}"
            processors = "[{{type: GetLedgersRPC, config: {{workers: 1}}}}]"
        else:
            source = "{{rpc_url: 'http://127.0.0.1:{rpc}/', network: testnet, poll_interval: 0.1}}"
            processors = "[{{type: GetEventsRPC, config: {{}}}}]"
        with open(self.config, "w") as f:
            f.write((
                "state_dir: {state}\n"
                "pipelines:\n"
                "  Examples:\n"
                "    source:\n"
                "      type: RPCSourceAdapter\n"
                "      config: " + source + "\n"
                "    processors: " + processors + "\n"
                "    consumers:\n"
                "      - type: SaveToWebSocket\n"
                "        config: {{host: 127.0.0.1, port: {ws}, path: /ws, allowed_origins: {origins}}}\n"
                "      - type: MemoryConsumer\n"
                "        config: {{path: '{out}'}}\n").format(
                    state=os.path.join(self.dir, "state"), rpc=self.rpcPort, ws=self.wsPort,
                    origins=json.dumps(self.allowedOrigins), out=self.delivered,
                )
            )
        self.starts += 1
        exe = os.path.join(os.path.dirname(sys.executable), "twistd")
        self.daemon = Process(self.testCase, "twistd-%d" % self.starts,
                              [exe, "-n", "--pidfile=", "stellarflow", "-c", self.config],
                              cwd=self.dir, env=twistdEnv())
        match = self.daemon.find(r"WebSocket server listening on ws://127\.0\.0\.1:(\d+)/ws", stream="stdout")
        self.wsPort = int(match.group(1))
        return self

    def stopDaemon(self):
        status = self.daemon.stop()
        self.testCase.assertNotIn("Traceback", self.daemon.stdout())
        return status

    def oracle(self):
        return jsonLines(self.delivered)

    def ledgerMessages(self, first, last):
        """
        What L{stellarflow.meta} makes of ledgers C{first} to C{last} as the test server serves
        them (fetched here with getLedgers, decoded in this process), as JSON values.
        """
        from stellar_sdk import xdr

        from stellarflow.events.network import TESTNET
        from stellarflow.meta import ledgerMessages

        messages = []
        start = first
        while start <= last:
            request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getLedgers", "params": {
                "startLedger": start, "pagination": {"limit": min(200, last - start + 1)}}}).encode()
            with urllib.request.urlopen(urllib.request.Request(
                    "http://127.0.0.1:{}/".format(self.rpcPort), request, {"Content-Type": "application/json"}),
                    timeout=10) as response:
                ledgers = json.load(response)["result"]["ledgers"]
            self.testCase.assertTrue(ledgers, "the test server has no ledger {}".format(start))
            for ledger in ledgers:
                if ledger["sequence"] > last:
                    break
                lcm = xdr.LedgerCloseMeta.from_xdr(ledger["metadataXdr"])
                messages.extend(json.loads(json.dumps(m)) for m in ledgerMessages(lcm, TESTNET))
            start = ledgers[-1]["sequence"] + 1
        return messages

    def assertPaymentsAndTrades(self, received, minimum=MINIMUM):
        """
        C{received} is exactly the payments and trades of the ledgers it spans, as the daemon
        delivered them and as L{stellarflow.meta} extracts them from the same ledgers; some of
        each kind, path payments and pool trades among them.
        """
        self.assertReceivedExactly(received, paymentOrTrade, minimum)
        ids = [e["id"] for e in received]
        first, last = int(ids[0].split("-")[0]) >> 32, int(ids[-1].split("-")[0]) >> 32
        expected = [m for m in self.ledgerMessages(first, last)
                    if ids[0] <= m["id"] <= ids[-1] and m["type"] in ("payment", "trade")]
        self.testCase.assertEqual(received, expected)
        kinds = {(e["type"], e.get("operation_type"), e.get("trade_type")) for e in received}
        for kind in [("payment", "payment", None), ("payment", "path_payment_strict_send", None),
                     ("trade", "manage_sell_offer", "orderbook"), ("trade", "path_payment_strict_send", "liquidity_pool")]:
            self.testCase.assertIn(kind, kinds)

    def assertReceivedExactly(self, received, predicate, minimum=MINIMUM):
        """
        C{received} holds at least C{minimum} events, all matching C{predicate}, and is exactly
        what the pipeline delivered that C{predicate} selects between its first and last ids.
        """
        tc = self.testCase
        tc.assertGreaterEqual(len(received), minimum, "too few events received")
        for event in received:
            tc.assertTrue(predicate(event), "event does not match the filter: {}".format(event))
        ids = [e["id"] for e in received]
        tc.assertEqual(ids, sorted(set(ids)), "events out of order or repeated")
        waitUntil(lambda: any(m["id"] == ids[-1] for m in self.oracle()), 10, "the oracle to hold " + ids[-1])
        expected = [m for m in self.oracle() if ids[0] <= m["id"] <= ids[-1] and predicate(m)]
        tc.assertEqual([e["id"] for e in received], [m["id"] for m in expected])
        tc.assertEqual(received, expected)


# -- the filters' meaning, written independently of stellarflow.websocket.filters


def account(address):
    if isinstance(address, str) and address.startswith("M"):
        return MuxedAccount.from_account(address).account_id
    return address


def nativeXLM(event):
    return (event.get("asset_code") == "XLM" and event.get("asset_issuer") is None
            and event.get("asset_verified") is True)


def usdcTransfer(event):
    return (event.get("event_type") == "transfer" and event.get("asset_code") == "USDC"
            and event.get("asset_verified") is True)


def paymentOrTrade(event):
    return event.get("type") in ("payment", "trade")


def paymentOfAtLeast(amount):
    def predicate(event):
        return (event.get("event_type") == "transfer" and event.get("from") and event.get("to")
                and account(event["from"]) != account(event["to"])
                and event.get("amount") is not None and Decimal(event["amount"]) >= Decimal(amount))
    return predicate


def involving(address):
    def predicate(event):
        involved = list(event.get("account_ids") or []) + [event.get("from"), event.get("to"), event.get("contract_id")]
        return address in {account(a) for a in involved if a}
    return predicate


class StaticServer:
    """
    Serve a directory over HTTP on 127.0.0.1 from a thread; stopped at cleanup.
    """

    def __init__(self, testCase, directory):
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=directory)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.origin = "http://127.0.0.1:{}".format(self.port)
        thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        testCase.addCleanup(lambda: (self.server.shutdown(), self.server.server_close(), thread.join(10)))


class DevTools:
    """
    Headless Chromium driven over the Chrome DevTools Protocol (websocket-client).
    """

    def __init__(self, testCase):
        profile = os.path.abspath(testCase.mktemp())
        os.makedirs(profile)
        self.chromium = Process(testCase, "chromium", [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--user-data-dir=" + profile, "--remote-debugging-port=0",
            "about:blank",
        ], group=True)
        active = os.path.join(profile, "DevToolsActivePort")

        def activePort():
            try:
                with open(active) as f:
                    lines = f.read().split("\n")
            except FileNotFoundError:
                return None
            return int(lines[0]) if len(lines) > 1 and lines[0].isdigit() else None

        port = waitUntil(activePort, WAIT, "Chromium's DevToolsActivePort")
        with urllib.request.urlopen("http://127.0.0.1:{}/json/list".format(port), timeout=10) as response:
            targets = json.load(response)
        page = [t for t in targets if t.get("type") == "page"][0]
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
        testCase.addCleanup(self.ws.close)
        self.ids = 0

    def call(self, method, **params):
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.ids:
                if "error" in reply:
                    raise AssertionError("{} failed: {}".format(method, reply["error"]))
                return reply["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError("{} raised: {}".format(expression, result["exceptionDetails"]))
        return result["result"].get("value")


class TCPCutter:
    """
    A loopback TCP relay whose open connections the test can cut (a dropped network path).
    """

    def __init__(self, testCase, port):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.pairs = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        testCase.addCleanup(self.close)

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """
        Drop every open connection at once (both ends see the TCP connection end).
        """
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        return len(pairs)

    def close(self):
        self.closed = True
        self.thread.join(5)
        self.listener.close()
        self.cut()


class PythonClientTests(SynchronousTestCase):
    def test_guideClient(self):
        """
        The guide's Python client, URL and filter from the command line: native XLM only.
        """
        stack = Stack(self).startDaemon()
        client = Process(self, "client", [
            sys.executable, os.path.join(CLIENTS, "python", "client.py"), stack.url,
            "--types=", "--asset-codes", "XLM",
        ])
        client.find(r'Registered with filters: \{"types": \[\], "account_ids": \[\], "asset_codes": \["XLM"\], "min_amount": ""\}')
        waitUntil(lambda: len(client.events()) >= MINIMUM, WAIT, "events at the Python client")
        client.stop()
        stack.assertReceivedExactly(client.events(), nativeXLM)
        self.assertIn("Welcome: Please send registration message to begin receiving events", client.stderr())

    def test_guideClientEnvironmentAndMaxEvents(self):
        """
        WS_URL and WS_* filters come from the environment; --max-events ends the client cleanly.
        """
        stack = Stack(self).startDaemon()
        env = dict(os.environ, WS_URL=stack.url, WS_TYPES="transfer", WS_ASSET_CODES="USDC")
        client = Process(self, "client", [
            sys.executable, os.path.join(CLIENTS, "python", "client.py"), "--max-events", "20",
        ], env=env)
        self.assertEqual(client.proc.wait(WAIT), 0, client.stderr())
        stack.assertReceivedExactly(client.events(), usdcTransfer, minimum=20)
        self.assertEqual(len(client.events()), 20)

    def test_guideDefaults(self):
        """
        Without arguments the guide's own URL and filters apply.
        """
        module = loadExample("python", "client.py")
        args = module.parse_args([], environ={})
        self.assertEqual(args.url, "ws://localhost:8080/ws")
        self.assertEqual(args.filters, {"types": ["contract_event"], "account_ids": [], "asset_codes": ["USDC"], "min_amount": ""})
        args = module.parse_args(["ws://h:1/ws", "--account-ids", " GA, GB ,", "--min-amount", "100"],
                                 environ={"WS_ASSET_CODES": ""})
        self.assertEqual(args.url, "ws://h:1/ws")
        self.assertEqual(args.filters, {"types": ["contract_event"], "account_ids": ["GA", "GB"], "asset_codes": [], "min_amount": "100"})


class NodeClientTests(SynchronousTestCase):
    def setUp(self):
        if shutil.which("node") is None:
            required("node", "node is not installed (apt-get install nodejs npm)")
        if not os.path.exists(os.path.join(CLIENTS, "node", "node_modules", "ws", "package.json")):
            required("examples/clients/node/node_modules", "run `npm ci` in examples/clients/node first")

    def test_guideClient(self):
        """
        The guide's Node client (ws): USDC transfers only, the look-alike USDC excluded.
        """
        stack = Stack(self).startDaemon()
        client = Process(self, "node", [
            "node", os.path.join(CLIENTS, "node", "client.js"), stack.url,
            "--types", "transfer", "--asset-codes=USDC",
        ], cwd=os.path.join(CLIENTS, "node"))
        client.find(r'Registered with filters: \{"types":\["transfer"\],"account_ids":\[\],"asset_codes":\["USDC"\],"min_amount":""\}')
        waitUntil(lambda: len(client.events()) >= MINIMUM, WAIT, "events at the Node client")
        client.stop()
        stack.assertReceivedExactly(client.events(), usdcTransfer)

    def test_maxEventsAndServerError(self):
        """
        An invalid filter gets the server's error on stderr (the client stays connected); with
        WS_* from the environment and --max-events the client exits by itself.
        """
        stack = Stack(self).startDaemon()
        env = dict(os.environ, WS_TYPES="", WS_ASSET_CODES="", WS_ACCOUNT_IDS="GNOTANACCOUNT")
        bad = Process(self, "node-bad", ["node", os.path.join(CLIENTS, "node", "client.js"), stack.url], env=env)
        bad.find(r"Server error invalid_account_id: filters\.account_ids")
        env = dict(os.environ, WS_URL=stack.url, WS_TYPES="", WS_ASSET_CODES="", WS_ACCOUNT_IDS=ACCOUNTS[1])
        client = Process(self, "node", ["node", os.path.join(CLIENTS, "node", "client.js"), "--max-events", "15"], env=env)
        self.assertEqual(client.proc.wait(WAIT), 0, client.stderr())
        stack.assertReceivedExactly(client.events(), involving(ACCOUNTS[1]))
        self.assertIn("Connection closed: 1000", client.stderr())


class BrowserClientTests(SynchronousTestCase):
    def setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            required("chromium", "{} is not installed (.ci/install-browser installs it)".format(CHROMIUM))

    def test_guidePageInChromium(self):
        """
        The guide's browser client in headless Chromium, served from an origin the daemon lists
        in allowed_origins: payments of at least 5000 units, shown in the page.
        """
        static = StaticServer(self, os.path.join(CLIENTS, "browser"))
        stack = Stack(self, allowedOrigins=[static.origin]).startDaemon()
        browser = DevTools(self)
        query = urllib.parse.urlencode({"url": stack.url, "types": "payment", "min_amount": "5000"})
        browser.call("Page.navigate", url="{}/index.html?{}".format(static.origin, query))
        waitUntil(lambda: browser.evaluate("(window.received || []).length") >= MINIMUM, WAIT,
                  "events in the browser page")
        # one snapshot (events keep arriving between evaluations)
        page = json.loads(browser.evaluate(
            "JSON.stringify({status: window.connectionStatus, registration: window.registration,"
            " errors: window.errors, received: window.received, count: document.getElementById('count').textContent,"
            " shown: Array.from(document.querySelectorAll('#events li pre'), (pre) => JSON.parse(pre.textContent))})"
        ))
        self.assertEqual(page["errors"], [])
        self.assertEqual(page["status"], "registered")
        self.assertEqual(page["registration"]["filters"],
                         {"types": ["payment"], "account_ids": [], "asset_codes": [], "min_amount": "5000"})
        received = page["received"]
        stack.assertReceivedExactly(received, paymentOfAtLeast("5000"))
        # the page shows them, newest first
        self.assertEqual(page["shown"], received[::-1][:500])
        self.assertEqual(page["count"], str(len(received)))

    def test_refusedOrigin(self):
        """
        A page from an origin the daemon does not list cannot connect, and says so.
        """
        static = StaticServer(self, os.path.join(CLIENTS, "browser"))
        stack = Stack(self, allowedOrigins=["https://app.example.com"]).startDaemon()
        browser = DevTools(self)
        browser.call("Page.navigate", url="{}/index.html?url={}".format(static.origin, stack.url))
        waitUntil(lambda: (browser.evaluate("window.connectionStatus") or "").startswith("closed"), WAIT,
                           "the page to see its connection refused")
        self.assertEqual(browser.evaluate("window.connectionStatus"), "closed (1006)")
        self.assertEqual(browser.evaluate("window.received.length"), 0)


class PaymentsAndTradesTests(SynchronousTestCase):
    """
    The guide's first filter, C{"types": ["payment", "trade"]}, in each of its clients, against
    a daemon following the test server's ledgers (C{rpc_method: getLedgers}): each receives
    exactly the payments and trades of those ledgers.
    """

    def test_pythonClient(self):
        stack = Stack(self, ledgers=True).startDaemon()
        client = Process(self, "client", [
            sys.executable, os.path.join(CLIENTS, "python", "client.py"), stack.url,
            "--types", "payment,trade", "--asset-codes=",
        ])
        registered = client.find(r"Registered with filters: (\{.*\})")
        self.assertEqual(json.loads(registered.group(1))["types"], ["payment", "trade"])
        waitUntil(lambda: len(client.events()) >= 60, WAIT, "payments and trades at the Python client")
        client.stop()
        stack.assertPaymentsAndTrades(client.events(), minimum=60)

    def test_nodeClient(self):
        NodeClientTests.setUp(self)
        stack = Stack(self, ledgers=True).startDaemon()
        env = dict(os.environ, WS_ASSET_CODES="")
        client = Process(self, "node", [
            "node", os.path.join(CLIENTS, "node", "client.js"), stack.url, "--types", "payment,trade",
            "--max-events", "60",
        ], cwd=os.path.join(CLIENTS, "node"), env=env)
        self.assertEqual(client.proc.wait(WAIT), 0, client.stderr())
        self.assertIn('Registered with filters: {"types":["payment","trade"],"account_ids":[],"asset_codes":[],'
                      '"min_amount":""}', client.stderr())
        stack.assertPaymentsAndTrades(client.events(), minimum=60)

    def test_browserPage(self):
        BrowserClientTests.setUp(self)
        static = StaticServer(self, os.path.join(CLIENTS, "browser"))
        stack = Stack(self, allowedOrigins=[static.origin], ledgers=True).startDaemon()
        browser = DevTools(self)
        query = urllib.parse.urlencode({"url": stack.url, "types": "payment,trade"})
        browser.call("Page.navigate", url="{}/index.html?{}".format(static.origin, query))
        waitUntil(lambda: browser.evaluate("(window.received || []).length") >= 60, WAIT,
                  "payments and trades in the browser page")
        page = json.loads(browser.evaluate(
            "JSON.stringify({registration: window.registration, errors: window.errors, received: window.received})"))
        self.assertEqual(page["errors"], [])
        self.assertEqual(page["registration"]["filters"],
                         {"types": ["payment", "trade"], "account_ids": [], "asset_codes": [], "min_amount": ""})
        self.assertEqual(page["registration"]["available_types"], [
            "approve", "burn", "clawback", "contract_event", "fee", "mint", "payment", "set_admin",
            "set_authorized", "trade", "transfer"])
        self.assertNotIn("warnings", page["registration"])
        stack.assertPaymentsAndTrades(page["received"], minimum=60)


class ReconnectingClientTests(SynchronousTestCase):
    def startClient(self, stack, url, *filters):
        return Process(self, "reconnecting", [
            sys.executable, os.path.join(CLIENTS, "python", "reconnecting_client.py"), url,
            "--backoff-initial", "0.4", "--backoff-max", "3", "--idle-timeout", "20",
        ] + list(filters))

    def resumeReply(self, text, after):
        """
        How the server answered the register carrying resume_after (past offset C{after}):
        C{("unsupported", None)} (error unknown_field, then registered without it: a server
        without resume), C{("resumed", None)}, or C{("gap", gap)}.
        """
        text = text[after:]
        if "server does not support resume_after (unknown_field); registering without it" in text:
            self.assertRegex(text, r"registered: filters=.* resumed=null")
            return "unsupported", None
        match = re.search(r"registered: filters=.* resumed=(true|false)", text)
        self.assertIsNotNone(match, "no reply to the resuming register:\n" + text)
        if match.group(1) == "true":
            self.assertNotIn("gap reported by server", text)
            return "resumed", None
        gap = json.loads(re.search(r"gap reported by server: (\{.*\})", text).group(1))
        return "gap", gap

    def assertResumed(self, stack, events, split, resumeAfter, mode, gap, predicate):
        """
        C{events[:split]} came before the reconnect, the rest after it, which registered with
        C{resumeAfter}. Resumed: nothing lost or repeated across it. Gap: exactly the events in
        the gap (C{from_after < id <= to}) are missing. Unsupported (a server without resume):
        each side is complete on its own.
        """
        # resume_after is the last event before the reconnect, or a later cursor the server
        # sent, past events that do not match
        last = events[split - 1]["id"]
        self.assertLessEqual(last, resumeAfter)
        self.assertEqual([m for m in stack.oracle() if last < m["id"] <= resumeAfter and predicate(m)], [])
        if mode == "resumed":
            stack.assertReceivedExactly(events, predicate)
        elif mode == "gap":
            self.assertEqual(gap["from_after"], resumeAfter)
            self.assertLess(gap["from_after"], gap["to"])

            def lost(e):
                return gap["from_after"] < e["id"] <= gap["to"]

            self.assertFalse([e for e in events if lost(e)])
            stack.assertReceivedExactly(events, lambda e: predicate(e) and not lost(e))
        else:
            stack.assertReceivedExactly(events[:split], predicate)
            stack.assertReceivedExactly(events[split:], predicate)

    def test_reconnectsAfterCutAndResumes(self):
        """
        The connection is cut under the client (a dropped network path): it reconnects after a
        jittered delay and registers with resume_after = the last event id it had. Whatever the
        server answers, events keep coming, in order, without repeats; where the server resumed,
        nothing was lost across the cut.
        """
        stack = Stack(self).startDaemon()
        relay = TCPCutter(self, stack.wsPort)
        url = "ws://127.0.0.1:{}/ws".format(relay.port)
        client = self.startClient(stack, url, "--account-ids", ACCOUNTS[0])
        waitUntil(lambda: len(client.events()) >= MINIMUM, WAIT, "events before the cut")
        before = len(client.events())
        self.assertEqual(relay.cut(), 1)
        resumeAt = client.find(r"register sent \(resume_after (\S+)\)")
        waitUntil(lambda: len(client.events()) >= before + MINIMUM, WAIT, "events after the reconnect")
        client.stop()
        text = client.stderr()
        self.assertRegex(text, r"connection lost: WebSocketConnectionClosedException")
        self.assertRegex(text, r"reconnecting in 0\.[2-4]\d s \(attempt 1\)")
        self.assertIn("(connection 2)", text)
        events = client.events()
        split = len([e for e in events if e["id"] <= resumeAt.group(1)])
        mode, gap = self.resumeReply(text, resumeAt.start())
        self.assertResumed(stack, events, split, resumeAt.group(1), mode, gap, involving(ACCOUNTS[0]))

    def test_reconnectsWithBackoffAcrossDaemonRestart(self):
        """
        The daemon stops (close 1001) and comes back 2 s later on the same port: the client
        retries with growing jittered delays meanwhile, reconnects, and keeps receiving its
        filtered events in order without repeats.
        """
        stack = Stack(self).startDaemon()
        client = self.startClient(stack, stack.url, "--asset-codes", "XLM")
        waitUntil(lambda: len(client.events()) >= MINIMUM, WAIT, "events before the restart")
        stack.stopDaemon()
        client.find(r"connection closed by server: code 1001 server shutting down")
        client.find(r"reconnecting in \S+ s \(attempt 3\)")
        before = len(client.events())
        stack.startDaemon()
        client.find(r"\(connection 2\)")
        waitUntil(lambda: len(client.events()) >= before + MINIMUM, WAIT, "events after the restart")
        client.stop()
        text = client.stderr()
        delays = [float(d) for d in re.findall(r"reconnecting in (\S+) s \(attempt \d+\)", text)]
        ceilings = [min(3.0, 0.4 * 2 ** n) for n in range(len(delays))]
        for delay, ceiling in zip(delays, ceilings, strict=True):
            self.assertTrue(ceiling / 2 - 0.01 <= delay <= ceiling + 0.01, (delays, ceilings))
        self.assertGreaterEqual(len(delays), 3)
        self.assertGreater(delays[2], delays[0])
        resumeAt = re.search(r"register sent \(resume_after (\S+)\)", text)
        mode, gap = self.resumeReply(text, resumeAt.start())
        self.assertResumed(stack, client.events(), before, resumeAt.group(1), mode, gap, nativeXLM)


class ReconnectingClientLogicTests(SynchronousTestCase):
    """
    The reconnecting client's bookkeeping, without sockets.
    """

    def setUp(self):
        self.module = loadExample("python", "reconnecting_client.py")

    def test_backoffGrowsWithJitterAndResets(self):
        rolls = iter([0.0, 1.0, 0.5, 1.0, 1.0, 0.0])
        backoff = self.module.Backoff(initial=1.0, maximum=5.0, rng=lambda: next(rolls))
        self.assertEqual([backoff.next() for _ in range(5)], [0.5, 2.0, 3.0, 5.0, 5.0])
        backoff.reset()
        self.assertEqual(backoff.next(), 0.5)

    def test_idOrder(self):
        key = self.module.id_key
        self.assertLess(key("0000004380866641920-0000000009"), key("0000004380866641920-0000000010"))
        self.assertLess(key("0000000000000000009-4294967295"), key("0000004380866641920-0000000000"))

    def test_dedupeAndCursor(self):
        got = []
        client = self.module.ResumingClient("ws://x/ws", {}, got.append)
        ids = ["0000000000000000001-0000000000", "0000000000000000001-0000000001"]
        for i in ids + ids[:1]:
            client._event({"type": "contract_event", "id": i})
        self.assertEqual([e["id"] for e in got], ids)
        self.assertEqual(client.duplicates, 1)
        client._advance("0000000000000000002-0000000000")
        client._advance("0000000000000000001-0000000005")
        self.assertEqual(client.last_id, "0000000000000000002-0000000000")
        client._event({"type": "contract_event", "id": "0000000000000000001-0000000009"})
        self.assertEqual(len(got), 2)


class FakeServerSocket:
    """
    A scripted one-connection-at-a-time WebSocket server (for protocol replies the daemon may
    not send yet: resumed, gap, cursor), on 127.0.0.1 in a thread.
    """

    def __init__(self, testCase, script):
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.registers = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        testCase.addCleanup(lambda: (self.listener.close(), self.thread.join(WAIT)))

    def _run(self):
        import base64
        import hashlib
        for replies in self.script:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(WAIT)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                key = re.search(rb"(?i)sec-websocket-key: *(\S+)", request).group(1)
                accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                self._send(conn, {"type": "welcome"})
                self.registers.append(json.loads(self._recv(conn)))
                for reply in replies:
                    if reply == "close":
                        conn.sendall(b"\x88\x02\x03\xe9")  # close 1001
                        break
                    self._send(conn, reply)
                # read what the client sends next (a register again, or its close reply)
                conn.settimeout(0.5)
                try:
                    while True:
                        text = self._recv(conn)
                        if text is not None:
                            self.registers.append(json.loads(text))
                except OSError:
                    pass

    @staticmethod
    def _send(conn, obj):
        data = json.dumps(obj).encode()
        head = bytes([0x81, len(data)]) if len(data) < 126 else bytes([0x81, 126]) + len(data).to_bytes(2, "big")
        conn.sendall(head + data)

    @staticmethod
    def _recv(conn):
        def exactly(n):
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise OSError("closed")
                data += chunk
            return data

        first, second = exactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(exactly(2), "big")
        elif length == 127:
            length = int.from_bytes(exactly(8), "big")
        mask = exactly(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(exactly(length)))
        if first & 0x0F == 0x8:
            raise OSError("closed by the client")
        return payload.decode() if first & 0x0F == 0x1 else None


def event(n):
    return {"type": "contract_event", "id": "%019d-%010d" % (n << 32, 0), "n": n}


class ReconnectingClientProtocolTests(SynchronousTestCase):
    """
    The resume protocol as the reconnecting client speaks it, against a scripted server.
    """

    def test_resumeGapCursorAndUnsupported(self):
        module = loadExample("python", "reconnecting_client.py")
        server = FakeServerSocket(self, [
            # 1: events, then the server goes away
            [{"type": "registered", "filters": {}}, event(1), event(2), "close"],
            # 2: resumed with a gap; a replayed duplicate; a cursor past event 5
            [{"type": "registered", "filters": {}, "resumed": False, "gap": {"from": event(3)["id"], "to": event(4)["id"]}},
             event(2), event(5), {"type": "cursor", "cursor": event(7)["id"]}, event(6), "close"],
            # 3: a server that does not know resume_after
            [{"type": "error", "error": "unknown_field", "message": "unknown field(s) in register message: 'resume_after'",
              "field": "resume_after"}],
        ])
        got = []
        client = module.ResumingClient("ws://127.0.0.1:{}/ws".format(server.port), {"asset_codes": ["XLM"]},
                                       got.append, backoff=module.Backoff(0.01, 0.02), idle_timeout=5, connect_timeout=2,
                                       sleep=lambda s: None)
        with self.assertLogs("reconnecting_client", "INFO") as logs:
            thread = threading.Thread(target=client.run, daemon=True)
            thread.start()
            waitUntil(lambda: len(server.registers) >= 4, WAIT, "the fourth register")
            client.stop()
            thread.join(WAIT)
        self.assertFalse(thread.is_alive())
        self.assertEqual([e["n"] for e in got], [1, 2, 5])
        self.assertEqual(client.duplicates, 2)
        self.assertEqual(server.registers[0], {"type": "register", "filters": {"asset_codes": ["XLM"]}})
        self.assertEqual(server.registers[1]["resume_after"], event(2)["id"])
        self.assertEqual(server.registers[2]["resume_after"], event(7)["id"])
        self.assertNotIn("resume_after", server.registers[3])
        self.assertFalse(client.resume_supported)
        text = "\n".join(logs.output)
        self.assertIn('gap reported by server: {"from": "%s", "to": "%s"}' % (event(3)["id"], event(4)["id"]), text)
        self.assertIn("server does not support resume_after (unknown_field); registering without it", text)
        self.assertIn("connection closed by server: code 1001", text)


class GoClientTests(SynchronousTestCase):
    """
    The Go client cannot be fetched-and-built here (no Go module proxy); check its shape, and
    build it when a Go toolchain and Debian's gorilla/websocket are installed.
    """

    def setUp(self):
        with open(os.path.join(CLIENTS, "go", "main.go")) as f:
            self.source = f.read()

    def test_registrationShape(self):
        """
        The same registration structs and JSON tags as the guide (and as our protocol).
        """
        for line in [
            'Type    string        `json:"type"`',
            'Filters ClientFilters `json:"filters"`',
            'Types      []string `json:"types"`',
            'AccountIDs []string `json:"account_ids"`',
            'AssetCodes []string `json:"asset_codes"`',
            'MinAmount  string   `json:"min_amount"`',
            'Type: "register",',
            '"github.com/gorilla/websocket"',
            "websocket.DefaultDialer.Dial(*url, nil)",
            "c.WriteMessage(websocket.TextMessage, regJSON)",
        ]:
            self.assertIn(line, self.source)
        with open(os.path.join(CLIENTS, "go", "go.mod")) as f:
            self.assertRegex(f.read(), r"require github\.com/gorilla/websocket v1\.\d+\.\d+")

    def test_builds(self):
        gopath = "/usr/share/gocode"
        if shutil.which("go") is None or not os.path.isdir(os.path.join(gopath, "src", "github.com", "gorilla", "websocket")):
            required("go", "needs go and Debian's golang-github-gorilla-websocket-dev (no module proxy here)")
        work = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(work, "src", "client"))
        shutil.copy(os.path.join(CLIENTS, "go", "main.go"), os.path.join(work, "src", "client"))
        env = dict(os.environ, GO111MODULE="off", GOPATH=work + os.pathsep + gopath, GOCACHE=os.path.join(work, "cache"))
        for argv in (["go", "vet", "."], ["go", "build", "-o", os.path.join(work, "client"), "."]):
            result = subprocess.run(argv, cwd=os.path.join(work, "src", "client"), env=env,
                                    capture_output=True, text=True, timeout=300)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class FaithfulToTheGuideTests(SynchronousTestCase):
    """
    The examples keep the guide's code: these lines of its examples appear in ours verbatim.
    """

    def assertKeeps(self, path, lines):
        with open(os.path.join(CLIENTS, *path)) as f:
            source = f.read()
        for line in lines:
            self.assertIn(line, source, "{} lost the guide's line {!r}".format("/".join(path), line))

    def test_browser(self):
        self.assertKeeps(("browser", "index.html"), [
            "ws.onopen = () => {", "console.log('Connected to WebSocket server');",
            "ws.onmessage = (event) => {", "const data = JSON.parse(event.data);",
            "if (data.type === 'welcome') {", "} else if (data.type === 'registered') {",
            "console.log('Registration confirmed:', data.filters);", "ws.onerror = (error) => {",
            "ws.onclose = (event) => {", "type: 'register',",
        ])

    def test_python(self):
        self.assertKeeps(("python", "client.py"), [
            "def on_message(ws, message):", "data = json.loads(message)", "if data['type'] == 'welcome':",
            "registration = {", "'type': 'register',", "ws.send(json.dumps(registration))",
            "elif data['type'] == 'registered':", "def on_error(ws, error):",
            "def on_close(ws, close_status_code, close_msg):", "def on_open(ws):",
            "ws = websocket.WebSocketApp(", "ws.run_forever()",
        ])

    def test_node(self):
        self.assertKeeps(("node", "client.js"), [
            "const WebSocket = require('ws');", "ws.on('open', () => {", "ws.send(JSON.stringify({",
            "type: 'register',", "ws.on('message', (data) => {", "const message = JSON.parse(data);",
            "if (message.type === 'welcome') {", "} else if (message.type === 'registered') {",
            "ws.on('error', (error) => {", "ws.on('close', (code, reason) => {",
        ])
        with open(os.path.join(CLIENTS, "node", "package.json")) as f:
            self.assertIn("ws", json.load(f)["dependencies"])
        with open(os.path.join(CLIENTS, "node", "package-lock.json")) as f:
            self.assertIn("node_modules/ws", json.load(f)["packages"])
