"""End to end, tables without a primary or NOT NULL unique key: replicated by full row. An
update or delete changes exactly one destination row equal to the source's before image (NULLs
equal NULLs, every mapped type compared as stored), so equal rows stay as many as on the
source; a key gained or lost by DDL changes how rows are matched and replication goes on; a
row that matches nothing is a divergence error naming table and binlog position. The
destination is compared with MariaDB value for value as a multiset (tests/oracle.py sorts both
sides and compares the lists: duplicate counts included)."""
import json
import time

import psycopg
import pytest

import oracle
from conftest import load_sql
from test_replication import ALL, _wait_states, init, wait_for
from test_types import TYPES, _stored_columns

LIVE = ("copied", "replicating")  # (replicating once the read worker has started)
KEYLESS = """
CREATE TABLE k_dups (a INT, b VARCHAR(20), c DOUBLE, d DATETIME(6), e JSON, f FLOAT, t MEDIUMTEXT) ENGINE=InnoDB;
INSERT INTO k_dups VALUES
  (1, 'one', 1.5, '2024-01-01 00:00:00.000001', '{"x": 1}', 0.1, 'same'),
  (1, 'one', 1.5, '2024-01-01 00:00:00.000001', '{"x": 1}', 0.1, 'same'),
  (1, 'one', 1.5, '2024-01-01 00:00:00.000001', '{"x": 1}', 0.1, 'same'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL),
  (2, NULL, NULL, NULL, NULL, NULL, NULL),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 'three', -0.0, '1000-01-01 00:00:00', '[1, 2.50, "ż"]', 1.0e0 / 3, REPEAT('long ', 20000))
"""


def _pg_count(ctx, table, where):
    return ctx.one(f"SELECT count(*) FROM shop.{table} WHERE {where}")


def _my_count(ctx, table, where):
    with ctx.my.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM `{ctx.my_schema}`.`{table}` WHERE {where}")
        return cur.fetchone()[0]


def _identity(ctx):
    return {r[0].split(".", 1)[1]: r[1:] for r in ctx.sql(
        "SELECT mysql_table, state, replica_identity, replica_key, last_error FROM chameleon.tables")}


def _start(ctx, options="{}"):
    ctx.my_exec(*[s for s in KEYLESS.split(";\n") if s.strip()])
    ctx.add_source(options=options)
    init(ctx)
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"


@pytest.mark.smoke
def test_keyless_tables_replicate_by_full_row_duplicates_and_nulls(ctx):
    """Duplicates stay as many as on the source: deleting or updating one of several equal
    rows changes one; rows of NULLs are matched; -0.0, a float's exact value, a JSON document,
    a long text; several changes of one row in one transaction; a session with
    binlog_row_image=MINIMAL (MariaDB logs a keyless table's whole before image anyway)."""
    _start(ctx)
    ids = _identity(ctx)
    assert ids["k_dups"][1:] == ("full row", [], None) and ids["k_dups"][0] in LIVE, ids["k_dups"]
    assert ids["audit_log"][1:] == ("full row", [], None) and ids["audit_log"][0] in LIVE, ids["audit_log"]
    assert ids["customers"][1:3] == ("key", ["id"])
    ctx.my_exec(
        "DELETE FROM k_dups WHERE a = 1 LIMIT 1",                      # 3 equal rows -> 2
        "UPDATE k_dups SET t = 'changed' WHERE a = 2 LIMIT 1",         # one of two rows of NULLs
        "UPDATE k_dups SET b = 'was null' WHERE a IS NULL",            # the row of all NULLs
        "UPDATE k_dups SET c = 2.5, f = f * 3 WHERE a = 3",            # -0.0 and 1/3 matched as stored
        "INSERT INTO k_dups SELECT * FROM k_dups WHERE a = 1",         # 2 more equal rows -> 4
        "INSERT INTO audit_log VALUES (1, 'no key: copied, not replicated')",  # a third equal row
        "DELETE FROM audit_log WHERE id = 1 AND msg = 'duplicate id is fine'",
        "START TRANSACTION",
        "INSERT INTO k_dups (a, b) VALUES (9, 'nine')",
        "UPDATE k_dups SET b = 'NINE' WHERE a = 9",
        "UPDATE k_dups SET a = 10, e = '{\"y\": null}' WHERE a = 9",
        "DELETE FROM k_dups WHERE a = 10",
        "INSERT INTO k_dups (a, b) VALUES (9, 'again')",
        "COMMIT",
        # an update that makes two rows equal, then one of them deleted
        "UPDATE k_dups SET t = NULL WHERE a = 2 AND t = 'changed'",
        "DELETE FROM k_dups WHERE a = 2 LIMIT 1")
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["k_dups"] + ALL)
    assert _pg_count(ctx, "k_dups", "a = 1") == _my_count(ctx, "k_dups", "a = 1") == 4
    assert _pg_count(ctx, "k_dups", "a = 2") == 1
    assert _pg_count(ctx, "audit_log", "id = 1") == 2
    # a session logging minimal images: the after image holds only what changed, the before
    # image of a table without a key is whole
    ctx.my_exec("SET SESSION binlog_row_image = 'MINIMAL'",
                "UPDATE k_dups SET b = 'minimal' WHERE a = 1 LIMIT 1",
                "DELETE FROM k_dups WHERE a = 1 LIMIT 1",
                "SET SESSION binlog_row_image = 'FULL'")
    wait_for(ctx)
    assert ctx.sql("SELECT left(reason, 200) FROM chameleon.discarded_rows") == []
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "k_dups")


@pytest.mark.parametrize("postgis", [False, True], ids=["bytea", "postgis"])
def test_every_type_replicates_by_full_row(ctx, postgis):
    """Every table of the type test without its key, each row twice: copied, then inserted,
    one of two equal rows updated, one deleted, the row of NULLs updated, and the type
    test's own value changes; equal to MariaDB after each step."""
    if postgis:
        try:
            ctx.pg.execute("CREATE EXTENSION postgis")
        except psycopg.Error:
            pytest.skip("PostGIS is not installed for this PostgreSQL")
    load_sql(ctx.my, ctx.my_schema, "types.sql", fresh=False)
    stmts = []
    for t in TYPES:
        cols = ", ".join(_stored_columns(ctx, t))
        stmts += [f"CREATE TABLE k_{t} LIKE {t}", f"ALTER TABLE k_{t} DROP PRIMARY KEY",
                  f"INSERT INTO k_{t} ({cols}) SELECT {cols} FROM {t}",
                  f"INSERT INTO k_{t} ({cols}) SELECT {cols} FROM {t}"]
    # (the 16 MB row of t_bins stays in the keyed type test)
    ctx.my_exec("SET time_zone = '+00:00'", *stmts, "DELETE FROM k_t_bins WHERE id = 5")
    keyless = [f"k_{t}" for t in TYPES]
    ctx.add_source()
    init(ctx)
    ids = _identity(ctx)
    for t in keyless:
        assert ids[t][:2] == ("copied", "full row"), (t, ids[t])
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, keyless)
    ctx.one("SELECT chameleon.start_replica('src')")
    stmts = []
    for t in keyless:
        cols = _stored_columns(ctx, t)
        stmts += [f"INSERT INTO {t} ({', '.join(cols)}) SELECT id + 100, {', '.join(cols[1:])} FROM {t} WHERE id < 100",
                  f"UPDATE {t} SET id = id + 1000 WHERE id = 2 LIMIT 1",
                  f"DELETE FROM {t} WHERE id = 3 LIMIT 1",
                  f"UPDATE {t} SET id = 2000 WHERE id = 103"]
    ctx.my_exec("SET time_zone = '+00:00'", *stmts,
                "UPDATE k_t_ints SET ti = 5 WHERE id = 4 LIMIT 1",
                "UPDATE k_t_nums SET f = f / 7, dbl = dbl / 7, b64 = b'101' WHERE id = 101",
                "UPDATE k_t_strs SET lt = CONCAT(lt, '🐢'), c5 = 'z' WHERE id = 104",
                "UPDATE k_t_latin1 SET v = 'Ça coûte 3 €' WHERE id = 101",
                "UPDATE k_t_labels SET e = 'zażółć', s = 'Y,€' WHERE id = 101",
                "UPDATE k_t_json SET j = JSON_SET(j, '$.t', 'changed') WHERE id = 101",
                "UPDATE k_t_spatial SET p = ST_GeomFromText('POINT(3 4)', 4326) WHERE id = 101",
                "UPDATE k_t_generated SET a = 100, b = 'changed' WHERE id = 101",
                "UPDATE k_t_times SET t6 = '23:00:00.5' WHERE id = 1 LIMIT 1",
                "UPDATE k_t_bins SET lb = REPEAT(0x01, 1000) WHERE id = 104")
    wait_for(ctx)
    assert ctx.sql("SELECT mysql_table, left(reason, 200) FROM chameleon.discarded_rows") == []
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, keyless)
    # every row of every change was matched (none silently missed): the row counts follow
    for t in keyless:
        assert _pg_count(ctx, t, "id = 2") == _my_count(ctx, t, "id = 2") == 1, t


def test_key_gained_and_lost_by_ddl_replication_goes_on(ctx):
    """A keyless table created while replicating is replicated at once; it gains a primary key
    (another a NOT NULL unique key) and goes on by key; a keyed table loses its primary key
    and goes on by full row, duplicates included."""
    _start(ctx)
    ctx.my_exec("CREATE TABLE k_new (a INT NOT NULL, b VARCHAR(20)) ENGINE=InnoDB",
                "CREATE TABLE k_uq (a INT NOT NULL, b TEXT) ENGINE=InnoDB",
                "CREATE TABLE k_lose (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB",
                "INSERT INTO k_new VALUES (1, 'x'), (1, 'x'), (2, NULL), (2, NULL)",
                "INSERT INTO k_uq VALUES (1, 'u'), (1, 'u'), (2, 'v')",
                "INSERT INTO k_lose VALUES (1, 'a'), (2, 'b'), (3, NULL)",
                "DELETE FROM k_new WHERE a = 1 LIMIT 1",
                "UPDATE k_new SET a = 3 WHERE a = 2 LIMIT 1",
                "DELETE FROM k_uq WHERE a = 1 LIMIT 1")
    wait_for(ctx)
    ids = _identity(ctx)
    for t in ["k_new", "k_uq"]:
        assert ids[t][:3] == ("replicating", "full row", []), (t, ids[t])
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["k_new", "k_uq", "k_lose"])
    ctx.my_exec("ALTER TABLE k_new ADD PRIMARY KEY (a)",
                "ALTER TABLE k_uq ADD UNIQUE KEY uq_a (a)",
                "ALTER TABLE k_lose DROP PRIMARY KEY",
                "INSERT INTO k_new VALUES (4, 'four')", "UPDATE k_new SET b = 'two' WHERE a = 2",
                "UPDATE k_new SET a = 30 WHERE a = 3", "DELETE FROM k_new WHERE a = 1",
                "INSERT INTO k_uq VALUES (3, 'w')", "UPDATE k_uq SET b = 'changed' WHERE a = 1",
                "DELETE FROM k_uq WHERE a = 2",
                "INSERT INTO k_lose VALUES (1, 'a'), (3, NULL)",  # now duplicates
                "DELETE FROM k_lose WHERE id = 1 LIMIT 1", "UPDATE k_lose SET v = 'c' WHERE id = 3 LIMIT 1",
                "UPDATE k_lose SET id = 20 WHERE id = 2")
    wait_for(ctx)
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    ids = _identity(ctx)
    assert ids["k_new"][:3] == ("replicating", "key", ["a"]), ids["k_new"]
    assert ids["k_uq"][:3] == ("replicating", "key", ["a"]), ids["k_uq"]
    assert ids["k_lose"][:3] == ("replicating", "full row", []), ids["k_lose"]
    for t in ["k_new", "k_uq", "k_lose"]:
        oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, t)
        oracle.assert_same_structure(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, t)
    assert _pg_count(ctx, "k_lose", "id = 3") == 2


def test_keyless_row_missing_at_the_destination_is_a_divergence_error(ctx):
    """A row deleted by hand at the destination, then updated on the source: replay stops
    with the error naming the table, the binlog position and the row; nothing after it is
    applied."""
    _start(ctx)
    ctx.pg.execute("DELETE FROM shop.k_dups WHERE a = 3")
    ctx.my_exec("UPDATE k_dups SET b = 'gone here' WHERE a = 3",
                "INSERT INTO k_dups (a) VALUES (100)")
    deadline = time.time() + 60
    while ctx.one("SELECT status FROM chameleon.sources") != "error" and time.time() < deadline:
        time.sleep(0.2)
    status, last_error = ctx.sql("SELECT status, last_error FROM chameleon.sources")[0]
    assert status == "error", (status, last_error)
    message, position, sqlstate = ctx.sql("SELECT message, binlog_position, sqlstate FROM chameleon.errors")[-1]
    assert position.startswith("mysql-bin."), position
    assert f"update on {ctx.my_schema}.k_dups at {position} matched 0 rows at the destination instead of 1" in message
    assert "(full row 3, three, " in message and "has diverged" in message, message
    assert "..." in message and len(message) < 2000  # the long text is cut
    assert ctx.one("SELECT count(*) FROM shop.k_dups WHERE a = 100") == 0


def test_keyless_tables_under_skip_events_discarded_rows_and_sync_tables(ctx):
    """What keyed tables do, keyless ones do: skip_events leaves deletes out (and then an
    update of a row the replica kept is applied to one copy); a discarded row is deleted as
    a no-op and brought back by an update that makes it storable; sync_tables copies a
    keyless table again under load and its catch-up matches rows by full row."""
    s = ctx.my_schema
    ctx.my_exec("CREATE TABLE k_skip (a INT, b VARCHAR(10))", "INSERT INTO k_skip VALUES (1, 'x'), (1, 'x')",
                "CREATE TABLE k_bad (a INT, d DATE)", "SET SESSION sql_mode = ''",
                "INSERT INTO k_bad VALUES (1, '0000-00-00'), (2, '0000-00-00'), (3, '2024-01-01')",
                "CREATE TABLE k_big (a INT, b VARCHAR(30))",
                "INSERT INTO k_big SELECT seq % 1000, 'r' FROM seq_1_to_200000")
    _start(ctx, json.dumps({"skip_events": {"delete": [f"{s}.k_skip"]}, "replica_batch_size": 50}))
    assert ctx.one("SELECT rows_discarded FROM chameleon.tables WHERE mysql_table = %s", (f"{s}.k_bad",)) == 2
    ctx.my_exec("DELETE FROM k_skip WHERE a = 1 LIMIT 1", "UPDATE k_skip SET b = 'y' WHERE a = 1",
                "SET SESSION sql_mode = ''",
                "UPDATE k_bad SET d = '2000-01-01' WHERE a = 1", "DELETE FROM k_bad WHERE a = 2",
                "UPDATE k_bad SET d = '2024-02-02' WHERE a = 3")
    wait_for(ctx)
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    assert ctx.sql("SELECT a, b FROM shop.k_skip ORDER BY b") == [(1, "x"), (1, "y")]
    assert ctx.sql("SELECT a, d::text FROM shop.k_bad ORDER BY a") == [(1, "2000-01-01"), (3, "2024-02-02")]
    # sync_tables under writes to the table: the catch-up applies full-row changes once
    big = f"{s}.k_big"

    def write(i):
        ctx.my_exec(f"UPDATE k_big SET b = 'u{i}' WHERE a = {i % 1000} LIMIT 1",
                    f"DELETE FROM k_big WHERE a = {(i + 500) % 1000} LIMIT 1",
                    f"INSERT INTO k_big VALUES ({i % 1000}, 'i{i}')")
    for i in range(20):
        write(i)
    assert ctx.one("SELECT chameleon.sync_tables('src', %s)", ([big],)) == [big]
    for i in range(20, 200):
        write(i)
    _wait_states(ctx, {big: "replicating"})
    for i in range(200, 220):
        write(i)
    wait_for(ctx)
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "k_big")
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["k_dups"] + ALL)
