"""Fixtures: one private MariaDB + PostgreSQL pair for the session (stopped at the end, also
on failure), and per test a fresh PostgreSQL database with the extension and a fresh MySQL
schema loaded from tests/fixtures/shop.sql."""
import os
import re
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import LAUNCHER_DB, Servers  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
# Under pytest-xdist (`make e2e` runs two workers) each worker has its own pair of servers:
# worker N's ports are the base + 30 N for MySQL (the extra servers of some tests are the
# session MariaDB's port + 1 to + 21) and + N for PostgreSQL, its scratch dir the base + -gwN.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_N = int(WORKER[2:]) if WORKER.startswith("gw") and WORKER[2:].isdigit() else 0
SCRATCH = os.environ.get("CHAMELEON_TEST_SCRATCH", "/tmp/pg_chameleon_rs-e2e") + (f"-{WORKER}" if WORKER else "")
MYSQL_PORT = int(os.environ.get("CHAMELEON_TEST_MYSQL_PORT", "23316")) + 30 * _N
PG_PORT = int(os.environ.get("CHAMELEON_TEST_PG_PORT", "25442")) + _N


@pytest.fixture(scope="session")
def servers(request):
    s = Servers(SCRATCH, MYSQL_PORT, PG_PORT).start()
    try:
        yield s
    finally:
        s.stop()
        # the servers' data (several GB after the whole set) goes with a passing run; a failing
        # run keeps it for the post-mortem, as does CHAMELEON_TEST_KEEP=1
        if request.session.testsfailed == 0 and not os.environ.get("CHAMELEON_TEST_KEEP"):
            shutil.rmtree(SCRATCH, ignore_errors=True)
        else:
            print(f"\nthe servers' data is kept in {SCRATCH}")


def load_sql(my, schema, fixture, fresh=True):
    """Runs a fixture in `schema`: a fresh one, or next to what is there."""
    with open(os.path.join(FIXTURES, fixture)) as f:
        text = f.read()
    text = re.sub(r"^--.*$", "", text, flags=re.M)
    with my.cursor() as cur:
        if fresh:
            cur.execute(f"DROP DATABASE IF EXISTS `{schema}`")
            cur.execute(f"CREATE DATABASE `{schema}`")
        cur.execute(f"USE `{schema}`")
        for stmt in [s.strip() for s in text.split(";\n") if s.strip()]:
            cur.execute(stmt)


class Ctx:
    def __init__(self, servers, name, db=None):
        self.servers = servers
        self.my_schema = f"shop_{name}"[:60]
        self.pg_schema = "shop"
        self.db = servers.postgres.create_database(db or f"t_{name}"[:60])
        self.my = servers.mariadb.root()
        self.pg = servers.postgres.connect(self.db)
        self.sources = []

    def add_source(self, name="src", options="{}", url=None):
        import json
        self.pg.execute(
            "SELECT chameleon.add_source(%s, %s, %s, %s)",
            (name, url or self.servers.mariadb.url(), json.dumps({self.my_schema: self.pg_schema}), options))
        self.sources.append(name)

    def start_source(self, name="src", options="{}"):
        """add_source, init_replica (waited for) and start_replica; returns start_replica's word."""
        self.add_source(name=name, options=options)
        assert self.one("SELECT chameleon.init_replica(%s, wait => true)", (name,)) == "initialised"
        return self.one("SELECT chameleon.start_replica(%s)", (name,))

    def wait_for(self, timeout="120 seconds", name="src"):
        assert self.one("SELECT chameleon.wait_for(%s, %s::interval)", (name, timeout)) is True

    def wait_status(self, wanted, timeout=60, name="src"):
        """Polls the source's status until it is `wanted` (or `timeout` s); returns (status, last_error)."""
        import time
        deadline = time.time() + timeout
        q = "SELECT status, last_error FROM chameleon.sources WHERE name = %s"
        while self.sql(q, (name,))[0][0] != wanted and time.time() < deadline:
            time.sleep(0.2)
        return self.sql(q, (name,))[0]

    def sql(self, q, params=None):
        return self.pg.execute(q, params).fetchall()

    def one(self, q, params=None):
        return self.pg.execute(q, params).fetchone()[0]

    def my_exec(self, *stmts):
        with self.my.cursor() as cur:
            cur.execute(f"USE `{self.my_schema}`")
            for s in stmts:
                cur.execute(s)

    def close(self):
        for s in self.sources:
            try:
                self.pg.execute("SELECT chameleon.stop_replica(%s)", (s,))
            except Exception:
                pass
        self.pg.close()
        self.my.close()


@pytest.fixture
def ctx(servers, request):
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())
    # tests marked launcher_db run in the database the launcher watches
    c = Ctx(servers, name, LAUNCHER_DB if request.node.get_closest_marker("launcher_db") else None)
    load_sql(c.my, c.my_schema, "shop.sql")
    try:
        yield c
    except Exception:
        raise
    finally:
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            print("---- PostgreSQL log tail ----\n" + servers.postgres.log_tail())
        c.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "launcher_db: run in the database watched by the launcher")
    config.addinivalue_line("markers", "smoke: the end-to-end smoke set run on every PostgreSQL major (make smoke)")
    config.addinivalue_line("markers", "upgrade: the upgrade from the previous release (make smoke SMOKE_UPGRADE=1)")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
