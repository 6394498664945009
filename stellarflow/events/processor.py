"""
The GetEventsRPC processor: raw getEvents event objects -> event messages.

One message per event, in order, each a plain JSON-serialisable dict whose field names and order
are those of L{stellarflow.message} (``docs/websocket.md`` describes each; token fields come from
L{stellarflow.events.tokens}).  Every event
shape RPC servers have sent is accepted: ``ledger`` as int or string, ``value`` as base64 or the
legacy ``{"xdr": ...}``, ``topic`` absent for zero topics, optional ``pagingToken``,
``txHash``, ``operationIndex``, ``transactionIndex``, ``inSuccessfulContractCall``, and
``topicJson``/``valueJson`` for ``xdrFormat: json``.  An event that cannot be decoded becomes a
message with ``decode_error`` and its raw XDR (or xdr-json), never an exception.
"""

from twisted.logger import Logger
from zope.interface import implementer, provider

from stellarflow.events import network, tokens
from stellarflow.events.decode import (
    DecodeError,
    childKindsJson,
    childKindsXdr,
    decodeJson,
    decodeScVal,
    decodeTopicXdr,
    parseXdr,
)
from stellarflow.interfaces import IComponentFactory, IProcessor
from stellarflow.message import CONTRACT_EVENT, DECODE_ERROR, ENVELOPE_FIELDS, RAW_JSON_FIELDS, RAW_XDR_FIELDS
from stellarflow.schema import Field, Schema, String

log = Logger()

_TOKEN_NAMES = tokens.EVENT_TYPES

# The names of ENVELOPE_FIELDS (stellarflow.message defines them and their order; a message
# starts as a copy of _EMPTY, so its keys are always in that order).
(
    _TYPE,
    _ID,
    _LEDGER,
    _LEDGER_CLOSED_AT,
    _TRANSACTION_HASH,
    _CONTRACT_ID,
    _OPERATION_INDEX,
    _TRANSACTION_INDEX,
    _IN_SUCCESSFUL_CONTRACT_CALL,
    _EVENT_KIND,
    _TOPICS,
    _DATA,
) = ENVELOPE_FIELDS
_EMPTY = dict.fromkeys(ENVELOPE_FIELDS)
_EMPTY[_TYPE] = CONTRACT_EVENT


def _optionalInt(raw, key):
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise DecodeError("invalid {} {!r}".format(key, value))


def _optionalBool(raw, key):
    value = raw.get(key)
    if value is None or type(value) is bool:
        return value
    raise DecodeError("invalid {} {!r}".format(key, value))


def _optionalStr(raw, key):
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise DecodeError("invalid {} {!r}".format(key, value))


def _empty():
    """
    An envelope without values (for an event whose own fields are unusable): every field of
    L{ENVELOPE_FIELDS}, in its order.
    """
    message = _EMPTY.copy()
    message[_TOPICS] = []
    return message


def _envelope(raw):
    """
    The event's identifying fields as message keys (raise L{DecodeError} for wrong types).
    """
    message = _EMPTY.copy()
    message[_ID] = _optionalStr(raw, "id") or _optionalStr(raw, "pagingToken")
    message[_LEDGER] = _optionalInt(raw, "ledger")
    message[_LEDGER_CLOSED_AT] = _optionalStr(raw, "ledgerClosedAt")
    message[_TRANSACTION_HASH] = _optionalStr(raw, "txHash")
    message[_CONTRACT_ID] = _optionalStr(raw, "contractId")
    message[_OPERATION_INDEX] = _optionalInt(raw, "operationIndex")
    message[_TRANSACTION_INDEX] = _optionalInt(raw, "transactionIndex")
    message[_IN_SUCCESSFUL_CONTRACT_CALL] = _optionalBool(raw, "inSuccessfulContractCall")
    message[_EVENT_KIND] = _optionalStr(raw, "type")
    message[_TOPICS] = []
    return message


def _rawParts(raw):
    """
    C{(isJson, topics, value)} as the event carries them (legacy ``{"xdr": ...}`` unwrapped).
    """
    if "topicJson" in raw or "valueJson" in raw:
        return True, raw.get("topicJson") or [], raw.get("valueJson")
    value = raw.get("value")
    if type(value) is dict and "xdr" in value:
        value = value["xdr"]
    return False, raw.get("topic") or [], value


def _decodeBody(message, isJson, rawTopics, rawValue, passphrase):
    if type(rawTopics) is not list:
        raise DecodeError("topics are not a list")
    if rawValue is None:
        raise DecodeError("event has no value")
    kinds = []
    topics = []
    decode = decodeJson if isJson else decodeTopicXdr
    for i, topic in enumerate(rawTopics):
        try:
            kind, value = decode(topic)
        except DecodeError as e:
            raise DecodeError("topic[{}]: {}".format(i, e)) from None
        kinds.append(kind)
        topics.append(value)
    try:
        if isJson:
            parsed = rawValue
            dataKind, data = decodeJson(rawValue)
        else:
            parsed = parseXdr(rawValue)
            dataKind, data = decodeScVal(parsed)
    except DecodeError as e:
        raise DecodeError("value: {}".format(e)) from None
    message[_TOPICS] = topics
    message[_DATA] = data

    if (
        len(topics) > 1
        and kinds[0] == "symbol"
        and topics[0] in _TOKEN_NAMES
        and message[_EVENT_KIND] != "diagnostic"
    ):
        children = (childKindsJson if isJson else childKindsXdr)(parsed, data)
        token = tokens.recognise(
            message[_CONTRACT_ID], kinds, topics, dataKind, data, children, passphrase
        )
        if token is not None:
            message.update(token)


def decodeEvent(raw, passphrase=network.DEFAULT):
    """
    Turn one raw getEvents event object into an event message; never raises.

    A failed event keeps its envelope fields and gets ``decode_error`` (the reason), ``topics``
    C{[]}, ``data`` C{None} and its raw payload: ``topics_xdr``/``data_xdr`` (base64), or
    ``topics_json``/``data_json`` for an ``xdrFormat: json`` event.

    @param passphrase: the network passphrase that token events' assets are verified against.
    """
    if not isinstance(raw, dict):
        message = _empty()
        message[DECODE_ERROR] = "event is not a JSON object: {}".format(type(raw).__name__)
        message.update(zip(RAW_XDR_FIELDS, ([], None)))
        return message
    try:
        message = _envelope(raw)
    except DecodeError as e:
        message = _empty()
        message[_ID] = raw.get("id") if isinstance(raw.get("id"), str) else None
        return _failed(message, raw, str(e))
    try:
        isJson, rawTopics, rawValue = _rawParts(raw)
        _decodeBody(message, isJson, rawTopics, rawValue, passphrase)
    except DecodeError as e:
        return _failed(message, raw, str(e))
    except Exception as e:  # a bug, but one event must not stop the pipeline
        log.failure("Unexpected error decoding event {id}", id=message[_ID])
        return _failed(message, raw, "unexpected error: {!r}".format(e))
    return message


def _failed(message, raw, reason):
    message[_TOPICS] = []
    message[_DATA] = None
    message[DECODE_ERROR] = reason
    isJson, rawTopics, rawValue = _rawParts(raw)
    message.update(zip(RAW_JSON_FIELDS if isJson else RAW_XDR_FIELDS, (rawTopics, rawValue)))
    return message


@provider(IComponentFactory)
@implementer(IProcessor)
class GetEventsRPC:
    """
    Decode getEvents event objects into event messages.

    @param network_passphrase: the network whose Stellar Asset Contracts are the real ones, for
        ``asset_verified``: a passphrase or a name (``mainnet``, ``testnet``, ``futurenet``...).
        C{None} means the public network (mainnet), where a wrong guess errs on the safe side:
        testnet SAC events then show ``asset_verified: false``, never a false ``true``.
    """

    configSchema = Schema(
        {
            "network": Field(
                String(validator=lambda v: network.passphraseProblem(v) if v else None),
                default="",
                doc="network name (mainnet, testnet, futurenet) or passphrase whose Stellar Asset "
                "Contracts are the real ones (asset_verified); empty: the source's network, else mainnet",
            ),
        },
        doc="Decode Stellar RPC getEvents events into event messages.",
    )

    #: Contract events only (see L{IProcessor.producedTypes}).
    producedTypes = frozenset([CONTRACT_EVENT])

    def __init__(self, network_passphrase=None):
        self.network_passphrase = network.networkPassphrase(network_passphrase)

    @classmethod
    def fromConfig(cls, config, context):
        return cls(config["network"] or getattr(context, "network", None) or None)

    def process(self, events):
        """
        One message per event in C{events}, in order.
        """
        passphrase = self.network_passphrase
        return [decodeEvent(raw, passphrase) for raw in events]
