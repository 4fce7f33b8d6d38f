"""Set-based replay (docs/internals.md, "Set-based apply"): a batch's row events applied per
table as their net change must give exactly what applying them one by one gives, and a
divergence must still be reported with the exact event."""
import time

import oracle

KEYED = ["customers", "orders", "Order Items"]


def init(ctx, source="src"):
    assert ctx.one("SELECT chameleon.init_replica(%s, wait => true)", (source,)) == "initialised"


def wait_for(ctx, source="src", timeout="120 seconds"):
    assert ctx.one("SELECT chameleon.wait_for(%s, %s::interval)", (source, timeout)) is True


def rows_written(ctx, table):
    """Rows PostgreSQL inserted, updated and deleted in `table` (the workers' counters reach
    the statistics when they exit)."""
    ctx.pg.execute("SELECT pg_stat_clear_snapshot()")
    return ctx.one(f"SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
                   f"WHERE relid = '{table}'::regclass")


def same_key_many_times(ctx, base):
    """Row events touching the same keys many times: in one source transaction and across
    transactions (all read into one batch while the replica is stopped). Returns the number
    of row events written to orders."""
    o = base
    ctx.my_exec(
        "START TRANSACTION",
        # insert, update x3, key change, delete, re-insert
        f"INSERT INTO orders (order_id, customer_id, amount, status, placed, note) VALUES ({o}, 1, 1.5, 'new', '2024-01-01 00:00:00', 'a')",
        f"UPDATE orders SET status = 'u1' WHERE order_id = {o}",
        f"UPDATE orders SET status = 'u2', amount = 2.25 WHERE order_id = {o}",
        f"UPDATE orders SET status = 'u3', note = NULL WHERE order_id = {o}",
        f"UPDATE orders SET order_id = {o + 1} WHERE order_id = {o}",
        f"DELETE FROM orders WHERE order_id = {o + 1}",
        f"INSERT INTO orders (order_id, customer_id, amount, status, placed, note) VALUES ({o}, 2, 3, 'again', NULL, 'reinserted')",
        # an existing row deleted then inserted again (an update), and one updated
        "DELETE FROM orders WHERE order_id = 1",
        "INSERT INTO orders (order_id, customer_id, amount, status, placed, note) VALUES (1, 9, 9.99, 'back', '2020-02-29 12:00:00', 'same key')",
        "UPDATE orders SET amount = amount + 1 WHERE order_id = 2",
        # a composite key changed back and forth, and two keys swapped through a third
        f"INSERT INTO `Order Items` VALUES ({o}, 1, 1, 'x'), ({o}, 2, 2, 'y')",
        f"UPDATE `Order Items` SET line = 9 WHERE `Order ID` = {o} AND line = 1",
        f"UPDATE `Order Items` SET line = 1 WHERE `Order ID` = {o} AND line = 2",
        f"UPDATE `Order Items` SET line = 2, Qty = 22 WHERE `Order ID` = {o} AND line = 9",
        "COMMIT")
    # the same key across transactions of one batch, customers interleaved
    for i, stmt in enumerate([
            f"INSERT INTO orders (order_id, customer_id, amount, status, placed, note) VALUES ({o + 10}, 1, 0, 'new', NULL, NULL)",
            f"UPDATE orders SET status = 't2' WHERE order_id = {o + 10}",
            f"UPDATE orders SET order_id = {o + 11}, status = 't3' WHERE order_id = {o + 10}",
            f"DELETE FROM orders WHERE order_id = {o + 11}",
            f"INSERT INTO orders (order_id, customer_id, amount, status, placed, note) VALUES ({o + 11}, 3, 4, 'reinserted', NULL, 'across')",
            f"UPDATE orders SET order_id = {o + 10} WHERE order_id = {o + 11}"]):
        ctx.my_exec("START TRANSACTION", stmt, f"UPDATE customers SET name = 'n{base}-{i}' WHERE id = 1",
                    "COMMIT")
    return 14 + 6


def test_same_key_many_times_in_a_batch_and_across_ddl(ctx):
    ctx.add_source(options='{"replica_batch_size": 10000}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    ctx.pg.execute("SELECT pg_stat_reset_single_table_counters('shop.orders'::regclass)")
    events = same_key_many_times(ctx, 1000)
    # a DDL statement between row events: a barrier, then the same again on the new shape
    ctx.my_exec("ALTER TABLE orders ADD COLUMN extra INT DEFAULT 7")
    events += same_key_many_times(ctx, 2000)
    ctx.my_exec("UPDATE orders SET extra = 8 WHERE order_id = 2000")
    events += 1
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, KEYED)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    # the batches went as sets: fewer rows written than row events (one by one: one each)
    written = rows_written(ctx, "shop.orders")
    assert written < events, (written, events)


def test_divergence_in_a_batch_is_reported_with_the_exact_event(ctx):
    ctx.add_source(options='{"replica_batch_size": 10000}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    wait_for(ctx)
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    # the destination diverges: a row the source still has is gone
    ctx.pg.execute("DELETE FROM shop.orders WHERE order_id = 3")
    same_key_many_times(ctx, 1000)
    with ctx.my.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, start = cur.fetchone()[:2]
    ctx.my_exec("START TRANSACTION", "UPDATE orders SET status = 'x' WHERE order_id = 2",
                "UPDATE orders SET status = 'diverged' WHERE order_id = 3",
                "UPDATE orders SET status = 'y' WHERE order_id = 1", "COMMIT")
    with ctx.my.cursor() as cur:
        cur.execute(f"SHOW BINLOG EVENTS IN '{file}' FROM {start}")
        updates = [e for e in cur.fetchall() if e[2].startswith("Update_rows")]
    # MariaDB logs each statement's row change as its own event: the second one is the failing one
    at = f"{file}:{updates[1][4]}"
    same_key_many_times(ctx, 3000)
    ctx.one("SELECT chameleon.start_replica('src')")
    deadline = time.time() + 60
    while ctx.one("SELECT status FROM chameleon.sources") != "error":
        assert time.time() < deadline
        time.sleep(0.2)
    err = ctx.sql("SELECT mysql_table, binlog_position, message FROM chameleon.errors")
    assert len(err) == 1, err
    table, pos, msg = err[0]
    assert table == f"{ctx.my_schema}.orders" and pos == at, (err, at)
    assert f"update on {ctx.my_schema}.orders at {at} matched 0 rows" in msg and "(key 3)" in msg, msg
    # nothing of the failing batch was applied
    assert ctx.one("SELECT count(*) FROM shop.orders WHERE order_id = 3000") == 0
