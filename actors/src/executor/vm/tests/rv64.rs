//! rv64im instruction semantics against a Rust model of the spec: every
//! rv64im opcode, the W forms, `mulh*`, the division edge cases and the sign
//! extension of 32-bit results.

use super::asm::{b, i, j, r, s, Asm, DATA_BASE, SCRATCH};
use super::run64;

const VALUES: [u64; 18] = [
    0,
    1,
    2,
    31,
    32,
    63,
    64,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    0x1234_5678_9abc_def0,
    0xfedc_ba98_7654_3210,
    0xffff_ffff_8000_0000,
    0xffff_ffff_ffff_fffe,
];

/// A 32-bit result, sign-extended to 64 bits (what every W form writes).
fn sext(word: u32) -> u64 {
    word as i32 as i64 as u64
}

fn doublewords(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

/// Runs `program`, which saved `slots` doublewords, and returns them.
fn results(mut program: Asm, slots: u32) -> Vec<u64> {
    program.commit_saved64(slots);
    let outcome = run64(&program);
    assert_eq!(outcome.failure, None);
    doublewords(&outcome.output)
}

/// Runs `op` (writing x7 from x5, x6) on every pair of `VALUES`.
fn eval_pairs(op: u32) -> Vec<u64> {
    let mut p = Asm::new();
    let mut slot = 0;
    for a in VALUES {
        for b in VALUES {
            p.li64(5, a).li64(6, b).raw(op).save64(7, slot);
            slot += 1;
        }
    }
    results(p, slot)
}

fn model_pairs(f: impl Fn(u64, u64) -> u64) -> Vec<u64> {
    VALUES.iter().flat_map(|&a| VALUES.iter().map(move |&b| (a, b))).map(|(a, b)| f(a, b)).collect()
}

#[test]
fn li64_builds_every_test_value() {
    let mut p = Asm::new();
    for (slot, value) in VALUES.iter().enumerate() {
        p.li64(5, *value).save64(5, slot as u32);
    }
    assert_eq!(results(p, VALUES.len() as u32), VALUES);
}

fn div(a: u64, b: u64) -> u64 {
    if b == 0 {
        u64::MAX
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

fn rem(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

#[test]
fn register_register_operations_follow_the_spec() {
    type Model = fn(u64, u64) -> u64;
    let cases: [(&str, u32, u32, Model); 18] = [
        ("add", 0, 0x00, |a, b| a.wrapping_add(b)),
        ("sub", 0, 0x20, |a, b| a.wrapping_sub(b)),
        ("sll", 1, 0x00, |a, b| a << (b & 63)),
        ("slt", 2, 0x00, |a, b| u64::from((a as i64) < (b as i64))),
        ("sltu", 3, 0x00, |a, b| u64::from(a < b)),
        ("xor", 4, 0x00, |a, b| a ^ b),
        ("srl", 5, 0x00, |a, b| a >> (b & 63)),
        ("sra", 5, 0x20, |a, b| ((a as i64) >> (b & 63)) as u64),
        ("or", 6, 0x00, |a, b| a | b),
        ("and", 7, 0x00, |a, b| a & b),
        ("mul", 0, 0x01, |a, b| a.wrapping_mul(b)),
        ("mulh", 1, 0x01, |a, b| ((i128::from(a as i64) * i128::from(b as i64)) >> 64) as u64),
        ("mulhsu", 2, 0x01, |a, b| ((i128::from(a as i64) * i128::from(b)) >> 64) as u64),
        ("mulhu", 3, 0x01, |a, b| ((u128::from(a) * u128::from(b)) >> 64) as u64),
        ("div", 4, 0x01, div),
        ("divu", 5, 0x01, |a, b| a.checked_div(b).unwrap_or(u64::MAX)),
        ("rem", 6, 0x01, rem),
        ("remu", 7, 0x01, |a, b| if b == 0 { a } else { a % b }),
    ];
    for (name, f3, f7, model) in cases {
        assert_eq!(eval_pairs(r(0x33, 7, f3, 5, 6, f7)), model_pairs(model), "{name}");
    }
}

#[test]
fn word_operations_compute_in_32_bits_and_sign_extend() {
    type Model = fn(u32, u32) -> u32;
    let cases: [(&str, u32, u32, Model); 10] = [
        ("addw", 0, 0x00, |a, b| a.wrapping_add(b)),
        ("subw", 0, 0x20, |a, b| a.wrapping_sub(b)),
        ("sllw", 1, 0x00, |a, b| a << (b & 31)),
        ("srlw", 5, 0x00, |a, b| a >> (b & 31)),
        ("sraw", 5, 0x20, |a, b| ((a as i32) >> (b & 31)) as u32),
        ("mulw", 0, 0x01, |a, b| a.wrapping_mul(b)),
        ("divw", 4, 0x01, |a, b| if b == 0 { u32::MAX } else { (a as i32).wrapping_div(b as i32) as u32 }),
        ("divuw", 5, 0x01, |a, b| a.checked_div(b).unwrap_or(u32::MAX)),
        ("remw", 6, 0x01, |a, b| if b == 0 { a } else { (a as i32).wrapping_rem(b as i32) as u32 }),
        ("remuw", 7, 0x01, |a, b| if b == 0 { a } else { a % b }),
    ];
    for (name, f3, f7, model) in cases {
        // Only the low 32 bits of each operand count.
        let expected = model_pairs(|a, b| sext(model(a as u32, b as u32)));
        assert_eq!(eval_pairs(r(0x3b, 7, f3, 5, 6, f7)), expected, "{name}");
    }
}

#[test]
fn division_by_zero_and_overflow_are_as_the_spec_defines() {
    let min64 = i64::MIN as u64;
    let min32 = sext(0x8000_0000);
    let minus1 = u64::MAX;
    // (name, opcode, f3, a, b, expected)
    let cases = [
        ("div by 0", 0x33, 4, 7, 0, u64::MAX),
        ("divu by 0", 0x33, 5, 7, 0, u64::MAX),
        ("rem by 0", 0x33, 6, 7, 0, 7),
        ("remu by 0", 0x33, 7, min64, 0, min64),
        ("div MIN / -1", 0x33, 4, min64, minus1, min64),
        ("rem MIN % -1", 0x33, 6, min64, minus1, 0),
        ("divw by 0", 0x3b, 4, 7, 0x1_0000_0000, u64::MAX),
        ("divuw by 0", 0x3b, 5, 7, 0, u64::MAX),
        ("remw by 0", 0x3b, 6, 0x1_8000_0000, 0, min32),
        ("remuw by 0", 0x3b, 7, 0xffff_ffff, 0, u64::MAX),
        ("divw MIN / -1", 0x3b, 4, min32, minus1, min32),
        ("remw MIN % -1", 0x3b, 6, min32, minus1, 0),
        ("divw MIN / -1, high bits set", 0x3b, 4, 0x1234_5678_8000_0000, 0xffff_ffff, min32),
    ];
    let mut p = Asm::new();
    for (slot, (_, opcode, f3, a, b, _)) in cases.iter().enumerate() {
        p.li64(5, *a).li64(6, *b).raw(r(*opcode, 7, *f3, 5, 6, 1)).save64(7, slot as u32);
    }
    let got = results(p, cases.len() as u32);
    for ((name, .., expected), got) in cases.iter().zip(got) {
        assert_eq!(got, *expected, "{name}");
    }
}

const IMMEDIATES: [i32; 9] = [0, 1, -1, 5, 31, 63, 2047, -2048, -1234];

/// Runs `op(imm)` (writing x7 from x5) on every value for every immediate.
fn eval_imm(op: impl Fn(i32) -> u32, imms: &[i32]) -> Vec<u64> {
    let mut p = Asm::new();
    let mut slot = 0;
    for a in VALUES {
        for &imm in imms {
            p.li64(5, a).raw(op(imm)).save64(7, slot);
            slot += 1;
        }
    }
    results(p, slot)
}

fn model_imm(f: impl Fn(u64, i32) -> u64, imms: &[i32]) -> Vec<u64> {
    VALUES.iter().flat_map(|&a| imms.iter().map(move |&imm| (a, imm))).map(|(a, imm)| f(a, imm)).collect()
}

#[test]
fn register_immediate_operations_follow_the_spec() {
    type Model = fn(u64, i32) -> u64;
    let cases: [(&str, u32, u32, Model); 7] = [
        ("addi", 0x13, 0, |a, imm| a.wrapping_add(imm as i64 as u64)),
        ("slti", 0x13, 2, |a, imm| u64::from((a as i64) < i64::from(imm))),
        ("sltiu", 0x13, 3, |a, imm| u64::from(a < imm as i64 as u64)),
        ("xori", 0x13, 4, |a, imm| a ^ imm as i64 as u64),
        ("ori", 0x13, 6, |a, imm| a | imm as i64 as u64),
        ("andi", 0x13, 7, |a, imm| a & imm as i64 as u64),
        ("addiw", 0x1b, 0, |a, imm| sext((a as u32).wrapping_add(imm as u32))),
    ];
    for (name, opcode, f3, model) in cases {
        assert_eq!(eval_imm(|imm| i(opcode, 7, f3, 5, imm), &IMMEDIATES), model_imm(model, &IMMEDIATES), "{name}");
    }
}

#[test]
fn shifts_by_immediate_take_six_bits_and_the_w_forms_five() {
    let shamts = [0, 1, 31, 32, 33, 63];
    type Model = fn(u64, i32) -> u64;
    let cases: [(&str, u32, u32, i32, Model); 3] = [
        ("slli", 0x13, 1, 0, |a, sh| a << sh),
        ("srli", 0x13, 5, 0, |a, sh| a >> sh),
        ("srai", 0x13, 5, 0x400, |a, sh| ((a as i64) >> sh) as u64),
    ];
    for (name, opcode, f3, high, model) in cases {
        let got = eval_imm(|sh| i(opcode, 7, f3, 5, high | sh), &shamts);
        assert_eq!(got, model_imm(model, &shamts), "{name}");
    }
    let shamts = [0, 1, 15, 31];
    let cases: [(&str, u32, i32, Model); 3] = [
        ("slliw", 1, 0, |a, sh| sext((a as u32) << sh)),
        ("srliw", 5, 0, |a, sh| sext((a as u32) >> sh)),
        ("sraiw", 5, 0x400, |a, sh| sext(((a as i32) >> sh) as u32)),
    ];
    for (name, f3, high, model) in cases {
        let got = eval_imm(|sh| i(0x1b, 7, f3, 5, high | sh), &shamts);
        assert_eq!(got, model_imm(model, &shamts), "{name}");
    }
}

#[test]
fn lui_and_auipc_sign_extend_their_32_bit_result() {
    let mut p = Asm::new();
    let mut expected = Vec::new();
    for (slot, imm20) in [0x0_0001u32, 0x7_ffff, 0x8_0000, 0xf_ffff].into_iter().enumerate() {
        p.raw(imm20 << 12 | 7 << 7 | 0x37).save64(7, 2 * slot as u32);
        expected.push(sext(imm20 << 12));
        let pc = u64::from(p.pc());
        p.raw(imm20 << 12 | 7 << 7 | 0x17).save64(7, 2 * slot as u32 + 1);
        expected.push(pc.wrapping_add(sext(imm20 << 12)));
    }
    assert_eq!(results(p, 8), expected);
}

/// The data segment the load tests read: bytes with the sign bit set and clear.
const DATA: [u8; 16] = [0x81, 0x02, 0x83, 0x84, 0x05, 0x86, 0x07, 0xf8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x08];

#[test]
fn loads_sign_or_zero_extend_to_64_bits() {
    let le = |at: usize, n: usize| DATA[at..at + n].iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    let signed = |at: usize, n: usize| {
        let bits = 64 - 8 * n as u32;
        ((le(at, n) << bits) as i64 >> bits) as u64
    };
    // (name, f3, width, signed)
    let cases = [
        ("lb", 0, 1, true),
        ("lh", 1, 2, true),
        ("lw", 2, 4, true),
        ("ld", 3, 8, true),
        ("lbu", 4, 1, false),
        ("lhu", 5, 2, false),
        ("lwu", 6, 4, false),
    ];
    let mut p = Asm::new();
    p.data(&DATA);
    p.li(5, DATA_BASE);
    let mut expected = Vec::new();
    let mut slot = 0;
    for (_, f3, width, is_signed) in cases {
        for at in (0..=16 - width).step_by(width) {
            p.raw(i(0x03, 7, f3, 5, at as i32)).save64(7, slot);
            slot += 1;
            expected.push(if is_signed { signed(at, width) } else { le(at, width) });
        }
    }
    assert_eq!(results(p, slot), expected);
}

#[test]
fn stores_write_the_low_bytes_of_a_64_bit_register() {
    let value = 0x8877_6655_4433_2211u64;
    let mut p = Asm::new();
    p.li64(5, value).li(6, SCRATCH + 0x800);
    // sd at +0, sw at +8, sh at +16, sb at +24, over a doubleword of ones each.
    p.li64(7, u64::MAX);
    for at in [8, 16, 24] {
        p.sd(7, 6, at);
    }
    for (f3, at) in [(3, 0), (2, 8), (1, 16), (0, 24)] {
        p.raw(s(f3, 6, 5, at));
    }
    for (slot, at) in [0, 8, 16, 24].into_iter().enumerate() {
        p.ld(7, 6, at).save64(7, slot as u32);
    }
    let expected = [value, 0xffff_ffff_4433_2211, 0xffff_ffff_ffff_2211, 0xffff_ffff_ffff_ff11];
    assert_eq!(results(p, 4), expected);
}

#[test]
fn branches_compare_all_64_bits() {
    type Model = fn(u64, u64) -> bool;
    let cases: [(&str, u32, Model); 6] = [
        ("beq", 0, |a, b| a == b),
        ("bne", 1, |a, b| a != b),
        ("blt", 4, |a, b| (a as i64) < (b as i64)),
        ("bge", 5, |a, b| (a as i64) >= (b as i64)),
        ("bltu", 6, |a, b| a < b),
        ("bgeu", 7, |a, b| a >= b),
    ];
    for (name, f3, model) in cases {
        // x7 = 0 if taken (the addi is skipped), 1 if not.
        let op_then = |p: &mut Asm| {
            p.addi(7, 0, 0).raw(b(f3, 5, 6, 8)).addi(7, 0, 1);
        };
        let mut p = Asm::new();
        let mut slot = 0;
        for a in VALUES {
            for bv in VALUES {
                p.li64(5, a).li64(6, bv);
                op_then(&mut p);
                p.save64(7, slot);
                slot += 1;
            }
        }
        assert_eq!(results(p, slot), model_pairs(|a, bv| u64::from(!model(a, bv))), "{name}");
    }
}

#[test]
fn jal_and_jalr_link_the_next_pc_and_jalr_clears_bit_0() {
    let mut p = Asm::new();
    let jal_pc = u64::from(p.pc());
    // jal x1, +8 (skips one instruction)
    p.raw(j(1, 8)).addi(9, 0, 1);
    p.save64(1, 0);
    // jalr x1, 1(x5) with x5 = target - 1: lands on the target.
    let target = p.pc() + 2 * 4 + 4 + 4; // after li (2), jalr, the skipped addi
    p.li(5, target - 1);
    let jalr_pc = u64::from(p.pc());
    p.jalr(1, 5, 1).addi(9, 0, 1);
    assert_eq!(p.pc(), target);
    p.save64(1, 1).save64(9, 2);
    assert_eq!(results(p, 3), [jal_pc + 4, jalr_pc + 4, 0]);
}

#[test]
fn fence_is_a_no_op() {
    let mut p = Asm::new();
    p.li64(5, 0x1234_5678_9abc_def0).raw(0x0ff0_000f).save64(5, 0);
    assert_eq!(results(p, 1), [0x1234_5678_9abc_def0]);
}
