"""WebSocket client filters: parse and validate them, match events, index many clients.

A client sends ``{"type": "register", "filters": {...}}``; :func:`parse_filters` turns the
``filters`` value into an immutable :class:`Filters` (or raises :class:`FilterError`).
Each event is reduced ONCE to an :class:`EventKeys` by :func:`event_keys`; :func:`matches`
is the plain per-client check and :class:`FilterIndex` finds the matching clients without
visiting clients that cannot match.

Semantics
---------
- A missing, ``null`` or empty field (``[]``, ``""``) means no filtering on that field
  (``null`` is accepted because Go and other clients serialise empty slices as ``null``).
  ``"filters"`` itself missing or ``null`` means no filtering at all.
- Fields combine with AND; the entries of one list combine with OR.
- ``types`` matches the message ``type`` (``contract_event``) and, for token events, the
  ``event_type`` (``transfer``, ``mint``, ``burn``, ``clawback``, ``approve``,
  ``set_admin``, ``set_authorized``, ``fee``). ``payment`` matches a ``transfer`` between
  two parties: ``from`` and ``to`` both present and different accounts (compared after the
  muxed normalisation below, so a transfer between two muxed ids of one account is not a
  payment). These are the known types. Any other name (e.g. ``trade``) is accepted, kept,
  echoed back, reported in :attr:`Filters.unknown_types` and matches nothing: a client
  whose ``types`` are all unknown receives no events. Type names are case-sensitive.
- ``account_ids`` matches when any address the event involves is listed: the message's
  ``account_ids``, ``from``, ``to`` and the emitting ``contract_id``. Accepted: ``G...``
  accounts, ``M...`` muxed accounts, ``C...`` contracts, ``B...`` claimable balances and
  ``L...`` liquidity pools, each a valid strkey. A muxed ``M...`` address stands for its
  ``G...`` account on both sides (filter and event), so ``M...`` in a filter matches every
  muxed id of that account and the account itself.
- ``asset_codes``: ``"USDC"`` matches USDC of any issuer; ``"USDC:GA5Z..."`` only that
  issuer; ``"XLM"`` or ``"native"`` the native asset only (never a credit asset whose code
  happens to be ``XLM``; ``"XLM:G..."`` names such a credit asset explicitly). Codes are
  1-12 ASCII letters/digits and case-sensitive, as on Stellar. Only VERIFIED assets match
  an asset filter (message ``asset_verified`` is true: the emitting contract is the real
  Stellar Asset Contract of that asset): a look-alike contract emitting ``USDC`` topics
  never matches ``USDC``, ``USDC:<issuer>`` or ``XLM``. Events without an asset topic
  (custom SEP-41 tokens) match no asset filter; filter those by contract id in
  ``account_ids``.
- ``min_amount``: a non-negative decimal string (a JSON number is also accepted and
  converted with ``str()``, which for a float is its shortest repr, e.g. ``100.5``; send a
  string for exact values). An event passes when its ``amount`` (asset units) is present
  and ``amount >= min_amount`` as exact decimals; an event without an amount does not pass.
  ``fee`` refunds carry negative amounts and are compared signed, so they never pass.
  The reply echoes it normalised (``"1e2"`` and ``"100.00"`` become ``"100"``).

Limits (bound the memory one client can pin): at most :data:`MAX_LIST_ENTRIES` entries per
list, type names of at most :data:`MAX_TYPE_LENGTH` characters, ``min_amount`` of at most
:data:`MAX_AMOUNT_LENGTH` characters within ``10**MAX_AMOUNT_EXPONENT`` in magnitude and
precision.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation

from stellar_sdk import MuxedAccount, StrKey

__all__ = [
    "FilterError", "Filters", "EventKeys", "FilterIndex", "parse_filters", "event_keys",
    "matches", "KNOWN_TYPES", "KNOWN_FIELDS", "NATIVE", "MAX_LIST_ENTRIES",
]

#: Most entries accepted in one filter list (before de-duplication).
MAX_LIST_ENTRIES = 1000
#: Longest accepted type name (unknown names are kept and echoed, so they are bounded).
MAX_TYPE_LENGTH = 64
#: ``min_amount`` must lie within 10**this in magnitude and in precision.
MAX_AMOUNT_EXPONENT = 80
#: Longest accepted ``min_amount`` text.
MAX_AMOUNT_LENGTH = 200
#: Longest piece of a bad value quoted back in an error message.
_SHOW_LIMIT = 100

TOKEN_EVENT_TYPES = frozenset([
    "transfer", "mint", "burn", "clawback", "approve", "set_admin", "set_authorized", "fee",
])
#: Type names this pipeline produces; others are accepted but match nothing.
KNOWN_TYPES = frozenset(["contract_event", "payment"]) | TOKEN_EVENT_TYPES
_EMPTY = frozenset()
KNOWN_FIELDS = ("types", "account_ids", "asset_codes", "min_amount")
#: The asset key of the native asset (lumens).
NATIVE = ("XLM", None)

_ASSET_CODE = re.compile(r"[A-Za-z0-9]{1,12}\Z")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


class FilterError(ValueError):
    """A register message's filters are invalid.

    ``code`` is a short machine code (``invalid_filters``, ``unknown_filter_field``,
    ``invalid_field_type``, ``too_many_entries``, ``invalid_type``, ``invalid_account_id``,
    ``invalid_asset_code``, ``invalid_min_amount``); ``message`` names the field and the bad
    values; ``field`` is the filter field concerned (or None). When several fields are bad,
    ``code``/``field`` are those of the first, ``message`` joins all of them and ``errors``
    holds each one.
    """

    def __init__(self, code, message, field=None, errors=()):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self._errors = tuple(errors)

    @property
    def errors(self):
        """Each problem found, as FilterErrors (just this one when there was one)."""
        return self._errors or (self,)

    def to_json(self):
        """A plain dict for an error reply."""
        return {"code": self.code, "message": self.message, "field": self.field}


def _show(value):
    """repr() of a client-supplied value, cut short so error messages stay small."""
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


def _normalise_address(address):
    """Validate a strkey address; return it with ``M...`` replaced by its ``G...``, or None."""
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


@functools.lru_cache(maxsize=8192)
def _event_account(address):
    """An event address as matched: ``M...`` becomes its ``G...``; anything else as is."""
    if address[:1] == "M":
        try:
            return MuxedAccount.from_account(address).account_id
        except Exception:
            return address
    return address


@dataclass(frozen=True, slots=True)
class Filters:
    """One client's normalised filters (immutable, hashable; empty field = no filtering).

    ``asset_codes`` holds ``(code, issuer)`` pairs: issuer None means any issuer, except
    :data:`NATIVE` ``("XLM", None)`` which is the native asset.
    """

    types: frozenset = frozenset()
    account_ids: frozenset = frozenset()
    asset_codes: frozenset = frozenset()
    min_amount: Decimal | None = None

    def __post_init__(self):
        # Empty fields share one empty frozenset: CPython has no empty-frozenset singleton,
        # and each would otherwise cost 216 bytes per registered client.
        for name in ("types", "account_ids", "asset_codes"):
            value = getattr(self, name)
            if not value:
                object.__setattr__(self, name, _EMPTY)
            elif not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))

    @property
    def unknown_types(self):
        """Type names not produced by this pipeline (sorted); they match nothing."""
        return tuple(sorted(t for t in self.types if t not in KNOWN_TYPES))

    @property
    def is_empty(self):
        """True when nothing is filtered: every event matches."""
        return (not self.types and not self.account_ids and not self.asset_codes
                and self.min_amount is None)

    def to_json(self):
        """The normalised filters, as echoed in the ``registered`` reply."""
        return {
            "types": sorted(self.types),
            "account_ids": sorted(self.account_ids),
            "asset_codes": sorted(
                code if issuer is None else code + ":" + issuer
                for code, issuer in self.asset_codes),
            "min_amount": "" if self.min_amount is None else _format_amount(self.min_amount),
        }


def _format_amount(amount):
    return format(amount, "f")


# --- parsing -------------------------------------------------------------------------------

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


def _string_list(obj, name, errors):
    """The field as a list of strings, [] when absent/null; None (error recorded) if bad."""
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


def _bad_values(name, code, what, bad):
    shown = ", ".join(_show(v) for v in bad[:20])
    if len(bad) > 20:
        shown += " and %d more" % (len(bad) - 20)
    return FilterError(code, "filters.%s: %s: %s" % (name, what, shown), name)


def _parse_types(obj, errors):
    values = _string_list(obj, "types", errors)
    if values is None:
        return frozenset()
    bad = [v for v in values if not v or len(v) > MAX_TYPE_LENGTH or not v.isprintable()]
    if bad:
        errors.append(_bad_values(
            "types", "invalid_type",
            "type names must be non-empty printable strings of at most %d characters"
            % MAX_TYPE_LENGTH, bad))
        return frozenset()
    return frozenset(values)


def _parse_entries(obj, field, parse, code, expected, errors):
    """
    The set of C{parse(value)} for the strings of list C{field}; every entry C{parse} rejects
    (returns None for) is named in one error with C{code}.
    """
    values = _string_list(obj, field, errors)
    if values is None:
        return frozenset()
    good, bad = set(), []
    for value in values:
        parsed = parse(value)
        if parsed is None:
            bad.append(value)
        else:
            good.add(parsed)
    if bad:
        errors.append(_bad_values(field, code, expected, bad))
        return frozenset()
    return frozenset(good)


def _parse_account_ids(obj, errors):
    return _parse_entries(
        obj, "account_ids", _normalise_address, "invalid_account_id",
        "not a valid account (G...), muxed account (M...), contract (C...), "
        "claimable balance (B...) or liquidity pool (L...) strkey", errors)


def _parse_asset(value):
    """``(code, issuer)`` for one asset filter entry, or None when malformed."""
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


def _parse_asset_codes(obj, errors):
    return _parse_entries(
        obj, "asset_codes", _parse_asset, "invalid_asset_code",
        'expected "XLM", "native", CODE or CODE:ISSUER with CODE 1-12 letters/digits '
        "and ISSUER a G... account", errors)


def _parse_min_amount(obj, errors):
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


def parse_filters(obj):
    """Validate and normalise a register message's ``filters`` value into :class:`Filters`.

    ``obj`` is the decoded JSON value (None = no filtering). Every field is checked; on
    failure a :class:`FilterError` reports all problems found.
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
        types=_parse_types(obj, errors),
        account_ids=_parse_account_ids(obj, errors),
        asset_codes=_parse_asset_codes(obj, errors),
        min_amount=_parse_min_amount(obj, errors),
    )
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise FilterError(
            errors[0].code, "; ".join(e.message for e in errors), errors[0].field, errors)
    return filters


# --- events --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EventKeys:
    """What filters look at in one event, computed once per event by :func:`event_keys`.

    ``types``: known type names the event has; ``accounts``: addresses involved (muxed
    normalised to ``G...``); ``asset``: ``(code, issuer)`` of a VERIFIED asset, else None;
    ``amount``: the signed amount in asset units, or None.
    """

    types: frozenset = frozenset()
    accounts: frozenset = frozenset()
    asset: tuple | None = None
    amount: Decimal | None = None


def _amount(value):
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def event_keys(message):
    """Reduce an event message (see the processor's message format) to its :class:`EventKeys`."""
    types = set()
    kind = message.get("type")
    if kind in KNOWN_TYPES:
        types.add(kind)
    event_type = message.get("event_type")
    if event_type in TOKEN_EVENT_TYPES:
        types.add(event_type)

    accounts = set()
    involved = message.get("account_ids")
    if isinstance(involved, list):
        for address in involved:
            if isinstance(address, str):
                accounts.add(_event_account(address))
    sender = message.get("from")
    sender = _event_account(sender) if isinstance(sender, str) and sender else None
    receiver = message.get("to")
    receiver = _event_account(receiver) if isinstance(receiver, str) and receiver else None
    if sender:
        accounts.add(sender)
    if receiver:
        accounts.add(receiver)
    contract = message.get("contract_id")
    if isinstance(contract, str) and contract:
        accounts.add(contract)
    if event_type == "transfer" and sender and receiver and sender != receiver:
        types.add("payment")

    asset = None
    code = message.get("asset_code")
    if message.get("asset_verified") is True and isinstance(code, str) and code:
        issuer = message.get("asset_issuer")
        asset = (code, issuer if isinstance(issuer, str) and issuer else None)

    return EventKeys(
        types=frozenset(types), accounts=frozenset(accounts), asset=asset,
        amount=_amount(message.get("amount")))


def _asset_matches(assets, asset):
    if asset is None:
        return False
    if asset in assets:
        return True
    code, issuer = asset
    return issuer is not None and code != "XLM" and (code, None) in assets


def matches(filters, keys):
    """True when an event with these keys passes these filters (the reference check)."""
    if filters.types and filters.types.isdisjoint(keys.types):
        return False
    if filters.account_ids and filters.account_ids.isdisjoint(keys.accounts):
        return False
    if filters.asset_codes and not _asset_matches(filters.asset_codes, keys.asset):
        return False
    if filters.min_amount is not None and (
            keys.amount is None or keys.amount < filters.min_amount):
        return False
    return True


# --- index ---------------------------------------------------------------------------------

@dataclass(slots=True)
class _Entry:
    """A filed client: its filters, its add order, and where it is filed."""

    filters: Filters
    seq: int
    rest: bool = False          # fields besides the primary one still need matches()
    places: list = field(default_factory=list)   # [(table, key)] buckets holding it


class FilterIndex:
    """Clients' filters indexed so that an event only visits candidate clients.

    Each client is filed under one primary field, the most selective it constrains
    (account > asset > type > none): in one bucket per listed account / asset / known type,
    or in the unconstrained set. A client whose ``types`` are all unknown is filed nowhere
    (it can never match). :meth:`match` visits the buckets the event's keys select plus
    the unconstrained set and runs :func:`matches` only for candidates that constrain more
    than their primary field, so its cost does not grow with clients that cannot match.
    Results are in the order of the clients' latest :meth:`add`, without duplicates.
    """

    def __init__(self):
        self._entries = {}
        self._seq = 0
        self._by_account = {}
        self._by_asset = {}        # (code, issuer) and NATIVE -> bucket {client: _Entry}
        self._by_code = {}         # code (any issuer; never XLM) -> bucket
        self._by_type = {}         # known type -> bucket
        self._unconstrained = {}   # bucket of clients with no account/asset/type filter

    def __len__(self):
        return len(self._entries)

    def __contains__(self, client):
        return client in self._entries

    def __iter__(self):
        """The clients, in order of their latest add."""
        return iter(list(self._entries))

    def filters_for(self, client):
        """The client's filters, or None when it is not in the index."""
        entry = self._entries.get(client)
        return None if entry is None else entry.filters

    def add(self, client, filters):
        """File ``client`` under ``filters``; re-adding replaces (and moves it last)."""
        if client in self._entries:
            self.remove(client)
        self._seq += 1
        entry = _Entry(filters, self._seq)
        self._entries[client] = entry
        amount = filters.min_amount is not None
        if filters.account_ids:
            entry.rest = bool(filters.types or filters.asset_codes or amount)
            for account in filters.account_ids:
                self._file(entry, client, self._by_account, account)
        elif filters.asset_codes:
            entry.rest = bool(filters.types or amount)
            for code, issuer in filters.asset_codes:
                if issuer is None and code != "XLM":
                    self._file(entry, client, self._by_code, code)
                else:
                    self._file(entry, client, self._by_asset, (code, issuer))
        elif filters.types:
            entry.rest = amount
            for name in filters.types:
                if name in KNOWN_TYPES:
                    self._file(entry, client, self._by_type, name)
        else:
            entry.rest = amount
            self._unconstrained[client] = entry
            entry.places.append((None, None))

    @staticmethod
    def _file(entry, client, table, key):
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = {}
        bucket[client] = entry
        entry.places.append((table, key))

    def remove(self, client):
        """Forget ``client``; unknown clients are ignored."""
        entry = self._entries.pop(client, None)
        if entry is None:
            return
        for table, key in entry.places:
            if table is None:
                del self._unconstrained[client]
                continue
            bucket = table[key]
            del bucket[client]
            if not bucket:
                del table[key]

    def _buckets(self, keys):
        """The non-empty account/asset/type buckets an event with these keys selects."""
        buckets = []
        if self._by_account:
            by_account = self._by_account
            for account in keys.accounts:
                bucket = by_account.get(account)
                if bucket:
                    buckets.append(bucket)
        asset = keys.asset
        if asset is not None:
            bucket = self._by_asset.get(asset)
            if bucket:
                buckets.append(bucket)
            code, issuer = asset
            if issuer is not None and code != "XLM":
                bucket = self._by_code.get(code)
                if bucket:
                    buckets.append(bucket)
        if self._by_type:
            by_type = self._by_type
            for name in keys.types:
                bucket = by_type.get(name)
                if bucket:
                    buckets.append(bucket)
        return buckets

    def match(self, keys):
        """The clients whose filters pass an event with these keys (a new list)."""
        buckets = self._buckets(keys)
        unconstrained = self._unconstrained
        if not buckets:
            return [client for client, e in unconstrained.items()
                    if not e.rest or matches(e.filters, keys)]
        if len(buckets) == 1 and not unconstrained:
            return [client for client, e in buckets[0].items()
                    if not e.rest or matches(e.filters, keys)]
        # A client listing several accounts/assets/types can sit in several buckets.
        hits = {}
        for bucket in buckets:
            for client, e in bucket.items():
                if client not in hits and (not e.rest or matches(e.filters, keys)):
                    hits[client] = e.seq
        if not unconstrained:
            return sorted(hits, key=hits.__getitem__)
        # Unconstrained clients are disjoint from the buckets' and already in add order.
        merged = [(e.seq, client) for client, e in unconstrained.items()
                  if not e.rest or matches(e.filters, keys)]
        if not hits:
            return [client for _, client in merged]
        merged.extend((seq, client) for client, seq in hits.items())
        merged.sort(key=_first)   # seqs are unique: clients are never compared
        return [client for _, client in merged]


def _first(pair):
    return pair[0]
