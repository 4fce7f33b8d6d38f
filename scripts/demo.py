"""The main job on a local default: a private MariaDB with a generated sample database, a
private PostgreSQL with pg_chameleon_rs, the initial copy, live changes on the source, and
what a DBA looks at to see them arrive. Run with `make demo`; KEEP=1 leaves the servers up."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import oracle  # noqa: E402
import workload  # noqa: E402
from conftest import load_sql  # noqa: E402
from harness import PG_BIN, Servers  # noqa: E402

SCRATCH = os.environ.get("CHAMELEON_DEMO_SCRATCH", "/tmp/pg_chameleon_rs-demo")
MYSQL_PORT = int(os.environ.get("CHAMELEON_DEMO_MYSQL_PORT", "23306"))
PG_PORT = int(os.environ.get("CHAMELEON_DEMO_PG_PORT", "25432"))
CUSTOMERS = int(os.environ.get("CHAMELEON_DEMO_CUSTOMERS", "20000"))
ORDERS = int(os.environ.get("CHAMELEON_DEMO_ORDERS", "100000"))
TABLES = ["customers", "orders", "Order Items", "audit_log", "suppliers", "products", "misc_types"]


def show(title, cur):
    rows = cur.fetchall()
    cols = [d.name for d in cur.description]
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    print(f"\n== {title}")
    print("  " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  " + "-+-".join("-" * w for w in widths))
    for r in cells:
        print("  " + " | ".join(v.ljust(w) for v, w in zip(r, widths)))


def show_vertical(title, cur):
    row = cur.fetchone()
    print(f"\n== {title}")
    w = max(len(d.name) for d in cur.description)
    for d, v in zip(cur.description, row):
        print(f"  {d.name.ljust(w)} : {v}")


def counts(my, pg):
    print("\n== row counts, source vs destination")
    print(f"  {'table':<14} {'MariaDB':>10} {'PostgreSQL':>11}")
    for t in TABLES:
        with my.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM shop.`{t}`")
            m = cur.fetchone()[0]
        p = pg.execute(f'SELECT count(*) FROM shop."{t}"').fetchone()[0]
        print(f"  {t:<14} {m:>10} {p:>11}")


def generate(my):
    load_sql(my, "shop", "shop.sql")
    with my.cursor() as cur:
        cur.execute("USE shop")
        cur.execute(
            "INSERT INTO customers (name, email, notes, created, birthday, balance, tiny, utiny, small, usmall, med,"
            " umed, uint, big, ubig) SELECT CONCAT('customer ', seq), CONCAT('c', seq, '@example.com'),"
            " REPEAT('note ', seq % 20), NOW(6) - INTERVAL seq MINUTE, DATE '1950-01-01' + INTERVAL (seq % 20000) DAY,"
            " (seq % 100000) / 100, seq % 128, seq % 256, seq % 32768, seq % 65536, seq % 8388608, seq % 16777216,"
            f" seq * 97, seq * 1000003, seq * 1000000007 FROM seq_1_to_{CUSTOMERS}")
        cur.execute(
            "INSERT INTO orders SELECT 1000 + seq, 1 + seq % 20000, (seq * 7919) / 100,"
            " ELT(1 + seq % 3, 'new', 'paid', 'shipped'), NOW() - INTERVAL seq HOUR, CONCAT('order ', seq)"
            f" FROM seq_1_to_{ORDERS}")
        cur.execute(
            "INSERT INTO `Order Items` SELECT 1000 + o.seq, l.seq, 1 + (o.seq + l.seq) % 9, 'x'"
            f" FROM seq_1_to_{ORDERS} o JOIN seq_1_to_2 l")


def main():
    servers = Servers(SCRATCH, MYSQL_PORT, PG_PORT)
    keep = os.environ.get("KEEP") == "1"
    try:
        print(f"starting a private MariaDB on 127.0.0.1:{MYSQL_PORT} and PostgreSQL ({PG_BIN}) on"
              f" 127.0.0.1:{PG_PORT} under {SCRATCH}")
        servers.start()
        my = servers.mariadb.root()
        t0 = time.time()
        generate(my)
        print(f"generated sample database `shop` on MariaDB in {time.time() - t0:.1f}s")

        servers.postgres.create_database("demo")
        pg = servers.postgres.connect("demo")
        url = servers.mariadb.url()
        print(f"\npsql> SELECT chameleon.add_source('shop_src', '{url.replace('chameleon-pw', '***')}', '{{\"shop\": \"shop\"}}');")
        pg.execute("SELECT chameleon.add_source('shop_src', %s, '{\"shop\": \"shop\"}')", (url,))

        print("psql> SELECT chameleon.init_replica('shop_src', wait => true);")
        t0 = time.time()
        pg.execute("SELECT chameleon.init_replica('shop_src', wait => true)")
        copy_s = time.time() - t0
        rows = sum(r[0] for r in pg.execute("SELECT rows_copied FROM chameleon.tables").fetchall())
        print(f"initial copy: {rows} rows in {copy_s:.2f}s ({rows / copy_s:,.0f} rows/s, keys built after the data)")
        show("chameleon.tables", pg.execute(
            "SELECT mysql_table, pg_table, state, replica_enabled, rows_copied, consistent_point, last_error"
            " FROM chameleon.tables ORDER BY mysql_table"))

        print("\npsql> SELECT chameleon.start_replica('shop_src');")
        pg.execute("SELECT chameleon.start_replica('shop_src')")

        print("applying changes on MariaDB: 2000 mixed transactions (inserts, updates incl. key changes,"
              " deletes, some rolled back) and one 20,000-row transaction")
        t0 = time.time()
        workload.run(my, "shop", 2000, seed=42, next_order=10_000_000)
        with my.cursor() as cur:
            cur.execute("UPDATE shop.orders SET status = 'archived' WHERE order_id BETWEEN 1001 AND 21000")
        load_s = time.time() - t0
        pg.execute("SELECT chameleon.wait_for('shop_src', '300 seconds')")
        caught_up = time.time() - t0
        events = pg.execute("SELECT coalesce(sum(i_events), 0) FROM sch_chameleon.t_replica_batch").fetchone()[0]
        print(f"source load took {load_s:.2f}s; replica caught up {caught_up - load_s:.2f}s after it ended;"
              f" {events} row events replicated ({events / caught_up:,.0f} events/s end to end)")

        show_vertical("chameleon.sources", pg.execute(
            "SELECT name, status, mysql_url, consistent, read_lag, replay_lag, binlog_file, binlog_position,"
            " gtid, pending_batches, pending_events, worker_pid, worker_alive, last_error FROM chameleon.sources"))
        counts(my, pg)
        for t in TABLES:
            oracle.assert_same_table(my, pg, "shop", "shop", t)
        print("\nevery table equals the source value for value (audit_log has no key: it replicates by full row, see chameleon.tables.replica_identity)")
        print("\npsql> SELECT chameleon.stop_replica('shop_src');")
        print(pg.execute("SELECT chameleon.stop_replica('shop_src')").fetchone()[0])
        if keep:
            print(f"\nKEEP=1: servers left running. psql -h {servers.postgres.dir} -p {PG_PORT} -U postgres demo;"
                  f" mariadb -S {servers.mariadb.socket} -u root shop")
    finally:
        if not keep:
            servers.stop()


if __name__ == "__main__":
    main()
