//! The `xorshift` guest binary: see the library docs for its input and output.
//! Malformed input panics (exit code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    let onchain = coprocessor_sdk::onchain_input();
    let offchain = coprocessor_sdk::offchain_input();
    match xorshift::run(onchain, offchain) {
        Ok(output) => coprocessor_sdk::commit(&output),
        Err(e) => panic!("xorshift: {e}"),
    }
}
