"""
Fan-out over Redis Streams: C{SaveToRedis} (the ingest node appends every message to a stream),
C{RedisStreamSource} (edge nodes follow it) and C{RedisHistory} (edges replay it to WebSocket
clients resuming from another edge).  See docs/scaling.md.
"""
