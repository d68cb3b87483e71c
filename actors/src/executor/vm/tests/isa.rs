//! The ISA is exactly rv32im: every extension instruction, every CSR access
//! and every SYSTEM instruction other than `ecall` is illegal.

use super::asm::{i, r, Asm, TEXT_BASE};
use super::run;
use crate::job::Failure;

/// Runs two nops, then `word`, then exit(0).
fn run_word(word: u32) -> (Option<Failure>, u64) {
    let mut p = Asm::new();
    p.addi(0, 0, 0).addi(0, 0, 0).raw(word).exit(0);
    let outcome = run(&p);
    (outcome.failure, outcome.cycles)
}

fn assert_illegal(name: &str, word: u32) {
    let (failure, cycles) = run_word(word);
    assert_eq!(failure, Some(Failure::IllegalInstruction { pc: u64::from(TEXT_BASE + 8) }), "{name} ({word:#010x})");
    assert_eq!(cycles, 2, "{name}: only the two nops retired");
}

#[test]
fn a_trap_stops_on_the_trapping_instruction() {
    // Found by the fuzzer (fuzz/regressions/vm_diff/illegal-instruction-stop-pc):
    // the pc at the stop was the instruction after the trap.
    let mut p = Asm::new();
    p.addi(5, 0, 1).raw(0xffff_ffff).exit(0);
    let mut vm = super::vm(&p);
    vm.run(&[], &[], &crate::job::JobLimits::default()).expect("run");
    assert_eq!(vm.registers().0, TEXT_BASE + 4);
    let mut p = Asm::new();
    p.addi(0, 0, 0).jal(1, 6).exit(0);
    let mut vm = super::vm(&p);
    let outcome = vm.run(&[], &[], &crate::job::JobLimits::default()).expect("run");
    assert_eq!(outcome.failure, Some(Failure::MisalignedFetch { pc: u64::from(TEXT_BASE + 4) }));
    assert_eq!((vm.registers().0, vm.registers().1[1]), (TEXT_BASE + 4, 0), "at the jump, ra not written");
}

fn csr(f3: u32, csr: i32) -> u32 {
    i(0x73, 5, f3, 6, csr)
}

#[test]
fn every_csr_instruction_is_illegal() {
    for (name, number) in [
        ("cycle", 0xc00),
        ("time", 0xc01),
        ("instret", 0xc02),
        ("cycleh", 0xc80),
        ("mstatus", 0x300),
        ("misa", 0x301),
        ("mtvec", 0x305),
        ("mscratch", 0x340),
        ("mhartid", 0xf14),
    ] {
        for (op, f3) in [("csrrw", 1), ("csrrs", 2), ("csrrc", 3), ("csrrwi", 5), ("csrrsi", 6), ("csrrci", 7)] {
            assert_illegal(&format!("{op} {name}"), csr(f3, number));
        }
    }
}

#[test]
fn every_system_instruction_but_ecall_is_illegal() {
    for (name, word) in [
        ("ebreak", 0x0010_0073),
        ("uret", 0x0020_0073),
        ("sret", 0x1020_0073),
        ("mret", 0x3020_0073),
        ("wfi", 0x1050_0073),
        ("sfence.vma", 0x1200_0073),
        ("hfence.gvma", 0x6200_0073),
    ] {
        assert_illegal(name, word);
    }
}

#[test]
fn fence_i_is_illegal_and_fence_is_a_no_op() {
    assert_illegal("fence.i", 0x0000_100f);
    assert_eq!(run_word(0x0ff0_000f), (None, 2 + 1 + 5));
}

fn amo(funct5: u32, rs2: u32) -> u32 {
    funct5 << 27 | rs2 << 20 | 6 << 15 | 2 << 12 | 5 << 7 | 0x2f
}

#[test]
fn every_atomic_instruction_is_illegal() {
    for (name, funct5, rs2) in [
        ("lr.w", 0b00010, 0),
        ("sc.w", 0b00011, 7),
        ("amoswap.w", 0b00001, 7),
        ("amoadd.w", 0b00000, 7),
        ("amoxor.w", 0b00100, 7),
        ("amoand.w", 0b01100, 7),
        ("amoor.w", 0b01000, 7),
        ("amomin.w", 0b10000, 7),
        ("amomax.w", 0b10100, 7),
        ("amominu.w", 0b11000, 7),
        ("amomaxu.w", 0b11100, 7),
    ] {
        assert_illegal(name, amo(funct5, rs2));
    }
}

#[test]
fn every_float_instruction_is_illegal() {
    let r4 = |opcode: u32, fmt: u32| 3 << 27 | fmt << 25 | 2 << 20 | 1 << 15 | 1 << 7 | opcode;
    for (name, word) in [
        ("flw", i(0x07, 1, 2, 5, 0)),
        ("fsw", 1 << 20 | 5 << 15 | 2 << 12 | 0x27),
        ("fadd.s", r(0x53, 1, 0, 2, 3, 0x00)),
        ("fsub.s", r(0x53, 1, 0, 2, 3, 0x04)),
        ("fmul.s", r(0x53, 1, 0, 2, 3, 0x08)),
        ("fdiv.s", r(0x53, 1, 0, 2, 3, 0x0c)),
        ("fsqrt.s", r(0x53, 1, 0, 2, 0, 0x2c)),
        ("fmv.x.w", r(0x53, 5, 0, 1, 0, 0x70)),
        ("fmv.w.x", r(0x53, 1, 0, 5, 0, 0x78)),
        ("fcvt.s.w", r(0x53, 1, 0, 5, 0, 0x68)),
        ("fcvt.w.s", r(0x53, 5, 0, 1, 0, 0x60)),
        ("feq.s", r(0x53, 5, 2, 1, 2, 0x50)),
        ("fmadd.s", r4(0x43, 0)),
        ("fmsub.s", r4(0x47, 0)),
        ("fnmsub.s", r4(0x4b, 0)),
        ("fnmadd.s", r4(0x4f, 0)),
        ("fld", i(0x07, 1, 3, 5, 0)),
        ("fsd", 1 << 20 | 5 << 15 | 3 << 12 | 0x27),
        ("fadd.d", r(0x53, 1, 0, 2, 3, 0x01)),
        ("fmadd.d", r4(0x43, 1)),
        ("fcvt.d.s", r(0x53, 1, 0, 2, 0, 0x21)),
    ] {
        assert_illegal(name, word);
    }
}

#[test]
fn every_compressed_instruction_is_illegal() {
    // A 16-bit instruction in the low half of the word, c.nop above it.
    for (name, half) in [
        ("c.nop", 0x0001),
        ("c.addi", 0x0505),
        ("c.li", 0x4505),
        ("c.lw", 0x4188),
        ("c.sw", 0xc188),
        ("c.j", 0xa001),
        ("c.mv", 0x852e),
        ("c.ebreak", 0x9002),
    ] {
        assert_illegal(name, 0x0001_0000 | half);
    }
}

#[test]
fn all_zero_and_all_one_words_are_illegal() {
    assert_illegal("all zeros", 0x0000_0000);
    assert_illegal("all ones", 0xffff_ffff);
}

#[test]
fn a_jump_to_a_2_aligned_address_is_a_misaligned_fetch() {
    let mut p = Asm::new();
    // jal x0, +6: the target is 2-aligned only.
    p.addi(0, 0, 0).jal(0, 6).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MisalignedFetch { pc: u64::from(TEXT_BASE + 4) }));

    let mut p = Asm::new();
    let target = p.pc() + 4 * 8 + 2;
    p.li(5, target).jalr(0, 5, 0).exit(0).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MisalignedFetch { pc: u64::from(TEXT_BASE + 8) }));

    let mut p = Asm::new();
    // beq x0, x0, +6
    p.raw(super::asm::b(0, 0, 0, 6)).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MisalignedFetch { pc: u64::from(TEXT_BASE) }));
}

#[test]
fn a_compressed_word_starting_a_block_at_a_page_start_is_illegal() {
    // Found by the fuzzer (fuzz/regressions/vm_diff/compressed-word-at-a-page-start):
    // the translator left a 16-bit parcel's length unset, so a block starting
    // with one had size 0 and its "last page" was the page before it: a fetch
    // fault there (0xf000 is outside the window) instead of the illegal
    // instruction. Unicorn patch 8.
    for half in [0x0001, 0x9002, 0xdc6a] {
        let mut p = Asm::new();
        p.raw(half).exit(0);
        let outcome = run(&p);
        assert_eq!(outcome.failure, Some(Failure::IllegalInstruction { pc: u64::from(TEXT_BASE) }), "{half:#06x}");
        assert_eq!((outcome.cycles, outcome.peak_memory_bytes), (0, 4096), "{half:#06x}");
    }
}
