//! `fast_frame`: see `coprocessor_fuzz_targets::fast_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coprocessor_fuzz_targets::fast_frame(data));
