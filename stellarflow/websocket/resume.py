"""
Preparing a resume: whether a C{register} with C{resume_after} can be served, where its replay
starts and what cannot be replayed (the gap).

L{planResume} checks the position against what the server has processed, asks the durable
store (L{IEventHistory}) how far back it reaches when the position is older than the history
window, and counts what the replay needs (before filtering, cheaply) against C{max_replay}.
It answers with a L{Plan}, or fails with L{Refused} (the C{error} reply to send).
"""

import attr
from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from stellarflow.positions import after, before, ledgerOf
from stellarflow.websocket import messages

log = Logger()


class Refused(Exception):
    """
    A resume cannot be served: C{code}, C{message} and C{field} go to the client as an C{error}.
    """

    def __init__(self, code, message, field=None):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.field = field


@attr.s(frozen=True, slots=True)
class Plan:
    """
    Where an accepted resume's replay starts.

    @ivar start: the replay sends the events after this position.
    @ivar gap: the C{gap} of the C{registered} reply (see L{gapOf}), or C{None} when every
        event after C{resume_after} can be replayed.
    @ivar useStore: whether the replay reads the durable store before the window.
    """

    start = attr.ib()
    gap = attr.ib()
    useStore = attr.ib()


def gapOf(resumeAfter, lower):
    """
    The C{gap} of a C{registered} reply: events with C{from_after < id <= to} cannot be
    replayed; C{ledgers} is the inclusive ledger range they would lie in.
    """
    return {
        "from_after": resumeAfter,
        "to": lower,
        "ledgers": [ledgerOf(after(resumeAfter)), ledgerOf(lower)],
    }


@inlineCallbacks
def planResume(replay, head, window, store, maxReplay):
    """
    Plan the replay of a resume.

    @param replay: the L{Replay} being prepared (its C{after}, its session's C{peer}; when it is
        cancelled meanwhile the result is C{None}).
    @param head: the newest position the server has processed.
    @param window: the L{HistoryWindow}.
    @param store: the durable L{IEventHistory}, or C{None}.
    @param maxReplay: most events the replay may need (counted before filtering).
    @return: a Deferred firing with a L{Plan} (or C{None}), or failing with L{Refused}.
    """
    resumeAfter = replay.after
    if resumeAfter > head:
        raise Refused(
            messages.RESUME_AFTER_AHEAD,
            "resume_after {} is ahead of the newest position this server has processed ({})".format(
                resumeAfter, head
            ),
            "resume_after",
        )
    floor = window.floor
    start, gap, useStore, stored = resumeAfter, None, False, 0
    if resumeAfter < floor:
        lower = floor
        if store is not None:
            try:
                oldest = yield store.oldest()
                if oldest is not None and before(oldest) < floor:
                    lower = max(before(oldest), resumeAfter)
                    useStore = True
                if useStore:
                    stored = yield store.count(lower, floor, maxReplay + 1)
            except Exception as e:
                log.warn(
                    "Cannot read the event history for WebSocket client {peer}'s resume: {error}",
                    peer=replay.session.peer,
                    error=errorText(e),
                )
                raise Refused(
                    messages.HISTORY_UNAVAILABLE,
                    "the stored history cannot be read right now ({}); retry later".format(type(e).__name__),
                ) from None
        if resumeAfter < lower:
            gap = gapOf(resumeAfter, lower)
        start = lower
    if replay.cancelled:
        return None
    total = stored + window.countAfter(max(start, window.floor))
    if total > maxReplay:
        raise Refused(
            messages.REPLAY_TOO_LARGE,
            "resuming after {} needs more than max_replay ({}) events replayed; resume from "
            "a later position, or register without resume_after".format(resumeAfter, maxReplay),
            "resume_after",
        )
    return Plan(start, gap, useStore)


def errorText(error):
    """
    An exception as one short line for logs.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]
