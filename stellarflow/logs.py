"""
Log observers for twistd's ``--logger`` option.

``twistd --logger=stellarflow.logs.json -n stellarflow -c FILE`` writes one JSON object per line
to standard output (no record separator), for log shippers::

    {"time": "2026-11-25T18:00:00.123456Z", "level": "info", "namespace": "stellarflow.pipeline.Pipeline",
     "message": "Pipeline default starting from ...", "pipeline": "default"}

The event's named fields are included when they are plain JSON values (strings, numbers, booleans,
None); a failure adds ``"traceback"``.  The default (no ``--logger``) is twistd's human-readable text.
"""

import json as _json
import sys
from datetime import datetime, timezone

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

_PLAIN = (str, int, float, bool, type(None))


def eventAsRecord(event):
    """
    The JSON-ready record for one log event.
    """
    record = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "level": getattr(event.get("log_level"), "name", "info"),
        "namespace": event.get("log_namespace", ""),
        "message": formatEvent(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in record or key in ("format", "message", "isError", "system", "time"):
            continue
        if isinstance(value, _PLAIN):
            record[key] = value
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return record


@implementer(ILogObserver)
class JSONLinesObserver:
    """
    Writes each event as one JSON line to C{stream}.
    """

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, event):
        self.stream.write(_json.dumps(eventAsRecord(event), default=str) + "\n")
        self.stream.flush()


def json():
    """
    The factory twistd calls for C{--logger=stellarflow.logs.json}.
    """
    return JSONLinesObserver(sys.stdout)
