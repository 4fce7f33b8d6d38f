"""Benchmark (not a test): prints numbers, gates nothing. Uses the harness's private servers.

Scenarios, each checked afterwards against the source (a benchmark of a wrong result is
worthless):
  copy   initial copy of TABLES sysbench-shaped tables of ROWS rows (id, k, c char(120), pad char(60)),
         indexes included: seconds, rows/s, MB/s
  drain  replica stopped, BACKLOG row events generated (updates and inserts in 100-row
         transactions), replica started: seconds until everything is applied; events/s read and
         stored (last batch stored) and replayed (last batch replayed)
  limit  what PostgreSQL alone needs for the same copy: server-side COPY ... FROM 'file' of files
         exported beforehand with SELECT ... INTO OUTFILE, two tables at a time, plus the same
         index builds (two at a time)
  keepup sysbench oltp_write_only (THREADS threads) on the source for SECONDS while replicating;
         replication lag measured end to end by a probe row written on the source every 100 ms
         with its wall-clock time and polled for in PostgreSQL every 10 ms (p50/p99/max)
  wide   (only when named) memory: WIDE_ROWS rows of 8 KB copied; peak resident memory (VmHWM)
         of the copy workers, sampled while they run
Sizes from the environment: BENCH_TABLES, BENCH_ROWS, BENCH_BACKLOG, BENCH_SECONDS, BENCH_THREADS, BENCH_WIDE_ROWS;
BENCH_SCENARIOS (comma-separated, default copy,limit,drain,keepup; drain and keepup need copy;
add wide for the memory scenario), BENCH_COPY_WORKERS (default 2), BENCH_SPLIT_ROWS (the source's
copy_split_rows; default the extension's).
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import oracle  # noqa: E402
from harness import Servers  # noqa: E402

TABLES = int(os.environ.get("BENCH_TABLES", "4"))
ROWS = int(os.environ.get("BENCH_ROWS", "500000"))
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "1000000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SCRATCH = os.environ.get("CHAMELEON_BENCH_SCRATCH", "/tmp/pg_chameleon_rs-bench")
WIDE_ROWS = int(os.environ.get("BENCH_WIDE_ROWS", "200000"))
COPY_WORKERS = int(os.environ.get("BENCH_COPY_WORKERS", "2"))
SPLIT_ROWS = os.environ.get("BENCH_SPLIT_ROWS")
COPY_OPTIONS = json.dumps({"copy_workers": COPY_WORKERS, **({"copy_split_rows": int(SPLIT_ROWS)} if SPLIT_ROWS else {})})
SCENARIOS = set(os.environ.get("BENCH_SCENARIOS", "copy,limit,drain,keepup").split(","))


def sbtest(my):
    with my.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS sbtest")
        cur.execute("CREATE DATABASE sbtest")
        cur.execute("USE sbtest")  # seq_1_to_N tables live in the current database
        for t in range(1, TABLES + 1):
            cur.execute(f"CREATE TABLE sbtest.sbtest{t} (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0,"
                        " c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB")
            cur.execute(f"INSERT INTO sbtest.sbtest{t} (k, c, pad) SELECT FLOOR(RAND(seq) * {ROWS}),"
                        " CONCAT(LPAD(seq, 11, '0'), '-', REPEAT(SUBSTRING(MD5(seq), 1, 11), 9)),"
                        f" REPEAT(SUBSTRING(MD5(seq + 1), 1, 11), 5) FROM seq_1_to_{ROWS}")
        # the keep-up scenario's lag probe: a row with the source's wall-clock time every 100 ms
        cur.execute("CREATE TABLE sbtest.probe (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, t DOUBLE NOT NULL)")
        cur.execute("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest'")
        return int(cur.fetchone()[0])


def check(my, pg):
    for t in range(1, TABLES + 1):
        oracle.assert_same_table(my, pg, "sbtest", "sbtest", f"sbtest{t}")
    oracle.assert_same_table(my, pg, "sbtest", "sbtest", "probe")


def in_pairs(pg_connect, statements):
    """Runs the statements two at a time on two connections; returns the elapsed seconds."""
    queue = list(statements)
    lock = threading.Lock()
    errors = []

    def run():
        with pg_connect() as c:
            while True:
                with lock:
                    if not queue:
                        return
                    stmt = queue.pop(0)
                try:
                    c.execute(stmt)
                except Exception as e:  # reported after the join
                    errors.append(e)
                    return

    t0 = time.time()
    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return time.time() - t0


def limit(s, my, data_bytes):
    """PostgreSQL alone: COPY FROM pre-exported files, two at a time, then the index builds."""
    export = os.path.join(s.scratch, "export")
    if os.path.exists(export):
        shutil.rmtree(export)
    os.makedirs(export)
    shutil.chown(export, "mysql", "mysql")
    os.chmod(export, 0o755)
    with my.cursor() as cur:
        for t in range(1, TABLES + 1):
            cur.execute(f"SELECT * FROM sbtest.sbtest{t} INTO OUTFILE '{export}/sbtest{t}.txt'")
    for f in os.listdir(export):
        os.chmod(os.path.join(export, f), 0o644)
    s.postgres.create_database("limit")
    with s.postgres.connect("limit") as pg:
        pg.execute("CREATE SCHEMA lim")
        for t in range(1, TABLES + 1):
            pg.execute(f"CREATE TABLE lim.sbtest{t} (id integer NOT NULL, k integer NOT NULL DEFAULT 0,"
                       " c character(120) NOT NULL DEFAULT '', pad character(60) NOT NULL DEFAULT '')")
    connect = lambda: s.postgres.connect("limit")  # noqa: E731
    copy_s = in_pairs(connect, [f"COPY lim.sbtest{t} FROM '{export}/sbtest{t}.txt'" for t in range(1, TABLES + 1)])
    index_s = in_pairs(connect, [stmt for t in range(1, TABLES + 1) for stmt in (
        f"ALTER TABLE lim.sbtest{t} ADD PRIMARY KEY (id)", f"CREATE INDEX ON lim.sbtest{t} (k)")])
    shutil.rmtree(export)
    total = copy_s + index_s
    return total, copy_s, index_s


def peak_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wide(s, my, pg):
    """WIDE_ROWS rows of about 8 KB copied by the copy workers: their peak resident memory."""
    with my.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS widetest")
        cur.execute("CREATE DATABASE widetest")
        cur.execute("USE widetest")
        cur.execute("CREATE TABLE wide (id INT NOT NULL PRIMARY KEY, body MEDIUMTEXT NOT NULL)")
        step = 20_000
        for lo in range(0, WIDE_ROWS, step):
            hi = min(WIDE_ROWS, lo + step)
            cur.execute(f"INSERT INTO wide SELECT seq, CONCAT(seq, ':', REPEAT(MD5(seq), 256)) FROM seq_{lo + 1}_to_{hi}")
        cur.execute("COMMIT")
    pg.execute("SELECT chameleon.add_source('wd', %s, '{\"widetest\": \"widetest\"}', %s)",
               (s.mariadb.url(), f'{{"copy_workers": {COPY_WORKERS}}}'))
    pg.execute("SELECT chameleon.init_replica('wd')")
    peak = {}
    t0 = time.time()
    while True:
        status = pg.execute("SELECT status, last_error FROM chameleon.sources WHERE name = 'wd'").fetchone()
        pids = pg.execute("SELECT i_pid FROM sch_chameleon.t_copy_workers w JOIN sch_chameleon.t_sources s "
                          "USING (i_id_source) WHERE s.t_source = 'wd' AND i_pid IS NOT NULL").fetchall()
        for (pid,) in pids:
            peak[pid] = max(peak.get(pid, 0), peak_rss_kb(pid))
        if status[0] != "initialising" and time.time() - t0 > 1:
            break
        time.sleep(0.05)
    assert status[0] == "initialised", status
    elapsed = time.time() - t0
    # value for value through digests (the rows themselves would need gigabytes here)
    with my.cursor() as cur:
        cur.execute("SELECT id, MD5(body) FROM widetest.wide ORDER BY id")
        source = [(int(i), h.decode() if isinstance(h, bytes) else h) for i, h in cur.fetchall()]
    dest = pg.execute("SELECT id, md5(body) FROM widetest.wide ORDER BY id").fetchall()
    assert source == [tuple(r) for r in dest], "widetest.wide differs from the source"
    mb = WIDE_ROWS * 8200 / 1e6
    return elapsed, mb, max(peak.values()) / 1024 if peak else 0.0


def report(results):
    print(f"\n{'scenario':<54} {'time / rate':<26} result")
    for r in results:
        print(f"{r[0]:<54} {r[1]:<26} {r[2]}")
    print("\nevery replication scenario ended with the destination equal to the source")


def main():
    s = Servers(SCRATCH, 53396, 55492)
    results = []
    try:
        s.start()
        my = s.mariadb.root()
        t0 = time.time()
        data_bytes = sbtest(my)
        print(f"generated {TABLES} x {ROWS} rows ({data_bytes / 1e6:.0f} MB InnoDB data) in {time.time() - t0:.1f}s")
        s.postgres.create_database("bench")
        pg = s.postgres.connect("bench")
        pg.execute("SELECT chameleon.add_source('sb', %s, '{\"sbtest\": \"sbtest\"}', %s)",
                   (s.mariadb.url(), COPY_OPTIONS))

        rows = TABLES * ROWS
        if "wide" in SCENARIOS:
            elapsed, mb, peak_mb = wide(s, my, pg)
            results.append((f"wide: {WIDE_ROWS:,} rows of 8 KB ({mb:,.0f} MB)", f"{elapsed:.2f} s",
                            f"peak RSS of a copy worker {peak_mb:.0f} MB"))
        if "limit" in SCENARIOS:
            total, copy_s, index_s = limit(s, my, data_bytes)
            results.append(("limit: PG COPY FROM file + index builds, 2 at a time", f"{total:.2f} s",
                            f"copy {copy_s:.2f} s + indexes {index_s:.2f} s, {rows / total:,.0f} rows/s"))
        if "copy" not in SCENARIOS:
            report(results)
            return
        t0 = time.time()
        pg.execute("SELECT chameleon.init_replica('sb', wait => true)")
        copy_s = time.time() - t0
        results.append(("initial copy incl. indexes", f"{copy_s:.2f} s",
                        f"{rows / copy_s:,.0f} rows/s, {data_bytes / 1e6 / copy_s:.0f} MB/s"))
        check(my, pg)
        if "limit" in SCENARIOS:
            results.append(("  ratio ours / limit", f"{copy_s / total:.2f}", ""))
        if "drain" not in SCENARIOS and "keepup" not in SCENARIOS:
            report(results)
            return

        # drain: a stored backlog applied by the replay worker
        pg.execute("SELECT chameleon.start_replica('sb')")
        pg.execute("SELECT chameleon.wait_for('sb', '60 seconds')")
        pg.execute("SELECT chameleon.stop_replica('sb')")
        with my.cursor() as cur:
            cur.execute("USE sbtest")
            done = 0
            while done < BACKLOG:
                t = 1 + (done // 100) % TABLES
                lo = 1 + (done * 7) % (ROWS - 100)
                cur.execute("START TRANSACTION")
                cur.execute(f"UPDATE sbtest.sbtest{t} SET k = k + 1 WHERE id BETWEEN {lo} AND {lo + 49}")
                cur.execute(f"INSERT INTO sbtest.sbtest{t} (k, c, pad) SELECT seq, 'drain', 'x' FROM seq_1_to_50")
                cur.execute("COMMIT")
                done += 100
        t0 = time.time()
        pg.execute("SELECT chameleon.start_replica('sb')")
        pg.execute("SELECT chameleon.wait_for('sb', '30 minutes')")
        drain_s = time.time() - t0
        stored_s, replayed_s = pg.execute(
            """SELECT extract(epoch FROM max(ts_created)) - %s, extract(epoch FROM max(ts_replayed)) - %s
                 FROM sch_chameleon.t_replica_batch WHERE ts_created >= to_timestamp(%s)""", (t0, t0, t0)).fetchone()
        results.append((f"drain {BACKLOG:,} row events (read + store + replay)", f"{drain_s:.2f} s",
                        f"{BACKLOG / drain_s:,.0f} events/s; read and stored {BACKLOG / float(stored_s):,.0f}/s, "
                        f"replayed {BACKLOG / float(replayed_s):,.0f}/s"))
        check(my, pg)

        # keep-up: sysbench oltp_write_only on the source, lag measured by a probe row
        stop = threading.Event()
        sent = {}

        def prober():
            conn = s.mariadb.root()
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute("INSERT INTO sbtest.probe (t) VALUES (%s)", (time.time(),))
                    sent[cur.lastrowid] = True
                    time.sleep(0.1)
            conn.close()

        lags = []

        def poller():
            conn = s.postgres.connect("bench")
            last = 0
            while not stop.is_set() or last < max(sent, default=0):
                for pid, t in conn.execute("SELECT id, t FROM sbtest.probe WHERE id > %s ORDER BY id", (last,)).fetchall():
                    lags.append(time.time() - t)
                    last = pid
                time.sleep(0.01)
            conn.close()

        threads = [threading.Thread(target=prober), threading.Thread(target=poller)]
        for th in threads:
            th.start()
        before = pg.execute("SELECT coalesce(sum(i_events), 0) FROM sch_chameleon.t_replica_batch").fetchone()[0]
        sb = subprocess.run(
            ["sysbench", "oltp_write_only", "--db-driver=mysql", f"--mysql-socket={s.mariadb.socket}",
             "--mysql-user=root", "--mysql-db=sbtest", f"--tables={TABLES}", f"--table-size={ROWS}",
             f"--threads={THREADS}", f"--time={SECONDS}", "--mysql-ignore-errors=1062", "run"],
            capture_output=True, text=True)
        stop.set()
        for th in threads:
            th.join()
        if sb.returncode != 0:
            raise RuntimeError(f"sysbench failed: {sb.stderr or sb.stdout}")
        tps = float(re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", sb.stdout).group(1))
        pg.execute("SELECT chameleon.wait_for('sb', '5 minutes')")
        events = pg.execute("SELECT coalesce(sum(i_events), 0) FROM sch_chameleon.t_replica_batch").fetchone()[0] - before
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        results.append((f"keep-up: sysbench oltp_write_only, {THREADS} threads, {SECONDS} s",
                        f"{tps:,.0f} tps, {events / SECONDS:,.0f} row events/s",
                        f"lag p50 {statistics.median(lags):.3f} s, p99 {p99:.3f} s, max {lags[-1]:.3f} s "
                        f"({len(lags)} probes)"))
        check(my, pg)
        pg.execute("SELECT chameleon.stop_replica('sb')")

        report(results)
    finally:
        s.stop()


if __name__ == "__main__":
    main()
