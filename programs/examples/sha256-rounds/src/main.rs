//! The `sha256-rounds` guest binary: see the library docs for its input and
//! output. Flag 1 hashes through the host's SHA-256 precompile. Malformed
//! input panics (exit code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    coprocessor_sdk::run_job("sha256-rounds", |onchain, offchain| {
        sha256_rounds::run(onchain, offchain, coprocessor_sdk::sha256)
    });
}
