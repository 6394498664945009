"""
The config keys of C{SaveToPostgreSQL} (see ``docs/postgresql.md``), checked together: a
connection string excludes the keys it already holds.
"""

from stellarflow.postgres import dsn as dsnlib
from stellarflow.schema import Boolean, Field, Integer, Number, Schema, String, join

DEFAULT_TABLE = "stellar_events"
HISTORY_ENDPOINTS = ("admin", "off")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def crossCheck(config, path, problems):
    if config["dsn"] and config["connection_string"]:
        problems.add(join(path, "connection_string"), "give either dsn or connection_string, not both")
    base = config["dsn"] or config["connection_string"]
    if base:
        for key in ("host", "port", "database", "username"):
            if config[key] is not None:
                problems.add(
                    join(path, key),
                    "not allowed together with dsn/connection_string (put it in the connection string)",
                )
    elif config["database"] is None:
        problems.add(join(path, "database"), "missing; expected a database name (or a dsn)")


CONFIG_SCHEMA = Schema(
    {
        "host": Field(String(nonEmpty=True), None, 'server host (default "localhost" without dsn)'),
        "port": Field(Integer(1, 65535), None, "server port (default 5432 without dsn)"),
        "database": Field(String(nonEmpty=True), None, "database name (required without dsn)"),
        "username": Field(String(nonEmpty=True), None, "role to connect as"),
        "password": Field(String(secret=True), "", "password; never logged"),
        "sslmode": Field(String(choices=SSLMODES), None, "libpq sslmode"),
        "dsn": Field(
            String(secret=True, validator=dsnlib.dsnProblem),
            "",
            "a libpq connection string or postgresql:// URI instead of host/port/database/username",
        ),
        "connection_string": Field(String(secret=True, validator=dsnlib.dsnProblem), "", "alias of dsn"),
        "schema": Field(
            String(validator=dsnlib.identifierProblem),
            None,
            "schema holding the tables (created if missing); default: the search_path",
        ),
        "table": Field(String(validator=dsnlib.tableNameProblem), DEFAULT_TABLE, "events table name"),
        "batch_size": Field(Integer(1, 10000), 500, "rows per INSERT and per flush"),
        "flush_interval": Field(
            Number(0, 60), 0.2, "seconds a queued batch waits for more rows before it is written"
        ),
        "max_pending": Field(Integer(1), 100000, "events held in memory before acks are withheld"),
        "writer_connections": Field(
            Integer(1, 2),
            2,
            "connections writing events: with 2 the next flush is written while one commits "
            "(commits stay in order)",
        ),
        "connect_timeout": Field(Number(0, exclusiveMinimum=True), 10.0, "seconds to connect"),
        "query_timeout": Field(
            Number(0, exclusiveMinimum=True),
            60.0,
            "seconds a transaction may take before the connection is presumed dead",
        ),
        "history_endpoint": Field(
            String(choices=HISTORY_ENDPOINTS),
            "admin",
            "serve GET /events (stored events by WebSocket filter and range) on the admin port, or not (off)",
        ),
        "history_max_limit": Field(Integer(1, 10000), 1000, "largest page GET /events answers with"),
        "history_statement_timeout": Field(
            Number(0, exclusiveMinimum=True), 10.0, "seconds a GET /events query may run before it is cancelled"
        ),
        "store_message": Field(
            Boolean(),
            True,
            "also store each message as JSON text, so WebSocket replays are byte-exact",
        ),
    },
    check=crossCheck,
)

