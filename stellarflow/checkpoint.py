"""
The default checkpoint store: one small file per pipeline, replaced atomically.
"""

import json
import os

from twisted.internet.defer import DeferredList, maybeDeferred, succeed
from zope.interface import implementer

from stellarflow.interfaces import ICheckpointStore


@implementer(ICheckpointStore)
class FileCheckpointStore:
    """
    Keeps C{<directory>/<pipeline>.checkpoint.json} holding C{{"cursor": ...}}.

    Writes go to a temporary file that is fsync'ed and renamed over the old one, so a crash
    leaves either the old or the new checkpoint, never a torn file.
    """

    def __init__(self, directory):
        self.directory = directory

    def _path(self, pipeline):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in pipeline)
        return os.path.join(self.directory, safe + ".checkpoint.json")

    def load(self, pipeline):
        return maybeDeferred(self._load, pipeline)

    def _load(self, pipeline):
        try:
            with open(self._path(pipeline), encoding="utf-8") as f:
                return json.load(f).get("cursor")
        except FileNotFoundError:
            return None

    def save(self, pipeline, cursor):
        return maybeDeferred(self._save, pipeline, cursor)

    def _save(self, pipeline, cursor):
        os.makedirs(self.directory, exist_ok=True)
        path = self._path(pipeline)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"pipeline": pipeline, "cursor": cursor}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


@implementer(ICheckpointStore)
class NullCheckpointStore:
    """
    Remembers nothing: every start begins where the source's config says.
    """

    def load(self, pipeline):
        return succeed(None)

    def save(self, pipeline, cursor):
        return succeed(None)


@implementer(ICheckpointStore)
class LayeredCheckpointStore:
    """
    The local state file in front of a consumer's durable store (PostgreSQL).

    Saves go to both.  Loading prefers the local file: it is written only after every consumer
    acknowledged, so it is never ahead of the durable store, and starting from it can only
    redeliver batches the durable consumer already holds (it ignores duplicates).  This lets a
    pipeline start while its database is down.  Without a local file (a fresh container, say)
    the durable store is asked, and the pipeline waits for it.
    """

    def __init__(self, local, durable):
        self.local = local
        self.durable = durable

    def load(self, pipeline):
        d = self.local.load(pipeline)

        def fallback(cursor):
            if cursor is not None:
                return cursor
            return self.durable.load(pipeline)

        return d.addCallback(fallback)

    def save(self, pipeline, cursor):
        results = DeferredList(
            [maybeDeferred(self.durable.save, pipeline, cursor), maybeDeferred(self.local.save, pipeline, cursor)],
            consumeErrors=True,
        )

        def check(outcomes):
            for ok, result in outcomes:
                if not ok:
                    return result
            return None

        return results.addCallback(check)
