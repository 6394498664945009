"""
Contract events: ScVal decoding, token recognition and the GetEventsRPC processor.
"""

from stellarflow.events.processor import GetEventsRPC, decode_event

__all__ = ["GetEventsRPC", "decode_event"]
