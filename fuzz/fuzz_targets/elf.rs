//! `elf`: see `coprocessor_fuzz_targets::elf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coprocessor_fuzz_targets::elf(data));
