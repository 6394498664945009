"""
Tests for L{stellarflow.postgres.schema} against a real PostgreSQL (see
L{stellarflow.postgres.testing} for the server used and the skip rule).
"""

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from stellarflow.postgres.rows import TABLES
from stellarflow.postgres.schema import MIGRATIONS, Migration, TableNames, latestVersion, migrate
from stellarflow.postgres.testing import TemporarySchema, connect

#: Every version this release applies to a new table.
ALL = sorted(m.version for m in MIGRATIONS)


def migrateNow(names, migrations=MIGRATIONS):
    """
    Run L{migrate} in one transaction of a blocking connection (its cursor's execute returns
    None, which inlineCallbacks passes straight back) and return the applied versions.
    """
    conn = connect()
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            d = migrate(cur, names, migrations)
        conn.commit()
    finally:
        conn.close()
    result = []
    d.addCallback(result.append)
    return result[0]


class MigrateTests(TestCase):
    timeout = 20

    def setUp(self):
        self.db = TemporarySchema(self)
        self.names = TableNames("stellar_events", self.db.name)

    def tables(self):
        rows = self.db.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.db.name,))
        return sorted(r[0] for r in rows)

    def test_createsTablesAndIndexes(self):
        self.assertEqual(migrateNow(self.names), ALL)
        self.assertEqual(
            self.tables(),
            [
                "stellar_events",
                "stellar_events_checkpoints",
                "stellar_events_payments",
                "stellar_events_rejected",
                "stellar_events_trades",
                "stellarflow_migrations",
            ],
        )
        indexes = {
            r[0]: r[1]
            for r in self.db.query(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'stellar_events'",
                (self.db.name,),
            )
        }
        self.assertNotIn("stellar_events_accounts_idx", indexes)  # replaced in version 3
        self.assertIn("gin (accounts)", indexes["stellar_events_involved_idx"])
        self.assertIn("gin (assets)", indexes["stellar_events_assets_idx"])
        self.assertIn("(asset_code, asset_issuer, ledger_closed_at)", indexes["stellar_events_asset_time_idx"])
        self.assertIn("(ledger)", indexes["stellar_events_ledger_idx"])
        self.assertIn("(contract_id, ledger)", indexes["stellar_events_contract_idx"])
        types = dict(
            self.db.query(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'stellar_events'",
                (self.db.name,),
            )
        )
        self.assertEqual(types["amount"], "numeric")
        self.assertEqual(types["topics"], "jsonb")
        self.assertEqual(types["account_ids"], "ARRAY")
        self.assertEqual(types["ledger_closed_at"], "timestamp with time zone")
        self.assertEqual(types["message"], "text")
        self.assertEqual(types["accounts"], "ARRAY")
        self.assertEqual(types["two_party"], "boolean")
        for table in ("stellar_events_payments", "stellar_events_trades"):
            indexes = self.db.query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s", (self.db.name, table)
            )
            definitions = " ".join(r[0] for r in indexes)
            for fragment in ("(id)", "gin (accounts)", "gin (assets)", "(ledger_closed_at)"):
                self.assertIn(fragment, definitions)

    def test_everyColumnWritten(self):
        """
        Each message table has exactly the columns its rows are written with (and
        ``inserted_at``): a migration and L{stellarflow.postgres.rows} agree.
        """
        migrateNow(self.names)
        for table in TABLES:
            columns = self.db.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                (self.db.name, "stellar_events" + table.suffix),
            )
            self.assertEqual(
                sorted(r[0] for r in columns), sorted([name for name, _, _ in table.columns] + ["inserted_at"])
            )

    def test_twice(self):
        """
        A second run changes nothing and records each version once.
        """
        migrateNow(self.names)
        self.assertEqual(migrateNow(self.names), [])
        self.assertEqual(
            self.db.query("SELECT target, version FROM {schema}.stellarflow_migrations ORDER BY version"),
            [("stellar_events", v) for v in ALL],
        )

    def test_fromVersionOne(self):
        """
        A table created by the first release gets the later migrations only, keeping its rows.
        """
        self.assertEqual(migrateNow(self.names, MIGRATIONS[:1]), [1])
        self.db.query("INSERT INTO {schema}.stellar_events (id) VALUES ('x') RETURNING id")
        self.assertEqual(migrateNow(self.names), ALL[1:])
        self.assertEqual(self.db.query("SELECT id, message FROM {schema}.stellar_events"), [("x", None)])

    def test_laterMigration(self):
        """
        A migration appended by a later release is applied once, on top of the existing tables.
        """
        migrateNow(self.names)
        self.db.query("INSERT INTO {schema}.stellar_events (id) VALUES ('x') RETURNING id")
        nextVersion = latestVersion() + 1
        later = MIGRATIONS + [Migration(nextVersion, "add note", ["ALTER TABLE {events} ADD COLUMN note text"])]
        self.assertEqual(latestVersion(later), nextVersion)
        self.assertEqual(migrateNow(self.names, later), [nextVersion])
        self.assertEqual(migrateNow(self.names, later), [])
        self.assertEqual(self.db.query("SELECT id, note FROM {schema}.stellar_events"), [("x", None)])
        self.assertEqual(
            self.db.query("SELECT version FROM {schema}.stellarflow_migrations ORDER BY version"),
            [(v,) for v in ALL + [nextVersion]],
        )

    def test_twoTablesOneSchema(self):
        """
        Each events table has its own migration record.
        """
        migrateNow(self.names)
        self.assertEqual(migrateNow(TableNames("other_events", self.db.name)), ALL)
        self.assertIn("other_events_checkpoints", self.tables())

    def test_createsMissingSchema(self):
        names = TableNames("stellar_events", self.db.name + "_new")
        self.addCleanup(self.db.execute, "DROP SCHEMA IF EXISTS {} CASCADE".format(names.schema))
        self.assertEqual(migrateNow(names), ALL)
        self.assertEqual(self.db.query("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (names.schema,)), [(6,)])

    def test_consumersMigrateConcurrently(self):
        """
        Two consumers connecting at once (two daemons) both end up ready, schema created once.
        """
        first = self.db.consumer(reactor)
        second = self.db.consumer(reactor)
        for c in (first, second):
            self.addCleanup(c.stop)
        first.start()
        second.start()
        d = first.load("test")
        d.addCallback(lambda _: second.load("test"))

        def check(cursor):
            self.assertIsNone(cursor)
            self.assertEqual(self.db.query("SELECT count(*) FROM {schema}.stellarflow_migrations"), [(len(ALL),)])

        return d.addCallback(check)
