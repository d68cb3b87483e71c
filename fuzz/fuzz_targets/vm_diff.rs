//! `vm_diff`: see `coprocessor_fuzz_targets::vm_diff`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coprocessor_fuzz_targets::vm_diff(data));
