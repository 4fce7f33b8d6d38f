#!/usr/bin/env bash
# Packages the extension for a host without Rust, for one PostgreSQL major (PG_CONFIG's), in the
# layout of Debian's and Ubuntu's PostgreSQL packages (PGDG's too):
#   usr/lib/postgresql/NN/lib/pg_chameleon_rs.so
#   usr/share/postgresql/NN/extension/pg_chameleon_rs.control, pg_chameleon_rs--*.sql
# (the install script of this version, the upgrade scripts and 0.1.0's install script).
#
#   scripts/package.sh tarball   -> TARGET_DIR/pg_chameleon_rs-VERSION-pgNN.tar.gz
#   scripts/package.sh deb       -> TARGET_DIR/postgresql-NN-pg-chameleon-rs_VERSION-1_amd64.deb
#                                   (depends on postgresql-NN, as Debian's extension packages do)
set -euo pipefail
mode="${1:-tarball}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
pg_config="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
target="${TARGET_DIR:-${CARGO_TARGET_DIR:-target}}"
major=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
version=$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -1)

# BUILD=debug: the debug build, for the package test in the suite (scripts/test-all.sh), which
# checks the package's layout and install, not the build's speed; a package for a host is the
# release build
profile=release
if [ "${BUILD:-release}" = debug ]; then profile=debug; fi
echo "==> cargo pgrx package ($profile) for PostgreSQL $major ($pg_config)"
cargo pgrx package $([ "$profile" = debug ] && echo --debug) --pg-config "$pg_config"
built="$target/$profile/pg_chameleon_rs-pg$major"
so="$built$("$pg_config" --pkglibdir)/pg_chameleon_rs.so"
ext="$built$("$pg_config" --sharedir)/extension"

stage="$target/$profile/pg_chameleon_rs-$version-pg$major-$mode"
rm -rf "$stage"
libdir="$stage/usr/lib/postgresql/$major/lib"
extdir="$stage/usr/share/postgresql/$major/extension"
install -d -m 755 "$libdir" "$extdir"
install -m 644 "$so" "$libdir/"
# the debug build's debuginfo (five times the library) is of no use to the package test
if [ "$profile" = debug ]; then strip --strip-debug "$libdir/pg_chameleon_rs.so"; fi
install -m 644 "$ext/pg_chameleon_rs.control" "$ext/pg_chameleon_rs--$version.sql" \
    sql/pg_chameleon_rs--*--*.sql sql/versions/*.sql "$extdir/"

case "$mode" in
tarball)
    out="$target/pg_chameleon_rs-$version-pg$major.tar.gz"
    tar -C "$stage" --owner=0 --group=0 -czf "$out" usr
    ;;
deb)
    # the newest glibc symbol version the library needs
    glibc=$(objdump -T "$libdir/pg_chameleon_rs.so" | grep -oE 'GLIBC_[0-9.]+' | sed 's/GLIBC_//' \
        | sort -V | tail -1)
    name="postgresql-$major-pg-chameleon-rs"
    install -d -m 755 "$stage/DEBIAN"
    cat > "$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version-1
Architecture: amd64
Maintainer: pg_chameleon_rs developers <pg_chameleon_rs@localhost>
Depends: postgresql-$major, libc6 (>= $glibc)
Section: database
Priority: optional
Installed-Size: $(du -sk "$stage/usr" | cut -f1)
Description: replicates MySQL and MariaDB into PostgreSQL $major (pg_chameleon_rs extension)
 pg_chameleon_rs copies MySQL and MariaDB databases into PostgreSQL and follows their binlog
 from inside PostgreSQL: background workers driven from SQL. After installing this package:
 CREATE EXTENSION pg_chameleon_rs; (as a superuser). Upgrade scripts from 0.1.0 included.
CONTROL
    out="$target/${name}_$version-1_amd64.deb"
    dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out" >/dev/null
    ;;
*)
    echo "usage: $0 tarball|deb" >&2
    exit 2
    ;;
esac
echo "==> $out"
