from twisted.application.service import ServiceMaker

stellarflow = ServiceMaker(
    "stellarflow",
    "stellarflow.tap",
    "Stream Stellar contract events from Stellar RPC to WebSocket clients and PostgreSQL.",
    "stellarflow",
)
