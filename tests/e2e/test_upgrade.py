"""End to end, a real upgrade: the previous release (built from its commit by `make prev`)
copies and replicates; in the middle of a write load the new library is installed and the
server restarted; the launcher's new workers wait for ALTER EXTENSION UPDATE, then go on from
where the old ones stopped: nothing is lost or applied twice, and tables copied by the old
release follow DDL afterwards."""
import os
import shutil
import subprocess
import time

import pytest

import oracle
from harness import PG_BIN
from test_replication import ALL, _Load, init, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PREV_VERSION = os.environ.get("CHAMELEON_PREV_VERSION", "0.4.0")
# built for the PostgreSQL under test (`make prev PG=NN`: .cache/prev/<version>-pgNN)
PREV_DIR = os.environ.get("CHAMELEON_PREV_DIR", os.path.join(HERE, "..", "..", ".cache", "prev", PREV_VERSION))
PG_CONFIG = os.path.join(PG_BIN, "pg_config")


def _pg_dir(what):
    return subprocess.run([PG_CONFIG, what], capture_output=True, text=True, check=True).stdout.strip()


def _install_library(src, target):
    """Replaces the library file atomically (running servers keep the file they mapped)."""
    tmp = target + ".swap"
    shutil.copy2(src, tmp)
    os.replace(tmp, target)


@pytest.mark.upgrade
@pytest.mark.launcher_db
def test_upgrade_from_the_previous_release_under_write_load(ctx, servers):
    prev_so = os.path.join(PREV_DIR, "pg_chameleon_rs.so")
    assert os.path.exists(prev_so), f"the previous release is not built: run `make prev` ({prev_so})"
    library = os.path.join(_pg_dir("--pkglibdir"), "pg_chameleon_rs.so")
    current = os.path.join(servers.scratch, "pg_chameleon_rs.so.current")
    shutil.copy2(library, current)
    shutil.copy2(os.path.join(PREV_DIR, f"pg_chameleon_rs--{PREV_VERSION}.sql"),
                 os.path.join(_pg_dir("--sharedir"), "extension"))
    swapped = False
    try:
        # the previous release runs the server, and its catalogue is created
        _install_library(prev_so, library)
        swapped = True
        servers.postgres.restart()
        ctx.pg = servers.postgres.connect(ctx.db)
        ctx.pg.execute("DROP EXTENSION pg_chameleon_rs CASCADE")
        ctx.pg.execute(f"CREATE EXTENSION pg_chameleon_rs VERSION '{PREV_VERSION}'")
        assert ctx.one("SELECT extversion FROM pg_extension WHERE extname = 'pg_chameleon_rs'") == PREV_VERSION
        ctx.add_source(options='{"replica_batch_size": 30}')
        init(ctx)
        assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
        with _Load(ctx, 40_000) as load:
            time.sleep(1)
            # replay waits on a destination table meanwhile: batches pile up in the previous
            # release's log format (one row per event), which the update converts to chunks
            blocker = servers.postgres.connect(ctx.db, autocommit=False)
            blocker.execute(f"LOCK TABLE {ctx.pg_schema}.customers IN ACCESS EXCLUSIVE MODE")
            time.sleep(2)
            # the new library, the server restarted under the load
            _install_library(current, library)
            swapped = False
            servers.postgres.restart()
            blocker.close()
            ctx.pg = servers.postgres.connect(ctx.db)
            time.sleep(2)
            # the launcher started the new workers: they wait for the catalogue, saying why
            assert "the worker waits for it" in servers.postgres.log_tail(200)
            assert ctx.one("SELECT extversion FROM pg_extension WHERE extname = 'pg_chameleon_rs'") == PREV_VERSION
            old_format = ctx.one("SELECT count(*) FROM sch_chameleon.t_log_replica l JOIN sch_chameleon.t_replica_batch b "
                                 "USING (i_id_batch) WHERE NOT b.b_replayed")
            assert old_format > 0, "no batch left to convert"
            with ctx.pg.transaction():   # (the workers see the new catalogue at its commit)
                ctx.pg.execute("ALTER EXTENSION pg_chameleon_rs UPDATE")
                assert ctx.one("SELECT sum(l.i_events) FROM sch_chameleon.t_log_replica l JOIN sch_chameleon.t_replica_batch b "
                               "USING (i_id_batch) WHERE NOT b.b_replayed") == old_format
            time.sleep(3)
        assert load.chunks > 0
        wait_for(ctx)
        oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
        assert ctx.one("SELECT extversion FROM pg_extension WHERE extname = 'pg_chameleon_rs'") != PREV_VERSION
        # a table copied by the previous release (which recorded no indexes) follows DDL
        ctx.my_exec("ALTER TABLE customers ADD COLUMN upgraded INT NOT NULL DEFAULT 1 AFTER id",
                    "UPDATE customers SET upgraded = 2 WHERE id % 2 = 0")
        wait_for(ctx)
        oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL, any_column_order=True)
        oracle.assert_same_structure(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "customers")
        assert ctx.sql("SELECT message FROM chameleon.errors") == []
        assert ctx.one("SELECT status FROM chameleon.sources") == "running"
        ctx.one("SELECT chameleon.stop_replica('src')")
    finally:
        if swapped:
            _install_library(current, library)
            servers.postgres.restart()
