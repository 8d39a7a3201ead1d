# rustgun — a thin set of phony targets. `make run` serves the hello app; `make test` runs every test.
CARGO ?= cargo
CC ?= cc
RELEASE := target/release
C_APPS := $(RELEASE)/libhello_c.so
WORKERS ?= 4
BIND ?= 127.0.0.1:8000

.PHONY: all build run test fmt lint clean bench

all: build

build:
	$(CARGO) build --release --workspace
	@mkdir -p $(RELEASE)
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -fPIC -shared -Iinclude -o $(RELEASE)/libhello_c.so apps/hello_c/hello.c

run: build
	$(RELEASE)/rustgun $(RELEASE)/libhello.so:app --workers $(WORKERS) --bind $(BIND)

test: build
	$(CARGO) test --release --workspace

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
