"""
What a ledger says: payments, trades and contract events derived from whole ledgers
(C{LedgerCloseMeta}), as Horizon and getEvents would report them.

L{ledgerMessages} is the entry point (L{stellarflow.meta.messages} documents the messages);
L{stellarflow.meta.transactions} pairs a ledger's envelopes with its results,
L{stellarflow.meta.payments}, L{stellarflow.meta.trades} and L{stellarflow.meta.events} read
one operation each, L{stellarflow.meta.values} renders XDR values.
"""

from stellarflow.meta.messages import MESSAGE_TYPES, ledgerMessages
from stellarflow.meta.transactions import LedgerMismatch

__all__ = ["MESSAGE_TYPES", "LedgerMismatch", "ledgerMessages"]
