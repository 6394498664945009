"""
ScVal -> plain JSON, from base64 XDR or from stellar-xdr-json (``xdrFormat: json``).

Both inputs give the same output, so consumers never see which format the RPC server used:

- addresses (G, C, M, B, L) as strkeys; symbols and strings as ``str`` (UTF-8, invalid bytes
  replaced); bool; void -> ``None``;
- u32/i32 as ``int``; u64/i64/u128/i128/u256/i256, timepoint and duration as decimal strings;
- bytes as lowercase hex; vec as a list (a missing vec or map -> ``None``);
- map as a dict when every key decodes to a distinct ``str``, else a list of
  ``{"key": k, "value": v}``;
- error -> ``{"error": "<type>", "code": n}``;
- the ledger-only kinds name themselves: ``{"contract_instance": {"executable": ...}}``,
  ``{"ledger_key": "contract_instance"}``, ``{"ledger_key": "nonce", "nonce": "<i64>"}``,
  ``{"executable_tag": "<str>"}``.

Every ``decode*`` function returns ``(kind, value)`` where ``kind`` is the stellar-xdr-json name
of the ScVal's type (``"symbol"``, ``"address"``, ``"i128"``...): token recognition needs the
type, which the plain value loses.  Decoding is the hot path (once per event, never per client),
hence the table dispatch and the strkey caches.
"""

import reprlib

from stellar_sdk import StrKey
from stellar_sdk.xdr import SCErrorCode, SCVal
from stellar_sdk.xdr import String as XdrString

_KINDS = (
    "bool",
    "void",
    "error",
    "u32",
    "i32",
    "u64",
    "i64",
    "timepoint",
    "duration",
    "u128",
    "i128",
    "u256",
    "i256",
    "bytes",
    "string",
    "symbol",
    "vec",
    "map",
    "address",
    "contract_instance",
    "ledger_key_contract_instance",
    "ledger_key_nonce",
    "executable_tag",
)

_CACHE_LIMIT = 65536


class DecodeError(ValueError):
    """
    A value is not a valid ScVal in the format it claims to be.
    """


def _cached(encode):
    """
    Wrap a StrKey encoder with a bounded cache: the same few accounts and contracts recur in
    nearly every page, and checksumming + base32 costs more than the rest of their decoding.
    """
    cache = {}

    def encodeCached(raw):
        try:
            return cache[raw]
        except KeyError:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            text = cache[raw] = encode(raw)
            return text

    return encodeCached


_accountStrkey = _cached(StrKey.encode_ed25519_public_key)
_contractStrkey = _cached(StrKey.encode_contract)
_muxedStrkey = _cached(StrKey.encode_med25519_public_key)


# --- base64 XDR, parsed by stellar_sdk --------------------------------------------------------


def _text(raw):
    return raw.decode("utf-8", "replace")


def _address(address):
    kind = address.type
    if kind == 0:
        return _accountStrkey(address.account_id.account_id.ed25519.uint256)
    if kind == 1:
        return _contractStrkey(address.contract_id.contract_id.hash)
    if kind == 2:
        muxed = address.muxed_account
        return _muxedStrkey(muxed.ed25519.uint256 + muxed.id.uint64.to_bytes(8, "big"))
    # Claimable balances and liquidity pools: rare, let the SDK render them.
    return address.to_json_dict()


def _map(entries, plain):
    keys = [plain(e.key) for e in entries]
    values = [plain(e.val) for e in entries]
    return _mapFrom(keys, values)


def _mapFrom(keys, values):
    if all(type(k) is str for k in keys):
        out = dict(zip(keys, values))
        if len(out) == len(keys):
            return out
    return [{"key": k, "value": v} for k, v in zip(keys, values)]


def _viaJson(sc):
    # The ledger-only and error kinds: render through stellar-xdr-json so both formats agree.
    return _plainJson(sc.to_json_dict())


_XDR = [None] * len(_KINDS)
_XDR[0] = lambda sc: sc.b
_XDR[1] = lambda sc: None
_XDR[2] = _viaJson
_XDR[3] = lambda sc: sc.u32.uint32
_XDR[4] = lambda sc: sc.i32.int32
_XDR[5] = lambda sc: str(sc.u64.uint64)
_XDR[6] = lambda sc: str(sc.i64.int64)
_XDR[7] = lambda sc: str(sc.timepoint.time_point.uint64)
_XDR[8] = lambda sc: str(sc.duration.duration.uint64)
_XDR[9] = lambda sc: str((sc.u128.hi.uint64 << 64) + sc.u128.lo.uint64)
_XDR[10] = lambda sc: str((sc.i128.hi.int64 << 64) + sc.i128.lo.uint64)
_XDR[11] = lambda sc: str(
    (sc.u256.hi_hi.uint64 << 192)
    + (sc.u256.hi_lo.uint64 << 128)
    + (sc.u256.lo_hi.uint64 << 64)
    + sc.u256.lo_lo.uint64
)
_XDR[12] = lambda sc: str(
    (sc.i256.hi_hi.int64 << 192)
    + (sc.i256.hi_lo.uint64 << 128)
    + (sc.i256.lo_hi.uint64 << 64)
    + sc.i256.lo_lo.uint64
)
_XDR[13] = lambda sc: sc.bytes.sc_bytes.hex()
_XDR[14] = lambda sc: _text(sc.str.sc_string)
_XDR[15] = lambda sc: _text(sc.sym.sc_symbol)
_XDR[16] = lambda sc: None if sc.vec is None else [_plainXdr(v) for v in sc.vec.sc_vec]
_XDR[17] = lambda sc: None if sc.map is None else _map(sc.map.sc_map, _plainXdr)
_XDR[18] = lambda sc: _address(sc.address)
_XDR[19] = _viaJson
_XDR[20] = _viaJson
_XDR[21] = _viaJson
_XDR[22] = _viaJson


def _plainXdr(sc):
    return _XDR[sc.type](sc)


def parseXdr(b64):
    """
    Parse one base64 ScVal with stellar_sdk; raise L{DecodeError} when it is not one.
    """
    if not isinstance(b64, str):
        raise DecodeError("expected a base64 string, got {}".format(type(b64).__name__))
    try:
        return SCVal.from_xdr(b64)
    except Exception as e:
        raise DecodeError("invalid ScVal XDR: {}".format(str(e) or type(e).__name__)) from None


def decodeScVal(sc):
    """
    Return C{(kind, plain value)} for a parsed L{SCVal}.
    """
    try:
        return _KINDS[sc.type], _XDR[sc.type](sc)
    except DecodeError:
        raise
    except Exception as e:
        raise DecodeError("cannot decode ScVal: {!r}".format(e)) from None


def decodeXdr(b64):
    """
    Return C{(kind, plain value)} for one base64 XDR ScVal.
    """
    return decodeScVal(parseXdr(b64))


_topicCache = {}
_IMMUTABLE = (str, int, bool, type(None))


def decodeTopicXdr(b64):
    """
    L{decodeXdr} with a bounded cache, for topics: the same few symbols, asset strings and
    accounts make up most topics, and parsing is most of the cost of an event.  Only values
    that cannot be mutated by a consumer (not vecs or maps) are shared between messages.
    """
    try:
        return _topicCache[b64]
    except (KeyError, TypeError):
        pass
    decoded = decodeXdr(b64)
    if type(decoded[1]) in _IMMUTABLE:
        if len(_topicCache) >= _CACHE_LIMIT:
            _topicCache.clear()
        _topicCache[b64] = decoded
    return decoded


def childKindsXdr(sc, value):
    """
    The kinds of a vec's items (a list) or of a dict-shaped map's values (a dict by key), else
    C{None}: enough type information to recognise token data shapes.
    """
    t = sc.type
    if t == 16 and sc.vec is not None:
        return [_KINDS[v.type] for v in sc.vec.sc_vec]
    if t == 17 and isinstance(value, dict):
        return {k: _KINDS[e.val.type] for k, e in zip(value, sc.map.sc_map)}
    return None


# --- stellar-xdr-json ---------------------------------------------------------------------------


def _unescape(text):
    # SEP-51 "escaped ASCII": printable ASCII is literal, everything else is \xNN and friends.
    if "\\" not in text:
        return text
    return _text(XdrString.from_json_dict(text))


def _int(text):
    # Wide integers travel as decimal strings; normalise them exactly as the XDR path prints.
    if type(text) is int:
        return str(text)
    if type(text) is not str or not text.isascii() or not text.lstrip("-").isdigit():
        raise DecodeError("invalid integer {!r}".format(text))
    return str(int(text))


def _bool(v):
    if type(v) is not bool:
        raise DecodeError("invalid bool {!r}".format(v))
    return v


def _small(v):
    if type(v) is not int:
        raise DecodeError("invalid 32-bit integer {!r}".format(v))
    return v


def _hex(text):
    return bytes.fromhex(text).hex()


def _addressJson(text):
    if not isinstance(text, str) or len(text) < 56 or text[0] not in "GCMBL":
        raise DecodeError("invalid address {!r}".format(text))
    return text


def _errorJson(error):
    ((kind, code),) = error.items()
    if not isinstance(code, int):
        code = SCErrorCode.from_json_dict(code).value
    return {"error": kind, "code": code}


def _instanceJson(instance):
    executable = instance.get("executable")
    if isinstance(executable, str):
        return {"contract_instance": {"executable": executable}}
    ((kind, detail),) = executable.items()
    out = {"executable": kind}
    if kind == "wasm":
        out["wasm_hash"] = _hex(detail)
    elif isinstance(detail, dict):
        out.update(
            {k: (_unescape(v) if isinstance(v, str) and k == "tag" else v) for k, v in detail.items()}
        )
    return {"contract_instance": out}


def _mapJson(entries):
    if entries is None:
        return None
    keys = []
    values = []
    for e in entries:
        keys.append(_plainJson(e["key"]))
        values.append(_plainJson(e["val"]))
    return _mapFrom(keys, values)


_JSON = {
    "bool": _bool,
    "error": _errorJson,
    "u32": _small,
    "i32": _small,
    "u64": _int,
    "i64": _int,
    "timepoint": _int,
    "duration": _int,
    "u128": _int,
    "i128": _int,
    "u256": _int,
    "i256": _int,
    "bytes": _hex,
    "string": _unescape,
    "symbol": _unescape,
    "vec": lambda v: None if v is None else [_plainJson(x) for x in v],
    "map": _mapJson,
    "address": _addressJson,
    "contract_instance": _instanceJson,
    "ledger_key_nonce": lambda v: {"ledger_key": "nonce", "nonce": _int(v["nonce"])},
    "executable_tag": lambda v: {"executable_tag": _unescape(v)},
}

_JSON_WORDS = {
    "void": None,
    "ledger_key_contract_instance": {"ledger_key": "contract_instance"},
}


def _kindJson(j):
    if type(j) is dict and len(j) == 1:
        for kind in j:
            if kind in _JSON:
                return kind
    elif type(j) is str and j in _JSON_WORDS:
        return j
    raise DecodeError("not an xdr-json ScVal: {}".format(_short(j)))


def _plainJson(j):
    kind = _kindJson(j)
    if type(j) is str:
        words = _JSON_WORDS[j]
        return dict(words) if words is not None else None
    return _JSON[kind](j[kind])


_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = 60
_repr.maxother = 60


def _short(j):
    return _repr.repr(j)


def decodeJson(j):
    """
    Return C{(kind, plain value)} for one stellar-xdr-json ScVal (``{"i128": "5"}``, ``"void"``).
    """
    try:
        return _kindJson(j), _plainJson(j)
    except DecodeError:
        raise
    except Exception as e:
        raise DecodeError("cannot decode xdr-json ScVal {}: {!r}".format(_short(j), e)) from None


def childKindsJson(j, value):
    """
    Like L{childKindsXdr}, for a stellar-xdr-json ScVal.
    """
    if type(j) is not dict:
        return None
    if "vec" in j and j["vec"] is not None:
        return [_kindJson(x) for x in j["vec"]]
    if "map" in j and isinstance(value, dict):
        return {k: _kindJson(e["val"]) for k, e in zip(value, j["map"])}
    return None
