"""End to end: MySQL 9's VECTOR, from the real MySQL 9.0.1 file `vector.binlog`
(rust_mysql_common's test data, tests/fixtures/binlogs/README.md), served by tests/mysql84.py
in front of the session's MariaDB, into pgvector's `vector(n)` when the destination database
has pgvector, else `real[]` (docs/type-mapping.md).

The file (gtid_mode OFF: anonymous GTIDs, so the replica follows it by file and offset) creates
dtb.foo (id SERIAL, vector_column VECTOR(3)) and dtb.bar (id SERIAL, vector_column VECTOR(2)
NOT NULL, foo TEXT, vector_column2 VECTOR(4) NOT NULL) twice (it drops the database between);
after the second creation one transaction inserts foo (1, [1.1,2.2,3.3]), (2, [1,-1,0]) and bar
(1, [1.1,2.2], NULL, [1.1,2.2,3.3,4.4]), (2, [1.01,-1.01], 'bar', [42,43,44,45]); the last
deletes bar 2 and inserts (3, [2.01,-2.01], NULL, [42.1,43.2,44.3,45.4]) (the values are
mysqlbinlog's of the row images: little-endian float32s).

The MariaDB behind holds the tables as they are then, each VECTOR(n) as the VARBINARY(4n) of
the same bytes, and the fake server describes those columns as MySQL 9 does (DATA_TYPE vector,
COLUMN_TYPE vector(n)); foo also has a row of its own (100, [0.5,-0.25,0.001]) for the copy.
pgvector is on the PostgreSQL 16 of the test builds (scripts/setup.sh); elsewhere the pgvector
case is skipped and the real[] case runs.
"""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import REPL_PASSWORD, REPL_USER  # noqa: E402
from mysql84 import MySQL84  # noqa: E402

FILE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "binlogs", "vector.binlog")
AFTER_SECOND_CREATE = 8  # transactions up to the second CREATE TABLE bar
ALL = 10
TYPES = {"varbinary(12)": ("vector", "vector(3)"), "varbinary(8)": ("vector", "vector(2)"),
         "varbinary(16)": ("vector", "vector(4)")}


@pytest.fixture
def dtb(servers):
    with servers.mariadb.root() as c, c.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS dtb")
        cur.execute("CREATE DATABASE dtb")
        cur.execute("CREATE TABLE dtb.foo (id SERIAL, vector_column VARBINARY(12))")
        cur.execute("CREATE TABLE dtb.bar (id SERIAL, vector_column VARBINARY(8) NOT NULL, foo TEXT, "
                    "vector_column2 VARBINARY(16) NOT NULL)")
        # [0.5, -0.25, 0.001] as float32 little-endian
        cur.execute("INSERT INTO dtb.foo VALUES (100, x'0000003f000080be6f12833a')")
    try:
        yield
    finally:
        with servers.mariadb.root() as c, c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS dtb")


def vector_columns(ctx):
    return ctx.sql("SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod) "
                   "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                   "WHERE c.relnamespace = 'vec'::regnamespace AND c.relkind = 'r' "
                   "AND a.attname LIKE 'vector%%' ORDER BY 1, 2")


@pytest.mark.smoke
@pytest.mark.parametrize("pgvector", [False, True], ids=["real_array", "pgvector"])
def test_mysql9_vectors_replicate_as_pgvector_or_real_arrays(ctx, servers, dtb, pgvector):
    if pgvector:
        if not ctx.one("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"):
            pytest.skip("pgvector is not installed in this PostgreSQL (scripts/setup.sh installs it for 16)")
        ctx.pg.execute("CREATE SCHEMA vx")
        ctx.pg.execute("CREATE EXTENSION vector SCHEMA vx")
    server = MySQL84(servers.mariadb.port + 9, servers.mariadb.port, FILE, "binlog.000001",
                     {REPL_USER: REPL_PASSWORD}, committed=AFTER_SECOND_CREATE, gtid_mode="OFF",
                     column_types=TYPES)
    try:
        ctx.pg.execute("SELECT chameleon.add_source('v9', %s, %s, %s)",
                       (server.url(REPL_USER, REPL_PASSWORD), json.dumps({"dtb": "vec"}),
                        json.dumps({"ssl_mode": "disabled"})))
        ctx.sources.append("v9")
        assert ctx.one("SELECT chameleon.init_replica('v9', wait => true)") == "initialised"
        if pgvector:
            # pgvector's type, of the schema it is installed in, with the dimension
            assert vector_columns(ctx) == [("bar", "vector_column", "vx.vector(2)"),
                                           ("bar", "vector_column2", "vx.vector(4)"),
                                           ("foo", "vector_column", "vx.vector(3)")]
            assert ctx.one("SELECT vector_column::text FROM vec.foo") == "[0.5,-0.25,0.001]"
        else:
            assert vector_columns(ctx) == [("bar", "vector_column", "real[]"), ("bar", "vector_column2", "real[]"),
                                           ("foo", "vector_column", "real[]")]
            assert ctx.one("SELECT vector_column::text FROM vec.foo") == "{0.5,-0.25,0.001}"
        assert ctx.one("SELECT chameleon.start_replica('v9')") == "running"

        server.committed = ALL
        assert ctx.one("SELECT chameleon.wait_for('v9', '60 seconds'::interval)") is True
        # value for value, whatever the type: read back as real[] (pgvector casts to it)
        assert ctx.sql("SELECT id::int, vector_column::real[] FROM vec.foo ORDER BY id") == [
            (1, [1.1, 2.2, 3.3]), (2, [1.0, -1.0, 0.0]), (100, [0.5, -0.25, 0.001])]
        assert ctx.sql("SELECT id::int, vector_column::real[], foo, vector_column2::real[] FROM vec.bar ORDER BY id") == [
            (1, [1.1, 2.2], None, [1.1, 2.2, 3.3, 4.4]),
            (3, [2.01, -2.01], None, [42.1, 43.2, 44.3, 45.4])]
        assert ctx.sql("SELECT * FROM chameleon.errors") == []
        assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0
        assert ctx.one("SELECT status FROM chameleon.sources WHERE name = 'v9'") == "running"
        assert server.dumps and server.dumps[0]["command"] == "COM_BINLOG_DUMP", server.dumps
        assert server.errors == []
    finally:
        try:
            ctx.pg.execute("SELECT chameleon.stop_replica('v9')")
        except Exception:
            pass
        server.stop()
