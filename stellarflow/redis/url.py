"""
``redis_url``: where Redis is, parsed once into a L{RedisAddress}.

Forms (docs/scaling.md):

- ``redis://[[user]:password@]host[:port][/db]`` (TLS: ``rediss://``);
- ``unix://[[user]:password@]/path/to/redis.sock[?db=N]``;
- ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``: the
  Sentinels are asked, in turn, for the master of ``service``; the password is the master's.
"""

from urllib.parse import parse_qs, unquote, urlsplit

import attr

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")


@attr.s(frozen=True, slots=True)
class RedisAddress:
    """
    A parsed C{redis_url}.

    @ivar kind: C{"tcp"}, C{"unix"} or C{"sentinel"}.
    @ivar hosts: C{[(host, port)]}: the server, or the Sentinels.
    @ivar path: the socket path (C{unix}).
    @ivar service: the Sentinel service name.
    """

    kind = attr.ib()
    hosts = attr.ib(default=())
    path = attr.ib(default=None)
    service = attr.ib(default=None)
    db = attr.ib(default=0)
    username = attr.ib(default=None)
    password = attr.ib(default=None, repr=False)
    tls = attr.ib(default=False)

    def describe(self):
        """
        Where this is, for logs: no credentials.
        """
        hosts = ",".join("{}:{}".format(h, p) for h, p in self.hosts)
        if self.kind == "unix":
            return "unix:{} db {}".format(self.path, self.db)
        if self.kind == "sentinel":
            return "sentinel {} service {} db {}".format(hosts, self.service, self.db)
        return "{}://{}/{}".format("rediss" if self.tls else "redis", hosts, self.db)


class BadRedisURL(ValueError):
    """
    A C{redis_url} that cannot be used; the text says why (never the password).
    """


def _port(text, where):
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise BadRedisURL("{} has port {!r}; expected a number from 1 to 65535".format(where, text))
    return int(text)


def _db(text):
    if not text.isdigit():
        raise BadRedisURL("database {!r} is not a number".format(text))
    return int(text)


def _hostPort(item, default):
    item = item.strip()
    if not item:
        raise BadRedisURL("an empty host")
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
    return host, _port(port, host) if port else default


def parseRedisURL(url):
    """
    The L{RedisAddress} of C{url}, or raise L{BadRedisURL}.
    """
    if not isinstance(url, str) or "://" not in url:
        raise BadRedisURL("expected a URL such as redis://127.0.0.1:6379/0")
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise BadRedisURL("scheme {!r} is not one of {}".format(scheme, ", ".join(s + "://" for s in SCHEMES)))
    username = password = None
    if "@" in rest.split("/", 1)[0] or (scheme == "unix" and "@" in rest):
        creds, _, rest = rest.rpartition("@")
        user, sep, secret = creds.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
        if not sep:
            password, username = username, None  # redis://secret@host: the password alone
    if scheme == "unix":
        split = urlsplit("unix://" + rest)
        if not split.path:
            raise BadRedisURL("unix:// needs a socket path, e.g. unix:///run/redis/redis.sock")
        db = parse_qs(split.query).get("db", ["0"])[0]
        return RedisAddress("unix", path=split.path, db=_db(db), username=username, password=password)
    netloc, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    if scheme == "redis+sentinel":
        hosts = tuple(_hostPort(item, 26379) for item in netloc.split(","))
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise BadRedisURL("redis+sentinel:// needs the service name: redis+sentinel://host:26379/mymaster/0")
        if len(parts) > 2:
            raise BadRedisURL("expected redis+sentinel://hosts/service[/db]")
        db = _db(parts[1]) if len(parts) == 2 else 0
        return RedisAddress(
            "sentinel", hosts=hosts, service=parts[0], db=db, username=username, password=password
        )
    if not netloc:
        raise BadRedisURL("no host; expected e.g. redis://127.0.0.1:6379/0")
    if "," in netloc:
        raise BadRedisURL("several hosts are only for redis+sentinel://")
    db = _db(path.strip("/")) if path.strip("/") else 0
    return RedisAddress(
        "tcp", hosts=(_hostPort(netloc, 6379),), db=db, username=username, password=password, tls=scheme == "rediss"
    )


def urlProblem(value):
    """
    For the config schema: what is wrong with a C{redis_url}, or C{None}.
    """
    try:
        parseRedisURL(value)
    except BadRedisURL as e:
        return str(e)
    return None


def shownURL(value):
    """
    A C{redis_url} as logged: the password replaced.
    """
    try:
        return parseRedisURL(value).describe()
    except BadRedisURL:
        return "(invalid redis_url)"
