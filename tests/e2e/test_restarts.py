"""Restarts in every database (issue 17): the launcher serves every database that has the
extension, not only chameleon.database_name; the sources of each come back by themselves
after a crash, and lose nothing."""
import os
import signal
import threading
import time

import psycopg

import oracle
import workload
from conftest import FIXTURES, Ctx, load_sql  # noqa: F401
from test_replication import ALL, _reconnect, init, wait_for


def _restart_with(servers, setting_sql):
    with servers.postgres.connect() as c:
        c.execute(setting_sql)
    servers.postgres.restart()


def _wait_back(ctx, old_pids, timeout=60):
    """Until the read and replay workers of the source are alive with new pids."""
    deadline = time.time() + timeout
    row = None
    while time.time() < deadline:
        try:
            row = ctx.sql("SELECT worker_pid, replay_worker_pid, worker_alive, status FROM chameleon.sources")[0]
        except psycopg.OperationalError:
            _reconnect(ctx)
            continue
        if row[2] and row[0] not in old_pids and row[1] not in old_pids:
            return row
        time.sleep(0.3)
    raise AssertionError(f"database {ctx.db}: the launcher did not restart the workers: {row}")


def _drop_databases_of_earlier_tests(servers):
    """Earlier tests leave their databases (t_<test>, with the extension). Once every database
    is served, each takes a launcher, one worker slot each, and this cluster has 32 slots (the
    full suite leaves more databases than that)."""
    with servers.postgres.connect() as pg:
        names = [r[0] for r in pg.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'").fetchall()]
        for name in names:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_crash_restarts_sources_in_every_database(servers):
    """Sources in two databases, neither of them postgres nor chameleon.database_name (unset:
    every database is served); kill -9 of one read worker under load makes the postmaster
    restart every backend: both sources come back by themselves and lose nothing."""
    _drop_databases_of_earlier_tests(servers)
    _restart_with(servers, "ALTER SYSTEM SET chameleon.database_name = ''")
    ctxs = []
    try:
        for name in ("restarts_one", "restarts_two"):
            c = Ctx(servers, name, f"app_{name}")
            ctxs.append(c)
            load_sql(c.my, c.my_schema, "shop.sql")
            c.add_source(options='{"replica_batch_size": 30}')
            init(c)
            assert c.one("SELECT chameleon.start_replica('src')") == "running"
            # the view says these workers come back after a restart
            assert c.one("SELECT auto_restart FROM chameleon.sources") is True
        # one launcher per database with the extension, under a supervisor connected to none
        with servers.postgres.connect() as pg:
            deadline = time.time() + 30
            while time.time() < deadline:
                served = {r[0] for r in pg.execute(
                    "SELECT datname FROM pg_stat_activity WHERE backend_type = 'pg_chameleon_rs launcher'")}
                if {None, "app_restarts_one", "app_restarts_two"} <= served:
                    break
                time.sleep(0.3)
            assert {None, "app_restarts_one", "app_restarts_two"} <= served, served

        done = [threading.Event() for _ in ctxs]

        def writer(i, c):
            conn = servers.mariadb.root()
            workload.run(conn, c.my_schema, 700, seed=41 + i, next_order=40_000, pause=0.003)
            conn.close()
            done[i].set()

        threads = [threading.Thread(target=writer, args=(i, c)) for i, c in enumerate(ctxs)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        old = [set(c.sql("SELECT worker_pid, replay_worker_pid FROM chameleon.sources")[0]) for c in ctxs]
        assert not any(d.is_set() for d in done), "the load ended before the kill"
        os.kill(ctxs[0].one("SELECT worker_pid FROM chameleon.sources"), signal.SIGKILL)
        for c, pids in zip(ctxs, old):
            _reconnect(c)
        for c, pids in zip(ctxs, old):
            assert _wait_back(c, pids)[3] == "running"
        for t in threads:
            t.join()
        for c in ctxs:
            wait_for(c)
            oracle.assert_same_schema(c.my, c.pg, c.my_schema, c.pg_schema, ALL)
            assert c.one("SELECT count(*) FROM chameleon.errors") == 0
    finally:
        for c in ctxs:
            try:
                c.close()
            except Exception:
                pass
        _restart_with(servers, "ALTER SYSTEM RESET chameleon.database_name")


def _tables_enabled(ctx):
    return dict(ctx.sql("SELECT mysql_table, replica_enabled FROM chameleon.tables"))


def _lock_customer(ctx):
    """A second PostgreSQL session holding a row lock on the first customer; returns it and the id."""
    locker = ctx.servers.postgres.connect(ctx.db, autocommit=False)
    cid = locker.execute("SELECT min(id) FROM shop.customers").fetchone()[0]
    locker.execute("SELECT * FROM shop.customers WHERE id = %s FOR UPDATE", (cid,))
    return locker, cid


def test_lock_timeout_at_replay_is_retried_not_fatal(ctx):
    """A lock timeout (55P03) while replay applies a batch: the batch is retried whole with
    backoff, last_error says so; the source stays running, no table is disabled (even with
    on_error_replay = continue), nothing is recorded as an error, and nothing is lost."""
    ctx.add_source(options='{"on_error_replay": "continue", "replica_batch_size": 10}')
    init(ctx)
    ctx.pg.execute(f"ALTER DATABASE \"{ctx.db}\" SET lock_timeout = '300ms'")
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    enabled = _tables_enabled(ctx)
    locker, cid = _lock_customer(ctx)
    try:
        ctx.my_exec(f"UPDATE customers SET name = 'changed under a lock' WHERE id = {cid}")
        workload.run(ctx.my, ctx.my_schema, 50, seed=5, next_order=50_000)
        deadline = time.time() + 30
        last = None
        while time.time() < deadline:
            last = ctx.one("SELECT last_error FROM chameleon.sources")
            if last and "lock timeout" in last and "retried" in last:
                break
            time.sleep(0.3)
        assert last and "lock timeout" in last and "retried whole" in last, last
        time.sleep(2)  # several retries
        assert ctx.sql("SELECT status, worker_alive FROM chameleon.sources") == [("running", True)]
    finally:
        locker.rollback()
        locker.close()
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT name FROM shop.customers WHERE id = %s", (cid,)) == "changed under a lock"
    assert _tables_enabled(ctx) == enabled
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert ctx.sql("SELECT status, worker_alive FROM chameleon.sources") == [("running", True)]


def test_stop_replica_returns_while_replay_waits_on_a_lock(ctx):
    """stop_replica while the replay worker waits on a row lock another session holds: the
    worker stops at once (its batch rolled back whole), not when the lock is released; after
    start_replica nothing is lost."""
    ctx.add_source()
    init(ctx)
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    replay_pid = ctx.one("SELECT replay_worker_pid FROM chameleon.sources")
    locker, cid = _lock_customer(ctx)
    try:
        ctx.my_exec(f"UPDATE customers SET name = 'changed under a lock' WHERE id = {cid}")
        deadline = time.time() + 30
        while time.time() < deadline:
            if ctx.one("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (replay_pid,)) == "Lock":
                break
            time.sleep(0.2)
        assert ctx.one("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (replay_pid,)) == "Lock"
        started = time.time()
        assert ctx.one("SELECT chameleon.stop_replica('src')") == "stopped"
        took = time.time() - started
        assert took < 5, f"stop_replica took {took:.1f} s"
        assert ctx.one("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (replay_pid,)) == 0
    finally:
        locker.rollback()
        locker.close()
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT name FROM shop.customers WHERE id = %s", (cid,)) == "changed under a lock"
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
