"""Benchmark (not a test): prints numbers, gates nothing. Uses the harness's private servers.

Scenarios, each checked afterwards against the source (a benchmark of a wrong result is
worthless):
  copy   initial copy of TABLES sysbench-shaped tables of ROWS rows (id, k, c char(120), pad char(60)),
         indexes included: seconds, rows/s, MB/s
  drain  replica stopped, BACKLOG row events generated (updates and inserts in 100-row
         transactions), replica started: seconds until everything is applied, events/s
  keepup a write load of small transactions for SECONDS while replicating: replay lag sampled
         every 100 ms (p50/p99/max)
Sizes from the environment: BENCH_TABLES, BENCH_ROWS, BENCH_BACKLOG, BENCH_SECONDS.
"""
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import oracle  # noqa: E402
from harness import Servers  # noqa: E402

TABLES = int(os.environ.get("BENCH_TABLES", "4"))
ROWS = int(os.environ.get("BENCH_ROWS", "500000"))
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "200000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))
SCRATCH = os.environ.get("CHAMELEON_BENCH_SCRATCH", "/tmp/pg_chameleon_rs-bench")


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
        cur.execute("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest'")
        return int(cur.fetchone()[0])


def check(my, pg):
    for t in range(1, TABLES + 1):
        oracle.assert_same_table(my, pg, "sbtest", "sbtest", f"sbtest{t}")


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
        pg.execute("SELECT chameleon.add_source('sb', %s, '{\"sbtest\": \"sbtest\"}')", (s.mariadb.url(),))

        t0 = time.time()
        pg.execute("SELECT chameleon.init_replica('sb', wait => true)")
        copy_s = time.time() - t0
        rows = TABLES * ROWS
        results.append(("initial copy incl. indexes", f"{copy_s:.2f} s",
                        f"{rows / copy_s:,.0f} rows/s, {data_bytes / 1e6 / copy_s:.0f} MB/s"))
        check(my, pg)

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
        results.append((f"drain {BACKLOG:,} row events (read + store + replay)", f"{drain_s:.2f} s",
                        f"{BACKLOG / drain_s:,.0f} events/s"))
        check(my, pg)

        # keep-up: replay lag while the source writes
        stop = threading.Event()
        written = [0]

        def writer():
            conn = s.mariadb.root()
            with conn.cursor() as cur:
                i = 0
                while not stop.is_set():
                    t = 1 + i % TABLES
                    cur.execute("START TRANSACTION")
                    cur.execute(f"UPDATE sbtest.sbtest{t} SET k = k + 1 WHERE id = {1 + (i * 13) % ROWS}")
                    cur.execute(f"DELETE FROM sbtest.sbtest{t} WHERE id = {1 + (i * 17) % ROWS}")
                    cur.execute(f"INSERT INTO sbtest.sbtest{t} (k, c, pad) VALUES ({i}, 'keepup', 'y')")
                    cur.execute("COMMIT")
                    i += 1
                    written[0] += 3
            conn.close()

        th = threading.Thread(target=writer)
        th.start()
        lags = []
        t0 = time.time()
        while time.time() - t0 < SECONDS:
            lag = pg.execute("SELECT extract(epoch FROM replay_lag) FROM chameleon.sources").fetchone()[0]
            if lag is not None:
                lags.append(float(lag))
            time.sleep(0.1)
        stop.set()
        th.join()
        pg.execute("SELECT chameleon.wait_for('sb', '5 minutes')")
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        results.append((f"keep-up, 1 writer thread, {SECONDS} s", f"{written[0] / SECONDS:,.0f} source events/s",
                        f"replay lag p50 {statistics.median(lags):.2f} s, p99 {p99:.2f} s, max {lags[-1]:.2f} s"))
        check(my, pg)
        pg.execute("SELECT chameleon.stop_replica('sb')")

        print(f"\n{'scenario':<48} {'time / rate':<26} result")
        for r in results:
            print(f"{r[0]:<48} {r[1]:<26} {r[2]}")
        print("\nevery scenario ended with the destination equal to the source")
    finally:
        s.stop()


if __name__ == "__main__":
    main()
