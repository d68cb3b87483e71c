//! `vm_diff` on deterministic pseudo-random inputs: disagreements between
//! the VM and the reference are caught without libFuzzer.

use coprocessor_fuzz_targets::source::pseudo_random_bytes;
use coprocessor_fuzz_targets::{abi_request, elf, fast_frame, jsonrpc, vm_diff};

/// Inputs per run; `VM_DIFF_CASES` overrides it (e.g. for a longer local run).
fn cases(default: u64) -> u64 {
    std::env::var("VM_DIFF_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn vm_and_reference_agree_on_pseudo_random_programs() {
    for seed in 0..cases(2000) {
        let len = 64 + (seed as usize * 37) % 2000;
        let data = pseudo_random_bytes(seed, len);
        if let Err(panic) = std::panic::catch_unwind(|| vm_diff(&data)) {
            // VM_DIFF_DUMP=<dir> keeps the failing input, to become a regression file.
            if let Ok(dir) = std::env::var("VM_DIFF_DUMP") {
                let path = std::path::Path::new(&dir).join(format!("seed-{seed}"));
                std::fs::write(&path, &data).expect("write the failing input");
                eprintln!("failing input written to {}", path.display());
            }
            eprintln!("vm_diff failed on seed {seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn decoders_survive_pseudo_random_bytes() {
    for seed in 0..500 {
        let data = pseudo_random_bytes(seed ^ 0xdead_beef, (seed as usize * 13) % 700);
        jsonrpc(&data);
        fast_frame(&data);
        abi_request(&data);
        elf(&data);
    }
}
