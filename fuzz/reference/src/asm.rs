//! Instruction encoders, for tests and program generators.

/// An R-type word.
pub fn r(opcode: u32, rd: u32, funct3: u32, rs1: u32, rs2: u32, funct7: u32) -> u32 {
    funct7 << 25 | (rs2 & 31) << 20 | (rs1 & 31) << 15 | funct3 << 12 | (rd & 31) << 7 | opcode
}

/// An I-type word (the immediate's low 12 bits).
pub fn i(opcode: u32, rd: u32, funct3: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32) & 0xfff) << 20 | (rs1 & 31) << 15 | funct3 << 12 | (rd & 31) << 7 | opcode
}

/// A store.
pub fn s(funct3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5) & 0x7f) << 25 | (rs2 & 31) << 20 | (rs1 & 31) << 15 | funct3 << 12 | (imm & 0x1f) << 7 | 0x23
}

/// A branch (offset in bytes, even).
pub fn b(funct3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 12) & 1) << 31
        | ((imm >> 5) & 0x3f) << 25
        | (rs2 & 31) << 20
        | (rs1 & 31) << 15
        | funct3 << 12
        | ((imm >> 1) & 0xf) << 8
        | ((imm >> 11) & 1) << 7
        | 0x63
}

/// `jal rd, imm` (offset in bytes, even).
pub fn jal(rd: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 20) & 1) << 31
        | ((imm >> 1) & 0x3ff) << 21
        | ((imm >> 11) & 1) << 20
        | ((imm >> 12) & 0xff) << 12
        | (rd & 31) << 7
        | 0x6f
}

/// `jalr rd, imm(rs1)`.
pub fn jalr(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(0x67, rd, 0, rs1, imm)
}

/// `lui rd, value & 0xfffff000`.
pub fn lui(rd: u32, value: u32) -> u32 {
    (value & 0xffff_f000) | (rd & 31) << 7 | 0x37
}

/// `addi rd, rs1, imm`.
pub fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(0x13, rd, 0, rs1, imm)
}

/// `li rd, value`: always two words (lui, addi).
pub fn li(rd: u32, value: u32) -> [u32; 2] {
    let lo = ((value & 0xfff) as i32) << 20 >> 20;
    let hi = value.wrapping_sub(lo as u32);
    [lui(rd, hi), addi(rd, rd, lo)]
}

/// `ecall`.
pub const ECALL: u32 = 0x0000_0073;

/// `li rd, value` on rv64: always eight words. `lui` + `addiw` make the
/// high 32 bits (sign-extended), then three shifts and `ori`s of
/// non-negative 11-, 11- and 10-bit chunks append the low 32 bits.
pub fn li64(rd: u32, value: u64) -> [u32; 8] {
    let hi = (value >> 32) as u32;
    let lo = ((hi & 0xfff) as i32) << 20 >> 20;
    let low = value as u32;
    [
        lui(rd, hi.wrapping_sub(lo as u32)),
        i(0x1b, rd, 0, rd, lo),
        i(0x13, rd, 1, rd, 11),
        i(0x13, rd, 6, rd, (low >> 21) as i32),
        i(0x13, rd, 1, rd, 11),
        i(0x13, rd, 6, rd, ((low >> 10) & 0x7ff) as i32),
        i(0x13, rd, 1, rd, 10),
        i(0x13, rd, 6, rd, (low & 0x3ff) as i32),
    ]
}
