# Set-up and everyday commands. `make run` and `make test` install whatever
# is missing on a fresh Debian machine first, and do nothing where it is
# already there.

SHELL := bash
CARGO ?= $(shell command -v cargo 2>/dev/null || echo /usr/bin/cargo)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Unicorn's bundled build needs cmake, and libclang for bindgen. The guests
# build with Debian's Rust (rustc-web, cargo-web, rust-web-src: the
# riscv32im target through -Zbuild-std) and link with lld. The cluster
# tests run real nats-server processes (JetStream).
DEBIAN_PACKAGES := cmake libclang-dev lld rustc-web cargo-web rust-web-src pkg-config python3 nats-server

.PHONY: run cluster test lint deny tools deps node-deps contracts guests twins build bench fuzz soak help

help:
	@echo "make run    build everything and start the local stack: node, contracts, engine (./data)"
	@echo "make cluster three engines as one node on three clustered nats-servers (data/cluster)"
	@echo "make test   build everything and run every test (lint included)"
	@echo "make lint   rustfmt, clippy -D warnings, and the module-cycle check"
	@echo "make bench  criterion benchmarks (slow; not part of make test)"
	@echo "make fuzz   every fuzz target for FUZZ_SECONDS each (default 180); fails on a crash or disagreement"
	@echo "make soak   faults under load for DURATION seconds each (default 600): kill -9 rounds, with and without a chain"
	@echo "make guests build the example guests to programs/elf/ (rv32im) and programs/elf/rv64/ (rv64im)"
	@echo "make twins  build the guests' logic as Linux user-mode programs for qemu-riscv32/64 (benchmarks)"

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Node.js runs the contracts' toolchain (solc-js) and the local node
# (hardhat 2.x, pinned in contracts/package-lock.json).
node-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing: nodejs npm"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	@if [ ! -f contracts/node_modules/.package-lock.json ] || \
	    [ contracts/package-lock.json -nt contracts/node_modules/.package-lock.json ]; then \
	  cd contracts && npm ci --no-audit --no-fund --loglevel=error; \
	fi

# The committed artifacts in contracts/out must be what the sources
# compile to; then the contract tests run against a real hardhat node.
contracts: node-deps
	cd contracts && npm run --silent check && npm test

guests: deps
	@programs/build.sh

# The benchmarks' QEMU column: programs/target/twins/{rv32,rv64}/twin (needs
# qemu-user to run; not part of make test).
twins: deps
	@programs/build.sh --twins

build: deps
	$(CARGO) build --release --bin coprocessor

# Starts the whole local stack in the foreground: a hardhat node on
# 127.0.0.1:8545, the contracts, and the engine wired to them (data in
# ./data, socket ./data/coprocessor.ipc, addresses in ./data/deployment.json).
# Ctrl-C drains the engine and stops the node. README.md shows a first
# onchain and offchain job from a second terminal. `coprocessor run` alone
# still starts the engine with no chain.
run: guests build node-deps
	RUST_LOG=$${RUST_LOG:-info} target/release/coprocessor dev

# Three engines as one node on three clustered nats-servers, settling on a
# local hardhat node (data/cluster; engine i's socket is
# data/cluster/node-i/coprocessor.ipc). Ctrl-C stops it.
cluster: guests build node-deps
	RUST_LOG=$${RUST_LOG:-info} target/release/coprocessor dev --cluster 3 --data-dir data/cluster

# Cargo tools the checks use, pinned; installed once into ~/.cargo/bin.
CARGO_DENY_VERSION := 0.20.2
tools:
	@command -v cargo-deny >/dev/null && [ "$$(cargo-deny --version | cut -d' ' -f2)" = "$(CARGO_DENY_VERSION)" ] || \
	  $(CARGO) install --locked cargo-deny@$(CARGO_DENY_VERSION)

# Licences and duplicate versions (deny.toml; programs/deny.toml for the
# guest side). Advisories are not checked: their database cannot be
# fetched from these machines.
deny: tools
	cargo-deny --workspace check licenses bans
	cargo-deny --workspace --manifest-path programs/Cargo.toml check licenses bans

# Formatting, lints, and the engine's layering: no module may be part of a
# cycle (.ci/module-cycles.py says which rule, and tests itself first).
lint: deps deny
	$(CARGO) fmt --all --check
	$(CARGO) fmt --manifest-path programs/Cargo.toml --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 .ci/test_module_cycles.py
	python3 .ci/module-cycles.py actors/src/lib.rs src/main.rs

test: guests contracts lint
	$(CARGO) test --workspace
	$(CARGO) test --manifest-path programs/Cargo.toml --workspace --lib

# The VM bench's QEMU columns run the twins under qemu-riscv32/-riscv64:
# qemu-user is installed here, for the benchmark only (without it those
# columns show "-"). VM_BENCH_TABLE_ONLY=1 prints only the VM table.
bench: guests twins node-deps
	@command -v qemu-riscv32 >/dev/null || { \
	  echo "installing: qemu-user"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user; }
	$(CARGO) bench --bench vm
	$(CARGO) bench --bench engine
	$(CARGO) bench --bench chain
	$(CARGO) bench --bench cluster

# Fuzzing (fuzz/README.md): installs cargo-fuzz if missing, then runs every
# target for FUZZ_SECONDS each. A crash or a VM/reference disagreement
# exits non-zero; its input belongs in fuzz/regressions/, which make test
# replays.
FUZZ_SECONDS ?= 180
fuzz: guests
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# Faults under load (tests/soak.rs) for DURATION seconds each; make test
# runs the same tests for a few seconds.
DURATION ?= 600
soak: guests node-deps
	SOAK_SECONDS=$(DURATION) $(CARGO) test --release --test soak -- --nocapture --test-threads=1
