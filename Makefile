# pg_chameleon_rs: the two commands are `make demo` and `make test` (see README.md).
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGRX_TEST_DATA ?= /tmp/pg_chameleon_rs-pgrx-test
VENV = .cache/venv

.PHONY: all setup build install package prev lint unit pgtest e2e test demo bench clean

# The previous release, built from its commit, for the upgrade test (tests/e2e/test_upgrade.py).
PREV_VERSION = 0.5.0
PREV_COMMIT = 820ea55abc2bf2826f21f632ae51e2ffaba61260

all: build

setup:
	bash scripts/setup.sh

build: setup
	cargo build --release

install: setup
	cargo pgrx install --release --pg-config $(PG_CONFIG)
	install -m 644 sql/pg_chameleon_rs--*--*.sql sql/versions/*.sql $$($(PG_CONFIG) --sharedir)/extension/

# An installable tree for another PostgreSQL 15 host (paths as on that host, from /), with
# the upgrade scripts, and the same as a tarball.
VERSION = $(shell sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -1)
PACKAGE_DIR = target/release/pg_chameleon_rs-pg15
package: setup
	cargo pgrx package --pg-config $(PG_CONFIG)
	install -m 644 sql/pg_chameleon_rs--*--*.sql sql/versions/*.sql $(PACKAGE_DIR)$$($(PG_CONFIG) --sharedir)/extension/
	tar -C $(PACKAGE_DIR) -czf target/pg_chameleon_rs-$(VERSION)-pg15.tar.gz .
	@echo "==> $(PACKAGE_DIR) and target/pg_chameleon_rs-$(VERSION)-pg15.tar.gz"

prev: setup
	bash scripts/build_prev.sh $(PREV_COMMIT) $(PREV_VERSION)

# Guardrails: formatting, clippy with warnings as errors, and a core free of pgrx.
lint: setup
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	@if grep -rnE '^\s*(pub )?use pgrx|pgrx::' src/core; then echo "src/core must not use pgrx (it is the pure core)"; exit 1; fi

# Tier 1: every plain #[test] (the pure core, pure worker rules), no PostgreSQL; the
# #[pg_test]s (named tests::pg_*) run in pgtest.
unit: setup
	cargo test --lib -- --skip tests::pg_

# Tier 2: in-backend tests (#[pg_test]) in a throwaway cluster run as postgres.
pgtest: setup
	rm -rf $(PGRX_TEST_DATA)
	cargo pgrx test pg15 --runas postgres --pgdata $(PGRX_TEST_DATA)
	rm -rf $(PGRX_TEST_DATA)

# Tier 3: end to end, real MariaDB and real PostgreSQL with the extension (release build).
e2e: prev install
	CHAMELEON_PREV_VERSION=$(PREV_VERSION) $(VENV)/bin/pytest -v tests/e2e

test: lint unit pgtest e2e

demo: install
	$(VENV)/bin/python scripts/demo.py

# Benchmark (prints numbers, gates nothing): BENCH_TABLES, BENCH_ROWS, BENCH_BACKLOG, BENCH_SECONDS.
bench: install
	$(VENV)/bin/python scripts/bench.py

clean:
	cargo clean
	rm -rf .cache
