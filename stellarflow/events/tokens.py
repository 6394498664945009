"""
Recognise token events: the Stellar Asset Contract (CAP-46-6, CAP-67) and SEP-41 tokens.

A token event is recognised from its decoded topics and data *and their ScVal types*:

=============== ========================================== ===================================
event           topics (asset last, when present)          data
=============== ========================================== ===================================
transfer        from, to [, asset]                         i128 | map {amount, to_muxed_id}
mint            to [, asset]; before P23 admin, to, asset  i128 | map {amount, to_muxed_id}
burn            from [, asset]                             i128
clawback        from [, asset]; before P23 admin first     i128
approve         from, spender [, asset]                    vec [i128 amount, u32 live_until]
set_admin       admin [, asset]                            Address (the new admin)
set_authorized  id [, asset]; before P23 admin first       Bool
fee             from (native SAC only, no asset topic)     i128: charge (> 0) or refund (< 0)
=============== ========================================== ===================================

The asset topic is a String: ``native`` or SEP-11 ``CODE:ISSUER``.  Any contract can emit those
topics, so ``asset_verified`` says whether the emitting contract is the asset's real SAC on the
configured network.  Events without an asset topic (custom SEP-41 tokens) get ``asset_code``
C{None} and ``asset_verified`` C{None}; ``fee`` is always native XLM.

``from``/``to`` are the topics the standard names so (``to`` of mint, ``from`` of burn...);
admins, spenders, authorised ids and new admins appear only in ``account_ids``.  Amounts use 7
decimals: SAC amounts always do, and custom tokens' decimals are not in their events (7 is the
usual choice; ``amount_raw`` is always exact).
"""

from functools import lru_cache

from stellar_sdk import Asset

from stellarflow.message import TOKEN_FIELDS

DECIMALS = 7

# The names of TOKEN_FIELDS (stellarflow.message defines them and their order), written in
# that order.
(
    _EVENT_TYPE,
    _FROM,
    _TO,
    _ACCOUNT_IDS,
    _ASSET_CODE,
    _ASSET_ISSUER,
    _AMOUNT,
    _AMOUNT_RAW,
    _ASSET_VERIFIED,
    _TO_MUXED_ID,
) = TOKEN_FIELDS

# event name -> {number of address topics: role of each}
_ROLES = {
    "transfer": {2: ("from", "to")},
    "mint": {1: ("to",), 2: ("admin", "to")},
    "burn": {1: ("from",)},
    "clawback": {1: ("from",), 2: ("admin", "from")},
    "approve": {2: ("from", "spender")},
    "set_admin": {1: ("admin",)},
    "set_authorized": {1: ("id",), 2: ("admin", "id")},
    "fee": {1: ("from",)},
}

EVENT_TYPES = frozenset(_ROLES)

_MUXED_ID_KINDS = frozenset(("u64", "string", "bytes", "void"))


def formatAmount(raw, decimals=DECIMALS):
    """
    An integer amount in base units as an exact decimal string in asset units: no exponent, no
    trailing zeros, ``"0"`` for zero (``3000000000 -> "300"``, ``-146922 -> "-0.0146922"``).
    """
    sign = "-" if raw < 0 else ""
    whole, fraction = divmod(abs(raw), 10**decimals)
    if not fraction:
        return sign + str(whole) if whole else "0"
    return "{}{}.{}".format(sign, whole, str(fraction).rjust(decimals, "0").rstrip("0"))


def parseAsset(text):
    """
    Split a SEP-11 asset string: ``native`` -> ``("XLM", None)``, ``CODE:ISSUER`` -> the two
    parts; C{None} when C{text} has neither shape.
    """
    if text == "native":
        return "XLM", None
    code, sep, issuer = text.partition(":")
    if not sep or not code or not issuer or ":" in issuer:
        return None
    return code, issuer


@lru_cache(maxsize=4096)
def sacContractId(code, issuer, passphrase):
    """
    The contract id of the Stellar Asset Contract for an asset (C{issuer} None: native XLM) on
    the network with C{passphrase}; C{None} when the code or issuer is not valid.  Cached: it
    costs a SHA-256 over an XDR preimage plus strkey encoding, ~35 us.
    """
    try:
        asset = Asset.native() if issuer is None else Asset(code, issuer)
        return asset.contract_id(passphrase)
    except Exception:
        return None


def _amountOf(kind, value):
    return int(value) if kind == "i128" else None


def _transferData(kind, data, children):
    """
    C{(raw amount, to_muxed_id)} for i128 or CAP-67 map data, or C{None}.
    """
    if kind == "i128":
        return int(data), None
    if kind == "map" and children is not None and children.get("amount") == "i128":
        extra = set(children) - {"amount", "to_muxed_id"}
        muxedKind = children.get("to_muxed_id", "void")
        if extra or muxedKind not in _MUXED_ID_KINDS:
            return None
        return int(data["amount"]), data.get("to_muxed_id")
    return None


def recognise(contractId, topicKinds, topics, dataKind, data, dataChildren, passphrase):
    """
    Return the token fields of the event message (L{stellarflow.message.TOKEN_FIELDS}, in that
    order), or C{None} when it is not a token event.

    @param topicKinds: the ScVal kind of each topic (``"symbol"``, ``"address"``...).
    @param topics: the decoded topics.
    @param dataKind: the ScVal kind of the data; C{data} its decoded value.
    @param dataChildren: kinds of the data's vec items / map values (see
        L{stellarflow.events.decode.childKindsXdr}), or C{None}.
    @param passphrase: the network passphrase to verify the asset against.
    """
    count = len(topics)
    if count < 2 or topicKinds[0] != "symbol":
        return None
    name = topics[0]
    roles = _ROLES.get(name)
    if roles is None:
        return None

    asset = None
    last = count
    if topicKinds[-1] == "string":
        asset = parseAsset(topics[-1])
        if asset is None or name == "fee":
            return None
        last = count - 1
    for kind in topicKinds[1:last]:
        if kind != "address":
            return None
    names = roles.get(last - 1)
    if names is None:
        return None
    parties = dict(zip(names, topics[1:last]))

    raw = None
    muxedId = None
    extraAccount = None
    if name in ("transfer", "mint"):
        found = _transferData(dataKind, data, dataChildren)
        if found is None:
            return None
        raw, muxedId = found
    elif name in ("burn", "clawback", "fee"):
        raw = _amountOf(dataKind, data)
        if raw is None:
            return None
    elif name == "approve":
        if dataKind != "vec" or dataChildren != ["i128", "u32"]:
            return None
        raw = int(data[0])
    elif name == "set_admin":
        if dataKind != "address":
            return None
        extraAccount = data
    elif dataKind != "bool":  # set_authorized
        return None

    accounts = []
    for account in topics[1:last]:
        if account not in accounts:
            accounts.append(account)
    if extraAccount is not None and extraAccount not in accounts:
        accounts.append(extraAccount)

    if name == "fee":
        asset = ("XLM", None)
    if asset is None:
        code = issuer = verified = None
    else:
        code, issuer = asset
        verified = contractId is not None and contractId == sacContractId(code, issuer, passphrase)

    return {
        _EVENT_TYPE: name,
        _FROM: parties.get("from"),
        _TO: parties.get("to"),
        _ACCOUNT_IDS: accounts,
        _ASSET_CODE: code,
        _ASSET_ISSUER: issuer,
        _AMOUNT: None if raw is None else formatAmount(raw),
        _AMOUNT_RAW: None if raw is None else str(raw),
        _ASSET_VERIFIED: verified,
        _TO_MUXED_ID: None if muxedId is None else str(muxedId),
    }
