"""Benchmark (not a test): one large source transaction. Prints numbers, gates nothing.

Uses the harness's private servers (BENCH_MYSQL_PORT / BENCH_PG_PORT, CHAMELEON_BENCH_SCRATCH).
A sysbench-shaped table of BIGTXN_ROWS rows (id, k, c char(120), pad char(60); INSERT ...
SELECT) is copied, the source is started, then one transaction `UPDATE sbtest1 SET k = k + 1`
changes every row (BIGTXN_ROWS row events in one source transaction). Measured until
`wait_for` returns: seconds, rows/s, when its batch was stored whole and when replayed, and the peak memory of the read and replay workers
(VmHWM, and the largest private anonymous memory RssAnon seen, sampled every 50 ms from
/proc/<pid>/status); then the destination is compared with the source value for value.
BIGTXN_OPTIONS: extra source options (JSON), e.g. '{"batch_max_memory": 8}'.
"""
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import oracle  # noqa: E402
from harness import Servers  # noqa: E402

ROWS = int(os.environ.get("BIGTXN_ROWS", "1000000"))
OPTIONS = json.loads(os.environ.get("BIGTXN_OPTIONS", "{}"))
MYSQL_PORT = int(os.environ.get("BENCH_MYSQL_PORT", "23396"))
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "25492"))
SCRATCH = os.environ.get("CHAMELEON_BENCH_SCRATCH", "/tmp/pg_chameleon_rs-bench-bigtxn")
BUFFERS_MB = int(os.environ.get("BENCH_BUFFERS_MB", "1024"))


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Largest RssAnon and VmHWM of each pid, every 50 ms (a restarted worker is followed)."""

    def __init__(self, pg, source):
        super().__init__(daemon=True)
        self.pg, self.source = pg, source
        self.peak = {"read": [0, 0], "replay": [0, 0]}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            read, replay = self.pg.execute("SELECT worker_pid, replay_worker_pid FROM chameleon.sources "
                                           "WHERE name = %s", (self.source,)).fetchone()
            for role, pid in (("read", read), ("replay", replay)):
                if pid:
                    p = self.peak[role]
                    p[0] = max(p[0], status_kb(pid, "RssAnon"))
                    p[1] = max(p[1], status_kb(pid, "VmHWM"))
            time.sleep(0.05)


def main():
    s = Servers(SCRATCH, MYSQL_PORT, PG_PORT, buffers_mb=BUFFERS_MB).start()
    try:
        my = s.mariadb.root()
        with my.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS sbtest")
            cur.execute("CREATE DATABASE sbtest")
            cur.execute("USE sbtest")
            cur.execute("CREATE TABLE sbtest1 (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0,"
                        " c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB")
            cur.execute(f"INSERT INTO sbtest1 (k, c, pad) SELECT FLOOR(RAND(seq) * {ROWS}),"
                        " CONCAT(LPAD(seq, 11, '0'), '-', REPEAT(SUBSTRING(MD5(seq), 1, 11), 9)),"
                        f" REPEAT(SUBSTRING(MD5(seq + 1), 1, 11), 5) FROM seq_1_to_{ROWS}")
        s.postgres.create_database("bench")
        pg = s.postgres.connect("bench")
        pg.execute("SELECT chameleon.add_source('sb', %s, '{\"sbtest\": \"sbtest\"}', %s)",
                   (s.mariadb.url(), json.dumps(OPTIONS)))
        pg.execute("SELECT chameleon.init_replica('sb', wait => true)")
        pg.execute("SELECT chameleon.start_replica('sb')")
        time.sleep(2)
        assert pg.execute("SELECT chameleon.wait_for('sb', '300 seconds')").fetchone()[0]
        sampler = Sampler(s.postgres.connect("bench"), "sb")
        sampler.start()
        t0 = time.time()
        with my.cursor() as cur:
            cur.execute("UPDATE sbtest.sbtest1 SET k = k + 1")
        my.commit()
        t_source = time.time() - t0
        assert pg.execute("SELECT chameleon.wait_for('sb', '3600 seconds')").fetchone()[0]
        elapsed = time.time() - t0
        sampler.stop.set()
        sampler.join()
        batches = pg.execute("SELECT count(*), max(i_events) FROM sch_chameleon.t_replica_batch").fetchone()
        stored, replayed = pg.execute(
            "SELECT extract(epoch FROM ts_created)::float8, extract(epoch FROM ts_replayed)::float8 "
            "FROM sch_chameleon.t_replica_batch ORDER BY i_events DESC LIMIT 1").fetchone()
        oracle.assert_same_table(my, pg, "sbtest", "sbtest", "sbtest1")
        r, p = sampler.peak["read"], sampler.peak["replay"]
        print(f"one source transaction of {ROWS:,} row updates (options {json.dumps(OPTIONS)}):")
        print(f"  source UPDATE {t_source:.1f} s; replicated (read, stored, replayed) {elapsed:.1f} s after it began,"
              f" {ROWS / elapsed:,.0f} rows/s")
        print(f"  its batch closed (read and stored) {stored - t0:.1f} s, replayed {replayed - t0:.1f} s after it began")
        print(f"  read worker peak RssAnon {r[0] / 1024:.0f} MB, VmHWM {r[1] / 1024:.0f} MB")
        print(f"  replay worker peak RssAnon {p[0] / 1024:.0f} MB, VmHWM {p[1] / 1024:.0f} MB")
        print(f"  batches {batches[0]}, largest {batches[1]:,} events; destination equal to the source")
    finally:
        s.stop()


if __name__ == "__main__":
    main()
