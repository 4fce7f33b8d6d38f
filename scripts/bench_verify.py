"""Benchmark (not a test): the rate of verify_tables, idle and under a write load, and the
replay lag meanwhile. Uses the harness's private servers (CHAMELEON_TEST_* ports and scratch).

One sysbench-shaped table (id, k, c char(120), pad char(60)) of BENCH_VERIFY_ROWS rows
(default 500,000) is replicated; then verify_tables runs BENCH_VERIFY_ROUNDS times idle and as
many times while a write load (updates, inserts, deletes on the same table in small
transactions, BENCH_VERIFY_TPS per second) runs. Each run must say `equal`. Under the load a
probe row written every 100 ms with its wall-clock time is polled for at the destination every
10 ms: the replay lag's p50/p99/max while verifying. Prints the numbers."""
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import Servers  # noqa: E402

ROWS = int(os.environ.get("BENCH_VERIFY_ROWS", "500000"))
ROUNDS = int(os.environ.get("BENCH_VERIFY_ROUNDS", "3"))
TPS = int(os.environ.get("BENCH_VERIFY_TPS", "300"))
SCRATCH = os.environ.get("CHAMELEON_TEST_SCRATCH", "/tmp/pg_chameleon_rs-bench-verify")
MYSQL_PORT = int(os.environ.get("CHAMELEON_TEST_MYSQL_PORT", "53316"))
PG_PORT = int(os.environ.get("CHAMELEON_TEST_PG_PORT", "55442"))


def load(my):
    with my.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS vb")
        cur.execute("CREATE DATABASE vb")
        cur.execute("USE vb")
        cur.execute("CREATE TABLE sbtest1 (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0, "
                    "c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))")
        cur.execute("CREATE TABLE probe (id INT PRIMARY KEY, at DOUBLE)")
        cur.execute("INSERT INTO probe VALUES (1, 0)")
        done = 0
        while done < ROWS:
            n = min(100_000, ROWS - done)
            cur.execute(
                f"INSERT INTO sbtest1 (k, c, pad) SELECT FLOOR(RAND() * {ROWS}), CONCAT(LPAD(seq, 11, '0'), '-', "
                "MD5(RAND()), '-', MD5(RAND()), '-', SUBSTRING(MD5(RAND()), 1, 20)), "
                f"CONCAT(LPAD(seq, 11, '0'), '-', SUBSTRING(MD5(RAND()), 1, 30)) FROM seq_1_to_{n}")
            done += n
        cur.execute("COMMIT")


class Load:
    def __init__(self, servers):
        self.my = servers.mariadb.root("vb")
        self.stop = threading.Event()
        self.done = 0
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        rng = random.Random(1)
        next_id = ROWS + 1_000_000
        try:
            with self.my.cursor() as cur:
                while not self.stop.is_set():
                    t0 = time.time()
                    cur.execute("START TRANSACTION")
                    cur.execute("UPDATE sbtest1 SET k = k + 1 WHERE id = %s", (rng.randint(1, ROWS),))
                    cur.execute("UPDATE sbtest1 SET c = %s WHERE id = %s", (f"u{rng.random()}", rng.randint(1, ROWS)))
                    d = rng.randint(1, ROWS)
                    cur.execute("DELETE FROM sbtest1 WHERE id = %s", (d,))
                    cur.execute("INSERT INTO sbtest1 VALUES (%s, 1, 'c', 'pad')", (d,))
                    cur.execute("INSERT INTO sbtest1 VALUES (%s, 2, 'new', 'pad')", (next_id,))
                    next_id += 1
                    cur.execute("COMMIT")
                    self.done += 1
                    time.sleep(max(0.0, 1.0 / TPS - (time.time() - t0)))
        except Exception as e:
            self.error = e


class Lag:
    """A probe row written every 100 ms with its wall-clock time, polled for every 10 ms."""

    def __init__(self, servers, db):
        self.my = servers.mariadb.root("vb")
        self.pg = servers.postgres.connect(db)
        self.stop = threading.Event()
        self.lags = []
        self.threads = [threading.Thread(target=self.write, daemon=True),
                        threading.Thread(target=self.poll, daemon=True)]

    def write(self):
        with self.my.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("UPDATE probe SET at = %s WHERE id = 1", (time.time(),))
                cur.execute("COMMIT")
                time.sleep(0.1)

    def poll(self):
        seen = 0.0
        while not self.stop.is_set():
            at = self.pg.execute("SELECT at FROM vb.probe WHERE id = 1").fetchone()[0]
            if at and at > seen:
                self.lags.append(time.time() - at)
                seen = at
            time.sleep(0.01)

    def summary(self):
        if not self.lags:
            return "no probe seen"
        q = sorted(self.lags)
        return (f"lag p50 {statistics.median(q) * 1000:.0f} ms, p99 {q[int(len(q) * 0.99) - 1] * 1000:.0f} ms, "
                f"max {q[-1] * 1000:.0f} ms ({len(q)} probes)")


def verify(pg):
    run = pg.execute("SELECT chameleon.verify_tables('src', ARRAY['vb.sbtest1'])").fetchone()[0]
    while True:
        r = pg.execute("SELECT state, rows_source, rows_per_s, differing_rows, reason FROM chameleon.verification "
                       "WHERE run_id = %s", (run,)).fetchone()
        if r[0] not in ("queued", "running"):
            return r
        time.sleep(0.2)


def main():
    s = Servers(SCRATCH, MYSQL_PORT, PG_PORT, buffers_mb=1024).start()
    try:
        my = s.mariadb.root()
        t0 = time.time()
        load(my)
        print(f"loaded {ROWS} rows in {time.time() - t0:.1f} s", flush=True)
        db = s.postgres.create_database("bench_verify")
        pg = s.postgres.connect(db)
        pg.execute("SELECT chameleon.add_source('src', %s, '{\"vb\": \"vb\"}', '{}')", (s.mariadb.url(),))
        assert pg.execute("SELECT chameleon.init_replica('src', wait => true)").fetchone()[0] == "initialised"
        pg.execute("SELECT chameleon.start_replica('src')")
        assert pg.execute("SELECT chameleon.wait_for('src', '600 seconds')").fetchone()[0] is True
        for i in range(ROUNDS):
            r = verify(pg)
            print(f"idle {i}: {r[0]}, {r[1]} rows, {r[2]} rows/s", flush=True)
        load_ = Load(s)
        lag = Lag(s, db)
        load_.thread.start()
        for t in lag.threads:
            t.start()
        time.sleep(3)
        t_base = time.time()
        base_lags = len(lag.lags)
        time.sleep(5)
        print(f"load alone: {lag.summary()}", flush=True)
        lag.lags = []
        t0 = time.time()
        n0 = load_.done
        for i in range(ROUNDS):
            r = verify(pg)
            print(f"under load {i}: {r[0]}, {r[1]} rows, {r[2]} rows/s {r[3] if r[0] != 'equal' else ''} "
                  f"{r[4] or ''}", flush=True)
        rate = (load_.done - n0) / (time.time() - t0)
        print(f"while verifying: {rate:.0f} transactions/s (5 row events each), {lag.summary()}", flush=True)
        del t_base, base_lags
        load_.stop.set()
        lag.stop.set()
        load_.thread.join(10)
        for t in lag.threads:
            t.join(10)
        if load_.error:
            print("load error:", load_.error)
    finally:
        s.stop()


if __name__ == "__main__":
    main()
