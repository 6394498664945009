"""
Backfill a gap over HTTP, then resume the live stream where the backfill ended.

A WebSocket client that was away longer than the server's history (its ``resume_after`` is
refused as too old) reads what it missed from the daemon's ``GET /events`` (served on the admin
port when the pipeline stores its events in PostgreSQL), with the same filters, page by page,
then registers with ``resume_after`` set to the last id it read:

    python backfill.py http://127.0.0.1:9090/events --after 0016010972359577600-0000000001 \\
        --account-ids GA5Z... --types transfer,payment
    # prints one event per line (the exact JSON the WebSocket sends), then on stderr:
    # resume with: reconnecting_client.py ws://... --resume-after <last id>

Standard library only.  ``--to-ledger`` bounds the range; without it the backfill reads up to
what the store holds now (``stored_through`` in each answer says how far that is complete).
"""

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request


def pages(url, after=None, filters=None, to_ledger=None, limit=500, timeout=30):
    """
    Yield each page (the decoded answer) of ``GET /events`` from ``after`` until ``next`` is null.
    """
    params = [(name, ",".join(values) if isinstance(values, list) else values)
              for name, values in (filters or {}).items() if values]
    if to_ledger is not None:
        params.append(("to_ledger", str(to_ledger)))
    params.append(("limit", str(limit)))
    while True:
        query = params + ([("after", after)] if after else [])
        try:
            with urllib.request.urlopen(url + "?" + urllib.parse.urlencode(query), timeout=timeout) as response:
                page = json.load(response)
        except urllib.error.HTTPError as e:
            error = json.load(e).get("error", {})
            raise SystemExit("GET /events refused {}: {}".format(error.get("parameter"), error.get("message")))
        yield page
        if page["next"] is None:
            return
        after = page["next"]


def backfill(url, after=None, filters=None, to_ledger=None, limit=500, emit=print):
    """
    Emit every stored event after ``after`` that passes ``filters``; returns the last id read
    (``after`` when there was none): the ``resume_after`` for the WebSocket.
    """
    last = after
    for page in pages(url, after, filters, to_ledger, limit):
        for event in page["events"]:
            emit(json.dumps(event, separators=(",", ":")))
            last = event["id"]
    return last


def main(argv=None):
    parser = argparse.ArgumentParser(description="Backfill events over GET /events, then resume live.")
    parser.add_argument("url", help="the history endpoint, e.g. http://127.0.0.1:9090/events")
    parser.add_argument("--after", help="the last event id you have (exclusive)")
    parser.add_argument("--types", default="", help="comma-separated, as the WebSocket filter")
    parser.add_argument("--account-ids", default="", help="comma-separated, as the WebSocket filter")
    parser.add_argument("--asset-codes", default="", help="comma-separated, as the WebSocket filter")
    parser.add_argument("--min-amount", default="", help="as the WebSocket filter")
    parser.add_argument("--to-ledger", type=int, help="the last ledger to read (inclusive)")
    parser.add_argument("--limit", type=int, default=500, help="events per request")
    args = parser.parse_args(argv)
    filters = {
        "types": [t for t in args.types.split(",") if t],
        "account_ids": [a for a in args.account_ids.split(",") if a],
        "asset_codes": [a for a in args.asset_codes.split(",") if a],
        "min_amount": args.min_amount,
    }
    last = backfill(args.url, args.after, filters, args.to_ledger, args.limit)
    print("resume with: --resume-after {}".format(last), file=sys.stderr)


if __name__ == "__main__":
    main()
