"""
Contract events: ScVal decoding, token recognition and the GetEventsRPC processor.
"""

from stellarflow.events.processor import GetEventsRPC, decodeEvent

__all__ = ["GetEventsRPC", "decodeEvent"]
