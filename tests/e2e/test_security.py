"""End to end, identifiers from the source reach SQL only quoted: schema, table, column, enum
label and index names made of quotes, backticks, semicolons, dollar quotes, Unicode and the
maximum lengths are copied, replicated, synced and detached; nothing they spell is executed
(a canary table on each side survives) and the destination equals the source."""
import json

import oracle
from test_replication import wait_for

MY_SCHEMA = 'hostile "sch"; DROP TABLE canary; -- $$'
PG_SCHEMA = 'pg "sch"; DROP TABLE canary; -- $$'
TABLES = {
    'we"ird; DROP TABLE canary; --': "id",
    "it's $$dollar$$ `back`tick`": "id",
    "Ünïcödé таблица": "id",
    "t" * 63: "id",
    "u" * 64: "id",   # MySQL's longest table name: PostgreSQL keeps 63 bytes
}
HOSTILE_COLUMN = 'c"ol; DROP TABLE canary; -- $$`x`'
HOSTILE_INDEX = 'idx"; DROP TABLE canary; --'


def q(name):
    return "`" + name.replace("`", "``") + "`"


def test_hostile_identifiers_are_quoted_everywhere(ctx):
    my, pg = ctx.my, ctx.pg
    pg.execute("CREATE TABLE public.canary (x int)")
    with my.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {q(MY_SCHEMA)}")
        cur.execute(f"CREATE DATABASE {q(MY_SCHEMA)}")
        cur.execute(f"CREATE TABLE {q(MY_SCHEMA)}.canary (x INT PRIMARY KEY)")
        for i, table in enumerate(TABLES):
            index = q(HOSTILE_INDEX + str(i))
            cur.execute(
                f"CREATE TABLE {q(MY_SCHEMA)}.{q(table)} ("
                f" id INT AUTO_INCREMENT PRIMARY KEY,"
                f" {q(HOSTILE_COLUMN)} VARCHAR(40),"
                f" `état $$ ';` ENUM('it''s', 'a\"b', '$$x$$', 'back\\\\slash', 'semi;colon') NOT NULL DEFAULT 'it''s',"
                f" {q('k' * 64)} INT,"
                f" KEY {index} ({q(HOSTILE_COLUMN)}))")
            cur.execute(f"INSERT INTO {q(MY_SCHEMA)}.{q(table)} ({q(HOSTILE_COLUMN)}, `état $$ ';`, {q('k' * 64)})"
                        " VALUES ('a''b\"c;--', 'a\"b', 1), ('$$', '$$x$$', 2), (NULL, 'back\\\\slash', 3)")
        # two columns PostgreSQL would give the same name: refused, named, not a crash
        cur.execute(f"CREATE TABLE {q(MY_SCHEMA)}.collide (id INT PRIMARY KEY, {q('x' * 63 + '1')} INT, {q('x' * 63 + '2')} INT)")
    pg.execute("SELECT chameleon.add_source('src', %s, %s, '{\"replica_batch_size\": 10}')",
               (ctx.servers.mariadb.url(), json.dumps({MY_SCHEMA: PG_SCHEMA})))
    ctx.sources.append("src")
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    ctx.one("SELECT chameleon.start_replica('src')")
    with my.cursor() as cur:
        for table in TABLES:
            t = f"{q(MY_SCHEMA)}.{q(table)}"
            cur.execute(f"INSERT INTO {t} ({q(HOSTILE_COLUMN)}, `état $$ ';`) VALUES ('x''); DROP TABLE canary; --', 'semi;colon')")
            cur.execute(f"UPDATE {t} SET {q(HOSTILE_COLUMN)} = '$$; DROP TABLE canary; $$', id = id + 100 WHERE id = 1")
            cur.execute(f"DELETE FROM {t} WHERE id = 2")
    wait_for(ctx)
    tables = list(TABLES) + ["canary"]
    oracle.assert_same_schema(my, pg, MY_SCHEMA, PG_SCHEMA, tables)
    state, error = ctx.sql("SELECT state, last_error FROM chameleon.tables WHERE mysql_table LIKE '%.collide'")[0]
    assert state == "disabled" and "have the same first 63 bytes" in error, (state, error)
    notes = ctx.one("SELECT notes FROM chameleon.tables WHERE mysql_table LIKE %s", (f"%.{'u' * 64}",))
    assert any("longer than 63 bytes" in n for n in notes), notes
    assert ctx.one("SELECT count(*) FROM chameleon.tables WHERE state = 'replicating'") == len(tables)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    # DDL spelled with hostile names replicates, quoted: a column and an index added, a table
    # created with hostile enum labels, renamed, written and dropped
    first = list(TABLES)[0]
    t0 = f"{q(MY_SCHEMA)}.{q(first)}"
    added, index, label_col = 'added"; DROP TABLE canary; --', 'ix"; DROP TABLE canary', "e$$"
    fresh = 'new"tab; DROP TABLE canary; -- $$'
    renamed = fresh + " renamed"
    with my.cursor() as cur:
        cur.execute(f"ALTER TABLE {t0} ADD COLUMN {q(added)} VARCHAR(10) DEFAULT 'x''; --' AFTER id, "
                    f"ADD INDEX {q(index)} ({q(HOSTILE_COLUMN)})")
        cur.execute(f"INSERT INTO {t0} ({q(HOSTILE_COLUMN)}, {q(added)}) VALUES ('after ddl', '$$')")
        cur.execute(f"CREATE TABLE {q(MY_SCHEMA)}.{q(fresh)} (id INT PRIMARY KEY, {q(label_col)} ENUM('a''b', '$$', 'c\"d'))")
        cur.execute(f"INSERT INTO {q(MY_SCHEMA)}.{q(fresh)} VALUES (1, '$$'), (2, 'a''b')")
        cur.execute(f"RENAME TABLE {q(MY_SCHEMA)}.{q(fresh)} TO {q(MY_SCHEMA)}.{q(renamed)}")
        cur.execute(f"INSERT INTO {q(MY_SCHEMA)}.{q(renamed)} VALUES (3, 'c\"d')")
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    oracle.assert_same_table(my, pg, MY_SCHEMA, PG_SCHEMA, first, any_column_order=True)
    oracle.assert_same_structure(my, pg, MY_SCHEMA, PG_SCHEMA, first)
    oracle.assert_same_table(my, pg, MY_SCHEMA, PG_SCHEMA, renamed)
    with my.cursor() as cur:
        cur.execute(f"DROP TABLE {q(MY_SCHEMA)}.{q(renamed)}")
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE n.nspname = %s AND c.relname LIKE 'new%%'", (PG_SCHEMA,)) == 0
    with my.cursor() as cur:
        cur.execute(f"DROP TABLE {q(MY_SCHEMA)}.collide")
    # copied again, then detached: the same names go through sync, sequences and keys
    synced = ctx.one("SELECT chameleon.sync_tables('src', %s)", ([f"{MY_SCHEMA}.{t}" for t in TABLES],))
    assert len(synced) == len(TABLES)
    # wait_for returns once the synced tables have finished their copy and catch-up
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM chameleon.tables WHERE state = 'replicating'") == len(tables), \
        ctx.sql("SELECT mysql_table, state, last_error FROM chameleon.tables")
    summary = ctx.one("SELECT chameleon.detach_replica('src')")
    ctx.sources.clear()
    assert "detached" in summary
    oracle.assert_same_schema(my, pg, MY_SCHEMA, PG_SCHEMA, tables)
    # the canaries are alive
    assert ctx.one("SELECT count(*) FROM public.canary") == 0
    with my.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {q(MY_SCHEMA)}.canary")
        assert cur.fetchone()[0] == 0
        cur.execute(f"DROP DATABASE {q(MY_SCHEMA)}")
