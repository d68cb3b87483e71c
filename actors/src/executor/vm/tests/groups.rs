//! One direct-memory check for a group of accesses off one base register
//! (Unicorn patch 15). A group's check either finds its whole range granted,
//! and its accesses then run with no check of their own, or it fails, and
//! the block runs again from that access with a check per access. Either
//! way every result is the one a check per access gives: the same output,
//! cycles, peak memory and faults.

use super::asm::{Asm, DATA_BASE};
use super::metering::assert_stops_like_single_stepping;
use super::{run, run64, vm, vm64, Vm};
use crate::executor::vm::meter;
use crate::job::{Failure, JobLimits, JobOutcome};
use unicorn_engine::unicorn_const::Mode;

const HEAP: u32 = 0x2000_0000;

/// Blocks translated with a check per access after a failed group check.
fn checked_blocks(vm: &Vm) -> usize {
    meter::checked_blocks(&vm.uc)
}

/// Ends the block here (a branch to the next instruction), so that what
/// follows is translated as a block of its own.
fn end_block(p: &mut Asm) -> &mut Asm {
    p.beq(0, 0, 4)
}

/// Stores 1, 2, 3 at `x5 + 0, 4, 8` and loads them back into x7..x9: a
/// group of six accesses off x5.
fn group_off_x5(p: &mut Asm) -> &mut Asm {
    p.addi(6, 0, 1).sw(6, 5, 0).addi(6, 0, 2).sw(6, 5, 4).addi(6, 0, 3).sw(6, 5, 8);
    p.lw(7, 5, 0).lw(8, 5, 4).lw(9, 5, 8)
}

/// Sets x5 to the heap, runs [`group_off_x5`] and writes x7..x9 out. With
/// `touched_first`, a block of its own stores to the page before the group,
/// so that the group's check finds it granted.
fn group_program(touched_first: bool) -> Asm {
    let mut p = Asm::new();
    p.li(5, HEAP);
    if touched_first {
        p.sw(0, 5, 0);
        end_block(&mut p);
    }
    group_off_x5(&mut p).save(7, 0).save(8, 1).save(9, 2).commit_saved(3);
    p
}

fn run_on(vm: &mut Vm) -> JobOutcome {
    vm.run(&[], &[], &JobLimits::default()).expect("run")
}

#[test]
fn accesses_off_one_register_share_one_check_once_their_page_is_granted() {
    // A block of its own touches the heap page first, so the group's check
    // finds it granted, every job.
    let mut vm = vm(&group_program(true));
    let first = run_on(&mut vm);
    assert_eq!(first.failure, None);
    assert_eq!(first.output, [1u32, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
    assert_eq!(run_on(&mut vm), first);
    assert_eq!(checked_blocks(&vm), 0, "no group check failed");
}

#[test]
fn offsets_below_and_above_the_base_reach_the_right_bytes_on_both_isas() {
    // A grouped access adds its offset in the host access itself: stores at
    // base-8 .. base+4 (rv32) and base-16 .. base+8 (rv64), read back by the
    // write syscall (host code), must land where a per-access store would.
    let base = HEAP + 2048;
    let mut p = Asm::new();
    p.li(5, base).sw(0, 5, 0);
    end_block(&mut p);
    for (k, off) in [-8, -4, 0, 4].into_iter().enumerate() {
        p.addi(6, 0, k as i32 + 1).sw(6, 5, off);
    }
    end_block(&mut p);
    p.write(3, base - 8, 16).exit(0);
    let mut vm32 = vm(&p);
    let outcome = run_on(&mut vm32);
    assert_eq!(outcome.output, [1u32, 2, 3, 4].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
    assert_eq!(checked_blocks(&vm32), 0, "the group check passed");

    let mut p = Asm::new();
    p.li(5, base).sd(0, 5, 0);
    end_block(&mut p);
    for (k, off) in [-16, -8, 0, 8].into_iter().enumerate() {
        p.li64(6, 0x1_0000_0001 * (k as u64 + 1)).sd(6, 5, off);
    }
    end_block(&mut p);
    p.write(3, base - 16, 32).exit(0);
    let mut vm64 = vm64(&p);
    let outcome = run_on(&mut vm64);
    let expected: Vec<u8> = (1..=4u64).flat_map(|k| (0x1_0000_0001 * k).to_le_bytes()).collect();
    assert_eq!(outcome.output, expected);
    assert_eq!(checked_blocks(&vm64), 0, "the group check passed");
}

#[test]
fn a_group_whose_page_is_not_granted_yet_runs_again_with_a_check_per_access() {
    // The group's own first store is the job's first touch of the page: its
    // check fails, the block is translated again, and the result is exact.
    let mut vm = vm(&group_program(false));
    let outcome = run_on(&mut vm);
    assert!(checked_blocks(&vm) >= 1, "the group check failed and the block was translated again");
    let reference = run(&group_program(true));
    assert_eq!(outcome.output, reference.output);
    assert_eq!(outcome.peak_memory_bytes, reference.peak_memory_bytes);
    // Two instructions fewer: no store before the group, no branch.
    assert_eq!(outcome.cycles, reference.cycles - 2);
    assert_eq!(run_on(&mut vm), outcome);
}

#[test]
fn writing_the_base_register_ends_the_group() {
    // Page A is granted by a block of its own; the next block stores three
    // words off x5 into A, moves x5 one page on (or loads it from memory)
    // and stores three more into page B, which nothing has touched. Had the
    // group gone on past the write, page B would be stored to unchecked and
    // never counted: the peak would be a page short.
    for load_the_base in [false, true] {
        let mut p = Asm::new();
        p.data(&(HEAP + 4096).to_le_bytes());
        p.li(5, HEAP).sw(0, 5, 0).li(28, DATA_BASE);
        end_block(&mut p);
        p.addi(6, 0, 7).sw(6, 5, 0).sw(6, 5, 4).sw(6, 5, 8);
        if load_the_base {
            p.lw(5, 28, 0);
        } else {
            p.addi(5, 5, 2047).addi(5, 5, 2047).addi(5, 5, 2);
        }
        p.sw(6, 5, 0).sw(6, 5, 4).sw(6, 5, 8).exit(0);
        let mut two_blocks = Asm::new();
        two_blocks.data(&(HEAP + 4096).to_le_bytes());
        two_blocks.li(5, HEAP).sw(0, 5, 0).li(5, HEAP + 4096).sw(0, 5, 0).exit(0);

        let mut vm = vm(&p);
        let outcome = run_on(&mut vm);
        assert_eq!(outcome.failure, None, "load the base: {load_the_base}");
        assert_eq!(outcome.peak_memory_bytes, run(&two_blocks).peak_memory_bytes, "load the base: {load_the_base}");
        assert_eq!(run_on(&mut vm).peak_memory_bytes, outcome.peak_memory_bytes);
    }
}

#[test]
fn a_group_that_reaches_a_page_over_the_limit_faults_at_the_access_that_touches_it() {
    // Four words from 8 bytes below a page end: the third is the first on
    // the next page, which the limit does not allow.
    let mut p = Asm::new();
    p.li(5, HEAP + 4088).addi(6, 0, 9).sw(6, 5, 0).sw(6, 5, 4);
    let retired = p.text.len() as u64;
    p.sw(6, 5, 8).sw(6, 5, 12).exit(0);
    let full = run(&p);
    assert_eq!(full.failure, None);
    let one_page_short = JobLimits { max_memory_bytes: full.peak_memory_bytes - 4096, ..JobLimits::default() };
    let mut vm = vm(&p);
    for _ in 0..2 {
        let outcome = vm.run(&[], &[], &one_page_short).expect("run");
        assert_eq!(outcome.failure, Some(Failure::MemoryLimitExceeded));
        assert_eq!(outcome.cycles, retired, "the two stores before it retired, it did not");
        assert_eq!(outcome.peak_memory_bytes, full.peak_memory_bytes - 4096);
    }
}

#[test]
fn a_group_at_a_direct_page_4_gib_higher_is_a_fault_on_rv64() {
    // The data page is granted by a block of its own; a group of three
    // doublewords off the same page 4 GiB higher must fault at its first
    // access, never reach the page.
    let addr = (1u64 << 32) | u64::from(DATA_BASE);
    let mut p = Asm::new();
    p.data(&[1; 32]);
    p.li(5, DATA_BASE).ld(7, 5, 0);
    end_block(&mut p);
    p.li64(6, addr).ld(7, 6, 0).ld(8, 6, 8).sd(7, 6, 16).exit(0);
    assert_eq!(run64(&p).failure, Some(Failure::MemoryFault { addr, len: 8 }));
}

#[test]
fn every_budget_stops_exactly_where_a_group_check_fails() {
    // A fresh VM per budget, so that the group check fails in every run
    // (the data page is not granted when it runs) wherever the budget ends.
    let mut p = Asm::new();
    p.data(&[0; 16]);
    p.li(6, DATA_BASE).addi(7, 0, 5).addi(8, 0, 6);
    p.sw(7, 6, 0).addi(7, 7, 1).sw(8, 6, 4).lw(9, 6, 0).add(9, 9, 8).sw(9, 6, 8).lw(10, 6, 8);
    p.exit(0);
    let n = vm(&p).run(&[], &[], &JobLimits::default()).expect("run").cycles;
    assert_eq!(n, p.text.len() as u64);
    for budget in 0..n {
        let mut vm = vm(&p);
        assert_stops_like_single_stepping(&mut vm, Mode::RISCV32, &p, [budget]);
    }
    let mut vm = vm(&p);
    run_on(&mut vm);
    assert!(checked_blocks(&vm) >= 1, "the group check failed");
}
