//! The `clob` guest binary: see the library docs for its input and output.
//! It checks the offchain state against the input state root with the
//! host's Keccak-256 precompile; a mismatch or malformed input panics (exit
//! code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    coprocessor_sdk::run_job("clob", |onchain, offchain| clob::run(onchain, offchain, coprocessor_sdk::keccak256));
}
