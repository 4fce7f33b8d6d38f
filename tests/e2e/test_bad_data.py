"""End to end, bad data: values PostgreSQL cannot store never stop the copy and are never
changed silently. A row PostgreSQL refuses during the initial copy is set aside in
chameleon.discarded_rows with its exact bytes and PostgreSQL's reason while the other rows are
copied (on the same snapshot); zero dates follow the zero_dates option in the copy and in the
change stream alike."""
import oracle
from test_replication import ALL, init, wait_for


def test_rows_postgres_refuses_in_the_copy_are_set_aside_and_the_copy_goes_on(ctx):
    # type_override turns a text column into integer: two rows hold values that are not numbers
    ctx.my_exec("CREATE TABLE codes (id INT PRIMARY KEY, code VARCHAR(10), pad VARCHAR(60))",
                "INSERT INTO codes SELECT seq, seq, REPEAT('p', 60) FROM seq_1_to_30000",
                "UPDATE codes SET code = 'x9' WHERE id = 7",
                "UPDATE codes SET code = '1e', pad = 'tab\there' WHERE id = 29000")
    ctx.add_source(options='{"copy_workers": 1, "type_override": {"varchar(10)": {"override_to": "integer", '
                           '"override_tables": ["%s.codes"]}}}' % ctx.my_schema)
    init(ctx)
    state, rows, discarded, point = ctx.sql(
        "SELECT state, rows_copied, rows_discarded, consistent_point FROM chameleon.tables WHERE mysql_table LIKE '%.codes'")[0]
    assert (state, rows, discarded) == ("copied", 29_998, 2)
    # the same snapshot as every other table: the copy was redone on it, not on a new one
    assert {r[0] for r in ctx.sql("SELECT consistent_point FROM chameleon.tables WHERE state = 'copied'")} == {point}
    reasons = ctx.sql("""SELECT reason, convert_from(decode(row_encoded, 'base64'), 'SQL_ASCII')
                         FROM chameleon.discarded_rows ORDER BY discard_time""")
    assert len(reasons) == 2
    for (reason, raw), bad in zip(reasons, ["x9", "1e"]):
        assert reason.startswith("PostgreSQL refused the row:") and "integer" in reason and "22P02" in reason, reason
        assert bad in raw
    assert "tab\there" in reasons[1][1]
    assert ctx.one("SELECT count(*) FROM shop.codes") == 29_998
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    # the other tables are whole, and once the bad rows are gone the table equals the source
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("DELETE FROM codes WHERE id IN (7, 29000)", "UPDATE codes SET code = '5' WHERE id = 8")
    wait_for(ctx)
    oracle.assert_same_table(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, "codes")


ZERO_ROWS = ("INSERT INTO dates VALUES (1, '0000-00-00', '2024-01-01', '0000-00-00 00:00:00', '0000-00-00 00:00:00'),"
             " (2, '2024-00-10', '0000-00-00', '2024-05-00 10:00:00', '2001-02-03 04:05:06'),"
             " (3, '1000-01-01', '9999-12-31', '1000-01-01 00:00:00', '1970-01-01 00:00:01')")


def _dates(ctx, options):
    ctx.my_exec("SET SESSION sql_mode = ''",
                "CREATE TABLE dates (id INT PRIMARY KEY, d DATE NULL, dn DATE NOT NULL, dt DATETIME NULL,"
                " ts TIMESTAMP NULL DEFAULT NULL)",
                ZERO_ROWS)
    ctx.add_source(options=options)
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("SET SESSION sql_mode = ''", ZERO_ROWS.replace("(1,", "(11,").replace("(2,", "(12,").replace("(3,", "(13,"))
    wait_for(ctx)
    return ctx.sql("SELECT id, d::text, dn::text, dt::text, (ts AT TIME ZONE 'UTC')::text FROM shop.dates ORDER BY id")


def test_zero_dates_null_makes_nullable_zero_dates_null_and_sets_aside_the_rest(ctx):
    rows = _dates(ctx, '{"zero_dates": "null"}')
    # row 2 has a zero date in the NOT NULL column dn: it cannot be NULL there, so it is set aside
    assert rows == [(1, None, "2024-01-01", None, None),
                    (3, "1000-01-01", "9999-12-31", "1000-01-01 00:00:00", "1970-01-01 00:00:01"),
                    (11, None, "2024-01-01", None, None),
                    (13, "1000-01-01", "9999-12-31", "1000-01-01 00:00:00", "1970-01-01 00:00:01")]
    reasons = [r[0] for r in ctx.sql("SELECT reason FROM chameleon.discarded_rows ORDER BY discard_time")]
    assert reasons == ['column "dn": zero date 0000-00-00 has no PostgreSQL equivalent',
                       'column "dn": zero date 0000-00-00 has no PostgreSQL equivalent']


def test_zero_dates_minus_infinity_keeps_every_row(ctx):
    rows = _dates(ctx, '{"zero_dates": "-infinity"}')
    inf = "-infinity"
    assert rows == [(1, inf, "2024-01-01", inf, inf), (2, inf, inf, inf, "2001-02-03 04:05:06"),
                    (3, "1000-01-01", "9999-12-31", "1000-01-01 00:00:00", "1970-01-01 00:00:01"),
                    (11, inf, "2024-01-01", inf, inf), (12, inf, inf, inf, "2001-02-03 04:05:06"),
                    (13, "1000-01-01", "9999-12-31", "1000-01-01 00:00:00", "1970-01-01 00:00:01")]
    assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0
    assert ctx.one("SELECT jsb_options->>'zero_dates' FROM sch_chameleon.t_sources") == "-infinity"
