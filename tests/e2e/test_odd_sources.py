"""End to end, sources that are not what a replica expects: tables of engines without
consistent snapshots (MyISAM, Aria) written to while they are copied; rows discarded from the
change stream (zero dates) that are deleted or repaired right after, while replay has the table
cached; column types changed on the source outside the binlog, then refresh_schema or
sync_tables; a row too large for a PostgreSQL index arriving through the binlog. Every table
is compared with the source value for value."""
import os
import random
import time

import oracle
import workload
import psycopg
import pytest
from test_replication import _start_with, _wait_states, init, wait_for

ROWS = 150_000


class _Writes(workload.Background):
    """Inserts, updates and deletes on `tables` (each `id INT PRIMARY KEY, v INT, pad`), one
    autocommitted statement at a time, while the `with` block runs."""

    def __init__(self, ctx, tables, first_id):
        super().__init__(ctx)
        self.tables, self.next_id, self.rounds = tables, first_id, 0

    def run(self):
        rnd = random.Random(self.next_id)
        try:
            conn = self.ctx.servers.mariadb.root(db=self.ctx.my_schema)
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    i = self.next_id
                    for t in self.tables:
                        cur.execute(f"INSERT INTO {t} VALUES ({i}, {i}, 'new')")
                        cur.execute(f"UPDATE {t} SET v = v + 1, pad = 'updated' WHERE id = {rnd.randint(1, i)}")
                        cur.execute(f"DELETE FROM {t} WHERE id = {rnd.randint(1, i)}")
                    self.next_id += 1
                    self.rounds += 1
                    time.sleep(0.002)
            conn.close()
        except Exception as e:  # reported by the test
            self.errors.append(e)


def _non_transactional_tables(ctx):
    ctx.my_exec(f"GRANT LOCK TABLES ON `{ctx.my_schema}`.* TO 'chameleon'@'%'")
    for name, engine in [("plain_isam", "MyISAM"), ("crash_safe_aria", "Aria")]:
        ctx.my_exec(f"CREATE TABLE {name} (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100)) ENGINE={engine}",
                    f"INSERT INTO {name} SELECT seq, seq, REPEAT('p', 100) FROM seq_1_to_{ROWS}")
    return ["plain_isam", "crash_safe_aria"]


def test_myisam_and_aria_tables_written_during_the_initial_copy_are_copied_once(ctx):
    """Rows written to a MyISAM or Aria table while the copy runs are neither copied and then
    replayed again, nor lost: each such table is read under LOCK TABLES ... READ at a
    consistent point of its own."""
    tables = _non_transactional_tables(ctx)
    # one copy worker: the second table is read well after the snapshot's point
    ctx.add_source(options='{"copy_workers": 1}')
    with _Writes(ctx, tables, ROWS + 1) as w:
        time.sleep(0.5)
        init(ctx)
        time.sleep(0.5)
    assert not w.errors, w.errors
    assert w.rounds > 0
    points = dict(ctx.sql("SELECT mysql_table, consistent_point FROM chameleon.tables"))
    log = ctx.servers.postgres.log_tail(400)
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    for t in tables + ["customers", "orders"]:
        oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, t)
    # each has a point of its own, read under its lock: the second one (copied after the
    # first, the writes going on) after the snapshot the transactional tables share
    shared = points[f"{ctx.my_schema}.customers"]
    assert any(points[f"{ctx.my_schema}.{t}"] != shared for t in tables), points
    assert "(engine MyISAM, no consistent snapshot) under LOCK TABLES" in log
    assert "(engine Aria, no consistent snapshot) under LOCK TABLES" in log
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_myisam_and_aria_tables_written_during_sync_tables_are_copied_once(ctx):
    """The same while the source replicates: sync_tables copies them again under load, each
    at a new point of its own, and the catch-up applies exactly the changes after it."""
    tables = _non_transactional_tables(ctx)
    _start_with(ctx, '{"copy_workers": 1}')
    names = [f"{ctx.my_schema}.{t}" for t in tables]
    with _Writes(ctx, tables, 10 * ROWS) as w:
        time.sleep(0.5)
        assert sorted(ctx.one("SELECT chameleon.sync_tables('src', %s)", (names,))) == sorted(names)
        time.sleep(0.5)
        _wait_states(ctx, {n: "replicating" for n in names})
        time.sleep(0.5)
    assert not w.errors, w.errors
    wait_for(ctx)
    for t in tables:
        oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, t)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0


def test_a_myisam_table_the_user_may_not_lock_is_refused_with_the_privilege_named(ctx):
    ctx.my_exec("CREATE TABLE plain_isam (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
                "INSERT INTO plain_isam VALUES (1, 1)")
    ctx.add_source(options='{"copy_workers": 1}')
    with pytest.raises(psycopg.Error, match="plain_isam"):
        init(ctx)
    state, err = ctx.sql("SELECT state, last_error FROM chameleon.tables WHERE mysql_table LIKE '%.plain_isam'")[0]
    assert state == "failed", state
    assert "engine MyISAM has no consistent snapshot" in err and "LOCK TABLES" in err, err
    recorded = ctx.one("SELECT string_agg(message, ' | ') FROM chameleon.errors")
    assert "plain_isam" in recorded and "LOCK TABLES" in recorded, recorded


def test_a_discarded_row_deleted_or_repaired_right_after_never_stops_the_source(ctx):
    """Replay has each table cached (with no discarded row) when a zero date arrives through
    the binlog and is discarded; a delete or an update of that row follows, in the same source
    transaction, in the next one, or in a later batch. None is a divergence: the destination
    knowingly lacks the row, and an update that makes it storable brings it back."""
    tables = ["same_txn", "next_txn", "repaired", "later"]
    for t in tables:
        ctx.my_exec("SET SESSION sql_mode = ''",
                    f"CREATE TABLE {t} (id INT PRIMARY KEY, dn DATE NOT NULL, note VARCHAR(20))",
                    f"INSERT INTO {t} VALUES (1, '2024-01-01', 'a')")
    _start_with(ctx, '{"zero_dates": "null"}')
    # replay loads its table cache with every table clean
    ctx.my_exec(*[f"UPDATE {t} SET note = 'b' WHERE id = 1" for t in tables])
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0
    ctx.my_exec("SET SESSION sql_mode = ''",
                "BEGIN",
                "INSERT INTO same_txn VALUES (2, '0000-00-00', 'zero')",
                "DELETE FROM same_txn WHERE id = 2",
                "COMMIT",
                "INSERT INTO next_txn VALUES (2, '0000-00-00', 'zero')",
                "DELETE FROM next_txn WHERE id = 2",
                "INSERT INTO repaired VALUES (2, '0000-00-00', 'zero')",
                "UPDATE repaired SET dn = '2024-02-02', note = 'repaired' WHERE id = 2",
                "INSERT INTO later VALUES (2, '0000-00-00', 'zero')")
    time.sleep(1.5)  # the discard of `later` is stored in a batch of its own
    ctx.my_exec("UPDATE later SET note = 'still zero' WHERE id = 2", "DELETE FROM later WHERE id = 2",
                "UPDATE same_txn SET note = 'c' WHERE id = 1")
    wait_for(ctx)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    for t in tables:
        oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, t)
    assert ctx.one("SELECT dn::text FROM shop.repaired WHERE id = 2") == "2024-02-02"
    # every zero date is kept, with its reason
    assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") >= 4


def test_column_types_changed_outside_the_binlog_are_decoded_as_they_are_after_a_new_copy(ctx):
    """A column INT -> BIGINT and VARCHAR -> DATETIME changed on the source where DDL
    replication cannot see it (sql_log_bin = 0), then refresh_schema (the whole schema) or
    sync_tables (that table): the values written afterwards arrive as the source has them,
    decoded with the new types."""
    for t in ["widened", "retyped"]:
        ctx.my_exec(f"CREATE TABLE {t} (id INT PRIMARY KEY, n INT, s VARCHAR(30))",
                    f"INSERT INTO {t} VALUES (1, 1, '2024-01-02 03:04:05'), (2, 2, '2024-01-03 00:00:00')")
    _start_with(ctx, '{}')
    ctx.my_exec("UPDATE widened SET n = 10 WHERE id = 1", "UPDATE retyped SET n = 10 WHERE id = 1")
    wait_for(ctx)
    alter = ["SET SESSION sql_log_bin = 0", "ALTER TABLE {} MODIFY n BIGINT, MODIFY s DATETIME(3)",
             "SET SESSION sql_log_bin = 1"]

    ctx.my_exec(*[a.format("widened") for a in alter])
    ctx.one("SELECT chameleon.refresh_schema('src', %s)", (ctx.my_schema,))
    _wait_states(ctx, {f"{ctx.my_schema}.{t}": "replicating" for t in ["widened", "retyped", "customers"]})
    ctx.my_exec("INSERT INTO widened VALUES (3, 5000000000, '2025-06-07 08:09:10.123')",
                "UPDATE widened SET n = -6000000000, s = '1999-12-31 23:59:59.5' WHERE id = 1")
    wait_for(ctx)
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "widened")
    assert ctx.one("SELECT n FROM shop.widened WHERE id = 3") == 5_000_000_000

    ctx.my_exec(*[a.format("retyped") for a in alter])
    name = f"{ctx.my_schema}.retyped"
    assert ctx.one("SELECT chameleon.sync_tables('src', %s)", ([name],)) == [name]
    _wait_states(ctx, {name: "replicating"})
    ctx.my_exec("INSERT INTO retyped VALUES (3, 5000000000, '2025-06-07 08:09:10.123')",
                "UPDATE retyped SET n = -6000000000, s = '1999-12-31 23:59:59.5' WHERE id = 2")
    wait_for(ctx)
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "retyped")
    assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"


def test_a_row_too_large_for_a_postgresql_index_goes_to_discarded_rows_in_the_stream(ctx):
    """A btree index entry holds at most 2,704 bytes in PostgreSQL and 3,072 in InnoDB: a row
    whose indexed value lies between is written on the source but cannot be stored at the
    destination (SQLSTATE 54000). Arriving through the binlog it goes to discarded_rows with
    PostgreSQL's reason, as a row the copy refuses, and the source keeps running; an update
    that makes it storable brings it back, a delete of another is a no-op."""
    ctx.my_exec("CREATE TABLE blobs (id INT PRIMARY KEY, b VARBINARY(3000), KEY by_b (b))",
                "INSERT INTO blobs VALUES (1, 'small')")
    _start_with(ctx, '{}')
    with ctx.my.cursor() as cur:
        cur.execute(f"INSERT INTO `{ctx.my_schema}`.blobs VALUES (2, %s), (3, %s)",
                    (os.urandom(2900), os.urandom(2900)))
        cur.execute(f"INSERT INTO `{ctx.my_schema}`.blobs VALUES (4, 'fits')")
    wait_for(ctx)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    reasons = [r[0] for r in ctx.sql("SELECT reason FROM chameleon.discarded_rows ORDER BY discard_time")]
    assert len(reasons) == 2, reasons
    for r in reasons:
        assert r.startswith("PostgreSQL refused the row:") and "index row size" in r and "54000" in r, r
    assert ctx.one("SELECT rows_discarded FROM chameleon.tables WHERE mysql_table LIKE '%.blobs'") == 2
    assert [r[0] for r in ctx.sql("SELECT id FROM shop.blobs ORDER BY id")] == [1, 4]
    ctx.my_exec("UPDATE blobs SET b = 'small now' WHERE id = 2", "DELETE FROM blobs WHERE id = 3")
    wait_for(ctx)
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "blobs")
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
