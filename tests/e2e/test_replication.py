"""End to end: a real MariaDB and a real PostgreSQL with pg_chameleon_rs; the destination
must equal the source value for value after each scenario."""
import json
import re
import threading
import time

import psycopg
import pytest

import oracle
import workload

KEYED = ["customers", "orders", "Order Items"]
ALL = KEYED + ["audit_log", "suppliers", "products", "misc_types"]


def init(ctx, source="src"):
    assert ctx.one("SELECT chameleon.init_replica(%s, wait => true)", (source,)) == "initialised"


def wait_for(ctx, source="src", timeout="120 seconds"):
    assert ctx.one("SELECT chameleon.wait_for(%s, %s::interval)", (source, timeout)) is True


@pytest.mark.smoke
def test_initial_copy_matches_source(ctx):
    ctx.add_source()
    init(ctx)
    counts = oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert counts == {"customers": 4, "orders": 3, "Order Items": 3, "audit_log": 2, "suppliers": 3, "products": 3,
                      "misc_types": 3}
    src = ctx.sql("SELECT status, binlog_file, binlog_position FROM chameleon.sources WHERE name = 'src'")[0]
    assert src[0] == "initialised" and src[1].startswith("mysql-bin.") and src[2] > 0
    tables = dict((r[0], r[1:]) for r in ctx.sql(
        "SELECT mysql_table, state, replica_enabled, rows_copied, consistent_point, last_error FROM chameleon.tables"))
    for t in KEYED:
        state, enabled, rows, point, err = tables[f"{ctx.my_schema}.{t}"]
        assert (state, enabled, err) == ("copied", True, None)
        assert point == f"{src[1]}:{src[2]}"
    # a table without a key is replicated too, by full row
    state, enabled, rows, point, err = tables[f"{ctx.my_schema}.audit_log"]
    assert (state, enabled, rows, point, err) == ("copied", True, 2, f"{src[1]}:{src[2]}", None)
    assert dict(ctx.sql("SELECT mysql_table, replica_identity FROM chameleon.tables")) == {
        f"{ctx.my_schema}.{t}": "key" for t in ALL if t != "audit_log"} | {f"{ctx.my_schema}.audit_log": "full row"}
    # keys are built after the data: the primary keys exist, composite and quoted
    pk = ctx.one("""SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM pg_index i
                    JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    WHERE i.indrelid = 'shop."Order Items"'::regclass AND i.indisprimary""")
    assert pk == "Order ID,line"
    types = dict(ctx.sql("""SELECT column_name, data_type FROM information_schema.columns
                            WHERE table_schema = 'shop' AND table_name = 'customers'"""))
    assert types["ubig"] == "numeric" and types["uint"] == "bigint" and types["usmall"] == "integer"
    assert types["created"] == "timestamp without time zone"


@pytest.mark.smoke
def test_initial_copy_reproduces_structure(ctx):
    ctx.add_source()
    init(ctx)
    indexes = dict(ctx.sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'shop' AND tablename = 'suppliers'"))
    assert indexes["suppliers_uq_name"] == 'CREATE UNIQUE INDEX suppliers_uq_name ON shop.suppliers USING btree (name)'
    assert indexes["suppliers_idx_created"] == 'CREATE INDEX suppliers_idx_created ON shop.suppliers USING btree (created, rating)'
    assert set(indexes) == {"suppliers_pkey", "suppliers_uq_name", "suppliers_idx_created"}
    notes = ctx.one("SELECT notes FROM chameleon.tables WHERE mysql_table LIKE '%.suppliers'")
    assert any("ft_name" in n and "FULLTEXT" in n for n in notes), notes
    assert any("idx_name_prefix" in n and "prefix" in n for n in notes), notes
    defaults = dict(ctx.sql("""SELECT column_name, column_default FROM information_schema.columns
                               WHERE table_schema = 'shop' AND table_name = 'suppliers'"""))
    assert defaults["name"] == "'unnamed'::character varying(50)"
    assert defaults["created"] == "CURRENT_TIMESTAMP"
    assert defaults["rating"] == "2.5::numeric(3,1)"
    assert defaults["kind"] == "'b'::shop.suppliers_kind"
    assert ctx.one("SELECT is_identity FROM information_schema.columns WHERE table_schema = 'shop' AND table_name = 'suppliers' AND column_name = 'id'") == "YES"
    assert ctx.one("SELECT obj_description('shop.suppliers'::regclass)") == "who supplies"
    assert ctx.one("SELECT col_description('shop.suppliers'::regclass, 2)") == "display name, it's unique"
    fk = ctx.sql("SELECT v_name, v_columns, v_ref_table, v_ref_columns, v_on_delete FROM sch_chameleon.t_foreign_keys")
    assert fk == [("fk_supplier", ["supplier_id"], "suppliers", ["id"], "RESTRICT")]
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    # the identity continues after the copied maximum (40)
    assert ctx.one("INSERT INTO shop.suppliers (name) VALUES ('new one') RETURNING id") == 41


def test_replicates_inserts_updates_deletes(ctx):
    ctx.add_source(options='{"replica_batch_size": 50}')
    init(ctx)
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    workload.run(ctx.my, ctx.my_schema, 300, seed=7)
    # a transaction that is rolled back leaves nothing
    ctx.my_exec("START TRANSACTION", "INSERT INTO orders VALUES (999999, 1, 1, 'x', NULL, 'rolled back')", "ROLLBACK")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    row = ctx.sql("""SELECT status, read_lag < interval '30 seconds', replay_lag < interval '30 seconds',
                            pending_batches, worker_alive, binlog_file IS NOT NULL, auto_restart FROM chameleon.sources""")[0]
    # this database is not the launcher's (chameleon.database_name): said plainly
    assert row == ("running", True, True, 0, True, True, False)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE b_replayed") > 0
    # events read and replayed per second over the last minute: every event, once each way
    events = ctx.one("SELECT sum(i_events) FROM sch_chameleon.t_replica_batch")
    rates = ctx.sql("SELECT read_events_per_s, replayed_events_per_s FROM chameleon.sources")[0]
    assert all(abs(float(r) - events / 60.0) <= 0.051 for r in rates), (rates, events)
    # show_status says "running" only while the workers are alive, and what to do otherwise
    status, detail = ctx.sql("SELECT status, detail FROM chameleon.show_status('src')")[0]
    assert status == "running" and "replay lag" in detail, (status, detail)
    ctx.one("SELECT pg_terminate_backend(replay_worker_pid) FROM chameleon.sources")
    deadline = time.time() + 30
    while ctx.one("SELECT status FROM chameleon.show_status('src')") != "down":
        assert time.time() < deadline
        time.sleep(0.2)
    assert "start_replica" in ctx.one("SELECT detail FROM chameleon.show_status('src')")
    assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
    assert ctx.sql("SELECT status FROM chameleon.show_status()") == [("stopped",)]
    assert ctx.one("SELECT worker_alive FROM chameleon.sources") is False


def test_stop_start_during_write_load_loses_and_duplicates_nothing(ctx):
    ctx.add_source(options='{"replica_batch_size": 20}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    errors = []

    def writer():
        try:
            conn = ctx.servers.mariadb.root()
            workload.run(conn, ctx.my_schema, 1500, seed=11, next_order=10_000, pause=0.003)
            conn.close()
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    cycles = 0
    while t.is_alive() and cycles < 6:
        time.sleep(0.7)
        assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
        time.sleep(0.3)
        assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
        cycles += 1
    t.join()
    assert not errors, errors
    assert cycles >= 3, "the write load ended before the replica could be restarted three times"
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_source_transaction_is_never_split_across_batches(ctx):
    ctx.add_source(options='{"replica_batch_size": 100}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    # a transaction of 100,000 row changes: 50,000 inserts, then 50,000 updates
    ctx.my_exec("START TRANSACTION",
                "INSERT INTO orders SELECT seq, 1, seq + 0.5, 'bulk', NULL, CONCAT('row ', seq) FROM seq_100000_to_149999",
                "UPDATE orders SET status = 'b2' WHERE order_id >= 100000", "COMMIT")
    wait_for(ctx)
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "orders")
    # in one batch although batches hold 100 rows
    biggest = ctx.one("SELECT max(i_events) FROM sch_chameleon.t_replica_batch")
    assert biggest == 100_000


def test_init_refuses_bad_source_settings(ctx, servers):
    ctx.add_source()
    # (setting, bad value, good value, what the refusal must say)
    for setting, bad, good, expected in [
        ("binlog_format", "'STATEMENT'", "'ROW'", "binlog_format=ROW"),
        ("binlog_row_image", "'MINIMAL'", "'FULL'", "binlog_row_image=FULL"),
        ("log_bin_compress", "ON", "OFF", "log_bin_compress=OFF"),
    ]:
        ctx.my_exec(f"SET GLOBAL {setting} = {bad}")
        try:
            with pytest.raises(psycopg.Error, match=expected):
                ctx.one("SELECT chameleon.init_replica('src', wait => true)")
        finally:
            ctx.my_exec(f"SET GLOBAL {setting} = {good}")
        assert ctx.one("SELECT status FROM chameleon.sources") == "ready"
        assert setting in ctx.one("SELECT last_error FROM chameleon.sources")

    nolog = servers.extra_mariadb(ctx.servers.mariadb.port + 1, binlog=False, server_id=2)
    ctx.pg.execute("SELECT chameleon.add_source('nobinlog', %s, '{\"shop\": \"other\"}')", (nolog.url(),))
    with pytest.raises(psycopg.Error, match="log_bin"):
        ctx.one("SELECT chameleon.init_replica('nobinlog', wait => true)")
    assert ctx.one("SELECT status FROM chameleon.sources WHERE name = 'nobinlog'") == "ready"
    assert ctx.one("SELECT count(*) FROM chameleon.tables") == 0


def test_wrong_password_and_unreachable_server_fail_fast(ctx):
    ctx.add_source(url=ctx.servers.mariadb.url(password="wrong"))
    started = time.time()
    with pytest.raises(psycopg.Error, match="Access denied"):
        ctx.one("SELECT chameleon.init_replica('src', wait => true)")
    row = ctx.sql("SELECT status, last_error FROM chameleon.sources")[0]
    assert row[0] == "ready" and "Access denied" in row[1] and "wrong" not in row[1]
    ctx.pg.execute("SELECT chameleon.add_source('down', 'mysql://u:p@127.0.0.1:1', '{\"x\": \"y\"}')")
    with pytest.raises(psycopg.Error, match="cannot connect"):
        ctx.one("SELECT chameleon.init_replica('down', wait => true)")
    assert time.time() - started < 30


def test_replay_error_with_exit_stops_in_error_and_resumes_after_enable(ctx):
    ctx.add_source()
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    # a row the destination refuses: break the destination on purpose
    ctx.pg.execute("ALTER TABLE shop.orders ADD CONSTRAINT no_big CHECK (order_id < 500000)")
    ctx.my_exec("INSERT INTO orders VALUES (600000, 1, 1, 'x', NULL, NULL)")
    deadline = time.time() + 60
    while ctx.one("SELECT status FROM chameleon.sources") != "error" and time.time() < deadline:
        time.sleep(0.2)
    while ctx.one("SELECT worker_alive FROM chameleon.sources") and time.time() < deadline:
        time.sleep(0.2)  # the read worker notices the error within a second
    src = ctx.sql("SELECT status, worker_alive, last_error FROM chameleon.sources")[0]
    assert src[0] == "error" and src[1] is False and "no_big" in src[2]
    err = ctx.sql("SELECT mysql_table, binlog_position, statement, sqlstate FROM chameleon.errors")[-1]
    assert err[0] == f"{ctx.my_schema}.orders" and err[1].startswith("mysql-bin.") and "INSERT INTO" in err[2]
    assert err[3] == "23514"
    ctx.pg.execute("ALTER TABLE shop.orders DROP CONSTRAINT no_big")
    assert ctx.one("SELECT chameleon.enable_replica('src')") == "stopped"
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("INSERT INTO orders VALUES (600001, 1, 1, 'y', NULL, NULL)")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, KEYED)


def test_replay_error_with_continue_disables_only_that_table(ctx):
    ctx.add_source(options='{"on_error_replay": "continue"}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.pg.execute("ALTER TABLE shop.orders ADD CONSTRAINT no_big CHECK (order_id < 500000)")
    ctx.my_exec("START TRANSACTION", "INSERT INTO orders VALUES (600000, 1, 1, 'x', NULL, NULL)",
                "INSERT INTO customers (name) VALUES ('still replicated')", "COMMIT")
    ctx.my_exec("UPDATE customers SET name = 'after the error' WHERE id = 1")
    wait_for(ctx)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    t = dict(ctx.sql("SELECT mysql_table, state FROM chameleon.tables"))
    assert t[f"{ctx.my_schema}.orders"] == "disabled"
    assert t[f"{ctx.my_schema}.customers"] == "replicating"
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["customers", "Order Items"])
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 1


def test_drop_extension_removes_catalogue_and_keeps_replicated_tables(ctx):
    ctx.add_source()
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("INSERT INTO orders VALUES (700000, 1, 1, 'z', NULL, NULL)")
    wait_for(ctx)
    ctx.one("SELECT chameleon.stop_replica('src')")
    ctx.pg.execute("DROP EXTENSION pg_chameleon_rs")
    left = ctx.sql("SELECT nspname FROM pg_namespace WHERE nspname IN ('chameleon', 'sch_chameleon')")
    assert left == []
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    # and it can be installed again next to the kept tables
    ctx.pg.execute("CREATE EXTENSION pg_chameleon_rs")
    assert ctx.one("SELECT count(*) FROM chameleon.sources") == 0
    ctx.sources.clear()


def _reconnect(ctx, timeout=60):
    """After a crash or restart: wait until the old session is really gone (the postmaster
    may not have noticed the crash yet), then connect to the recovered server."""
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


@pytest.mark.smoke
@pytest.mark.launcher_db
def test_worker_killed_mid_load_loses_and_duplicates_nothing(ctx):
    """kill -9 of the read worker, then of the replay worker: PostgreSQL restarts every
    backend (crash recovery), the launcher restarts the workers, which resume from the
    committed positions."""
    import os
    import signal
    ctx.add_source(options='{"replica_batch_size": 30}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    done = threading.Event()

    def writer():
        conn = ctx.servers.mariadb.root()
        workload.run(conn, ctx.my_schema, 1200, seed=23, next_order=20_000, pause=0.003)
        conn.close()
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    kills = 0
    while not done.is_set() and kills < 2:
        time.sleep(1.0)
        pid = ctx.one("SELECT worker_pid FROM chameleon.sources")
        victim = ctx.one("SELECT replay_worker_pid FROM chameleon.sources") if kills == 1 else pid
        os.kill(victim, signal.SIGKILL)
        kills += 1
        _reconnect(ctx)
        assert _wait_worker_back(ctx, pid)[2] == "running"
    t.join()
    assert kills >= 1
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_values_postgres_cannot_store_go_to_discarded_rows(ctx):
    """Zero dates and the invalid ENUM value '' (non-strict sql_mode) have no PostgreSQL
    equivalent: the row is kept in chameleon.discarded_rows with the reason, never changed."""
    ctx.my_exec("SET SESSION sql_mode = ''",
                "INSERT INTO customers (id, name, birthday) VALUES (500, 'zero date in copy', '0000-00-00')")
    ctx.add_source()
    init(ctx)
    copied = ctx.sql("SELECT mysql_table, reason FROM chameleon.discarded_rows")
    assert copied == [(f"{ctx.my_schema}.customers", 'column "birthday": zero date 0000-00-00 has no PostgreSQL equivalent')]
    assert ctx.one("SELECT rows_discarded FROM chameleon.tables WHERE mysql_table LIKE '%.customers'") == 1
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("SET SESSION sql_mode = ''",
                "INSERT INTO customers (id, name, created) VALUES (501, 'zero datetime', '0000-00-00 00:00:00')",
                "INSERT INTO customers (id, name, status) VALUES (502, 'bad enum', 'no such label')",
                "INSERT INTO customers (id, name) VALUES (503, 'fine')")
    wait_for(ctx)
    reasons = [r[0] for r in ctx.sql(
        "SELECT reason FROM chameleon.discarded_rows WHERE binlog_position IS NOT NULL ORDER BY discard_time")]
    assert reasons == ['column "created": zero date 0000-00-00 has no PostgreSQL equivalent',
                       'column "status": invalid ENUM value (index 0, the empty error value stored in non-strict mode)']
    assert ctx.one("SELECT count(*) FROM shop.customers WHERE id IN (500, 501, 502)") == 0
    assert ctx.one("SELECT name FROM shop.customers WHERE id = 503") == "fine"
    # the exact source bytes are kept: the row encoding holds the name as written
    raw = ctx.one("SELECT decode(row_encoded, 'base64') FROM chameleon.discarded_rows WHERE reason LIKE '%ENUM%'")
    assert b"bad enum" in bytes(raw)
    # a row the destination knowingly lacks: deleting it is no divergence, and an update that
    # makes it storable brings it back
    ctx.my_exec("UPDATE customers SET birthday = '2000-01-01' WHERE id = 500",
                "DELETE FROM customers WHERE id IN (501, 502)")
    wait_for(ctx)
    assert ctx.one("SELECT birthday::text FROM shop.customers WHERE id = 500") == "2000-01-01"
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


@pytest.mark.smoke
@pytest.mark.launcher_db
def test_postgres_restart_mid_load_resumes_through_the_launcher(ctx):
    ctx.add_source(options='{"replica_batch_size": 40}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    pid = ctx.one("SELECT worker_pid FROM chameleon.sources")
    t = threading.Thread(target=lambda: workload.run(
        ctx.servers.mariadb.root(), ctx.my_schema, 900, seed=31, next_order=30_000, pause=0.003))
    t.start()
    time.sleep(1.0)
    pg = ctx.servers.postgres
    pg.restart()
    _reconnect(ctx)
    _wait_worker_back(ctx, pid)
    t.join()
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


@pytest.mark.launcher_db
def test_stopped_source_stays_stopped_across_restart(ctx):
    ctx.add_source()
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.one("SELECT chameleon.stop_replica('src')")
    pg = ctx.servers.postgres
    pg.restart()
    _reconnect(ctx)
    time.sleep(3)  # several launcher rounds
    assert ctx.sql("SELECT status, worker_alive, auto_restart FROM chameleon.sources") == [("stopped", False, True)]


@pytest.mark.smoke
def test_a_source_stopped_as_soon_as_it_started_stops_every_time(ctx):
    # start_replica returns once the postmaster has forked the workers; a worker is not a
    # backend until it connects to its database, and pg_terminate_backend does nothing to it
    # before then: stop_replica must ask again, not wait 60 s for a worker that never heard it
    ctx.add_source()
    init(ctx)
    for i in range(40):
        ctx.one("SELECT chameleon.start_replica('src')")
        started = time.time()
        assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped", i
        assert time.time() - started < 20, f"round {i}: stop_replica took {time.time() - started:.1f} s"
        assert ctx.sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND backend_type IN ('pg_chameleon_rs read', 'pg_chameleon_rs replay')") == [], f"round {i}"
    assert ctx.sql("SELECT status, worker_alive FROM chameleon.sources") == [("stopped", False)]


def _insert_orders(ctx, first, transactions, rows_each, tag):
    for i in range(transactions):
        rows = ",".join(f"({first + i * rows_each + j}, 1, 1, '{tag}', NULL, NULL)" for j in range(rows_each))
        ctx.my_exec(f"INSERT INTO orders VALUES {rows}")


class _OrdersLocked:
    """Holds an ACCESS EXCLUSIVE lock on the destination's orders table: replay of its rows blocks."""

    def __init__(self, ctx):
        self.conn = ctx.servers.postgres.connect(ctx.db, autocommit=False)

    def __enter__(self):
        self.conn.execute("LOCK TABLE shop.orders IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


class _Load(workload.Background):
    """Writes shop transactions (20 at a time) on the source while the block runs. While the
    server is down it tries again, with fresh order ids (a commit may have happened before
    the error); `chunks` counts the 20-transaction runs that completed."""

    def __init__(self, ctx, next_order, pause=0.003):
        super().__init__(ctx)
        self.next_order, self.pause = next_order, pause
        self.chunks = 0

    def run(self):
        next_order = self.next_order
        while not self.stop.is_set():
            try:
                conn = self.ctx.servers.mariadb.root()
                next_order = workload.run(conn, self.ctx.my_schema, 20, seed=next_order, next_order=next_order,
                                          pause=self.pause)
                conn.close()
                self.chunks += 1
            except Exception as e:  # the server is down: try again
                self.errors.append(e)
                next_order += 10_000
                time.sleep(0.2)


def _start_with(ctx, options):
    ctx.add_source(options=options)
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")


def test_replay_blocked_by_a_lock_shows_as_replay_lag_and_reading_goes_on(ctx):
    _start_with(ctx, '{"replica_batch_size": 100}')
    with _OrdersLocked(ctx):
        _insert_orders(ctx, 200_000, 20, 100, "lock")
        time.sleep(4)
        row = ctx.sql("SELECT read_lag, replay_lag, pending_events, worker_alive FROM chameleon.sources")[0]
        read_lag, replay_lag, pending, alive = row
        assert alive
        assert read_lag.total_seconds() < 3, row        # reading did not wait for replay
        assert replay_lag.total_seconds() >= 3, row     # the blocked replay shows as replay lag
        assert pending == 2000, row                     # everything was read and stored
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def test_backlog_between_read_and_replay_is_bounded(ctx):
    _start_with(ctx, '{"replica_batch_size": 100, "max_backlog_events": 1000}')
    with _OrdersLocked(ctx):
        _insert_orders(ctx, 300_000, 50, 100, "backlog")
        time.sleep(4)
        pending = ctx.one("SELECT pending_events FROM chameleon.sources")
        assert 1000 <= pending < 5000, pending          # reading paused at the bound
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def test_compressed_binlog_event_stops_the_source_instead_of_skipping_rows(ctx):
    _start_with(ctx, "{}")
    ctx.my_exec("SET GLOBAL log_bin_compress = ON")
    try:
        # events longer than log_bin_compress_min_len (256 bytes) are written compressed
        ctx.my_exec("INSERT INTO orders VALUES (800000, 1, 1, 'compressed', NULL, REPEAT('z', 2000))")
    finally:
        ctx.my_exec("SET GLOBAL log_bin_compress = OFF")
    deadline = time.time() + 60
    while ctx.one("SELECT status FROM chameleon.sources") != "error" and time.time() < deadline:
        time.sleep(0.2)
    status, error = ctx.sql("SELECT status, last_error FROM chameleon.sources")[0]
    assert status == "error" and "log_bin_compress=OFF" in error, error
    assert ctx.one("SELECT count(*) FROM shop.orders WHERE order_id = 800000") == 0
    # the DBA resyncs: a new copy has the row
    ctx.one("SELECT chameleon.stop_replica('src')")
    init(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def test_type_override_tinyint1_to_boolean(ctx):
    ctx.my_exec("ALTER TABLE suppliers ADD COLUMN active TINYINT(1) NOT NULL DEFAULT 1",
                "UPDATE suppliers SET active = 0 WHERE id = 2")
    ctx.add_source(options='{"type_override": {"tinyint(1)": {"override_to": "boolean", "override_tables": ["*"]}}}')
    init(ctx)
    assert ctx.one("""SELECT data_type FROM information_schema.columns WHERE table_schema = 'shop'
                      AND table_name = 'suppliers' AND column_name = 'active'""") == "boolean"
    # other tinyint columns keep their type
    assert ctx.one("""SELECT data_type FROM information_schema.columns WHERE table_schema = 'shop'
                      AND table_name = 'customers' AND column_name = 'tiny'""") == "smallint"
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("INSERT INTO suppliers (id, name, active) VALUES (50, 'off', 0), (51, 'on', 1)",
                "UPDATE suppliers SET active = 1 WHERE id = 2",
                "INSERT INTO suppliers (id, name, active) VALUES (52, 'two', 2)")
    wait_for(ctx)
    assert ctx.sql("SELECT id, active FROM shop.suppliers ORDER BY id") == [
        (1, True), (2, True), (40, True), (50, False), (51, True)]
    assert "cannot become a boolean" in ctx.one("SELECT reason FROM chameleon.discarded_rows")
    ctx.my_exec("DELETE FROM suppliers WHERE id = 52")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def test_other_types_replicate_value_for_value(ctx):
    """FLOAT, DOUBLE, BIT, BINARY (zero-padded), VARBINARY, BLOB, TIME, YEAR, JSON, TIMESTAMP:
    inserted, updated and deleted through the binlog."""
    _start_with(ctx, "{}")
    ctx.my_exec(
        "INSERT INTO misc_types VALUES (10, 0.1, -2.5e-300, b'1111111111', 0x61, 0xFF00, REPEAT(0x00, 60000),"
        " '23:59:59.999', 2155, '{\"k\": [\"v\", 1e3, -0.5], \"\u017c\": {}}', '2038-01-19 03:14:07.999999')",
        "UPDATE misc_types SET f = f * 2, b = b'1', bin = 0x0102, t = '07:08:09', y = 1999,"
        " j = JSON_SET(j, '$.a', 'x'), ts = '2000-02-29 12:00:00' WHERE id = 1",
        "DELETE FROM misc_types WHERE id = 2",
        "UPDATE misc_types SET j = '[1, 2]', vb = 0x00 WHERE id = 3")
    wait_for(ctx)
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "misc_types")
    assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0


def test_skip_events_leaves_out_the_named_kinds_of_change(ctx):
    """skip_events (as in pg_chameleon): deletes of orders, inserts of `Order Items` and
    updates of customers are not replicated, the other changes are; updates and deletes of
    rows the destination knowingly lacks are no-ops, not divergence errors."""
    s = ctx.my_schema
    _start_with(ctx, json.dumps({"skip_events": {"delete": [f"{s}.orders"], "insert": [f"{s}.Order Items"],
                                                 "update": [f"{s}.customers"]}}))
    ctx.my_exec("DELETE FROM orders WHERE order_id = 3",
                "INSERT INTO orders (order_id, customer_id, amount, status) VALUES (10, 1, 5, 'new')",
                "INSERT INTO `Order Items` VALUES (10, 1, 1, 'x')",
                "UPDATE `Order Items` SET Qty = 7 WHERE `Order ID` = 10",  # a row the replica lacks
                "DELETE FROM `Order Items` WHERE `Order ID` = 2",
                "UPDATE customers SET name = 'changed' WHERE id = 1",
                "DELETE FROM customers WHERE id = 4")
    wait_for(ctx)
    assert ctx.sql("SELECT order_id FROM shop.orders ORDER BY 1") == [(1,), (2,), (3,), (10,)]
    assert ctx.sql('SELECT "Order ID", line FROM shop."Order Items" ORDER BY 1, 2') == [(1, 1), (1, 2)]
    assert ctx.one("SELECT name FROM shop.customers WHERE id = 1") == "min values"
    assert ctx.one("SELECT count(*) FROM shop.customers WHERE id = 4") == 0
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    # tables without skip_events are whole
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["suppliers", "products", "misc_types"])


def test_mariadb_restart_mid_load_loses_and_duplicates_nothing(ctx):
    """FLUSH BINARY LOGS, then a clean restart of MariaDB, while it is written to: the reader
    follows the rotation, loses its connection, reconnects with backoff from the last stored
    position and follows the binlog into the file the restart opened (an artificial ROTATE
    in mid-stream, whose name once lost 4 characters); the replica ends equal to the source."""
    _start_with(ctx, '{"replica_batch_size": 50}')
    with _Load(ctx, 40_000, pause=0.002) as load:
        time.sleep(1.5)
        ctx.my_exec("FLUSH BINARY LOGS")
        time.sleep(1.5)
        ctx.servers.mariadb.restart(down_seconds=2)
        time.sleep(3)
    assert load.chunks >= 2
    ctx.my = ctx.servers.mariadb.root()  # the old session died with the server
    caught_up = ctx.one("SELECT chameleon.wait_for('src', '120 seconds')")
    assert caught_up, ctx.sql("SELECT status, last_error, binlog_file, binlog_position, pending_events FROM chameleon.sources")
    # the stored position names the file the restart opened
    with ctx.my.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        current_file = cur.fetchone()[0]
    assert ctx.one("SELECT binlog_file FROM chameleon.sources") == current_file
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


@pytest.mark.launcher_db
def test_a_minute_of_load_through_worker_kills_and_both_servers_restarting(ctx):
    """A minute of writes on the source while, in turn, the read worker and the replay worker
    are killed with SIGKILL, MariaDB restarts and PostgreSQL restarts; the source follows by
    GTID (gtid_enable), so every reconnection goes through @slave_connect_state. Afterwards
    the destination equals the source: nothing lost, nothing applied twice."""
    import os
    import signal
    _start_with(ctx, '{"replica_batch_size": 50, "gtid_enable": true}')

    def kill(column):
        pid = ctx.one(f"SELECT {column} FROM chameleon.sources")
        os.kill(pid, signal.SIGKILL)
        _reconnect(ctx)
        _wait_worker_back(ctx, pid)

    started = time.time()
    with _Load(ctx, 60_000) as load:
        time.sleep(8)
        kill("worker_pid")
        time.sleep(6)
        kill("replay_worker_pid")
        time.sleep(6)
        ctx.servers.mariadb.restart(down_seconds=2)
        time.sleep(8)
        pid = ctx.one("SELECT worker_pid FROM chameleon.sources")
        ctx.servers.postgres.restart()
        _reconnect(ctx)
        _wait_worker_back(ctx, pid)
        time.sleep(max(0.0, 60 - (time.time() - started)))
    assert load.chunks >= 20, load.chunks
    ctx.my = ctx.servers.mariadb.root()
    caught_up = ctx.one("SELECT chameleon.wait_for('src', '180 seconds')")
    assert caught_up, ctx.sql("SELECT status, last_error, binlog_file, gtid, pending_events FROM chameleon.sources")
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    with ctx.my.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        assert ctx.one("SELECT gtid FROM chameleon.sources") == cur.fetchone()[0]
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def _wait_states(ctx, want, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = dict(ctx.sql("SELECT mysql_table, state FROM chameleon.tables"))
        if all(states.get(t) == s for t, s in want.items()):
            return states
        time.sleep(0.3)
    raise AssertionError(f"tables did not reach {want}: {states}")


@pytest.mark.smoke
def test_sync_tables_copies_a_disabled_table_again_while_the_source_keeps_replicating(ctx):
    """A replay error disables orders (on_error_replay=continue); sync_tables copies it again
    at a new consistent point while writes go on to every table; the changes made during its
    copy are applied once (catch-up), and the others never stop."""
    # large enough that replay passes changes to it while it is being copied again
    ctx.my_exec("INSERT INTO orders (order_id, customer_id, amount, note) "
                "SELECT 100000 + seq, 1, seq, REPEAT('n', 100) FROM seq_1_to_200000")
    ctx.add_source(options='{"on_error_replay": "continue", "replica_batch_size": 30}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    orders = f"{ctx.my_schema}.orders"
    ctx.pg.execute("ALTER TABLE shop.orders ADD CONSTRAINT no_big CHECK (order_id < 500000)")
    ctx.my_exec("INSERT INTO orders VALUES (600000, 1, 1, 'x', NULL, NULL)")
    _wait_states(ctx, {orders: "disabled"})
    # restarted, the reader no longer follows the disabled table: the sync must bring it back
    ctx.one("SELECT chameleon.stop_replica('src')")
    ctx.one("SELECT chameleon.start_replica('src')")
    with _Load(ctx, 70_000) as load:
        time.sleep(2)
        # an unknown name is refused, naming it; nothing changes
        with pytest.raises(psycopg.Error, match="no table \"nope.nope\""):
            ctx.one("SELECT chameleon.sync_tables('src', ARRAY['nope.nope'])")
        assert ctx.one("SELECT chameleon.sync_tables('src')") == [orders]
        _wait_states(ctx, {orders: "replicating"})
        time.sleep(2)
        # the reader started again following orders, before the copy's snapshot; the changes
        # replay passed during the copy were applied by the catch-up
        log = ctx.servers.postgres.log_tail(200)
        assert "the replicated tables changed; the reader starts again" in log
        assert re.search(r"orders: \d+ changes made during the copy applied", log)
    assert not load.errors, load.errors
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"
    # the constraint that made replay fail went with the old table
    assert ctx.one("SELECT count(*) FROM pg_constraint WHERE conname = 'no_big'") == 0
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 1
    # named, a replicating table is copied again too, and stays equal
    assert ctx.one(f"SELECT chameleon.sync_tables('src', ARRAY['{ctx.my_schema}.customers'])") == [f"{ctx.my_schema}.customers"]
    ctx.my_exec("UPDATE customers SET name = 'after the sync' WHERE id = 1")
    _wait_states(ctx, {f"{ctx.my_schema}.customers": "replicating"})
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


@pytest.mark.smoke
def test_detach_replica_replays_what_is_stored_and_leaves_ordinary_tables(ctx):
    """The cut-over: changes stored behind a replay error are replayed by detach_replica,
    sequences continue after the copied and replicated rows, the source's foreign keys exist
    (validated, RESTRICT kept) and the source is gone; the tables are ordinary tables."""
    ctx.add_source()
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    # replay of orders will fail (exit): everything written now stays stored, not replayed
    blocker = ctx.servers.postgres.connect(ctx.db, autocommit=False)
    blocker.execute("LOCK TABLE shop.orders IN ACCESS EXCLUSIVE MODE")
    blocker.execute("ALTER TABLE shop.orders ADD CONSTRAINT no_big CHECK (order_id < 500000)")
    ctx.my_exec("INSERT INTO orders VALUES (600000, 1, 1, 'x', NULL, NULL)")
    workload.run(ctx.my, ctx.my_schema, 150, seed=51, next_order=20_000)
    with ctx.my.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        target = cur.fetchone()[:2]
    deadline = time.time() + 60
    while tuple(ctx.sql("SELECT binlog_file, binlog_position FROM chameleon.sources")[0]) != target:
        assert time.time() < deadline, "the reader did not store everything"
        time.sleep(0.2)
    blocker.commit()
    blocker.close()
    deadline = time.time() + 60
    while ctx.one("SELECT status FROM chameleon.sources") != "error":
        assert time.time() < deadline
        time.sleep(0.2)
    pending = ctx.one("SELECT pending_events FROM chameleon.sources")
    assert pending > 150, pending
    ctx.pg.execute("ALTER TABLE shop.orders DROP CONSTRAINT no_big")

    summary = ctx.one("SELECT chameleon.detach_replica('src')")
    ctx.sources.clear()
    assert f"{pending} stored changes replayed" in summary, summary
    assert "foreign keys created and validated" in summary
    assert ctx.one("SELECT count(*) FROM chameleon.sources") == 0
    assert ctx.one("SELECT count(*) FROM chameleon.tables") == 0
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    # sequences continue after the rows
    top = ctx.one("SELECT max(id) FROM shop.customers")
    assert ctx.one("INSERT INTO shop.customers (name) VALUES ('written in PostgreSQL') RETURNING id") == top + 1
    # the source's foreign key, validated, RESTRICT as the application had it
    fk = ctx.sql("SELECT convalidated, condeferrable, confdeltype FROM pg_constraint WHERE conname = 'fk_supplier'")
    assert fk == [(True, False, "r")], fk
    # PostgreSQL 18 reports a RESTRICT key's violation as restrict_violation (23001), earlier
    # majors as foreign_key_violation (23503)
    refused = (psycopg.errors.RestrictViolation if ctx.pg.info.server_version >= 180000
               else psycopg.errors.ForeignKeyViolation)
    with pytest.raises(refused):
        ctx.pg.execute("DELETE FROM shop.suppliers WHERE id IN (SELECT supplier_id FROM shop.products)")


def test_the_log_stays_bounded_under_load_with_auto_maintenance(ctx):
    """batch_retention of 2 seconds: the replay worker's maintenance moves the writers from
    log partition to log partition and empties, with TRUNCATE, those whose batches are all
    replayed and older than that; the log holds seconds of changes, never the whole load, and
    the replica stays equal to the source."""
    _start_with(ctx, '{"batch_retention": "2 seconds", "replica_batch_size": 20}')
    sizes = []
    with _Load(ctx, 80_000, pause=0.002):
        for _ in range(24):
            time.sleep(0.5)
            sizes.append(ctx.one("SELECT coalesce(sum(i_events), 0) FROM sch_chameleon.t_log_replica"))
    wait_for(ctx)
    stored = ctx.one("SELECT coalesce(sum(i_events), 0) FROM sch_chameleon.t_log_replica")
    written = ctx.one("SELECT sum(i_events) FROM sch_chameleon.t_replica_batch")
    slots = ctx.one("SELECT count(DISTINCT i_log_slot) FROM sch_chameleon.t_replica_batch")
    log = ctx.servers.postgres.log_tail(400)
    assert "log maintenance:" in log and "past their retention removed" in log, log[-2000:]
    # the log never held the whole load: it shrank while the load went on
    assert any(b < a for a, b in zip(sizes, sizes[1:])), sizes
    assert stored == written  # what is left is consistent: every batch with its rows
    assert slots >= 1
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    time.sleep(2.5)
    summary = ctx.one("SELECT chameleon.run_maintenance('src')")
    assert "past their retention removed" in summary, summary
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_refresh_schema_copies_the_schema_as_it_is_now_while_replicating(ctx):
    """A table created and a table dropped on the source, outside the binlog (sql_log_bin=0:
    DDL replication cannot see them), while it is written to: refresh_schema copies the
    schema again (the new table is added, the dropped one is no longer replicated but kept in
    PostgreSQL; a table the filters leave out is not "gone") and replication goes on for every
    table."""
    _start_with(ctx, '{"replica_batch_size": 30}')
    ctx.one("SELECT chameleon.alter_source('src', %s)", (json.dumps({"skip_tables": [f"{ctx.my_schema}.suppliers"]}),))
    with _Load(ctx, 90_000):
        ctx.my_exec("SET SESSION sql_log_bin = 0",
                    "CREATE TABLE fresh (id INT PRIMARY KEY, v VARCHAR(20))",
                    "INSERT INTO fresh SELECT seq, CONCAT('v', seq) FROM seq_1_to_100",
                    "DROP TABLE misc_types",
                    "SET SESSION sql_log_bin = 1")
        tables = ctx.one("SELECT chameleon.refresh_schema('src', %s)", (ctx.my_schema,))
        assert f"{ctx.my_schema}.fresh" in tables and f"{ctx.my_schema}.misc_types" not in tables, tables
        ctx.my_exec("INSERT INTO fresh SELECT seq, 'after' FROM seq_101_to_150", "UPDATE fresh SET v = 'changed' WHERE id <= 10")
        _wait_states(ctx, {f"{ctx.my_schema}.{n}": "replicating" for n in ["fresh", "orders", "customers"]})
        ctx.my_exec("DELETE FROM fresh WHERE id > 140")
        time.sleep(1)
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema,
                              [n for n in ALL if n not in ("misc_types", "suppliers")] + ["fresh"])
    assert ctx.one("SELECT count(*) FROM chameleon.tables WHERE mysql_table LIKE '%.misc_types'") == 0
    # left out by skip_tables, not gone: still registered, not replicated
    assert ctx.one("SELECT state FROM chameleon.tables WHERE mysql_table LIKE '%.suppliers'") == "disabled"
    assert ctx.one("SELECT count(*) FROM shop.misc_types") > 0   # kept in PostgreSQL
    with pytest.raises(psycopg.Error, match="does not map a MySQL schema"):
        ctx.one("SELECT chameleon.refresh_schema('src', 'nope')")
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_alter_source_changes_filters_and_mappings_while_replicating(ctx):
    """skip_tables takes a table out at once (its PostgreSQL table kept, its changes no longer
    applied) and back in (copied again, then replicated); a newly mapped schema is copied
    and replicated; a replicated schema cannot silently move to another target."""
    crm = f"{ctx.my_schema}_crm"[:64]
    with ctx.my.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{crm}`")
        cur.execute(f"CREATE DATABASE `{crm}`")
        cur.execute(f"CREATE TABLE `{crm}`.contacts (id INT PRIMARY KEY, email VARCHAR(60))")
        cur.execute(f"INSERT INTO `{crm}`.contacts SELECT seq, CONCAT('c', seq, '@example.com') FROM seq_1_to_50")
    _start_with(ctx, '{"replica_batch_size": 30}')
    products = f"{ctx.my_schema}.products"
    with _Load(ctx, 95_000) as load:
        ctx.one("SELECT chameleon.alter_source('src', %s)", (json.dumps({"skip_tables": [products]}),))
        state, error = ctx.sql("SELECT state, last_error FROM chameleon.tables WHERE mysql_table = %s", (products,))[0]
        assert state == "disabled" and "skip_tables" in error, (state, error)
        # and sync_tables leaves it out, or refuses it by name
        assert products not in (ctx.one("SELECT chameleon.sync_tables('src')") or [])
        with pytest.raises(psycopg.Error, match="left out by"):
            ctx.one("SELECT chameleon.sync_tables('src', %s)", ([products],))
        ctx.my_exec("UPDATE products SET price = 999.99")
        time.sleep(1)
        mappings = {ctx.my_schema: ctx.pg_schema, crm: "crm"}
        ctx.one("SELECT chameleon.alter_source('src', schema_mappings => %s)", (json.dumps(mappings),))
        with ctx.my.cursor() as cur:
            cur.execute(f"UPDATE `{crm}`.contacts SET email = 'changed' WHERE id <= 5")
        _wait_states(ctx, {f"{crm}.contacts": "replicating"})
        wait_for(ctx)
        assert ctx.one("SELECT count(*) FROM shop.products WHERE price = 999.99") == 0   # kept, not applied
        ctx.one("SELECT chameleon.alter_source('src', %s)", ('{"skip_tables": null}',))
        _wait_states(ctx, {products: "replicating"})
        with ctx.my.cursor() as cur:
            cur.execute(f"INSERT INTO `{crm}`.contacts VALUES (51, 'new')")
        time.sleep(1)
    assert not load.errors, load.errors
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    oracle.assert_same_schema(ctx.my, ctx.pg, crm, "crm", ["contacts"])
    with pytest.raises(psycopg.Error, match="cannot move"):
        ctx.one("SELECT chameleon.alter_source('src', schema_mappings => %s)",
                (json.dumps({ctx.my_schema: ctx.pg_schema, crm: "crm_elsewhere"}),))
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    with ctx.my.cursor() as cur:
        cur.execute(f"DROP DATABASE `{crm}`")
