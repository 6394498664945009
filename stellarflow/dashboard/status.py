"""
The operator's status page: C{GET /} on the admin port.

The same figures as C{/metrics} and C{/healthz} (each component's C{stats()}, the pipeline's
view of its consumers, L{stellarflow.admin.health}'s verdict and reasons), laid out for a
person: one section per pipeline with its source position and lag, the last successful RPC
answer, each consumer's state and lag, the WebSocket clients connected and registered; then the
most recent warnings of the log (L{RecentWarnings}, bounded).  Plain HTML rendered on the
server, no script; it reloads itself every few seconds.
"""

import collections
import html
import time
from datetime import datetime, timezone

from twisted.logger import LogLevel, formatEvent
from twisted.web.resource import Resource

#: Warnings kept for the page (the oldest go first).
MAX_WARNINGS = 50
#: Seconds between the page's own reloads.
REFRESH = 5

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#: Consumer figures shown, in order, with their headings: the first of the keys a consumer
#: has (absent ones are left blank).
CONSUMER_COLUMNS = (
    (("attached",), "attached"),
    (("position_ledger",), "position (ledger)"),
    (("lag_ledgers",), "lag (ledgers)"),
    (("messages_total", "messages_delivered_total", "inserted_total"), "messages"),
    (("clients_connected",), "clients connected"),
    (("clients_registered",), "clients registered"),
    (("messages_dropped_total",), "dropped"),
)


def _first(stats, keys):
    for key in keys:
        if key in stats:
            return stats[key]
    return None


class RecentWarnings:
    """
    A log observer keeping the last C{size} events at warning level or above, as
    C{(time, level, namespace, text)}.
    """

    def __init__(self, size=MAX_WARNINGS):
        self.events = collections.deque(maxlen=size)

    def __call__(self, event):
        level = event.get("log_level")
        if level is None or level < LogLevel.warn:
            return
        try:
            text = formatEvent(event)
        except Exception:
            text = repr(event.get("log_format"))
        failure = event.get("log_failure")
        if failure is not None:
            text = "{} ({}: {})".format(text, failure.type.__name__, failure.getErrorMessage())
        self.events.append((event.get("log_time", 0), level.name, event.get("log_namespace", ""), text))


def statusData(daemon, health, consumerStats, sourceStats):
    """
    What the page shows, as plain data: C{{"status", "pipelines": [...]}}.

    @param health: C{(healthy, body)} of L{stellarflow.admin.health}.
    @param consumerStats: C{(pipeline, name, consumer) -> stats}.
    @param sourceStats: C{source -> stats}.
    """
    healthy, body = health
    pipelines = []
    for pipeline in daemon.pipelines:
        verdict = body["pipelines"].get(pipeline.name, {})
        source = sourceStats(pipeline.source)
        consumers = []
        for name, consumer in pipeline.consumers:
            stats = consumerStats(pipeline, name, consumer)
            consumers.append({"name": name, "type": type(consumer).__name__, "stats": stats})
        pipelines.append({
            "name": pipeline.name,
            "running": bool(pipeline.running),
            "healthy": verdict.get("healthy", healthy),
            "reasons": verdict.get("reasons", []),
            "checkpoint": pipeline.committed,
            "source": {"type": type(pipeline.source).__name__, "stats": source},
            "consumers": consumers,
        })
    return {"status": body["status"], "pipelines": pipelines}


def _e(value):
    return html.escape("" if value is None else str(value))


def _when(timestamp, now):
    if not timestamp:
        return "never"
    stamp = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "{} ({:.0f} s ago)".format(stamp, max(0.0, now - timestamp))


def _figure(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def renderStatus(data, warnings, now):
    """
    The page's HTML (bytes) for L{statusData}'s C{data} and L{RecentWarnings}' events.
    """
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<meta http-equiv='refresh' content='{}'>".format(REFRESH),
        "<title>stellarflow status: {}</title>".format(_e(data["status"])),
        "<style>body{font:14px/1.45 system-ui,sans-serif;margin:1em;color:#1d2330}"
        "table{border-collapse:collapse;margin:.4em 0 1em}th,td{text-align:left;padding:.25em .6em;"
        "border-bottom:1px solid #dde2ea;vertical-align:top}th{color:#5d6676;font-weight:600}"
        ".ok{color:#1d7a46}.bad{color:#b3261e}.warn{color:#9a5b00}code{font-size:12.5px}"
        "section{max-width:100%;overflow-x:auto}</style></head><body>",
        "<h1>stellarflow <span class='{}' id='status'>{}</span></h1>".format(
            "ok" if data["status"] == "ok" else "bad", _e(data["status"])),
        "<p>The figures of <a href='/metrics'>/metrics</a> and <a href='/healthz'>/healthz</a>; "
        "this page reloads every {} s.</p>".format(REFRESH),
    ]
    for p in data["pipelines"]:
        src = p["source"]["stats"]
        out.append("<section class='pipeline' data-pipeline='{0}'><h2>Pipeline {0} <span class='{1}'>{2}</span></h2>".format(
            _e(p["name"]), "ok" if p["healthy"] else "bad", "healthy" if p["healthy"] else "unhealthy"))
        if p["reasons"]:
            out.append("<ul class='reasons'>")
            out.extend("<li class='bad'>{}</li>".format(_e(r)) for r in p["reasons"])
            out.append("</ul>")
        rows = [
            ("running", _figure(p["running"])),
            ("source", _e(p["source"]["type"])),
            ("polling", _figure(src.get("polling"))),
            ("checkpoint (position)", "<code>{}</code>".format(_e(p["checkpoint"] or "none yet"))),
            ("RPC latest ledger", _e(_figure(src.get("latest_ledger")))),
            ("lag (ledgers)", _e(_figure(src.get("lag_ledgers")))),
            ("last successful RPC answer", _e(_when(src.get("last_success_timestamp_seconds"), now))),
            ("last error", _e(src.get("last_error") or "none")),
            ("events read", _e(_figure(src.get("events_total")))),
        ]
        out.append("<table class='source'>")
        out.extend("<tr><th scope='row'>{}</th><td>{}</td></tr>".format(k, v) for k, v in rows)
        out.append("</table><h3>Consumers</h3><table class='consumers'><tr><th>consumer</th>")
        out.extend("<th>{}</th>".format(_e(title)) for _, title in CONSUMER_COLUMNS)
        out.append("</tr>")
        for c in p["consumers"]:
            out.append("<tr data-consumer='{0}'><td>{0} <small>({1})</small></td>".format(_e(c["name"]), _e(c["type"])))
            out.extend("<td>{}</td>".format(_e(_figure(_first(c["stats"], keys)))) for keys, _ in CONSUMER_COLUMNS)
            out.append("</tr>")
        out.append("</table></section>")
    out.append("<section><h2>Recent warnings</h2>")
    if warnings:
        out.append("<table class='warnings'><tr><th>time</th><th>level</th><th>where</th><th>message</th></tr>")
        for when, level, namespace, text in reversed(list(warnings)):
            stamp = datetime.fromtimestamp(when, timezone.utc).strftime("%H:%M:%S")
            out.append("<tr><td>{}</td><td class='warn'>{}</td><td>{}</td><td>{}</td></tr>".format(
                stamp, _e(level), _e(namespace.rsplit(".", 1)[-1]), _e(text)))
        out.append("</table>")
    else:
        out.append("<p class='ok' id='no-warnings'>none since the admin endpoint started</p>")
    out.append("</section></body></html>")
    return "".join(out).encode("utf-8")


class StatusResource(Resource):
    """
    C{GET /}: L{renderStatus} of the daemon now (always 200: the page is for a person; probes
    read C{/healthz}).
    """

    isLeaf = True

    def __init__(self, daemon, health, consumerStats, sourceStats, warnings, now=time.time):
        Resource.__init__(self)
        self.daemon = daemon
        self.health = health
        self.consumerStats = consumerStats
        self.sourceStats = sourceStats
        self.warnings = warnings
        self.now = now

    def render_GET(self, request):
        if request.postpath not in ([], [b""]):
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"Not Found\n"
        verdict = self.health()
        data = statusData(self.daemon, verdict, self.consumerStats, self.sourceStats)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Content-Security-Policy", CSP.encode("ascii"))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        return renderStatus(data, self.warnings.events, self.now())
