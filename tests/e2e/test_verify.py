"""verify_tables: the replica compared with the source while a write load runs on the same
tables. Destination rows damaged in every way (one value per type, a deleted row, an extra
row, a changed key) are reported exactly, by key and column, and nothing else; repair copies
the tables again and a second run says equal; a keyless table with a duplicated row is found;
an equal schema under load is reported equal, run after run."""
import random
import threading
import time

import oracle
import pytest

N_PLAIN = 25_000  # more than two chunks of 10,000 rows

SCHEMA = [
    """CREATE TABLE vt_types (
         id INT PRIMARY KEY, ts DATETIME(6), tsz TIMESTAMP(6) NULL, dec_ DECIMAL(20,6), f FLOAT, d DOUBLE,
         b BIT(12), bl BLOB, vc VARCHAR(50), j JSON, e ENUM('red','green','blue'), dt DATE)""",
    "CREATE TABLE vt_plain (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(20), pad VARCHAR(60))",
    "CREATE TABLE vt_strkey (code VARCHAR(20) PRIMARY KEY, val INT, note TEXT)",
    "CREATE TABLE vt_nokey (a INT, b VARCHAR(20))",
    # a key of three columns whose order differs between the source (a case- and
    # accent-insensitive collation) and PostgreSQL: read in the source's key order
    """CREATE TABLE vt_compkey (region VARCHAR(10) NOT NULL, seq INT NOT NULL, at DATETIME(6) NOT NULL, val INT,
         note VARCHAR(20), PRIMARY KEY (region, seq, at)) COLLATE utf8mb4_general_ci""",
]
REGIONS = ["alpha", "Beta", "gamma", "Delta", "\u00e9clair"]
N_COMP = 2_600  # per region: 13,000 rows, two chunks


def comp_at(seq):
    return f"2024-03-0{1 + seq % 3} 10:00:00.{seq:06d}"


def type_row(i):
    return (i, f"2024-01-02 03:04:05.{i:06d}", f"2023-06-07 08:09:10.{i:06d}", f"{i}.123456", 1.1 * i,
            0.1 * i, i % 4096, bytes([i % 256, 0, 255, 7]), f"text {i}", '{"b": 1, "a": [1, 2], "ccc": {"z": 1, "y": 2}}',
            ["red", "green", "blue"][i % 3], "2020-02-29")


def load_source(ctx):
    ctx.my_exec(*SCHEMA)
    with ctx.my.cursor() as cur:
        cur.execute(f"USE `{ctx.my_schema}`")
        cur.executemany("INSERT INTO vt_types VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        [type_row(i) for i in range(1, 121)])
        for start in range(1, N_PLAIN + 1, 5000):
            cur.executemany("INSERT INTO vt_plain VALUES (%s,%s,%s,%s)",
                            [(i, i * 7, f"c{i}", "p" * (i % 60)) for i in range(start, min(start + 5000, N_PLAIN + 1))])
        cur.execute("DELETE FROM vt_plain WHERE id = 10500")  # a gap: the damage adds it at the destination
        cur.executemany("INSERT INTO vt_strkey VALUES (%s,%s,%s)",
                        [(f"k{i}", i, f"n{i}") for i in range(1, 201)] + [(f"L{i}", i, "load") for i in range(1, 51)])
        # more than one chunk of rows, a duplicate and NULLs: counted as a multiset in PostgreSQL
        cur.executemany("INSERT INTO vt_nokey VALUES (%s,%s)", [(1, "a"), (2, "b"), (3, "c"), (3, "c"), (None, None)]
                        + [(i, f"r{i}") for i in range(10, 12_010)])
        cur.executemany("INSERT INTO vt_compkey VALUES (%s,%s,%s,%s,%s)",
                        [(r, i, comp_at(i), i, f"n{i}") for r in REGIONS for i in range(1, N_COMP + 1)])


class Load:
    """Writes on the same tables as the damage, never on a damaged row: vt_types ids 1..100,
    vt_plain ids 1..2000 and new ids from 1,000,000, vt_strkey L-rows, vt_compkey seqs 1..500 (moved
    to seq + 100,000) and new seqs from 1,000,000 in every region (in the middle of the key order),
    vt_nokey rows from 1,000,000."""

    runs = 0

    def __init__(self, servers, schema):
        Load.runs += 1
        self.first_id = 1_000_000 * Load.runs
        self.my = servers.mariadb.root(schema)
        self.stop = threading.Event()
        self.error = None
        self.done = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        rng = random.Random(7)
        next_id = self.first_id
        try:
            with self.my.cursor() as cur:
                while not self.stop.is_set():
                    cur.execute("START TRANSACTION")
                    i = rng.randint(1, 100)
                    cur.execute("UPDATE vt_types SET ts = NOW(6), dec_ = dec_ + 0.000001, f = f * 1.5, "
                                "j = JSON_SET(j, '$.n', %s) WHERE id = %s", (rng.randint(0, 10**6), i))
                    cur.execute("UPDATE vt_plain SET k = k + 1, c = %s WHERE id = %s",
                                (f"u{rng.randint(0, 10**6)}", rng.randint(1, 2000)))
                    cur.execute("INSERT INTO vt_plain VALUES (%s, 1, 'new', 'load')", (next_id,))
                    if rng.random() < 0.3:
                        cur.execute("DELETE FROM vt_plain WHERE id = %s", (next_id - rng.randint(1, 5),))
                    if rng.random() < 0.2:
                        # a key that moves (within the load's own range)
                        cur.execute("UPDATE vt_plain SET id = id + 500000 WHERE id = %s", (rng.randint(1, 2000),))
                    cur.execute("UPDATE vt_strkey SET val = val + 1, note = %s WHERE code = %s",
                                (f"l{rng.randint(0, 999)}", f"L{rng.randint(1, 50)}"))
                    region = rng.choice(REGIONS)
                    cur.execute("UPDATE vt_compkey SET val = val + 1 WHERE region = %s AND seq = %s",
                                (region, rng.randint(1, 500)))
                    cur.execute("INSERT INTO vt_compkey VALUES (%s, %s, NOW(6), 1, 'load')", (region, next_id))
                    if rng.random() < 0.2:
                        cur.execute("UPDATE vt_compkey SET seq = seq + 100000 WHERE region = %s AND seq = %s",
                                    (rng.choice(REGIONS), rng.randint(1, 500)))
                    if rng.random() < 0.3:
                        cur.execute("DELETE FROM vt_compkey WHERE seq = %s", (next_id - rng.randint(1, 5),))
                    # the keyless table: a new row, a row changed, an old row deleted (by full row)
                    cur.execute("INSERT INTO vt_nokey VALUES (%s, 'load')", (next_id,))
                    cur.execute("UPDATE vt_nokey SET b = 'load2' WHERE a = %s", (next_id - 1,))
                    if rng.random() < 0.3:
                        cur.execute("DELETE FROM vt_nokey WHERE a = %s", (next_id - rng.randint(2, 5),))
                    next_id += 1
                    cur.execute("COMMIT")
                    self.done += 1
                    time.sleep(0.002)
        except Exception as e:  # reported by stop()
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        self.my.close()
        assert self.error is None, f"the write load failed: {self.error}"
        assert self.done > 20, f"the write load ran only {self.done} transactions"


def start(ctx):
    ctx.add_source()
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    assert ctx.one("SELECT chameleon.wait_for('src', '120 seconds')") is True


def wait_run(ctx, run_id, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [r[0] for r in ctx.sql("SELECT state FROM chameleon.verification WHERE run_id = %s", (run_id,))]
        if states and all(s not in ("queued", "running") for s in states):
            return {r[0]: r for r in ctx.sql(
                "SELECT mysql_table, state, missing, extra, different, differing_rows, reason, rows_source, "
                "rows_destination, chunks, compared_at, rows_per_s, run_id FROM chameleon.verification WHERE run_id = %s",
                (run_id,))}
        time.sleep(0.3)
    raise AssertionError(f"verification run {run_id} did not finish: {ctx.sql('SELECT * FROM chameleon.verification')}")


def keys_of(result, kind, column):
    return sorted(r["key"][column] for r in result[5] if r["kind"] == kind)


def t(ctx, name):
    return f"{ctx.my_schema}.{name}"


def damage(ctx):
    """Every kind of damage, on rows the load never writes."""
    q = [
        "UPDATE shop.vt_types SET ts = ts + interval '1 microsecond' WHERE id = 101",
        "UPDATE shop.vt_types SET dec_ = dec_ + 0.000001 WHERE id = 102",
        # one bit of a float (the next float4 after the stored one) and of a double
        "UPDATE shop.vt_types SET f = f * (1 + 1e-7::float4) WHERE id = 103",
        "UPDATE shop.vt_types SET d = d * (1 + 2.3e-16) WHERE id = 104",
        "UPDATE shop.vt_types SET b = b # B'000000000001' WHERE id = 105",
        "UPDATE shop.vt_types SET bl = set_byte(bl, 3, 8) WHERE id = 106",
        "UPDATE shop.vt_types SET vc = vc || ' ' WHERE id = 107",
        """UPDATE shop.vt_types SET j = '{"b": 1, "a": [1, 2], "ccc": {"z": 1, "y": 3}}' WHERE id = 108""",
        "UPDATE shop.vt_types SET dt = NULL WHERE id = 109",
        "UPDATE shop.vt_types SET tsz = tsz - interval '1 microsecond' WHERE id = 110",
        "DELETE FROM shop.vt_types WHERE id = 111",
        "UPDATE shop.vt_types SET id = 6112 WHERE id = 112",
        "INSERT INTO shop.vt_types SELECT 5000, ts, tsz, dec_, f, d, b, bl, vc, j, e, dt FROM shop.vt_types WHERE id = 115",
        "UPDATE shop.vt_plain SET c = 'changed' WHERE id = 15000",
        "DELETE FROM shop.vt_plain WHERE id = 20000",
        "INSERT INTO shop.vt_plain VALUES (10500, 1, 'extra', 'in a chunk''s range'), (400000, 1, 'extra', 'after the end')",
        "UPDATE shop.vt_strkey SET val = val + 1 WHERE code = 'k7'",
        "UPDATE shop.vt_strkey SET code = 'k8x' WHERE code = 'k8'",
        "INSERT INTO shop.vt_nokey VALUES (1, 'a')",
        "DELETE FROM shop.vt_nokey WHERE a = 5000",
        "UPDATE shop.vt_nokey SET b = 'x \"y\", (z)' WHERE a = 6000",
        "UPDATE shop.vt_compkey SET val = val + 1 WHERE region = 'Beta' AND seq = 2000",
        "DELETE FROM shop.vt_compkey WHERE region = 'gamma' AND seq = 1500",
        # extra: in the middle of the source's order; and a key the source's collation finds
        # equal to one it has ('alpha'), which PostgreSQL does not
        "INSERT INTO shop.vt_compkey VALUES ('alpha', 777777, '2024-03-01 10:00:00', 1, 'extra')",
        "INSERT INTO shop.vt_compkey SELECT 'ALPHA', seq, at, val, note FROM shop.vt_compkey "
        "WHERE region = 'alpha' AND seq = 600",
        # a changed key: one microsecond of its third column
        "UPDATE shop.vt_compkey SET at = at + interval '1 microsecond' WHERE region = 'Delta' AND seq = 2500",
    ]
    for s in q:
        ctx.pg.execute(s)


def assert_damage_reported(ctx, res):
    types = res[t(ctx, "vt_types")]
    assert types[1] == "different", types
    assert keys_of(types, "different", "id") == sorted(str(i) for i in range(101, 111)), types[5]
    cols = {r["key"]["id"]: r["columns"] for r in types[5] if r["kind"] == "different"}
    assert cols == {"101": ["ts"], "102": ["dec_"], "103": ["f"], "104": ["d"], "105": ["b"], "106": ["bl"],
                    "107": ["vc"], "108": ["j"], "109": ["dt"], "110": ["tsz"]}, cols
    assert keys_of(types, "missing", "id") == ["111", "112"]
    assert keys_of(types, "extra", "id") == ["5000", "6112"]
    assert types[2:5] == (2, 2, 10), types

    plain = res[t(ctx, "vt_plain")]
    assert plain[1] == "different", plain
    assert keys_of(plain, "different", "id") == ["15000"]
    assert keys_of(plain, "missing", "id") == ["20000"]
    assert keys_of(plain, "extra", "id") == ["10500", "400000"]
    assert plain[2:5] == (1, 2, 1), plain
    assert plain[9] >= 3, f"{N_PLAIN} rows in chunks of 10,000: {plain[9]} chunks"
    # the first chunk (ids 1..10000, written by the load) is equal as text; the damaged ones
    # (10500, 15000, 20000; 400000 after the end) went row by row
    method = ctx.one("SELECT method FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                     (res[t(ctx, "vt_plain")][12], t(ctx, "vt_plain")))
    assert f"1 of {plain[9]} chunks equal as text" in method, method

    strkey = res[t(ctx, "vt_strkey")]
    assert keys_of(strkey, "different", "code") == ["k7"], strkey
    assert keys_of(strkey, "missing", "code") == ["k8"]
    assert keys_of(strkey, "extra", "code") == ["k8x"]

    comp = res[t(ctx, "vt_compkey")]
    assert comp[1] == "different", comp
    by = lambda kind: sorted((r["key"]["region"], r["key"]["seq"], r["key"]["at"]) for r in comp[5] if r["kind"] == kind)
    assert by("different") == [("Beta", "2000", "2024-03-03 10:00:00.002")], comp[5]
    assert [r["columns"] for r in comp[5] if r["kind"] == "different"] == [["val"]]
    assert by("missing") == [("Delta", "2500", "2024-03-02 10:00:00.0025"),
                             ("gamma", "1500", "2024-03-01 10:00:00.0015")], comp[5]
    assert by("extra") == [("ALPHA", "600", "2024-03-01 10:00:00.0006"), ("Delta", "2500", "2024-03-02 10:00:00.002501"),
                           ("alpha", "777777", "2024-03-01 10:00:00")], comp[5]
    assert comp[2:5] == (2, 3, 1), comp
    method = ctx.one("SELECT method FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                     (comp[12], t(ctx, "vt_compkey")))
    assert method.startswith("the source's key order: 2 chunks"), method

    nokey = res[t(ctx, "vt_nokey")]
    assert nokey[1] == "different", nokey
    assert sorted((r["kind"], r["row"]["a"], r["row"]["b"]) for r in nokey[5]) == [
        ("extra", "1", "a"), ("extra", "6000", 'x "y", (z)'), ("missing", "5000", "r5000"),
        ("missing", "6000", "r6000")], nokey
    assert nokey[2:5] == (2, 2, 0)


def test_verify_finds_exactly_the_damage_under_load_and_repair_fixes_it(ctx):
    load_source(ctx)
    start(ctx)
    names = [t(ctx, n) for n in ("vt_types", "vt_plain", "vt_strkey", "vt_nokey", "vt_compkey")]
    damage(ctx)
    with Load(ctx.servers, ctx.my_schema):
        run = ctx.one("SELECT chameleon.verify_tables('src', %s)", (names,))
        time.sleep(0.5)
        status = ctx.one("SELECT detail FROM chameleon.show_status('src')")
        res = wait_run(ctx, run)
    for name in names:
        r = res[name]
        assert r[10] is not None and ":" in r[10], f"{name}: the position compared at: {r}"
    assert_damage_reported(ctx, res)
    print("show_status while verifying:", status)

    # the same damage found again, and repaired, while the load goes on
    with Load(ctx.servers, ctx.my_schema):
        run = ctx.one("SELECT chameleon.verify_tables('src', %s, repair => true)", (names,))
        res = wait_run(ctx, run, timeout=600)
    for name in names:
        assert res[name][1] == "repaired", res[name]
    assert ctx.one("SELECT repaired_rows FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                   (run, t(ctx, "vt_types"))) == 14
    # a table with a key: its differing rows rewritten by key; the keyless one copied again
    reasons = dict(ctx.sql("SELECT mysql_table, reason FROM chameleon.verification WHERE run_id = %s", (run,)))
    for name in ("vt_types", "vt_plain", "vt_strkey", "vt_compkey"):
        assert "rewritten by key" in reasons[t(ctx, name)], reasons
    assert reasons[t(ctx, "vt_types")] == "repaired: 14 differing keys rewritten by key (12 rows written)", reasons
    assert "copied again" in reasons[t(ctx, "vt_nokey")], reasons

    with Load(ctx.servers, ctx.my_schema):
        run = ctx.one("SELECT chameleon.verify_tables('src', %s)", (names,))
        res = wait_run(ctx, run)
    for name in names:
        assert res[name][1] == "equal", res[name]
    # with the source quiet, every chunk read in the source's key order is equal as text (the
    # destination's rows looked up by the chunk's keys, written in the same order)
    assert ctx.one("SELECT chameleon.wait_for('src', '120 seconds')") is True
    run = ctx.one("SELECT chameleon.verify_tables('src', %s, wait => true)", ([t(ctx, "vt_compkey")],))
    state, method = ctx.sql("SELECT state, method FROM chameleon.verification WHERE run_id = %s", (run,))[0]
    assert state == "equal" and method.startswith("the source's key order: 2 chunks (2 equal as text"), method


def test_repair_never_writes_back_an_older_row_the_source_has_changed_since(ctx):
    """Damage on the rows the load keeps changing (vt_types 1..100, vt_strkey's L-rows,
    vt_compkey seqs 1..500): replay heals a damaged row when the source changes it, while the
    repair reads it on the source and rewrites it; whatever the interleaving, once the load
    stops and replay catches up, the destination equals the source value for value."""
    load_source(ctx)
    start(ctx)
    names = [t(ctx, n) for n in ("vt_types", "vt_strkey", "vt_compkey")]
    for s in ("UPDATE shop.vt_types SET vc = 'damaged' WHERE id BETWEEN 1 AND 100",
              "UPDATE shop.vt_strkey SET note = 'damaged' WHERE code LIKE 'L%'",
              "UPDATE shop.vt_compkey SET note = 'damaged' WHERE seq <= 500"):
        ctx.pg.execute(s)
    with Load(ctx.servers, ctx.my_schema):
        run = ctx.one("SELECT chameleon.verify_tables('src', %s, repair => true)", (names,))
        res = wait_run(ctx, run, timeout=600)
    for name in names:
        assert res[name][1] in ("repaired", "equal"), res[name]
    print("repair under the load:", {n: (r[1], r[6]) for n, r in res.items()})
    assert ctx.one("SELECT chameleon.wait_for('src', '120 seconds')") is True
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["vt_types", "vt_strkey", "vt_compkey"])
    run = ctx.one("SELECT chameleon.verify_tables('src', %s, wait => true)", (names,))
    states = dict(ctx.sql("SELECT mysql_table, state FROM chameleon.verification WHERE run_id = %s", (run,)))
    assert set(states.values()) == {"equal"}, states


def test_an_equal_schema_under_load_is_equal_every_time(ctx):
    load_source(ctx)
    start(ctx)
    assert "verification" not in ctx.one("SELECT detail FROM chameleon.show_status('src')")
    workers = set()
    with Load(ctx.servers, ctx.my_schema):
        for attempt in range(3):
            run = ctx.one("SELECT chameleon.verify_tables('src', wait => true)")
            res = wait_run(ctx, run, timeout=10)
            # verify_workers (2 by default): the leader and a helper share the run's tables
            workers.add(ctx.one("SELECT count(DISTINCT worker_pid) FROM chameleon.verification WHERE run_id = %s",
                                (run,)))
            # every replicating table: the shop fixture's and ours, the keyless one too (it
            # replicates by full row)
            assert t(ctx, "vt_plain") in res and t(ctx, "vt_nokey") in res, res.keys()
            for name, r in res.items():
                assert r[1] == "equal", f"attempt {attempt}: {name}: {r}"
                assert r[7] == r[8], r
            plain = res[t(ctx, "vt_plain")]
            print(f"attempt {attempt}: vt_plain {plain[7]} rows, {plain[11]} rows/s, at {plain[10]}")
            comp = res[t(ctx, "vt_compkey")]
            print(f"attempt {attempt}: vt_compkey {comp[7]} rows, {comp[11]} rows/s: " + ctx.one(
                "SELECT method FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                (run, t(ctx, "vt_compkey"))))
            # every chunk of an equal integer-keyed table is decided by one text comparison
            method = ctx.one("SELECT method FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                             (run, t(ctx, "vt_plain")))
            assert f"{plain[9]} of {plain[9]} chunks equal as text" in method, method
        # named tables with wait => true: the worker records the run of exactly those
        named = [t(ctx, "vt_types"), t(ctx, "vt_nokey"), t(ctx, "vt_plain")]
        run = ctx.one("SELECT chameleon.verify_tables('src', %s, wait => true)", (named,))
        rows = ctx.sql("SELECT mysql_table, state FROM chameleon.verification WHERE run_id = %s ORDER BY run_id", (run,))
        assert sorted(r[0] for r in rows) == sorted(named), rows
        assert all(s not in ("queued", "running") for _, s in rows), rows
        states = dict(rows)
        assert states[t(ctx, "vt_types")] == "equal" and states[t(ctx, "vt_plain")] == "equal", rows
        # one worker when asked for one (taken at the next run)
        ctx.one("""SELECT chameleon.alter_source('src', '{"verify_workers": 1}')""")
        run = ctx.one("SELECT chameleon.verify_tables('src', wait => true)")
        res = wait_run(ctx, run, timeout=10)
        assert all(r[1] == "equal" for r in res.values()), res
        assert ctx.one("SELECT count(DISTINCT worker_pid) FROM chameleon.verification WHERE run_id = %s", (run,)) == 1
    assert workers <= {1, 2} and 2 in workers, f"distinct workers per run: {workers}"


def test_stop_and_a_worker_gone_never_read_as_equal(ctx):
    load_source(ctx)
    start(ctx)
    with ctx.my.cursor() as cur:
        cur.execute(f"USE `{ctx.my_schema}`")
        cur.execute("INSERT INTO vt_plain SELECT id + 100000, k, c, pad FROM vt_plain")
        cur.execute("INSERT INTO vt_plain SELECT id + 300000, k, c, pad FROM vt_plain")
    assert ctx.one("SELECT chameleon.wait_for('src', '120 seconds')") is True
    run = ctx.one("SELECT chameleon.verify_tables('src', %s)", ([t(ctx, "vt_plain"), t(ctx, "vt_types")],))
    deadline = time.time() + 60
    while ctx.one("SELECT state FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                  (run, t(ctx, "vt_plain"))) != "running":
        assert time.time() < deadline
        time.sleep(0.05)
    assert ctx.one("SELECT chameleon.stop_verification(%s)", (run,)) is True
    stopped_at = ctx.one("SELECT clock_timestamp()")

    def results():
        return {r[0]: r[1:] for r in ctx.sql(
            "SELECT mysql_table, state, reason, finished FROM chameleon.verification WHERE run_id = %s", (run,))}

    # the table being compared ends failed; the other (the helper's: verify_workers 2) was
    # compared before the stop, or ends failed too
    rows = results()
    assert rows[t(ctx, "vt_plain")][:2] == ("failed", "stopped by stop_verification"), rows
    other = rows[t(ctx, "vt_types")]
    assert other[:2] == ("failed", "stopped by stop_verification") or (other[0] == "equal" and other[2] < stopped_at), rows
    # the run's workers, the helper too, end; nothing turns equal after the stop
    deadline = time.time() + 30
    while ctx.one("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_chameleon_rs verify'"):
        assert time.time() < deadline, "the verification workers did not end after stop_verification"
        time.sleep(0.1)
    assert results() == rows
    assert ctx.one("SELECT chameleon.stop_verification(%s)", (run,)) is False

    # a worker killed (as a restart would) leaves its run failed, with the reason
    run = ctx.one("SELECT chameleon.verify_tables('src', %s)", ([t(ctx, "vt_plain"), t(ctx, "vt_types")],))
    deadline = time.time() + 60
    while ctx.one("SELECT state FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                  (run, t(ctx, "vt_plain"))) != "running":
        assert time.time() < deadline
        time.sleep(0.05)
    ctx.pg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE backend_type = 'pg_chameleon_rs verify'")
    time.sleep(1)
    # (the worker's own end records the reason; the view tells the same even before); a table
    # the helper had compared whole before the signal reached it keeps its result
    rows = {r[0]: r[1:] for r in ctx.sql(
        "SELECT mysql_table, state, reason, rows_source, rows_destination FROM chameleon.verification "
        "WHERE run_id = %s", (run,))}
    assert rows[t(ctx, "vt_plain")][0] == "failed" and rows[t(ctx, "vt_plain")][1], rows
    other = rows[t(ctx, "vt_types")]
    types_rows = ctx.one("SELECT count(*) FROM shop.vt_types")
    assert (other[0] == "failed" and other[1]) or (other[0] == "equal" and other[2] == other[3] == types_rows), rows
    assert ctx.one("SELECT chameleon.verify_tables('src', %s)", ([t(ctx, "vt_types")],)) > run


@pytest.mark.parametrize("what", ["stopped source", "unknown table"])
def test_verify_refuses_what_it_cannot_compare(ctx, what):
    load_source(ctx)
    start(ctx)
    import psycopg
    with pytest.raises(psycopg.Error) as e:
        if what == "stopped source":
            ctx.one("SELECT chameleon.stop_replica('src')")
            ctx.one("SELECT chameleon.verify_tables('src')")
        else:
            ctx.one("SELECT chameleon.verify_tables('src', ARRAY['nope.nothing'])")
    assert ("start_replica" in str(e.value.diag.message_hint)) if what == "stopped source" \
        else ("nope.nothing" in str(e.value))
