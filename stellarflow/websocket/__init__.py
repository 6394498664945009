"""WebSocket streaming consumer: client filters, broadcaster and Autobahn protocol."""
