"""The Debian package (`make deb`) installed as a DBA installs it: `apt-get install ./file.deb`
on this machine (its PostgreSQL in Debian's layout, PG_BIN's major), the extension created in
a private cluster that preloads it, the upgrade scripts of the package used from 0.1.0, and the
package removed again with its files. Run by `make debtest` (CHAMELEON_DEB names the file)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import PG_BIN, Postgres  # noqa: E402

DEB = os.environ.get("CHAMELEON_DEB", "")
SCRATCH = os.environ.get("CHAMELEON_DEB_SCRATCH", "/tmp/pg_chameleon_rs-deb")
PG_PORT = int(os.environ.get("CHAMELEON_DEB_PG_PORT", "25452"))
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def _run(*cmd):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}"
    return r.stdout


def _field(name):
    return _run("dpkg-deb", "-f", DEB, name).strip()


def _installed(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return "install ok installed" in r.stdout


def _cargo_version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        return re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)


@pytest.fixture
def installed_package():
    assert os.path.isfile(DEB), f"no package at CHAMELEON_DEB={DEB!r}: run `make debtest`"
    package = _field("Package")
    if _installed(package):
        _run("apt-get", "remove", "-y", "-qq", package)
    _run("apt-get", "install", "-y", "-qq", os.path.abspath(DEB))
    try:
        yield package
    finally:
        if _installed(package):  # the test removes it itself when it gets that far
            _run("apt-get", "remove", "-y", "-qq", package)


def test_the_deb_installs_with_apt_creates_the_extension_and_removes_cleanly(installed_package):
    major = subprocess.run([os.path.join(PG_BIN, "pg_config"), "--version"], capture_output=True,
                           text=True, check=True).stdout.split()[1].split(".")[0]
    version = _cargo_version()
    package = installed_package
    assert package == f"postgresql-{major}-pg-chameleon-rs"
    assert f"postgresql-{major}" in _field("Depends")
    assert _field("Version") == f"{version}-1"
    files = _run("dpkg", "-L", package).split()
    library = f"/usr/lib/postgresql/{major}/lib/pg_chameleon_rs.so"
    extdir = f"/usr/share/postgresql/{major}/extension"
    # every upgrade script of the repository, the one that leads to this version among them
    upgrades = sorted(f for f in os.listdir(os.path.join(ROOT, "sql")) if re.match(r"pg_chameleon_rs--.+--.+\.sql$", f))
    assert any(u.endswith(f"--{version}.sql") for u in upgrades), upgrades
    for f in (library, f"{extdir}/pg_chameleon_rs.control", f"{extdir}/pg_chameleon_rs--{version}.sql",
              f"{extdir}/pg_chameleon_rs--0.1.0.sql", *(f"{extdir}/{u}" for u in upgrades)):
        assert f in files, f"{f} not in the package"
        assert os.path.isfile(f)

    shutil.rmtree(SCRATCH, ignore_errors=True)
    os.makedirs(SCRATCH)
    os.chmod(SCRATCH, 0o755)
    pg = Postgres(SCRATCH, PG_PORT, shared_buffers="64MB")
    try:
        pg.start()  # preloads the package's library: the launcher starts from it
        with pg.connect() as c:
            c.execute("CREATE DATABASE fresh")
            c.execute("CREATE DATABASE upgraded")
        with pg.connect("fresh") as c:
            c.execute("CREATE EXTENSION pg_chameleon_rs")
            assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_chameleon_rs'"
                             ).fetchone()[0] == version
            assert c.execute("SELECT t_version FROM sch_chameleon.v_version").fetchone()[0] == version
            # the library answers: a source is registered and shown, its password hidden
            c.execute("SELECT chameleon.add_source('s', 'mysql://u:secret@127.0.0.1:1', '{\"a\": \"a\"}')")
            url = c.execute("SELECT mysql_url FROM chameleon.sources WHERE name = 's'").fetchone()[0]
            assert "127.0.0.1" in url and "secret" not in url
        with pg.connect("upgraded") as c:
            c.execute("CREATE EXTENSION pg_chameleon_rs VERSION '0.1.0'")
            c.execute("ALTER EXTENSION pg_chameleon_rs UPDATE")
            assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_chameleon_rs'"
                             ).fetchone()[0] == version
    finally:
        pg.stop()
        shutil.rmtree(SCRATCH, ignore_errors=True)
    _run("apt-get", "remove", "-y", "-qq", package)
    assert not _installed(package)
    assert not os.path.exists(library)
