"""
The messages a C{LedgerCloseMeta} says: payments, trades and contract events, in chain order.

L{ledgerMessages} is pure and synchronous (no reactor, no I/O): it runs where ledgers are
decoded, in worker processes.

B{Common fields.}  A payment or trade message starts with L{OPERATION_FIELDS}: ``type``
(``payment``/``trade``), ``id``, ``ledger``, ``ledger_closed_at`` (RFC 3339 UTC, ``...Z``, as
getEvents' ``ledgerClosedAt``), ``transaction_hash`` (a fee bump's outer hash, the one its result
carries), ``transaction_index`` (apply order, from 1), ``operation_index`` (from 0) and
``operation_type`` (Horizon's name: L{OPERATION_TYPES}); then ``memo_type`` and ``memo`` when the
transaction has a memo: ``text`` as its string (UTF-8, invalid bytes replaced by U+FFFD), ``id``
as a decimal string, ``hash`` and ``return`` as base64 of the 32 bytes, as Horizon renders them.
A ``contract_event`` message is exactly what L{GetEventsRPC} makes of the same event fetched
with getEvents (L{stellarflow.meta.events}), so it has getEvents' envelope fields and no
``operation_type`` or memo.

B{Ids.}  Every id is a getEvents id, C{positions.eventId(ledger, transaction, operation,
index)}: the TOID of the operation (transaction in apply order from 1, operation from 0, as
Stellar RPC builds event ids; Horizon's operation ids count operations from 1, so they are one
more than ours) and an index within the operation:

- contract events keep getEvents' own index, the event's position among the operation's events
  (small numbers, below 2^31), so their ids equal getEvents' ids;
- trades take C{TRADE_INDEX + order}, C{order} being the claim atom's position in the result;
- payments take C{PAYMENT_INDEX + k}: C{k} is 0 for a classic payment, and for a Stellar Asset
  Contract payment the index of its event among the operation's events (so the payment points
  at its ``contract_event``).

So within one operation the contract events come first, then the trades in the order the offers
were crossed, then the payment(s); no two messages of a ledger share an id, and ids sort (as
strings, like getEvents ids) in ledger, apply and operation order.  The list is in that order:
transaction events before all transactions (fees), then each transaction's operations, each
transaction's after-transaction events, and events after all transactions (refunds).

B{What each message involves} (the keys a WebSocket filter matches on):

- payment: accounts ``from`` and ``to`` (``G...``, or ``C...`` for SAC payments; either may be
  C{None} for a SAC ``mint``/``burn``/``clawback``) and their ``from_muxed``/``to_muxed`` ``M...``
  forms when present; assets ``(asset_code, asset_issuer)`` and, for path payments,
  ``(source_asset_code, source_asset_issuer)``; ``amount`` (the delivered amount, in the
  destination asset; C{None} for an ``account_merge`` whose result lacks the balance) for
  ``min_amount``; ``source_amount`` is what was sent, in the source asset;
- trade: accounts ``seller`` (C{None} for a pool) and ``buyer``, and the pool
  ``liquidity_pool_id``; assets ``(sold_asset_code, sold_asset_issuer)`` and
  ``(bought_asset_code, bought_asset_issuer)``; amounts per side: ``sold_amount`` is in the sold
  asset, ``bought_amount`` in the bought asset, so a ``min_amount`` on an asset compares with the
  amount of that asset's side;
- contract_event: as for getEvents messages (``contract_id``, topics, and the token fields
  ``from``/``to``/``account_ids``, ``asset_code``/``asset_issuer``, ``amount``).

Native XLM is ``asset_code`` ``"XLM"`` with ``asset_issuer`` C{None} everywhere.  Amounts are
exact decimal strings (L{stellarflow.events.tokens.formatAmount}).
"""

from stellarflow import positions
from stellarflow.message import CONTRACT_EVENT, PAYMENT, TRADE
from stellarflow.meta import values
from stellarflow.meta.events import LedgerEvents, operationEvents, transactionEvents
from stellarflow.meta.payments import INVOKE_HOST_FUNCTION, PAYMENT_OPERATIONS, classicPayment, sacPayment
from stellarflow.meta.trades import TRADE_OPERATIONS, operationTrades
from stellarflow.meta.transactions import (
    closeTime,
    ledgerParts,
    ledgerTransactions,
    operationChanges,
    rfc3339,
)

#: Every message type L{ledgerMessages} can emit, the default of its C{emit}.
MESSAGE_TYPES = (PAYMENT, TRADE, CONTRACT_EVENT)

#: The index within an operation of its first trade, and of its first payment (see Ids above).
TRADE_INDEX = 1 << 31
PAYMENT_INDEX = 3 << 30

#: OperationType value -> Horizon's name of the operation type.
OPERATION_TYPES = {
    0: "create_account",
    1: "payment",
    2: "path_payment_strict_receive",
    3: "manage_sell_offer",
    4: "create_passive_sell_offer",
    5: "set_options",
    6: "change_trust",
    7: "allow_trust",
    8: "account_merge",
    9: "inflation",
    10: "manage_data",
    11: "bump_sequence",
    12: "manage_buy_offer",
    13: "path_payment_strict_send",
    14: "create_claimable_balance",
    15: "claim_claimable_balance",
    16: "begin_sponsoring_future_reserves",
    17: "end_sponsoring_future_reserves",
    18: "revoke_sponsorship",
    19: "clawback",
    20: "clawback_claimable_balance",
    21: "set_trust_line_flags",
    22: "liquidity_pool_deposit",
    23: "liquidity_pool_withdraw",
    24: "invoke_host_function",
    25: "extend_footprint_ttl",
    26: "restore_footprint",
}


def _wanted(emit):
    wanted = frozenset(emit)
    unknown = wanted - frozenset(MESSAGE_TYPES)
    if unknown or isinstance(emit, str):
        raise ValueError("emit must be a collection of {}, got {!r}".format(", ".join(MESSAGE_TYPES), emit))
    return wanted


def ledgerMessages(lcm, passphrase, emit=MESSAGE_TYPES):
    """
    The payment, trade and contract event messages of a ledger, in chain order (see the module
    docstring for their fields, ids and order).

    @param lcm: a decoded C{xdr.LedgerCloseMeta}, v0, v1 or v2 (transaction meta v0 to v4).
    @param passphrase: the ledger's network passphrase: it pairs envelopes with results and
        decides which Stellar Asset Contracts are real.
    @param emit: the message types wanted, among L{MESSAGE_TYPES}.
    @return: a list of message dicts.
    @raise LedgerMismatch: a result has no envelope (most likely the wrong passphrase).
    @raise ValueError: C{emit} names an unknown type, or the ledger has an unsupported version.
    """
    wanted = _wanted(emit)
    wantEvents = CONTRACT_EVENT in wanted
    wantPayments = PAYMENT in wanted
    wantTrades = TRADE in wanted

    header = ledgerParts(lcm)[0]
    ledger = header.header.ledger_seq.uint32
    closedAt = rfc3339(closeTime(header))
    events = LedgerEvents(ledger, closedAt, passphrase)
    before, body, after = [], [], []

    for tx in ledgerTransactions(lcm, passphrase):
        successful = tx.successful
        if not (wantEvents or successful):
            continue
        meta = tx.meta
        if wantEvents:
            beforeAll, afterTx, afterAll = events.transaction(tx, transactionEvents(meta))
            before.extend(events.decode(beforeAll))
            after.extend(events.decode(afterAll))
        byOperation = operationEvents(meta) if wantEvents or (wantPayments and successful) else []
        memo = values.memo(tx.memo) if successful else None
        envelope = {
            "type": None,
            "id": None,
            "ledger": ledger,
            "ledger_closed_at": closedAt,
            "transaction_hash": tx.hash,
            "transaction_index": tx.index,
            "operation_index": None,
            "operation_type": None,
        }
        if memo is not None:
            envelope["memo_type"], envelope["memo"] = memo

        for opIndex, op in enumerate(tx.operations):
            kind = op.body.type.value
            opEvents = byOperation[opIndex] if opIndex < len(byOperation) else ()
            decoded = ()
            if opEvents and (wantEvents or (successful and wantPayments and kind == INVOKE_HOST_FUNCTION)):
                decoded = events.decode(events.operation(tx, opIndex, opEvents))
                if wantEvents:
                    body.extend(decoded)
            if not successful:
                continue
            found = []
            if wantTrades and kind in TRADE_OPERATIONS:
                buyer = values.muxedBase(op.source_account or tx.source)
                for order, fields in operationTrades(tx.results[opIndex], buyer, operationChanges(meta, opIndex)):
                    found.append((TRADE, TRADE_INDEX + order, fields))
            if wantPayments and kind in PAYMENT_OPERATIONS:
                if kind == INVOKE_HOST_FUNCTION:
                    for eventIndex, (message, event) in enumerate(zip(decoded, opEvents)):
                        fields = sacPayment(message, event)
                        if fields is not None:
                            found.append((PAYMENT, PAYMENT_INDEX + eventIndex, fields))
                else:
                    fields = classicPayment(kind, op, op.source_account or tx.source, tx.results[opIndex])
                    found.append((PAYMENT, PAYMENT_INDEX, fields))
            for messageType, index, fields in found:
                message = envelope.copy()
                message["type"] = messageType
                message["id"] = positions.eventId(ledger, tx.index, opIndex, index)
                message["operation_index"] = opIndex
                message["operation_type"] = OPERATION_TYPES[kind]
                message.update(fields)
                body.append(message)

        if wantEvents:
            body.extend(events.decode(afterTx))

    return before + body + after
