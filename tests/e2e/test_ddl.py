"""End to end: schema changes on the source replicate in stream order, in the middle of a
write load, and the destination equals MariaDB, structure and data, at the end."""
import time

import psycopg
import pytest

import oracle
import workload
from test_replication import ALL, _Load, _wait_states, init, wait_for

DDL_TABLES = """
CREATE TABLE ddl_items (id int AUTO_INCREMENT PRIMARY KEY, label varchar(20) NOT NULL, qty int,
    state enum('new','done') NOT NULL DEFAULT 'new', KEY idx_label (label)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE ddl_swap (id int PRIMARY KEY, v varchar(30));
CREATE TABLE ddl_ren (id int PRIMARY KEY, n int NOT NULL)
"""


def _setup(ctx, options='{"replica_batch_size": 40}'):
    ctx.my_exec(*[s for s in DDL_TABLES.split(";\n") if s.strip()])
    ctx.my_exec("INSERT INTO ddl_items (label, qty) SELECT CONCAT('l', seq), seq FROM seq_1_to_100",
                "INSERT INTO ddl_swap SELECT seq, CONCAT('v', seq) FROM seq_1_to_20",
                "INSERT INTO ddl_ren SELECT seq, seq FROM seq_1_to_20")
    ctx.add_source(options=options)
    init(ctx)
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"


class _RenamedWriter(workload.Background):
    """Writes to a table that is renamed under it: on "table doesn't exist" it moves to the
    next name."""

    def __init__(self, ctx, names):
        super().__init__(ctx)
        self.names = list(names)
        self.written = 0

    def run(self):
        conn = self.ctx.servers.mariadb.root()
        n = 1000
        with conn.cursor() as cur:
            cur.execute(f"USE `{self.ctx.my_schema}`")
            while not self.stop.is_set():
                try:
                    # (a statement cut by the rename is tried again on the new name: idempotent)
                    cur.execute(f"INSERT INTO `{self.names[0]}` (id, n) VALUES (%s, %s) "
                                "ON DUPLICATE KEY UPDATE n = n + 1", (n, n))
                    n += 1
                    cur.execute(f"UPDATE `{self.names[0]}` SET n = n + 1 WHERE id = %s", (n - 2,))
                    conn.commit()
                    self.written += 1
                    time.sleep(0.005)
                except Exception as e:  # renamed: the next name
                    if "doesn't exist" in str(e) and len(self.names) > 1:
                        self.names.pop(0)
                    else:
                        self.errors.append(e)
                        time.sleep(0.05)
        conn.close()


def _burst(ctx, statements, times=20):
    for i in range(times):
        ctx.my_exec(*[s.format(i=i) for s in statements])


@pytest.mark.smoke
def test_schema_changes_under_write_load(ctx):
    """Add a column then write it, change types, rename a column, change an enum's members,
    change indexes, drop a column, drop and recreate a table, a pt-online-schema-change style
    swap, a new table, and a table renamed while it is written: all while the shop load runs;
    at the end every table equals MariaDB, structure and data."""
    _setup(ctx)
    with _Load(ctx, 50_000, pause=0.01) as load, _RenamedWriter(ctx, ["ddl_ren", "ddl_ren2"]) as renamed:
        time.sleep(1)
        # add columns (one AFTER another) and write them
        ctx.my_exec("ALTER TABLE ddl_items ADD COLUMN note varchar(40) NULL AFTER label, "
                    "ADD COLUMN score int NOT NULL DEFAULT 7")
        _burst(ctx, ["INSERT INTO ddl_items (label, note, qty, score) VALUES ('a{i}', 'note {i}', {i}, {i} * 3)",
                     "UPDATE ddl_items SET note = 'updated', score = score + 1 WHERE id = {i} + 1"])
        # a wider type, written with values only it holds
        ctx.my_exec("ALTER TABLE ddl_items MODIFY qty bigint")
        _burst(ctx, ["INSERT INTO ddl_items (label, qty) VALUES ('b{i}', 5000000000 + {i})"])
        # rename a column and lengthen it
        ctx.my_exec("ALTER TABLE ddl_items CHANGE label title varchar(100) NOT NULL")
        _burst(ctx, ["INSERT INTO ddl_items (title, qty) VALUES (CONCAT(REPEAT('t', 60), '{i}'), {i})"])
        # a new enum member, used at once
        ctx.my_exec("ALTER TABLE ddl_items MODIFY state enum('new','done','archived') NOT NULL DEFAULT 'new'")
        _burst(ctx, ["UPDATE ddl_items SET state = 'archived' WHERE id = {i} + 30"])
        # indexes change; a column goes
        ctx.my_exec("ALTER TABLE ddl_items ADD INDEX idx_score (score), DROP INDEX idx_label, ADD UNIQUE KEY uq_title_qty (title, qty)")
        ctx.my_exec("ALTER TABLE ddl_items DROP COLUMN note")
        _burst(ctx, ["INSERT INTO ddl_items (title, qty, score) VALUES ('c{i}', {i}, 1)",
                     "DELETE FROM ddl_items WHERE id = {i} + 60"])
        # drop and recreate a table with another shape
        ctx.my_exec("DROP TABLE ddl_swap",
                    "CREATE TABLE ddl_swap (id int PRIMARY KEY, v text, day date NOT NULL DEFAULT '2024-01-01')")
        _burst(ctx, ["INSERT INTO ddl_swap (id, v, day) VALUES ({i}, 'again {i}', DATE_ADD('2024-02-01', INTERVAL {i} DAY))"])
        # pt-online-schema-change: a copy altered, filled, swapped in, the old one dropped
        ctx.my_exec("CREATE TABLE `_ddl_items_new` LIKE `ddl_items`",
                    "ALTER TABLE `_ddl_items_new` ADD COLUMN flag tinyint NOT NULL DEFAULT 0",
                    "INSERT INTO `_ddl_items_new` (id, title, qty, state, score) SELECT id, title, qty, state, score FROM ddl_items",
                    "RENAME TABLE `ddl_items` TO `_ddl_items_old`, `_ddl_items_new` TO `ddl_items`",
                    "DROP TABLE IF EXISTS `_ddl_items_old` /* generated by server */")
        _burst(ctx, ["INSERT INTO ddl_items (title, qty, flag) VALUES ('d{i}', {i}, 1)",
                     "UPDATE ddl_items SET flag = 2 WHERE id = {i} + 10"])
        # a new table, its rows right behind it
        ctx.my_exec("CREATE TABLE IF NOT EXISTS ddl_new (k varchar(10) NOT NULL, n decimal(12,3), "
                    "at datetime(3), PRIMARY KEY (k)) DEFAULT CHARSET=utf8mb4")
        _burst(ctx, ["INSERT INTO ddl_new VALUES ('k{i}', {i}.125, '2024-03-01 10:00:00.123')"])
        # the table being written is renamed under its writer
        time.sleep(0.5)
        ctx.my_exec("RENAME TABLE ddl_ren TO ddl_ren2")
        time.sleep(1)
        ctx.my_exec("TRUNCATE TABLE ddl_swap", "INSERT INTO ddl_swap (id, v) VALUES (1, 'after truncate')")
        time.sleep(1)
    assert not load.errors, load.errors
    assert not renamed.errors, renamed.errors
    assert renamed.names == ["ddl_ren2"] and renamed.written > 50
    wait_for(ctx)
    errors = ctx.sql("SELECT message, statement FROM chameleon.errors")
    assert errors == [], errors
    ddl_tables = ["ddl_items", "ddl_swap", "ddl_new", "ddl_ren2"]
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ddl_tables, any_column_order=True)
    for t in ddl_tables:
        oracle.assert_same_structure(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, t)
    # the old names are gone from both sides and from the catalogue
    for gone in ["ddl_ren", "_ddl_items_new", "_ddl_items_old"]:
        assert ctx.one("SELECT to_regclass(%s)", (f'shop."{gone}"',)) is None, gone
    states = dict(ctx.sql("SELECT mysql_table, state FROM chameleon.tables"))
    for t in ddl_tables:
        assert states[f"{ctx.my_schema}.{t}"] == "replicating", states
    assert f"{ctx.my_schema}.ddl_ren" not in states
    applied, skipped = ctx.sql("SELECT ddl_applied, ddl_skipped FROM chameleon.sources")[0]
    assert applied >= 14, applied
    # the enum type follows its column's members
    labels = ctx.one("SELECT enum_range(NULL::shop.ddl_items_state)::text")
    assert labels == "{new,done,archived}"


def test_untranslatable_and_failing_ddl_disable_one_table_only(ctx):
    """CREATE TABLE ... SELECT cannot be followed (its rows come as a table nobody knew): the
    table is registered disabled with the statement in chameleon.errors; a statement that
    fails at the destination disables its table; the rest keeps replicating; statements without
    meaning for a replica are counted; sync_tables brings both tables back."""
    _setup(ctx, options='{"replica_batch_size": 40}')
    ctx.my_exec("CREATE TABLE ctas_copy (PRIMARY KEY (id)) ENGINE=InnoDB AS SELECT id, name FROM customers")
    # someone added a column of the same name at the destination: the ALTER fails there
    ctx.pg.execute("ALTER TABLE shop.ddl_swap ADD COLUMN extra int")
    ctx.my_exec("ALTER TABLE ddl_swap ADD COLUMN extra varchar(5)", "INSERT INTO ddl_swap VALUES (100, 'x', 'y')")
    ctx.my_exec("ALTER TABLE customers ENGINE=InnoDB", "CREATE OR REPLACE VIEW v_c AS SELECT id FROM customers",
                "ALTER TABLE ddl_items COMMENT 'items', ALGORITHM=INPLACE, LOCK=NONE",
                "ANALYZE TABLE ddl_items", "OPTIMIZE TABLE ddl_ren")
    ctx.my_exec("UPDATE customers SET name = 'still replicating' WHERE id = 1",
                "INSERT INTO ddl_items (label, qty) VALUES ('after', 1)")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + ["ddl_items", "ddl_ren"])
    errors = ctx.sql("SELECT mysql_table, binlog_position, statement, message FROM chameleon.errors ORDER BY error_time")
    assert len(errors) == 2, errors
    (t1, pos1, st1, m1), (t2, pos2, st2, m2) = errors
    # (MariaDB logs CREATE TABLE ... SELECT as a generated CREATE TABLE followed by the rows)
    assert t1 == f"{ctx.my_schema}.ctas_copy" and "CREATE TABLE" in st1 and pos1.startswith("mysql-bin."), errors
    assert "CREATE TABLE ... SELECT" in m1, m1
    assert t2 == f"{ctx.my_schema}.ddl_swap" and "ADD COLUMN extra" in st2 and "extra" in m2, errors
    states = dict(ctx.sql("SELECT mysql_table, state FROM chameleon.tables"))
    assert states[f"{ctx.my_schema}.ctas_copy"] == "disabled" and states[f"{ctx.my_schema}.ddl_swap"] == "disabled"
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    # ENGINE= is counted as skipped (views, ANALYZE and OPTIMIZE never reach the log); the
    # table comment is applied, its ALGORITHM and LOCK ignored
    assert ctx.one("SELECT ddl_skipped FROM chameleon.sources") == 1
    assert ctx.one("SELECT obj_description('shop.ddl_items'::regclass)") == "items"
    # sync_tables copies both again (the DBA's column goes with the old table)
    synced = ctx.one("SELECT chameleon.sync_tables('src', %s)",
                     ([f"{ctx.my_schema}.ctas_copy", f"{ctx.my_schema}.ddl_swap"],))
    assert sorted(synced) == sorted([f"{ctx.my_schema}.ctas_copy", f"{ctx.my_schema}.ddl_swap"])
    _wait_states(ctx, {f"{ctx.my_schema}.ctas_copy": "replicating", f"{ctx.my_schema}.ddl_swap": "replicating"})
    ctx.my_exec("INSERT INTO ctas_copy VALUES (12345, 'later')", "UPDATE ddl_swap SET extra = 'z' WHERE id = 100")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["ctas_copy", "ddl_swap"])


def test_an_index_added_on_the_source_that_postgresql_cannot_build_is_left_out(ctx):
    """ALTER TABLE ... ADD INDEX over a row whose value no btree entry holds (3,000 bytes that
    do not compress; MySQL indexes up to 3,072): the index is left out, named in the table's
    notes, and the table goes on replicating (before, it was disabled until copied again).
    Renaming that index or the table later renames nothing that is not there."""
    import random
    rnd = random.Random(11)
    long_value = "".join(chr(rnd.randint(0x21, 0x7E)) for _ in range(3000))
    ctx.my_exec("CREATE TABLE long_ix (id INT PRIMARY KEY, v VARCHAR(3000) CHARACTER SET latin1, n INT)")
    with ctx.my.cursor() as cur:
        cur.execute(f"USE `{ctx.my_schema}`")
        cur.executemany("INSERT INTO long_ix VALUES (%s, %s, %s)", [(1, long_value, 1), (2, "short", 2)])
    _setup(ctx)
    ctx.my_exec("ALTER TABLE long_ix ADD INDEX ix_v (v), ADD INDEX ix_n (n)",
                "INSERT INTO long_ix VALUES (3, 'after the index', 3)")
    wait_for(ctx)
    table = f"{ctx.my_schema}.long_ix"
    state, notes = ctx.sql("SELECT state, notes FROM chameleon.tables WHERE mysql_table = %s", (table,))[0]
    assert state == "replicating", (state, notes)
    assert any("long_ix_ix_v" in n and "without this index" in n and "index row size" in n for n in notes), notes
    indexes = [r[0] for r in ctx.sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'shop' "
                                      "AND tablename = 'long_ix' ORDER BY 1")]
    assert indexes == ["long_ix_ix_n", "long_ix_pkey"], indexes
    ctx.my_exec("ALTER TABLE long_ix RENAME INDEX ix_v TO ix_w", "RENAME TABLE long_ix TO long_ix2",
                "UPDATE long_ix2 SET n = 20 WHERE id = 2", "INSERT INTO long_ix2 VALUES (4, 'renamed', 4)")
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0, ctx.sql("SELECT message FROM chameleon.errors")
    assert ctx.one("SELECT state FROM chameleon.tables WHERE mysql_table = %s", (f"{ctx.my_schema}.long_ix2",)) \
        == "replicating"
    indexes = [r[0] for r in ctx.sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'shop' "
                                      "AND tablename = 'long_ix2' ORDER BY 1")]
    assert indexes == ["long_ix2_ix_n", "long_ix2_pkey"], indexes
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["long_ix2"])


def test_ddl_without_row_metadata(ctx):
    """With binlog_row_metadata=MINIMAL the binlog has no column names: rows before an ALTER
    decode with the old columns and rows after with the new, from the catalogue."""
    ctx.my_exec("SET GLOBAL binlog_row_metadata = 'MINIMAL'")
    try:
        _setup(ctx)
        with _Load(ctx, 60_000, pause=0.01) as load:
            _burst(ctx, ["INSERT INTO ddl_items (label, qty) VALUES ('m{i}', {i})"], times=10)
            ctx.my_exec("ALTER TABLE ddl_items ADD COLUMN first_col int NOT NULL DEFAULT 5 FIRST, DROP COLUMN qty")
            _burst(ctx, ["INSERT INTO ddl_items (first_col, label) VALUES ({i}, 'n{i}')",
                         "UPDATE ddl_items SET first_col = first_col + 1 WHERE id = {i} + 1"], times=10)
            ctx.my_exec("ALTER TABLE ddl_items MODIFY label varchar(5) NOT NULL",
                        "ALTER TABLE ddl_ren ADD COLUMN s set('a','b') NULL AFTER id")
            _burst(ctx, ["INSERT INTO ddl_items (first_col, label) VALUES ({i}, 'o{i}')",
                         "INSERT INTO ddl_ren VALUES (100 + {i}, 'a,b', {i})"], times=10)
        assert not load.errors, load.errors
        wait_for(ctx)
    finally:
        ctx.my_exec("SET GLOBAL binlog_row_metadata = 'FULL'")
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["ddl_items", "ddl_ren"], any_column_order=True)
    for t in ["ddl_items", "ddl_ren"]:
        oracle.assert_same_structure(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, t)
