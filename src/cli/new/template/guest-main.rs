//! The {name} guest binary: see the library for its input and output.
//! Malformed input panics (exit code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    coprocessor_sdk::run_job("{name}", {crate}::run);
}
