"""
The one message a client sends, C{register}, parsed as a pure function of its frame.

L{parseRegister} turns the payload of a frame into a L{Registration} (the filters and the
position to resume after) or a L{RegisterError} (the code, message and field of the C{error}
reply).  It never raises, whatever the input, and changes nothing: what the hub does with
the result (register, resume, refuse) is L{stellarflow.websocket.hub}'s.
"""

import attr

from stellarflow.positions import parsePosition
from stellarflow.websocket import messages
from stellarflow.websocket.filters import FilterError, jsonType, parseFilters

__all__ = ["Registration", "RegisterError", "parseRegister", "REGISTER_FIELDS"]

#: Keys a C{register} message may carry.
REGISTER_FIELDS = ("type", "filters", "resume_after", "cursor_updates")


@attr.s(frozen=True, slots=True)
class Registration:
    """
    A valid C{register} message.

    @ivar filters: the normalised L{Filters}.
    @ivar resumeAfter: the position (C{resume_after}) to replay after, or C{None}.
    @ivar cursorUpdates: whether the client wants C{cursor} messages from now on: its
        C{cursor_updates} when given, else C{True} when it resumes, else C{None} (unchanged).
    """

    filters = attr.ib()
    resumeAfter = attr.ib(default=None)
    cursorUpdates = attr.ib(default=None)


@attr.s(frozen=True, slots=True)
class RegisterError:
    """
    Why a message is not a valid C{register}: the C{error} reply's code, message and field.

    @ivar field: the offending field (C{"type"}, C{"filters.account_ids"}...), or C{None}.
    """

    code = attr.ib()
    message = attr.ib()
    field = attr.ib(default=None)


def parseRegister(payload, isBinary, producedTypes=None):
    """
    Parse a message a client sent.

    @param payload: the message's bytes (UTF-8 text, as Autobahn delivers it).
    @param isBinary: whether it came in a binary frame.
    @param producedTypes: the message types the pipeline produces (C{None}: not known): the
        filters are for that pipeline (L{Filters.forPipeline}).
    @return: a L{Registration}, or a L{RegisterError}; never raises.
    """
    if isBinary:
        return RegisterError(messages.BINARY_NOT_SUPPORTED, "binary messages are not supported; send JSON text")
    try:
        message = messages.decode(payload)
    except (ValueError, RecursionError) as e:
        return RegisterError(messages.INVALID_JSON, "message is not valid JSON: {}".format(e))
    if not isinstance(message, dict):
        return RegisterError(messages.INVALID_MESSAGE, 'a message must be a JSON object with a "type" field')
    kind = message.get("type")
    if kind is None:
        return RegisterError(messages.INVALID_MESSAGE, 'message has no "type" field', "type")
    if not isinstance(kind, str):
        return RegisterError(
            messages.INVALID_FIELD_TYPE, '"type" must be a string, not {}'.format(jsonType(kind)), "type"
        )
    if kind != "register":
        return RegisterError(
            messages.UNKNOWN_MESSAGE_TYPE,
            "unknown message type {}; the only message a client sends is 'register'".format(messages.shown(kind)),
            "type",
        )
    unknown = [k for k in message if k not in REGISTER_FIELDS]
    if unknown:
        return RegisterError(
            messages.UNKNOWN_FIELD,
            "unknown field(s) in register message: {}; known fields: {}".format(
                ", ".join(messages.shown(k) for k in unknown[:10]), ", ".join(REGISTER_FIELDS)
            ),
            unknown[0][:100],
        )
    try:
        filters = parseFilters(message.get("filters")).forPipeline(producedTypes)
    except FilterError as e:
        return RegisterError(e.code, e.message, None if e.field is None else "filters." + e.field)
    resumeAfter = message.get("resume_after")
    if resumeAfter is not None:
        try:
            resumeAfter = parsePosition(resumeAfter)
        except ValueError as e:
            return RegisterError(messages.INVALID_RESUME_AFTER, "resume_after: {}".format(e), "resume_after")
    cursorUpdates = message.get("cursor_updates")
    if cursorUpdates is not None and not isinstance(cursorUpdates, bool):
        return RegisterError(
            messages.INVALID_FIELD_TYPE,
            '"cursor_updates" must be true or false, not {}'.format(jsonType(cursorUpdates)),
            "cursor_updates",
        )
    if cursorUpdates is None and resumeAfter is not None:
        cursorUpdates = True
    return Registration(filters, resumeAfter, cursorUpdates)
