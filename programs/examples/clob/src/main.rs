//! The `clob` guest binary: see the library docs for its input and output.
//! It checks the offchain state against the input state root with the
//! host's Keccak-256 precompile; a mismatch or malformed input panics (exit
//! code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    let onchain = coprocessor_sdk::onchain_input();
    let offchain = coprocessor_sdk::offchain_input();
    match clob::run(onchain, offchain, coprocessor_sdk::keccak256) {
        Ok(output) => coprocessor_sdk::commit(&output),
        Err(e) => panic!("clob: {e}"),
    }
}
