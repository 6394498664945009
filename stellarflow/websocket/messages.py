"""
The messages the WebSocket server sends besides events, and its close codes.

Every reply is one JSON text frame.  C{welcome} and C{registered} follow the streaming guide
word for word (clients match on their text); C{error} is ours: C{{"type": "error", "error":
<code>, "message": <text>}} (plus C{field} for a bad filter field).  Events are the pipeline's
messages, unchanged, so each keeps its C{id}: the resume token a client sends back as
C{resume_after}.  C{cursor} (C{{"type": "cursor", "cursor": <position>}}) tells a client whose
filters match rarely how far the server has got.
"""

import json

from stellarflow.websocket.filters import KNOWN_TYPES, availableTypes, paymentMessages

#: The guide's welcome text and registration template (sent once per connection).
WELCOME = {
    "type": "welcome",
    "message": "Please send registration message to begin receiving events",
    "format": {
        "type": "register",
        "filters": {
            "types": [],
            "account_ids": [],
            "asset_codes": [],
            "min_amount": "",
        },
    },
}

REGISTERED_TEXT = "Registration successful, processing queued events"

# -- close codes ---------------------------------------------------------------
#: The server is stopping (RFC 6455 "going away").
CLOSE_GOING_AWAY = 1001
#: The server hit an unexpected condition (RFC 6455 "internal error").
CLOSE_INTERNAL_ERROR = 1011
#: A frame or message was larger than C{max_message_size} (sent by Autobahn).
CLOSE_MESSAGE_TOO_BIG = 1009
#: No C{register} within C{registration_timeout} seconds (private-use range: 4000 + HTTP 408).
CLOSE_REGISTRATION_TIMEOUT = 4008
#: The client stopped reading and C{max_queue_size} events piled up (4000 + HTTP 429).
CLOSE_QUEUE_FULL = 4029
#: The client's token expired while it was connected (4000 + HTTP 401).
CLOSE_TOKEN_EXPIRED = 4401
#: More than C{max_registers_per_minute} C{register} messages a minute (4000 + HTTP 429).
CLOSE_RATE_LIMITED = 4429

REASON_GOING_AWAY = "server shutting down"
REASON_REGISTRATION_TIMEOUT = "registration timeout"
REASON_QUEUE_FULL = "message queue full"
REASON_REPLAY_OVERRUN = "replay fell behind"
REASON_REPLAY_FAILED = "replay failed"
REASON_TOKEN_EXPIRED = "token expired"
REASON_RATE_LIMITED = "too many register messages"

# -- error codes ---------------------------------------------------------------
INVALID_JSON = "invalid_json"
BINARY_NOT_SUPPORTED = "binary_not_supported"
INVALID_MESSAGE = "invalid_message"
INVALID_FIELD_TYPE = "invalid_field_type"
UNKNOWN_FIELD = "unknown_field"
UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
REGISTRATION_TIMEOUT = "registration_timeout"
QUEUE_FULL = "queue_full"
INTERNAL_ERROR = "internal_error"
# limits and authentication
RATE_LIMITED = "rate_limited"
TOO_MANY_FILTER_ENTRIES = "too_many_filter_entries"
FILTER_NOT_ALLOWED = "filter_not_allowed"
TOKEN_EXPIRED = "token_expired"
# resuming (register with resume_after)
INVALID_RESUME_AFTER = "invalid_resume_after"
RESUME_AFTER_AHEAD = "resume_after_ahead"
REPLAY_TOO_LARGE = "replay_too_large"
RESUME_IN_PROGRESS = "resume_in_progress"
RESUME_NOT_AVAILABLE = "resume_not_available"
HISTORY_UNAVAILABLE = "history_unavailable"
REPLAY_OVERRUN = "replay_overrun"


def encode(obj):
    """
    Serialise one message: compact JSON as UTF-8 bytes (ASCII-only, so any client decodes it).
    """
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def decode(payload):
    """
    Parse a client's text message (UTF-8 bytes, already validated by Autobahn).

    @raise ValueError: not JSON.
    @raise RecursionError: nested too deeply to parse.
    """
    return json.loads(payload)


def shown(value, limit=60):
    """
    A client-supplied value quoted in a reply, cut short.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def welcome():
    """
    The C{welcome} message, sent once per connection.
    """
    return encode(WELCOME)


def registered(filters, resume=None, producedTypes=None):
    """
    The reply to a C{register}: the guide's text and the normalised filters, then
    C{available_types}, the sorted known type names this pipeline can match (see
    L{availableTypes}; every known type when C{producedTypes}, the message types of the
    pipeline, is C{None}: not known).  Asked-for types that match nothing are listed, each with
    a human-readable C{warnings} entry: C{unknown_types} (names not known at all) and
    C{unavailable_types} (known, but not produced by this pipeline, e.g. C{trade} on a getEvents
    pipeline); C{payment} on a pipeline without payment messages gets a warning saying what it
    means there.  For a register with C{resume_after}, C{resume} is a dict of the keys to add
    (C{resume_after}, C{resumed} and, when not resumed, C{gap}).
    """
    available = availableTypes(producedTypes)
    reply = {
        "type": "registered",
        "message": REGISTERED_TEXT,
        "filters": filters.toJSON(),
        "available_types": sorted(available),
    }
    warnings = []
    unknown = list(filters.unknownTypes)
    if unknown:
        reply["unknown_types"] = unknown
        warnings.append(
            "unknown event type(s) {} match no events; known types: {}".format(
                ", ".join(shown(t) for t in unknown), ", ".join(sorted(KNOWN_TYPES))
            )
        )
    unavailable = sorted(t for t in filters.types if t in KNOWN_TYPES and t not in available)
    if unavailable:
        reply["unavailable_types"] = unavailable
        warnings.append(
            "event type(s) {} are not produced by this pipeline and match no events; it produces: {}{}".format(
                ", ".join(unavailable), ", ".join(sorted(available)),
                " (payment and trade messages come from whole ledgers: a getLedgers or data lake source)"
                if "trade" in unavailable or "payment" in unavailable else "",
            )
        )
    if "payment" in filters.types and "payment" in available and not paymentMessages(producedTypes):
        warnings.append(
            "on this pipeline 'payment' means a Stellar Asset Contract transfer between two different "
            "accounts (contract_event messages); Horizon-style payment messages (classic payments, "
            "path payments, create_account, account_merge) come from whole ledgers: a getLedgers "
            "or data lake source"
        )
    if warnings:
        reply["warnings"] = warnings
    if resume:
        reply.update(resume)
    return encode(reply)


def cursor(position):
    """
    The position the server has processed up to: every matching event up to it was sent before.
    """
    return encode({"type": "cursor", "cursor": position})


def error(code, message, field=None):
    """
    An C{error} reply: its C{code}, a C{message} for people and the C{field} concerned, if any.
    """
    reply = {"type": "error", "error": code, "message": message}
    if field is not None:
        reply["field"] = field
    return encode(reply)
