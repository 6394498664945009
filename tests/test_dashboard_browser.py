"""
The dashboard page in headless Chromium (Debian's C{chromium}, driven over the DevTools
protocol), served by the real daemon (C{twistd -n stellarflow}) following the bundled Stellar
RPC test server, all on 127.0.0.1.

The pipeline also has a MemoryConsumer whose JSON lines are every message delivered: the
oracle the page's rows are compared with (through predicates written here, not the server's
filter code).  Each test also checks that the page logged no error and threw nothing.
Screenshots (phone and desktop width) are saved under the test's C{_trial_temp} directory.
A missing chromium skips, except under C{CI=true} where it fails.
"""

import base64
import json
import os
import sys
import time

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.websocket.filters import KNOWN_TYPES
from tests.test_examples import (
    ACCOUNTS,
    CHROMIUM,
    WAIT,
    DevTools,
    Process,
    involving,
    jsonLines,
    required,
    twistdEnv,
    waitUntil,
)

MINIMUM = 10


class DashboardStack:
    """
    The RPC test server and the real daemon (WebSocket with its dashboard, plus the oracle).
    """

    def __init__(self, testCase, rate=3, closeTime=0.2):
        self.testCase = testCase
        self.dir = os.path.abspath(testCase.mktemp())
        os.makedirs(self.dir)
        self.delivered = os.path.join(self.dir, "delivered.jsonl")
        self.config = os.path.join(self.dir, "pipe.yaml")
        self.rpc = Process(testCase, "rpcserver", [
            sys.executable, "-m", "stellarflow.testing.rpcserver", "--port", "0", "--seed", "11",
            "--rate", str(rate), "--ledger-close-time", str(closeTime), "--history", "2",
            "--accounts", ",".join(ACCOUNTS),
        ], env=twistdEnv())
        self.rpcPort = int(self.rpc.find(r"Stellar RPC test server on http://127\.0\.0\.1:(\d+)/", stream="stdout").group(1))
        self.wsPort = 0
        self.starts = 0
        self.daemon = None

    @property
    def page(self):
        return "http://127.0.0.1:{}/".format(self.wsPort)

    def startDaemon(self):
        with open(self.config, "w") as f:
            f.write(
                "state_dir: {state}\n"
                "pipelines:\n"
                "  Dashboard:\n"
                "    source:\n"
                "      type: RPCSourceAdapter\n"
                "      config: {{rpc_url: 'http://127.0.0.1:{rpc}/', network: testnet, poll_interval: 0.1}}\n"
                "    processors: [{{type: GetEventsRPC, config: {{}}}}]\n"
                "    consumers:\n"
                "      - type: SaveToWebSocket\n"
                "        config: {{host: 127.0.0.1, port: {ws}, path: /ws}}\n"
                "      - type: MemoryConsumer\n"
                "        config: {{path: '{out}'}}\n".format(
                    state=os.path.join(self.dir, "state"), rpc=self.rpcPort, ws=self.wsPort, out=self.delivered)
            )
        self.starts += 1
        exe = os.path.join(os.path.dirname(sys.executable), "twistd")
        self.daemon = Process(self.testCase, "twistd-%d" % self.starts,
                              [exe, "-n", "--pidfile=", "stellarflow", "-c", self.config], cwd=self.dir, env=twistdEnv())
        self.wsPort = int(self.daemon.find(r"Dashboard on http://127\.0\.0\.1:(\d+)/", stream="stdout").group(1))
        return self

    def stopDaemon(self):
        self.daemon.stop()
        self.testCase.assertNotIn("Traceback", self.daemon.stdout())

    def oracle(self):
        """
        What the pipeline delivered, once each (after a restart it delivers again from its
        checkpoint).
        """
        seen, events = set(), []
        for m in jsonLines(self.delivered):
            if m["id"] not in seen:
                seen.add(m["id"])
                events.append(m)
        return events

    def expected(self, firstId, lastId, predicate):
        waitUntil(lambda: any(m["id"] == lastId for m in self.oracle()), 10, "the oracle to hold " + lastId)
        return [m for m in self.oracle() if firstId <= m["id"] <= lastId and predicate(m)]


class Browser(DevTools):
    """
    DevTools that keeps the page's console messages, exceptions and log entries.
    """

    def __init__(self, testCase):
        DevTools.__init__(self, testCase)
        self.messages = []
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Page.enable")

    def call(self, method, **params):
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.ids:
                if "error" in reply:
                    raise AssertionError("{} failed: {}".format(method, reply["error"]))
                return reply["result"]
            if "method" in reply and hasattr(self, "messages"):
                self.messages.append(reply)

    def problems(self, allowWebSocketFailures=False):
        """
        Errors the page reported: exceptions, console.error, error log entries (those of
        WebSocket connections refused while the daemon is down, when allowed).
        """
        self.evaluate("1")
        found = []
        for m in self.messages:
            method, params = m["method"], m.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                found.append(params)
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                text = params["entry"].get("text", "")
                if allowWebSocketFailures and text.startswith("WebSocket connection to") and "failed" in text:
                    continue
                found.append(params["entry"])
        return found

    def open(self, url, width=1280, height=900, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)
        self.call("Page.navigate", url=url)
        waitUntil(lambda: self.evaluate("!!(window.dashboard && dashboard.registrations.length)"), WAIT,
                  "the page to register")

    def snapshot(self):
        return json.loads(self.evaluate("JSON.stringify(dashboard.snapshot())"))

    def click(self, selector):
        """
        A real mouse click (pressed and released) at the centre of the element.
        """
        rect = json.loads(self.evaluate(
            "(() => { const e = document.querySelector(" + json.dumps(selector) + "); e.scrollIntoView({block: 'center'});"
            " return JSON.stringify(e.getBoundingClientRect()); })()"))
        x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def key(self, key, keyCode):
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=keyCode)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path


def everything(event):
    return True


class DashboardPageTests(SynchronousTestCase):
    def setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            required("chromium", "{} is not installed (.ci/install-browser installs it)".format(CHROMIUM))

    def assertRowsAreTheOracle(self, stack, events, predicate, minimum=MINIMUM):
        """
        The rows (newest first) are exactly the oracle's events that C{predicate} selects
        between the oldest and the newest row: nothing missing, repeated or out of order.
        """
        self.assertGreaterEqual(len(events), minimum)
        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(set(ids), reverse=True), "rows out of order or repeated")
        expected = stack.expected(ids[-1], ids[0], predicate)
        self.assertEqual([e["id"] for e in events[::-1]], [m["id"] for m in expected])
        self.assertEqual(events[::-1], expected)

    def test_liveEventsAndFilterByClickingAnAccount(self):
        """
        The page registers without filters and shows the pipeline's events as they arrive,
        newest first; clicking an account in a row (a real mouse click, table paused) filters
        by that account alone: the form shows it, the server confirms it, the table and the
        counters start over with only that account's events.
        """
        stack = DashboardStack(self).startDaemon()
        browser = Browser(self)
        browser.open(stack.page)
        first = browser.snapshot()["registrations"][0]
        self.assertEqual(first["filters"], {"types": [], "account_ids": [], "asset_codes": [], "min_amount": ""})
        # the types offered: the server's available_types when it sends them, else the known ones
        offered = json.loads(browser.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll('#types input'), (b) => b.value))"))
        self.assertEqual(offered, first.get("available_types", sorted(KNOWN_TYPES)))
        waitUntil(lambda: len(browser.snapshot()["events"]) >= MINIMUM, WAIT, "rows")
        page = browser.snapshot()
        self.assertEqual(page["state"], "live")
        self.assertEqual(browser.evaluate("document.getElementById('state').textContent"), "live")
        self.assertRowsAreTheOracle(stack, page["events"], everything)

        browser.click("#pause")
        selector = "#rows button[data-account='{}']".format(ACCOUNTS[2])
        waitUntil(lambda: browser.evaluate("!!document.querySelector({})".format(json.dumps(selector))), WAIT,
                  "a row with account 2")
        browser.click(selector)
        waitUntil(lambda: len(browser.snapshot()["registrations"]) == 2, WAIT, "the second registration")
        page = browser.snapshot()
        self.assertEqual(page["registrations"][1]["filters"]["account_ids"], [ACCOUNTS[2]])
        self.assertEqual(browser.evaluate("document.getElementById('account_ids').value"), ACCOUNTS[2])
        self.assertIn("account_ids=" + ACCOUNTS[2], browser.evaluate("location.search"))
        browser.click("#pause")
        waitUntil(lambda: len(browser.snapshot()["events"]) >= MINIMUM, WAIT, "rows of account 2")
        page = browser.snapshot()
        self.assertRowsAreTheOracle(stack, page["events"], involving(ACCOUNTS[2]))
        # counters restarted with the filter: they count exactly the rows (fewer than the bound)
        events = page["events"]
        self.assertEqual(page["total"], len(events))
        types = {}
        for e in events:
            types[e.get("event_type") or e["type"]] = types.get(e.get("event_type") or e["type"], 0) + 1
        self.assertEqual(page["byType"], types)
        assets = {}
        for e in events:
            if e.get("asset_code"):
                key = e["asset_code"] + (" (unverified)" if e.get("asset_verified") is False else "")
                assets[key] = assets.get(key, 0) + 1
        self.assertEqual(page["byAsset"], assets)
        self.assertEqual(browser.problems(), [])

    def test_boundedPausableExpandable(self):
        """
        The table holds at most its bound of rows (here ?rows=12); paused, it stands still
        while counting what arrives, and shows it on resume; a row opened with the keyboard
        shows the event's full JSON.
        """
        stack = DashboardStack(self, rate=5).startDaemon()
        browser = Browser(self)
        browser.open(stack.page + "?rows=12&access_token=a%20b")
        # the token goes on to the WebSocket URL (a daemon without auth ignores it)
        self.assertEqual(browser.evaluate("dashboard.client.url"),
                         "ws://127.0.0.1:{}/ws?access_token=a%20b".format(stack.wsPort))
        waitUntil(lambda: browser.snapshot()["total"] > 30, WAIT, "more events than rows")
        page = browser.snapshot()
        self.assertEqual(len(page["events"]), 12)
        self.assertEqual(browser.evaluate("document.querySelectorAll('#rows tr').length"), 12)

        browser.click("#pause")
        self.assertEqual(browser.evaluate("document.getElementById('pause').getAttribute('aria-pressed')"), "true")
        held = browser.snapshot()["events"]
        total = browser.snapshot()["total"]
        waitUntil(lambda: browser.snapshot()["total"] >= total + 5, WAIT, "events while paused")
        time.sleep(0.3)
        self.assertEqual(browser.snapshot()["events"], held)
        self.assertRegex(browser.evaluate("document.getElementById('held').textContent"), r"^\d+ new while paused")
        browser.click("#pause")
        waitUntil(lambda: browser.snapshot()["events"][0]["id"] > held[0]["id"], WAIT, "rows after resuming")
        self.assertEqual(browser.evaluate("document.getElementById('held').textContent"), "")

        browser.click("#pause")
        rowId = browser.evaluate("document.querySelector('#rows tr.row').dataset.id")
        browser.evaluate("document.querySelector('#rows tr.row').focus()")
        browser.key("Enter", 13)
        shown = browser.evaluate("document.querySelector('#rows tr.detail pre').textContent")
        self.assertEqual(json.loads(shown), [m for m in stack.expected(rowId, rowId, everything)][0])
        self.assertEqual(browser.evaluate("document.querySelector('#rows tr.row').getAttribute('aria-expanded')"), "true")
        browser.key("Enter", 13)
        self.assertEqual(browser.evaluate("document.querySelectorAll('#rows tr.detail').length"), 0)
        self.assertEqual(browser.problems(), [])

    def test_filterErrorNextToItsField(self):
        """
        A bad account id typed in the form: the server's error is shown under that field
        (marked invalid), the stream goes on with the filters in force, and a corrected value
        clears the error.
        """
        stack = DashboardStack(self).startDaemon()
        browser = Browser(self)
        browser.open(stack.page + "?asset_codes=XLM")
        browser.evaluate("document.getElementById('account_ids').focus()")
        browser.call("Input.insertText", text="GNOTANACCOUNT")
        browser.click("#apply")
        waitUntil(lambda: browser.snapshot()["errors"], WAIT, "the error reply")
        error = browser.snapshot()["errors"][0]
        self.assertEqual((error["error"], error["field"]), ("invalid_account_id", "filters.account_ids"))
        shown = browser.evaluate("JSON.stringify([document.getElementById('error-account_ids').hidden,"
                                 " document.getElementById('error-account_ids').textContent,"
                                 " document.getElementById('account_ids').getAttribute('aria-invalid'),"
                                 " document.getElementById('error-min_amount').hidden])")
        self.assertEqual(json.loads(shown), [False, error["message"], "true", True])
        self.assertIn("GNOTANACCOUNT", error["message"])
        page = browser.snapshot()
        self.assertEqual(page["state"], "live")
        self.assertEqual(len(page["registrations"]), 1)
        waitUntil(lambda: len(browser.snapshot()["events"]) >= MINIMUM, WAIT, "XLM rows")
        self.assertTrue(all(e.get("asset_code") == "XLM" for e in browser.snapshot()["events"]))

        browser.evaluate("document.getElementById('account_ids').value = {}".format(json.dumps(ACCOUNTS[0])))
        browser.click("#apply")
        waitUntil(lambda: len(browser.snapshot()["registrations"]) == 2, WAIT, "the corrected registration")
        self.assertEqual(browser.snapshot()["registrations"][1]["filters"]["account_ids"], [ACCOUNTS[0]])
        self.assertEqual(browser.evaluate("document.getElementById('error-account_ids').hidden"), True)
        self.assertIsNone(browser.evaluate("document.getElementById('account_ids').getAttribute('aria-invalid')"))
        self.assertEqual(browser.problems(), [])

    def test_phoneAndDesktopWidths(self):
        """
        At 390 px (a phone) and 1280 px the page fits its width (no sideways scrolling) with
        the form, the counters and the rows visible; screenshots of both are saved.
        """
        stack = DashboardStack(self).startDaemon()
        browser = Browser(self)
        shots = os.path.abspath(self.mktemp())
        os.makedirs(shots)
        for name, width, height, mobile in (("phone", 390, 844, True), ("desktop", 1280, 900, False)):
            browser.open(stack.page, width=width, height=height, mobile=mobile)
            waitUntil(lambda: browser.snapshot()["total"] >= MINIMUM and browser.snapshot()["byType"], WAIT, "rows")
            time.sleep(1.1)  # one stats tick: counters and chart drawn
            layout = json.loads(browser.evaluate(
                "JSON.stringify({scroll: document.documentElement.scrollWidth, inner: innerWidth,"
                " boxes: ['#filters', '#chart', '#by-type', '#rows tr.row', '#state'].map((s) => {"
                "   const r = document.querySelector(s).getBoundingClientRect();"
                "   return [s, r.left, r.right, r.width, r.height]; })})"))
            self.assertLessEqual(layout["scroll"], layout["inner"], name)
            for selector, left, right, boxWidth, boxHeight in layout["boxes"]:
                self.assertGreaterEqual(left, 0, (name, selector))
                self.assertLessEqual(right, width, (name, selector))
                self.assertGreater(boxWidth * boxHeight, 0, (name, selector))
            path = browser.screenshot(os.path.join(shots, "dashboard-{}.png".format(name)))
            self.assertGreater(os.path.getsize(path), 10000)
        self.assertEqual(browser.problems(), [])

    def test_survivesDaemonRestart(self):
        """
        The daemon stops (close 1001) and starts again on the same port: the page says it is
        reconnecting and when, reconnects, registers with resume_after = its newest row, and
        goes on; no row is repeated, and the rows are exactly the oracle's across the restart
        (or, when the server reported a gap, exactly those outside the gap, with the gap shown).
        """
        stack = DashboardStack(self).startDaemon()
        browser = Browser(self)
        browser.open(stack.page + "?rows=5000")
        waitUntil(lambda: len(browser.snapshot()["events"]) >= MINIMUM, WAIT, "rows before the restart")
        stack.stopDaemon()
        waitUntil(lambda: browser.snapshot()["state"] == "reconnecting", WAIT, "the page to see the stop")
        state = browser.evaluate("document.getElementById('state').textContent")
        # the first retry may already have failed (1006) by the time we look
        self.assertRegex(state, r"^reconnecting in \d+ s \(closed: (1001 server shutting down|1006)\)$")
        self.assertIn("connection lost (1001 server shutting down); reconnecting with resume_after",
                      [n["text"] for n in browser.snapshot()["notices"]])
        lastBefore = browser.snapshot()["events"][0]["id"]
        time.sleep(1.5)
        stack.startDaemon()
        waitUntil(lambda: len(browser.snapshot()["registrations"]) >= 2, WAIT, "the registration after the restart")
        page = browser.snapshot()
        resumed = [r for r in page["registrations"] if "resume_after" in r]
        self.assertTrue(resumed, page["registrations"])
        self.assertGreaterEqual(resumed[0]["resume_after"], lastBefore)
        count = len(page["events"])
        waitUntil(lambda: len(browser.snapshot()["events"]) >= count + MINIMUM, WAIT, "rows after the restart")
        page = browser.snapshot()
        self.assertEqual(page["state"], "live")
        events = page["events"]
        if resumed[0]["resumed"]:
            self.assertRowsAreTheOracle(stack, events, everything)
            self.assertIn("resumed after " + resumed[0]["resume_after"], " ".join(n["text"] for n in page["notices"]))
        else:
            gap = resumed[0]["gap"]

            def lost(e):
                return gap["from_after"] < e["id"] <= gap["to"]

            self.assertFalse([e for e in events if lost(e)])
            self.assertRowsAreTheOracle(stack, events, lambda e: not lost(e))
            self.assertIn("gap reported by the server", " ".join(n["text"] for n in page["notices"]))
        self.assertEqual(browser.problems(allowWebSocketFailures=True), [])
