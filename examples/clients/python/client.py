"""The streaming guide's Python client, with the URL and filters taken from the command line.

    pip install websocket-client
    python client.py ws://localhost:8080/ws --asset-codes XLM
    WS_URL=ws://localhost:8080/ws WS_ASSET_CODES=USDC,XLM python client.py

Same code as the guide ("Client Examples", Python): register on the welcome message, print the
confirmation, then every event. Events go to stdout, one JSON object per line (so another
program can read them); everything else goes to stderr. List filters are comma-separated; each
flag defaults to its environment variable (WS_TYPES, WS_ACCOUNT_IDS, WS_ASSET_CODES,
WS_MIN_AMOUNT), and with neither the guide's own filters apply (contract_event, USDC). Pass an
empty value (--asset-codes '') to not filter on a field.
"""

import argparse
import json
import os
import sys

import websocket

GUIDE_URL = "ws://localhost:8080/ws"
GUIDE_FILTERS = {"types": "contract_event", "account_ids": "", "asset_codes": "USDC", "min_amount": ""}


def split(value):
    """A comma-separated list -> list of non-empty stripped items ('' -> [])."""
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_args(argv=None, environ=os.environ):
    parser = argparse.ArgumentParser(description="Stream filtered events from a stellarflow WebSocket server.")
    parser.add_argument("url", nargs="?", default=environ.get("WS_URL", GUIDE_URL),
                        help="server URL (default: $WS_URL or %s)" % GUIDE_URL)
    for field in ("types", "account_ids", "asset_codes", "min_amount"):
        env = "WS_" + field.upper()
        parser.add_argument("--" + field.replace("_", "-"), dest=field,
                            default=environ.get(env, GUIDE_FILTERS[field]),
                            help="default: $%s or %r" % (env, GUIDE_FILTERS[field]))
    parser.add_argument("--max-events", type=int, default=0, help="exit after this many events (0: never)")
    args = parser.parse_args(argv)
    args.filters = {
        "types": split(args.types),
        "account_ids": split(args.account_ids),
        "asset_codes": split(args.asset_codes),
        "min_amount": args.min_amount.strip(),
    }
    return args


def info(*parts):
    print(*parts, file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    received = [0]
    failed = []

    def on_message(ws, message):
        data = json.loads(message)

        if data['type'] == 'welcome':
            info(f"Welcome: {data['message']}")

            # Send registration
            registration = {
                'type': 'register',
                'filters': args.filters,
            }
            ws.send(json.dumps(registration))

        elif data['type'] == 'registered':
            info(f"Registered with filters: {json.dumps(data['filters'])}")
            for warning in data.get('warnings', []):
                info(f"Warning: {warning}")

        elif data['type'] == 'error':
            # A rejected register changes nothing; the connection stays open.
            info(f"Server error {data['error']}: {data['message']}")

        else:
            # Process your event here: one JSON line per event on stdout.
            print(json.dumps(data, separators=(",", ":")), flush=True)
            received[0] += 1
            if args.max_events and received[0] >= args.max_events:
                ws.close()

    def on_error(ws, error):
        info(f"Error: {error}")
        if not isinstance(error, KeyboardInterrupt):
            failed.append(error)

    def on_close(ws, close_status_code, close_msg):
        info(f"Connection closed: {close_status_code} {close_msg or ''}".rstrip())

    def on_open(ws):
        info("Connected to WebSocket server")

    # Create WebSocket connection
    ws = websocket.WebSocketApp(
        args.url,
        on_open=on_open,
        on_message=on_message,
        on_error=on_error,
        on_close=on_close
    )

    # Run until the server closes the connection (or --max-events)
    try:
        ws.run_forever()
    except KeyboardInterrupt:
        pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
