"""
stellarflow's tests (run with trial).

Hypothesis runs without its per-example deadline: these machines are shared and noisy, and a
slow example is not a failure (speed is measured in benchmarks/, never asserted here).
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "stellarflow",
    parent=settings.default,  # "ci" (derandomized) when hypothesis detects CI, else "default"
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("stellarflow")
