//! `vm_diff` on deterministic pseudo-random inputs: disagreements between
//! the VM and the reference are caught without libFuzzer.

use coprocessor_fuzz_targets::source::pseudo_random_bytes;
use coprocessor_fuzz_targets::{abi_request, elf, fast_frame, jsonrpc, vm_diff};

/// Inputs per run and ISA; `VM_DIFF_CASES` overrides it (e.g. for a longer local run).
fn cases(default: u64) -> u64 {
    std::env::var("VM_DIFF_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `cases` inputs for one ISA (the first byte: 0 for rv32im, 1 for rv64im);
/// the rest is the same pseudo-random stream for both.
fn agree(isa: u8, cases: u64) {
    for seed in 0..cases {
        let len = 64 + (seed as usize * 37) % 2000;
        let mut data = vec![isa];
        data.extend(pseudo_random_bytes(seed, len));
        if let Err(panic) = std::panic::catch_unwind(|| vm_diff(&data)) {
            // VM_DIFF_DUMP=<dir> keeps the failing input, to become a regression file.
            if let Ok(dir) = std::env::var("VM_DIFF_DUMP") {
                let path = std::path::Path::new(&dir).join(format!("isa-{isa}-seed-{seed}"));
                std::fs::write(&path, &data).expect("write the failing input");
                eprintln!("failing input written to {}", path.display());
            }
            eprintln!("vm_diff failed on isa byte {isa}, seed {seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn vm_and_reference_agree_on_pseudo_random_rv32im_programs() {
    agree(0, cases(1000));
}

#[test]
fn vm_and_reference_agree_on_pseudo_random_rv64im_programs() {
    agree(1, cases(1000));
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
