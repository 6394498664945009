"""
The RPC source's configuration: its schema, and every limit the real server enforces.

Checked when the file is loaded, so that a bad filter is a config error naming its path
(``pipelines.x.source.config.filters[0].topics[1][0]``), never a runtime failure: at most 5
filters, each with at most 5 contract ids and 5 topic filters of 1 to 4 segments (base64 ScVal,
``*``, or a trailing ``**``), as stellar-rpc's C{EventFilter.Valid} and C{TopicFilter.Valid}.
"""

import json

from hyperlink import URL
from stellar_sdk import StrKey, xdr

from stellarflow import positions
from stellarflow.events.network import passphraseProblem
from stellarflow.rpc.client import endpointOf
from stellarflow.schema import INVALID, Field, Integer, ListOf, Number, Schema, String, join

DEFAULT_RPC_URL = "https://soroban-testnet.stellar.org"
MAX_LEDGER = positions.MAX_LEDGER
MAX_FILTERS = 5
MAX_CONTRACT_IDS = 5
MAX_TOPICS = 5
MAX_SEGMENTS = 4
DEFAULT_LIMIT = 100
MAX_LIMIT = 10000
#: getLedgers: ledgers per request.  The server's default is 50 and its maximum 200, but a
#: pubnet ledger is ~370 KB of XDR (~500 KB of base64): 6 of them are ~3 MB of JSON, ~0.2 s of
#: decoding for two workers, and a batch of ~1200 messages for the consumers at once; at the tip
#: a poll finds one ledger anyway (docs/source.md, "Why 6").
DEFAULT_LEDGER_LIMIT = 6
MAX_LEDGER_LIMIT = 200
METHODS = ("getEvents", "getLedgers")
EVENT_TYPES = ("contract", "system")


def _urlProblem(value):
    try:
        url = URL.from_text(value)
    except Exception:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        return "an http:// or https:// URL"
    return None


def _typeProblem(value):
    if value == "":
        return None
    if all(part in EVENT_TYPES for part in value.split(",")):
        return None
    return "'contract', 'system' or 'contract,system' (RPC v23+ no longer serves 'diagnostic')"


def _contractProblem(value):
    if StrKey.is_valid_contract(value):
        return None
    return "a contract id (a C... strkey)"


def _segmentProblem(value):
    if value in ("*", "**"):
        return None
    try:
        xdr.SCVal.from_xdr(value)
    except Exception:
        return "a base64 XDR ScVal, '*' (any one topic) or '**' (any remaining topics)"
    return None


class TopicFilter(ListOf):
    """
    One topic filter: 1 to 4 segments, plus an optional trailing ``**`` (as stellar-rpc's
    ``TopicFilter.Valid``).
    """

    def __init__(self):
        ListOf.__init__(self, String(validator=_segmentProblem), minItems=1)
        self.expected = "a list of 1 to {} topic segments (base64 ScVal, '*' or a trailing '**')".format(MAX_SEGMENTS)

    def check(self, value, path, problems):
        result = ListOf.check(self, value, path, problems)
        if result is INVALID:
            return result
        before = len(problems)
        for k, segment in enumerate(result[:-1]):
            if segment == "**":
                problems.add(join(path, k), "got '**'; '**' is only allowed as the last segment")
        fixed = result[:-1] if result[-1] == "**" else result
        if len(fixed) > MAX_SEGMENTS:
            problems.add(
                path,
                "got {} segments; expected at most {} (not counting a trailing '**')".format(len(fixed), MAX_SEGMENTS),
            )
        return INVALID if len(problems) > before else result


FILTER_SCHEMA = Schema(
    {
        "type": Field(String(validator=_typeProblem), "", "'contract', 'system' or both; empty: any"),
        "contractIds": Field(
            ListOf(String(validator=_contractProblem), maxItems=MAX_CONTRACT_IDS), [], "contract ids (OR)"
        ),
        "topics": Field(
            ListOf(TopicFilter(), maxItems=MAX_TOPICS),
            [],
            "topic filters (OR), each a list of base64 ScVal, '*' or a trailing '**'",
        ),
    }
)

PAGINATION_SCHEMA = Schema(
    {
        "limit": Field(
            Integer(1, MAX_LIMIT),
            None,
            "getEvents: events per request (default {}, server maximum {}); getLedgers: ledgers per request "
            "(default {}, server maximum {})".format(DEFAULT_LIMIT, MAX_LIMIT, DEFAULT_LEDGER_LIMIT, MAX_LEDGER_LIMIT),
        )
    }
)


def inferNetwork(url):
    """
    The network an RPC URL most likely serves: its host name says testnet or futurenet, else
    mainnet.  Only a default; the source checks it against the server's ``getNetwork``.
    """
    host = (URL.from_text(url).host or "").lower()
    for name in ("testnet", "futurenet"):
        if name in host:
            return name
    return "mainnet"


def _crossCheck(config, path, problems):
    start, end = config["start_ledger"], config["end_ledger"]
    if end and start and end < start:
        problems.add(join(path, "end_ledger"), "got {}; expected >= start_ledger ({})".format(end, start))
    pagination = config["pagination"] = dict(config["pagination"])
    if config["rpc_method"] == "getLedgers":
        if config["network"] is None:
            problems.add(
                join(path, "network"),
                "missing; expected a network name or passphrase: with rpc_method getLedgers transaction hashes "
                "depend on it",
            )
        if config["filters"]:
            problems.add(join(path, "filters"), "got {} filter(s); filters apply to getEvents only".format(
                len(config["filters"])))
        if config["xdrFormat"] != "base64":
            problems.add(join(path, "xdrFormat"), "got {!r}; expected 'base64' with rpc_method getLedgers (ledgers "
                         "are decoded from XDR)".format(config["xdrFormat"]))
        if pagination["limit"] is None:
            pagination["limit"] = DEFAULT_LEDGER_LIMIT
        elif pagination["limit"] > MAX_LEDGER_LIMIT:
            problems.add(join(join(path, "pagination"), "limit"), "got {}; expected at most {} ledgers per getLedgers "
                         "request".format(pagination["limit"], MAX_LEDGER_LIMIT))
    elif pagination["limit"] is None:
        pagination["limit"] = DEFAULT_LIMIT
    if config["network"] is None:
        config["network"] = inferNetwork(config["rpc_url"])
    for i, f in enumerate(config["filters"]):
        for j, topics in enumerate(f.get("topics") or ()):
            if topics and topics[-1] != "**":
                problems.warn(join(join(join(join(path, "filters"), i), "topics"), j), topicFilterWarning(topics))


def topicFilterWarning(topics):
    """
    Why a topic filter without a trailing ``**`` is probably not what was meant.
    """
    return (
        '{} has no trailing "**": the RPC matches only events with exactly {} topic(s), and token '
        'events have 2 to 4 (a transfer has 4), so {} End it with "**" to match longer topic lists'.format(
            json.dumps(topics),
            len(topics),
            "it matches no token event." if len(topics) == 1 else "it may miss token events.",
        )
    )


CONFIG_SCHEMA = Schema(
    {
        "rpc_url": Field(
            String(nonEmpty=True, validator=_urlProblem, shownAs=endpointOf),
            DEFAULT_RPC_URL,
            "the Stellar RPC endpoint (logged as scheme://host[:port] only: paths may carry API keys)",
        ),
        "auth_header": Field(String(secret=True), "", "sent as the Authorization header when set; never logged"),
        "start_ledger": Field(Integer(0, MAX_LEDGER), 0, "first ledger; 0: the RPC's latest ledger"),
        "end_ledger": Field(Integer(0, MAX_LEDGER), 0, "last ledger of a backfill; 0: follow forever"),
        "poll_interval": Field(Number(0, 3600), 5.0, "seconds between polls once caught up"),
        "rpc_method": Field(
            String(choices=METHODS),
            "getEvents",
            "getEvents (contract events) or getLedgers (whole ledgers: payments, trades and contract events, "
            "with the GetLedgersRPC processor)",
        ),
        "filters": Field(ListOf(FILTER_SCHEMA, maxItems=MAX_FILTERS), [], "getEvents filters (OR)"),
        "pagination": Field(PAGINATION_SCHEMA, {"limit": None}, "{limit}"),
        "xdrFormat": Field(String(choices=("base64", "json")), "base64", "how the RPC encodes XDR"),
        "request_timeout": Field(Number(0, 600, exclusiveMinimum=True), 30.0, "seconds per request, body included"),
        "network": Field(
            String(validator=passphraseProblem),
            None,
            "mainnet, testnet, futurenet or a passphrase; default from rpc_url (required with getLedgers, checked "
            "with getNetwork)",
        ),
        "on_gap": Field(
            String(choices=("skip", "stop")),
            "skip",
            "when ledgers fell out of RPC retention (getLedgers: or the chain breaks)",
        ),
        "on_checkpoint_mismatch": Field(
            String(choices=("stop", "restart_from_latest")),
            "stop",
            "when the checkpoint was taken on another network, or stays ahead of the RPC's latest "
            "ledger: stop with an error, or follow the RPC from its latest ledger",
        ),
        "checkpoint_ahead_margin": Field(
            Integer(0), 10, "ledgers the checkpoint may be ahead of the RPC's latest (a lagging node)"
        ),
        "checkpoint_ahead_timeout": Field(
            Number(0), 60.0, "seconds the checkpoint may stay more than the margin ahead before it is a mismatch"
        ),
        "health_timeout": Field(
            Number(0), 0, "seconds without a successful RPC answer before /healthz fails; 0: 3 poll intervals, at least 30"
        ),
    },
    check=_crossCheck,
)


def exactLengthTopicFilters(filters):
    """
    The topic filters that match only events with exactly as many topics (no trailing ``**``).
    A common surprise: ``["*"]`` matches one-topic events, never a 4-topic SAC transfer.
    """
    return [list(t) for f in filters for t in (f.get("topics") or []) if t and t[-1] != "**"]


def requestFilters(filters):
    """
    Config filters as getEvents wants them: empty members left out.
    """
    out = []
    for f in filters:
        entry = {}
        if f.get("type"):
            entry["type"] = f["type"]
        if f.get("contractIds"):
            entry["contractIds"] = list(f["contractIds"])
        if f.get("topics"):
            entry["topics"] = [list(t) for t in f["topics"]]
        out.append(entry)
    return out
