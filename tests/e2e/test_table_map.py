"""End to end: the table map's optional metadata (binlog_row_metadata=FULL gives column names
and signedness, MINIMAL signedness only) is checked against the definition the reader decodes
rows with. A table changed on the source outside the binlog (sql_log_bin=0) is stopped with a
clear error instead of getting its values in the wrong columns; the source's other tables go
on, and sync_tables brings it back equal to the source."""
import time

import oracle

ALL = ["customers", "orders", "Order Items", "audit_log", "suppliers", "products", "misc_types"]


def wait_for(ctx, source="src", timeout="120 seconds"):
    assert ctx.one("SELECT chameleon.wait_for(%s, %s::interval)", (source, timeout)) is True


def _start(ctx):
    ctx.my_exec("CREATE TABLE people (id INT PRIMARY KEY, first_name VARCHAR(20), last_name VARCHAR(20), score INT)",
                "INSERT INTO people VALUES (1, 'Ada', 'Lovelace', 10), (2, 'Alan', 'Turing', 20)")
    ctx.add_source(options='{"replica_batch_size": 20}')
    assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("INSERT INTO people VALUES (3, 'Grace', 'Hopper', 30)")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ["people"])


def _wait_state(ctx, table, want, timeout=60):
    deadline = time.time() + timeout
    row = None
    while time.time() < deadline:
        row = ctx.sql("SELECT state, last_error FROM chameleon.tables WHERE mysql_table = %s", (f"{ctx.my_schema}.{table}",))[0]
        if row[0] == want:
            return row
        time.sleep(0.3)
    raise AssertionError(f"{table} did not become {want}: {row}")


def _others_written_and_equal(ctx):
    ctx.my_exec("INSERT INTO customers (name, email) VALUES ('after', 'after@example.com')",
                "UPDATE products SET price = price + 1")
    wait_for(ctx)
    status, error = ctx.sql("SELECT status, last_error FROM chameleon.sources WHERE name = 'src'")[0]
    assert status == "running" and error is None, (status, error)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def _synced_back(ctx, table):
    assert ctx.one("SELECT chameleon.sync_tables('src', %s)", ([f"{ctx.my_schema}.{table}"],)) == [f"{ctx.my_schema}.{table}"]
    # written while it is copied again: the reader may still know it by its old definition
    # (until the copy registers it again), but its rows up to the new consistent point are not
    # applied, so its table maps are not checked meanwhile
    for i in range(20):
        ctx.my_exec(f"INSERT INTO {table} (id, first_name, last_name, score) VALUES ({200 + i}, 'w{i}', 'x{i}', {i})")
        time.sleep(0.05)
    _wait_state(ctx, table, "replicating", timeout=120)
    ctx.my_exec(f"INSERT INTO {table} (id, first_name, last_name, score) VALUES (100, 'Katherine', 'Johnson', 4000000000)"
                if table == "people_u" else
                f"INSERT INTO {table} (id, first_name, last_name, score) VALUES (100, 'Katherine', 'Johnson', 100)",
                f"UPDATE {table} SET last_name = CONCAT(last_name, '!') WHERE id = 1")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, [table])


def test_columns_reordered_outside_the_binlog_stop_the_table_not_the_source(ctx):
    """first_name and last_name swap places with sql_log_bin=0: the table maps then name them
    in the new order. Decoded by position with the old definition, every new first name would
    land in last_name. The table is stopped with an error naming it, the position and both
    column lists; the other tables keep replicating; sync_tables makes it equal again."""
    _start(ctx)
    ctx.my_exec("SET SESSION sql_log_bin = 0",
                "ALTER TABLE people MODIFY last_name VARCHAR(20) AFTER id",
                "SET SESSION sql_log_bin = 1",
                "INSERT INTO people (id, first_name, last_name, score) VALUES (4, 'Edsger', 'Dijkstra', 40)",
                "UPDATE people SET score = score + 1 WHERE id = 1")
    state, error = _wait_state(ctx, "people", "disabled")
    assert f"table {ctx.my_schema}.people changed on the source outside what the replica saw (at mysql-bin." in error, error
    assert "the binlog names the columns (id, last_name, first_name, score)" in error, error
    assert "the replica knows (id, first_name, last_name, score)" in error, error
    assert "sync_tables" in error, error
    logged = ctx.sql("SELECT mysql_table, message FROM chameleon.errors")
    assert [(t, "changed on the source outside" in m) for t, m in logged] == [(f"{ctx.my_schema}.people", True)], logged
    # no value went into the wrong column: the replica still has what it had before the change
    assert ctx.sql("SELECT id, first_name, last_name, score FROM shop.people ORDER BY id") == [
        (1, "Ada", "Lovelace", 10), (2, "Alan", "Turing", 20), (3, "Grace", "Hopper", 30)]
    _others_written_and_equal(ctx)
    _synced_back(ctx, "people")
    # copied again, it is checked again: a column renamed outside the binlog stops it anew
    ctx.my_exec("SET SESSION sql_log_bin = 0", "ALTER TABLE people CHANGE score points INT",
                "SET SESSION sql_log_bin = 1", "UPDATE people SET points = 0 WHERE id = 2")
    state, error = _wait_state(ctx, "people", "disabled")
    assert "the binlog names the columns (id, last_name, first_name, points)" in error, error
    assert ctx.one("SELECT score FROM shop.people WHERE id = 2") == 20


def test_signedness_changed_outside_the_binlog_stops_the_table_with_minimal_metadata(ctx):
    """binlog_row_metadata=MINIMAL still gives signedness: score becomes INT UNSIGNED with
    sql_log_bin=0 and 4000000000 is written; read as the signed INT the replica knows it would
    be -294967296. The table is stopped with the column named; the rest goes on."""
    ctx.my_exec("CREATE TABLE people_u (id INT PRIMARY KEY, first_name VARCHAR(20), last_name VARCHAR(20), score INT)",
                "INSERT INTO people_u VALUES (1, 'Ada', 'Lovelace', 10)")
    ctx.my_exec("SET GLOBAL binlog_row_metadata = 'MINIMAL'")
    try:
        ctx.add_source(options='{"replica_batch_size": 20}')
        assert ctx.one("SELECT chameleon.init_replica('src', wait => true)") == "initialised"
        ctx.one("SELECT chameleon.start_replica('src')")
        ctx.my_exec("SET SESSION sql_log_bin = 0",
                    "ALTER TABLE people_u MODIFY score INT UNSIGNED",
                    "SET SESSION sql_log_bin = 1",
                    "INSERT INTO people_u VALUES (2, 'Alan', 'Turing', 4000000000)")
        state, error = _wait_state(ctx, "people_u", "disabled")
        assert 'column "score" is unsigned in the binlog but signed for the replica' in error, error
        assert ctx.sql("SELECT id, score FROM shop.people_u ORDER BY id") == [(1, 10)]
        _others_written_and_equal(ctx)
    finally:
        ctx.my_exec("SET GLOBAL binlog_row_metadata = 'FULL'")
    _synced_back(ctx, "people_u")
