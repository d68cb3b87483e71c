//! `abi_request`: see `coprocessor_fuzz_targets::abi_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coprocessor_fuzz_targets::abi_request(data));
