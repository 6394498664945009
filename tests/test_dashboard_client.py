"""
client.js, the dashboard's connection logic, run by Node: its bookkeeping against a scripted
fake WebSocket (backoff, resume_after, de-duplication, gaps, refused resumes and filters), and
examples/clients/node/resuming.js (client.js over the C{ws} package) against the real daemon
across a restart.  A missing C{node} or C{npm ci} skips, except under C{CI=true}.
"""

import json
import os
import re
import shutil
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import REPO
from tests.test_examples import ACCOUNTS, CLIENTS, MINIMUM, WAIT, Process, Stack, involving, required, waitUntil

CLIENT_JS = os.path.join(REPO, "stellarflow", "dashboard", "static", "client.js")
NODE_DIR = os.path.join(CLIENTS, "node")

# A fake WebSocket whose instances the script drives; timers run when the script says.
HARNESS = r"""
const StellarflowClient = require(process.argv[1]);
const sockets = [];
class FakeSocket {
  constructor(url) { this.url = url; this.sent = []; this.readyState = 0; sockets.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  open() { this.readyState = 1; this.onopen(); }
  receive(message) { this.onmessage({data: JSON.stringify(message)}); }
  drop(code, reason) { this.readyState = 3; this.onclose({code: code, reason: reason}); }
}
const timers = [];
const rolls = [0.0, 1.0, 0.5, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5];
const client = new StellarflowClient({
  url: 'ws://x/ws', filters: {types: ['payment'], account_ids: 'GA, GB'}, WebSocket: FakeSocket,
  backoff: {initial: 1, max: 5}, random: () => rolls.shift(),
  setTimeout: (fn, ms) => { timers.push({fn, ms}); return timers.length; }, clearTimeout: () => {},
});
const seen = {events: [], gaps: [], errors: [], states: [], warnings: []};
client.on('event', (e) => seen.events.push(e.id));
client.on('gap', (g) => seen.gaps.push(g));
client.on('error', (m) => seen.errors.push(m.error));
client.on('warning', (w) => seen.warnings.push(w));
client.on('state', (s) => seen.states.push(s.state + (s.delay !== undefined ? ' ' + s.delay : '')));
const fire = () => timers.shift().fn();
const id = (n) => '0000000000000000001-' + String(n).padStart(10, '0');
%s
process.stdout.write(JSON.stringify({seen, sent: sockets.map((s) => s.sent), lastId: client.lastId,
  filters: client.filters, duplicates: client.duplicates, resumeSupported: client.resumeSupported}));
"""


def eventId(n):
    return "0000000000000000001-%010d" % n


def node():
    path = shutil.which("node")
    if path is None:
        required("node", "node is not installed")
    return path


class ClientLogicTests(SynchronousTestCase):
    def script(self, body):
        """
        Run C{body} in the harness; what the client did.
        """
        out = subprocess.run([node(), "-e", HARNESS % body, os.path.abspath(CLIENT_JS)],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_backoffResumeAndDuplicates(self):
        """
        Reconnect delays grow with equal jitter ([d/2, d], d doubling to the maximum) and
        reset on a registration; each reconnect registers with resume_after = the newest
        event id or cursor; an event not after it is dropped.
        """
        result = self.script("""
client.start();
let s = sockets[0]; s.open();
s.receive({type: 'welcome'});
s.receive({type: 'registered', filters: {}});
s.receive({type: 'contract_event', id: id(1)});
s.receive({type: 'contract_event', id: id(2)});
s.receive({type: 'contract_event', id: id(2)});
s.receive({type: 'cursor', cursor: id(5)});
s.receive({type: 'cursor', cursor: id(3)});
s.drop(1001, 'server shutting down');
fire(); sockets[1].drop(1006, '');
fire(); sockets[2].drop(1006, '');
fire(); sockets[3].drop(1006, '');
fire(); sockets[4].drop(1006, '');
fire(); s = sockets[5]; s.open();
s.receive({type: 'registered', filters: {}, resume_after: id(5), resumed: true});
s.receive({type: 'contract_event', id: id(4)});
s.receive({type: 'contract_event', id: id(6)});
s.drop(1006, '');
""")
        states = result["seen"]["states"]
        delays = [float(s.split()[1]) for s in states if s.startswith("reconnecting")]
        # rolls 0, 1, .5, 1, 1: ceilings 1, 2, 4, 5, 5; after the registration the ceiling is 1 again (roll 0)
        self.assertEqual(delays, [0.5, 2, 3, 5, 5, 0.5])
        self.assertEqual(result["seen"]["events"], [eventId(1), eventId(2), eventId(6)])
        self.assertEqual(result["duplicates"], 2)
        self.assertEqual(result["sent"][0], [{"type": "register", "cursor_updates": True, "filters": {
            "types": ["payment"], "account_ids": ["GA", "GB"], "asset_codes": [], "min_amount": ""}}])
        self.assertEqual([m["resume_after"] for m in result["sent"][5]], [eventId(5)])
        self.assertEqual(result["lastId"], eventId(6))

    def test_gapsAndRefusedResume(self):
        """
        A gap in the registered reply is reported; a refused resume_after is reported as a
        possible gap and the client registers without it (and never sends it again when the
        server does not know the field).
        """
        result = self.script("""
client.start();
let s = sockets[0]; s.open();
s.receive({type: 'registered', filters: {}});
s.receive({type: 'contract_event', id: id(7)});
s.drop(1006, '');
fire(); s = sockets[1]; s.open();
s.receive({type: 'registered', filters: {}, resume_after: id(7), resumed: false,
           gap: {from_after: id(7), to: id(9), ledgers: [1, 1]}});
s.drop(1006, '');
fire(); s = sockets[2]; s.open();
s.receive({type: 'error', error: 'unknown_field', field: 'resume_after', message: 'no'});
s.receive({type: 'registered', filters: {}});
s.drop(1006, '');
fire(); s = sockets[3]; s.open();
""")
        self.assertEqual(result["seen"]["gaps"], [
            {"from_after": eventId(7), "to": eventId(9), "ledgers": [1, 1]},
            {"from_after": eventId(7), "to": None, "reason": "unknown_field", "message": "no"},
        ])
        self.assertEqual(["resume_after" in m for m in result["sent"][2]], [True, False])
        self.assertEqual(["resume_after" in m for m in result["sent"][3]], [False])
        self.assertFalse(result["resumeSupported"])

    def test_serverWithoutCursorUpdates(self):
        """
        A server that does not know cursor_updates refuses it (unknown_field): the client
        registers again at once without it (keeping resume_after), and never sends it again.
        """
        result = self.script("""
client.start();
let s = sockets[0]; s.open();
s.receive({type: 'error', error: 'unknown_field', field: 'cursor_updates', message: 'no'});
s.receive({type: 'registered', filters: {}});
s.receive({type: 'contract_event', id: id(3)});
s.drop(1006, '');
fire(); s = sockets[1]; s.open();
""")
        self.assertEqual([sorted(m) for m in result["sent"][0]],
                         [["cursor_updates", "filters", "type"], ["filters", "type"]])
        self.assertEqual([sorted(m) for m in result["sent"][1]], [["filters", "resume_after", "type"]])
        self.assertEqual(result["seen"]["errors"], [])

    def test_refusedFiltersKeepThoseInForce(self):
        """
        New filters are registered on the open connection; when the server refuses them, the
        error is reported and the filters in force (the last registered) are the ones a
        reconnect registers.
        """
        result = self.script("""
client.start();
let s = sockets[0]; s.open();
s.receive({type: 'registered', filters: {types: ['payment'], account_ids: ['GA', 'GB'], asset_codes: [], min_amount: ''}});
client.setFilters({account_ids: ['bad']});
s.receive({type: 'error', error: 'invalid_account_id', field: 'filters.account_ids', message: 'bad'});
s.drop(1006, '');
fire(); sockets[1].open();
""")
        self.assertEqual(result["seen"]["errors"], ["invalid_account_id"])
        self.assertEqual(result["sent"][0][1]["filters"]["account_ids"], ["bad"])
        self.assertNotIn("resume_after", result["sent"][0][1])
        self.assertEqual(result["sent"][1][0]["filters"],
                         {"types": ["payment"], "account_ids": ["GA", "GB"], "asset_codes": [], "min_amount": ""})


class NodeResumingClientTests(SynchronousTestCase):
    def setUp(self):
        node()
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
            required("npm ci", "run npm ci in examples/clients/node")

    def test_acrossDaemonRestart(self):
        """
        resuming.js (client.js over ws) filters by an account, sees the daemon stop (1001),
        retries with backoff, and after the restart resumes: its events are in order without
        repeats and, where the server resumed, exactly the pipeline's across the restart.
        """
        stack = Stack(self).startDaemon()
        client = Process(self, "resuming", [
            node(), os.path.join(NODE_DIR, "resuming.js"), stack.url, "--account-ids", ACCOUNTS[0],
            "--backoff-initial", "0.4", "--backoff-max", "3",
        ], cwd=NODE_DIR)
        waitUntil(lambda: len(client.events()) >= MINIMUM, WAIT, "events before the restart")
        stack.stopDaemon()
        client.find(r"connection closed: code 1001 server shutting down; reconnecting in \S+ s \(attempt 1\)")
        client.find(r"reconnecting in \S+ s \(attempt 3\)")
        before = len(client.events())
        stack.startDaemon()
        client.find(r"\(connection 2\); registering with resume_after (\S+)")
        waitUntil(lambda: len(client.events()) >= before + MINIMUM, WAIT, "events after the restart")
        self.assertEqual(client.stop(), 0)
        text = client.stderr()
        self.assertRegex(text, r"stopped after \d+ events")
        events = client.events()
        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(set(ids)))
        reply = re.search(r"registering with resume_after (\S+)\n.*?registered: filters=.* resumed=(true|false)", text, re.S)
        self.assertIsNotNone(reply, text)
        if reply.group(2) == "true":
            stack.assertReceivedExactly(events, involving(ACCOUNTS[0]))
        else:
            gap = json.loads(re.search(r"gap reported by server: (\{.*\})", text).group(1))

            def lost(e):
                return gap["from_after"] < e["id"] <= gap["to"]

            stack.assertReceivedExactly(events, lambda e: involving(ACCOUNTS[0])(e) and not lost(e))
