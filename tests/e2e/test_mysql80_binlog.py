"""A binlog written by a real MySQL 8.0.40 server, replicated into PostgreSQL through the production
reader: a private MariaDB serves the MySQL file as one of its own binlogs, as MariaDB's own test
`suite/rpl/t/rpl_from_mysql80.test` does (stop the server, put the MySQL file in place of its first
binlog, start it: the index still names the file and the dump thread sends it as it is).

The file (`std_data/mdev35643_mysql_80_binlog.000001`) and the test's `.test`/`.result` are GPL-2
test data of Debian's mariadb-test-data package, fetched by `make setup` into
.cache/binlog-fixtures (not committed). Without them this test is SKIPPED, saying so.

The file holds (offsets as the file has them; mariadb-binlog and the event headers show them):
  236   CREATE TABLE t1 (a INT PRIMARY KEY, b INT, c VARCHAR(1024)) CHARACTER SET latin1
  418.. INSERT (1, 0, ''); BEGIN; (2, 0, 'hulu'); (3, 0, 'bulu'); COMMIT; (4, 0, 'skip')
  1468  TRANSACTION_PAYLOAD_EVENT: 100 inserts compressed with zstd in one transaction
  2297  INSERT (5, 0, 'after compressed')
  2676  CREATE TABLE t2 (a INT PRIMARY KEY, b JSON)
  2900  INSERT INTO t2 ... logged as a STATEMENT (binlog_format=statement), ends at 3159
  3190  UPDATE t2 SET b=JSON_REPLACE(b, '$.b', REPEAT("oOo", 50)) as PARTIAL_UPDATE_ROWS_EVENT
  4390  ROTATE to master-bin.000002
and its events carry MySQL 8's ANONYMOUS_GTID and PREVIOUS_GTIDS events, CRC32 checksums, server
id 1 and MINIMAL table map metadata.
"""
import json
import os
import re
import shutil
import time

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "binlog-fixtures")
BINLOG = os.path.join(FIXTURES, "mdev35643_mysql_80_binlog.000001")
RESULT = os.path.join(FIXTURES, "rpl_from_mysql80.result")


def gpl_fixture_or_skip():
    missing = [p for p in (BINLOG, RESULT) if not os.path.isfile(p)]
    if missing:
        pytest.skip(f"{', '.join(os.path.basename(p) for p in missing)} not in .cache/binlog-fixtures "
                    "(GPL-2 test data of Debian's mariadb-test-data; `make setup` fetches it)")


def result_tables():
    """The rows MariaDB's replica shows in rpl_from_mysql80.result after the whole file: the last
    `SELECT * FROM t1` and `SELECT * FROM t2` (tab-separated, a header line first)."""
    with open(RESULT) as f:
        lines = f.read().split("\n")
    tables = {}
    for i, line in enumerate(lines):
        m = re.fullmatch(r"SELECT \* FROM (t\d) ORDER BY a;", line)
        if not m:
            continue
        rows = []
        for row in lines[i + 2:]:
            if not re.match(r"^\d+\t", row):
                break
            rows.append(row.split("\t"))
        tables[m.group(1)] = rows  # the last SELECT of each table wins
    return tables


def status(ctx, source):
    return ctx.sql("SELECT status, last_error FROM chameleon.sources WHERE name = %s", (source,))[0]


def wait_status(ctx, source, want, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s, err = status(ctx, source)
        if s == want:
            return err
        time.sleep(0.3)
    raise AssertionError(f"source {source} not {want} after {timeout}s: {status(ctx, source)}")


def wait_rows(ctx, query, want, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ctx.one(query) == want:
            return
        time.sleep(0.3)
    assert ctx.one(query) == want


def serve_mysql_file(servers, with_t1):
    """A private MariaDB (basename master-bin, as the file's own rotate event names its next file)
    whose first binlog is replaced by the MySQL 8.0 file, as rpl_from_mysql80.test does it.
    `with_t1`: test.t1 exists as the file's source had it at offset 418 (latin1, as the .test
    writes it)."""
    my = servers.extra_mariadb(servers.mariadb.port + 1, log_basename="master-bin")
    with my.root() as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE test")
        if with_t1:
            cur.execute("CREATE TABLE test.t1 (a INT PRIMARY KEY, b INT, c VARCHAR(1024)) ENGINE=InnoDB "
                        "CHARACTER SET latin1")
        cur.execute("SHOW MASTER STATUS")
        assert cur.fetchone()[0] == "master-bin.000001"
    my.stop()
    first = os.path.join(my.dir, "data", "master-bin.000001")
    os.remove(first)
    shutil.copyfile(BINLOG, first)
    shutil.chown(first, "mysql", "mysql")
    my._launch()
    with my.root() as c, c.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        logs = {r[0]: r[1] for r in cur.fetchall()}
    assert logs.get("master-bin.000001") == os.path.getsize(BINLOG), logs
    return my


@pytest.mark.parametrize("start", [418, 4])
def test_a_mysql80_binlog_served_by_mariadb_replicates_compressed_and_partial_json(ctx, servers, start):
    """start 418: t1 exists in MariaDB and PostgreSQL, registered without a copy, and reading
    starts after the file's CREATE TABLE t1, where its first row transaction begins (an
    ANONYMOUS_GTID event). start 4: nothing exists but the schemas; the whole file is read
    (its format description, PREVIOUS_GTIDS, CREATE TABLE t1 replayed at the destination)."""
    gpl_fixture_or_skip()
    expected = result_tables()
    my = serve_mysql_file(servers, with_t1=start == 418)
    try:
        ctx.pg.execute("CREATE SCHEMA mysql80")
        if start == 418:
            ctx.pg.execute("CREATE TABLE mysql80.t1 (a integer PRIMARY KEY, b integer, c varchar(1024))")
        ctx.pg.execute("SELECT chameleon.add_source('m80', %s, %s)",
                       (my.url(), json.dumps({"test": "mysql80"})))
        ctx.sources.append("m80")
        assert ctx.one("SELECT chameleon.start_replica('m80', start_position => %s)",
                       (f"master-bin.000001:{start}",)) == "running"

        # t2's row was logged as a statement: the source stops there, naming table and position,
        # after applying everything before it (the compressed transaction included)
        err = wait_status(ctx, "m80", "error")
        assert "master-bin.000001:3159" in err and "test.t2" in err and "statement" in err, err

        # t1 as MariaDB's replica has it in the .result (rows 1 to 5; it cannot apply the
        # compressed transaction and skips it), plus the compressed transaction's 100 rows, as
        # rpl_from_mysql80.test's SQL wrote them: ($i+1000, $i, CONCAT("--", $i, "--",
        # REPEAT("\\/", 100), "--")), where mysqltest sends "\\/" and MySQL reads "\/" as "/"
        want_t1 = [(int(a), int(b), c) for a, b, c in expected["t1"]]
        assert [r[0] for r in want_t1] == [1, 2, 3, 4, 5]
        want_t1 += [(1000 + i, i, f"--{i}--{'/' * 100}--") for i in range(100)]
        got_t1 = ctx.sql("SELECT a, b, c FROM mysql80.t1 ORDER BY a")
        assert got_t1 == sorted(want_t1)

        # the statement's row, as the .result shows it: the DBA loads it (the data "loaded by
        # other means" of start_position), then starts past the statement's transaction
        (a, doc), = expected["t2"]
        before = json.loads(doc)
        assert before == {"a": "hulu", "b": "[zyzzy]" * 100, "c": "bulu"}
        assert ctx.one("SELECT count(*) FROM mysql80.t2") == 0  # created by the file's CREATE TABLE
        ctx.pg.execute("INSERT INTO mysql80.t2 VALUES (%s, %s)", (int(a), doc))
        assert ctx.one("SELECT chameleon.enable_replica('m80')") == "stopped"
        assert ctx.one("SELECT chameleon.start_replica('m80', start_position => 'master-bin.000001:3190')") \
            == "running"
        # the partial JSON update: JSON_REPLACE(b, '$.b', REPEAT("oOo", 50)) on that document
        # the column is text: the file's CREATE TABLE t2 comes through a MariaDB server, whose JSON
        # is LONGTEXT (a MySQL server's gives jsonb); so the document is compared as the exact text
        # MySQL prints, the stricter test
        assert ctx.one("SELECT data_type FROM information_schema.columns WHERE table_schema = 'mysql80' "
                       "AND table_name = 't2' AND column_name = 'b'") == "text"
        after = dict(before, b="oOo" * 50)
        wait_rows(ctx, "SELECT b FROM mysql80.t2 WHERE a = 1", json.dumps(after))
        assert ctx.sql("SELECT a FROM mysql80.t2") == [(1,)]
        # and on through the file's rotate into MariaDB's own next file
        assert ctx.one("SELECT chameleon.wait_for('m80', '60 seconds'::interval)") is True
        assert status(ctx, "m80")[0] == "running"
        assert ctx.sql("SELECT a, b, c FROM mysql80.t1 ORDER BY a") == sorted(want_t1)
        assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0
        assert ctx.sql("SELECT mysql_table, state FROM chameleon.tables ORDER BY 1") == \
            [("test.t1", "replicating"), ("test.t2", "replicating")]
        assert ctx.sql("SELECT * FROM chameleon.errors") == []
    finally:
        try:
            ctx.pg.execute("SELECT chameleon.stop_replica('m80')")
        except Exception:
            pass
        my.stop()
        servers.extra.remove(my)
