#!/usr/bin/env bash
# Builds the previous release of the extension from its commit, for the upgrade test
# (tests/e2e/test_upgrade.py): the library and its install script go to .cache/prev/<version>/.
# Idempotent: nothing is rebuilt when that version is already there.
set -euo pipefail
commit="$1"
version="$2"
pg_config="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.cache/prev/$version"
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
src="$root/.cache/prev/src-$version"
rm -rf "$src"
mkdir -p "$src" "$out"
git -C "$root" archive "$commit" | tar -x -C "$src"
echo "==> building release $version ($commit) in $src"
(cd "$src" && CARGO_TARGET_DIR="$root/.cache/prev/target" cargo pgrx package --pg-config "$pg_config")
tree="$root/.cache/prev/target/release/pg_chameleon_rs-pg15"
cp "$tree$("$pg_config" --pkglibdir)/pg_chameleon_rs.so" "$out/pg_chameleon_rs.so.tmp"
cp "$tree$("$pg_config" --sharedir)/extension/pg_chameleon_rs--$version.sql" "$out/"
mv "$out/pg_chameleon_rs.so.tmp" "$out/pg_chameleon_rs.so"
rm -rf "$src"
echo "==> previous release $version in $out"
