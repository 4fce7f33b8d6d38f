"""End to end, where replication starts and resumes: by GTID (`gtid_enable`), and at a
position the DBA gives for data loaded by other means (no init_replica). The destination must
equal the source value for value after each scenario."""
import json

import psycopg
import pytest

import oracle
import workload
from test_replication import ALL, init, wait_for


def master_status(my):
    with my.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, pos = cur.fetchone()[:2]
        cur.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        return file, int(pos), cur.fetchone()[0]


def stored_gtid_reaches(ctx, want, source="src", timeout=30):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = ctx.one("SELECT gtid FROM chameleon.sources WHERE name = %s", (source,))
        if got == want:
            return got
        time.sleep(0.3)
    return got


def test_gtid_enable_follows_the_source_by_gtid_not_by_file(ctx):
    ctx.add_source(options='{"gtid_enable": true, "replica_batch_size": 50}')
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    workload.run(ctx.my, ctx.my_schema, 200, seed=21)
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    # the stored GTID position is the source's whole GTID state once caught up
    _, _, gtid = master_status(ctx.my)
    assert stored_gtid_reaches(ctx, gtid) == gtid
    ctx.one("SELECT chameleon.stop_replica('src')")

    # The coordinates of another server (after a failover the file names and offsets differ):
    # by file and offset the source would refuse them; by GTID they do not matter.
    ctx.pg.execute("UPDATE sch_chameleon.t_sources SET t_binlog_name = 'other-server-bin.000777', "
                   "i_binlog_position = 123456")
    workload.run(ctx.my, ctx.my_schema, 150, seed=22, next_order=20_000)
    ctx.my_exec("FLUSH BINARY LOGS")
    workload.run(ctx.my, ctx.my_schema, 100, seed=23, next_order=30_000)
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    file, _, gtid = master_status(ctx.my)
    assert stored_gtid_reaches(ctx, gtid) == gtid
    # the real coordinates are back, learned from the server
    assert ctx.one("SELECT binlog_file FROM chameleon.sources") == file
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    assert ctx.one("SELECT status FROM chameleon.sources") == "running"


def test_without_gtid_enable_a_wrong_file_is_refused_with_a_clear_error(ctx):
    ctx.add_source()
    init(ctx)
    ctx.pg.execute("UPDATE sch_chameleon.t_sources SET t_binlog_name = 'other-server-bin.000777'")
    ctx.one("SELECT chameleon.start_replica('src')")
    import time
    deadline = time.time() + 30
    while time.time() < deadline and ctx.one("SELECT status FROM chameleon.sources") != "error":
        time.sleep(0.3)
    status, error = ctx.sql("SELECT status, last_error FROM chameleon.sources")[0]
    assert status == "error", error
    assert "other-server-bin.000777" in error and "resync" in error, error


def seed_destination(ctx):
    """Loads PostgreSQL "by other means": another source copies the schema, then is dropped
    (its tables stay). Returns the source's coordinates and GTID position of that data."""
    ctx.add_source(name="seed")
    init(ctx, "seed")
    file, pos, gtid = master_status(ctx.my)
    ctx.one("SELECT chameleon.drop_source('seed')")
    ctx.sources.remove("seed")
    return file, pos, gtid


@pytest.mark.parametrize("form", ["file", "gtid"])
def test_start_at_a_given_position_without_init_replica(ctx, form):
    file, pos, gtid = seed_destination(ctx)
    workload.run(ctx.my, ctx.my_schema, 250, seed=31)
    ctx.my_exec("FLUSH BINARY LOGS")
    workload.run(ctx.my, ctx.my_schema, 100, seed=32, next_order=40_000)
    ctx.add_source(name="adopt", options='{"replica_batch_size": 40}')
    start = f"{file}:{pos}" if form == "file" else gtid
    assert ctx.one("SELECT chameleon.start_replica('adopt', start_position => %s)", (start,)) == "running"
    wait_for(ctx, "adopt")
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    rows = ctx.sql("SELECT mysql_table, state, notes FROM chameleon.tables WHERE source = 'adopt'")
    assert len(rows) == len(ALL)
    assert all(any("not copied" in n for n in notes) for _, _, notes in rows), rows
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    # and it goes on like any source: stop, writes, start
    ctx.one("SELECT chameleon.stop_replica('adopt')")
    workload.run(ctx.my, ctx.my_schema, 80, seed=33, next_order=50_000)
    ctx.one("SELECT chameleon.start_replica('adopt')")
    wait_for(ctx, "adopt")
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def test_a_start_position_is_checked_before_anything_is_kept(ctx):
    ctx.add_source(name="adopt")
    file, pos, _ = master_status(ctx.my)

    def refused(position):
        with pytest.raises(psycopg.Error) as e:
            ctx.one("SELECT chameleon.start_replica('adopt', start_position => %s)", (position,))
        if not ctx.pg.autocommit:
            ctx.pg.rollback()
        return str(e.value)

    # PostgreSQL has none of the tables: each is named, nothing is registered
    msg = refused(f"{file}:{pos}")
    assert "cannot start" in msg and '"shop"."customers" does not exist' in msg, msg
    assert "init_replica" in msg
    assert ctx.one("SELECT count(*) FROM chameleon.tables WHERE source = 'adopt'") == 0
    assert ctx.one("SELECT status FROM chameleon.sources WHERE name = 'adopt'") == "ready"
    assert "no binlog file nope-bin.000001" in refused("nope-bin.000001:4")
    assert "offset outside" in refused(f"{file}:{pos + 10_000_000}")
    assert "neither file:offset" in refused("yesterday")
    assert "MySQL GTID but the source is" in refused("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9")
    # without a position, a source never initialised says both ways to go on
    msg = refused(None)
    assert "init_replica" in msg and "start_position" in msg, msg
