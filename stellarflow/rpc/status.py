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
            "request_seconds_total": self.requestSeconds,
            "events_total": self.eventsDelivered,
            "gaps_total": len(self.gaps),
            "latest_ledger": self.latestLedger,
            "lag_ledgers": self.lagLedgers,
            "polling": self.polling,
            "last_success_timestamp_seconds": self.lastSuccessTime,
            "seconds_since_success": self.secondsSinceSuccess,
            "health_timeout_seconds": self.healthTimeout,
            "last_error": self.lastError,
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
        since = self.lastSuccessTime if self.lastSuccessTime is not None else self.startedAt
        if since is None or not self.polling:
            return None
        return self.clock.seconds() - since

    @property
    def lagLedgers(self):
        """
        How many ledgers the source is behind the RPC's latest, or C{None} when unknown.
        """
        if self.latestLedger is None:
            return None
        position = positions.ledgerOf(self.cursor)
        if position is None:
            if self._startLedger is None:
                return None
            position = self._startLedger - 1
        return max(0, self.latestLedger - position)

