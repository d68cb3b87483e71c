//! The `square-root` guest binary: see the library docs for its input and output.
//! Malformed input panics (exit code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    coprocessor_sdk::run_job("square-root", square_root::run);
}
