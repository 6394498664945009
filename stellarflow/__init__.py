"""
stellarflow: stream Stellar contract events from Stellar RPC to WebSocket clients and PostgreSQL.
"""

__version__ = "0.1.0"
