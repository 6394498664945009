"""
WebSocket client filters: what a client may ask for, parsed and validated.

A client sends C{{"type": "register", "filters": {...}}}; L{parseFilters} turns the
C{filters} value into an immutable L{Filters} (or raises L{FilterError}).  Matching an event
against filters is L{stellarflow.websocket.matching}; finding the clients an event matches
among many is L{stellarflow.websocket.index}.

Semantics
=========
  - A missing, C{null} or empty field (C{[]}, C{""}) means no filtering on that field
    (C{null} is accepted because Go and other clients serialise empty slices as C{null}).
    C{"filters"} itself missing or C{null} means no filtering at all.
  - Fields combine with AND; the entries of one list combine with OR.
  - C{types} matches the message C{type} (C{contract_event}, C{payment}, C{trade}) and, for
    token events (contract events), the C{event_type} (C{transfer}, C{mint}, C{burn},
    C{clawback}, C{approve}, C{set_admin}, C{set_authorized}, C{fee}); a C{payment} message's
    own C{event_type} (a SAC payment's) is not a type of it, so C{transfer} never brings the
    payment message beside the contract event.  C{payment} matches C{payment} messages (whole
    ledgers: L{stellarflow.meta}).  On a pipeline that produces no C{payment} messages (a
    getEvents source: L{Filters.forPipeline}) C{payment} matches instead a C{transfer} contract
    event between two parties: C{from} and C{to} both present and different accounts (compared
    after the muxed normalisation below, so a transfer between two muxed ids of one account is
    not a payment), and the C{registered} reply says so.  These are the known types.  Any other
    name is accepted, kept, echoed back, reported in L{Filters.unknownTypes} and matches
    nothing: a client whose C{types} are all unknown receives no events.  Type names are
    case-sensitive.
  - C{account_ids} matches when any address the event involves is listed: for a contract
    event its C{account_ids}, C{from}, C{to} and the emitting C{contract_id}; for a payment its
    C{from} and C{to} (and a SAC payment's C{contract_id}); for a trade its C{seller}, C{buyer}
    and pool (C{liquidity_pool_id}, hex in the message, listed as its C{L...} strkey).
    Accepted: C{G...} accounts, C{M...} muxed accounts, C{C...} contracts, C{B...} claimable
    balances and C{L...} liquidity pools, each a valid strkey.  A muxed C{M...} address stands
    for its C{G...} account on both sides (filter and event), so C{M...} in a filter matches
    every muxed id of that account and the account itself.
  - C{asset_codes}: C{"USDC"} matches USDC of any issuer; C{"USDC:GA5Z..."} only that issuer;
    C{"XLM"} or C{"native"} the native asset only (never a credit asset whose code happens to
    be C{XLM}; C{"XLM:G..."} names such a credit asset explicitly).  Codes are 1-12 ASCII
    letters/digits and case-sensitive, as on Stellar.  An event has one or two I{sides}, each
    an asset and an amount, and matches when the asset of one side is listed: a contract
    event its asset (only a VERIFIED one: C{asset_verified} true, the emitting contract is the
    real Stellar Asset Contract of that asset; a look-alike contract emitting C{USDC} topics
    never matches; events without an asset topic, custom SEP-41 tokens, match no asset filter:
    filter those by contract id in C{account_ids}); a payment its delivered asset
    (C{asset_code}/C{asset_issuer}, with C{amount}) and, for a path payment, its source asset
    (C{source_asset_code}/C{source_asset_issuer}, with C{source_amount}); a trade its sold and
    its bought asset, each with its amount.
  - C{min_amount}: a non-negative decimal string (a JSON number is also accepted and
    converted with C{str()}, which for a float is its shortest repr, e.g. C{100.5}; send a
    string for exact values).  Amounts are compared as exact decimals, in the units of their
    asset.  With C{asset_codes}, an event passes when a side whose asset matched has an amount
    C{>= min_amount} (the threshold is in the units of the asset asked for).  Without, the
    amount compared is the contract event's C{amount}, the payment's C{amount} (what was
    delivered: the payment's headline figure, Horizon's C{amount}; its C{source_amount} is
    another asset's units) and, for a trade, either side's amount (a trade has no headline
    side: which asset is "sold" depends on who took whose offer).  An event without that amount
    (a plain contract event, an C{account_merge} whose result lacks the balance) does not
    pass.  C{fee} refunds carry negative amounts and are compared signed, so they never pass.
    The reply echoes it normalised (C{"1e2"} and C{"100.00"} become C{"100"}).

Limits (bound the memory one client can pin): at most L{MAX_LIST_ENTRIES} entries per list,
type names of at most L{MAX_TYPE_LENGTH} characters, C{min_amount} of at most
L{MAX_AMOUNT_LENGTH} characters within C{10**MAX_AMOUNT_EXPONENT} in magnitude and precision.

The fields of L{Filters} are named as on the wire (C{account_ids}, C{min_amount}), like the
error codes and the C{filters.<field>} paths of error messages.
"""

import difflib
import re
from decimal import Context, Decimal, InvalidOperation

import attr
from stellar_sdk import MuxedAccount, StrKey

__all__ = [
    "FilterError", "Filters", "parseFilters", "jsonType", "KNOWN_TYPES", "TOKEN_EVENT_TYPES",
    "KNOWN_FIELDS", "NATIVE", "MAX_LIST_ENTRIES", "TWO_PARTY_TRANSFER", "availableTypes",
    "paymentMessages",
]

#: Most entries accepted in one filter list (before de-duplication).
MAX_LIST_ENTRIES = 1000
#: Longest accepted type name (unknown names are kept and echoed, so they are bounded).
MAX_TYPE_LENGTH = 64
#: C{min_amount} must lie within 10**this in magnitude and in precision.
MAX_AMOUNT_EXPONENT = 80
#: Longest accepted C{min_amount} text.
MAX_AMOUNT_LENGTH = 200
#: Longest piece of a bad value quoted back in an error message.
_SHOW_LIMIT = 100

TOKEN_EVENT_TYPES = frozenset([
    "transfer", "mint", "burn", "clawback", "approve", "set_admin", "set_authorized", "fee",
])
#: Type names filters know; others are accepted but match nothing.
KNOWN_TYPES = frozenset(["contract_event", "payment", "trade"]) | TOKEN_EVENT_TYPES
#: The match key of a C{transfer} contract event between two parties: what the type
#: C{payment} matches on a pipeline without payment messages.  Not a string, so no client
#: can name it.
TWO_PARTY_TRANSFER = ("payment", "transfer")
_EMPTY = frozenset()
KNOWN_FIELDS = ("types", "account_ids", "asset_codes", "min_amount")
#: The asset key of the native asset (lumens).
NATIVE = ("XLM", None)

_ASSET_CODE = re.compile(r"[A-Za-z0-9]{1,12}\Z")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


class FilterError(ValueError):
    """
    A register message's filters are invalid.

    When several fields are bad, C{code} and C{field} are those of the first, C{message} joins
    all of them and L{errors} holds each one.

    @ivar code: a short machine code (C{invalid_filters}, C{unknown_filter_field},
        C{invalid_field_type}, C{too_many_entries}, C{invalid_type}, C{invalid_account_id},
        C{invalid_asset_code}, C{invalid_min_amount}).
    @ivar message: names the field and the bad values.
    @ivar field: the filter field concerned, or C{None}.
    """

    def __init__(self, code, message, field=None, errors=()):
        ValueError.__init__(self, message)
        self.code = code
        self.message = message
        self.field = field
        self._errors = tuple(errors)

    @property
    def errors(self):
        """
        Each problem found, as L{FilterError}s (just this one when there was one).
        """
        return self._errors or (self,)

    def toJSON(self):
        """
        A plain dict for an error reply.
        """
        return {"code": self.code, "message": self.message, "field": self.field}


def _show(value):
    """
    C{repr()} of a client-supplied value, cut short so error messages stay small.
    """
    text = repr(value)
    if len(text) > _SHOW_LIMIT:
        text = text[:_SHOW_LIMIT] + "...'"
    return text


def jsonType(value):
    """
    The JSON name of a decoded value's type, for error messages.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _valid(check, value):
    try:
        return check(value)
    except Exception:
        return False


def _normaliseAddress(address):
    """
    Validate a strkey address; return it with C{M...} replaced by its C{G...}, or C{None}.
    """
    first = address[:1]
    if first == "G":
        return address if _valid(StrKey.is_valid_ed25519_public_key, address) else None
    if first == "M":
        if not _valid(StrKey.is_valid_med25519_public_key, address):
            return None
        return MuxedAccount.from_account(address).account_id
    if first == "C":
        return address if _valid(StrKey.is_valid_contract, address) else None
    if first == "B":
        return address if _valid(StrKey.is_valid_claimable_balance, address) else None
    if first == "L":
        return address if _valid(StrKey.is_valid_liquidity_pool, address) else None
    return None


def _field(value):
    """
    A list field as kept: a frozenset, the one shared empty frozenset when empty (CPython has
    no empty-frozenset singleton, and each would otherwise cost 216 bytes per registered
    client).
    """
    if not value:
        return _EMPTY
    return value if isinstance(value, frozenset) else frozenset(value)


@attr.s(frozen=True, slots=True, weakref_slot=False)
class Filters:
    """
    One client's normalised filters (immutable, hashable; an empty field means no filtering).

    @ivar types: type names (known or not).
    @ivar account_ids: addresses, muxed ones as their C{G...} account.
    @ivar asset_codes: C{(code, issuer)} pairs: issuer C{None} means any issuer, except
        L{NATIVE} C{("XLM", None)}, which is the native asset.
    @ivar min_amount: a L{Decimal}, or C{None}.
    @ivar paymentTransfers: whether C{payment} also matches two-party transfer contract events
        (L{TWO_PARTY_TRANSFER}): true on a pipeline without payment messages (and when the
        pipeline is not known); see L{forPipeline}.
    @ivar matchTypes: the type keys C{types} matches (L{TWO_PARTY_TRANSFER} added to
        C{payment} when C{paymentTransfers}); what L{stellarflow.websocket.matching} and the
        index compare with an event's types.
    """

    types = attr.ib(default=_EMPTY, converter=_field)
    account_ids = attr.ib(default=_EMPTY, converter=_field)
    asset_codes = attr.ib(default=_EMPTY, converter=_field)
    min_amount = attr.ib(default=None)
    paymentTransfers = attr.ib(default=True)
    matchTypes = attr.ib(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        types = self.types
        if self.paymentTransfers and "payment" in types:
            types = types | {TWO_PARTY_TRANSFER}
        object.__setattr__(self, "matchTypes", types)

    def forPipeline(self, messageTypes):
        """
        These filters on a pipeline whose processors produce messages of C{messageTypes} (the
        message C{type} values, or C{None} when not known): C{payment} means payment messages
        where there are some, else two-party transfer contract events.
        """
        transfers = not paymentMessages(messageTypes)
        if transfers == self.paymentTransfers:
            return self
        return attr.evolve(self, paymentTransfers=transfers)

    @property
    def unknownTypes(self):
        """
        Type names not produced by this pipeline (sorted); they match nothing.
        """
        return tuple(sorted(t for t in self.types if t not in KNOWN_TYPES))

    @property
    def isEmpty(self):
        """
        Whether nothing is filtered: every event matches.
        """
        return (not self.types and not self.account_ids and not self.asset_codes
                and self.min_amount is None)

    def toJSON(self):
        """
        The normalised filters, as echoed in the C{registered} reply.
        """
        return {
            "types": sorted(self.types),
            "account_ids": sorted(self.account_ids),
            "asset_codes": sorted(
                code if issuer is None else code + ":" + issuer
                for code, issuer in self.asset_codes),
            "min_amount": "" if self.min_amount is None else format(self.min_amount, "f"),
        }


def paymentMessages(messageTypes):
    """
    Whether a pipeline producing messages of C{messageTypes} (C{None}: not known) produces
    C{payment} messages.
    """
    return messageTypes is not None and "payment" in messageTypes


def availableTypes(messageTypes):
    """
    The known type names that can match messages of C{messageTypes} (the message C{type}
    values a pipeline produces; C{None} when not known: every known type).  Contract events
    bring the token event types and C{payment} (two-party transfers) with them.
    """
    if messageTypes is None:
        return KNOWN_TYPES
    available = set(t for t in messageTypes if t in KNOWN_TYPES)
    if "contract_event" in messageTypes:
        available |= TOKEN_EVENT_TYPES
        available.add("payment")
    return frozenset(available)


# -- parsing -----------------------------------------------------------------------------


def _suggest(name):
    key = name.lower().replace("-", "_")
    squashed = {f.replace("_", ""): f for f in KNOWN_FIELDS}
    if key.replace("_", "") in squashed:
        return squashed[key.replace("_", "")]
    for known in KNOWN_FIELDS:
        if key and (known.startswith(key) or key.startswith(known.rstrip("s"))):
            return known
    close = difflib.get_close_matches(key, KNOWN_FIELDS, n=1, cutoff=0.5)
    return close[0] if close else None


def _stringList(obj, name, errors):
    """
    The field as a list of strings, C{[]} when absent or null; C{None} (an error recorded in
    C{errors}) when bad.
    """
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(FilterError(
            "invalid_field_type",
            "filters.%s must be an array of strings, not %s" % (name, jsonType(value)),
            name))
        return None
    if len(value) > MAX_LIST_ENTRIES:
        errors.append(FilterError(
            "too_many_entries",
            "filters.%s has %d entries; at most %d are allowed"
            % (name, len(value), MAX_LIST_ENTRIES),
            name))
        return None
    bad = [(i, v) for i, v in enumerate(value) if not isinstance(v, str)]
    if bad:
        errors.append(FilterError(
            "invalid_field_type",
            "filters.%s must contain only strings; bad entries: %s" % (
                name, ", ".join("[%d] %s (%s)" % (i, _show(v), jsonType(v))
                                for i, v in bad[:10])
                + (" and %d more" % (len(bad) - 10) if len(bad) > 10 else "")),
            name))
        return None
    return value


def _badValues(name, code, what, bad):
    shown = ", ".join(_show(v) for v in bad[:20])
    if len(bad) > 20:
        shown += " and %d more" % (len(bad) - 20)
    return FilterError(code, "filters.%s: %s: %s" % (name, what, shown), name)


def _parseTypes(obj, errors):
    values = _stringList(obj, "types", errors)
    if values is None:
        return _EMPTY
    bad = [v for v in values if not v or len(v) > MAX_TYPE_LENGTH or not v.isprintable()]
    if bad:
        errors.append(_badValues(
            "types", "invalid_type",
            "type names must be non-empty printable strings of at most %d characters"
            % MAX_TYPE_LENGTH, bad))
        return _EMPTY
    return frozenset(values)


def _parseEntries(obj, field, parse, code, expected, errors):
    """
    The set of C{parse(value)} for the strings of list C{field}; every entry C{parse} rejects
    (returns C{None} for) is named in one error with C{code}.
    """
    values = _stringList(obj, field, errors)
    if values is None:
        return _EMPTY
    good, bad = set(), []
    for value in values:
        parsed = parse(value)
        if parsed is None:
            bad.append(value)
        else:
            good.add(parsed)
    if bad:
        errors.append(_badValues(field, code, expected, bad))
        return _EMPTY
    return frozenset(good)


def _parseAccountIds(obj, errors):
    return _parseEntries(
        obj, "account_ids", _normaliseAddress, "invalid_account_id",
        "not a valid account (G...), muxed account (M...), contract (C...), "
        "claimable balance (B...) or liquidity pool (L...) strkey", errors)


def _parseAsset(value):
    """
    C{(code, issuer)} for one asset filter entry, or C{None} when malformed.
    """
    if value in ("XLM", "native"):
        return NATIVE
    code, sep, issuer = value.partition(":")
    if not _ASSET_CODE.match(code) or code == "native":
        return None
    if not sep:
        return (code, None)
    if not _valid(StrKey.is_valid_ed25519_public_key, issuer):
        return None
    return (code, issuer)


def _parseAssetCodes(obj, errors):
    return _parseEntries(
        obj, "asset_codes", _parseAsset, "invalid_asset_code",
        'expected "XLM", "native", CODE or CODE:ISSUER with CODE 1-12 letters/digits '
        "and ISSUER a G... account", errors)


def _parseMinAmount(obj, errors):
    value = obj.get("min_amount")
    if value is None or value == "":
        return None

    def fail(why):
        errors.append(FilterError(
            "invalid_min_amount", "filters.min_amount %s: %s" % (_show(value), why),
            "min_amount"))

    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        errors.append(FilterError(
            "invalid_field_type",
            "filters.min_amount must be a decimal string (or number), not %s"
            % jsonType(value),
            "min_amount"))
        return None
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # an int too long to print
        fail("not a decimal number")
        return None
    if len(text) > MAX_AMOUNT_LENGTH:
        fail("longer than %d characters" % MAX_AMOUNT_LENGTH)
        return None
    if not _DECIMAL.match(text):
        fail("not a decimal number (NaN and Infinity are not allowed)")
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        amount = None
    if amount is not None and amount < 0:
        fail("must not be negative")
        return None
    if amount is not None and amount == 0:
        return Decimal(0)
    if amount is None or abs(amount.adjusted()) > MAX_AMOUNT_EXPONENT:
        fail("out of range (magnitude and precision are limited to 10**%d)"
             % MAX_AMOUNT_EXPONENT)
        return None
    # Strip trailing zeros without rounding (normalize() rounds to the context precision).
    amount = amount.normalize(Context(prec=len(amount.as_tuple().digits)))
    if amount.as_tuple().exponent < -MAX_AMOUNT_EXPONENT:
        fail("out of range (magnitude and precision are limited to 10**%d)"
             % MAX_AMOUNT_EXPONENT)
        return None
    return amount


def parseFilters(obj):
    """
    Validate and normalise a register message's C{filters} value.

    Every field is checked; on failure the L{FilterError} reports all problems found.

    @param obj: the decoded JSON value (C{None}: no filtering).
    @return: the L{Filters}.
    @raise FilterError: the filters are invalid.
    """
    if obj is None:
        return Filters()
    if not isinstance(obj, dict):
        raise FilterError(
            "invalid_filters", "filters must be an object, not %s" % jsonType(obj))
    errors = []
    for name in obj:
        if name in KNOWN_FIELDS:
            continue
        hint = _suggest(name) if isinstance(name, str) else None
        errors.append(FilterError(
            "unknown_filter_field",
            "unknown filter field %s%s" % (
                _show(name),
                "; did you mean %r?" % hint if hint else
                "; known fields: %s" % ", ".join(KNOWN_FIELDS)),
            name if isinstance(name, str) else None))
    filters = Filters(
        types=_parseTypes(obj, errors),
        account_ids=_parseAccountIds(obj, errors),
        asset_codes=_parseAssetCodes(obj, errors),
        min_amount=_parseMinAmount(obj, errors),
    )
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise FilterError(
            errors[0].code, "; ".join(e.message for e in errors), errors[0].field, errors)
    return filters
