"""
The RPC source's failure policy: what a failed poll means (``docs/source.md``, "Failure policy").

L{FailurePolicy.decide} turns a failure into one of three outcomes and logs it; the source
carries it out: L{Retry} after a delay (capped, jittered backoff, lengthened by a
``Retry-After``), L{SkipGap} (ledgers fell out of the RPC's retention and C{on_gap} is
``skip``: record the gap, go on from the oldest kept ledger at once) or L{Stop} (rejected
parameters, or a gap with C{on_gap} ``stop``: stop polling, loudly, once).

Retries are cheap for the server when it is unreachable, times out or fails outright, and the
live stream is waiting: those delays are capped at L{RETRY_CAP} seconds, so delivery resumes
within seconds of the server coming back.  When the server says it is overloaded (-32001
processing limit, -32098 queue full, HTTP 429, a ``Retry-After``), retrying sooner costs it
more: the backoff grows to its maximum (60 s by default), and a ``Retry-After`` is honoured.
"""

import attr

from stellarflow.rpc.errors import (
    HTTPError,
    InvalidParams,
    LedgerRangeError,
    ProcessingLimit,
    QueueFull,
    RPCClientError,
)

#: The longest wait a C{Retry-After} header can impose, in seconds.
MAX_RETRY_AFTER = 600.0
#: The longest wait after a failure that costs the server nothing to retry, in seconds.
RETRY_CAP = 5.0


def overloaded(error):
    """
    Whether C{error} says the server is overloaded (retrying soon would cost it more).
    """
    if isinstance(error, (ProcessingLimit, QueueFull)):
        return True
    return getattr(error, "retryAfter", None) is not None or (isinstance(error, HTTPError) and error.status == 429)


class DeliveryFailed(Exception):
    """
    The pipeline refused a batch (a processor raised); the page is fetched again later.

    @ivar failure: the pipeline's L{Failure}.
    """

    def __init__(self, failure):
        Exception.__init__(self, failure.getErrorMessage())
        self.failure = failure


@attr.s(frozen=True)
class Retry:
    """
    Poll again after C{delay} seconds.
    """

    delay = attr.ib()


@attr.s(frozen=True)
class SkipGap:
    """
    Ledgers C{first} to C{last} are lost: poll again at once, from ledger C{last + 1}.
    """

    first = attr.ib()
    last = attr.ib()


@attr.s(frozen=True)
class Stop:
    """
    Stop polling for good, for C{reason}; C{gap} is the C{(first, last)} range of lost ledgers
    that caused it, if any.
    """

    reason = attr.ib()
    gap = attr.ib(default=None)


class FailurePolicy:
    """
    Decides, and logs, what a failed poll means.

    @param endpoint: the RPC endpoint as logs may show it (C{scheme://host[:port]}).
    @param onGap: C{"skip"} or C{"stop"}: what to do about ledgers no longer kept.
    @param backoff: the source's L{stellarflow.backoff.Backoff}; each retry takes its next delay.
    @param log: the source's L{Logger}, so that these events carry the source's namespace.
    @param method: the RPC method polled, for messages.
    """

    def __init__(self, endpoint, onGap, backoff, log, method="getEvents"):
        self.endpoint = endpoint
        self.onGap = onGap
        self.backoff = backoff
        self.log = log
        self.method = method

    def decide(self, failure, requested, cursor):
        """
        The outcome of C{failure}.

        @param requested: the ledger the failed request asked for (its cursor's, else its start
            ledger), or C{None}.
        @param cursor: the last delivered cursor, for the log.
        @return: a L{Retry}, L{SkipGap} or L{Stop}.
        """
        error = failure.value
        if isinstance(error, InvalidParams):
            return Stop(
                "the RPC rejected the {} parameters (JSON-RPC {}): {}; fix the source "
                "config (filters, pagination, start_ledger)".format(self.method, error.code, error.message)
            )
        if isinstance(error, LedgerRangeError):
            return self._rangeError(error, requested)

        delay = self.backoff.next(cap=None if overloaded(error) else RETRY_CAP)
        if isinstance(error, DeliveryFailed):
            self.log.failure(
                "The pipeline failed on a page (cursor {cursor}); fetching it again in {delay:.1f}s",
                error.failure,
                cursor=cursor,
                delay=delay,
            )
        elif isinstance(error, RPCClientError):
            retryAfter = getattr(error, "retryAfter", None)
            if retryAfter is not None:
                delay = max(delay, min(retryAfter, MAX_RETRY_AFTER))
            self.log.warn(
                "{method} poll of {endpoint} failed ({kind}: {error}); retrying in {delay:.1f}s "
                "(attempt {attempt})",
                method=self.method,
                endpoint=self.endpoint,
                kind=error.kind,
                error=str(error),
                delay=delay,
                attempt=self.backoff.failures,
            )
        else:
            self.log.failure(
                "Unexpected error polling {endpoint}; retrying in {delay:.1f}s",
                failure,
                endpoint=self.endpoint,
                delay=delay,
            )
        return Retry(delay)

    def chainBreak(self, first, last, detail):
        """
        The chain the source follows broke (ledgers missing, or a ledger that does not follow
        the hash of the one before: a provider that switched history): ledgers C{first} to
        C{last} are lost or in doubt.  Logged with the exact ledgers; C{on_gap} decides.

        @param detail: what was found, for the log.
        @return: L{SkipGap} (go on with the chain as now served) or L{Stop}.
        """
        if self.onGap == "stop":
            self.log.critical(
                "GAP: the ledger chain from {endpoint} breaks at ledgers {first}-{last}: {detail}; on_gap is 'stop'",
                endpoint=self.endpoint,
                first=first,
                last=last,
                detail=detail,
            )
            return Stop(
                "the ledger chain breaks at ledgers {}-{} ({}); set on_gap: skip to go on with the chain as the RPC "
                "serves it now".format(first, last, detail),
                gap=(first, last),
            )
        self.log.warn(
            "GAP: the ledger chain from {endpoint} breaks at ledgers {first}-{last}: {detail}; what this pipeline "
            "delivered for them may be LOST or not on the chain. Continuing with the chain as served.",
            endpoint=self.endpoint,
            first=first,
            last=last,
            detail=detail,
        )
        return SkipGap(first, last)

    def _rangeError(self, error, requested):
        """
        ``startLedger must be within the ledger range: A - B``: a gap when the requested ledger
        is below A; otherwise (ahead of a lagging node, or the window moved) retry.
        """
        if requested is not None and requested < error.oldest:
            first, last = requested, error.oldest - 1
            if self.onGap == "stop":
                self.log.critical(
                    "GAP: ledgers {first}-{last} are no longer kept by {endpoint} (it has "
                    "{oldest}-{latest}); on_gap is 'stop'",
                    first=first,
                    last=last,
                    endpoint=self.endpoint,
                    oldest=error.oldest,
                    latest=error.latest,
                )
                return Stop(
                    "ledgers {}-{} fell out of the RPC's retention (it has {}-{}); set on_gap: "
                    "skip, or a start_ledger >= {} and remove the checkpoint".format(
                        first, last, error.oldest, error.latest, error.oldest
                    ),
                    gap=(first, last),
                )
            self.log.warn(
                "GAP: ledgers {first}-{last} are no longer kept by {endpoint} (it has "
                "{oldest}-{latest}); their events are LOST to this pipeline. Continuing from "
                "ledger {oldest}.",
                first=first,
                last=last,
                endpoint=self.endpoint,
                oldest=error.oldest,
                latest=error.latest,
            )
            return SkipGap(first, last)
        delay = self.backoff.next(cap=RETRY_CAP)
        if requested is not None and requested > error.latest:
            self.log.warn(
                "Ledger {requested} is ahead of {endpoint} (latest {latest}); retrying in {delay:.1f}s",
                requested=requested,
                endpoint=self.endpoint,
                latest=error.latest,
                delay=delay,
            )
        else:
            self.log.warn(
                "{endpoint} answered {error}; retrying in {delay:.1f}s",
                endpoint=self.endpoint,
                error=str(error),
                delay=delay,
            )
        return Retry(delay)
