"""End to end against a MySQL 8.4 server: tests/mysql84.py speaks MySQL 8.4's protocol and
dialogue in front of the session's MariaDB (which holds the tables: discovery, snapshot and copy
are answered by a real server) and serves real MySQL binlog files to COM_BINLOG_DUMP_GTID as
MySQL's Binlog_sender does (no MySQL server can be installed here; the module's docstring says
what it does as MySQL does). What runs here runs only against MySQL:

- caching_sha2_password: the full authentication (RSA key over a plain connection, cleartext
  over TLS) the first time, the fast path after; a wrong password refused with MySQL's error;
- the 8.4 dialogue: SHOW BINARY LOG STATUS (SHOW MASTER STATUS is a syntax error there and is
  never sent), MySQL GTID sets (Executed_Gtid_Set, tagged GTIDs of 8.4), no MariaDB variable or
  function asked;
- GTID positioning (gtid_enable): COM_BINLOG_DUMP_GTID with the executed set, the server
  skipping what the set holds; a restart of the workers resumes from the set it stored;
- MySQL's artificial first ROTATE, sent without a checksum to our driver.

The files: `mysql-enum-string-set.000001` (MySQL 8.0.28, GTIDs 93e95066-...:1-5: ALTER USER,
CREATE TABLE mysql.t (f1 CHAR(128), f2 VARCHAR(300), f3 ENUM('var1', 'variant2', 'foo'),
f4 SET('one', 'two', 'three', 'four'), f5 TEXT), one INSERT, one UPDATE of that row, one DELETE
of it) and `binlog_transaction_with_GTID_TAG.000001` (MySQL 9.6.0: PREVIOUS_GTIDS
55778904-...:1-13:mytag:1-2, one transaction tagged mytag:3 inserting (3, 100, 250.00) into
test.orders (INT, INT, DECIMAL(10,2))), both from rust_mysql_common's test data
(tests/fixtures/binlogs/README.md). The values below are what mysqlbinlog -vv shows of them.
"""
import decimal
import json
import os
import sys
import time

import psycopg
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import REPL_PASSWORD, REPL_USER, make_tls_certs  # noqa: E402
from mysql84 import MySQL84  # noqa: E402

BINLOGS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "binlogs")
ENUM_FILE = os.path.join(BINLOGS, "mysql-enum-string-set.000001")
TAG_FILE = os.path.join(BINLOGS, "binlog_transaction_with_GTID_TAG.000001")
U_ENUM = "93e95066-a2f4-11ec-9b69-9657f0ae95e2"
U_TAG = "55778904-0299-11f1-b1b8-4ef0c4956feb"

D = "0123456789"
LONG = (D * 12 + "012345678") * 2 + D * 4  # the 298 characters of f2 (insert) and f5 (update)
INSERTED = (D * 10, LONG, "var1", "one,three", D)
UPDATED = ("field1", "field_2", "variant2", "two,four", LONG)

CREATE_T = ("CREATE TABLE mysql.t (f1 CHAR(128), f2 VARCHAR(300), f3 ENUM('var1', 'variant2', 'foo'), "
            "f4 SET('one', 'two', 'three', 'four'), f5 TEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")


def port(servers, n):
    """Ports past the session MariaDB's and the extra servers' of other tests (+1 to +3)."""
    return servers.mariadb.port + 4 + n


def wait_for(ctx, source, timeout="60 seconds"):
    assert ctx.one("SELECT chameleon.wait_for(%s, %s::interval)", (source, timeout)) is True


def wait_until(what, check, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout}s")


def source_state(ctx, name):
    return ctx.sql("SELECT status, last_error, binlog_file, gtid FROM chameleon.sources WHERE name = %s", (name,))[0]


def stop(ctx, name, server):
    ctx.one("SELECT chameleon.stop_replica(%s)", (name,))
    # the read worker's dump connection is gone before the server writes more
    wait_until("the binlog dump closed", lambda: all(d.get("closed") for d in server.dumps))


def assert_mysql84_dialogue(server):
    """Only what MySQL 8.4 knows was asked; the server itself raised nothing."""
    assert server.errors == []
    asked = "\n".join(server.queries)
    assert "SHOW MASTER STATUS" not in asked.upper()
    assert "SHOW BINARY LOG STATUS" in asked
    for mariadb_only in ("gtid_binlog_pos", "BINLOG_GTID_POS", "binlog_snapshot", "slave_connect_state"):
        assert mariadb_only.lower() not in asked.lower(), mariadb_only


@pytest.fixture
def mysql_t(servers):
    """The file's table in the session MariaDB, as the file's CREATE TABLE made it (schema mysql)."""
    with servers.mariadb.root() as c, c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS mysql.t")
        cur.execute(CREATE_T)
    try:
        yield
    finally:
        with servers.mariadb.root() as c, c.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS mysql.t")


def add_enum_source(ctx, server, password=REPL_PASSWORD, name="m84", by_gtid=True):
    ctx.pg.execute("SELECT chameleon.add_source(%s, %s, %s, %s)",
                   (name, server.url(REPL_USER, password), json.dumps({"mysql": name}),
                    json.dumps({"gtid_enable": by_gtid, "limit_tables": ["mysql.t"], "ssl_mode": "disabled"})))
    ctx.sources.append(name)


def assert_dump(dump, by_gtid, gtid_set, pos):
    """A dump request as MySQL received it: COM_BINLOG_DUMP_GTID with the set (`gtid_enable`),
    else COM_BINLOG_DUMP at binlog.000001:`pos`."""
    if by_gtid:
        assert dump["command"] == "COM_BINLOG_DUMP_GTID" and dump["gtid_set"] == gtid_set, dump
    else:
        assert (dump["command"], dump["file"], dump["pos"]) == ("COM_BINLOG_DUMP", "binlog.000001", pos), dump


@pytest.mark.parametrize("by_gtid", [True, False], ids=["gtid", "file"])
def test_enum_set_rows_replicate_and_resume_with_rsa_authentication(ctx, servers, mysql_t, by_gtid):
    server = MySQL84(port(servers, 1), servers.mariadb.port, ENUM_FILE, "binlog.000001",
                     {REPL_USER: REPL_PASSWORD}, committed=2)
    try:
        add_enum_source(ctx, server, by_gtid=by_gtid)
        assert ctx.one("SELECT chameleon.init_replica('m84', wait => true)") == "initialised"
        # the snapshot's position and GTID set: SHOW BINARY LOG STATUS after the CREATE TABLE
        assert ctx.sql("SELECT binlog_file, binlog_position, gtid FROM chameleon.sources") == \
            [("binlog.000001", 791, f"{U_ENUM}:1-2")]
        assert ctx.one("SELECT count(*) FROM m84.t") == 0
        # ENUM as a PostgreSQL enum of the same labels in MySQL's order, SET as text
        assert ctx.one("SELECT enum_range(NULL::m84.t_f3)::text") == "{var1,variant2,foo}"
        assert ctx.one("SELECT data_type FROM information_schema.columns WHERE table_schema = 'm84' "
                       "AND column_name = 'f4'") == "text"
        assert ctx.one("SELECT chameleon.start_replica('m84')") == "running"

        # the INSERT (GTID 3) is written: sent by GTID, replicated value for value
        server.committed = 3
        wait_for(ctx, "m84")
        rows = ctx.sql("SELECT f1::text, f2, f3::text, f4, f5 FROM m84.t")
        assert rows == [INSERTED]
        first = server.dumps[-1]
        assert_dump(first, by_gtid, f"{U_ENUM}:1-2", 791)
        assert first["sent"] == [f"{U_ENUM}:3"], first
        # positions in the file the server named in its artificial ROTATE
        assert source_state(ctx, "m84")[2:] == ("binlog.000001", f"{U_ENUM}:1-3")

        # the workers stop; the UPDATE (GTID 4) is written meanwhile; the restart asks for
        # everything after the stored set (or position) and gets only what it lacks
        stop(ctx, "m84", server)
        server.committed = 4
        assert ctx.one("SELECT chameleon.start_replica('m84')") == "running"
        wait_for(ctx, "m84")
        assert ctx.sql("SELECT f1::text, f2, f3::text, f4, f5 FROM m84.t") == [UPDATED]
        second = server.dumps[-1]
        assert second is not first
        assert_dump(second, by_gtid, f"{U_ENUM}:1-3", 1560)
        assert second["sent"] == [f"{U_ENUM}:4"], second

        # the DELETE (GTID 5) arrives on the open stream
        server.committed = 5
        wait_for(ctx, "m84")
        assert ctx.one("SELECT count(*) FROM m84.t") == 0
        assert second["sent"] == [f"{U_ENUM}:4", f"{U_ENUM}:5"]
        assert source_state(ctx, "m84") == ("running", None, "binlog.000001", f"{U_ENUM}:1-5")
        assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0
        assert ctx.sql("SELECT * FROM chameleon.errors") == []
        assert_mysql84_dialogue(server)

        # caching_sha2_password: the first login is the full one (plain connection: the RSA
        # key), every later one the fast path from the server's cache
        auths = [how for _, how in server.auths]
        assert auths[0] == "full with RSA" and len(auths) > 3, auths
        assert set(auths[1:]) == {"fast"}, auths
    finally:
        stop_quietly(ctx, "m84")
        server.stop()


def stop_quietly(ctx, name):
    try:
        ctx.pg.execute("SELECT chameleon.stop_replica(%s)", (name,))
    except psycopg.Error:
        pass


def test_without_the_global_read_lock_each_table_gets_its_point_by_lock_tables(ctx, servers, mysql_t):
    """A MySQL user without RELOAD: the copy takes each table's consistent point under LOCK
    TABLES ... READ, reading SHOW BINARY LOG STATUS on the locking connection (MariaDB would
    report binlog_snapshot_*, which MySQL lacks); the rows written after it replicate."""
    user, password = "nolock84", "no-lock-pw-84"
    with servers.mariadb.root() as c, c.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, LOCK TABLES ON *.* TO '{user}'@'%'")
        # the row of the file's INSERT, there before the copy (GTID 3 is written)
        cur.execute("INSERT INTO mysql.t VALUES (%s, %s, %s, %s, %s)", INSERTED)
    server = MySQL84(port(servers, 4), servers.mariadb.port, ENUM_FILE, "binlog.000001", {user: password},
                     committed=3)
    try:
        ctx.pg.execute("SELECT chameleon.add_source('m84', %s, %s, %s)",
                       (server.url(user, password), json.dumps({"mysql": "m84"}),
                        json.dumps({"limit_tables": ["mysql.t"], "ssl_mode": "disabled"})))
        ctx.sources.append("m84")
        assert ctx.one("SELECT chameleon.init_replica('m84', wait => true)") == "initialised"
        assert ctx.sql("SELECT consistent_point FROM chameleon.tables") == [("binlog.000001:1560",)]
        assert ctx.sql("SELECT f1::text, f2, f3::text, f4, f5 FROM m84.t") == [INSERTED]
        asked = "\n".join(server.queries)
        assert "LOCK TABLES `mysql`.`t` READ" in asked and "FLUSH TABLES WITH READ LOCK" in asked, asked
        assert ctx.one("SELECT chameleon.start_replica('m84')") == "running"
        server.committed = 4
        wait_for(ctx, "m84")
        assert ctx.sql("SELECT f1::text, f2, f3::text, f4, f5 FROM m84.t") == [UPDATED]
        assert server.dumps[-1]["command"] == "COM_BINLOG_DUMP" and server.dumps[-1]["sent"] == [f"{U_ENUM}:4"]
        assert_mysql84_dialogue(server)
    finally:
        stop_quietly(ctx, "m84")
        server.stop()
        with servers.mariadb.root() as c, c.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")


def test_wrong_password_is_refused_with_mysqls_error(ctx, servers, mysql_t):
    server = MySQL84(port(servers, 2), servers.mariadb.port, ENUM_FILE, "binlog.000001",
                     {REPL_USER: REPL_PASSWORD}, committed=2)
    try:
        add_enum_source(ctx, server, password="not-the-password")
        with pytest.raises(psycopg.Error) as e:
            ctx.one("SELECT chameleon.init_replica('m84', wait => true)")
        text = e.value.diag.message_primary
        assert f"Access denied for user '{REPL_USER}'@'127.0.0.1' (using password: YES)" in text, text
        assert "not-the-password" not in text and "127.0.0.1" in text, text
        last_error = ctx.one("SELECT last_error FROM chameleon.sources WHERE name = 'm84'")
        assert "Access denied" in last_error and "check the user and password" in last_error, last_error
        assert server.auths == [(REPL_USER, "refused")]
        # the right password in the cache does not let a wrong one through the fast path
        server.cache.add(REPL_USER)
        with pytest.raises(psycopg.Error):
            ctx.one("SELECT chameleon.init_replica('m84', wait => true)")
        assert server.auths[-1] == (REPL_USER, "refused")
        assert server.errors == []
    finally:
        server.stop()


def test_tagged_gtids_over_tls_and_a_purged_position(ctx, servers):
    """MySQL 8.4's tagged GTIDs: the executed set `uuid:1-13:mytag:1-2` read from SHOW BINARY LOG
    STATUS, sent back in COM_BINLOG_DUMP_GTID's tagged encoding, the tagged transaction
    replicated and the set moved to mytag:1-3; the login over TLS (certificate verified) is the
    full one with the cleartext password, then the fast path. A start position missing what
    the server purged is refused with MySQL's error."""
    certs = make_tls_certs(os.path.join(servers.scratch, "mysql84-tls"))
    server = MySQL84(port(servers, 3), servers.mariadb.port, TAG_FILE, "binlog.000004",
                     {REPL_USER: REPL_PASSWORD}, tls=certs, committed=0, row_metadata="MINIMAL")
    with servers.mariadb.root() as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS test")
        cur.execute("DROP TABLE IF EXISTS test.orders")
        cur.execute("CREATE TABLE test.orders (id INT NOT NULL PRIMARY KEY, quantity INT, amount DECIMAL(10,2))")
    try:
        ctx.pg.execute("SELECT chameleon.add_source('tag', %s, %s, %s)",
                       (server.url(REPL_USER, REPL_PASSWORD), json.dumps({"test": "tag"}),
                        json.dumps({"gtid_enable": True, "ssl_mode": "verify_identity", "ssl_ca": certs["ca"]})))
        ctx.sources.append("tag")
        assert ctx.one("SELECT chameleon.init_replica('tag', wait => true)") == "initialised"
        # as MySQL prints it (the tag's intervals after the uuid's own)
        assert ctx.one("SELECT gtid FROM chameleon.sources") == f"{U_TAG}:1-13:mytag:1-2"
        assert ctx.one("SELECT chameleon.start_replica('tag')") == "running"
        server.committed = 1
        wait_for(ctx, "tag")
        assert ctx.sql("SELECT id, quantity, amount FROM tag.orders") == [(3, 100, decimal.Decimal("250.00"))]
        first = server.dumps[-1]
        assert first["command"] == "COM_BINLOG_DUMP_GTID" and first["gtid_set"] == f"{U_TAG}:1-13:mytag:1-2", first
        assert first["sent"] == [f"{U_TAG}:mytag:3"], first
        assert source_state(ctx, "tag") == ("running", None, "binlog.000004", f"{U_TAG}:1-13,{U_TAG}:mytag:1-3")

        # a restart: nothing the set lacks, nothing sent again
        stop(ctx, "tag", server)
        assert ctx.one("SELECT chameleon.start_replica('tag')") == "running"
        wait_for(ctx, "tag")
        wait_until("the second dump", lambda: len(server.dumps) == 2)
        assert server.dumps[-1]["gtid_set"] == f"{U_TAG}:1-13:mytag:1-3" and server.dumps[-1]["sent"] == []
        assert ctx.one("SELECT count(*) FROM tag.orders") == 1
        assert_mysql84_dialogue(server)
        auths = [how for _, how in server.auths]
        assert auths[0] == "full over TLS" and set(auths[1:]) == {"fast"}, auths

        # a position from before what the server still has (it purged 1-13 and mytag:1-2)
        stop(ctx, "tag", server)
        ctx.one("SELECT chameleon.start_replica('tag', start_position => %s)", (f"{U_TAG}:1-10",))
        wait_until("the source in error", lambda: source_state(ctx, "tag")[0] == "error", timeout=60)
        err = source_state(ctx, "tag")[1]
        assert "purged required binary logs" in err and f"{U_TAG}:11-13:mytag:1-2" in err, err
    finally:
        stop_quietly(ctx, "tag")
        server.stop()
        with servers.mariadb.root() as c, c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS test")


def test_verify_and_repair_through_mysqls_dialogue(ctx, servers):
    """verify_tables against MySQL: each snapshot's position is taken under `LOCK TABLES ...
    READ` with SHOW BINARY LOG STATUS (MySQL has no binlog_snapshot_*); a user without the
    LOCK TABLES privilege gets a verification that fails saying so, never `equal`; with it, an
    equal table is equal, a changed value and an extra row are found and repaired by key, each
    key read again on the source in a snapshot of its own."""
    server = MySQL84(port(servers, 5), servers.mariadb.port, TAG_FILE, "binlog.000004",
                     {REPL_USER: REPL_PASSWORD}, committed=0, row_metadata="MINIMAL")
    with servers.mariadb.root() as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS test")
        cur.execute("DROP TABLE IF EXISTS test.orders")
        cur.execute("CREATE TABLE test.orders (id INT NOT NULL PRIMARY KEY, quantity INT, amount DECIMAL(10,2))")

    def verify(repair=False):
        run = ctx.one("SELECT chameleon.verify_tables('tag', repair => %s, wait => true)", (repair,))
        deadline = time.time() + 60
        while time.time() < deadline:
            rows = ctx.sql("SELECT mysql_table, state, reason, rows_source, rows_destination, method "
                           "FROM chameleon.verification WHERE run_id = %s", (run,))
            if rows and all(r[1] not in ("queued", "running") for r in rows):
                return rows
            time.sleep(0.3)
        raise AssertionError(f"verification run {run} did not end")

    try:
        ctx.pg.execute("SELECT chameleon.add_source('tag', %s, %s, %s)",
                       (server.url(REPL_USER, REPL_PASSWORD), json.dumps({"test": "tag"}),
                        json.dumps({"gtid_enable": True, "ssl_mode": "disabled"})))
        ctx.sources.append("tag")
        assert ctx.one("SELECT chameleon.init_replica('tag', wait => true)") == "initialised"
        assert ctx.one("SELECT chameleon.start_replica('tag')") == "running"
        server.committed = 1
        wait_for(ctx, "tag")
        assert ctx.sql("SELECT id, quantity, amount FROM tag.orders") == [(3, 100, decimal.Decimal("250.00"))]
        # the source's table made what the file says (the server serves the file; the
        # MariaDB behind it holds the rows the verification reads)
        with servers.mariadb.root() as c, c.cursor() as cur:
            cur.execute("INSERT INTO test.orders VALUES (3, 100, 250.00)")

        [(table, state, reason, _, _, _)] = verify()
        assert (table, state) == ("test.orders", "failed"), reason
        assert "LOCK TABLES" in reason, reason

        with servers.mariadb.root() as c, c.cursor() as cur:
            cur.execute(f"GRANT LOCK TABLES ON test.* TO '{REPL_USER}'@'%'")
        before = len(server.queries)
        [(table, state, reason, rows_source, rows_destination, method)] = verify()
        assert (table, state, rows_source, rows_destination) == ("test.orders", "equal", 1, 1), reason
        assert method.startswith("key ranges"), method
        asked = "\n".join(server.queries[before:])
        assert "LOCK TABLES `test`.`orders` READ" in asked and "SHOW BINARY LOG STATUS" in asked, asked

        ctx.pg.execute("UPDATE tag.orders SET amount = 250.01 WHERE id = 3")
        ctx.pg.execute("INSERT INTO tag.orders VALUES (4, 1, 1.00)")
        [(table, state, reason, _, _, _)] = verify(repair=True)
        assert state == "repaired", reason
        assert reason == "repaired: 2 differing keys rewritten by key (1 rows written)", reason
        assert ctx.sql("SELECT id, quantity, amount FROM tag.orders") == [(3, 100, decimal.Decimal("250.00"))]
        [(table, state, reason, _, _, _)] = verify()
        assert state == "equal", reason
        assert_mysql84_dialogue(server)
    finally:
        stop_quietly(ctx, "tag")
        server.stop()
        with servers.mariadb.root() as c, c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS test")
            cur.execute(f"REVOKE LOCK TABLES ON test.* FROM '{REPL_USER}'@'%'")
