#!/usr/bin/env bash
# Builds the previous release of the extension from its commit, for the upgrade test
# (tests/e2e/test_upgrade.py): the library and its install script go to OUT (default
# .cache/prev/<version>), built against PG_CONFIG (default Debian's PostgreSQL 15).
# Idempotent: nothing is rebuilt when that version is already there.
#
#   scripts/build_prev.sh COMMIT VERSION [OUT]
#
# The release's Cargo.toml may know fewer PostgreSQL majors than this one (0.5.0 has only the
# pg15 feature): the exported tree gets the pgNN feature of PG_CONFIG's major added, nothing
# else; the release's code is built as it was.
set -euo pipefail
commit="$1"
version="$2"
pg_config="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${3:-$root/.cache/prev/$version}"
major=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
if [ -f "$out/pg_chameleon_rs.so" ] && [ -f "$out/pg_chameleon_rs--$version.sql" ]; then
    echo "==> previous release $version already built in $out"
    exit 0
fi
if ! git -C "$root" cat-file -e "$commit^{commit}" 2>/dev/null \
        && [ "$(git -C "$root" rev-parse --is-shallow-repository 2>/dev/null)" = "true" ]; then
    echo "==> shallow clone: fetching the history for release $version"
    git -C "$root" fetch --quiet --unshallow || true
fi
if ! git -C "$root" cat-file -e "$commit^{commit}" 2>/dev/null; then
    echo "error: commit $commit (release $version) is not in this clone: the upgrade test needs the history" >&2
    exit 1
fi
src="$root/.cache/prev/src-$version-pg$major"
rm -rf "$src"
mkdir -p "$src" "$out"
git -C "$root" archive "$commit" | tar -x -C "$src"
if ! grep -qE "^pg$major = " "$src/Cargo.toml"; then
    echo "==> release $version has no pg$major feature: adding it to the exported Cargo.toml"
    sed -i -E "s/^(pg15 = .*)$/\1\npg$major = [\"pgrx\/pg$major\", \"pgrx-tests\/pg$major\"]/" "$src/Cargo.toml"
    grep -qE "^pg$major = " "$src/Cargo.toml"
fi
echo "==> building release $version ($commit) for PostgreSQL $major in $src"
target="$root/.cache/prev/target"
# a debug build: the upgrade test asks what the old catalogue and library do, not how fast, and
# a debug build takes less than half the time of a release one on the CI machine
(cd "$src" && CARGO_TARGET_DIR="$target" cargo pgrx package --debug --pg-config "$pg_config")
tree="$target/debug/pg_chameleon_rs-pg$major"
cp "$tree$("$pg_config" --pkglibdir)/pg_chameleon_rs.so" "$out/pg_chameleon_rs.so.tmp"
cp "$tree$("$pg_config" --sharedir)/extension/pg_chameleon_rs--$version.sql" "$out/"
mv "$out/pg_chameleon_rs.so.tmp" "$out/pg_chameleon_rs.so"
rm -rf "$src"
echo "==> previous release $version in $out"
