"""
libpq connection strings for the PostgreSQL consumer: built safely from config keys, described
for logs without the password, and scrubbed out of error text.

Connection strings are built with C{psycopg2.extensions.make_dsn}, which quotes every value the
way libpq expects, so passwords with spaces, quotes or backslashes work.  libpq's own parse
errors quote fragments of the string they choke on (possibly the password), so a malformed
``dsn`` is reported at config time without echoing it, and error text is scrubbed before it is
logged.
"""

import re

from psycopg2 import Error as PsycopgError
from psycopg2.extensions import make_dsn, parse_dsn

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 5432
APPLICATION_NAME = "stellarflow"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Room left for the suffixes of the companion tables and indexes (``_checkpoints``,
# ``_asset_time_idx``) within PostgreSQL's 63-byte identifiers.
MAX_TABLE_NAME = 63 - len("_asset_time_idx")


def identifierProblem(value, maximum=63):
    """
    Why C{value} is not usable as a table or schema name, or C{None}.
    """
    if not _IDENTIFIER.match(value):
        return "a name of letters, digits and underscores, not starting with a digit"
    if len(value) > maximum:
        return "a name of at most {} characters".format(maximum)
    return None


def tableNameProblem(value):
    return identifierProblem(value, MAX_TABLE_NAME)


def dsnProblem(value):
    """
    Why C{value} is not a libpq connection string, or C{None}.  Never quotes the value.
    """
    try:
        parse_dsn(value)
    except PsycopgError:
        return "a libpq connection string (key=value pairs or a postgresql:// URI)"
    return None


def buildDSN(config, applicationName=APPLICATION_NAME):
    """
    The connection string for a validated consumer config.

    With C{dsn} (or C{connection_string}) set, it is the base and only C{password} may add to it;
    otherwise C{host}, C{port}, C{database} and C{username} describe the server.  C{sslmode} and
    C{connect_timeout} apply to both.  The client encoding is always UTF-8; C{applicationName}
    (shown in ``pg_stat_activity``) applies unless the dsn sets its own.
    """
    base = config.get("dsn") or config.get("connection_string") or ""
    params = {"client_encoding": "UTF8"}
    if not (base and "application_name" in parse_dsn(base)):
        params["application_name"] = applicationName[:63]
    if not base:
        params["host"] = config.get("host") or DEFAULT_HOST
        params["port"] = config.get("port") or DEFAULT_PORT
        params["dbname"] = config.get("database")
        if config.get("username"):
            params["user"] = config["username"]
    if config.get("password"):
        params["password"] = config["password"]
    if config.get("sslmode"):
        params["sslmode"] = config["sslmode"]
    if config.get("connect_timeout"):
        params["connect_timeout"] = max(1, int(round(config["connect_timeout"])))
    return make_dsn(base, **params)


def describe(dsn):
    """
    ``user@host:port/dbname`` for logs: never the password.
    """
    try:
        parts = parse_dsn(dsn)
    except PsycopgError:
        return "<invalid connection string>"
    where = "{}:{}/{}".format(
        parts.get("host") or parts.get("hostaddr") or DEFAULT_HOST,
        parts.get("port") or DEFAULT_PORT,
        parts.get("dbname") or parts.get("user") or "",
    )
    return "{}@{}".format(parts["user"], where) if parts.get("user") else where


def secretsOf(dsn):
    """
    The strings that must never appear in logs: the password held by C{dsn}.
    """
    try:
        password = parse_dsn(dsn).get("password")
    except PsycopgError:
        return ()
    return (password,) if password else ()


def scrub(text, secrets):
    """
    C{text} with every occurrence of each secret replaced by ``<hidden>``.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<hidden>")
    return text


def errorText(error, secrets=()):
    """
    An error (an exception or a L{Failure}) as one line for logs and messages: PostgreSQL's
    primary message and detail when there are some, with every secret scrubbed out.
    """
    value = getattr(error, "value", error)
    diag = getattr(value, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        text = primary + (" ({})".format(diag.message_detail) if diag.message_detail else "")
    else:
        text = str(value).strip() or type(value).__name__
    text = " ".join(line.strip() for line in text.splitlines())
    return scrub(text, secrets)
