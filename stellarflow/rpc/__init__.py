"""
Reading contract events from a Stellar RPC server: the JSON-RPC client (L{client}) and the
polling source (L{source}).
"""

from stellarflow.rpc.client import (
    BadResponse,
    EventsPage,
    HTTPError,
    InvalidParams,
    LedgerRangeError,
    ProcessingLimit,
    QueueFull,
    RPCClientError,
    RPCError,
    RPCTimeout,
    StellarRPCClient,
    TransportError,
)

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
