"""Benchmark (not a test): the rate of verify_tables, idle and under a sysbench write load, and
the replay lag meanwhile: issue 16's target setting. Uses the harness's private servers
(CHAMELEON_TEST_* ports and scratch).

BENCH_VERIFY_TABLES (default 4) sysbench tables of BENCH_VERIFY_ROWS rows (default 500,000),
made by `sysbench oltp_write_only prepare`, are replicated; then verify_tables (every table of
the source) runs BENCH_VERIFY_ROUNDS times idle and as many times while `sysbench
oltp_write_only` (BENCH_VERIFY_THREADS threads, default 2, unthrottled: as fast as this machine
goes) writes to the same tables. Each run must say `equal` for every table. The rate is the rows
compared (source side, all tables) over the run's wall time. Under the load a probe row written
every 100 ms with its wall-clock time is polled for at the destination every 10 ms: the replay
lag's p50/p99/max with the load alone, then while verifying. Prints the numbers.

BENCH_VERIFY_RATE (sysbench's --rate, transactions/s; default 0, unthrottled) throttles the load.
BENCH_VERIFY_KEY=composite gives every table the primary key (k, id) (id stays unique, for
sysbench's statements): the tables are then read in the source's key order (a key that is not
a single integer column) instead of integer key ranges; sysbench's `k = k + 1` moves keys.
BENCH_VERIFY_KEY=none drops the primary key (id keeps a plain index): the tables replicate by
full row and are compared as multisets counted by PostgreSQL.

The verification worker's peak private memory (RssAnon, sampled every 50 ms; shared buffers
are not in it) is printed with each run. BENCH_VERIFY_TIMINGS=1 also prints where each
table's time went (the worker's own breakdown, logged at DEBUG1 in the benchmark's database:
source, yielded to replay, events, destination, text, ...)."""
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import Servers  # noqa: E402

TABLES = int(os.environ.get("BENCH_VERIFY_TABLES", "4"))
ROWS = int(os.environ.get("BENCH_VERIFY_ROWS", "500000"))
ROUNDS = int(os.environ.get("BENCH_VERIFY_ROUNDS", "3"))
THREADS = int(os.environ.get("BENCH_VERIFY_THREADS", "2"))
RATE = int(os.environ.get("BENCH_VERIFY_RATE", "0"))  # sysbench --rate: 0 unthrottled
KEY = os.environ.get("BENCH_VERIFY_KEY", "id")
TIMINGS = os.environ.get("BENCH_VERIFY_TIMINGS") == "1"
SCRATCH = os.environ.get("CHAMELEON_TEST_SCRATCH", "/tmp/pg_chameleon_rs-bench-verify")
MYSQL_PORT = int(os.environ.get("CHAMELEON_TEST_MYSQL_PORT", "23316"))
PG_PORT = int(os.environ.get("CHAMELEON_TEST_PG_PORT", "25442"))


def sysbench(s, *args):
    return ["sysbench", "oltp_write_only", "--db-driver=mysql", f"--mysql-socket={s.mariadb.socket}",
            "--mysql-user=root", "--mysql-db=sbtest", f"--tables={TABLES}", f"--table-size={ROWS}", *args]


def load(s, my):
    with my.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS sbtest")
        cur.execute("CREATE DATABASE sbtest")
    sb = subprocess.run(sysbench(s, "--threads=2", "prepare"), capture_output=True, text=True)
    if sb.returncode != 0:
        raise RuntimeError(f"sysbench prepare failed: {sb.stderr or sb.stdout}")
    with my.cursor() as cur:
        for i in range(1, TABLES + 1):
            if KEY == "composite":
                cur.execute(f"ALTER TABLE sbtest.sbtest{i} DROP PRIMARY KEY, ADD PRIMARY KEY (k, id), "
                            "ADD UNIQUE KEY id_u (id)")
            elif KEY == "none":
                cur.execute(f"ALTER TABLE sbtest.sbtest{i} DROP PRIMARY KEY, ADD KEY id_i (id)")
        cur.execute("CREATE TABLE sbtest.probe (id INT PRIMARY KEY, at DOUBLE)")
        cur.execute("INSERT INTO sbtest.probe VALUES (1, 0)")
        cur.execute("COMMIT")


class Load:
    """sysbench oltp_write_only until stopped."""

    def __init__(self, s):
        self.proc = subprocess.Popen(sysbench(s, f"--threads={THREADS}", f"--rate={RATE}", "--time=0",
                                              "--report-interval=0",
                                              "--mysql-ignore-errors=1062", "run"),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.t0 = time.time()

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


class Lag:
    """A probe row written every 100 ms with its wall-clock time, polled for every 10 ms."""

    def __init__(self, servers, db):
        self.my = servers.mariadb.root("sbtest")
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
            at = self.pg.execute("SELECT at FROM sbtest.probe WHERE id = 1").fetchone()[0]
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


def commits(my):
    with my.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Com_commit'")
        return int(cur.fetchone()[1])


class PeakMemory:
    """The largest RssAnon (private memory) of any verification worker while it runs."""

    def __init__(self):
        self.peak_kb = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if b"pg_chameleon_rs verify" not in f.read():
                            continue
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("RssAnon:"):
                                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue
            time.sleep(0.05)

    def done(self):
        self.stop.set()
        self.thread.join(5)
        return self.peak_kb / 1024


def verify(pg):
    """One verify_tables run of every table: (states, rows compared on the source side, wall
    seconds, notes of tables not equal and the worker's peak private memory)."""
    mem = PeakMemory()
    run = pg.execute("SELECT chameleon.verify_tables('src')").fetchone()[0]
    t0 = time.time()
    while True:
        rows = pg.execute("SELECT mysql_table, state, rows_source, differing_rows, reason FROM chameleon.verification "
                          "WHERE run_id = %s", (run,)).fetchall()
        if rows and all(r[1] not in ("queued", "running") for r in rows):
            break
        time.sleep(0.1)
    wall = time.time() - t0
    states = sorted({r[1] for r in rows})
    notes = [f"{r[0]}: {r[1]} {r[3]} {r[4] or ''}" for r in rows if r[1] != "equal"]
    notes.append(f"worker peak RssAnon {mem.done():.0f} MB")
    # where the wall time went: before the first table started, each table, between tables
    spans = pg.execute("SELECT mysql_table, extract(epoch FROM started - r.ts_created), "
                       "extract(epoch FROM finished - started) FROM chameleon.verification v "
                       "JOIN sch_chameleon.t_verify_runs r ON r.i_id_run = v.run_id "
                       "WHERE run_id = %s ORDER BY started", (run,)).fetchall()
    if spans and TIMINGS:
        notes.append("tables from the request: " + ", ".join(
            f"{t.split('.')[-1]} at {float(a):.2f} s for {float(d):.2f} s" for t, a, d in spans if a is not None))
    return states, sum(r[2] or 0 for r in rows), wall, notes


def main():
    s = Servers(SCRATCH, MYSQL_PORT, PG_PORT, buffers_mb=1024).start()
    try:
        my = s.mariadb.root()
        t0 = time.time()
        load(s, my)
        print(f"sysbench prepare: {TABLES} x {ROWS} rows, key {KEY}, in {time.time() - t0:.1f} s", flush=True)
        db = s.postgres.create_database("bench_verify")
        if TIMINGS:
            with s.postgres.connect() as c:
                c.execute(f'ALTER DATABASE "{db}" SET log_min_messages = debug1')
        pg = s.postgres.connect(db)
        pg.execute("SELECT chameleon.add_source('src', %s, '{\"sbtest\": \"sbtest\"}', '{}')", (s.mariadb.url(),))
        assert pg.execute("SELECT chameleon.init_replica('src', wait => true)").fetchone()[0] == "initialised"
        pg.execute("SELECT chameleon.start_replica('src')")
        assert pg.execute("SELECT chameleon.wait_for('src', '600 seconds')").fetchone()[0] is True
        for i in range(ROUNDS):
            states, rows, wall, notes = verify(pg)
            print(f"idle {i}: {'/'.join(states)}, {rows} rows in {wall:.2f} s: {rows / wall:,.0f} rows/s; {'; '.join(notes)}",
                  flush=True)
        sb = Load(s)
        lag = Lag(s, db)
        for t in lag.threads:
            t.start()
        time.sleep(10)
        print(f"sysbench alone ({THREADS} threads, rate {RATE or 'unthrottled'}): {lag.summary()}", flush=True)
        lag.lags = []
        rates = []
        commits0, t_load0 = commits(my), time.time()
        for i in range(ROUNDS):
            states, rows, wall, notes = verify(pg)
            rates.append(rows / wall)
            print(f"under load {i}: {'/'.join(states)}, {rows} rows in {wall:.2f} s: {rows / wall:,.0f} rows/s "
                  f"{'; '.join(notes)}", flush=True)
        tps = (commits(my) - commits0) / (time.time() - t_load0)
        print(f"while verifying: sysbench {tps:,.0f} transactions/s; {lag.summary()}", flush=True)
        lag.stop.set()
        for t in lag.threads:
            t.join(10)
        sb.stop()
        print(f"under load: {min(rates):,.0f} to {max(rates):,.0f} rows/s compared", flush=True)
        if TIMINGS:
            with open(os.path.join(s.postgres.dir, "postgres.log")) as f:
                for line in f:
                    if "pg_chameleon_rs: verified" in line:
                        print(line.rstrip().split("DEBUG:  ", 1)[-1], flush=True)
    finally:
        s.stop()


if __name__ == "__main__":
    main()
