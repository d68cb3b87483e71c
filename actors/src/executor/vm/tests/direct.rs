//! Direct guest memory (Unicorn patch 11): a page granted to generated code
//! for loads or stores is exactly what the TLB would allow, for this job
//! only. Each test first makes a page direct (an access the TLB fill
//! grants), then tries what the grant must not allow.

use super::asm::{i, s, Asm, DATA_BASE, TEXT_BASE};
use super::{run, run64, vm, vm64, Vm};
use crate::executor::vm::ONCHAIN_INPUT_ADDR;
use crate::job::{Failure, JobLimits};

const HEAP: u32 = 0x2000_0000;

#[test]
fn direct_memory_is_on_for_every_vm_here() {
    // Without it every access takes the softmmu path: slower, not wrong.
    let mut p = Asm::new();
    p.exit(0);
    let vm: Vm = vm(&p);
    assert!(!vm.uc.get_data().mem.direct().1.is_null());
}

#[test]
fn a_page_loaded_from_still_refuses_a_store_when_read_only() {
    // Text: a load grants the page for loads only.
    let mut p = Asm::new();
    p.li(5, TEXT_BASE).lw(6, 5, 0).sw(6, 5, 0).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: u64::from(TEXT_BASE), len: 4 }));
    // An input: granted for loads from the start.
    let mut p = Asm::new();
    p.lw(6, 10, 0).sw(6, 10, 0).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: u64::from(ONCHAIN_INPUT_ADDR), len: 4 }));
}

#[test]
fn a_grant_ends_with_the_job_so_the_page_counts_again() {
    // Job 1 stores to a fresh heap page; job 2 loads it: it must read zero
    // and pay for the page, as if job 1 had never run.
    let mut p = Asm::new();
    p.li(5, HEAP).lw(6, 10, 0).beq(6, 0, 8).sw(6, 5, 0).lw(7, 5, 0).save(7, 0).commit_saved(1).exit(0);
    let mut vm = vm(&p);
    let first = vm.run(&7u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(first.output, 7u32.to_le_bytes());
    let second = vm.run(&0u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(second.output, 0u32.to_le_bytes());
    // Counted again: a page left direct would have been read without a TLB
    // fill, and job 2's peak would be a page short.
    assert_eq!(second.peak_memory_bytes, first.peak_memory_bytes);
}

#[test]
fn a_misaligned_access_that_crosses_into_an_untouched_page_counts_it() {
    // The first page is made direct by a store; a word straddling it and
    // the next page must still count (and zero-fill) the next one.
    let mut p = Asm::new();
    p.li(5, HEAP).sw(0, 5, 0).li(5, HEAP + 4094).lw(6, 5, 0).save(6, 0).commit_saved(1).exit(0);
    let straddle = run(&p);
    let mut p = Asm::new();
    p.li(5, HEAP).sw(0, 5, 0).li(5, HEAP + 4092).lw(6, 5, 0).save(6, 0).commit_saved(1).exit(0);
    let inside = run(&p);
    assert_eq!((straddle.failure.clone(), inside.failure.clone()), (None, None));
    assert_eq!(straddle.output, [0; 4]);
    assert_eq!(straddle.peak_memory_bytes, inside.peak_memory_bytes + 4096);
}

#[test]
fn a_direct_page_is_not_reachable_through_an_address_above_4_gib() {
    // rv64: the data page is made direct by a load, then the same page
    // 4 GiB higher (and 2^63 higher) is a fault, never the page again.
    for alias in [1u64 << 32, 1 << 63] {
        let addr = alias | u64::from(DATA_BASE);
        for (name, word, len) in [("ld", i(0x03, 7, 3, 6, 0), 8), ("sw", s(2, 6, 7, 0), 4)] {
            let mut p = Asm::new();
            p.data(&[1; 8]);
            p.li(5, DATA_BASE).ld(7, 5, 0).li64(6, addr).raw(word).exit(0);
            let outcome = run64(&p);
            assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr, len }), "{name} at {addr:#x}");
        }
    }
}

#[test]
fn a_read_only_page_kept_across_jobs_still_refuses_a_store_and_costs_the_same() {
    // Text keeps its TLB entry and its grant from one job to the next (no
    // job can change it, and image pages are counted up front): a store to
    // it in a later job is still a fault, and every job's peak is the same.
    let mut p = Asm::new();
    p.li(5, TEXT_BASE).lw(6, 5, 0).lw(7, 10, 0).beq(7, 0, 8).sw(6, 5, 0).exit(0);
    let mut vm = vm(&p);
    let read = vm.run(&0u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    let store = vm.run(&1u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    let again = vm.run(&0u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(read.failure, None);
    assert_eq!(store.failure, Some(Failure::MemoryFault { addr: u64::from(TEXT_BASE), len: 4 }));
    assert_eq!(again, read);
    assert_eq!(store.peak_memory_bytes, read.peak_memory_bytes);
}

#[test]
fn an_input_limit_beyond_the_abi_s_256_mib_region_is_refused_when_the_vm_is_built() {
    // Each input region has 256 MiB of guest address space (0x9000_0000,
    // 0xA000_0000); a larger limit would overlap the next region.
    let mut p = Asm::new();
    p.exit(0);
    let image = crate::program::ProgramImage::parse(&p.elf(), 1 << 24).expect("test ELF is valid");
    assert!(Vm::new(&image, 256 << 20).is_ok(), "exactly 256 MiB fits");
    let err = Vm::new(&image, (256 << 20) + 1).expect_err("over 256 MiB");
    assert_eq!(
        err.to_string(),
        "mapping guest memory: an input region of 268439552 bytes is over the 268435456 bytes the ABI gives it"
    );
}

#[test]
fn registers_live_across_a_slow_path_access_keep_their_values() {
    // Unicorn patch 13: a load or store clobbers no host register but its
    // two scratch ones; its slow path (here: the first touch of a page, and
    // a misaligned word straddling two fresh pages) saves and restores the
    // rest. Ten values derived from the input are held in host registers
    // across both accesses and then summed: one clobbered changes the sum.
    let input = 0x1234_5679u32;
    let mut expected = [input; 11];
    for k in 1..11 {
        expected[k] = expected[k - 1].wrapping_add(expected[k - 1]).wrapping_add(k as u32);
    }
    let expected = expected.iter().fold(0u32, |sum, v| sum.wrapping_add(*v));
    let regs = [5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16];
    let program = |rv64: bool| {
        let mut p = Asm::new();
        p.lw(5, 10, 0);
        for (k, pair) in regs.windows(2).enumerate() {
            p.add(pair[1], pair[0], pair[0]).addi(pair[1], pair[1], k as i32 + 1);
        }
        p.li(28, HEAP).sw(5, 28, 0).li(29, HEAP + 2 * 4096 - 2).lw(30, 29, 0);
        if rv64 {
            p.li(29, HEAP + 4 * 4096 - 4).ld(30, 29, 0);
        }
        for &rd in &regs[1..] {
            p.add(5, 5, rd);
        }
        p.save(5, 0).commit_saved(1);
        p
    };
    let rv32 = vm(&program(false)).run(&input.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    let rv64 = vm64(&program(true)).run(&input.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    for (isa, outcome) in [("rv32", rv32), ("rv64", rv64)] {
        assert_eq!(outcome.failure, None, "{isa}");
        assert_eq!(outcome.output, expected.to_le_bytes(), "{isa}");
    }
}

#[test]
fn a_misaligned_access_inside_a_granted_page_takes_the_slow_path_and_is_exact() {
    // Patch 13: with BMI2 a misaligned rv32 address indexes the page map
    // past its page bytes, where nothing is ever granted; on rv64 the
    // rotated address fails the range compare. Either way the access takes
    // the softmmu path, which handles any alignment inside a page. The
    // page is granted first (an aligned store), then a word is stored at
    // every misaligned offset and read back as a word and as halves.
    let word = 0x8765_4321u32;
    let build = |rv64: bool| {
        let mut p = Asm::new();
        p.li(5, HEAP + 64).sw(0, 5, 0).li(6, word);
        for offset in [1, 2, 3, 5, 6, 7] {
            p.sw(6, 5, offset).lw(7, 5, offset).raw(i(0x03, 8, 5, 5, offset)).raw(i(0x03, 9, 5, 5, offset + 2));
            p.save(7, 0).save(8, 1).save(9, 2);
        }
        if rv64 {
            p.li64(6, 0x0123_4567_89ab_cdef).sd(6, 5, 3).ld(7, 5, 3).sw(7, 5, 0).lw(7, 5, 0);
        }
        p.save(7, 3).commit_saved(4);
        p
    };
    for (isa, outcome) in [("rv32", run(&build(false))), ("rv64", run64(&build(true)))] {
        assert_eq!(outcome.failure, None, "{isa}");
        let saved: Vec<u32> =
            outcome.output.chunks(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        let last = if isa == "rv64" { 0x89ab_cdef } else { word };
        assert_eq!(saved, [word, 0x4321, 0x8765, last], "{isa}");
    }
}

#[test]
fn a_page_left_in_the_tlb_by_the_last_job_still_counts_against_this_job_s_limit() {
    // Job 1 stores to two fresh heap pages, so both are in the TLB when job
    // 2 starts; the page map alone must make job 2 count them again (Unicorn
    // patch 14: a reset revokes the map and keeps the TLB entries).
    let mut p = Asm::new();
    p.li(5, HEAP).sw(0, 5, 0).li(5, HEAP + 4096).sw(0, 5, 0).exit(0);
    let mut vm = vm(&p);
    let first = vm.run(&[], &[], &JobLimits::default()).expect("run");
    assert_eq!(first.failure, None);
    // One page short: the second store is over the limit.
    let tight = JobLimits { max_memory_bytes: first.peak_memory_bytes - 4096, ..JobLimits::default() };
    let second = vm.run(&[], &[], &tight).expect("run");
    assert_eq!(second.failure, Some(Failure::MemoryLimitExceeded));
    assert_eq!(second.peak_memory_bytes, first.peak_memory_bytes - 4096);
    // With the room back, the same job is exactly job 1 again.
    assert_eq!(vm.run(&[], &[], &JobLimits::default()).expect("run"), first);
}

#[test]
fn a_misaligned_load_into_pages_the_last_job_wrote_counts_them_and_reads_zero() {
    // A word across two heap pages: stored (when the input word is not
    // zero) and then loaded. Job 1 stores; job 2 only loads, with both pages
    // still in the TLB, and must see a fresh VM's zeroes and peak.
    let mut p = Asm::new();
    p.li(5, HEAP + 4094).lw(7, 10, 0).beq(7, 0, 8).sw(7, 5, 0).lw(6, 5, 0).save(6, 0).commit_saved(1).exit(0);
    let load_only = 0u32.to_le_bytes();
    let fresh = vm(&p).run(&load_only, &[], &JobLimits::default()).expect("run");
    assert_eq!((fresh.failure.clone(), fresh.output.clone()), (None, vec![0; 4]));
    let mut vm = vm(&p);
    let stored = vm.run(&0x1122_3344u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(stored.output, 0x1122_3344u32.to_le_bytes());
    assert_eq!(vm.run(&load_only, &[], &JobLimits::default()).expect("run"), fresh);
    // One page short: the load's second page is over the limit.
    let tight = JobLimits { max_memory_bytes: fresh.peak_memory_bytes - 4096, ..JobLimits::default() };
    assert_eq!(vm.run(&load_only, &[], &tight).expect("run").failure, Some(Failure::MemoryLimitExceeded));
}
