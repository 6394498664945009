"""
The config keys of C{SaveToRedis} and C{RedisStreamSource} (docs/scaling.md): both name the
same C{redis_url} and C{stream}.
"""

from stellarflow.redis.url import urlProblem
from stellarflow.schema import Field, Integer, Number, Schema, String

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _streamProblem(value):
    if not value or len(value) > 200 or any(c.isspace() for c in value):
        return "a key name without spaces, 1 to 200 characters"
    return None


def _common():
    return {
        "redis_url": Field(
            String(nonEmpty=True, validator=urlProblem, secret=True),
            DEFAULT_URL,
            "redis://[:password@]host:port/db, rediss:// (TLS), unix:///path?db=N or "
            "redis+sentinel://host:26379[,host:port...]/service[/db] (may hold a password: never logged; the connection logs the server without it)",
        ),
        "stream": Field(
            String(validator=_streamProblem), "stellarflow:events", "the stream key (its position: <stream>:position)"
        ),
        "command_timeout": Field(
            Number(0, 600, exclusiveMinimum=True), 5.0, "seconds a command may wait for Redis's reply"
        ),
        "connect_timeout": Field(Number(0, 600, exclusiveMinimum=True), 5.0, "seconds to connect (and AUTH/SELECT)"),
    }


CONSUMER_SCHEMA = Schema(
    dict(
        _common(),
        max_length=Field(Integer(0), 1000000, "keep about this many entries (XTRIM MAXLEN ~; 0: no bound)"),
        max_ledgers=Field(
            Integer(0), 0, "keep only the entries of the newest N ledgers (XTRIM MINID ~; 0: no bound)"
        ),
        refill_size=Field(
            Integer(0),
            10000,
            "entries kept in memory to refill a Redis that lost them (a restart without persistence)",
        ),
        max_transaction=Field(Integer(1, 100000), 5000, "most entries appended in one MULTI/EXEC"),
    ),
    doc="On the node that follows Stellar: every message appended to a Redis Stream for edge nodes "
    "(docs/scaling.md). A durable consumer: its position is kept in `<stream>:position`.",
)

SOURCE_SCHEMA = Schema(
    dict(
        _common(),
        count=Field(Integer(1, 100000), 1000, "most entries read per XREAD (one batch)"),
        block=Field(Number(0, 60, exclusiveMinimum=True), 1.0, "seconds an XREAD waits for new entries"),
        start=Field(
            String(choices=("latest", "oldest")),
            "latest",
            "without a checkpoint: follow from the stream's newest entry, or replay it from its oldest",
        ),
        on_gap=Field(
            String(choices=("stop", "continue")),
            "stop",
            "a gap after the first batch of a run: stop the daemon (status 1) so that a supervisor restarts "
            "it and clients resume and are told, or log it and continue (live clients are not told)",
        ),
        history_verify_limit=Field(
            Integer(0),
            100000,
            "entries before this edge's start checked for breaks before they are replayed to resuming clients",
        ),
    ),
    doc="On edge nodes: follows the stream `SaveToRedis` writes, with `processors: []` and a "
    "`SaveToWebSocket`; resuming clients are replayed from the stream (docs/scaling.md).",
)
