"""End to end, sources that are not what a replica expects (issue 17): MariaDB's own column
types (UUID, INET6, INET4) copied and replicated, also for a table created while replicating;
MySQL's TIME range carried exactly by a type_override to interval, in the copy and the stream."""

import oracle
from test_replication import ALL, init, wait_for

UUIDS = ["6ccd780c-baba-1026-9564-5b8c656024db",  # version 1: MariaDB's index order swaps its segments
         "00000000-0000-7000-8000-000000000001",  # version 7
         "ffffffff-ffff-ffff-ffff-ffffffffffff",
         "00000000-0000-0000-0000-000000000000",  # every byte zero (the binlog drops trailing zeros)
         "11223344-5566-1788-99aa-bbccddee0000",
         "11223344-5566-4788-09aa-bbccddeeff00"]  # not the RFC 4122 variant
INET6 = ["::ffff:1.2.3.4", "2001:db8::1", "::", "::1", "fe80::1:0:0:0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
         "::1.2.3.4"]
INET4 = ["1.2.3.4", "255.255.255.255", "0.0.0.0", "10.0.0.0", "192.168.0.1", "0.0.0.1", "127.0.0.1"]


UUIDS2 = ["6ccd780c-baba-1026-9564-5b8c656024dc", "00000000-0000-7000-8000-000000000000",
          "fffffffe-ffff-ffff-ffff-ffffffffffff", "00000000-0000-0000-0000-000000000100",
          "11223344-5566-1788-99aa-bbccddef0000", "a1223344-5566-4788-09aa-bbccddeeff00"]
INET6_2 = ["::ffff:9.9.9.9", "2001:db8::2", "::2", "::3", "fe80::2", "ffff::", "::4.3.2.1"]


def _mariadb_rows(uuids, inet6, offset):
    return ", ".join(f"('{u}', {i + offset}, '{inet6[i % len(inet6)]}', '{INET4[i % len(INET4)]}')"
                     for i, u in enumerate(uuids))


def test_mariadb_uuid_inet6_inet4_are_copied_and_replicated(ctx):
    ctx.my_exec("CREATE TABLE t_mdb (u UUID PRIMARY KEY, n INT, a6 INET6, a4 INET4, u2 UUID DEFAULT"
                " '00000000-0000-0000-0000-0000000000aa', UNIQUE KEY (a6))",
                f"INSERT INTO t_mdb (u, n, a6, a4) VALUES {_mariadb_rows(UUIDS, INET6, 0)}",
                "INSERT INTO t_mdb (u, n) VALUES ('aaaaaaaa-0000-0000-0000-000000000000', 99)")
    ctx.add_source()
    init(ctx)
    assert ctx.sql("SELECT state, replica_enabled, last_error FROM chameleon.tables"
                   " WHERE mysql_table LIKE '%.t_mdb'") == [("copied", True, None)]
    types = dict(ctx.sql("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                         " WHERE attrelid = 'shop.t_mdb'::regclass AND attnum > 0"))
    assert (types["u"], types["a6"], types["a4"], types["u2"]) == ("uuid", "inet", "inet", "uuid")
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["t_mdb"] + ALL)

    ctx.one("SELECT chameleon.start_replica('src')")
    # a table with these types created while replicating
    ctx.my_exec("CREATE TABLE t_mdb_new (id INT PRIMARY KEY, u UUID NOT NULL, a6 INET6, a4 INET4)",
                "INSERT INTO t_mdb_new SELECT n, u, a6, a4 FROM t_mdb")
    # inserted, key-updated (the UUID is the key), updated and deleted through the binlog
    ctx.my_exec("DELETE FROM t_mdb WHERE n = 99",
                f"INSERT INTO t_mdb (u, n, a6, a4) VALUES {_mariadb_rows(UUIDS2, INET6_2, 100)}",
                "UPDATE t_mdb SET u = '00000000-0000-0000-0000-000000000002', a4 = '0.0.0.0' WHERE n = 1",
                "UPDATE t_mdb SET a6 = '::ffff:255.255.255.255', u2 = NULL WHERE n = 2",
                "DELETE FROM t_mdb WHERE n = 3",
                "UPDATE t_mdb_new SET u = '12345678-1234-1234-1234-123456789abc', a6 = '::' WHERE id = 0",
                "DELETE FROM t_mdb_new WHERE id = 4")
    wait_for(ctx)
    assert ctx.sql("SELECT mysql_table, reason FROM chameleon.discarded_rows") == []
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    assert ctx.sql("SELECT state, last_error FROM chameleon.tables WHERE mysql_table LIKE '%.t_mdb_new'") == [
        ("replicating", None)]
    counts = oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["t_mdb", "t_mdb_new"] + ALL)
    assert counts["t_mdb"] == 2 * len(UUIDS) - 1 and counts["t_mdb_new"] == len(UUIDS)


TIMES = ["-838:59:59", "838:59:59", "-838:59:59.999999", "838:59:59.999999", "-00:00:00.000001", "00:00:00",
         "24:00:00", "24:00:00.000001", "-24:00:00", "100:00:00.5", "-01:02:03.040506", "23:59:59.999999"]


def test_time_overridden_to_interval_keeps_every_mysql_time(ctx):
    ctx.my_exec("CREATE TABLE t_dur (id INT PRIMARY KEY, d TIME(6), d0 TIME)",
                "INSERT INTO t_dur VALUES " + ", ".join(f"({i}, '{t}', '{t.split('.')[0]}')" for i, t in enumerate(TIMES)),
                "INSERT INTO t_dur VALUES (100, NULL, NULL)")
    ctx.add_source(options='{"type_override": {"time(6)": {"override_to": "interval"},'
                           ' "time": {"override_to": "interval", "override_tables": ["*"]}}}')
    init(ctx)
    assert ctx.sql("SELECT reason FROM chameleon.discarded_rows") == []
    types = dict(ctx.sql("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                         " WHERE attrelid = 'shop.t_dur'::regclass AND attnum > 0"))
    assert (types["d"], types["d0"]) == ("interval", "interval")
    assert ctx.one("SELECT d::text FROM shop.t_dur WHERE id = 0") == "-838:59:59"
    assert ctx.one("SELECT d::text FROM shop.t_dur WHERE id = 4") == "-00:00:00.000001"
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "t_dur")

    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("INSERT INTO t_dur SELECT id + 1000, d, d0 FROM t_dur",
                "UPDATE t_dur SET d = '-837:00:00.000001', d0 = '-1:00:00' WHERE id = 1",
                "UPDATE t_dur SET id = 2002 WHERE id = 2", "DELETE FROM t_dur WHERE id = 3")
    wait_for(ctx)
    assert ctx.sql("SELECT reason FROM chameleon.discarded_rows") == []
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    assert oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "t_dur") == 2 * (len(TIMES) + 1) - 1


def test_a_change_logged_as_a_statement_stops_the_source_instead_of_being_dropped(ctx):
    ctx.add_source()
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    # harmless statement-logged work first: a table outside the mapping, savepoints
    ctx.my.cursor().execute("CREATE DATABASE IF NOT EXISTS odd_unmapped")
    ctx.my_exec("CREATE TABLE odd_unmapped.t (id INT PRIMARY KEY)",
                "SET SESSION binlog_format = 'STATEMENT'",
                "INSERT INTO odd_unmapped.t VALUES (1)",
                "SET SESSION binlog_format = 'ROW'",
                "START TRANSACTION", "UPDATE customers SET name = 'row' WHERE id = 1", "SAVEPOINT s1",
                "UPDATE customers SET name = 'row2' WHERE id = 2", "ROLLBACK TO SAVEPOINT s1", "COMMIT")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    ctx.my_exec("SET SESSION binlog_format = 'STATEMENT'",
                "UPDATE customers SET name = 'logged as a statement' WHERE id = 3",
                "SET SESSION binlog_format = 'ROW'")
    with ctx.my.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file = cur.fetchone()[0]
    status, error = ctx.wait_status("error")
    assert status == "error", error
    assert f"{ctx.my_schema}.customers" in error and "logged as a statement" in error, error
    assert "UPDATE customers SET name = 'logged as a statement' WHERE id = 3" in error, error
    assert f"{file}:" in error and "binlog_format = ROW" in error, error
    # nothing applied past it, nothing skipped: the row still has its old value at the destination
    assert ctx.one("SELECT name FROM shop.customers WHERE id = 3") != "logged as a statement"
    ctx.my.cursor().execute("DROP DATABASE odd_unmapped")


def test_prepared_xa_transactions_are_never_applied_before_their_outcome(ctx):
    ctx.add_source()
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my.cursor().execute("CREATE DATABASE IF NOT EXISTS odd_xa")
    # one-phase XA is an ordinary transaction; a prepared XA outside the mapping passes
    ctx.my_exec("CREATE TABLE odd_xa.t (id INT PRIMARY KEY) ENGINE=InnoDB",
                "XA START 'one'", "UPDATE customers SET name = 'one phase' WHERE id = 1", "XA END 'one'",
                "XA COMMIT 'one' ONE PHASE",
                "XA START 'other'", "INSERT INTO odd_xa.t VALUES (1)", "XA END 'other'", "XA PREPARE 'other'",
                "XA COMMIT 'other'",
                "UPDATE customers SET name = 'after' WHERE id = 2")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    # prepared, then rolled back: its row must never reach the destination, and replication
    # goes on (its rows were held at the prepare, dropped at the rollback)
    ctx.my_exec("XA START 'rb'", "INSERT INTO customers (id, name) VALUES (900, 'rolled back')", "XA END 'rb'",
                "XA PREPARE 'rb'", "XA ROLLBACK 'rb'", "UPDATE customers SET name = 'later' WHERE id = 3")
    wait_for(ctx)
    assert ctx.sql("SELECT status, last_error FROM chameleon.sources")[0] == ("running", None)
    assert ctx.one("SELECT count(*) FROM shop.customers WHERE id = 900") == 0
    assert ctx.one("SELECT name FROM shop.customers WHERE id = 3") == "later"
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE t_xa_xid IS NOT NULL") == 0
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    ctx.my.cursor().execute("DROP DATABASE odd_xa")
