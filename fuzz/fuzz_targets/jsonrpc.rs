//! `jsonrpc`: see `coprocessor_fuzz_targets::jsonrpc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coprocessor_fuzz_targets::jsonrpc(data));
