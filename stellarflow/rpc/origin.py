"""
Where a checkpoint came from: the network it was taken on, and whether the RPC has reached it.

A state file follows its pipeline name, not its network: two configs sharing a name in one
directory share it, testnet restarts from ledger 1 every few months, and a new provider's node
may be behind.  The source therefore checks its checkpoint before trusting it:

  - taken on another network (the checkpoint records the passphrase of the source that wrote
    it; the server's comes from ``getNetwork``): a mismatch at once;
  - ahead of the RPC's latest ledger by more than C{margin} ledgers for longer than
    C{patience} seconds (a node a little behind catches up; one that was reset never will): a
    mismatch then.

What a mismatch does is the source's ``on_checkpoint_mismatch`` setting: ``stop`` (the default:
a critical error naming both values and the ways out) or ``restart_from_latest`` (forget the
checkpoint and follow the RPC from its latest ledger: the events in between are not read).
"""

import attr
from twisted.internet.defer import inlineCallbacks

from stellarflow.checkpoint import Checkpoint
from stellarflow.events.network import networkPassphrase
from stellarflow.rpc.errors import RPCClientError

STOP = "stop"
RESTART_FROM_LATEST = "restart_from_latest"

#: How to reset one pipeline's checkpoint by hand, for the error text.
RESET_HINT = "remove {path} (or run: stellarflow -c CONFIG --reset-checkpoint {pipeline})"


@attr.s(frozen=True)
class Mismatch:
    """
    Why a checkpoint cannot be followed: C{reason}, one line naming both values.
    """

    reason = attr.ib()


class OriginCheck:
    """
    Checks one source's starting checkpoint (see the module docstring).

    @param checkpoint: the L{Checkpoint} the source was started from, or C{None}.
    @param clock: an L{IReactorTime}, for C{patience}.
    """

    def __init__(self, checkpoint, clock, margin=10, patience=60.0):
        self.checkpoint = Checkpoint.of(checkpoint)
        self.clock = clock
        self.margin = margin
        self.patience = patience
        self.aheadSince = None
        self.settled = checkpoint is None

    def network(self, passphrase):
        """
        The server serves C{passphrase}: a L{Mismatch} when the checkpoint was taken on another
        network, else C{None}.
        """
        if self.settled or self.checkpoint.network is None or passphrase is None:
            return None
        if self.checkpoint.network != passphrase:
            return Mismatch(
                "the checkpoint {} (ledger {}) was taken on network {!r}, but the RPC serves {!r}".format(
                    self.checkpoint.cursor, self.checkpoint.ledger, self.checkpoint.network, passphrase
                )
            )
        return None

    def ahead(self, requested, latest):
        """
        The RPC answered that ledger C{requested} is past its C{latest}: a L{Mismatch} once
        that has lasted C{patience} seconds by more than C{margin} ledgers, else C{None}.
        """
        if self.settled or requested is None or latest is None or requested - latest <= self.margin:
            self.aheadSince = None
            return None
        now = self.clock.seconds()
        if self.aheadSince is None:
            self.aheadSince = now
        if now - self.aheadSince < self.patience:
            return None
        return Mismatch(
            "the checkpoint {} is at ledger {}, but the RPC's latest ledger is {} and has stayed more "
            "than {} ledgers behind it for {:.0f}s (a reset network, or another network's checkpoint)".format(
                self.checkpoint.cursor, requested, latest, self.margin, now - self.aheadSince
            )
        )

    def reached(self):
        """
        A page was read: the checkpoint is behind us, nothing more to check.
        """
        self.settled = True
        self.aheadSince = None


class NetworkMismatch(Exception):
    """
    The RPC serves another network than the source is configured for.
    """


@inlineCallbacks
def servedNetwork(answer, configured, endpoint, log):
    """
    The passphrase the RPC serves, from C{answer} (a C{getNetwork} request in flight), or
    C{None} when it cannot tell (a server without getNetwork: logged, the configured network is
    assumed).

    @raise NetworkMismatch: it serves another network than C{configured}; asset verification,
        transaction hashes and checkpoints would all be wrong.
    """
    try:
        result = yield answer
    except RPCClientError as e:
        log.warn(
            "Could not check the network of {endpoint} ({error}); assuming {network}",
            endpoint=endpoint,
            error=str(e),
            network=configured,
        )
        return None
    expected = networkPassphrase(configured)
    actual = result.get("passphrase") if isinstance(result, dict) else None
    if not isinstance(actual, str):
        return None
    if actual != expected:
        raise NetworkMismatch(
            "NETWORK MISMATCH: the source is configured for {!r} ({!r}) but {} serves {!r}; set 'network' in "
            "the source config".format(configured, expected, endpoint, actual)
        )
    return actual
