"""
Helpers for the filter tests: decoded event messages, shortcuts to parse and match filters,
and the pools of filter values and event shapes the property tests draw from.
"""

from hypothesis import strategies as st
from stellar_sdk import Keypair, MuxedAccount, StrKey

from stellarflow.websocket.filters import FilterError, parseFilters
from stellarflow.websocket.matching import eventKeys, matches


def account(i):
    return Keypair.from_raw_ed25519_seed(bytes([i + 1]) * 32).public_key


G1, G2, G3, G4 = (account(i) for i in range(4))
M1 = MuxedAccount(G1, 7).account_muxed
M1B = MuxedAccount(G1, 8).account_muxed
C1 = StrKey.encode_contract(bytes([9]) * 32)
C2 = StrKey.encode_contract(bytes([10]) * 32)
B1 = StrKey.encode_claimable_balance(bytes(1) + bytes([3]) * 32)
L1 = StrKey.encode_liquidity_pool(bytes([4]) * 32)
USDC_ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
USDC_SAC = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
NATIVE_SAC = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA"


def tokenMessage(eventType="transfer", frm=G1, to=G2, code="USDC", issuer=USDC_ISSUER,
                 amount="150", verified=True, contract=USDC_SAC, accountIds=None):
    """
    A decoded token event message as the GetEventsRPC processor emits it.
    """
    if accountIds is None:
        accountIds = [a for a in (frm, to) if a]
    return {
        "type": "contract_event",
        "id": "0016010972359577600-0000000001",
        "ledger": 3727845,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "a5c9" * 16,
        "contract_id": contract,
        "operation_index": 0,
        "transaction_index": 5,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": [eventType],
        "data": amount,
        "event_type": eventType,
        "from": frm,
        "to": to,
        "account_ids": accountIds,
        "asset_code": code,
        "asset_issuer": issuer,
        "amount": amount,
        "amount_raw": None,
        "asset_verified": verified if code is not None else None,
    }


def plainMessage(contract=C1):
    """
    A non-token contract event (no token fields).
    """
    return {
        "type": "contract_event", "id": "0000000000000000001-0000000000", "ledger": 1,
        "ledger_closed_at": None, "transaction_hash": None, "contract_id": contract,
        "operation_index": None, "transaction_index": None,
        "in_successful_contract_call": None, "event_kind": "contract",
        "topics": ["hello"], "data": None,
    }


def paymentMessage(frm=G1, to=G2, code="USDC", issuer=USDC_ISSUER, amount="150",
                   sourceCode=None, sourceIssuer=None, sourceAmount=None, operation="payment",
                   contract=None, eventType=None):
    """
    A payment message as the GetLedgersRPC processor emits it (L{stellarflow.meta.messages}):
    a path payment when C{sourceCode} is given, a SAC payment when C{contract} is.
    """
    message = {
        "type": "payment", "id": "0228973296484417536-3221225472", "ledger": 53312000,
        "ledger_closed_at": "2024-09-02T10:50:19Z", "transaction_hash": "d315" * 16,
        "transaction_index": 16, "operation_index": 0, "operation_type": operation,
        "from": frm, "to": to, "asset_code": code, "asset_issuer": issuer, "amount": amount,
    }
    if sourceCode is not None:
        message.update(source_asset_code=sourceCode, source_asset_issuer=sourceIssuer,
                       source_amount=sourceAmount)
    if contract is not None:
        message.update(contract_id=contract, event_type=eventType or "transfer")
    return message


def tradeMessage(seller=G1, buyer=G2, pool=None, soldCode="USDC", soldIssuer=USDC_ISSUER,
                 soldAmount="0.3941098", boughtCode="XLM", boughtIssuer=None,
                 boughtAmount="4.2884589"):
    """
    A trade message as the GetLedgersRPC processor emits it: an order-book trade, or a pool's
    when C{pool} (hex) is given.
    """
    return {
        "type": "trade", "id": "0228973296484397056-2147483648", "ledger": 53312000,
        "ledger_closed_at": "2024-09-02T10:50:19Z", "transaction_hash": "6cca" * 16,
        "transaction_index": 11, "operation_index": 0,
        "operation_type": "path_payment_strict_receive",
        "trade_type": "liquidity_pool" if pool else "orderbook",
        "seller": None if pool else seller, "liquidity_pool_id": pool,
        "offer_id": None if pool else "1614872181", "buyer": buyer, "buyer_offer_id": None,
        "sold_asset_code": soldCode, "sold_asset_issuer": soldIssuer, "sold_amount": soldAmount,
        "bought_asset_code": boughtCode, "bought_asset_issuer": boughtIssuer,
        "bought_amount": boughtAmount, "price": {"n": "108813809", "d": "10000000"},
    }


def parseError(obj):
    """
    The L{FilterError} that parsing C{obj} raises.
    """
    try:
        parseFilters(obj)
    except FilterError as e:
        return e
    raise AssertionError("no FilterError for %r" % (obj,))


def passes(filtersObject, message, producedTypes=None):
    """
    Whether C{message} passes the filters C{filtersObject} (as a client sends them) on a
    pipeline producing C{producedTypes} (C{None}: not known, as getEvents).
    """
    return matches(parseFilters(filtersObject).forPipeline(producedTypes), eventKeys(message))


#: The message types of a whole-ledger pipeline (GetLedgersRPC's default C{emit}).
LEDGER_TYPES = frozenset(["payment", "trade", "contract_event"])


# -- pools for property tests ------------------------------------------------------------

POOL_HEX = "04" * 32  # L1's pool id, as a trade message carries it
ACCOUNT_POOL = [G1, G2, G3, M1, M1B, C1, USDC_SAC, L1]
ASSET_FILTER_POOL = ["USDC", "USDC:" + USDC_ISSUER, "USDC:" + G3, "XLM", "native",
                     "XLM:" + G3, "EURC"]
ASSET_EVENT_POOL = [("USDC", USDC_ISSUER), ("USDC", G3), ("XLM", None), ("XLM", G3),
                    ("EURC", G2), (None, None)]
TYPE_POOL = ["contract_event", "transfer", "payment", "mint", "burn", "fee", "trade", "Trade"]
AMOUNT_POOL = ["", "0", "1", "100", "100.5"]
EVENT_AMOUNTS = [None, "-1", "0", "1", "99.9999999", "100", "100.5", "1000"]

#: Message types of the pipelines a filter is used on (C{None}: getEvents, not declared).
PRODUCED_POOL = [None, frozenset(["contract_event"]), LEDGER_TYPES]

#: A client's C{filters} value: any subset of the four fields, each from its pool.
filterObjects = st.fixed_dictionaries({}, optional={
    "types": st.lists(st.sampled_from(TYPE_POOL), max_size=3),
    "account_ids": st.lists(st.sampled_from(ACCOUNT_POOL), max_size=3),
    "asset_codes": st.lists(st.sampled_from(ASSET_FILTER_POOL), max_size=3),
    "min_amount": st.sampled_from(AMOUNT_POOL),
})


@st.composite
def messages(draw):
    """
    An event message: a plain contract event or a token event, its parties, asset, amount
    and verification drawn from the pools.
    """
    kind = draw(st.sampled_from(["plain", "transfer", "mint", "burn", "fee", "approve", "payment",
                                 "trade"]))
    if kind == "plain":
        return plainMessage(contract=draw(st.sampled_from([C1, C2, None])))
    if kind == "payment":
        code, issuer = draw(st.sampled_from(ASSET_EVENT_POOL[:-1]))
        path = draw(st.booleans())
        sourceCode, sourceIssuer = draw(st.sampled_from(ASSET_EVENT_POOL[:-1])) if path else (None, None)
        return paymentMessage(
            frm=draw(st.sampled_from(ACCOUNT_POOL[:6])), to=draw(st.sampled_from(ACCOUNT_POOL[:6])),
            code=code, issuer=issuer, amount=draw(st.sampled_from(EVENT_AMOUNTS)),
            sourceCode=sourceCode, sourceIssuer=sourceIssuer,
            sourceAmount=draw(st.sampled_from(EVENT_AMOUNTS)) if path else None,
            operation="path_payment_strict_send" if path else "payment",
            contract=draw(st.sampled_from([None, None, USDC_SAC])))
    if kind == "trade":
        soldCode, soldIssuer = draw(st.sampled_from(ASSET_EVENT_POOL[:-1]))
        boughtCode, boughtIssuer = draw(st.sampled_from(ASSET_EVENT_POOL[:-1]))
        return tradeMessage(
            seller=draw(st.sampled_from(ACCOUNT_POOL[:3])), buyer=draw(st.sampled_from(ACCOUNT_POOL[:5])),
            pool=draw(st.sampled_from([None, None, POOL_HEX, "ab" * 32])),
            soldCode=soldCode, soldIssuer=soldIssuer, soldAmount=draw(st.sampled_from(EVENT_AMOUNTS)),
            boughtCode=boughtCode, boughtIssuer=boughtIssuer,
            boughtAmount=draw(st.sampled_from(EVENT_AMOUNTS)))
    code, issuer = draw(st.sampled_from(ASSET_EVENT_POOL))
    frm = draw(st.sampled_from(ACCOUNT_POOL[:5] + [None]))
    to = draw(st.sampled_from(ACCOUNT_POOL[:5] + [None]))
    extra = draw(st.lists(st.sampled_from(ACCOUNT_POOL), max_size=2))
    return tokenMessage(
        kind, frm=frm, to=to, code=code, issuer=issuer,
        amount=draw(st.sampled_from(EVENT_AMOUNTS)),
        verified=draw(st.sampled_from([True, True, False])),
        contract=draw(st.sampled_from([C1, C2, USDC_SAC])),
        accountIds=list(dict.fromkeys([a for a in (frm, to) if a] + extra)))
