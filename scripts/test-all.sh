#!/usr/bin/env bash
# Every PostgreSQL major, as CI runs them (.ci/run = `make test` = `make test-all`):
#   15 (Debian 12's): `make test PG=15`, all tiers, and the Debian package installed with apt-get
#   (both of the debug build);
#   14, 16, 17, 18 (scripts/pg-versions): the in-backend tests (`make pgtest PG=NN`) and the
#   end-to-end smoke set (`make smoke PG=NN`), on the newest with the upgrade from the previous
#   release too. Each major's result comes from its own build (the pgNN feature); the cargo
#   target dir is shared, so the dependencies that do not depend on PostgreSQL build once.
# Prints the time per major. MAJORS="17 18" runs only those (15 included only if named).
set -euo pipefail
cd "$(dirname "$0")/.."
# 15 (the full run) first, then the other majors newest first: what changes most between
# majors fails soonest
majors="${MAJORS:-15 $(awk '$1 ~ /^[0-9]+$/ && $1 != 15 { print $1 }' scripts/pg-versions | sort -rn | tr '\n' ' ')}"
newest=$(awk '$1 ~ /^[0-9]+$/ { print $1 }' scripts/pg-versions | sort -n | tail -1)
summary=()
total_start=$(date +%s)
# the e2e servers of the other majors use their own ports and scratch dirs, so a leftover of
# one major never meets another's
for major in $majors; do
  start=$(date +%s)
  echo "==================== PostgreSQL $major ===================="
  if [ "$major" = 15 ]; then
    # the debug build, as on the other majors: the release build alone cost 4 to 11 minutes of
    # the run, and the debug one's dependencies serve the in-backend tests' build too (the
    # benchmarks, `make bench`, are the release build's)
    make debtest PG=15 BUILD=debug
    make test PG=15 BUILD=debug
  else
    export CHAMELEON_TEST_PG_PORT=$((25100 + major)) CHAMELEON_TEST_MYSQL_PORT=$((23200 + 2 * major))
    export CHAMELEON_TEST_SCRATCH=/tmp/pg_chameleon_rs-e2e-pg$major
    make pgtest PG="$major"
    # debug build: the dependencies pgtest just built serve it too (a release build per major
    # would cost about as much again); 15's full run is the release build
    make smoke PG="$major" BUILD=debug SMOKE_UPGRADE=$([ "$major" = "$newest" ] && echo 1 || true)
    unset CHAMELEON_TEST_PG_PORT CHAMELEON_TEST_MYSQL_PORT CHAMELEON_TEST_SCRATCH
  fi
  secs=$(( $(date +%s) - start ))
  summary+=("PostgreSQL $major: passed in $((secs / 60)) min $((secs % 60)) s")
done
echo "==================== summary ===================="
printf '%s\n' "${summary[@]}"
secs=$(( $(date +%s) - total_start ))
echo "all majors ($majors): $((secs / 60)) min $((secs % 60)) s"
