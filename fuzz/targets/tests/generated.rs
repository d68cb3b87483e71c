//! The generator makes what it claims: for each ISA, programs the validator
//! accepts as that ISA, and jobs that reach every kind of stop, including
//! rv64im's own (addresses and syscall arguments above 4 GiB).

use coprocessor_actors::program::{Isa, ProgramImage};
use coprocessor_fuzz_targets::source::{pseudo_random_bytes, Source};
use coprocessor_fuzz_targets::{elf_writer, gen};
use rv32im_reference::{run, Failure, Limits};
use std::collections::BTreeMap;

/// Generates `cases` programs for the ISA byte `isa`, runs one job of each on
/// the reference, and counts the programs the validator accepts as `want`
/// and the kinds of stop.
fn survey(isa: u8, want: Isa, cases: u64) -> (u64, BTreeMap<String, u64>) {
    let mut accepted = 0;
    let mut kinds = BTreeMap::new();
    for seed in 0..cases {
        let mut data = vec![isa];
        data.extend(pseudo_random_bytes(seed, 64 + (seed as usize * 37) % 2000));
        let mut src = Source::new(&data);
        let case = gen::case(&mut src);
        let Ok(image) = ProgramImage::parse(&elf_writer::write(&case.program), 1 << 24) else { continue };
        if image.isa == want {
            accepted += 1;
        }
        let (onchain, offchain) = gen::inputs(&mut src, case.max_input_bytes);
        let limits = Limits { max_cycles: 30_000, max_memory_bytes: 256 << 20, max_output_bytes: 1 << 20 };
        let outcome = run(&case.program, case.max_input_bytes, &onchain, &offchain, &limits).expect("inputs fit");
        let kind = match outcome.failure {
            None => "done".to_string(),
            Some(Failure::MemoryFault { addr, len }) if addr > u64::from(u32::MAX) || len > u64::from(u32::MAX) => {
                "fault above 4 GiB".to_string()
            }
            Some(Failure::UnsupportedSyscall(n)) if n > u64::from(u32::MAX) => "64-bit syscall number".to_string(),
            Some(failure) => format!("{failure:?}").split([' ', '(', '{']).next().unwrap_or_default().to_string(),
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    (accepted, kinds)
}

#[test]
fn rv32im_cases_are_rv32im_and_reach_every_stop() {
    let (accepted, kinds) = survey(0, Isa::Rv32im, 400);
    eprintln!("rv32im: {accepted} accepted of 400; {kinds:?}");
    assert!(accepted >= 300, "{accepted} of 400 accepted");
    for kind in ["done", "MemoryFault", "IllegalInstruction", "MisalignedFetch", "UnsupportedSyscall", "GuestExit"] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} in {kinds:?}");
    }
}

#[test]
fn rv64im_cases_are_rv64im_and_reach_every_stop() {
    let (accepted, kinds) = survey(1, Isa::Rv64im, 400);
    eprintln!("rv64im: {accepted} accepted of 400; {kinds:?}");
    assert!(accepted >= 300, "{accepted} of 400 accepted");
    for kind in [
        "done",
        "MemoryFault",
        "fault above 4 GiB",
        "64-bit syscall number",
        "IllegalInstruction",
        "MisalignedFetch",
        "UnsupportedSyscall",
        "GuestExit",
    ] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} in {kinds:?}");
    }
}
