"""End to end, credentials kept out of sight: the password given in a file of the PostgreSQL
server (option password_file, permissions checked as libpq checks .pgpass) never appears in
SQL text, so not in pg_stat_activity nor in a statement log; a password that does appear in a
URL is never echoed by an error, a catalogue row, a view or a log line; only superusers and
members of pg_read_server_files may name a server file; chameleon.discarded_rows and the
verification's differing_rows (row contents) are not readable by every pg_monitor member."""
import json
import os
import shutil
import time

import psycopg
import pytest

import oracle
from test_replication import ALL, init, wait_for

FILE_USER, FILE_PASSWORD = "pwfile", "Pw-file-canary-81c"
WRONG_PASSWORD = "Wrong-canary-pw-19a"


def pw_file(servers, name, text, mode=0o600):
    path = os.path.join(servers.scratch, name)
    with open(path, "w") as f:
        f.write(text)
    shutil.chown(path, "postgres", "postgres")
    os.chmod(path, mode)
    return path


def server_log(servers):
    with open(os.path.join(servers.postgres.dir, "postgres.log"), errors="replace") as f:
        return f.read()


def error_text(e):
    d = e.value.diag
    return f"{d.message_primary} DETAIL: {d.message_detail} HINT: {d.message_hint}"


def test_password_file_keeps_the_password_out_of_sql(ctx, servers):
    with ctx.my.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{FILE_USER}'@'%'")
        cur.execute(f"CREATE USER '{FILE_USER}'@'%' IDENTIFIED BY '{FILE_PASSWORD}'")
        cur.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD ON *.* TO '{FILE_USER}'@'%'")
    path = pw_file(servers, "chameleon.pw", FILE_PASSWORD + "\n")
    url = f"mysql://{FILE_USER}@127.0.0.1:{servers.mariadb.port}"
    # every statement of this session is logged: the password must not be in any
    ctx.pg.execute("SET log_statement = 'all'")
    ctx.add_source(url=url, options=json.dumps({"password_file": path}))
    init(ctx)
    ctx.one("SELECT chameleon.start_replica('src')")
    ctx.my_exec("INSERT INTO customers (name, email) VALUES ('from a file', 'pw@example.com')",
                "UPDATE orders SET status = 'paid'")
    wait_for(ctx)
    oracle.assert_same_schema(ctx.my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    ctx.one("SELECT chameleon.stop_replica('src')")
    ctx.pg.execute("RESET log_statement")

    # refused: a file the group may read, a password both in the URL and in a file
    os.chmod(path, 0o640)
    with pytest.raises(psycopg.Error) as e:
        ctx.pg.execute("SELECT chameleon.alter_source('src', %s)", (json.dumps({"password_file": path}),))
    assert "group or world access" in error_text(e) and "chmod 600" in error_text(e), error_text(e)
    # the workers read the file when they start: the read worker stops, naming it
    ctx.one("SELECT chameleon.start_replica('src')")
    deadline = time.time() + 30
    while ctx.one("SELECT status FROM chameleon.sources WHERE name = 'src'") != "error":
        assert time.time() < deadline, ctx.sql("SELECT status, last_error FROM chameleon.sources")
        time.sleep(0.3)
    last = ctx.one("SELECT last_error FROM chameleon.sources WHERE name = 'src'")
    assert path in last and "group or world access" in last, last
    os.chmod(path, 0o600)
    with pytest.raises(psycopg.Error) as e:
        ctx.pg.execute("SELECT chameleon.add_source('both', %s, '{\"a\": \"b\"}', %s)",
                       (f"mysql://{FILE_USER}:in-url-too@127.0.0.1:{servers.mariadb.port}",
                        json.dumps({"password_file": path})))
    assert "give the password one way" in error_text(e) and "in-url-too" not in error_text(e)
    assert FILE_PASSWORD not in server_log(servers)
    assert "password_file" in server_log(servers)   # the statements were logged


def test_only_file_readers_may_name_a_server_file(ctx, servers):
    path = pw_file(servers, "op.pw", "x\n")
    op = "chameleon_test_op"
    ctx.pg.execute(f"DROP ROLE IF EXISTS {op}")
    ctx.pg.execute(f"CREATE ROLE {op}")
    try:
        for grant in [f"GRANT USAGE ON SCHEMA chameleon, sch_chameleon TO {op}",
                      f"GRANT ALL ON ALL TABLES IN SCHEMA sch_chameleon TO {op}",
                      f"GRANT ALL ON ALL SEQUENCES IN SCHEMA sch_chameleon TO {op}",
                      f"GRANT EXECUTE ON FUNCTION chameleon.add_source(text, text, jsonb, jsonb) TO {op}"]:
            ctx.pg.execute(grant)
        ctx.pg.execute(f"SET ROLE {op}")
        for key, value in [("password_file", path), ("ssl_ca", path)]:
            opts = {key: value, **({"ssl_mode": "verify_ca"} if key == "ssl_ca" else {})}
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="names a file of the server"):
                ctx.pg.execute("SELECT chameleon.add_source('op', %s, '{\"a\": \"b\"}', %s)",
                               (f"mysql://u@127.0.0.1:{servers.mariadb.port}", json.dumps(opts)))
        ctx.pg.execute("RESET ROLE")
        ctx.pg.execute(f"GRANT pg_read_server_files TO {op}")
        ctx.pg.execute(f"SET ROLE {op}")
        ctx.pg.execute("SELECT chameleon.add_source('op', %s, '{\"a\": \"b\"}', %s)",
                       (f"mysql://u@127.0.0.1:{servers.mariadb.port}", json.dumps({"password_file": path})))
    finally:
        ctx.pg.execute("RESET ROLE")
        ctx.pg.execute("SELECT chameleon.drop_source(name) FROM chameleon.sources WHERE name = 'op'")
        ctx.pg.execute(f"DROP OWNED BY {op}")
        ctx.pg.execute(f"DROP ROLE {op}")


def no_canary_in_the_catalogue(ctx, canary):
    """Every row of every catalogue table (but the URL the workers connect with) and of every
    view, as text."""
    tables = [r[0] for r in ctx.sql(
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables"
        " WHERE schemaname IN ('sch_chameleon', 'chameleon')")]
    views = [r[0] for r in ctx.sql(
        "SELECT format('%I.%I', schemaname, viewname) FROM pg_views WHERE schemaname = 'chameleon'")]
    for rel in tables + views:
        cols = [r[0] for r in ctx.sql(
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped AND attname <> 't_mysql_url'", (rel,))]
        hits = ctx.one(f"SELECT count(*) FROM {rel} WHERE concat_ws(' ', {', '.join(cols)}) LIKE %s",
                       (f"%{canary}%",))
        assert hits == 0, rel


def test_password_never_in_errors_views_or_log(ctx, servers):
    """A wrong password in the URL: init_replica's error, the read worker's reconnect errors
    (logged and recorded), the catalogue and the log never show it."""
    ctx.add_source()
    init(ctx)
    ctx.pg.execute("SELECT chameleon.add_source('bad', %s, '{\"nothing\": \"here\"}')",
                   (servers.mariadb.url(password=WRONG_PASSWORD),))
    ctx.sources.append("bad")
    with pytest.raises(psycopg.Error, match="Access denied") as e:
        ctx.one("SELECT chameleon.init_replica('bad', wait => true)")
    assert WRONG_PASSWORD not in error_text(e)
    # the read worker of a source pointed at the same server with a wrong password
    ctx.pg.execute("SELECT chameleon.alter_source('src', mysql_url => %s)", (servers.mariadb.url(password=WRONG_PASSWORD),))
    ctx.one("SELECT chameleon.start_replica('src')")
    deadline = time.time() + 30
    while "Access denied" not in (ctx.one("SELECT last_error FROM chameleon.sources WHERE name = 'src'") or ""):
        assert time.time() < deadline, "the reader recorded no connection error"
        time.sleep(0.5)
    ctx.one("SELECT chameleon.stop_replica('src')")
    last = ctx.one("SELECT last_error FROM chameleon.sources WHERE name = 'src'")
    assert "mysql://chameleon:***@" in last and WRONG_PASSWORD not in last, last
    no_canary_in_the_catalogue(ctx, WRONG_PASSWORD)
    log = server_log(servers)
    assert "Access denied" in log
    assert WRONG_PASSWORD not in log


def test_row_contents_are_for_operators_not_every_monitor(ctx):
    """discarded_rows, and the verification's sample of differing rows (whole rows of a table
    without a key): refused to a pg_monitor member, who still reads the verification's states
    and counts; readable by a role granted SELECT."""
    mon, op = "chameleon_test_monitor", "chameleon_test_reader"
    for r in (mon, op):
        ctx.pg.execute(f"DROP ROLE IF EXISTS {r}")
    ctx.pg.execute(f"CREATE ROLE {mon} IN ROLE pg_monitor")
    ctx.pg.execute(f"CREATE ROLE {op}")
    try:
        ctx.pg.execute(f"GRANT USAGE ON SCHEMA chameleon TO {op}")
        ctx.pg.execute(f"GRANT SELECT ON chameleon.discarded_rows, chameleon.verification TO {op}")
        ctx.pg.execute(f"SET ROLE {mon}")
        assert ctx.one("SELECT count(*) FROM chameleon.sources") == 0
        ctx.sql("SELECT * FROM chameleon.show_status()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ctx.one("SELECT count(*) FROM chameleon.discarded_rows")
        assert ctx.sql("SELECT run_id, state, missing, extra, different, reason FROM chameleon.verification") == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ctx.sql("SELECT differing_rows FROM chameleon.verification")
        ctx.pg.execute("RESET ROLE")
        ctx.pg.execute(f"SET ROLE {op}")
        assert ctx.one("SELECT count(*) FROM chameleon.discarded_rows") == 0
        assert ctx.sql("SELECT differing_rows FROM chameleon.verification") == []
    finally:
        ctx.pg.execute("RESET ROLE")
        for r in (mon, op):
            ctx.pg.execute(f"DROP OWNED BY {r}")
            ctx.pg.execute(f"DROP ROLE {r}")
