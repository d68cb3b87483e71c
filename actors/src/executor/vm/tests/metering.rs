//! Exact metering: every budget stops on the exact instruction.

use super::asm::{Asm, DATA_BASE, TEXT_BASE};
use super::{limits, vm, Vm};
use crate::executor::vm::{OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR, STACK_TOP};
use crate::job::{Failure, JobLimits};
use unicorn_engine::unicorn_const::{Arch, Mode, Prot};
use unicorn_engine::{RegisterRISCV, Unicorn};

/// A loop of `iterations` with a load and a store, then exit 0.
fn counted_loop(iterations: u32) -> Asm {
    let mut p = Asm::new();
    p.data(&[0; 16]);
    p.li(5, iterations).li(6, DATA_BASE);
    // loop: lw x7, 0(x6); addi x7, x7, 3; sw x7, 0(x6); addi x5, x5, -1; bne x5, x0, loop
    p.lw(7, 6, 0).addi(7, 7, 3).sw(7, 6, 0).addi(5, 5, -1).raw(super::asm::b(1, 5, 0, -16));
    p.exit(0);
    p
}

/// Runs `program` on `vm` with each of `budgets` (all below the program's
/// full count) and checks that it runs out of cycles exactly where
/// single-stepping that many instructions on a plain Unicorn of `mode` stops:
/// pc and every register. The exact-metering check of both ISAs.
pub(super) fn assert_stops_like_single_stepping(
    vm: &mut Vm,
    mode: Mode,
    program: &Asm,
    budgets: impl IntoIterator<Item = u64>,
) {
    for budget in budgets {
        let outcome = vm.run(&[], &[], &limits(budget)).expect("run");
        assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::CycleLimitExceeded), budget), "budget {budget}");
        assert_eq!(vm.registers64(), single_step_in(mode, program, budget as usize), "budget {budget}");
    }
}

/// Single-steps `program` for `count` instructions on a plain Unicorn
/// instance of `mode` (its own per-instruction counter, no metering) and
/// returns the pc and the registers: the oracle of the exact-metering tests
/// on both ISAs.
pub(super) fn single_step_in(mode: Mode, program: &Asm, count: usize) -> (u64, [u64; 32]) {
    let text_base = u64::from(TEXT_BASE);
    let mut uc = Unicorn::new(Arch::RISCV, mode).expect("unicorn");
    let text: Vec<u8> = program.text.iter().flat_map(|w| w.to_le_bytes()).collect();
    uc.mem_map(text_base, 0x10000, Prot::ALL).expect("map text");
    uc.mem_write(text_base, &text).expect("write text");
    uc.mem_map(u64::from(DATA_BASE), 0x1000, Prot::ALL).expect("map data");
    uc.mem_map(u64::from(STACK_TOP & !0xfff), 0x1000, Prot::ALL).expect("map stack");
    for (reg, value) in [
        (RegisterRISCV::X2, STACK_TOP),
        (RegisterRISCV::X10, ONCHAIN_INPUT_ADDR),
        (RegisterRISCV::X11, 0),
        (RegisterRISCV::X12, OFFCHAIN_INPUT_ADDR),
        (RegisterRISCV::X13, 0),
    ] {
        uc.reg_write(reg, u64::from(value)).expect("reg");
    }
    let pc = if count > 0 {
        uc.emu_start(text_base, 0, 0, count).expect("single-step run");
        uc.pc_read().expect("pc")
    } else {
        text_base
    };
    let mut regs = [0u64; 32];
    for (i, slot) in regs.iter_mut().enumerate().skip(1) {
        *slot = uc.reg_read(RegisterRISCV::X0 as i32 + i as i32).expect("reg");
    }
    (pc, regs)
}

#[test]
fn a_job_that_needs_n_cycles_succeeds_with_n_and_fails_with_n_minus_1() {
    let program = counted_loop(1000);
    let mut vm = vm(&program);
    let n = vm.run(&[], &[], &JobLimits::default()).expect("run").cycles;
    assert_eq!(n, 4 + 5 * 1000 + 5);

    let exact = vm.run(&[], &[], &limits(n)).expect("run");
    assert_eq!((exact.failure, exact.cycles), (None, n));
    let short = vm.run(&[], &[], &limits(n - 1)).expect("run");
    assert_eq!((short.failure, short.cycles), (Some(Failure::CycleLimitExceeded), n - 1));
}

#[test]
fn every_budget_stops_where_single_stepping_does() {
    let program = counted_loop(7);
    let mut vm = vm(&program);
    let n = vm.run(&[], &[], &JobLimits::default()).expect("run").cycles;
    assert_stops_like_single_stepping(&mut vm, Mode::RISCV32, &program, 0..n);
    for budget in [n, n + 1] {
        let outcome = vm.run(&[], &[], &limits(budget)).expect("run");
        assert_eq!((outcome.failure, outcome.cycles), (None, n), "budget {budget}");
    }
}

#[test]
fn budgets_across_the_16_bit_counter_refill_are_exact() {
    let program = counted_loop(20_000);
    let mut vm = vm(&program);
    let n = vm.run(&[], &[], &JobLimits::default()).expect("run").cycles;
    assert!(n > 65_535 + 1);
    assert_stops_like_single_stepping(
        &mut vm,
        Mode::RISCV32,
        &program,
        [65_534, 65_535, 65_536, 65_537, 65_538, 99_999, n - 1],
    );
    let exact = vm.run(&[], &[], &limits(n)).expect("run");
    assert_eq!((exact.failure, exact.cycles), (None, n));
}

#[test]
fn a_fault_in_the_middle_of_a_block_counts_only_retired_instructions() {
    let mut p = Asm::new();
    // lui+addi, addi: 3 instructions retire, then the store faults.
    p.li(5, 0x100).addi(6, 6, 1).sw(0, 5, 0).addi(6, 6, 1).exit(0);
    let mut vm = vm(&p);
    let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
    assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: 0x100, len: 4 }));
    assert_eq!(outcome.cycles, 3);
    assert_eq!(vm.registers().0, TEXT_BASE + 12, "pc at the faulting store");
    for budget in 0..=5 {
        let outcome = vm.run(&[], &[], &limits(budget)).expect("run");
        if budget <= 3 {
            assert_eq!(outcome.failure, Some(Failure::CycleLimitExceeded), "budget {budget}");
            assert_eq!(outcome.cycles, budget);
        } else {
            assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: 0x100, len: 4 }), "budget {budget}");
            assert_eq!(outcome.cycles, 3, "budget {budget}");
        }
    }
}

#[test]
fn an_ecall_counts_as_one_cycle_and_stops_exactly() {
    let mut p = Asm::new();
    p.exit(0);
    let mut vm = vm(&p);
    assert_eq!(vm.run(&[], &[], &limits(5)).expect("run").failure, None);
    let short = vm.run(&[], &[], &limits(4)).expect("run");
    assert_eq!(short.failure, Some(Failure::CycleLimitExceeded));
    assert_eq!(vm.registers().0, TEXT_BASE + 16, "stopped before the ecall");
}

#[test]
fn precompiles_charge_per_64_byte_block() {
    let mut p = Asm::new();
    p.li(12, 0x1000_0000).li(17, 0x100).ecall().exit(0);
    let mut vm = vm(&p);
    let empty = vm.run(&[], &[], &JobLimits::default()).expect("run");
    let one_block = vm.run(&[0; 64], &[], &JobLimits::default()).expect("run");
    let two_blocks = vm.run(&[0; 65], &[], &JobLimits::default()).expect("run");
    assert_eq!(one_block.cycles, empty.cycles);
    assert_eq!(two_blocks.cycles - one_block.cycles, crate::executor::vm::syscall::HASH_CYCLES_PER_BLOCK);
    // The charge is exact too.
    let n = two_blocks.cycles;
    assert_eq!(vm.run(&[0; 65], &[], &limits(n)).expect("run").failure, None);
    assert_eq!(vm.run(&[0; 65], &[], &limits(n - 1)).expect("run").failure, Some(Failure::CycleLimitExceeded));
}

#[test]
fn a_fetch_after_the_last_cycle_is_the_cycle_limit_not_a_fault() {
    // Found by the fuzzer (fuzz/regressions/vm_diff/fetch-fault-after-the-last-cycle):
    // with the budget spent, the next block's fetch faulted (or touched a
    // fresh page) before its prologue checked the meter.
    for (target, fault) in [
        (0x0000_0100, Failure::MemoryFault { addr: 0x100, len: 4 }),
        (DATA_BASE, Failure::MemoryFault { addr: u64::from(DATA_BASE), len: 4 }),
    ] {
        let mut p = Asm::new();
        p.data(&[0; 16]);
        p.li(5, target).jalr(0, 5, 0);
        let mut vm = vm(&p);
        let outcome = vm.run(&[], &[], &limits(3)).expect("run");
        assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::CycleLimitExceeded), 3), "{target:#x}");
        assert_eq!(vm.registers().0, target, "stopped before the fetch");
        let outcome = vm.run(&[], &[], &limits(4)).expect("run");
        assert_eq!((outcome.failure, outcome.cycles), (Some(fault), 3), "{target:#x}");
    }
    // A fresh page: not counted when no cycle is left to run from it.
    let mut p = Asm::new();
    p.li(5, 0x2000_0000).jalr(0, 5, 0);
    let mut vm = vm(&p);
    let spent = vm.run(&[], &[], &limits(3)).expect("run");
    assert_eq!((spent.failure, spent.peak_memory_bytes), (Some(Failure::CycleLimitExceeded), 4096));
    let tight = JobLimits { max_cycles: 4, max_memory_bytes: 4096, ..JobLimits::default() };
    assert_eq!(vm.run(&[], &[], &tight).expect("run").failure, Some(Failure::MemoryLimitExceeded));
}

#[test]
fn a_precompile_over_the_budget_reads_and_writes_nothing() {
    // Found by the fuzzer (fuzz/regressions/vm_diff/precompile-charged-before-it-runs):
    // the charge was checked after hashing, so a job with a few cycles left
    // made the host hash (and touch) up to its memory limit first.
    let mut p = Asm::new();
    // keccak256(0x2000_0000, 64 KiB, out = 0x3000_0000): 16 + 64 * 1024 cycles.
    p.li(10, 0x2000_0000).li(11, 0x1_0000).li(12, 0x3000_0000).li(17, 0x100).ecall().exit(0);
    let mut vm = vm(&p);
    let full = vm.run(&[], &[], &JobLimits::default()).expect("run");
    assert_eq!((full.failure, full.cycles), (None, 9 + 16 + 64 * 1024 + 5));
    assert_eq!(full.peak_memory_bytes, (1 + 16 + 1) * 4096, "text, the 16 pages hashed, the digest's page");
    let short = vm.run(&[], &[], &limits(9 + 16 + 64 * 1024 - 1)).expect("run");
    assert_eq!((short.failure, short.cycles), (Some(Failure::CycleLimitExceeded), 9 + 16 + 64 * 1024 - 1));
    assert_eq!(short.peak_memory_bytes, 4096, "nothing hashed, nothing written");
    assert_eq!(vm.registers().0, TEXT_BASE + 36, "stopped after the ecall");
}
