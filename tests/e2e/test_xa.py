"""End to end: XA transactions (issue 17). MariaDB writes an XA transaction's rows at XA
PREPARE; other transactions commit before its XA COMMIT or XA ROLLBACK, which comes later as a
group of its own. The rows are stored at the prepare, kept from replay (and from wait_for, the
backlog bound, verification), survive restarts of the workers and of PostgreSQL, and become
visible at the XA COMMIT's place in the stream (a later transaction changing the same rows is
applied after them), or are dropped at XA ROLLBACK. An XA COMMIT whose prepare was never read
stops the source, naming the xid and the position. The destination must equal the source
value for value."""
import os
import signal
import time

import pytest

import oracle
from test_big_transactions import _reconnect, _wait_worker_back

ALL = ["customers", "orders", "Order Items", "audit_log", "suppliers", "products", "misc_types"]


def start(ctx, options="{}"):
    ctx.start_source(options=options)
    ctx.wait_for()


def xa_session(ctx):
    """A connection of its own for an XA transaction (it stays prepared on it)."""
    my = ctx.servers.mariadb.root(ctx.my_schema)
    return my


def run(my, *stmts):
    with my.cursor() as cur:
        for s in stmts:
            cur.execute(s)


def prepared(ctx):
    """The prepared XA transactions stored: (xid, row events)."""
    return ctx.sql("SELECT t_xa_xid, i_events FROM sch_chameleon.t_replica_batch "
                   "WHERE t_xa_xid IS NOT NULL ORDER BY t_xa_xid")


def wait_prepared(ctx, xid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = [r for r in prepared(ctx) if r[0] == xid]
        if rows:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"the prepared XA transaction {xid} was not stored: {prepared(ctx)}")


def stored_rows(ctx, xid):
    return ctx.one("SELECT coalesce(sum(l.i_events), 0) FROM sch_chameleon.t_log_replica l JOIN sch_chameleon.t_replica_batch b "
                   "USING (i_id_batch, i_log_slot) WHERE b.t_xa_xid = %s", (xid,))


def verified(ctx, run_id, timeout=60):
    """The state of each table of a verification run, once it is over."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = ctx.sql("SELECT mysql_table, state FROM chameleon.verification WHERE run_id = %s", (run_id,))
        if rows and all(s not in ("queued", "running") for _, s in rows):
            return dict(rows)
        time.sleep(0.3)
    raise AssertionError(f"verification run {run_id} did not finish: {ctx.sql('SELECT * FROM chameleon.verification')}")


def test_xa_transactions_interleaved_with_ordinary_ones_apply_at_their_commit(ctx):
    start(ctx, '{"batch_retention": "1 second"}')
    xa = xa_session(ctx)
    rb = xa_session(ctx)
    try:
        # XA 'x1' inserts a row and updates another; prepared, not committed (ordinary
    # transactions below leave the rows the prepared ones lock alone: 1001, 1003, 3, 4, 7001)
        run(xa, "XA START 'x1'",
            "INSERT INTO customers (id, name, email) VALUES (1001, 'from xa', 'xa@example.com')",
            "UPDATE customers SET name = 'xa changed' WHERE id = 4",
            "INSERT INTO orders VALUES (7001, 1001, 12.5, 'xa', '2024-05-06 07:08:09', 'prepared')",
            "XA END 'x1'", "XA PREPARE 'x1'")
        # XA 'x2' (gtrid, bqual, format id) is prepared, then rolled back
        run(rb, "XA START 'x2', 'branch', 7",
            "INSERT INTO customers (id, name) VALUES (1003, 'rolled back')",
            "UPDATE customers SET name = 'never' WHERE id = 3",
            "XA END 'x2', 'branch', 7", "XA PREPARE 'x2', 'branch', 7")
        # ordinary transactions commit meanwhile, on the same tables
        ctx.my_exec("UPDATE customers SET name = 'ordinary 1' WHERE id = 1",
                    "INSERT INTO customers (id, name) VALUES (2001, 'ordinary')",
                    "START TRANSACTION",
                    "UPDATE customers SET balance = 42.5 WHERE id = 2",
                    "INSERT INTO orders VALUES (7002, 2001, 1.5, 'new', '2024-05-06 07:08:09', 'ordinary')",
                    "COMMIT")
        # wait_for does not wait for the prepared ones; none of their rows is applied
        ctx.wait_for()
        assert wait_prepared(ctx, "X'7831',X'',1")[1] == 3
        assert wait_prepared(ctx, "X'7832',X'6272616e6368',7")[1] == 2
        assert ctx.one("SELECT count(*) FROM shop.customers WHERE id IN (1001, 1003)") == 0
        assert ctx.one("SELECT name FROM shop.customers WHERE id = 4") != "xa changed"
        assert ctx.one("SELECT name FROM shop.customers WHERE id = 2001") == "ordinary"
        assert ctx.one("SELECT pending_events FROM chameleon.sources") == 0
        # verification does not wait for them either: the source's snapshot does not see their
        # rows, the destination does not have them
        names = [f"{ctx.my_schema}.customers", f"{ctx.my_schema}.orders"]
        run_id = ctx.one("SELECT chameleon.verify_tables('src', %s)", (names,))
        assert verified(ctx, run_id) == {n: "equal" for n in names}
        # maintenance (retention 1 s, every replayed batch past it) keeps the prepared rows
        time.sleep(1.5)
        ctx.one("SELECT chameleon.run_maintenance('src')")
        ctx.my_exec("UPDATE customers SET name = 'ordinary 2' WHERE id = 2")
        ctx.wait_for()
        time.sleep(1.5)
        ctx.one("SELECT chameleon.run_maintenance('src')")
        assert wait_prepared(ctx, "X'7831',X'',1")[1] == 3
        assert stored_rows(ctx, "X'7831',X'',1") == 3

        # the commit, then ordinary transactions changing its rows: order matters
        run(xa, "XA COMMIT 'x1'")
        ctx.my_exec("UPDATE customers SET name = 'after the commit' WHERE id = 1001",
                    "UPDATE customers SET name = 'after xa' WHERE id = 4",
                    "DELETE FROM orders WHERE order_id = 7001")
        run(rb, "XA ROLLBACK 'x2', 'branch', 7")
        ctx.my_exec("UPDATE customers SET name = 'after rollback' WHERE id = 3")
        ctx.wait_for()
    finally:
        xa.close()
        rb.close()
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT name FROM shop.customers WHERE id = 1001") == "after the commit"
    assert ctx.one("SELECT count(*) FROM shop.customers WHERE id = 1003") == 0
    assert prepared(ctx) == []
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE b_open") == 0
    assert ctx.sql("SELECT status, last_error FROM chameleon.sources")[0] == ("running", None)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def big_xa(my, xid, first, rows):
    """A prepared XA transaction of `rows` order inserts from id `first` (many pieces)."""
    run(my, f"XA START '{xid}'",
        f"INSERT INTO orders SELECT seq, seq % 50, seq + 0.5, 'xa', '2024-01-02 03:04:05', "
        f"REPEAT(CONCAT('n', seq), 30) FROM seq_{first}_to_{first + rows - 1}",
        f"XA END '{xid}'", f"XA PREPARE '{xid}'")


@pytest.mark.launcher_db
def test_a_prepared_xa_transaction_survives_kill_and_restart_and_commits_once(ctx):
    """A prepared XA transaction large enough to be stored in pieces (1 MB); kill -9 of the
    read worker (PostgreSQL restarts every backend), then stop_replica/start_replica, between
    its prepare and its commit; ordinary transactions commit meanwhile."""
    start(ctx, '{"batch_max_memory": 1, "replica_batch_size": 500}')
    rows = 20_000
    xa = xa_session(ctx)
    try:
        big_xa(xa, "big", 100_000, rows)
        xid = "X'626967',X'',1"
        ctx.my_exec("UPDATE customers SET name = 'during 1' WHERE id = 1")
        ctx.wait_for()
        assert wait_prepared(ctx, xid)[1] == rows

        pid = ctx.one("SELECT worker_pid FROM chameleon.sources")
        os.kill(pid, signal.SIGKILL)
        _reconnect(ctx)
        _wait_worker_back(ctx, pid)
        ctx.my_exec("UPDATE customers SET name = 'during 2' WHERE id = 2")
        ctx.wait_for()
        # kept once (a prepare whose commit the crash lost is read again whole: same outcome)
        assert prepared(ctx) == [(xid, rows)]
        assert stored_rows(ctx, xid) == rows
        assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE b_open") == 1
        assert ctx.one("SELECT count(*) FROM shop.orders WHERE order_id >= 100000") == 0

        assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
        ctx.my_exec("UPDATE customers SET name = 'while stopped' WHERE id = 3")
        ctx.one("SELECT chameleon.start_replica('src')")
        ctx.wait_for()
        assert prepared(ctx) == [(xid, rows)]
        assert stored_rows(ctx, xid) == rows
        assert ctx.one("SELECT count(*) FROM shop.orders WHERE order_id >= 100000") == 0

        run(xa, "XA COMMIT 'big'")
        ctx.my_exec("UPDATE orders SET status = 'after' WHERE order_id BETWEEN 100000 AND 100099",
                    "DELETE FROM orders WHERE order_id BETWEEN 100100 AND 100109")
        ctx.wait_for()
    finally:
        xa.close()
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM shop.orders WHERE order_id >= 100000") == rows - 10
    assert prepared(ctx) == []
    # committed once: one batch holds its rows, at the commit's position
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE i_events = %s", (rows,)) == 1
    ends = ctx.sql("SELECT t_binlog_name, i_binlog_position FROM sch_chameleon.t_replica_batch ORDER BY i_id_batch")
    assert ends == sorted(ends, key=lambda e: (int(e[0].rsplit(".", 1)[1]), e[1])), ends
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_an_xa_commit_whose_prepare_was_not_read_stops_the_source(ctx):
    """The prepare lies before where reading starts (here a start_position after it): its
    rows are neither in the destination nor in the log, so its XA COMMIT stops the source with
    the xid and the position named. An XA ROLLBACK of such a transaction has nothing to undo."""
    start(ctx)
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    xa = xa_session(ctx)
    rb = xa_session(ctx)
    try:
        run(xa, "XA START 'early'", "INSERT INTO customers (id, name) VALUES (1005, 'early')",
            "XA END 'early'", "XA PREPARE 'early'")
        run(rb, "XA START 'gone'", "INSERT INTO customers (id, name) VALUES (1006, 'gone')",
            "XA END 'gone'", "XA PREPARE 'gone'")
        with ctx.my.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            file, pos = cur.fetchone()[:2]
        ctx.one("SELECT chameleon.start_replica('src', start_position => %s)", (f"{file}:{pos}",))
        run(rb, "XA ROLLBACK 'gone'")
        ctx.my_exec("UPDATE customers SET name = 'before the commit' WHERE id = 1")
        ctx.wait_for()
        assert ctx.one("SELECT status FROM chameleon.sources") == "running"
        run(xa, "XA COMMIT 'early'")
        with ctx.my.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            end = cur.fetchone()[1]
        ctx.my_exec("UPDATE customers SET name = 'after the commit' WHERE id = 2")
    finally:
        xa.close()
        rb.close()
    status, error = ctx.wait_status("error")
    assert status == "error", error
    assert "X'6561726c79',X'',1" in error and f"{file}:{end}" in error, error
    assert "XA PREPARE was not read" in error and "sync_tables" in error, error
    assert f"start_position => '{file}:{end}'" in error, error
    # nothing applied past it
    assert ctx.one("SELECT name FROM shop.customers WHERE id = 2") != "after the commit"
    assert ctx.one("SELECT binlog_position FROM chameleon.sources") < end
    # what the hint says: go on after it, copy the table it changed again
    assert ctx.one("SELECT chameleon.enable_replica('src')") == "stopped"
    ctx.one("SELECT chameleon.start_replica('src', start_position => %s)", (f"{file}:{end}",))
    ctx.one("SELECT chameleon.sync_tables('src', ARRAY[%s])", (f"{ctx.my_schema}.customers",))
    deadline = time.time() + 120
    while ctx.one("SELECT state FROM chameleon.tables WHERE mysql_table = %s",
                  (f"{ctx.my_schema}.customers",)) != "replicating":
        assert time.time() < deadline, ctx.sql("SELECT state, last_error FROM chameleon.tables")
        time.sleep(0.2)
    ctx.wait_for()
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT name FROM shop.customers WHERE id = 1005") == "early"


def test_an_xa_transaction_prepared_before_the_initial_copy_and_committed_after_it_stops_the_source(ctx):
    """The copy's snapshot does not see a prepared transaction's rows, and reading starts
    after its prepare: its XA COMMIT stops the source (the hint says how to go on)."""
    xa = xa_session(ctx)
    try:
        run(xa, "XA START 'before copy'", "INSERT INTO customers (id, name) VALUES (1007, 'before copy')",
            "XA END 'before copy'", "XA PREPARE 'before copy'")
        start(ctx)
        assert ctx.one("SELECT count(*) FROM shop.customers WHERE id = 1007") == 0
        run(xa, "XA COMMIT 'before copy'")
    finally:
        xa.close()
    status, error = ctx.wait_status("error")
    assert status == "error", error
    assert "X'6265666f726520636f7079',X'',1" in error and "XA PREPARE was not read" in error, error
    assert ctx.one("SELECT count(*) FROM shop.customers WHERE id = 1007") == 0


def test_a_prepare_read_again_replaces_the_one_stored(ctx):
    """start_replica with a start_position before a stored prepare: it is read again and
    stored once (not refused, not doubled), and its commit applies it once."""
    start(ctx)
    with ctx.my.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, pos = cur.fetchone()[:2]
    xa = xa_session(ctx)
    try:
        run(xa, "XA START 'again'", "INSERT INTO customers (id, name) VALUES (1008, 'again')",
            "UPDATE customers SET name = 'xa again' WHERE id = 4", "XA END 'again'", "XA PREPARE 'again'")
        ctx.my_exec("UPDATE customers SET name = 'ordinary' WHERE id = 1")
        ctx.wait_for()
        xid = "X'616761696e',X'',1"
        assert prepared(ctx) == [(xid, 2)]
        assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
        ctx.one("SELECT chameleon.start_replica('src', start_position => %s)", (f"{file}:{pos}",))
        ctx.wait_for()
        assert prepared(ctx) == [(xid, 2)] and stored_rows(ctx, xid) == 2
        assert ctx.one("SELECT count(*) FROM shop.customers WHERE id = 1008") == 0
        run(xa, "XA COMMIT 'again'")
        ctx.my_exec("UPDATE customers SET name = 'after' WHERE id = 1008")
        ctx.wait_for()
    finally:
        xa.close()
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert prepared(ctx) == []
    assert ctx.sql("SELECT status, last_error FROM chameleon.sources")[0] == ("running", None)
