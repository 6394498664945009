"""
Whether ledgers follow one another: contiguous sequences, and each header's previous-ledger
hash equal to the hash of the ledger before it.

A break is either a gap (ledgers missing between two delivered ones) or a fork (the next
ledger's C{previousHash} is not the hash of the ledger delivered before it: the provider
switched history, or a checkpoint belongs to another chain).  The sources decide what a break
means with their C{on_gap} policy (L{stellarflow.rpc.policy.FailurePolicy.chainBreak}).
"""

import attr

from stellarflow.rpc.policy import Stop


@attr.s(frozen=True, slots=True)
class ChainBreak:
    """
    Ledgers C{first} to C{last} are missing (a gap) or in doubt (a fork); C{detail} says which.
    """

    first = attr.ib()
    last = attr.ib()
    detail = attr.ib()


def link(lastSequence, lastHash, item):
    """
    How C{item} (a L{stellarflow.ledgers.items.LedgerItem}) follows the ledger C{lastSequence}
    with hash C{lastHash} (either may be C{None}: unknown).

    @return: C{None} when it follows, the string ``"old"`` when it is at or before
        C{lastSequence} (already delivered), or a L{ChainBreak}.
    """
    if lastSequence is None:
        return None
    if item.sequence <= lastSequence:
        return "old"
    if item.sequence > lastSequence + 1:
        return ChainBreak(lastSequence + 1, item.sequence - 1, "ledgers {}-{} are missing: ledger {} follows ledger "
                          "{}".format(lastSequence + 1, item.sequence - 1, item.sequence, lastSequence))
    if lastHash is not None and item.previousHash is not None and item.previousHash != lastHash:
        return ChainBreak(lastSequence, lastSequence, "ledger {} follows a ledger {} with hash {}, not the ledger {} "
                          "delivered (hash {})".format(item.sequence, lastSequence, item.previousHash, lastSequence,
                                                       lastHash))
    return None


def follow(items, lastSequence, lastHash, policy, gaps):
    """
    The C{items} (in ledger order) that follow the ledger C{lastSequence} with hash C{lastHash},
    skipping those already delivered; each break is put to C{policy.chainBreak} and recorded in
    C{gaps} (C{(first, last)}), and one it answers with a L{Stop} ends the page there.

    @return: C{(accepted items, the Stop or None)}.
    """
    accepted = []
    for item in items:
        found = link(lastSequence, lastHash, item)
        if found == "old":
            continue
        if found is not None:
            outcome = policy.chainBreak(found.first, found.last, found.detail)
            gaps.append((found.first, found.last))
            if isinstance(outcome, Stop):
                return accepted, outcome
        accepted.append(item)
        lastSequence, lastHash = item.last, item.hash
    return accepted, None
