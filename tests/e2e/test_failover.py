"""End to end: moving a source to another server (alter_source's mysql_url). A GTID failover
between two MariaDB servers whose binlogs have other basenames and file numbers must leave the
destination equal to the new primary value for value; a move without GTID must be refused
until a start position on the new server is given; a rotated password must just work, and be
echoed nowhere."""
import json
import os
import sys
import threading
import time

import psycopg
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import oracle  # noqa: E402
import workload  # noqa: E402
from conftest import MYSQL_PORT, load_sql  # noqa: E402
from harness import REPL_PASSWORD, REPL_USER, MariaDB  # noqa: E402

ALL = ["customers", "orders", "Order Items", "audit_log", "suppliers", "products", "misc_types"]
# the session MariaDB's port + 20 and + 21 (its own worker's under pytest-xdist)
PRIMARY_PORT = int(os.environ.get("CHAMELEON_TEST_FAILOVER_PORT", MYSQL_PORT + 20))


def _gtid_pos(server):
    with server.root() as c, c.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos")
        return cur.fetchone()[0]


def _exec(server, *stmts):
    with server.root() as c, c.cursor() as cur:
        for s in stmts:
            cur.execute(s)
        return cur.fetchall()


def _wait_replica(primary, replica, timeout=60):
    pos = _gtid_pos(primary)
    rows = _exec(replica, f"SELECT MASTER_GTID_WAIT('{pos}', {timeout})")
    assert rows[0][0] == 0, f"the replica did not reach {pos}"


class _Load(threading.Thread):
    """Shop transactions on `server` until stopped; errors are kept (none expected)."""

    def __init__(self, server, schema, next_order):
        super().__init__()
        self.server, self.schema, self.next_order = server, schema, next_order
        self.stop = threading.Event()
        self.errors = []
        self.chunks = 0

    def run(self):
        while not self.stop.is_set():
            try:
                conn = self.server.root()
                self.next_order = workload.run(conn, self.schema, 20, seed=self.next_order,
                                               next_order=self.next_order, pause=0.003)
                conn.close()
                self.chunks += 1
            except Exception as e:
                self.errors.append(e)
                return

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join()


@pytest.fixture
def topology(servers):
    """A primary (binlog alpha-bin, at file 6) and its GTID replica (binlog omega-bin, from
    file 1, log_slave_updates): the same transactions at other file names and numbers."""
    primary = MariaDB(servers.scratch, PRIMARY_PORT, server_id=11, log_basename="alpha-bin")
    replica = MariaDB(servers.scratch, PRIMARY_PORT + 1, server_id=12, log_basename="omega-bin",
                      extra_args=["--log-slave-updates"])
    try:
        primary.start()
        replica.start()
        _exec(primary, *["FLUSH BINARY LOGS"] * 5)
        _exec(replica, "RESET MASTER",
              f"SET GLOBAL gtid_slave_pos = '{_gtid_pos(primary)}'",
              f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={PRIMARY_PORT}, MASTER_USER='{REPL_USER}', "
              f"MASTER_PASSWORD='{REPL_PASSWORD}', MASTER_USE_GTID=slave_pos",
              "START SLAVE")
        yield primary, replica
    finally:
        for s in (replica, primary):
            try:
                s.stop()
            except Exception:
                pass


def _pg_text(ctx):
    rows = ctx.sql("SELECT s::text FROM chameleon.sources s")
    rows += ctx.sql("SELECT e::text FROM chameleon.errors e") if ctx.one(
        "SELECT to_regclass('chameleon.errors') IS NOT NULL") else []
    rows += ctx.sql("SELECT t_mysql_url_safe || coalesce(t_last_error, '') || coalesce(t_position_of, '') "
                    "FROM sch_chameleon.t_sources")
    return " ".join(str(r) for r in rows)


def test_gtid_failover_to_a_replica_with_other_binlog_names_loses_nothing(ctx, topology):
    primary, replica = topology
    schema = ctx.my_schema
    with primary.root() as my:
        load_sql(my, schema, "shop.sql")
    _wait_replica(primary, replica)
    ctx.pg.execute("SELECT chameleon.add_source('src', %s, %s, %s)",
                   (primary.url(), json.dumps({schema: ctx.pg_schema}), '{"gtid_enable": true}'))
    ctx.sources.append("src")
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    points = ctx.sql("SELECT DISTINCT t_binlog_name FROM sch_chameleon.t_replica_tables WHERE t_binlog_name IS NOT NULL")
    assert points and all(p[0].startswith("alpha-bin.00000") for p in points), points
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    with _Load(primary, schema, 10_000) as load:
        time.sleep(4)
    assert not load.errors and load.chunks > 0
    # a failover: the replica has every transaction, the primary goes away, the replica is promoted
    _wait_replica(primary, replica)
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    primary.stop()
    _exec(replica, "STOP SLAVE", "RESET SLAVE ALL")
    notices = []
    ctx.pg.add_notice_handler(lambda d: notices.append(d.message_primary))
    ctx.pg.execute("SELECT chameleon.alter_source('src', mysql_url => %s)", (replica.url(),))
    assert any("GTID" in n and str(replica.port) in n for n in notices), notices
    # replay passed the copy's points: none of the old server's is left to compare
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_tables WHERE t_binlog_name IS NOT NULL") == 0
    assert ctx.one("SELECT mysql_url FROM chameleon.sources WHERE name = 'src'") == \
        f"mysql://{REPL_USER}:***@127.0.0.1:{replica.port}"
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    with _Load(replica, schema, 900_000) as load:
        time.sleep(4)
    assert not load.errors and load.chunks > 0
    assert ctx.one("SELECT chameleon.wait_for('src', '120 seconds')") is True
    assert ctx.one("SELECT binlog_file FROM chameleon.sources WHERE name = 'src'").startswith("omega-bin.")
    assert ctx.one("SELECT status FROM chameleon.sources WHERE name = 'src'") == "running"
    with replica.root() as my:
        counts = oracle.assert_same_schema(my, ctx.pg, schema, ctx.pg_schema, ALL)
    assert counts["orders"] > 100, counts


def test_move_without_gtid_needs_a_start_position_on_the_new_server(ctx, servers, topology):
    other, _ = topology
    ctx.add_source()
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    ctx.my_exec("INSERT INTO orders VALUES (5001, 1, 1, 'before', NULL, 'n')")
    assert ctx.one("SELECT chameleon.wait_for('src', '60 seconds')") is True
    stored = ctx.one("SELECT binlog_file || ':' || binlog_position FROM chameleon.sources WHERE name = 'src'")
    # running: refused, with the way
    with pytest.raises(psycopg.Error) as e:
        ctx.pg.execute("SELECT chameleon.alter_source('src', mysql_url => %s)", (other.url(),))
    assert "running" in str(e.value) and "stop_replica" in (e.value.diag.message_hint or "")
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    ctx.pg.execute("SELECT chameleon.alter_source('src', mysql_url => %s)", (other.url(),))
    with pytest.raises(psycopg.Error) as e:
        ctx.pg.execute("SELECT chameleon.start_replica('src')")
    msg, hint = str(e.value), e.value.diag.message_hint or ""
    assert stored in msg and str(other.port) in msg and str(servers.mariadb.port) in msg, msg
    assert "gtid_enable" in hint and "start_position" in hint, hint
    assert REPL_PASSWORD not in msg + hint
    # the position on the new server is given: replication goes on there
    with other.root() as my:
        load_sql(my, ctx.my_schema, "shop.sql")
        with my.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            file, pos = cur.fetchone()[:2]
    ctx.pg.execute("SELECT chameleon.start_replica('src', start_position => %s)", (f"{file}:{pos}",))
    _exec(other, f"INSERT INTO `{ctx.my_schema}`.orders VALUES (5002, 1, 1, 'after', NULL, 'n')")
    assert ctx.one("SELECT chameleon.wait_for('src', '60 seconds')") is True
    assert ctx.one("SELECT status FROM shop.orders WHERE order_id = 5002") == "after"
    assert ctx.one("SELECT count(*) FROM shop.orders WHERE order_id = 5001") == 1


def test_rotated_password_is_taken_and_never_echoed(ctx, servers):
    _exec(servers.mariadb, "DROP USER IF EXISTS 'rotated'@'%'",
          "CREATE USER 'rotated'@'%' IDENTIFIED BY 'first-Secret-1'",
          "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD ON *.* TO 'rotated'@'%'")
    port = servers.mariadb.port
    ctx.add_source(url=f"mysql://rotated:first-Secret-1@127.0.0.1:{port}")
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    assert ctx.one("SELECT chameleon.stop_replica('src')") in ("initialised", "stopped")
    _exec(servers.mariadb, "ALTER USER 'rotated'@'%' IDENTIFIED BY 'second-Secret-2'")
    # a malformed URL is refused without echoing its password
    with pytest.raises(psycopg.Error) as e:
        ctx.pg.execute("SELECT chameleon.alter_source('src', mysql_url => %s)",
                       ("mysql://rotated:third-Secret-3@127.0.0.1:99999",))
    assert "invalid mysql_url" in str(e.value) and "third-Secret-3" not in str(e.value)
    ctx.pg.execute("SELECT chameleon.alter_source('src', mysql_url => %s)",
                   (f"mysql://rotated:second-Secret-2@127.0.0.1:{port}",))
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    ctx.my_exec("INSERT INTO orders VALUES (6001, 1, 1, 'rotated', NULL, 'n')", "UPDATE customers SET name = 'r'")
    assert ctx.one("SELECT chameleon.wait_for('src', '60 seconds')") is True
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    text = _pg_text(ctx)
    for secret in ("first-Secret-1", "second-Secret-2", "third-Secret-3"):
        assert secret not in text
