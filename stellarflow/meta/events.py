"""
The contract events of a ledger, as getEvents returns them and L{GetEventsRPC} decodes them.

Which events, and their ids, follow Stellar RPC's ingestion (``db/event.go``), so that a
``contract_event`` message built here equals the one the GetEventsRPC processor makes from the
same event fetched with getEvents (base64 XDR), field for field:

- operation events: transaction meta v3 has them only for Soroban transactions, in
  ``sorobanMeta.events``, all counted as operation 0's; meta v4 (CAP-67) has each operation's
  ``events``, classic operations' ``transfer``/``mint``/``burn``... included.  Their id is
  C{eventId(ledger, transaction index, operation index from 0, event index in the operation)},
  and ``operationIndex``/``transactionIndex`` are those two numbers;
- transaction events of meta v4 (fees, refunds), by stage: before all transactions
  C{eventId(ledger, 0, 0, n)} with C{n} counting through the ledger; after their transaction
  C{eventId(ledger, tx, OP_MASK, n)} counting through the transaction; after all transactions
  C{eventId(ledger, TX_MASK, 0, n)} counting through the ledger;
- diagnostic events are never returned (getEvents does not store them); meta v0-v2 have no
  events;
- events of failed transactions are kept, with ``inSuccessfulContractCall`` false (a failed
  transaction still pays its fee, and says so in a ``fee`` event).
"""

from stellar_sdk import StrKey

from stellarflow import positions
from stellarflow.events.processor import GetEventsRPC

#: ContractEventType -> getEvents' ``type``.
_EVENT_TYPES = {0: "system", 1: "contract", 2: "diagnostic"}
#: TransactionEventStage values.
BEFORE_ALL_TXS, AFTER_TX, AFTER_ALL_TXS = 0, 1, 2


def operationEvents(meta):
    """
    The C{xdr.ContractEvent}s of each operation of a C{TransactionMeta}: a list per operation
    (shorter than the operations, or empty, when the meta has none for the rest).
    """
    v = meta.v
    if v == 3:
        soroban = meta.v3.soroban_meta
        return [soroban.events] if soroban is not None and soroban.events else []
    if v == 4:
        return [op.events for op in meta.v4.operations]
    return []


def transactionEvents(meta):
    """
    The C{xdr.TransactionEvent}s of a C{TransactionMeta} (v4 only; C{[]} before).
    """
    return meta.v4.events if meta.v == 4 else []


def rawEvent(event, eventId, ledger, closedAt, txHash, txIndex, opIndex, successful):
    """
    The getEvents event object (base64 XDR format) of an C{xdr.ContractEvent}.
    """
    body = event.body.v0
    raw = {
        "type": _EVENT_TYPES.get(event.type.value, str(event.type.value)),
        "ledger": ledger,
        "ledgerClosedAt": closedAt,
        "id": eventId,
        "operationIndex": opIndex,
        "transactionIndex": txIndex,
        "txHash": txHash,
        "inSuccessfulContractCall": successful,
        "topic": [topic.to_xdr() for topic in body.topics],
        "value": body.data.to_xdr(),
    }
    if event.contract_id is not None:
        raw["contractId"] = StrKey.encode_contract(event.contract_id.contract_id.hash)
    return raw


class LedgerEvents:
    """
    Numbers the events of one ledger as Stellar RPC does (their getEvents objects, with ids) and
    decodes them as L{GetEventsRPC} does.

    @param ledger: the ledger sequence; C{closedAt} its ``ledgerClosedAt`` text.
    @param passphrase: the network whose Stellar Asset Contracts are the real ones.
    """

    def __init__(self, ledger, closedAt, passphrase):
        self.ledger = ledger
        self.closedAt = closedAt
        self._processor = GetEventsRPC(passphrase)
        self._beforeAll = 0
        self._afterAll = 0

    def decode(self, raws):
        """
        The contract event messages of getEvents objects C{raws}, in order.
        """
        return self._processor.process(raws) if raws else []

    def operation(self, tx, opIndex, events):
        """
        The raw objects of operation C{opIndex}'s C{events} in transaction C{tx}.
        """
        ledger = self.ledger
        return [
            rawEvent(e, positions.eventId(ledger, tx.index, opIndex, i), ledger, self.closedAt, tx.hash,
                     tx.index, opIndex, tx.successful)
            for i, e in enumerate(events)
        ]

    def transaction(self, tx, events):
        """
        C{(before all, after this transaction, after all)}: the raw objects of C{tx}'s
        transaction events by stage, numbered as Stellar RPC numbers them.
        """
        before, afterTx, afterAll = [], [], []
        for item in events:
            stage = item.stage.value
            if stage == BEFORE_ALL_TXS:
                txIndex, opIndex, index = 0, 0, self._beforeAll
                self._beforeAll += 1
                bucket = before
            elif stage == AFTER_TX:
                txIndex, opIndex, index = tx.index, positions.OP_MASK, len(afterTx)
                bucket = afterTx
            elif stage == AFTER_ALL_TXS:
                txIndex, opIndex, index = positions.TX_MASK, 0, self._afterAll
                self._afterAll += 1
                bucket = afterAll
            else:
                raise ValueError("unknown transaction event stage {}".format(stage))
            bucket.append(rawEvent(item.event, positions.eventId(self.ledger, txIndex, opIndex, index), self.ledger,
                                   self.closedAt, tx.hash, txIndex, opIndex, tx.successful))
        return before, afterTx, afterAll

