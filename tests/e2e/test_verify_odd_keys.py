"""verify_tables on tables whose key orders by something else than its text: FLOAT, DOUBLE,
BIT, SET, ENUM (in a composite key), MariaDB's UUID (ordered by its swapped segments) and
INET6. Each is read in the source's key order in chunks (memory is a chunk, not the table),
the bound of the next chunk written as what the column orders by. Under a write load on the
same tables: an equal run says equal; then a changed value, a deleted row, an extra row and a
changed key on each are reported exactly, and nothing else; repair rewrites them by key and a
last run says equal, the destination equal to the source value for value."""
import random
import time

import oracle
import test_verify
from test_verify import wait_run

N = 12_000  # more than one chunk of 10,000 rows

# per table: its DDL, the INSERT ... SELECT of its N rows (v = seq, unique), the key of the
# damage's extra row, the key a row's key is changed to, and a key for the load's n-th row
TABLES = {
    "ok_float": ("CREATE TABLE ok_float (k FLOAT NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
                 "(CAST(seq AS SIGNED) - 6000) / 7e0", "0.00001", "-123456.5", "{n} / 7e0 + 200000"),
    "ok_double": ("CREATE TABLE ok_double (k DOUBLE NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
                  "(CAST(seq AS SIGNED) - 6000) / 3e0 + seq * 1e-9", "1e-7", "-99999.25", "{n} / 3e0 + 1e6"),
    "ok_bit": ("CREATE TABLE ok_bit (k BIT(16) NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
               "seq * 5", "7", "65000", "60001 + {n}"),
    "ok_set": ("CREATE TABLE ok_set (k SET(" + ",".join(f"'s{i}'" for i in range(16))
               + ") NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
               "seq", "65535", "64000", "20000 + {n}"),
    "ok_enum": ("CREATE TABLE ok_enum (grp INT NOT NULL, k ENUM('zeta','alpha','Mid','beta') NOT NULL, "
                "v INT NOT NULL, note VARCHAR(20), PRIMARY KEY (grp, k))",
                "seq DIV 4, seq % 4 + 1", "3001, 'Mid'", "99999, 'alpha'", "100000 + {n}, 'Mid'"),
    "ok_uuid": ("CREATE TABLE ok_uuid (k UUID NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
                "UUID()", "'00000000-0000-0000-0000-000000000000'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "UUID()"),
    "ok_inet": ("CREATE TABLE ok_inet (k INET6 NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
                "IF(seq % 3 = 0, CONCAT('::ffff:10.0.', seq DIV 256, '.', seq % 256), CONCAT('2001:db8::', HEX(seq)))",
                "'::2'", "'2001:db8:ffff::1'", "CONCAT('2001:db8:1::', HEX({n}))"),
}
KEYS = {"ok_enum": ["grp", "k"]}


def load_source(ctx):
    stmts = []
    for name, (ddl, key, _, _, _) in TABLES.items():
        stmts.append(ddl)
        stmts.append(f"INSERT INTO {name} SELECT {key}, seq, CONCAT('n', seq) FROM seq_1_to_{N}")
    ctx.my_exec(*stmts)


class Load(test_verify.Load):
    """Changes `note` of rows with v in 1..1000 and inserts rows of its own (v from 1,000,000),
    deleting some of them again, on every table; never a damaged row. Its rows' keys go on
    from one load to the next. Started, stopped and checked as test_verify's load."""

    next_n = 0

    def __init__(self, ctx):
        super().__init__(ctx.servers, ctx.my_schema)
        self.n = Load.next_n

    def run(self):
        rng = random.Random(11)
        try:
            with self.my.cursor() as cur:
                while not self.stop.is_set() and self.n < Load.next_n + 1500:
                    cur.execute("START TRANSACTION")
                    for name, (_, _, _, _, load_key) in TABLES.items():
                        cur.execute(f"UPDATE {name} SET note = %s WHERE v = %s",
                                    (f"l{rng.randint(0, 999)}", rng.randint(1, 1000)))
                        key = load_key.format(n=self.n)
                        cur.execute(f"INSERT INTO {name} VALUES ({key}, %s, 'load')", (1_000_000 + self.n,))
                        if rng.random() < 0.3 and self.n > 5:
                            cur.execute(f"DELETE FROM {name} WHERE v = %s", (1_000_000 + self.n - rng.randint(1, 5),))
                    self.n += 1
                    cur.execute("COMMIT")
                    self.done += 1
                    time.sleep(0.003)
        except Exception as e:  # reported by __exit__
            self.error = e
        finally:
            Load.next_n = self.n + 1


def key_text(ctx, name, v):
    cols = KEYS.get(name, ["k"])
    return ctx.sql(f"SELECT {', '.join(c + '::text' for c in cols)} FROM shop.{name} WHERE v = %s", (v,))[0]


def damage(ctx):
    """On every table: v 3000 changed, v 9000 deleted, an extra row (v 777777), v 6500's key
    changed; returns each table's expected keys by kind, as the destination writes them."""
    expected = {}
    for name, (_, _, extra, moved, _) in TABLES.items():
        cols = KEYS.get(name, ["k"])
        before = {v: key_text(ctx, name, v) for v in (3000, 9000, 6500)}
        ctx.pg.execute(f"UPDATE shop.{name} SET note = note || ' ' WHERE v = 3000")
        ctx.pg.execute(f"DELETE FROM shop.{name} WHERE v = 9000")
        ctx.pg.execute(f"INSERT INTO shop.{name} ({', '.join(cols)}, v, note) "
                       f"VALUES ({pg_values(name, extra)}, 777777, 'extra')")
        target = f"({', '.join(cols)}) = ({pg_values(name, moved)})" if len(cols) > 1 else f"k = {pg_values(name, moved)}"
        ctx.pg.execute(f"UPDATE shop.{name} SET {target} WHERE v = 6500")
        expected[name] = {
            "different": [before[3000]],
            "missing": sorted([before[9000], before[6500]]),
            "extra": sorted([key_text(ctx, name, 777777), key_text(ctx, name, 6500)]),
        }
    return expected


def pg_values(name, mysql_values):
    """A key written for MariaDB, as PostgreSQL values of the destination's types."""
    if name == "ok_bit":
        return f"({mysql_values})::int::bit(16)::varbit"
    if name == "ok_set":
        mask = int(mysql_values)
        return "'" + ",".join(f"s{i}" for i in range(16) if mask >> i & 1) + "'"
    if name in ("ok_float", "ok_double"):
        return f"{mysql_values}::float8"
    if name == "ok_enum":
        grp, label = mysql_values.split(", ")
        return f"{grp}, {label}"
    return mysql_values


def reported(res, name):
    cols = KEYS.get(name, ["k"])
    rows = res[name][5]
    by = lambda kind: sorted(tuple(r["key"][c] for c in cols) for r in rows if r["kind"] == kind)
    return {kind: by(kind) for kind in ("different", "missing", "extra")}, \
        [r["columns"] for r in rows if r["kind"] == "different"]


def test_keys_ordered_by_what_they_hold_are_verified_in_chunks_and_repaired(ctx):
    load_source(ctx)
    ctx.start_source()
    ctx.wait_for()
    names = [f"{ctx.my_schema}.{n}" for n in TABLES]
    with Load(ctx):
        run = ctx.one("SELECT chameleon.verify_tables('src', %s)", (names,))
        res = wait_run(ctx, run)
    for n in names:
        assert res[n][1] == "equal", res[n]
        method = ctx.one("SELECT method FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s", (run, n))
        assert method.startswith("the source's key order: 2 chunks"), (n, method)

    expected = damage(ctx)
    with Load(ctx):
        run = ctx.one("SELECT chameleon.verify_tables('src', %s)", (names,))
        res = wait_run(ctx, run)
    res = {n.split(".", 1)[1]: r for n, r in res.items()}
    for name in TABLES:
        assert res[name][1] == "different", res[name]
        got, columns = reported(res, name)
        want = {kind: sorted(tuple(k) for k in keys) for kind, keys in expected[name].items()}
        assert got == want, f"{name}: reported {got}, damaged {want}"
        assert columns == [["note"]], (name, columns)
        assert res[name][2:5] == (2, 2, 1), res[name]

    with Load(ctx):
        run = ctx.one("SELECT chameleon.verify_tables('src', %s, repair => true)", (names,))
        res = wait_run(ctx, run, timeout=600)
    reasons = dict(ctx.sql("SELECT mysql_table, reason FROM chameleon.verification WHERE run_id = %s", (run,)))
    for n in names:
        assert res[n][1] == "repaired", res[n]
        assert "rewritten by key" in reasons[n], reasons[n]

    ctx.wait_for()
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, list(TABLES))
    run = ctx.one("SELECT chameleon.verify_tables('src', %s, wait => true)", (names,))
    states = dict(ctx.sql("SELECT mysql_table, state FROM chameleon.verification WHERE run_id = %s", (run,)))
    assert set(states.values()) == {"equal"}, states
