"""stellarflow's tests (run with trial)."""
