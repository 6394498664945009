"""
Which ledgers a test Stellar RPC node has, and when each closed, on an injected clock.

No timers: the latest ledger is computed from C{clock.seconds()}, so a C{Clock} in tests (or
the reactor when run standalone) drives it, and close times never change once a ledger exists.
"""

import bisect
import math

DEFAULT_RETENTION = 120960
DEFAULT_FIRST_LEDGER = 1000
DEFAULT_CLOSE_TIME = 5.0


class LedgerModel:
    """
    Which ledgers exist: a clock-driven sequence plus manual jumps.

    Ledger C{first_ledger + history} is the latest when the model is created; a new ledger
    closes every C{close_time} seconds of C{clock}.  L{advance} closes C{n} ledgers now;
    time-driven closing continues from there.  L{reset} models a node that lost its history:
    C{n} ledgers close now and the oldest ledger becomes the latest.
    """

    def __init__(self, clock, first_ledger=DEFAULT_FIRST_LEDGER, close_time=DEFAULT_CLOSE_TIME,
                 retention=DEFAULT_RETENTION, history=0):
        if close_time <= 0:
            raise ValueError("ledger close time must be > 0, got %r" % (close_time,))
        if retention < 1:
            raise ValueError("retention must be >= 1 ledger, got %r" % (retention,))
        if first_ledger < 1 or history < 0:
            raise ValueError("first_ledger must be >= 1 and history >= 0")
        self.clock = clock
        self.close_time_seconds = float(close_time)
        self.retention = retention
        self.first_ledger = first_ledger
        genesis = clock.seconds() - history * self.close_time_seconds
        self._anchor_ledgers = [first_ledger]
        self._anchor_times = [genesis]
        self._floor = first_ledger

    @property
    def latest(self):
        elapsed = self.clock.seconds() - self._anchor_times[-1]
        return self._anchor_ledgers[-1] + max(0, int(math.floor(elapsed / self.close_time_seconds + 1e-9)))

    @property
    def oldest(self):
        return max(self._floor, self.latest - self.retention + 1)

    def closeTime(self, ledger):
        """
        Unix seconds (an int) at which C{ledger} closed.
        """
        i = max(0, bisect.bisect_right(self._anchor_ledgers, ledger) - 1)
        t = self._anchor_times[i] + (ledger - self._anchor_ledgers[i]) * self.close_time_seconds
        if i + 1 < len(self._anchor_times):
            t = min(t, self._anchor_times[i + 1])
        return int(math.floor(t + 1e-9))

    def advance(self, n):
        """
        Close C{n} ledgers now.
        """
        if n < 1:
            raise ValueError("advance needs n >= 1, got %r" % (n,))
        self._anchor_ledgers.append(self.latest + n)
        self._anchor_times.append(self.clock.seconds())

    def reset(self, n):
        """
        The node lost its history: C{n} ledgers close now and the oldest becomes the latest.
        """
        self.advance(n)
        self._floor = self.latest
