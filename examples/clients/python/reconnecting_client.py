"""A production-style Python client: reconnects with exponential backoff and jitter, and resumes.

    pip install websocket-client
    python reconnecting_client.py ws://localhost:8080/ws --asset-codes XLM

What it adds to the guide's client ("Handle Reconnection" in its best practices):

* Reconnects whenever the connection ends (server restart, close code, network error, no
  traffic at all for --idle-timeout seconds; the server pings every 30 s, so a live connection
  is never that quiet). Delays grow exponentially from --backoff-initial to --backoff-max, with
  "equal jitter" (half fixed, half random) so that many clients dropped together do not come
  back together. The delay resets once the server confirmed a registration.
* Remembers the id of the last event it received (event ids sort in order), and on reconnect
  registers with ``"resume_after": "<that id>"``. The server answers ``registered`` with
  ``"resumed": true`` when it replayed what was missed, or ``false`` plus ``"gap": {...}`` when
  events were lost; a gap is logged (warning). ``{"type": "cursor", "cursor": "<id>"}`` messages
  move the remembered position forward too.
* A server that does not know ``resume_after`` rejects it (error ``unknown_field``, field
  ``resume_after``): the client then registers without it, and does not send it again.
* Events whose id is not after the remembered one are dropped (a safety net against duplicates
  around a reconnect).

Events go to stdout, one JSON object per line; the log goes to stderr. Filters: comma-separated
lists, as for client.py (environment WS_URL, WS_TYPES, WS_ACCOUNT_IDS, WS_ASSET_CODES,
WS_MIN_AMOUNT); unlike client.py, no filter applies by default.
"""

import argparse
import json
import logging
import os
import random
import signal
import struct
import sys
import time

import websocket
from websocket import ABNF

log = logging.getLogger("reconnecting_client")


def split(value):
    """A comma-separated list -> list of non-empty stripped items ('' -> [])."""
    return [item.strip() for item in value.split(",") if item.strip()]


def id_key(event_id):
    """An event id ("0000004355096838143-0000000002") as a sortable key (numbers compared as numbers)."""
    head, sep, tail = event_id.partition("-")
    if sep and head.isdigit() and tail.isdigit():
        return (0, int(head), int(tail), "")
    return (1, 0, 0, event_id)


class Backoff:
    """Exponential backoff with equal jitter: attempt n waits between d/2 and d, d = min(max, initial * 2**n)."""

    def __init__(self, initial=0.5, maximum=30.0, factor=2.0, rng=random.random):
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.rng = rng
        self.attempt = 0

    def next(self):
        ceiling = min(self.maximum, self.initial * self.factor ** self.attempt)
        self.attempt += 1
        return ceiling / 2 + self.rng() * ceiling / 2

    def reset(self):
        self.attempt = 0


class Closed(Exception):
    """The server closed the connection (with a close frame)."""

    def __init__(self, code, reason):
        super().__init__("closed by server: %s %s" % (code, reason))
        self.code = code
        self.reason = reason


class ResumingClient:
    """Stay connected to ``url`` with ``filters``, calling ``on_event(event)`` once per new event."""

    def __init__(self, url, filters, on_event, *, backoff=None, resume_after=None, idle_timeout=120.0,
                 connect_timeout=10.0, max_events=0, sleep=time.sleep):
        self.url = url
        self.filters = filters
        self.on_event = on_event
        self.backoff = backoff or Backoff()
        self.last_id = resume_after
        self.resume_supported = True
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.max_events = max_events
        self.sleep = sleep
        self.stopped = False
        self.connections = 0
        self.delivered = 0
        self.duplicates = 0
        self.ws = None

    # -- the loop

    def run(self):
        while not self.stopped:
            try:
                self._session()
            except Closed as e:
                log.warning("connection closed by server: code %s %s", e.code, e.reason)
            except websocket.WebSocketTimeoutException:
                log.warning("nothing received for %s s; reconnecting", self.idle_timeout)
            except websocket.WebSocketBadStatusException as e:
                log.warning("handshake refused: %s", e)
            except (websocket.WebSocketException, OSError) as e:
                log.warning("connection lost: %s: %s", type(e).__name__, e)
            finally:
                self._close()
            if self.stopped:
                break
            delay = self.backoff.next()
            log.info("reconnecting in %.2f s (attempt %d)", delay, self.backoff.attempt)
            self.sleep(delay)

    def stop(self):
        self.stopped = True
        self._close()

    def _close(self):
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:
                pass

    def _session(self):
        self.ws = ws = websocket.create_connection(self.url, timeout=self.connect_timeout)
        ws.settimeout(self.idle_timeout)
        self.connections += 1
        log.info("connected to %s (connection %d)", self.url, self.connections)
        resuming = self._register(ws)
        while not self.stopped:
            opcode, payload = ws.recv_data()
            if opcode == ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode("utf-8", "replace"))
            if opcode != ABNF.OPCODE_TEXT:
                continue
            try:
                message = json.loads(payload)
                kind = message.get("type")
            except (ValueError, AttributeError):
                log.error("not a JSON object, ignored: %r", payload[:200])
                continue
            if kind == "welcome":
                continue
            if kind == "registered":
                self._registered(message)
            elif kind == "cursor":
                self._advance(message.get("cursor"))
            elif kind == "error":
                if resuming and message.get("field") == "resume_after":
                    if message.get("error") == "unknown_field":
                        self.resume_supported = False
                        log.warning("server does not support resume_after (unknown_field); "
                                    "registering without it")
                    else:
                        log.warning("server refused resume_after %s (%s: %s); registering without it",
                                    self.last_id, message.get("error"), message.get("message"))
                    resuming = self._register(ws, resume=False)
                else:
                    log.error("server error %s: %s", message.get("error"), message.get("message"))
            else:
                self._event(message)
                if self.max_events and self.delivered >= self.max_events:
                    self.stopped = True

    def _register(self, ws, resume=True):
        """Send ``register``; True when it carries ``resume_after``."""
        message = {"type": "register", "filters": self.filters}
        resuming = resume and self.resume_supported and self.last_id is not None
        if resuming:
            message["resume_after"] = self.last_id
        ws.send(json.dumps(message))
        log.info("register sent%s", " (resume_after %s)" % self.last_id if resuming else "")
        return resuming

    def _registered(self, message):
        self.backoff.reset()
        log.info("registered: filters=%s resumed=%s", json.dumps(message.get("filters")),
                 json.dumps(message.get("resumed")))
        for warning in message.get("warnings", []):
            log.warning("server warning: %s", warning)
        if message.get("gap") is not None:
            log.warning("gap reported by server: %s", json.dumps(message["gap"], sort_keys=True))

    def _advance(self, cursor):
        if isinstance(cursor, str) and (self.last_id is None or id_key(cursor) > id_key(self.last_id)):
            self.last_id = cursor

    def _event(self, event):
        event_id = event.get("id")
        if isinstance(event_id, str):
            if self.last_id is not None and id_key(event_id) <= id_key(self.last_id):
                self.duplicates += 1
                log.info("skipped event %s: not after %s", event_id, self.last_id)
                return
            self.last_id = event_id
        self.delivered += 1
        self.on_event(event)


def parse_args(argv=None, environ=os.environ):
    parser = argparse.ArgumentParser(description="Stream filtered events, reconnecting and resuming.")
    parser.add_argument("url", nargs="?", default=environ.get("WS_URL", "ws://localhost:8080/ws"))
    for field in ("types", "account_ids", "asset_codes", "min_amount"):
        parser.add_argument("--" + field.replace("_", "-"), dest=field, default=environ.get("WS_" + field.upper(), ""))
    parser.add_argument("--resume-after", default=None, help="start after this event id (e.g. saved by a previous run)")
    parser.add_argument("--backoff-initial", type=float, default=0.5, help="first reconnect delay ceiling, seconds")
    parser.add_argument("--backoff-max", type=float, default=30.0, help="largest reconnect delay, seconds")
    parser.add_argument("--idle-timeout", type=float, default=120.0, help="reconnect after this long without any frame")
    parser.add_argument("--max-events", type=int, default=0, help="exit after this many events (0: never)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.filters = {
        "types": split(args.types),
        "account_ids": split(args.account_ids),
        "asset_codes": split(args.asset_codes),
        "min_amount": args.min_amount.strip(),
    }
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")

    def emit(event):
        print(json.dumps(event, separators=(",", ":")), flush=True)

    client = ResumingClient(
        args.url, args.filters, emit,
        backoff=Backoff(args.backoff_initial, args.backoff_max),
        resume_after=args.resume_after, idle_timeout=args.idle_timeout, max_events=args.max_events,
    )

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        client.run()
    except KeyboardInterrupt:
        client.stop()
    log.info("stopped after %d event(s), %d connection(s); last event id %s",
             client.delivered, client.connections, client.last_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
