"""
Reading contract events from a Stellar RPC server: the JSON-RPC client (L{client}), its errors
(L{errors}), getEvents answers (L{pages}), and the polling source (L{source}) with its
configuration (L{config}) and failure policy (L{policy}).
"""

from stellarflow.rpc.client import StellarRPCClient
from stellarflow.rpc.errors import (
    BadResponse,
    HTTPError,
    InvalidParams,
    LedgerRangeError,
    ProcessingLimit,
    QueueFull,
    RPCClientError,
    RPCError,
    RPCTimeout,
    TransportError,
)
from stellarflow.rpc.pages import EventsPage

__all__ = [
    "BadResponse",
    "EventsPage",
    "HTTPError",
    "InvalidParams",
    "LedgerRangeError",
    "ProcessingLimit",
    "QueueFull",
    "RPCClientError",
    "RPCError",
    "RPCTimeout",
    "StellarRPCClient",
    "TransportError",
]
