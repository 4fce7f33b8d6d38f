"""sync_tables cut short (issue 17): a sync interrupted by a crash resumes by itself and then
lets the log maintenance trim; stop_replica stops a sync in the middle of a large table at
once and start_replica finishes it; a copy worker waiting on a DBA's lock, or streaming a
large table, ends at once when terminated. The destination equals the source value for value
after each scenario. The global read lock of a copy's snapshot is never held while copy
workers connect."""
import json
import os
import signal
import threading
import time

import psycopg
import pytest

import oracle
import workload
from conftest import load_sql
from test_replication import ALL, _reconnect, wait_for
from test_restarts import _wait_back
from test_tls import tls, tls_url  # noqa: F401 (tls: the fixture, a MariaDB with TLS)

# rows of the large table (about 250 bytes each): its copy lasts a few seconds on the 2-core
# test host (1,000,000 rows: 5.5 s with a debug build), and the disk is shared
BIG_ROWS = int(os.environ.get("CHAMELEON_TEST_SYNC_ROWS", "200000"))
STOP_BOUND = 5.0


@pytest.fixture(autouse=True)
def _drop_big(ctx):
    """The large table takes disk on both servers: gone after each test."""
    yield
    try:
        ctx.pg.execute("SELECT chameleon.stop_replica(s) FROM unnest(%s::text[]) s", (ctx.sources,))
        ctx.pg.execute("DROP TABLE IF EXISTS shop.big")
        ctx.my_exec("DROP TABLE IF EXISTS big")
    except Exception:
        pass


def make_big(ctx, rows):
    ctx.my_exec(
        "CREATE TABLE big (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, pad CHAR(200) NOT NULL, KEY k_i (k))",
        f"INSERT INTO big SELECT seq, seq % 1000, CONCAT(seq, REPEAT('x', 150)) FROM seq_1_to_{rows}",
        "ANALYZE TABLE big")


class BigWriter(workload.Background):
    """Writes on the source until the block ends: shop transactions, and updates, deletes and
    inserts of the large table (so the copy's catch-up has work). Survives a server restart."""

    def __init__(self, ctx, rows, seed):
        super().__init__(ctx)
        self.rows, self.seed = rows, seed

    def run(self):
        next_order, i = 60_000 + self.seed * 1000, 0
        while not self.stop.is_set():
            try:
                conn = self.ctx.servers.mariadb.root()
                next_order = workload.run(conn, self.ctx.my_schema, 2, seed=self.seed + i, next_order=next_order)
                with conn.cursor() as cur:
                    cur.execute(f"USE `{self.ctx.my_schema}`")
                    cur.execute("UPDATE big SET k = k + 1, pad = CONCAT('u', pad) WHERE id = %s",
                                (1 + (i * 7919) % self.rows,))
                    cur.execute("DELETE FROM big WHERE id = %s", (1 + (i * 104729) % self.rows,))
                    cur.execute("INSERT INTO big VALUES (%s, %s, 'new')", (self.rows + 1 + i, i))
                    cur.execute("COMMIT")
                conn.close()
            except Exception:
                next_order += 10_000
                time.sleep(0.2)
            i += 1
            time.sleep(0.02)


def big_name(ctx):
    return f"{ctx.my_schema}.big"


def big_row(ctx):
    return ctx.sql("SELECT state, rows_copied, copy_worker_pid, last_error FROM chameleon.tables "
                   "WHERE mysql_table = %s", (big_name(ctx),))[0]


def wait_copying(ctx, timeout=180):
    """Until the large table is in the middle of its copy: its copy worker's pid and the rows so far."""
    deadline = time.time() + timeout
    while True:
        state, copied, pid, _ = big_row(ctx)
        if state == "copying" and pid and copied and copied > 1000:
            return pid, copied
        assert time.time() < deadline, ctx.sql("SELECT * FROM chameleon.tables")
        time.sleep(0.02)


def wait_replicating(ctx, timeout=300):
    deadline = time.time() + timeout
    row = None
    while time.time() < deadline:
        try:
            row = big_row(ctx)
        except psycopg.OperationalError:
            _reconnect(ctx)
            continue
        if row[0] == "replicating":
            return
        assert row[0] != "failed", row
        time.sleep(0.3)
    raise AssertionError(f"the sync of big did not finish: {row}")


def gone(ctx, pid):
    return ctx.one("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == 0


def sync_coordinators(ctx):
    return ctx.one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_chameleon_rs sync' "
                   "AND datname = current_database()")


def start(ctx, options):
    assert ctx.start_source(options=options) == "running"


@pytest.mark.launcher_db
def test_sync_killed_mid_copy_resumes_by_itself_and_maintenance_trims_after(ctx):
    """kill -9 of the copy worker of a sync_tables in the middle of the table (PostgreSQL
    restarts every backend): the launcher brings the workers back and resumes the sync at a
    new snapshot; wait_for returns, the table equals the source, and once the sync is done the
    log maintenance removes the batches it had to keep for the catch-up."""
    rows = BIG_ROWS
    make_big(ctx, rows)
    start(ctx, '{"batch_retention": "2 seconds", "replica_batch_size": 50}')
    with BigWriter(ctx, rows, seed=3):
        time.sleep(1)
        first_batch = ctx.one("SELECT max(i_id_batch) FROM sch_chameleon.t_replica_batch")
        assert ctx.one("SELECT chameleon.sync_tables('src', %s)", ([big_name(ctx)],)) == [big_name(ctx)]
        pid, copied = wait_copying(ctx)
        assert copied < rows, "killed in the middle of the table"
        old = set(ctx.sql("SELECT worker_pid, replay_worker_pid FROM chameleon.sources")[0])
        os.kill(pid, signal.SIGKILL)
        _reconnect(ctx)
        _wait_back(ctx, old)
        wait_replicating(ctx)
        time.sleep(1)
    wait_for(ctx, timeout="300 seconds")
    log = ctx.servers.postgres.log_tail(2000)
    assert "resuming the interrupted copy of its pending tables" in log, log[-3000:]
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + ["big"])
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    # the batches kept for the catch-up go once the sync is done (slots rotate every 0.5 s)
    deadline = time.time() + 60
    while ctx.one("SELECT count(*) FROM sch_chameleon.t_replica_batch WHERE i_id_batch <= %s", (first_batch,)) > 0:
        assert time.time() < deadline, ctx.one("SELECT chameleon.run_maintenance('src')")
        ctx.one("SELECT chameleon.run_maintenance('src')")
        time.sleep(0.5)


def test_stop_replica_stops_a_sync_mid_table_and_start_replica_finishes_it(ctx):
    """stop_replica while sync_tables copies a large table: the copy worker and the sync's
    coordinator are gone within seconds (the rest of the table is not read), the source is
    stopped and the table pending; start_replica copies it again and it equals the source.
    Then pg_terminate_backend of the resumed copy worker mid-table ends it as promptly: the
    table is failed with the reason, and sync_tables copies it."""
    make_big(ctx, BIG_ROWS)
    start(ctx, '{"replica_batch_size": 50}')
    with BigWriter(ctx, BIG_ROWS, seed=5):
        ctx.one("SELECT chameleon.sync_tables('src', %s)", ([big_name(ctx)],))
        pid, copied = wait_copying(ctx)
        started = time.time()
        assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
        took = time.time() - started
        assert took < STOP_BOUND, f"stop_replica took {took:.1f} s"
        assert gone(ctx, pid), "the copy worker is gone"
        assert sync_coordinators(ctx) == 0, "the sync's coordinator is gone"
        assert copied < BIG_ROWS
        assert ctx.sql("SELECT status, worker_alive FROM chameleon.sources") == [("stopped", False)]
        assert big_row(ctx)[0] == "pending"
        time.sleep(2)
        assert big_row(ctx)[0] == "pending", "nothing copies while the source is stopped"

        assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
        pid, copied = wait_copying(ctx)
        started = time.time()
        ctx.one("SELECT pg_terminate_backend(%s)", (pid,))
        while not gone(ctx, pid):
            assert time.time() - started < STOP_BOUND, "the terminated copy worker is still there"
            time.sleep(0.05)
        deadline = time.time() + 30
        while big_row(ctx)[0] != "failed":
            assert time.time() < deadline, big_row(ctx)
            time.sleep(0.2)
        assert "died" in big_row(ctx)[3], big_row(ctx)
        assert ctx.one("SELECT chameleon.sync_tables('src')") == [big_name(ctx)]
        wait_replicating(ctx)
    wait_for(ctx, timeout="300 seconds")
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + ["big"])


def test_stop_replica_is_prompt_while_the_sync_and_replay_wait_on_a_dbas_locks(ctx):
    """A DBA's open transactions: one has read shop.customers (ACCESS SHARE: the sync's copy of
    customers waits to drop the table), one holds LOCK TABLE shop.orders IN EXCLUSIVE MODE (replay
    of an order waits). stop_replica ends both workers within seconds, not when the locks go;
    start_replica then finishes the sync and the replay, equal to the source."""
    start(ctx, "{}")
    reader = ctx.servers.postgres.connect(ctx.db, autocommit=False)
    locker = ctx.servers.postgres.connect(ctx.db, autocommit=False)
    try:
        reader.execute("SELECT count(*) FROM shop.customers").fetchone()
        locker.execute("LOCK TABLE shop.orders IN EXCLUSIVE MODE")
        customers = f"{ctx.my_schema}.customers"
        ctx.one("SELECT chameleon.sync_tables('src', %s)", ([customers],))
        workload.run(ctx.my, ctx.my_schema, 5, seed=9, next_order=70_000)
        replay_pid = ctx.one("SELECT replay_worker_pid FROM chameleon.sources")
        deadline = time.time() + 60
        while True:
            waiting = ctx.sql("""SELECT application_name, pid FROM pg_stat_activity
                                  WHERE datname = current_database() AND wait_event_type = 'Lock'
                                    AND application_name LIKE 'pg_chameleon_rs %%'""")
            names = {w[0] for w in waiting}
            if "pg_chameleon_rs copy 0" in names and replay_pid in {w[1] for w in waiting}:
                break
            assert time.time() < deadline, (waiting, ctx.sql("SELECT * FROM chameleon.tables"))
            time.sleep(0.2)
        started = time.time()
        assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
        took = time.time() - started
        assert took < STOP_BOUND, f"stop_replica took {took:.1f} s"
        for _, pid in waiting:
            assert gone(ctx, pid)
        state = ctx.one("SELECT state FROM chameleon.tables WHERE mysql_table = %s", (customers,))
        assert state == "pending", state
    finally:
        reader.rollback()
        reader.close()
        locker.rollback()
        locker.close()
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    wait_for(ctx)
    assert ctx.one("SELECT state FROM chameleon.tables WHERE mysql_table = %s", (customers,)) == "replicating"
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def test_ddl_on_tables_of_a_running_sync(ctx):
    """ALTER TABLE ... ADD COLUMN on the source while sync_tables copies: on the table being
    copied, the source makes the statement wait for the copy's snapshot transaction (its
    metadata lock) and replay applies it once the table replicates; on a table of the same sync
    still waiting for its turn (the statement runs at once, after the copy's snapshot), that
    copy would be void: the table is copied again at a new snapshot after the statement
    instead of being disabled. Replay never stalls meanwhile, nothing deadlocks, and both
    tables equal the source with their new columns."""
    rows = BIG_ROWS
    make_big(ctx, rows)
    start(ctx, '{"copy_workers": 1, "replica_batch_size": 50}')
    customers = f"{ctx.my_schema}.customers"
    altered = threading.Event()

    def alter_big():
        conn = ctx.servers.mariadb.root()
        with conn.cursor() as cur:
            cur.execute(f"USE `{ctx.my_schema}`")
            cur.execute("ALTER TABLE big ADD COLUMN extra INT NOT NULL DEFAULT 7")
            cur.execute("UPDATE big SET extra = 8 WHERE id = 2")
            cur.execute("COMMIT")
        conn.close()
        altered.set()

    with BigWriter(ctx, rows, seed=11):
        # one copy worker, largest first: big, then customers
        assert ctx.one("SELECT chameleon.sync_tables('src', %s)", ([big_name(ctx), customers],)) == [
            big_name(ctx), customers]
        wait_copying(ctx)
        ctx.my_exec("ALTER TABLE customers ADD COLUMN loyalty INT NOT NULL DEFAULT 3")
        # one row by its key: an UPDATE whose subquery reads customers takes a shared lock on
        # every row and deadlocks with the writer's shop transactions (InnoDB error 1213)
        with ctx.my.cursor() as cur:
            cur.execute(f"SELECT min(id) FROM `{ctx.my_schema}`.customers")
            first_customer = cur.fetchone()[0]
        ctx.my_exec(f"UPDATE customers SET loyalty = 9 WHERE id = {int(first_customer)}")
        alterer = threading.Thread(target=alter_big)
        alterer.start()
        # replay goes on: a change after both statements is applied while big is still copying
        ctx.my_exec("INSERT INTO suppliers (id, name) VALUES (9001, 'after the DDL')")
        deadline = time.time() + 20
        while ctx.one("SELECT count(*) FROM shop.suppliers WHERE id = 9001") == 0:
            assert time.time() < deadline, ctx.one("SELECT last_error FROM chameleon.sources")
            time.sleep(0.2)
        if big_row(ctx)[0] == "copying":
            assert not altered.is_set(), "the source makes ALTER TABLE big wait for the copy's snapshot"
        wait_replicating(ctx)
        alterer.join(timeout=300)
        assert altered.is_set()
        deadline = time.time() + 300
        while ctx.one("SELECT state FROM chameleon.tables WHERE mysql_table = %s", (customers,)) != "replicating":
            assert time.time() < deadline, ctx.sql("SELECT mysql_table, state, last_error FROM chameleon.tables")
            time.sleep(0.3)
    wait_for(ctx, timeout="300 seconds")
    log = ctx.servers.postgres.log_tail(3000)
    assert "while it was being copied: copied again after it" in log, log[-3000:]
    # the writer may have deleted that customer since: then it is gone on both sides
    with ctx.my.cursor() as cur:
        cur.execute(f"SELECT loyalty FROM `{ctx.my_schema}`.customers WHERE id = %s", (first_customer,))
        at_source = cur.fetchone()
    assert at_source in (None, (9,))
    assert ctx.sql("SELECT loyalty FROM shop.customers WHERE id = %s", (first_customer,)) == (
        [] if at_source is None else [(9,)])
    assert ctx.one("SELECT extra FROM shop.big WHERE id = 2") == 8
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + ["big"])
    assert ctx.sql("SELECT DISTINCT state FROM chameleon.tables WHERE replica_enabled") == [("replicating",)]
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0


def _held_ms(log, source_count):
    """The global read lock times the coordinator logged, the last `source_count` of them."""
    import re
    return [int(m) for m in re.findall(r"global read lock held (\d+) ms", log)][-source_count:]


def test_the_global_read_lock_is_never_held_while_copy_workers_connect(ctx, tls):
    """Twelve copy workers reaching the source over TLS (verify_identity): they start and
    connect (TLS handshake, server checks) before the coordinator takes FLUSH TABLES WITH READ
    LOCK, which it holds only while they open their snapshots. A session writing on the source
    through the whole init never waits long, and the lock is held for a small part of the time
    the workers took to start and connect."""
    m, certs = tls
    my = m.root()
    load_sql(my, ctx.my_schema, "shop.sql")
    with my.cursor() as cur:
        cur.execute(f"USE `{ctx.my_schema}`")
        for i in range(12):
            cur.execute(f"CREATE TABLE extra_{i} (id INT PRIMARY KEY, v INT)")
            cur.execute(f"INSERT INTO extra_{i} SELECT seq, seq FROM seq_1_to_100")
        cur.execute("CREATE TABLE probe (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    with open(certs["ca"]) as f:
        pem = f.read()
    ctx.pg.execute("SELECT chameleon.add_source('src', %s, %s, %s)",
                   (tls_url(m), json.dumps({ctx.my_schema: ctx.pg_schema}),
                    json.dumps({"ssl_mode": "verify_identity", "ssl_ca": pem, "copy_workers": 12})))
    ctx.sources.append("src")
    stalls = []
    stop = threading.Event()

    def probe():
        conn = m.root()
        with conn.cursor() as cur:
            cur.execute(f"USE `{ctx.my_schema}`")
            while not stop.is_set():
                t = time.time()
                cur.execute("INSERT INTO probe (v) VALUES (1)")
                stalls.append(time.time() - t)
                time.sleep(0.002)
        conn.close()

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    finally:
        stop.set()
        prober.join()
    log = ctx.servers.postgres.log_tail(400)
    import re
    connected = [int(x) for x in re.findall(r"12 copy workers started and connected in (\d+) ms", log)]
    held = _held_ms(log, 1)
    worst = max(stalls)
    print(f"workers started and connected in {connected} ms; lock held {held} ms; "
          f"worst source write {worst * 1000:.0f} ms over {len(stalls)} writes")
    assert connected and held, log[-3000:]
    # measured on the 2-core test host: started and connected in 127 ms, lock held 13 ms, worst
    # write 21 ms; with the connects under the lock it was held for all of the 127 ms and more
    assert held[0] * 4 < connected[-1], (held, connected)
    assert worst * 1000 < held[0] + connected[-1] / 2, (worst, held, connected)
    assert ctx.one("SELECT count(DISTINCT consistent_point) FROM chameleon.tables WHERE replica_enabled") == 1
    oracle.assert_same_schema(my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL + [f"extra_{i}" for i in range(12)])
    my.close()
