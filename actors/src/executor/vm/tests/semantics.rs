//! rv32im instruction semantics against a Rust model of the spec.

use super::asm::{b, i, j, r, s, Asm, DATA_BASE, TEXT_BASE};
use super::run;

const VALUES: [u32; 10] = [0, 1, 2, 31, 32, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1234_5678, 0xfedc_ba98];

/// Runs `op` (writing x7 from x5, x6) on every pair of `VALUES`; returns the results.
fn eval_pairs(op: u32) -> Vec<u32> {
    let mut p = Asm::new();
    let mut slot = 0;
    for a in VALUES {
        for b in VALUES {
            p.li(5, a).li(6, b).raw(op).save(7, slot);
            slot += 1;
        }
    }
    p.commit_saved(slot);
    words(&run(&p).output)
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn model_pairs(f: impl Fn(u32, u32) -> u32) -> Vec<u32> {
    VALUES.iter().flat_map(|&a| VALUES.iter().map(move |&b| (a, b))).map(|(a, b)| f(a, b)).collect()
}

fn div(a: u32, b: u32) -> u32 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        u32::MAX
    } else {
        a.wrapping_div(b) as u32
    }
}

fn rem(a: u32, b: u32) -> u32 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        a as u32
    } else {
        a.wrapping_rem(b) as u32
    }
}

#[test]
fn register_register_operations_follow_the_spec() {
    type Model = fn(u32, u32) -> u32;
    let cases: [(&str, u32, u32, Model); 18] = [
        ("add", 0, 0x00, |a, b| a.wrapping_add(b)),
        ("sub", 0, 0x20, |a, b| a.wrapping_sub(b)),
        ("sll", 1, 0x00, |a, b| a << (b & 31)),
        ("slt", 2, 0x00, |a, b| ((a as i32) < (b as i32)) as u32),
        ("sltu", 3, 0x00, |a, b| (a < b) as u32),
        ("xor", 4, 0x00, |a, b| a ^ b),
        ("srl", 5, 0x00, |a, b| a >> (b & 31)),
        ("sra", 5, 0x20, |a, b| ((a as i32) >> (b & 31)) as u32),
        ("or", 6, 0x00, |a, b| a | b),
        ("and", 7, 0x00, |a, b| a & b),
        ("mul", 0, 0x01, |a, b| a.wrapping_mul(b)),
        ("mulh", 1, 0x01, |a, b| ((i64::from(a as i32) * i64::from(b as i32)) >> 32) as u32),
        ("mulhsu", 2, 0x01, |a, b| ((i64::from(a as i32) * i64::from(b)) >> 32) as u32),
        ("mulhu", 3, 0x01, |a, b| ((u64::from(a) * u64::from(b)) >> 32) as u32),
        ("div", 4, 0x01, div),
        ("divu", 5, 0x01, |a, b| a.checked_div(b).unwrap_or(u32::MAX)),
        ("rem", 6, 0x01, rem),
        ("remu", 7, 0x01, |a, b| if b == 0 { a } else { a % b }),
    ];
    for (name, f3, f7, model) in cases {
        assert_eq!(eval_pairs(r(0x33, 7, f3, 5, 6, f7)), model_pairs(model), "{name}");
    }
}

#[test]
fn division_by_zero_and_overflow_are_as_the_spec_defines() {
    // (f3, a, b, expected): div, divu, rem, remu by zero; div and rem of MIN by -1.
    let cases = [
        (4, 7, 0, u32::MAX),
        (5, 7, 0, u32::MAX),
        (6, 7, 0, 7),
        (7, 7, 0, 7),
        (4, 0x8000_0000, u32::MAX, 0x8000_0000),
        (6, 0x8000_0000, u32::MAX, 0),
    ];
    let mut p = Asm::new();
    for (slot, (f3, a, b, _)) in cases.iter().enumerate() {
        p.li(5, *a).li(6, *b).raw(r(0x33, 7, *f3, 5, 6, 0x01)).save(7, slot as u32);
    }
    p.commit_saved(cases.len() as u32);
    let expected: Vec<u32> = cases.iter().map(|case| case.3).collect();
    assert_eq!(words(&run(&p).output), expected);
}

#[test]
fn register_immediate_operations_sign_extend_their_immediate() {
    let imms: [i32; 6] = [0, 1, -1, 2047, -2048, 0x555];
    type Model = fn(u32, i32) -> u32;
    let cases: [(&str, u32, Model); 6] = [
        ("addi", 0, |a, imm| a.wrapping_add(imm as u32)),
        ("slti", 2, |a, imm| ((a as i32) < imm) as u32),
        ("sltiu", 3, |a, imm| (a < imm as u32) as u32),
        ("xori", 4, |a, imm| a ^ imm as u32),
        ("ori", 6, |a, imm| a | imm as u32),
        ("andi", 7, |a, imm| a & imm as u32),
    ];
    for (name, f3, model) in cases {
        let mut p = Asm::new();
        let mut expected = Vec::new();
        for (slot, (a, imm)) in VALUES.iter().flat_map(|&a| imms.iter().map(move |&imm| (a, imm))).enumerate() {
            p.li(5, a).raw(i(0x13, 7, f3, 5, imm)).save(7, slot as u32);
            expected.push(model(a, imm));
        }
        p.commit_saved(expected.len() as u32);
        assert_eq!(words(&run(&p).output), expected, "{name}");
    }
}

#[test]
fn shifts_by_immediate() {
    let mut p = Asm::new();
    let mut expected = Vec::new();
    let mut slot = 0;
    for a in VALUES {
        for shamt in [0u32, 1, 15, 31] {
            for (f3, f7, model) in
                [(1, 0x00, a << shamt), (5, 0x00, a >> shamt), (5, 0x20, ((a as i32) >> shamt) as u32)]
            {
                p.li(5, a).raw(r(0x13, 7, f3, 5, shamt, f7)).save(7, slot);
                expected.push(model);
                slot += 1;
            }
        }
    }
    p.commit_saved(slot);
    assert_eq!(words(&run(&p).output), expected);
}

#[test]
fn lui_auipc_jal_and_jalr_compute_addresses() {
    let mut p = Asm::new();
    p.raw(0xfedc_b000 | 7 << 7 | 0x37).save(7, 0); // lui x7, 0xfedcb
    let auipc_pc = p.pc();
    p.raw(0x0000_1000 | 7 << 7 | 0x17).save(7, 1); // auipc x7, 1
    let jal_pc = p.pc();
    p.raw(j(7, 8)).raw(0xffff_ffff).save(7, 2); // jal x7, +8 (skips an illegal word)
    p.li(5, 0);
    let jalr_pc = p.pc();
    // jalr x7, 11(x6) where x6 = target - 11; the low bit of the sum is cleared.
    let target = jalr_pc + 4 * 4;
    p.li(6, target - 11 + 1 - 1).raw(i(0x67, 7, 0, 6, 12)).raw(0xffff_ffff).save(7, 3);
    p.commit_saved(4);
    let out = words(&run(&p).output);
    assert_eq!(out, vec![0xfedc_b000, auipc_pc + 0x1000, jal_pc + 4, jalr_pc + 2 * 4 + 4]);
}

#[test]
fn branches_compare_signed_and_unsigned() {
    type Model = fn(u32, u32) -> bool;
    let cases: [(&str, u32, Model); 6] = [
        ("beq", 0, |a, b| a == b),
        ("bne", 1, |a, b| a != b),
        ("blt", 4, |a, b| (a as i32) < (b as i32)),
        ("bge", 5, |a, b| (a as i32) >= (b as i32)),
        ("bltu", 6, |a, b| a < b),
        ("bgeu", 7, |a, b| a >= b),
    ];
    for (name, f3, model) in cases {
        let mut p = Asm::new();
        let mut slot = 0;
        for a in VALUES {
            for bv in VALUES {
                // x7 = 0; bXX x5, x6, +8 (to x7 = 1); jal x0, +8 (over it); x7 = 1
                p.li(5, a).li(6, bv).addi(7, 0, 0).raw(b(f3, 5, 6, 8)).raw(j(0, 8)).addi(7, 0, 1).save(7, slot);
                slot += 1;
            }
        }
        p.commit_saved(slot);
        let expected = model_pairs(|a, b| model(a, b) as u32);
        assert_eq!(words(&run(&p).output), expected, "{name}");
    }
}

#[test]
fn loads_sign_or_zero_extend_and_may_be_misaligned() {
    let data: Vec<u8> = vec![0x80, 0xff, 0x7f, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd];
    let mut p = Asm::new();
    p.data(&data);
    let mut expected = Vec::new();
    let mut slot = 0;
    for offset in 0..6u32 {
        for (f3, width, signed) in [(0, 1, true), (1, 2, true), (2, 4, true), (4, 1, false), (5, 2, false)] {
            p.li(5, DATA_BASE + offset).raw(i(0x03, 7, f3, 5, 0)).save(7, slot);
            let mut raw = 0u32;
            for k in 0..width {
                raw |= u32::from(data[(offset + k) as usize]) << (8 * k);
            }
            let value = if signed && width < 4 {
                let shift = 32 - 8 * width;
                (((raw << shift) as i32) >> shift) as u32
            } else {
                raw
            };
            expected.push(value);
            slot += 1;
        }
    }
    p.commit_saved(slot);
    assert_eq!(words(&run(&p).output), expected);
}

#[test]
fn stores_write_little_endian_bytes_at_any_alignment() {
    let mut p = Asm::new();
    p.data(&[0; 16]);
    p.li(6, 0x1122_3344);
    p.li(5, DATA_BASE + 1).raw(s(2, 5, 6, 0)); // sw at +1
    p.li(5, DATA_BASE + 7).raw(s(1, 5, 6, 0)); // sh at +7
    p.li(5, DATA_BASE + 10).raw(s(0, 5, 6, 0)); // sb at +10
    p.write(3, DATA_BASE, 12).exit(0);
    assert_eq!(run(&p).output, vec![0, 0x44, 0x33, 0x22, 0x11, 0, 0, 0x44, 0x33, 0, 0x44, 0]);
}

#[test]
fn a_misaligned_access_across_a_page_boundary_works() {
    let mut p = Asm::new();
    p.li(5, 0x1000_0ffe).li(6, 0xaabb_ccdd).raw(s(2, 5, 6, 0)).raw(i(0x03, 7, 2, 5, 0)).save(7, 0).commit_saved(1);
    assert_eq!(words(&run(&p).output), vec![0xaabb_ccdd]);
    let _ = TEXT_BASE;
}
