"""
Checkpoints: where a pipeline's live flow got to, and the network it got there on.

The live flow's checkpoint is one small file per pipeline, replaced atomically, holding the
cursor, the ledger it lies in and the network passphrase of the source that produced it, so
that a checkpoint taken on one network (or on a node that has since been reset, as testnet is
every few months) is recognised as foreign instead of being followed blindly.  Durable
consumers (PostgreSQL) keep their own checkpoint with their data (see L{stellarflow.durable}).
"""

import json
import os

import attr
from twisted.internet.defer import maybeDeferred, succeed
from zope.interface import implementer

from stellarflow import positions
from stellarflow.interfaces import ICheckpointStore


@attr.s(frozen=True, slots=True)
class Checkpoint:
    """
    A saved position.

    @ivar cursor: the source's cursor (for the RPC source, an event id or getEvents cursor).
    @ivar network: the network passphrase of the source that produced it, or C{None} when
        unknown (a checkpoint written by an older version, or by a store that keeps no network).
    @ivar hash: the hash of the last ledger before the cursor (lowercase hex), from sources
        that follow the chain ledger by ledger (getLedgers, the data lake), or C{None}: on a
        restart the next ledger's previous-ledger hash must equal it.
    @ivar owed: C{((consumer name, position), ...)}: durable consumers that have no position of
        their own yet (a database that never answered, or never stored a batch) and the
        position each must start after, kept in the live flow's checkpoint until they have
        one, so that a restart meanwhile does not move their start to the new run's.
    """

    cursor = attr.ib()
    network = attr.ib(default=None)
    hash = attr.ib(default=None)
    owed = attr.ib(default=(), converter=lambda value: tuple(sorted(dict(value or ()).items())))

    @property
    def ledger(self):
        """The ledger the cursor lies in, when it is a position; else C{None}."""
        return positions.ledgerOf(self.cursor)

    @classmethod
    def of(cls, value):
        """
        C{value} as a L{Checkpoint}: one already, a bare cursor (stores that keep only the
        cursor, such as PostgreSQL's), or C{None}.
        """
        if value is None or isinstance(value, cls):
            return value
        return cls(cursor=value)


@implementer(ICheckpointStore)
class FileCheckpointStore:
    """
    Keeps C{<directory>/<pipeline>.checkpoint.json}: C{{"pipeline", "cursor", "ledger",
    "network"}}, and C{"hash"} and C{"owed"} (an object: consumer name to position) when the
    checkpoint has them.

    Writes go to a temporary file that is fsync'ed and renamed over the old one, so a crash
    leaves either the old or the new checkpoint, never a torn file.
    """

    def __init__(self, directory):
        self.directory = directory

    def path(self, pipeline):
        """
        The file holding C{pipeline}'s checkpoint (remove it to start that pipeline afresh).
        """
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in pipeline)
        return os.path.join(self.directory, safe + ".checkpoint.json")

    def load(self, pipeline):
        return maybeDeferred(self._load, pipeline)

    def _load(self, pipeline):
        try:
            with open(self.path(pipeline), encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        if data.get("cursor") is None:
            return None
        owed = data.get("owed")
        if not isinstance(owed, dict) or not all(isinstance(v, str) for v in owed.values()):
            owed = ()
        return Checkpoint(cursor=data["cursor"], network=data.get("network"), hash=data.get("hash"), owed=owed)

    def save(self, pipeline, checkpoint):
        return maybeDeferred(self._save, pipeline, Checkpoint.of(checkpoint))

    def _save(self, pipeline, checkpoint):
        os.makedirs(self.directory, exist_ok=True)
        path = self.path(pipeline)
        tmp = path + ".tmp"
        record = {
            "pipeline": pipeline,
            "cursor": checkpoint.cursor,
            "ledger": checkpoint.ledger,
            "network": checkpoint.network,
        }
        if checkpoint.hash is not None:
            record["hash"] = checkpoint.hash
        if checkpoint.owed:
            record["owed"] = dict(checkpoint.owed)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def reset(self, pipeline):
        """
        Forget C{pipeline}'s checkpoint (it starts where its source is configured to start).
        """
        try:
            os.remove(self.path(pipeline))
        except FileNotFoundError:
            pass


@implementer(ICheckpointStore)
class NullCheckpointStore:
    """
    Remembers nothing: every start begins where the source's config says.
    """

    def load(self, pipeline):
        return succeed(None)

    def save(self, pipeline, checkpoint):
        return succeed(None)
