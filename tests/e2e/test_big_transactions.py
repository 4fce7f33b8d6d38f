"""End to end: source transactions larger than `batch_max_memory` are stored in pieces into
one open batch that replay sees only once the commit closes it (docs/internals.md, contract
2); a read worker stopped, killed or disconnected in the middle removes the pieces and reads the
transaction again whole. The destination must equal the source value for value."""
import os
import signal
import threading
import time

import psycopg
import pytest

import oracle
import workload

ALL = ["customers", "orders", "Order Items", "audit_log", "suppliers", "products", "misc_types"]
# 1 MB pieces: a transaction of a few 10,000 rows is stored in tens of pieces
SMALL_PIECES = '{"batch_max_memory": 1, "replica_batch_size": 500}'


def start(ctx, options=SMALL_PIECES):
    ctx.start_source(options=options)
    wait_for(ctx)


def wait_for(ctx, timeout="300 seconds"):
    ctx.wait_for(timeout)


def big_transaction(ctx, first, rows, note_len=200):
    """One source transaction (on a connection of its own): `rows` order inserts from id
    `first`, then an update of each."""
    my = ctx.servers.mariadb.root(ctx.my_schema)
    try:
        with my.cursor() as cur:
            for stmt in [
                    "START TRANSACTION",
                    f"INSERT INTO orders SELECT seq, seq % 50, seq + 0.5, 'bulk', '2024-01-02 03:04:05', "
                    f"REPEAT(CONCAT('n', seq), {note_len // 7}) FROM seq_{first}_to_{first + rows - 1}",
                    f"UPDATE orders SET status = 'b2', amount = amount * 2 "
                    f"WHERE order_id BETWEEN {first} AND {first + rows - 1}",
                    "COMMIT"]:
                cur.execute(stmt)
    finally:
        my.close()


def in_background(fn):
    errors = []

    def run():
        try:
            fn()
        except Exception as e:  # reported by the caller
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t, errors


def open_batch(ctx):
    """(batch id, row events stored so far) of the open batch, or None."""
    rows = ctx.sql("SELECT i_id_batch, i_events FROM sch_chameleon.t_replica_batch WHERE b_open")
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def wait_open_batch(ctx, at_least, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ob = open_batch(ctx)
        if ob and ob[1] >= at_least:
            return ob
        time.sleep(0.01)
    raise AssertionError("no open batch of the large transaction was seen")


def assert_stored_once(ctx, rows):
    """The large transaction is one closed batch of exactly its row events; nothing open."""
    assert open_batch(ctx) is None
    batch, events, stored = ctx.sql(
        "SELECT b.i_id_batch, b.i_events, (SELECT sum(l.i_events) FROM sch_chameleon.t_log_replica l "
        "WHERE l.i_id_batch = b.i_id_batch AND l.i_log_slot = b.i_log_slot) "
        "FROM sch_chameleon.t_replica_batch b ORDER BY b.i_events DESC LIMIT 1")[0]
    assert events == stored == 2 * rows, (batch, events, stored)
    return batch


def test_a_transaction_of_many_pieces_is_replayed_whole_and_only_after_its_commit(ctx):
    start(ctx)
    position = ctx.sql("SELECT binlog_file, binlog_position FROM chameleon.sources")[0]
    rows = 30_000
    t, errors = in_background(lambda: big_transaction(ctx, 100_000, rows))
    # while the batch is open: the position stays before the transaction and replay shows
    # none of its rows (one snapshot for the three)
    seen_open = []
    deadline = time.time() + 300
    while True:
        assert time.time() < deadline, "the transaction was not replayed"
        opened, events, file, pos, applied = ctx.sql(
            "SELECT (SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE b_open), "
            "(SELECT coalesce(sum(i_events), 0) FROM sch_chameleon.t_replica_batch WHERE b_open), "
            "s.binlog_file, s.binlog_position, (SELECT count(*) FROM shop.orders WHERE order_id >= 100000) "
            "FROM chameleon.sources s")[0]
        if opened:
            seen_open.append(events)
            assert (file, pos) == position, "the read position moved inside the transaction"
            assert applied == 0, f"replay applied {applied} rows of a transaction not yet committed"
        if not t.is_alive() and ctx.one("SELECT count(*) FROM shop.orders WHERE order_id >= 100000") == rows:
            break
        time.sleep(0.01)
    t.join()
    assert not errors, errors
    assert seen_open and max(seen_open) > 0, "the transaction was never stored in pieces"
    assert len(set(seen_open)) > 1, f"the open batch did not grow piece by piece: {sorted(set(seen_open))}"
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert_stored_once(ctx, rows)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


@pytest.mark.launcher_db
def test_read_worker_killed_stopped_or_cut_off_mid_transaction_stores_it_once(ctx):
    """kill -9 of the read worker (PostgreSQL restarts every backend; the launcher the
    workers), stop_replica, and the source closing the binlog connection, each while a large
    transaction is half stored: the pieces are removed, the transaction read again whole."""
    start(ctx)
    rows = 40_000

    # kill -9
    t, errors = in_background(lambda: big_transaction(ctx, 100_000, rows))
    killed_batch, _ = wait_open_batch(ctx, 2_000)
    pid = ctx.one("SELECT worker_pid FROM chameleon.sources")
    os.kill(pid, signal.SIGKILL)
    t.join()
    assert not errors, errors
    _reconnect(ctx)
    _wait_worker_back(ctx, pid)
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE i_id_batch = %s", (killed_batch,)) == 0
    assert_stored_once(ctx, rows)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)

    # stop_replica: the open batch goes with the worker
    t, errors = in_background(lambda: big_transaction(ctx, 200_000, rows))
    stopped_batch, _ = wait_open_batch(ctx, 2_000)
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    t.join()
    assert not errors, errors
    deadline = time.time() + 30
    while open_batch(ctx) is not None:
        assert time.time() < deadline, "stop_replica left the open batch"
        time.sleep(0.1)
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_log_replica WHERE i_id_batch = %s", (stopped_batch,)) == 0
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)

    # the source ends the binlog connection: the reader reconnects from the stored position
    t, errors = in_background(lambda: big_transaction(ctx, 300_000, rows))
    cut_batch, _ = wait_open_batch(ctx, 2_000)
    with ctx.my.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        for (dump,) in cur.fetchall():
            cur.execute(f"KILL {dump}")
    t.join()
    assert not errors, errors
    wait_for(ctx)
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE i_id_batch = %s", (cut_batch,)) == 0
    assert open_batch(ctx) is None
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    # each of the three transactions is in exactly one batch, whole
    sizes = [r[0] for r in ctx.sql("SELECT i_events FROM sch_chameleon.t_replica_batch "
                                   "WHERE i_events = %s ORDER BY i_id_batch", (2 * rows,))]
    assert sizes == [2 * rows] * 3, sizes
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_a_large_transaction_among_small_ones_keeps_the_commit_order(ctx):
    """Small transactions of other sessions before and during the large one, and small ones
    changing the large one's rows right after its commit: replay applies them in commit
    order (an update of a row the large transaction inserted fails if applied before it)."""
    start(ctx)
    rows = 30_000
    def small_ones():
        my = ctx.servers.mariadb.root()
        workload.run(my, ctx.my_schema, 800, seed=5, next_order=10_000, pause=0.002)
        my.close()

    w, werrors = in_background(small_ones)
    time.sleep(0.5)
    big_transaction(ctx, 100_000, rows)
    for i in range(0, rows, rows // 40):
        ctx.my_exec(f"UPDATE orders SET status = 'after', note = 'changed {i}' WHERE order_id = {100_000 + i}")
    ctx.my_exec("DELETE FROM orders WHERE order_id BETWEEN 100000 AND 100010")
    w.join()
    assert not werrors, werrors
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert_stored_once(ctx, rows)
    # batches in id order end in binlog order
    ends = ctx.sql("SELECT t_binlog_name, i_binlog_position FROM sch_chameleon.t_replica_batch ORDER BY i_id_batch")
    assert ends == sorted(ends, key=lambda e: (int(e[0].rsplit(".", 1)[1]), e[1])), ends
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch") > 3


def _reconnect(ctx, timeout=60):
    """After a crash: wait until the old session is gone, then connect to the recovered server."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            ctx.pg.execute("SELECT 1")
            time.sleep(0.2)
        except psycopg.Error:
            break
    try:
        ctx.pg.close()
    except psycopg.Error:
        pass
    while True:
        try:
            ctx.pg = ctx.servers.postgres.connect(ctx.db)
            ctx.pg.execute("SELECT 1")
            return
        except psycopg.Error:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def _wait_worker_back(ctx, old_pid, timeout=60):
    deadline = time.time() + timeout
    row = None
    while time.time() < deadline:
        try:
            row = ctx.sql("SELECT worker_pid, worker_alive, status FROM chameleon.sources")[0]
        except psycopg.OperationalError:
            _reconnect(ctx)
            continue
        if row[1] and row[0] != old_pid:
            return row
        time.sleep(0.3)
    raise AssertionError(f"the launcher did not restart the worker: {row}")
