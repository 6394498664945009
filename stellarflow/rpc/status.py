"""
What the RPC source reports about itself: counters for ``/metrics``, health for ``/healthz``,
and the network it follows (recorded with each checkpoint).
"""

from stellarflow import positions
from stellarflow.events.network import networkPassphrase


class SourceStatus:
    """
    The reporting side of L{stellarflow.rpc.source.RPCSourceAdapter}, which keeps the
    attributes read here up to date.
    """

    def stats(self):
        """
        Counters for /metrics and /healthz.
        """
        return {
            "requests_total": self.requests,
            "request_errors_total": self.errors,
            "request_seconds_total": self.request_seconds,
            "events_total": self.events_delivered,
            "gaps_total": len(self.gaps),
            "latest_ledger": self.latest_ledger,
            "lag_ledgers": self.lag_ledgers,
            "polling": self.polling,
            "last_success_timestamp_seconds": self.last_success_time,
            "seconds_since_success": self.secondsSinceSuccess,
            "health_timeout_seconds": self.healthTimeout,
            "last_error": self.last_error,
        }

    @property
    def network(self):
        """
        The passphrase of the network the source follows: the server's, once C{getNetwork}
        answered, else the configured one (C{None} when neither is known).
        """
        if self.servedNetwork is not None:
            return self.servedNetwork
        return networkPassphrase(self.configuredNetwork) if self.configuredNetwork else None

    @property
    def secondsSinceSuccess(self):
        """
        Seconds since the last successful answer (since the start before the first), or C{None}
        when not polling.
        """
        since = self.last_success_time if self.last_success_time is not None else self.startedAt
        if since is None or not self.polling:
            return None
        return self.clock.seconds() - since

    @property
    def lag_ledgers(self):
        """
        How many ledgers the source is behind the RPC's latest, or C{None} when unknown.
        """
        if self.latest_ledger is None:
            return None
        position = positions.ledgerOf(self.cursor)
        if position is None:
            if self._startLedger is None:
                return None
            position = self._startLedger - 1
        return max(0, self.latest_ledger - position)

