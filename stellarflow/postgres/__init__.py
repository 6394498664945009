"""
PostgreSQL output: the ``SaveToPostgreSQL`` consumer, which also stores the pipeline checkpoint.

See ``docs/postgresql.md`` for the tables, the config keys and example queries.
"""

from stellarflow.postgres.consumer import SaveToPostgreSQL

__all__ = ["SaveToPostgreSQL"]
