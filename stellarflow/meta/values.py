"""
XDR values as message text: accounts, muxed accounts, assets, amounts, memos, pool ids.

One rendering for every message built from ledgers, so a payment and a trade that name the same
account or asset name it the same way:

- an account is its ``G...`` strkey; a muxed account (CAP-27) is the ``G...`` of its key plus the
  ``M...`` strkey and its 64-bit id as a decimal string (JSON numbers are not exact beyond 2^53);
- an asset is ``(code, issuer)``: ``("XLM", None)`` for native, as in Horizon's payments and in
  L{stellarflow.events.tokens};
- an amount is an exact decimal string with up to 7 decimals (L{tokens.formatAmount});
- a memo is ``(memo_type, memo)``: ``text`` as the string (UTF-8, invalid bytes replaced), ``id``
  as a decimal string, ``hash`` and ``return`` as base64 of their 32 bytes (Horizon's renderings);
  no memo is C{None}.

Strkeys cost a checksum and base32 each, and the same accounts recur through a ledger: they are
cached.
"""

import base64
from functools import lru_cache

from stellar_sdk import StrKey

from stellarflow.events.tokens import formatAmount

_MUXED = 0x100  # CryptoKeyType.KEY_TYPE_MUXED_ED25519
_NATIVE = ("XLM", None)

#: Memo type number -> the ``memo_type`` of a message (Horizon's names).
MEMO_TYPES = {1: "text", 2: "id", 3: "hash", 4: "return"}


@lru_cache(maxsize=65536)
def _accountStrkey(raw):
    return StrKey.encode_ed25519_public_key(raw)


@lru_cache(maxsize=4096)
def _muxedStrkey(raw, muxedId):
    return StrKey.encode_med25519_public_key(raw + muxedId.to_bytes(8, "big"))


def accountId(account):
    """
    The ``G...`` strkey of an C{xdr.AccountID} (a C{PublicKey}).
    """
    return _accountStrkey(account.account_id.ed25519.uint256)


def rawAccount(key):
    """
    The ``G...`` strkey of a raw ed25519 key (an C{xdr.Uint256}, as in old XDR arms).
    """
    return _accountStrkey(key.uint256)


def muxedAccount(account):
    """
    C{(G address, M address or None, muxed id string or None)} of an C{xdr.MuxedAccount}.
    """
    if account.type.value == _MUXED:
        med = account.med25519
        key = med.ed25519.uint256
        muxedId = med.id.uint64
        return _accountStrkey(key), _muxedStrkey(key, muxedId), str(muxedId)
    return _accountStrkey(account.ed25519.uint256), None, None


def muxedBase(account):
    """
    The ``G...`` strkey behind an C{xdr.MuxedAccount} (its key without the muxed id).
    """
    if account.type.value == _MUXED:
        return _accountStrkey(account.med25519.ed25519.uint256)
    return _accountStrkey(account.ed25519.uint256)


def asset(value):
    """
    C{(code, issuer)} of an C{xdr.Asset}: ``("XLM", None)`` for native.
    """
    kind = value.type.value
    if kind == 0:
        return _NATIVE
    if kind == 1:
        alpha = value.alpha_num4
        code = alpha.asset_code.asset_code4
    else:
        alpha = value.alpha_num12
        code = alpha.asset_code.asset_code12
    return code.rstrip(b"\x00").decode("ascii", "replace"), accountId(alpha.issuer)


def amount(value):
    """
    An C{xdr.Int64} amount in stroops as the exact decimal string of its asset units.
    """
    return formatAmount(value.int64)


def poolId(value):
    """
    A liquidity pool id (C{xdr.PoolID}) as lowercase hex, as Horizon writes it.
    """
    return value.pool_id.hash.hex()


def memo(value):
    """
    C{(memo_type, memo)} of an C{xdr.Memo}, or C{None} for no memo (see the module docstring).
    """
    kind = value.type.value
    if kind == 0:
        return None
    if kind == 1:
        return "text", value.text.decode("utf-8", "replace")
    if kind == 2:
        return "id", str(value.id.uint64)
    if kind == 3:
        return "hash", base64.b64encode(value.hash.hash).decode("ascii")
    return "return", base64.b64encode(value.ret_hash.hash).decode("ascii")


def muxedAddress(account, muxedId):
    """
    The ``M...`` strkey of the ``G...`` C{account} with the 64-bit C{muxedId}.
    """
    return _muxedStrkey(StrKey.decode_ed25519_public_key(account), muxedId)
