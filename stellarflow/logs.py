"""
Log observers for twistd's ``--logger`` option.

``twistd --logger=stellarflow.logs.json -n stellarflow -c FILE`` writes one JSON object per line
to standard output (no record separator), for log shippers::

    {"time": "2026-11-25T18:00:00.123456Z", "level": "info", "namespace": "stellarflow.pipeline.Pipeline",
     "message": "Pipeline default starting from ...", "pipeline": "default"}

The event's named fields are included when they are plain JSON values (strings, numbers, booleans,
None); a failure adds ``"traceback"``.  The default (no ``--logger``) is twistd's human-readable text.

The default text log (``twistd -n`` without ``--logger`` or ``--logfile``, and the
``stellarflow`` command) is L{text}: info level and above, so per-connection and per-poll
debug lines stay out of it; ``--logger=stellarflow.logs.verbose`` shows them too.

L{RateLimitedLog} keeps warnings caused by clients to one line per kind per interval.
"""

import json as _json
import sys
from datetime import datetime, timezone

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    textFileLogObserver,
)
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


def atLevel(observer, level=LogLevel.info):
    """
    C{observer}, seeing only events at C{level} and above.
    """
    return FilteringLogObserver(observer, [LogLevelFilterPredicate(defaultLogLevel=level)])


def text(stream=None):
    """
    The default text log: twistd's format on standard output, info level and above.
    """
    return atLevel(textFileLogObserver(stream or sys.stdout))


def verbose():
    """
    C{--logger=stellarflow.logs.verbose}: the text log with debug lines too.
    """
    return textFileLogObserver(sys.stdout)


def defaultLogger(twistdOptions):
    """
    Make L{text} twistd's log observer when it would write text to standard output anyway
    (C{-n} without C{--logger}, C{--logfile} or C{--syslog}); a log file keeps twistd's own.
    """
    if twistdOptions is None or twistdOptions.get("logger") is not None:
        return
    if twistdOptions.get("syslog") or twistdOptions.get("logfile") not in (None, "-"):
        return
    if twistdOptions.get("nodaemon") or twistdOptions.get("logfile") == "-":
        twistdOptions["logger"] = "stellarflow.logs.text"


class RateLimitedLog:
    """
    Log lines caused by clients, at most one per kind per C{interval}: the first is written at
    once; those that follow within the interval are counted and written as one line with
    their count when it ends.  A flood of bad clients then costs a line per interval, not a
    line per connection.

    @param clock: an L{IReactorTime} (the summary lines are timed with it).
    @param interval: seconds between two lines of one kind.
    """

    def __init__(self, clock, interval=10.0):
        self.clock = clock
        self.interval = interval
        self._kinds = {}
        self._stopped = False

    def emit(self, logger, kind, format, level=LogLevel.warn, **fields):
        """
        Write C{format} with C{fields} through C{logger} at C{level}, or count it when a line
        of this C{kind} was written less than C{interval} ago.
        """
        if self._stopped:  # shutting down: no timers are left behind
            logger.emit(level, format, **fields)
            return
        state = self._kinds.get(kind)
        if state is not None:
            state[0] += 1
            state[1], state[2], state[3] = logger, format, fields
            return
        logger.emit(level, format, **fields)
        self._kinds[kind] = state = [0, logger, format, fields, level, None]
        state[5] = self.clock.callLater(self.interval, self._flush, kind)

    def warn(self, logger, kind, format, **fields):
        self.emit(logger, kind, format, LogLevel.warn, **fields)

    def info(self, logger, kind, format, **fields):
        self.emit(logger, kind, format, LogLevel.info, **fields)

    def _flush(self, kind):
        count, logger, format, fields, level, _ = self._kinds.pop(kind)
        if not count:
            return
        fields = dict(fields, repeated=count, interval=self.interval)
        logger.emit(level, "{repeated} more in the last {interval:g}s, the latest: " + format, **fields)
        self._kinds[kind] = [0, logger, format, fields, level, self.clock.callLater(self.interval, self._flush, kind)]

    def stop(self):
        """
        Write what is counted and stop the timers (on shutdown); lines after this are written
        as they come.
        """
        self._stopped = True
        for kind in list(self._kinds):
            call = self._kinds[kind][5]
            if call is not None and call.active():
                call.cancel()
            self._flush(kind)
            state = self._kinds.pop(kind, None)
            if state is not None and state[5] is not None and state[5].active():
                state[5].cancel()
