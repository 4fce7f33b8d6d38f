"""Replay by several workers of one source (`replay_workers`, docs/internals.md "Parallel
replay"): the batches applied next to each other must leave the destination exactly as one
worker applying them in order does, commit in batch order (a later batch never shows before
an earlier one, even when the earlier one fails), and a divergence must still be reported once,
at its exact event."""
import os
import random
import re
import signal
import time

import oracle

KEYED = ["customers", "orders", "Order Items"]
ALL = KEYED + ["suppliers", "products", "audit_log"]
OPTIONS = '{"replica_batch_size": 40, "replay_workers": 2}'


def init(ctx):
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"


def helper_pids(ctx):
    return [r[0] for r in ctx.sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_chameleon_rs replay src (helper)'")]


def overlapping_load(ctx, rng, transactions, first_key):
    """Source transactions whose row events touch a few hundred keys again and again (so that
    batches next to each other share rows), across keyed tables, a table with a foreign key
    (applied one by one) and a table without a key (matched by full row)."""
    keys = set(range(first_key, first_key + 300))
    ctx.my_exec(*[f"INSERT INTO orders (order_id, customer_id, amount, status) VALUES ({k}, 1, {k}.5, 'new')"
                  for k in sorted(keys)])
    for t in range(transactions):
        stmts = ["START TRANSACTION"]
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            k = rng.randint(first_key, first_key + 399)
            if op < 0.35 and k in keys:
                stmts.append(f"UPDATE orders SET amount = amount + 1, status = 's{t}' WHERE order_id = {k}")
            elif op < 0.45 and k in keys:
                new = k + 1000
                while new in keys:
                    new += 1000
                stmts.append(f"UPDATE orders SET order_id = {new} WHERE order_id = {k}")
                keys.discard(k)
                keys.add(new)
            elif op < 0.6 and k in keys:
                stmts.append(f"DELETE FROM orders WHERE order_id = {k}")
                keys.discard(k)
            elif op < 0.7 and k not in keys:
                stmts.append(f"INSERT INTO orders (order_id, customer_id, amount, status, note) "
                             f"VALUES ({k}, 2, 0.25, 'again', 'tx {t}')")
                keys.add(k)
            elif op < 0.8:
                line = rng.randint(1, 5)
                stmts.append(f"INSERT INTO `Order Items` VALUES ({k}, {line}, {t}, 'i') "
                             f"ON DUPLICATE KEY UPDATE Qty = Qty + 1")
            elif op < 0.85:
                stmts.append(f"UPDATE customers SET tiny = {t % 100}, notes = 'tx {t}' WHERE id = {1 + k % 4}")
            elif op < 0.92:
                stmts.append(f"INSERT INTO audit_log VALUES ({k % 7}, 'tx {t}')")
            elif op < 0.96:
                stmts.append(f"DELETE FROM audit_log WHERE id = {k % 7} LIMIT 1")
            else:
                stmts.append(f"UPDATE products SET price = price + 1 WHERE supplier_id = {1 + k % 2}")
        stmts.append("COMMIT")
        ctx.my_exec(*stmts)


def drain_watching(ctx, timeout=180):
    """Waits until the source is replayed; returns how many samples saw the helper running."""
    seen = 0
    deadline = time.time() + timeout
    while True:
        seen += len(helper_pids(ctx)) > 0
        if ctx.one("SELECT chameleon.wait_for('src', '0.2 seconds'::interval)"):
            return seen
        assert time.time() < deadline, ctx.sql("SELECT status, last_error FROM chameleon.sources")


def applied_next_to_earlier(ctx, since):
    """The batches the log says were applied next to earlier ones after byte `since`."""
    with open(os.path.join(ctx.servers.postgres.dir, "postgres.log"), errors="replace") as f:
        f.seek(since)
        return [line for line in f if "applied next to" in line and "row events at once" in line]


def log_size(ctx):
    return os.path.getsize(os.path.join(ctx.servers.postgres.dir, "postgres.log"))


def test_two_workers_leave_the_destination_equal_under_overlapping_changes_and_ddl(ctx):
    # the workers of this database log each batch they applied next to earlier ones
    ctx.pg.execute(f"ALTER DATABASE {ctx.db} SET log_min_messages = debug1")
    ctx.add_source(options=OPTIONS)
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.wait_for()
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    rng = random.Random(19)
    # a backlog: the workers find many batches waiting at once
    overlapping_load(ctx, rng, 600, 100)
    ctx.my_exec("ALTER TABLE orders ADD COLUMN extra INT DEFAULT 7")
    overlapping_load(ctx, rng, 600, 5000)
    since = log_size(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    seen = drain_watching(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    assert seen > 0, "the helper was never running"
    overlapped = applied_next_to_earlier(ctx, since)
    at_once = sum(int(re.search(r"(\d+) row events at once", line).group(1)) for line in overlapped)
    print(f"{len(overlapped)} batches applied next to earlier ones, {at_once} row events at once")
    assert overlapped and at_once > 0, "no batch was applied next to an earlier one"
    # and while the source keeps writing
    overlapping_load(ctx, rng, 400, 20000)
    drain_watching(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    # stopped in the middle of a backlog: the helpers are gone when stop_replica returns
    overlapping_load(ctx, rng, 600, 30000)
    time.sleep(1)
    assert helper_pids(ctx)
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    assert helper_pids(ctx) == []
    replayed = ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE b_replayed")
    time.sleep(0.5)
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE b_replayed") == replayed
    ctx.one("SELECT chameleon.start_replica('src')")
    drain_watching(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def test_a_failing_batch_stops_every_later_one_and_is_reported_at_its_event(ctx):
    ctx.add_source(options=OPTIONS)
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.wait_for()
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    rng = random.Random(7)
    # enough before the failing batch for the helper to be applying batches when it comes
    overlapping_load(ctx, rng, 1000, 100)
    # the destination diverges: a row the source still has is gone
    ctx.pg.execute("DELETE FROM shop.orders WHERE order_id = 3")
    with ctx.my.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, start = cur.fetchone()[:2]
    ctx.my_exec("START TRANSACTION", "UPDATE orders SET status = 'x' WHERE order_id = 2",
                "UPDATE orders SET status = 'diverged' WHERE order_id = 3", "COMMIT")
    with ctx.my.cursor() as cur:
        cur.execute(f"SHOW BINLOG EVENTS IN '{file}' FROM {start}")
        updates = [e for e in cur.fetchall() if e[2].startswith("Update_rows")]
    at = f"{file}:{updates[1][4]}"
    # many later batches, on rows the failing one does not touch: none may commit
    overlapping_load(ctx, rng, 300, 50000)
    ctx.my_exec("INSERT INTO orders (order_id, customer_id, status) VALUES (99999, 1, 'last')")
    ctx.one("SELECT chameleon.start_replica('src')")
    status, _ = ctx.wait_status("error", timeout=120)
    assert status == "error"
    err = ctx.sql("SELECT mysql_table, binlog_position, message FROM chameleon.errors")
    assert len(err) == 1, err
    table, pos, msg = err[0]
    assert table == f"{ctx.my_schema}.orders" and pos == at, (err, at)
    assert "matched 0 rows" in msg and "(key 3)" in msg, msg
    # nothing of the failing batch, and nothing after it
    assert ctx.one("SELECT status FROM shop.orders WHERE order_id = 2") != "x"
    assert ctx.one("SELECT count(*) FROM shop.orders WHERE order_id >= 50000") == 0
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE b_replayed AND i_id_batch > "
                   "(SELECT min(i_id_batch) FROM sch_chameleon.t_replica_batch WHERE NOT b_replayed)") == 0
    # the helpers went with the replay worker
    deadline = time.time() + 30
    while helper_pids(ctx) and time.time() < deadline:
        time.sleep(0.2)
    assert helper_pids(ctx) == []


def test_a_helper_terminated_mid_drain_loses_nothing_and_comes_back(ctx):
    ctx.add_source(options=OPTIONS)
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.wait_for()
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    rng = random.Random(3)
    overlapping_load(ctx, rng, 1500, 100)
    ctx.one("SELECT chameleon.start_replica('src')")
    deadline = time.time() + 30
    while not helper_pids(ctx):
        assert time.time() < deadline, "no helper started"
        time.sleep(0.05)
    time.sleep(0.3)
    killed = helper_pids(ctx)[0]
    # SIGTERM: its batch is rolled back; the replay worker starts a new helper
    os.kill(killed, signal.SIGTERM)
    drain_watching(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.sql("SELECT message FROM chameleon.errors") == []
    deadline = time.time() + 30
    while not [p for p in helper_pids(ctx) if p != killed]:
        assert time.time() < deadline, "the helper was not started again"
        time.sleep(0.2)
