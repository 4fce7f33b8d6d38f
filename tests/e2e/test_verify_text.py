"""verify_tables' fast path (one text per chunk) over columns of many types: the destination
writes a column without its cast to text where its type's output function is what the cast
writes (`chunk_columns`), with the cast where it is not (CHAR(n), whose cast trims the
padding); a number, date or time bare, a string after its length (strings holding commas,
line breaks, `N`, nothing). An equal table is equal as text in every chunk (a type written
differently on each side would send its chunks row by row); one value changed in a column
of either kind is found, with its column. Date-times and times with a fraction of a second
(MySQL's text protocol writes DATETIME(6) `.500000`, PostgreSQL `.5`) are equal as text too.
A table of 40 columns (more than one `concat_ws` takes) is equal as text too."""
import time

from test_verify import t, wait_run

SCHEMA = """CREATE TABLE vtt (
    id INT PRIMARY KEY, flag BOOLEAN, c CHAR(10), vc VARCHAR(20), n INT, bi BIGINT, si SMALLINT,
    dec_ DECIMAL(12,3), dt DATE, ts DATETIME, tm TIME, e ENUM('x','y z'), bl BLOB, tx TEXT,
    ts6 DATETIME(6), tz3 TIMESTAMP(3) NULL, tm6 TIME(6))"""
FRACTIONS = ["000000", "500000", "120000", "000001", "999999", "100100"]
ROWS = 12_000  # two chunks
WIDE = "CREATE TABLE vtw (id INT PRIMARY KEY, " + ", ".join(
    f"c{j} INT" if j % 2 else f"c{j} VARCHAR(10)" for j in range(1, 40)) + ")"


def wide_row(i):
    return (i,) + tuple((None if (i + j) % 13 == 0 else (i * j if j % 2 else f"{j},{i}")) for j in range(1, 40))


def row(i):
    return (i, i % 2 == 0, f"c{i % 7}", [f"v {i}", "", "N", f"a,\n{i}", "3,a,b"][i % 5], i * 3, i * 1_000_000_007, i % 300,
            f"{i}.5", "2021-03-04", f"2022-01-02 03:04:{i % 60:02d}", "12:34:56", ["x", "y z"][i % 2],
            bytes([i % 256, 0, 10]), None if i % 11 == 0 else f"t({i}),\"q\"",
            f"2023-05-06 07:08:{i % 60:02d}.{FRACTIONS[i % 6]}", f"2024-02-03 04:05:06.{FRACTIONS[i % 6][:3]}",
            f"{i % 24:02d}:30:00.{FRACTIONS[(i + 1) % 6]}")


def verified(ctx, table):
    """One verify_tables run of `table`: its row of the verification view (`wait_run`'s) and
    its method."""
    r = wait_run(ctx, ctx.one("SELECT chameleon.verify_tables('src', %s)", ([table],)))[table]
    return r, ctx.one("SELECT method FROM chameleon.verification WHERE run_id = %s AND mysql_table = %s",
                      (r[12], table))


def test_typed_chunks_are_equal_as_text_and_a_changed_value_is_found(ctx):
    ctx.my_exec(SCHEMA)
    ctx.my_exec(WIDE)
    with ctx.my.cursor() as cur:
        cur.execute(f"USE `{ctx.my_schema}`")
        cur.executemany("INSERT INTO vtw VALUES (" + ",".join(["%s"] * 40) + ")", [wide_row(i) for i in range(1, 501)])
        for start in range(1, ROWS + 1, 3000):
            cur.executemany("INSERT INTO vtt VALUES (" + ",".join(["%s"] * 17) + ")",
                            [row(i) for i in range(start, min(start + 3000, ROWS + 1))])
    ctx.add_source()
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    assert ctx.one("SELECT chameleon.start_replica('src')") == "running"
    assert ctx.one("SELECT chameleon.wait_for('src', '120 seconds')") is True
    name = t(ctx, "vtt")

    r, method = verified(ctx, name)
    assert r[1] == "equal", r
    assert "2 of 2 chunks equal as text" in method, method
    wide = t(ctx, "vtw")
    r, method = verified(ctx, wide)
    assert r[1] == "equal", r
    assert "1 of 1 chunks equal as text" in method, method
    ctx.pg.execute("UPDATE shop.vtw SET c38 = 'x' WHERE id = 7")
    time.sleep(0.2)
    r, _ = verified(ctx, wide)
    assert r[1] == "different", r
    assert [(d["key"]["id"], d["columns"]) for d in r[5]] == [("7", ["c38"])], r[5]

    # one value in a column written natively (an integer), one in a cast one (CHAR), one in
    # a BOOLEAN (a smallint at the destination): each found, with its column
    ctx.pg.execute("UPDATE shop.vtt SET n = n + 1 WHERE id = 100")
    ctx.pg.execute("UPDATE shop.vtt SET c = 'c9' WHERE id = 11000")
    ctx.pg.execute("UPDATE shop.vtt SET flag = 1 - flag WHERE id = 11001")
    # a microsecond of a DATETIME(6), a millisecond of a TIMESTAMP(3)
    ctx.pg.execute("UPDATE shop.vtt SET ts6 = ts6 + interval '1 microsecond' WHERE id = 2")
    ctx.pg.execute("UPDATE shop.vtt SET tz3 = tz3 - interval '1 millisecond' WHERE id = 11999")
    time.sleep(0.2)
    r, _ = verified(ctx, name)
    assert r[1] == "different", r
    cols = {d["key"]["id"]: d["columns"] for d in r[5] if d["kind"] == "different"}
    assert cols == {"100": ["n"], "11000": ["c"], "11001": ["flag"], "2": ["ts6"], "11999": ["tz3"]}, r[5]
