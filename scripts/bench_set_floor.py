#!/usr/bin/env python3
"""The floor of one replay backend in the drain: what the set statements alone cost PostgreSQL.

`scripts/bench.py`'s drain replays 1,000,000 row events (per 100-event source transaction 50
updates of consecutive keys and 50 inserts, the tables taken in turn) in batches of 10,000.
Replay applies each batch per table as its net change with the statements of `core::setsql`.
This script runs exactly those statements, with the same shapes and sizes, from a client
straight into one backend of a private PostgreSQL (fsync, synchronous_commit and
full_page_writes on, as the benchmark's headline figures), with nothing of replay around them:
no log to read, no decoding, no net-change fold, no catalogue statements. The backend's own CPU
time per row event (from /proc) is the floor under replay's cost per event; its inverse is the
most row events per second one backend could replay this drain at.

Sizes and port as scripts/bench.py reads them: BENCH_TABLES (4), BENCH_ROWS (500000),
BENCH_BACKLOG (1000000), BENCH_BATCH_SIZE (10000), BENCH_BUFFERS_MB (2048), BENCH_PG_PORT
(25492); CHAMELEON_BENCH_SCRATCH (/tmp/pg_chameleon_rs-bench-floor). Prints numbers; asserts
only that every statement touched the rows it names.
"""
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import bench  # noqa: E402
import bench_pgc  # noqa: E402
from harness import Postgres  # noqa: E402

TABLES, ROWS, BACKLOG, BATCH = bench.TABLES, bench.ROWS, bench.BACKLOG, bench.BATCH_SIZE
SCRATCH = os.environ.get("CHAMELEON_BENCH_SCRATCH", "/tmp/pg_chameleon_rs-bench-floor")

COLS = [("id", "integer"), ("k", "integer"), ("c", "character(120)"), ("pad", "character(60)")]


def statements(t):
    """The set statements `core::setsql` writes for sbtest{t} (see its unit test)."""
    table = f'"sbtest"."sbtest{t}"'
    # (psycopg's placeholders: the server sees $1 .. $n, as replay prepares them)
    arrays = ", ".join("%s::text[]" for _ in COLS)
    names = ", ".join(f"v{i + 1}" for i in range(len(COLS)))
    unnest = f"unnest({arrays}) AS u({names})"
    insert = (f"INSERT INTO {table} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c, _ in COLS)}) "
              f"SELECT {', '.join(f'u.v{i + 1}::{ty}' for i, (_, ty) in enumerate(COLS))} FROM {unnest}")
    update = (f"UPDATE {table} AS d SET {', '.join(f'{chr(34)}{c}{chr(34)} = u.v{i + 1}::{ty}' for i, (c, ty) in enumerate(COLS))} "
              f"FROM {unnest} WHERE d.\"id\" = u.v1::integer")
    return insert, update


def main():
    pg = Postgres(SCRATCH, bench.PG_PORT, shared_buffers=f"{bench.BUFFERS_MB}MB")
    try:
        pg.start()
        bench_pgc.durable(pg)
        pg.create_database("floor")
        db = pg.connect("floor")
        bench.pg_sbtest(db, "sbtest")
        db.execute("CHECKPOINT")
        db.close()
        db = pg.connect("floor", autocommit=False)
        pid = db.execute("SELECT pg_backend_pid()").fetchone()[0]
        db.commit()
        plans = {t: statements(t) for t in range(1, TABLES + 1)}
        c_val, pad_val = "c" * 120, "p" * 60
        next_id = {t: ROWS * 10 for t in range(1, TABLES + 1)}
        bumps = {}
        cpu0, t0, done, rows = bench_pgc.process_cpu(pid), time.time(), 0, 0
        while done < BACKLOG:
            # one batch: its source transactions folded per table, as replay's net change
            updates = {t: {} for t in plans}
            inserts = {t: [[], [], [], []] for t in plans}
            end = min(BACKLOG, done + BATCH)
            while done < end:
                t = 1 + (done // 100) % TABLES
                lo = 1 + (done * 7) % (ROWS - 100)
                for i in range(50):
                    key = lo + i
                    bumps[(t, key)] = bumps.get((t, key), 0) + 1
                    updates[t][key] = (str(key), str((key * 7919) % ROWS + bumps[(t, key)]), c_val, pad_val)
                for i in range(1, 51):
                    next_id[t] += 1
                    for col, v in zip(inserts[t], (str(next_id[t]), str(i), "drain", "x")):
                        col.append(v)
                done += 100
            for t, (insert, update) in plans.items():
                ups = list(updates[t].values())
                if ups:
                    cur = db.execute(update, [list(col) for col in zip(*ups)], prepare=True)
                    assert cur.rowcount == len(ups), (cur.rowcount, len(ups))
                    rows += len(ups)
                if inserts[t][0]:
                    cur = db.execute(insert, inserts[t], prepare=True)
                    assert cur.rowcount == len(inserts[t][0])
                    rows += len(inserts[t][0])
            db.commit()
        wall, cpu = time.time() - t0, bench_pgc.process_cpu(pid) - cpu0
        db.close()
        per_event = cpu / BACKLOG * 1e6
        print(f"set statements alone, one backend: {BACKLOG:,} row events ({rows:,} rows after the per-batch fold) "
              f"in batches of {BATCH:,}: backend CPU {cpu:.2f} s = {per_event:.2f} us per row event, "
              f"so at most {1e6 / per_event:,.0f} row events/s replayed by one backend; wall {wall:.2f} s "
              f"(the client builds the arrays meanwhile)")
    finally:
        pg.stop()
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
