"""End to end, the initial copy: parallel copy workers under one snapshot, live progress,
resumption after the copy is killed mid-table, consistent points without the global read
lock, and the catalogue upgrade from the previous version. The destination must equal the
source value for value after each scenario."""
import json
import os
import signal
import time

import psycopg
import pytest

import oracle
import workload
from test_replication import ALL, _Load, _reconnect, init, wait_for

BIG = {"big_a": 240_000, "big_b": 160_000, "big_c": 80_000}


def make_big_tables(ctx):
    for name, rows in BIG.items():
        ctx.my_exec(
            f"CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, pad CHAR(200) NOT NULL, KEY k_i (k))",
            f"INSERT INTO {name} SELECT seq, seq % 1000, CONCAT(seq, REPEAT('x', 150)) FROM seq_1_to_{rows}",
            f"ANALYZE TABLE {name}")


class Writer(_Load):
    """Writes on the source until stopped: shop transactions and updates of the big tables."""

    def __init__(self, ctx, seed):
        super().__init__(ctx, 30_000 + seed * 1000)
        self.seed = seed

    def run(self):
        conn = self.ctx.servers.mariadb.root()
        next_order = self.next_order
        i = 0
        while not self.stop.is_set():
            next_order = workload.run(conn, self.ctx.my_schema, 2, seed=self.seed + i, next_order=next_order)
            with conn.cursor() as cur:
                cur.execute(f"USE `{self.ctx.my_schema}`")
                for name, rows in BIG.items():
                    cur.execute(f"UPDATE {name} SET k = k + 1 WHERE id = %s", (1 + (i * 7919) % rows,))
                    cur.execute(f"DELETE FROM {name} WHERE id = %s", (1 + (i * 104729) % rows,))
                cur.execute("COMMIT")
            i += 1
            time.sleep(0.01)
        conn.close()


def wait_status(ctx, wanted, timeout=180):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        try:
            status, err = ctx.sql("SELECT status, last_error FROM chameleon.sources")[0]
        except psycopg.OperationalError:
            _reconnect(ctx)
            continue
        if status == wanted:
            return
        assert status != "error", err
        time.sleep(0.3)
    raise AssertionError(f"source still {status} after {timeout} s")


@pytest.mark.launcher_db
def test_copy_killed_mid_table_resumes_without_copying_finished_tables_again(ctx):
    """kill -9 of a copy worker while it copies a table: PostgreSQL restarts every backend,
    the launcher resumes the copy; tables finished before the kill are kept (not copied again),
    the others are copied at a new consistent point, and after replication (writes ran the
    whole time) every table equals the source: nothing lost, nothing doubled."""
    make_big_tables(ctx)
    ctx.add_source(options='{"copy_workers": 1}')
    with Writer(ctx, seed=41):
        ctx.one("SELECT chameleon.init_replica('src')")
        # largest first with one worker: big_a, then big_b; kill during big_b, with progress shown
        deadline = time.time() + 120
        while True:
            assert time.time() < deadline, ctx.sql("SELECT * FROM chameleon.tables")
            rows = dict((r[0].split(".", 1)[1], r[1:]) for r in ctx.sql(
                "SELECT mysql_table, state, rows_copied, copy_worker_pid, copied_at FROM chameleon.tables"))
            state, copied, pid, _ = rows.get("big_b", (None, None, None, None))
            if state == "copying" and pid and copied and copied > 1000:
                break
            assert ctx.one("SELECT status FROM chameleon.sources") in ("ready", "initialising")
            time.sleep(0.02)
        assert rows["big_a"][0] == "copied"
        assert copied < BIG["big_b"], "progress is shown while the table is copied"
        finished = {t: r[3] for t, r in rows.items() if r[0] in ("copied", "disabled")}
        os.kill(pid, signal.SIGKILL)
        _reconnect(ctx)
        wait_status(ctx, "initialised")
    after = dict((r[0].split(".", 1)[1], r[1]) for r in ctx.sql("SELECT mysql_table, copied_at FROM chameleon.tables"))
    for t, at in finished.items():
        assert after[t] == at, f"{t} was copied again"
    points = ctx.sql("SELECT DISTINCT consistent_point FROM chameleon.tables WHERE replica_enabled")
    assert len(points) == 2, f"finished tables keep their point, the others get the new one: {points}"
    ctx.one("SELECT chameleon.start_replica('src')")
    conn = ctx.servers.mariadb.root()
    workload.run(conn, ctx.my_schema, 50, seed=5, next_order=90_000)
    conn.close()
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + list(BIG))
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_parallel_copy_under_write_load_then_full_recopy(ctx):
    """Three copy workers share one snapshot taken under a global read lock held only while
    they open their transactions; writes run throughout. init_replica(resume => false) on an
    initialised source copies everything again."""
    make_big_tables(ctx)
    ctx.add_source(options='{"copy_workers": 3}')
    with Writer(ctx, seed=7):
        init(ctx)
    workers = ctx.sql("SELECT enm_state, b_per_table_points FROM sch_chameleon.t_copy_workers ORDER BY i_slot")
    assert workers == [("done", False)] * 3
    assert ctx.one("SELECT count(DISTINCT consistent_point) FROM chameleon.tables WHERE replica_enabled") == 1
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + list(BIG))
    before = ctx.one("SELECT max(copied_at) FROM chameleon.tables")
    ctx.one("SELECT chameleon.stop_replica('src')")
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true, resume => false)") == "initialised"
    assert ctx.one("SELECT min(copied_at) FROM chameleon.tables WHERE copied_at IS NOT NULL") > before
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + list(BIG))


def test_large_tables_are_copied_by_several_workers_in_key_ranges(ctx):
    """Tables over copy_split_rows with an integer key are cut into key ranges that every
    copy worker copies (ranges before new tables), all on one snapshot, under a write load;
    the worker committing the last range builds the indexes. The replica equals the source."""
    make_big_tables(ctx)
    ctx.add_source(options='{"copy_workers": 2, "copy_split_rows": 100000}')
    with Writer(ctx, seed=23):
        init(ctx)
    ranges = ctx.sql("""SELECT t.v_mysql_table, count(*), count(DISTINCT r.i_slot), sum(r.i_rows),
                               bool_and(r.enm_state = 'done'), max(t.i_rows_copied)
                          FROM sch_chameleon.t_copy_ranges r JOIN sch_chameleon.t_replica_tables t USING (i_id_table)
                         GROUP BY 1 ORDER BY 1""")
    assert [r[0] for r in ranges] == ["big_a", "big_b"], "only tables over copy_split_rows are split"
    for table, n, slots, rows, done, copied in ranges:
        assert n == 4 and done and rows == copied, (table, n, done, rows, copied)
    assert any(r[2] == 2 for r in ranges), f"both workers copied ranges: {ranges}"
    assert ctx.one("SELECT count(DISTINCT consistent_point) FROM chameleon.tables WHERE replica_enabled") == 1
    indexes = [r[0] for r in ctx.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'big_a' ORDER BY 1")]
    assert indexes == ["big_a_k_i", "big_a_pkey"]
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + list(BIG))
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


@pytest.mark.launcher_db
def test_copy_killed_mid_range_copies_the_split_table_again_whole(ctx):
    """kill -9 of a copy worker while the ranges of a split table are copied (some committed,
    one in flight): the launcher resumes; the split table is copied again whole (its old
    ranges void), and the replica equals the source: nothing lost, nothing doubled."""
    make_big_tables(ctx)
    ctx.add_source(options='{"copy_workers": 2, "copy_split_rows": 100000, "copy_max_memory": 4}')
    with Writer(ctx, seed=31):
        ctx.one("SELECT chameleon.init_replica('src')")
        deadline = time.time() + 120
        while True:
            assert time.time() < deadline, ctx.sql("SELECT * FROM sch_chameleon.t_copy_ranges")
            r = ctx.sql("""SELECT count(*) FILTER (WHERE r.enm_state = 'done'), min(w.i_pid) FILTER (WHERE r.enm_state = 'copying')
                             FROM sch_chameleon.t_copy_ranges r
                             JOIN sch_chameleon.t_replica_tables t USING (i_id_table)
                             JOIN sch_chameleon.t_copy_workers w ON w.i_id_source = t.i_id_source AND w.i_slot = r.i_slot
                            WHERE t.v_mysql_table = 'big_a'""")[0]
            if r[0] >= 1 and r[1]:
                break
            time.sleep(0.01)
        os.kill(r[1], signal.SIGKILL)
        _reconnect(ctx)
        wait_status(ctx, "initialised")
    assert ctx.one("""SELECT bool_and(r.enm_state = 'done') FROM sch_chameleon.t_copy_ranges r
                      JOIN sch_chameleon.t_replica_tables t USING (i_id_table) WHERE t.v_mysql_table = 'big_a'""")
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + list(BIG))
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_copy_without_the_global_lock_privilege_takes_a_point_per_table(ctx):
    """A user without RELOAD cannot take FLUSH TABLES WITH READ LOCK: each table gets its own
    consistent point (MariaDB: the snapshot's own binlog coordinates, no lock at all) and,
    with writes during the copy, the replica still ends equal to the source."""
    with ctx.my.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'nolock'@'%' IDENTIFIED BY 'nolock-pw'")
        cur.execute("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'nolock'@'%'")
    make_big_tables(ctx)
    ctx.add_source(options='{"copy_workers": 2}', url=ctx.servers.mariadb.url("nolock", "nolock-pw"))
    with Writer(ctx, seed=13):
        init(ctx)
    assert ctx.one("SELECT bool_and(b_per_table_points) FROM sch_chameleon.t_copy_workers") is True
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + list(BIG))
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_foreign_keys_create_option_adds_deferred_keys_that_also_apply_innodb_cascades(ctx):
    """foreign_keys = create: the recorded foreign keys are created after the copy (deferred)
    and validated, since every table shares one point. InnoDB cascades are not in the binlog;
    with the key in PostgreSQL the cascade happens there too and the replica stays equal. A
    full recopy drops and recreates them."""
    ctx.my_exec("ALTER TABLE `Order Items` ADD CONSTRAINT fk_order FOREIGN KEY (`Order ID`) "
                "REFERENCES orders (order_id) ON DELETE CASCADE",
                "CREATE TABLE notes (id INT PRIMARY KEY, ref INT, FOREIGN KEY fk_gone (ref) REFERENCES misc_types (id))")
    ctx.add_source(options='{"foreign_keys": "create", "skip_tables": ["%s.misc_types"]}' % ctx.my_schema)
    init(ctx)

    def keys():
        return ctx.sql("""SELECT conrelid::regclass::text, conname, convalidated, condeferred, confdeltype
                          FROM pg_constraint WHERE contype = 'f' AND connamespace = 'shop'::regnamespace ORDER BY 1""")
    assert keys() == [('shop."Order Items"', "fk_order", True, True, "c"),
                      ("shop.products", "fk_supplier", True, True, "a")]
    notes = ctx.one("SELECT notes FROM chameleon.tables WHERE mysql_table LIKE '%.notes'")
    assert any("fk_gone not created" in n and "misc_types is not replicated" in n for n in notes), notes
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("DELETE FROM orders WHERE order_id = 1")  # InnoDB deletes its two items
    wait_for(ctx)
    assert ctx.one('SELECT count(*) FROM shop."Order Items"') == 1
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["orders", "Order Items", "products"])
    ctx.one("SELECT chameleon.stop_replica('src')")
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true, resume => false)") == "initialised"
    assert keys() == [('shop."Order Items"', "fk_order", True, True, "c"),
                      ("shop.products", "fk_supplier", True, True, "a")]


def test_an_index_postgresql_cannot_build_costs_that_index_not_the_table(ctx):
    """MySQL indexes values up to 3,072 bytes, a PostgreSQL btree entry holds about 2,700: a
    row with a longer value that does not compress makes CREATE INDEX fail. The table is copied
    and replicates without that index, its other indexes are built, and its notes say which
    index and why."""
    import random
    rnd = random.Random(7)
    long_value = "".join(chr(rnd.randint(0x21, 0x7E)) for _ in range(3000))
    ctx.my_exec("CREATE TABLE long_keys (id INT PRIMARY KEY, v VARCHAR(3000) CHARACTER SET latin1, n INT, "
                "KEY ix_v (v), KEY ix_n (n))")
    with ctx.my.cursor() as cur:
        cur.execute(f"USE `{ctx.my_schema}`")
        cur.executemany("INSERT INTO long_keys VALUES (%s, %s, %s)", [(1, long_value, 1), (2, "short", 2)])
    ctx.add_source()
    init(ctx)
    assert ctx.one("SELECT state FROM chameleon.tables WHERE mysql_table LIKE '%.long_keys'") == "copied"
    notes = ctx.one("SELECT notes FROM chameleon.tables WHERE mysql_table LIKE '%.long_keys'")
    assert any("ix_v" in n and "without this index" in n and "index row size" in n for n in notes), notes
    indexes = [r[0] for r in ctx.sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'shop' "
                                     "AND tablename = 'long_keys' ORDER BY 1")]
    assert indexes == ["long_keys_ix_n", "long_keys_pkey"], indexes
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("UPDATE long_keys SET v = CONCAT(v, 'x'), n = 3 WHERE id = 2",
                "INSERT INTO long_keys VALUES (3, REPEAT('y', 10), 4)")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["long_keys"])
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def catalogue_shape(pg):
    """Everything a DBA or the extension can see of the catalogue, to compare two installs."""
    return {
        "columns": pg.execute("""SELECT table_schema, table_name, ordinal_position, column_name, data_type,
                                        column_default, is_nullable
                                   FROM information_schema.columns
                                  WHERE table_schema IN ('sch_chameleon', 'chameleon') ORDER BY 1, 2, 3""").fetchall(),
        "constraints": pg.execute("""SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
                                      WHERE connamespace = 'sch_chameleon'::regnamespace ORDER BY 1, 2""").fetchall(),
        "views": pg.execute("""SELECT c.oid::regclass::text, pg_get_viewdef(c.oid), c.relacl::text FROM pg_class c
                                WHERE c.relkind = 'v' AND c.relnamespace IN ('sch_chameleon'::regnamespace,
                                      'chameleon'::regnamespace) ORDER BY 1""").fetchall(),
        "functions": pg.execute("""SELECT p.oid::regprocedure::text, pg_get_function_arguments(p.oid), p.prosrc,
                                          p.proacl::text, obj_description(p.oid, 'pg_proc')
                                     FROM pg_proc p WHERE p.pronamespace = 'chameleon'::regnamespace
                                    ORDER BY 1""").fetchall(),
        "tables_acl": pg.execute("""SELECT c.oid::regclass::text, c.relacl::text FROM pg_class c
                                     WHERE c.relkind = 'r' AND c.relnamespace = 'sch_chameleon'::regnamespace
                                     ORDER BY 1""").fetchall(),
        "columns_acl": pg.execute("""SELECT a.attrelid::regclass::text, a.attname, a.attacl::text
                                       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                                      WHERE a.attacl IS NOT NULL AND c.relnamespace IN
                                            ('sch_chameleon'::regnamespace, 'chameleon'::regnamespace)
                                      ORDER BY 1, 2""").fetchall(),
    }


@pytest.mark.smoke
def test_catalogue_upgrade_from_0_1_0_equals_a_fresh_install_and_replicates(ctx, servers):
    fresh = catalogue_shape(ctx.pg)
    with servers.postgres.connect() as c:
        c.execute('DROP DATABASE IF EXISTS "t_upgrade" WITH (FORCE)')
        c.execute('CREATE DATABASE "t_upgrade"')
    with servers.postgres.connect("t_upgrade") as pg:
        pg.execute("CREATE EXTENSION pg_chameleon_rs VERSION '0.1.0'")
        # the installed library refuses to work on an older catalogue, saying what to do
        with pytest.raises(psycopg.Error, match="run ALTER EXTENSION pg_chameleon_rs UPDATE"):
            pg.execute("SELECT chameleon.add_source('up', %s, %s)",
                       (servers.mariadb.url(), json.dumps({ctx.my_schema: "shop"})))
        # a source of the old version survives the update (created as 0.1.0 did)
        pg.execute("""INSERT INTO sch_chameleon.t_sources (t_source, t_mysql_url, t_mysql_url_safe, jsb_schema_mappings)
                      VALUES ('up', %s, 'redacted', %s)""", (servers.mariadb.url(), json.dumps({ctx.my_schema: "shop"})))
        # through every upgrade script in turn, up to the version built now
        pg.execute("ALTER EXTENSION pg_chameleon_rs UPDATE")
        current = pg.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'pg_chameleon_rs'").fetchone()[0]
        assert current not in ("0.1.0", "0.2.0")
        assert pg.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_chameleon_rs'").fetchone()[0] == current
        assert pg.execute("SELECT t_version FROM sch_chameleon.v_version").fetchone()[0] == current
        upgraded = catalogue_shape(pg)
        for part in fresh:
            assert upgraded[part] == fresh[part], part
        assert pg.execute("SELECT chameleon.init_replica('up', wait => true)").fetchone()[0] == "initialised"
        pg.execute("SELECT chameleon.start_replica('up')")
        conn = servers.mariadb.root()
        workload.run(conn, ctx.my_schema, 40, seed=3, next_order=50_000)
        conn.close()
        assert pg.execute("SELECT chameleon.wait_for('up', '120 seconds')").fetchone()[0] is True
        oracle.assert_same_schema(ctx.my, pg, ctx.my_schema, "shop", ALL)
        pg.execute("SELECT chameleon.stop_replica('up')")
