"""
Exponential backoff with jitter, capped, reset on success.
"""

import random as _random


class Backoff:
    """
    Delays for successive retries: C{initial * factor ** n}, capped at C{maximum}, each with
    "full jitter" on its upper half (a delay lies in C{[d/2, d]}) so many clients that failed
    together do not retry together.

    @param rand: a C{random.Random}-like object (tests pass a seeded one).
    """

    def __init__(self, initial=1.0, maximum=60.0, factor=2.0, jitter=True, rand=None):
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.random = rand or _random.Random()
        self.failures = 0

    def next(self, cap=None):
        """
        Record one more failure and return how long to wait before the next try: at most
        C{cap} seconds when given (before the jitter, so capped delays still spread out).
        """
        delay = min(self.maximum, self.initial * self.factor ** self.failures)
        if cap is not None:
            delay = min(delay, cap)
        self.failures += 1
        if self.jitter:
            delay = delay / 2 + self.random.random() * delay / 2
        return delay

    def reset(self):
        """
        A success: the next failure starts from C{initial} again.
        """
        self.failures = 0
