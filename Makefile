# rustgun — a thin set of phony targets. `make run` serves the hello app; `make test` runs every test.
CARGO ?= cargo
CC ?= cc
RELEASE := target/release
C_APPS := $(RELEASE)/libhello_c.so
WORKERS ?= 4
BIND ?= 127.0.0.1:8000

.PHONY: all build run test fmt lint clean bench bench-protocol

all: build

build:
	$(CARGO) build --release --workspace
	@mkdir -p $(RELEASE)
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -fPIC -shared -Iinclude -o $(RELEASE)/libhello_c.so apps/hello_c/hello.c

run: build
	$(RELEASE)/rustgun $(RELEASE)/libhello.so:app --workers $(WORKERS) --bind $(BIND)

# The integration suite runs once per worker class.
test: build
	$(CARGO) test --release --workspace
	RUSTGUN_TEST_WORKER_CLASS=threads $(CARGO) test --release --test integration
	RUSTGUN_TEST_WORKER_CLASS=event $(CARGO) test --release --test integration

# rustgun's worker classes against nginx, gunicorn and granian under wrk (installs what is missing);
# writes docs/benchmarks.md and docs/benchmarks.svg. Quick look: make bench BENCH_ARGS='--duration 1 --rounds 1 --no-docs'
BENCH_ARGS ?=
bench: build
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
