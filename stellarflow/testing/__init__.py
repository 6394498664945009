"""
Public helpers for testing stellarflow and pipelines built on it.
"""
