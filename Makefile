# Set-up and everyday commands. `make run` and `make test` install whatever
# is missing on a fresh Debian machine first, and do nothing where it is
# already there.

SHELL := bash
CARGO ?= $(shell command -v cargo 2>/dev/null || echo /usr/bin/cargo)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Unicorn's bundled build needs cmake, and libclang for bindgen. The guests
# build with Debian's Rust (rustc-web, cargo-web, rust-web-src: the
# riscv32im target through -Zbuild-std) and link with lld.
DEBIAN_PACKAGES := cmake libclang-dev lld rustc-web cargo-web rust-web-src pkg-config

.PHONY: run test deps guests build bench help

help:
	@echo "make run    build everything and start the engine (./data)"
	@echo "make test   build everything and run every test"
	@echo "make bench  criterion benchmarks (slow; not part of make test)"
	@echo "make guests build the example guests to programs/elf/"

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

guests: deps
	@programs/build.sh

build: deps
	$(CARGO) build --release --bin coprocessor

# Starts the engine on the embedded default config (data in ./data, socket
# ./data/coprocessor.ipc) in the foreground; Ctrl-C drains and stops it.
# README.md shows a first job from a second terminal.
run: guests build
	RUST_LOG=$${RUST_LOG:-info} target/release/coprocessor run

test: guests
	$(CARGO) test --workspace
	$(CARGO) test --manifest-path programs/Cargo.toml --workspace --lib

bench: guests
	$(CARGO) bench --bench vm
	$(CARGO) bench --bench engine
