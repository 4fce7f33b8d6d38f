"""Benchmark (not a test): a table without a key, replicated by full row, under a steady load of
updates and deletes. Prints numbers, gates nothing. Uses the harness's private servers, with
PostgreSQL's durability settings turned back on (fsync, synchronous_commit, full_page_writes),
as production runs.

The table `k` (id INT, grp INT, payload VARCHAR(100), n INT; no primary or unique key) holds
BENCH_KEYLESS_ROWS rows (default 100,000), `id` selective (one row per value). The source has
a plain (non-unique) index on `id`, so MariaDB finds rows at once; the replica has it too after
the copy (case "index"), or it is dropped at the replica (case "no index": every update and
delete is a sequential scan there). For BENCH_KEYLESS_SECONDS (default 30) a writer runs
BENCH_KEYLESS_RATE (default 1,000) row changes per second, in transactions of 10: half updates of
one row by id, a quarter deletes of one row by id, a quarter inserts (the table keeps its size).
A probe row is inserted into a keyed table every 100 ms with its wall-clock time; the replica is
polled every 10 ms, and the lag of each probe (seen at the replica minus written at the source)
gives p50/p99/max. After the load: seconds until the replica has caught up, and the table is
checked equal to the source (tests/oracle.py).

Ports: BENCH_MYSQL_PORT / BENCH_PG_PORT (default 23397 / 25493), scratch CHAMELEON_BENCH_SCRATCH.
"""
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import oracle  # noqa: E402
from harness import Servers  # noqa: E402
import bench_pgc  # noqa: E402

ROWS = int(os.environ.get("BENCH_KEYLESS_ROWS", "100000"))
SECONDS = float(os.environ.get("BENCH_KEYLESS_SECONDS", "30"))
RATE = int(os.environ.get("BENCH_KEYLESS_RATE", "1000"))
MYSQL_PORT = int(os.environ.get("BENCH_MYSQL_PORT", "23397"))
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "25493"))
SCRATCH = os.environ.get("CHAMELEON_BENCH_SCRATCH", "/tmp/pg_chameleon_rs-bench-keyless")
SCHEMA = "kbench"


def _writer(servers, stop, counts):
    conn = servers.mariadb.root()
    per_txn = 10
    interval = per_txn / RATE
    i = 0
    with conn.cursor() as cur:
        cur.execute(f"USE `{SCHEMA}`")
        start = time.time()
        while not stop.is_set():
            cur.execute("START TRANSACTION")
            for j in range(per_txn):
                i += 1
                target = (i * 7919) % ROWS + 1
                if j % 4 in (0, 1):
                    cur.execute("UPDATE k SET n = n + 1, payload = %s WHERE id = %s LIMIT 1", (f"u{i}", target))
                elif j % 4 == 2:
                    cur.execute("DELETE FROM k WHERE id = %s LIMIT 1", (target,))
                else:
                    cur.execute("INSERT INTO k VALUES (%s, %s, %s, 0)", (target, target % 100, f"i{i}"))
            cur.execute("COMMIT")
            counts["changes"] += per_txn
            # steady rate: sleep until this transaction's slot
            ahead = start + counts["changes"] / RATE - time.time()
            if ahead > 0:
                time.sleep(ahead)
    counts["elapsed"] = time.time() - start
    conn.close()


def _prober(servers, stop, sent):
    conn = servers.mariadb.root()
    with conn.cursor() as cur:
        cur.execute(f"USE `{SCHEMA}`")
        n = 0
        while not stop.is_set():
            n += 1
            t = time.time()
            cur.execute("INSERT INTO probe VALUES (%s, %s)", (n, t))
            conn.commit()
            sent[n] = t
            time.sleep(0.1)
    conn.close()


def run_case(servers, db, index):
    pg = servers.postgres.connect(db)
    my = servers.mariadb.root()
    with my.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{SCHEMA}`")
        cur.execute(f"CREATE DATABASE `{SCHEMA}`")
        cur.execute(f"USE `{SCHEMA}`")
        cur.execute("CREATE TABLE k (id INT, grp INT, payload VARCHAR(100), n INT, KEY idx_id (id)) ENGINE=InnoDB")
        cur.execute("CREATE TABLE probe (id INT PRIMARY KEY, t DOUBLE) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO k SELECT seq, seq % 100, REPEAT('p', 60), 0 FROM seq_1_to_{ROWS}")
    my.commit()
    pg.execute("SELECT chameleon.add_source('kb', %s, %s, '{\"replica_batch_size\": 1000}')",
               (servers.mariadb.url(), json.dumps({SCHEMA: SCHEMA})))
    assert pg.execute("SELECT chameleon.init_replica('kb', wait => true)").fetchone()[0] == "initialised"
    ident = pg.execute("SELECT replica_identity FROM chameleon.tables WHERE mysql_table = %s",
                       (f"{SCHEMA}.k",)).fetchone()[0]
    assert ident == "full row", ident
    if not index:
        pg.execute(f"DROP INDEX {SCHEMA}.k_idx_id")
    pg.execute(f"ANALYZE {SCHEMA}.k")
    pg.execute("SELECT chameleon.start_replica('kb')")
    pg.execute("SELECT chameleon.wait_for('kb', '60 seconds')")

    stop = threading.Event()
    counts = {"changes": 0}
    sent, lags = {}, []
    writer = threading.Thread(target=_writer, args=(servers, stop, counts))
    prober = threading.Thread(target=_prober, args=(servers, stop, sent))
    cpu0 = _replay_cpu(pg)
    writer.start()
    prober.start()
    seen = 0
    t_end = time.time() + SECONDS
    while time.time() < t_end:
        last = pg.execute(f"SELECT max(id) FROM {SCHEMA}.probe").fetchone()[0] or 0
        now = time.time()
        for n in range(seen + 1, last + 1):
            if n in sent:
                lags.append(now - sent[n])
        seen = max(seen, last)
        time.sleep(0.01)
    stop.set()
    writer.join()
    prober.join()
    caught_from = time.time()
    assert pg.execute("SELECT chameleon.wait_for('kb', '1800 seconds')").fetchone()[0] is True
    catch_up = time.time() - caught_from
    last = pg.execute(f"SELECT max(id) FROM {SCHEMA}.probe").fetchone()[0] or 0
    cpu = _replay_cpu(pg) - cpu0 if cpu0 is not None else None
    # probes the load window never saw applied: their lag is at least until the catch-up
    for n in range(seen + 1, last + 1):
        if n in sent:
            lags.append(caught_from + catch_up - sent[n])
    oracle.assert_same_table(my, pg, SCHEMA, SCHEMA, "k")
    pg.execute("SELECT chameleon.drop_source('kb')")
    lags.sort()
    result = {
        "case": "index on id" if index else "no index",
        "changes_per_s": round(counts["changes"] / counts["elapsed"]),
        "lag_p50_s": round(statistics.median(lags), 3),
        "lag_p99_s": round(lags[int(len(lags) * 0.99) - 1], 3),
        "lag_max_s": round(lags[-1], 3),
        "catch_up_after_load_s": round(catch_up, 1),
        "replay_cpu_s_per_1k_changes": round(cpu / counts["changes"] * 1000, 3) if cpu is not None else None,
    }
    pg.close()
    my.close()
    return result


def _replay_cpu(pg):
    """CPU seconds of the source's replay worker so far (from /proc), or None."""
    pid = pg.execute("SELECT replay_worker_pid FROM chameleon.sources WHERE name = 'kb'").fetchone()
    if not pid or not pid[0]:
        return None
    try:
        with open(f"/proc/{pid[0]}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def main():
    servers = Servers(SCRATCH, MYSQL_PORT, PG_PORT).start()
    try:
        bench_pgc.durable(servers.postgres)
        results = []
        for index in (True, False):
            db = servers.postgres.create_database("kbench_index" if index else "kbench_noindex")
            results.append(run_case(servers, db, index))
            print(json.dumps(results[-1]), flush=True)
        print(f"\nkeyless table of {ROWS} rows, {RATE} changes/s requested for {SECONDS:.0f} s "
              "(half updates, a quarter deletes, a quarter inserts; fsync, synchronous_commit, full_page_writes on)")
        print("| case | changes/s | lag p50 | lag p99 | lag max | catch-up after the load | replay CPU s / 1k changes |")
        print("|---|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['case']} | {r['changes_per_s']} | {r['lag_p50_s']} s | {r['lag_p99_s']} s | {r['lag_max_s']} s "
                  f"| {r['catch_up_after_load_s']} s | {r['replay_cpu_s_per_1k_changes']} |")
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
