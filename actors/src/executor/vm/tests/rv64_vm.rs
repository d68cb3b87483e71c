//! rv64im guests under guest ABI v1: the same window, inputs, syscalls,
//! exact metering and isolation as rv32im, exactly rv64im, and 64-bit
//! registers read whole (an address above 4 GiB is a fault, never an alias).

use super::asm::{b, i, r, Asm, DATA_BASE, SCRATCH, TEXT_BASE};
use super::metering::assert_stops_like_single_stepping;
use super::{limits, run, run64, run64_with, touch_pages, vm64};
use crate::executor::vm::{OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR, STACK_TOP};
use crate::job::{Failure, JobLimits};
use crate::program::Isa;
use unicorn_engine::unicorn_const::Mode;

const TEXT: u64 = TEXT_BASE as u64;

#[test]
fn an_rv64_guest_gets_the_same_registers_and_inputs() {
    let mut p = Asm::new();
    p.save64(10, 0).save64(11, 1).save64(12, 2).save64(13, 3).save64(2, 4);
    p.mv(20, 10).mv(21, 11).mv(22, 12).mv(23, 13);
    p.li(10, 3).mv(11, 20).mv(12, 21).li(17, 64).ecall();
    p.li(10, 3).mv(11, 22).mv(12, 23).li(17, 64).ecall();
    p.write(3, SCRATCH, 40).exit(0);
    let mut vm = vm64(&p);
    assert_eq!(vm.isa(), Isa::Rv64im);
    let outcome = vm.run(b"onchain", b"offchain!", &JobLimits::default()).expect("run");
    assert_eq!(outcome.failure, None);
    let (inputs, regs) = outcome.output.split_at(16);
    assert_eq!(inputs, b"onchainoffchain!");
    let regs: Vec<u64> = regs.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    // Zero-extended: 0x9000_0000 is not the sign-extended 0xffff_ffff_9000_0000.
    let expected = [u64::from(ONCHAIN_INPUT_ADDR), 7, u64::from(OFFCHAIN_INPUT_ADDR), 9, u64::from(STACK_TOP)];
    assert_eq!(regs, expected);
}

#[test]
fn exit_is_exact_in_cycles_as_on_rv32() {
    let mut p = Asm::new();
    p.exit(0);
    let (rv32, rv64) = (run(&p), run64(&p));
    assert_eq!((rv64.failure.clone(), rv64.exit_code, rv64.cycles), (None, Some(0), 5));
    assert_eq!(rv64, rv32);
    let mut p = Asm::new();
    p.exit(3);
    assert_eq!(run64(&p).failure, Some(Failure::GuestExit(3)));
}

#[test]
fn an_exit_code_is_the_low_32_bits_of_a0_as_the_psabi_passes_an_int() {
    for (a0, code) in [(u64::MAX, u32::MAX), (0xffff_ffff_8000_0000, 0x8000_0000), (0x7fff_ffff, 0x7fff_ffff)] {
        let mut p = Asm::new();
        p.li64(10, a0).li(17, 93).ecall();
        let outcome = run64(&p);
        assert_eq!((outcome.failure, outcome.exit_code), (Some(Failure::GuestExit(code)), Some(code)), "{a0:#x}");
    }
}

// --- exact metering -------------------------------------------------------

/// A loop of `iterations` with a 64-bit load and store, then exit 0.
fn counted_loop(iterations: u32) -> Asm {
    let mut p = Asm::new();
    p.data(&[0; 16]);
    p.li(5, iterations).li(6, DATA_BASE);
    // loop: ld x7, 0(x6); addi x7, x7, 3; sd x7, 0(x6); addi x5, x5, -1; bne x5, x0, loop
    p.ld(7, 6, 0).addi(7, 7, 3).sd(7, 6, 0).addi(5, 5, -1).raw(b(1, 5, 0, -16));
    p.exit(0);
    p
}

#[test]
fn a_job_that_needs_n_cycles_succeeds_with_n_and_fails_with_n_minus_1() {
    let program = counted_loop(1000);
    let mut vm = vm64(&program);
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
    let mut vm = vm64(&program);
    let n = vm.run(&[], &[], &JobLimits::default()).expect("run").cycles;
    assert_stops_like_single_stepping(&mut vm, Mode::RISCV64, &program, 0..n);
    for budget in [n, n + 1] {
        let outcome = vm.run(&[], &[], &limits(budget)).expect("run");
        assert_eq!((outcome.failure, outcome.cycles), (None, n), "budget {budget}");
    }
}

#[test]
fn budgets_across_the_16_bit_counter_refill_are_exact() {
    let program = counted_loop(20_000);
    let mut vm = vm64(&program);
    let n = vm.run(&[], &[], &JobLimits::default()).expect("run").cycles;
    assert!(n > 65_535 + 1);
    assert_stops_like_single_stepping(
        &mut vm,
        Mode::RISCV64,
        &program,
        [65_534, 65_535, 65_536, 65_537, 65_538, 99_999, n - 1],
    );
    let exact = vm.run(&[], &[], &limits(n)).expect("run");
    assert_eq!((exact.failure, exact.cycles), (None, n));
}

#[test]
fn a_fault_in_the_middle_of_a_block_counts_only_retired_instructions() {
    let mut p = Asm::new();
    // lui+addi, addi: 3 instructions retire, then the 64-bit store faults.
    p.li(5, 0x100).addi(6, 6, 1).sd(0, 5, 0).addi(6, 6, 1).exit(0);
    let mut vm = vm64(&p);
    let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
    assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::MemoryFault { addr: 0x100, len: 8 }), 3));
    assert_eq!(vm.registers64().0, TEXT + 12, "pc at the faulting store");
    for budget in 0..=5 {
        let outcome = vm.run(&[], &[], &limits(budget)).expect("run");
        let expected = if budget <= 3 {
            (Some(Failure::CycleLimitExceeded), budget)
        } else {
            (Some(Failure::MemoryFault { addr: 0x100, len: 8 }), 3)
        };
        assert_eq!((outcome.failure, outcome.cycles), expected, "budget {budget}");
    }
}

#[test]
fn an_ecall_counts_as_one_cycle_and_stops_exactly() {
    let mut p = Asm::new();
    p.exit(0);
    let mut vm = vm64(&p);
    assert_eq!(vm.run(&[], &[], &limits(5)).expect("run").failure, None);
    let short = vm.run(&[], &[], &limits(4)).expect("run");
    assert_eq!(short.failure, Some(Failure::CycleLimitExceeded));
    assert_eq!(vm.registers64().0, TEXT + 16, "stopped before the ecall");
}

#[test]
fn precompiles_hash_and_charge_as_on_rv32() {
    let mut p = Asm::new();
    p.mv(20, 10).mv(21, 11);
    p.mv(10, 20).mv(11, 21).li(12, SCRATCH).li(17, 0x100).ecall();
    p.mv(10, 20).mv(11, 21).li(12, SCRATCH + 0x20).li(17, 0x101).ecall();
    p.write(3, SCRATCH, 64).exit(0);
    let input = [7u8; 65];
    let rv64 = run64_with(&p, &input, JobLimits::default());
    assert_eq!(rv64.failure, None);
    assert_eq!(rv64, super::run_with(&p, &input, JobLimits::default()), "same output, cycles and memory");
    let n = rv64.cycles;
    assert_eq!(run64_with(&p, &input, limits(n)).failure, None);
    assert_eq!(run64_with(&p, &input, limits(n - 1)).failure, Some(Failure::CycleLimitExceeded));
}

// --- isolation and memory -------------------------------------------------

#[test]
fn job_two_cannot_see_what_job_one_wrote() {
    // Reads a .data doubleword, a fresh heap one and a stack one, writes
    // them to the output, then overwrites all three with a 64-bit secret,
    // and leaves it in registers too.
    let mut p = Asm::new();
    p.data(&0x1111_1111_2222_2222u64.to_le_bytes());
    p.save64(5, 3).save64(6, 4).save64(7, 5).save64(8, 6);
    p.li(5, DATA_BASE).li(6, 0x2000_0000).addi(7, 2, -64);
    p.ld(8, 5, 0).ld(9, 6, 0).ld(18, 7, 0);
    p.save64(8, 0).save64(9, 1).save64(18, 2);
    p.li64(20, 0x5ec2_e75e_c2e7_5ec2).sd(20, 5, 0).sd(20, 6, 0).sd(20, 7, 0);
    p.write(3, SCRATCH, 56);
    p.li64(5, 0x5ec2_e75e_c2e7_5ec2).mv(6, 5).mv(7, 5).mv(8, 5).exit(0);
    let mut vm = vm64(&p);
    let first = vm.run(&[], &[], &JobLimits::default()).expect("run");
    let second = vm.run(&[], &[], &JobLimits::default()).expect("run");
    let expected: Vec<u8> = [0x1111_1111_2222_2222u64, 0, 0, 0, 0, 0, 0].iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(first.output, expected);
    assert_eq!(second, first);
}

#[test]
fn isolation_holds_after_many_pages_were_touched() {
    let mut vm = vm64(&touch_pages());
    let many = vm.run(&200u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(many.failure, None);
    let none = vm.run(&0u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    let again = vm.run(&200u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(none.peak_memory_bytes + 200 * 4096, again.peak_memory_bytes);
    assert_eq!(many, again);
}

#[test]
fn fresh_pages_count_against_the_memory_limit() {
    let base = run64_with(&touch_pages(), &0u32.to_le_bytes(), JobLimits::default());
    let ten = run64_with(&touch_pages(), &10u32.to_le_bytes(), JobLimits::default());
    assert_eq!((base.failure.clone(), ten.failure.clone()), (None, None));
    assert_eq!(ten.peak_memory_bytes - base.peak_memory_bytes, 10 * 4096);
    let limit = JobLimits { max_memory_bytes: ten.peak_memory_bytes, ..JobLimits::default() };
    assert_eq!(run64_with(&touch_pages(), &10u32.to_le_bytes(), limit).failure, None);
    let over = run64_with(&touch_pages(), &11u32.to_le_bytes(), limit);
    assert_eq!(over.failure, Some(Failure::MemoryLimitExceeded));
}

#[test]
fn a_shorter_input_does_not_reveal_the_previous_one() {
    let mut p = Asm::new();
    p.li(12, 8).mv(11, 10).li(10, 3).li(17, 64).ecall().exit(0);
    let mut vm = vm64(&p);
    assert_eq!(vm.run(b"secret!!", &[], &JobLimits::default()).expect("run").output, b"secret!!");
    assert_eq!(vm.run(b"ab", &[], &JobLimits::default()).expect("run").output, b"ab\0\0\0\0\0\0");
}

#[test]
fn stores_into_text_or_an_input_are_memory_faults() {
    let mut p = Asm::new();
    p.li(5, TEXT_BASE).sd(0, 5, 0).exit(0);
    assert_eq!(run64(&p).failure, Some(Failure::MemoryFault { addr: TEXT, len: 8 }));
    let mut p = Asm::new();
    p.sd(0, 10, 0).exit(0);
    assert_eq!(run64(&p).failure, Some(Failure::MemoryFault { addr: u64::from(ONCHAIN_INPUT_ADDR), len: 8 }));
}

// --- 64-bit addresses are never truncated ---------------------------------

/// Addresses that would alias `DATA_BASE` (a readable, writable page) if
/// truncated to 32 bits.
const ALIASES: [u64; 3] = [0x1_0000_0000 | DATA_BASE as u64, 0xffff_ffff_0000_0000 | DATA_BASE as u64, 1 << 63];

#[test]
fn a_load_or_store_above_4_gib_is_a_fault_not_an_alias() {
    // (name, word with base x5, width)
    let cases = [
        ("ld", i(0x03, 7, 3, 5, 0), 8),
        ("lw", i(0x03, 7, 2, 5, 0), 4),
        ("lwu", i(0x03, 7, 6, 5, 0), 4),
        ("lbu", i(0x03, 7, 4, 5, 0), 1),
        ("sd", super::asm::s(3, 5, 6, 0), 8),
        ("sh", super::asm::s(1, 5, 6, 0), 2),
    ];
    for addr in ALIASES {
        for (name, word, len) in cases {
            let mut p = Asm::new();
            p.data(&[1; 8]);
            p.li64(5, addr).raw(word).exit(0);
            let mut vm = vm64(&p);
            let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
            assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr, len }), "{name} at {addr:#x}");
            assert_eq!(outcome.peak_memory_bytes, 2 * 4096, "{name} at {addr:#x}: no page touched");
        }
    }
    // Nor onto an input region's page.
    for addr in [1 << 32 | u64::from(ONCHAIN_INPUT_ADDR), 1 << 32 | u64::from(OFFCHAIN_INPUT_ADDR)] {
        let mut p = Asm::new();
        p.li64(5, addr).raw(i(0x03, 7, 3, 5, 0)).exit(0);
        let outcome = run64_with(&p, &[9; 64], JobLimits::default());
        assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr, len: 8 }), "{addr:#x}");
    }
    // Through a negative offset from above 4 GiB too: 0x1_0100_0008 - 8.
    let mut p = Asm::new();
    p.data(&[1; 8]);
    p.li64(5, ALIASES[0] + 8).raw(i(0x03, 7, 3, 5, -8)).exit(0);
    assert_eq!(run64(&p).failure, Some(Failure::MemoryFault { addr: ALIASES[0], len: 8 }));
}

#[test]
fn a_jump_above_4_gib_is_a_fetch_fault_not_an_alias() {
    for target in [0x1_0000_0000 | TEXT, 0xffff_ffff_0000_0000 | TEXT] {
        let mut p = Asm::new();
        p.li64(5, target).jalr(0, 5, 0);
        let mut vm = vm64(&p);
        let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
        assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: target, len: 4 }), "{target:#x}");
        assert_eq!(vm.registers64().0, target);
    }
}

/// `ecall` with `a7 = number` and whole 64-bit `a0..a2`, then saves a0 and exits 0.
fn syscall64(number: u64, args: [u64; 3]) -> Asm {
    let mut p = Asm::new();
    p.data(b"data");
    p.li64(10, args[0]).li64(11, args[1]).li64(12, args[2]).li64(17, number).ecall();
    p.save64(10, 0).commit_saved64(1);
    p
}

#[test]
fn a_syscall_pointer_above_4_gib_is_a_fault_not_an_alias() {
    for ptr in ALIASES {
        for fd in [1, 2, 3] {
            let outcome = run64(&syscall64(64, [fd, ptr, 4]));
            assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: ptr, len: 4 }), "fd {fd} at {ptr:#x}");
            assert_eq!((outcome.output, outcome.log), (vec![], vec![]), "fd {fd}: nothing read");
        }
        for number in [0x100, 0x101] {
            let outcome = run64(&syscall64(number, [ptr, 4, u64::from(SCRATCH)]));
            assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: ptr, len: 4 }), "{number:#x} input");
            let outcome = run64(&syscall64(number, [u64::from(DATA_BASE), 4, ptr]));
            assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: ptr, len: 32 }), "{number:#x} output");
        }
    }
    // The same calls with the pointer in 32 bits succeed.
    let outcome = run64(&syscall64(64, [3, u64::from(DATA_BASE), 4]));
    assert_eq!((outcome.failure, &outcome.output[..4]), (None, &b"data"[..]));
}

#[test]
fn a_syscall_length_above_4_gib_is_a_fault_not_an_alias() {
    let len = 0x1_0000_0004;
    for fd in [1, 3] {
        let outcome = run64(&syscall64(64, [fd, u64::from(DATA_BASE), len]));
        assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: u64::from(DATA_BASE), len }), "fd {fd}");
    }
    // A discarded descriptor reads nothing, and returns the whole length.
    let outcome = run64(&syscall64(64, [5, u64::from(DATA_BASE), len]));
    assert_eq!((outcome.failure, outcome.output), (None, len.to_le_bytes().to_vec()));
    // A precompile is charged for its whole length first: far over any budget.
    let outcome = run64(&syscall64(0x100, [u64::from(DATA_BASE), len, u64::from(SCRATCH)]));
    assert_eq!(outcome.failure, Some(Failure::CycleLimitExceeded));
    assert_eq!(outcome.peak_memory_bytes, 2 * 4096, "nothing hashed");
}

#[test]
fn a_syscall_number_above_4_gib_is_unsupported_not_an_alias() {
    for number in [0x1_0000_005d, 0xffff_ffff_0000_0040, u64::MAX] {
        let outcome = run64(&syscall64(number, [0, u64::from(DATA_BASE), 4]));
        assert_eq!(outcome.failure, Some(Failure::UnsupportedSyscall(number)), "{number:#x}");
        assert_eq!(outcome.exit_code, None);
    }
}

// --- exactly rv64im -------------------------------------------------------

/// Runs two nops, then `word`, then exit(0), as an rv64im guest.
fn assert_illegal(name: &str, word: u32) {
    let mut p = Asm::new();
    p.addi(0, 0, 0).addi(0, 0, 0).raw(word).exit(0);
    let mut vm = vm64(&p);
    let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
    assert_eq!(outcome.failure, Some(Failure::IllegalInstruction { pc: TEXT + 8 }), "{name} ({word:#010x})");
    assert_eq!(outcome.cycles, 2, "{name}: only the two nops retired");
    assert_eq!(vm.registers64().0, TEXT + 8, "{name}: stopped on the instruction");
}

#[test]
fn compressed_instructions_are_illegal() {
    for (name, half) in [
        ("c.nop", 0x0001),
        ("c.addi", 0x0505),
        ("c.addiw", 0x2505),
        ("c.li", 0x4505),
        ("c.ld", 0x6188),
        ("c.sd", 0xe188),
        ("c.ldsp", 0x6502),
        ("c.j", 0xa001),
        ("c.mv", 0x852e),
        ("c.ebreak", 0x9002),
    ] {
        assert_illegal(name, 0x0001_0000 | half);
    }
}

#[test]
fn atomic_instructions_are_illegal_in_both_widths() {
    let amo = |funct5: u32, f3: u32, rs2: u32| funct5 << 27 | rs2 << 20 | 6 << 15 | f3 << 12 | 5 << 7 | 0x2f;
    for (width, f3) in [("w", 2), ("d", 3)] {
        for (name, funct5, rs2) in [
            ("lr", 0b00010, 0),
            ("sc", 0b00011, 7),
            ("amoswap", 0b00001, 7),
            ("amoadd", 0b00000, 7),
            ("amoxor", 0b00100, 7),
            ("amoand", 0b01100, 7),
            ("amoor", 0b01000, 7),
            ("amomin", 0b10000, 7),
            ("amomax", 0b10100, 7),
            ("amominu", 0b11000, 7),
            ("amomaxu", 0b11100, 7),
        ] {
            assert_illegal(&format!("{name}.{width}"), amo(funct5, f3, rs2));
        }
    }
}

#[test]
fn float_instructions_are_illegal() {
    let r4 = |opcode: u32, fmt: u32| 3 << 27 | fmt << 25 | 2 << 20 | 1 << 15 | 1 << 7 | opcode;
    for (name, word) in [
        ("flw", i(0x07, 1, 2, 5, 0)),
        ("fsw", 1 << 20 | 5 << 15 | 2 << 12 | 0x27),
        ("fld", i(0x07, 1, 3, 5, 0)),
        ("fsd", 1 << 20 | 5 << 15 | 3 << 12 | 0x27),
        ("fadd.s", r(0x53, 1, 0, 2, 3, 0x00)),
        ("fadd.d", r(0x53, 1, 0, 2, 3, 0x01)),
        ("fdiv.d", r(0x53, 1, 0, 2, 3, 0x0d)),
        ("fmv.x.d", r(0x53, 5, 0, 1, 0, 0x71)),
        ("fmv.d.x", r(0x53, 1, 0, 5, 0, 0x79)),
        ("fcvt.l.d", r(0x53, 5, 0, 1, 2, 0x61)),
        ("fcvt.d.l", r(0x53, 1, 0, 5, 2, 0x69)),
        ("fmadd.s", r4(0x43, 0)),
        ("fmadd.d", r4(0x43, 1)),
        ("fnmadd.d", r4(0x4f, 1)),
    ] {
        assert_illegal(name, word);
    }
}

#[test]
fn csr_and_system_instructions_but_ecall_are_illegal() {
    for (name, number) in [("cycle", 0xc00), ("time", 0xc01), ("instret", 0xc02), ("misa", 0x301), ("mhartid", 0xf14)] {
        for (op, f3) in [("csrrw", 1), ("csrrs", 2), ("csrrc", 3), ("csrrwi", 5), ("csrrsi", 6), ("csrrci", 7)] {
            assert_illegal(&format!("{op} {name}"), i(0x73, 5, f3, 6, number));
        }
    }
    // csrr x5, cycle (csrrs x5, cycle, x0)
    assert_illegal("csrr cycle", i(0x73, 5, 2, 0, 0xc00));
    for (name, word) in [
        ("ebreak", 0x0010_0073),
        ("uret", 0x0020_0073),
        ("sret", 0x1020_0073),
        ("mret", 0x3020_0073),
        ("wfi", 0x1050_0073),
        ("sfence.vma", 0x1200_0073),
        ("fence.i", 0x0000_100f),
    ] {
        assert_illegal(name, word);
    }
}

#[test]
fn reserved_rv64_encodings_are_illegal() {
    for (name, word) in [
        // A W shift with shamt[5] set is reserved.
        ("slliw shamt 32", i(0x1b, 5, 1, 6, 0x20)),
        ("srliw shamt 32", i(0x1b, 5, 5, 6, 0x20)),
        ("sraiw shamt 32", i(0x1b, 5, 5, 6, 0x420)),
        // W forms that do not exist.
        ("addiw-space funct3 2", i(0x1b, 5, 2, 6, 0)),
        ("op-32 funct7 2", r(0x3b, 5, 0, 6, 7, 0x02)),
        ("sltw", r(0x3b, 5, 2, 6, 7, 0x00)),
        // No 128-bit loads, no ldu.
        ("ldu", i(0x03, 5, 7, 6, 0)),
        ("sq", super::asm::s(4, 6, 5, 0)),
        ("all zeros", 0x0000_0000),
        ("all ones", 0xffff_ffff),
    ] {
        assert_illegal(name, word);
    }
}

#[test]
fn a_jump_to_a_2_aligned_address_is_a_misaligned_fetch() {
    let mut p = Asm::new();
    p.addi(0, 0, 0).jal(0, 6).exit(0);
    assert_eq!(run64(&p).failure, Some(Failure::MisalignedFetch { pc: TEXT + 4 }));
    let mut p = Asm::new();
    p.raw(b(0, 0, 0, 6)).exit(0);
    assert_eq!(run64(&p).failure, Some(Failure::MisalignedFetch { pc: TEXT }));
}
