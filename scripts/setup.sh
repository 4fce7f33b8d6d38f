#!/usr/bin/env bash
# Idempotent machine setup for building and testing pg_chameleon_rs on Debian 12, as root:
# Debian packages, the pinned cargo-pgrx, `cargo pgrx init` against the system PostgreSQL 15,
# and a Python virtualenv for the end-to-end tests and the demo. Safe to run again: each step
# is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

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

if [ ! -x "$VENV/bin/pytest" ] || ! "$VENV/bin/python" -c 'import psycopg, pymysql' 2>/dev/null; then
  echo "==> python virtualenv $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q 'pytest>=7' 'psycopg[binary]>=3.1' 'PyMySQL>=1.1'
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
echo "==> setup done"
