"""
The PostgreSQL schema of the event store, as numbered migrations.

Every table is named after the configured events table (default ``stellar_events``):

- ``<table>``: one row per event, keyed by the RPC event ``id`` (since version 2 with the whole
  message as JSON text, so that it can be replayed exactly);
- ``<table>_checkpoints``: the pipeline cursor, written in the same transaction as the events;
- ``<table>_rejected``: events PostgreSQL refused (dead letters), with the error and the raw
  message as escaped text.

``stellarflow_migrations`` records which migrations have been applied to which events table.
L{migrate} runs on every (re)connect: under a transaction-scoped advisory lock, so two daemons
starting together do not race, it applies the missing migrations in order.  A later release
appends a L{Migration} to L{MIGRATIONS}; it is never allowed to edit an applied one.
"""

import zlib

import attr
from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

log = Logger()

MIGRATIONS_TABLE = "stellarflow_migrations"


def quoteIdent(name):
    """
    A PostgreSQL identifier, quoted (names are validated by the config, quoting is belt and braces).
    """
    return '"' + name.replace('"', '""') + '"'


@attr.s(frozen=True)
class TableNames:
    """
    The quoted, schema-qualified names of one event store.

    @ivar table: the events table's bare name (the key in the migrations table).
    @ivar schema: the schema's bare name, or C{None} for the connection's search_path.
    """

    table = attr.ib()
    schema = attr.ib(default=None)

    def qualified(self, name):
        if self.schema:
            return quoteIdent(self.schema) + "." + quoteIdent(name)
        return quoteIdent(name)

    @property
    def events(self):
        return self.qualified(self.table)

    @property
    def checkpoints(self):
        return self.qualified(self.table + "_checkpoints")

    @property
    def rejected(self):
        return self.qualified(self.table + "_rejected")

    @property
    def migrations(self):
        return self.qualified(MIGRATIONS_TABLE)

    @property
    def payments(self):
        return self.qualified(self.table + "_payments")

    @property
    def trades(self):
        return self.qualified(self.table + "_trades")

    def message(self, table):
        """
        The name of the table of a L{stellarflow.postgres.rows.Table} (events, payments,
        trades).
        """
        return self.qualified(self.table + table.suffix)

    def index(self, suffix):
        """
        An index name (indexes live in their table's schema, so it is not qualified).
        """
        return quoteIdent(self.table + "_" + suffix)

    def substitutions(self):
        return {
            "events": self.events,
            "checkpoints": self.checkpoints,
            "rejected": self.rejected,
            "ledger_idx": self.index("ledger_idx"),
            "contract_idx": self.index("contract_idx"),
            "accounts_idx": self.index("accounts_idx"),
            "asset_time_idx": self.index("asset_time_idx"),
            "time_idx": self.index("time_idx"),
            "old_accounts_idx": self.qualified(self.table + "_accounts_idx"),
            "involved_idx": self.index("involved_idx"),
            "assets_idx": self.index("assets_idx"),
            "payments": self.payments,
            "payments_involved_idx": self.index("payments_involved_idx"),
            "payments_assets_idx": self.index("payments_assets_idx"),
            "payments_time_idx": self.index("payments_time_idx"),
            "trades": self.trades,
            "trades_involved_idx": self.index("trades_involved_idx"),
            "trades_assets_idx": self.index("trades_assets_idx"),
            "trades_time_idx": self.index("trades_time_idx"),
        }

    @property
    def lockKey(self):
        """
        The advisory lock serialising migrations of this store (a signed 32-bit number).
        """
        key = zlib.crc32("stellarflow:{}.{}".format(self.schema or "", self.table).encode("utf-8"))
        return key - (1 << 32) if key >= (1 << 31) else key


@attr.s(frozen=True)
class Migration:
    """
    One schema step: SQL statements whose ``{events}``-style placeholders are table names.
    """

    version = attr.ib()
    description = attr.ib()
    statements = attr.ib(converter=tuple)

    def sql(self, names):
        subs = names.substitutions()
        return [s.format(**subs) for s in self.statements]


MIGRATIONS = [
    Migration(
        1,
        "events, checkpoints and rejected events",
        [
            """
            CREATE TABLE IF NOT EXISTS {events} (
                id text PRIMARY KEY,
                ledger bigint,
                ledger_closed_at timestamptz,
                transaction_hash text,
                contract_id text,
                operation_index integer,
                transaction_index integer,
                in_successful_contract_call boolean,
                event_kind text,
                type text,
                event_type text,
                topics jsonb,
                data jsonb,
                account_ids text[],
                from_account text,
                to_account text,
                asset_code text,
                asset_issuer text,
                amount numeric,
                amount_raw numeric,
                asset_verified boolean,
                to_muxed_id text,
                decode_error text,
                extra jsonb,
                inserted_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX IF NOT EXISTS {ledger_idx} ON {events} (ledger)",
            "CREATE INDEX IF NOT EXISTS {contract_idx} ON {events} (contract_id, ledger)",
            "CREATE INDEX IF NOT EXISTS {accounts_idx} ON {events} USING gin (account_ids)",
            "CREATE INDEX IF NOT EXISTS {asset_time_idx} ON {events} (asset_code, asset_issuer, ledger_closed_at)",
            "CREATE INDEX IF NOT EXISTS {time_idx} ON {events} (ledger_closed_at)",
            """
            CREATE TABLE IF NOT EXISTS {checkpoints} (
                pipeline text PRIMARY KEY,
                cursor text,
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS {rejected} (
                id text PRIMARY KEY,
                pipeline text,
                error text NOT NULL,
                message text NOT NULL,
                rejected_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ],
    ),
    Migration(
        2,
        "full message text, for replaying events exactly as they were streamed",
        [
            # Nullable, no default: adding it rewrites nothing. Rows written before it stay NULL
            # and are rebuilt from their columns when replayed (see stellarflow.postgres.history).
            "ALTER TABLE {events} ADD COLUMN IF NOT EXISTS message text",
        ],
    ),
    Migration(
        3,
        "filter columns; typed tables for payments and trades",
        [
            # Nullable, no default: adding them rewrites nothing.  Rows written before version 3
            # keep NULL (docs/postgresql.md says how to fill them); `accounts` holds everything
            # `account_ids` did, so its GIN index replaces the old one.
            "ALTER TABLE {events} ADD COLUMN IF NOT EXISTS accounts text[], "
            "ADD COLUMN IF NOT EXISTS two_party boolean, ADD COLUMN IF NOT EXISTS assets text[]",
            "DROP INDEX IF EXISTS {old_accounts_idx}",
            "CREATE INDEX IF NOT EXISTS {involved_idx} ON {events} USING gin (accounts)",
            "CREATE INDEX IF NOT EXISTS {assets_idx} ON {events} USING gin (assets)",
            """
            CREATE TABLE IF NOT EXISTS {payments} (
                id text PRIMARY KEY,
                ledger bigint,
                ledger_closed_at timestamptz,
                transaction_hash text,
                transaction_index integer,
                operation_index integer,
                operation_type text,
                type text,
                memo_type text,
                memo text,
                from_account text,
                from_muxed text,
                from_muxed_id text,
                to_account text,
                to_muxed text,
                to_muxed_id text,
                asset_code text,
                asset_issuer text,
                amount numeric,
                source_asset_code text,
                source_asset_issuer text,
                source_amount numeric,
                contract_id text,
                event_type text,
                accounts text[],
                assets text[],
                extra jsonb,
                message text,
                inserted_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX IF NOT EXISTS {payments_involved_idx} ON {payments} USING gin (accounts)",
            "CREATE INDEX IF NOT EXISTS {payments_assets_idx} ON {payments} USING gin (assets)",
            "CREATE INDEX IF NOT EXISTS {payments_time_idx} ON {payments} (ledger_closed_at)",
            """
            CREATE TABLE IF NOT EXISTS {trades} (
                id text PRIMARY KEY,
                ledger bigint,
                ledger_closed_at timestamptz,
                transaction_hash text,
                transaction_index integer,
                operation_index integer,
                operation_type text,
                type text,
                memo_type text,
                memo text,
                trade_type text,
                seller text,
                liquidity_pool_id text,
                offer_id bigint,
                buyer text,
                buyer_offer_id bigint,
                sold_asset_code text,
                sold_asset_issuer text,
                sold_amount numeric,
                bought_asset_code text,
                bought_asset_issuer text,
                bought_amount numeric,
                price jsonb,
                accounts text[],
                assets text[],
                extra jsonb,
                message text,
                inserted_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX IF NOT EXISTS {trades_involved_idx} ON {trades} USING gin (accounts)",
            "CREATE INDEX IF NOT EXISTS {trades_assets_idx} ON {trades} USING gin (assets)",
            "CREATE INDEX IF NOT EXISTS {trades_time_idx} ON {trades} (ledger_closed_at)",
        ],
    ),
]


def latestVersion(migrations=MIGRATIONS):
    return max(m.version for m in migrations)


@inlineCallbacks
def migrate(cursor, names, migrations=MIGRATIONS):
    """
    Bring the store named by C{names} up to date, inside the caller's transaction.

    @param cursor: a txpostgres cursor in an open transaction.
    @return: a Deferred firing with the versions applied now (empty when up to date).
    """
    yield cursor.execute("SELECT pg_advisory_xact_lock(%s)", (names.lockKey,))
    if names.schema:
        yield cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (names.schema,))
        if not cursor.fetchall():
            yield cursor.execute("CREATE SCHEMA IF NOT EXISTS " + quoteIdent(names.schema))
    yield cursor.execute(
        "CREATE TABLE IF NOT EXISTS {} ("
        " target text NOT NULL,"
        " version integer NOT NULL,"
        " description text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (target, version))".format(names.migrations)
    )
    yield cursor.execute("SELECT version FROM {} WHERE target = %s".format(names.migrations), (names.table,))
    done = {row[0] for row in cursor.fetchall()}
    known = latestVersion(migrations)
    if done and max(done) > known:
        log.warn(
            "Table {table} is at schema version {found}, newer than this release knows ({known})",
            table=names.events,
            found=max(done),
            known=known,
        )
    applied = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in migration.sql(names):
            yield cursor.execute(statement)
        yield cursor.execute(
            "INSERT INTO {} (target, version, description) VALUES (%s, %s, %s)".format(names.migrations),
            (names.table, migration.version, migration.description),
        )
        applied.append(migration.version)
    return applied
