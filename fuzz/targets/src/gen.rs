//! Program generators for `vm_diff`: a layout (segments anywhere in the
//! window, text R+X or X only, data R+W or R only, a page shared by text
//! and read-only data, segments ending at the window's top), then code:
//! random rv32im words, or structured programs (loops with counters, loads
//! and stores across page boundaries, at the window's edges and into the
//! inputs, ecalls with random numbers and arguments, illegal words,
//! misaligned jumps, jumps into data), then the jobs' inputs and budgets.
//!
//! The first byte chooses the ISA: even for rv32im, odd for rv64im. An
//! rv64im program is generated the same way, with 64-bit structure on top:
//! the W forms, `ld`/`sd`/`lwu`, 6-bit shift amounts, 64-bit values
//! (`li64`) for the multiplies and divides, addresses with high bits set
//! (above 4 GiB: they must fault, never alias the low 4 GiB), and syscall
//! numbers, descriptors, pointers and lengths with high bits set. An rv32im
//! program reads exactly the bytes it read before rv64im existed, so older
//! inputs keep their meaning behind a zero first byte.

use crate::source::Source;
use rv32im_reference::asm::{addi, b, i, jal, jalr, li, li64, lui, r, s, ECALL};
use rv32im_reference::{
    input_capacity, Limits, Perms, Program, Segment, Xlen, GUEST_WINDOW_END, OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR,
    PAGE_SIZE, STACK_TOP,
};

/// A program and the input limit its VM is built with.
#[derive(Debug, Clone)]
pub struct Case {
    /// The program.
    pub program: Program,
    /// Sizes the input regions.
    pub max_input_bytes: usize,
}

/// Where the generated program lives.
#[derive(Debug, Clone, Copy)]
struct Layout {
    xlen: Xlen,
    text: u32,
    /// Instruction words in the text segment.
    words: u32,
    data: Option<(u32, u32)>,
    capacity: u32,
}

const RX: Perms = Perms { read: true, write: false, exec: true };
const X: Perms = Perms { read: false, write: false, exec: true };
const RW: Perms = Perms { read: true, write: true, exec: false };
const R: Perms = Perms { read: true, write: false, exec: false };

/// Words that are not rv32im (or are SYSTEM/CSR instructions other than ecall).
const ILLEGAL: [u32; 16] = [
    0x0000_0000, // all zeros
    0xffff_ffff, // all ones
    0x0000_4501, // c.li
    0x0000_100f, // fence.i
    0x0010_0073, // ebreak
    0x3020_0073, // mret
    0x1050_0073, // wfi
    0xc000_2373, // csrr cycle
    0xc010_2373, // csrr time
    0x3000_1073, // csrw mstatus
    0x1000_202f, // lr.w
    0x0062_a2af, // amoadd.w
    0x0031_00d3, // fadd.s
    0x0002_a007, // flw
    0x0000_3283, // ld (rv64)
    0x0200_1093, // slli with shamt 32
];

/// Words that are not rv64im: the rv32im list's, less `ld` and a 6-bit
/// `slli` (rv64im has them), plus reserved rv64 encodings.
const ILLEGAL64: [u32; 16] = [
    0x0000_0000, // all zeros
    0xffff_ffff, // all ones
    0x0000_2505, // c.addiw
    0x0000_100f, // fence.i
    0x0010_0073, // ebreak
    0xc000_2373, // csrr cycle
    0x1000_302f, // lr.d
    0x0062_b2af, // amoadd.d
    0x0031_00d3, // fadd.s
    0x0002_b007, // fld
    0x0203_129b, // slliw with shamt 32
    0x0203_529b, // srliw with shamt 32
    0x0003_7283, // ldu (load funct3 7)
    0x0053_4023, // sq (store funct3 4)
    0x0473_02bb, // op-32 with funct7 2
    0x0073_22bb, // sltw (op-32 funct3 2)
];

/// Registers generated code uses: a few temporaries, sp, ra, the syscall
/// registers, and any register now and then.
fn reg(src: &mut Source<'_>) -> u32 {
    if src.one_in(8) {
        src.below(32)
    } else {
        src.pick(&[1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 18, 19])
    }
}

/// Generates a program (its ISA, its layout, then its code) and the input limit.
pub fn case(src: &mut Source<'_>) -> Case {
    let xlen = if src.u8() & 1 == 1 { Xlen::Rv64 } else { Xlen::Rv32 };
    let max_input_bytes = src.pick(&[0, 1, 64, 4095, 4096, 5000, 1 << 16]);
    let capacity = input_capacity(max_input_bytes) as u32;
    let most = if src.one_in(4) { 2048 } else { 96 };
    let words = 8 + src.below(most);
    let text = match src.below(8) {
        0 => 0x0001_0000 + 4 * src.below(2048),
        1 => GUEST_WINDOW_END - 4 * words,
        2 => 0x0001_0000 + (src.below(0x4000) << 12),
        _ => 0x0001_0000,
    };
    let text_end = text + 4 * words;
    let text_perms = if src.one_in(5) { X } else { RX };
    let data = if src.one_in(4) {
        None
    } else {
        let file = if src.one_in(3) { 4 * src.below(64) } else { src.below(300) };
        let mem = file + src.pick(&[0, 0, 1, 4096, 8192 + 17]);
        let (base, perms) = match src.below(6) {
            // Read-only data on the text's last page.
            0 => (text_end + 4 * src.below(4), R),
            // The next page after the text.
            1 => ((text_end + PAGE_SIZE - 1) & !(PAGE_SIZE - 1), if src.one_in(3) { R } else { RW }),
            // Ending at the window's top.
            2 if text_end < 0x7000_0000 => (GUEST_WINDOW_END - mem.max(1), RW),
            _ => (0x0100_0000 + src.below(4096), if src.one_in(6) { R } else { RW }),
        };
        Some((base, mem.max(1), file.min(mem.max(1)), perms))
    };
    let layout = Layout { xlen, text, words, data: data.map(|(base, mem, _, _)| (base, mem)), capacity };
    let code = match src.below(4) {
        0 => random_words(src, words, xlen),
        _ => structured(src, &layout),
    };
    let entry = text + 4 * if src.one_in(8) { src.below(words) } else { 0 };
    let mut segments = vec![Segment {
        vaddr: text,
        mem_size: 4 * words,
        data: code.iter().flat_map(|w| w.to_le_bytes()).collect(),
        perms: text_perms,
    }];
    if let Some((base, mem, file, perms)) = data {
        let bytes: Vec<u8> = if src.one_in(3) {
            // Instruction words (a jump into data must still fault: no exec).
            (0..file.div_ceil(4)).flat_map(|_| valid_ish(src, xlen).to_le_bytes()).take(file as usize).collect()
        } else {
            src.take(file as usize).to_vec()
        };
        segments.push(Segment { vaddr: base, mem_size: mem, data: bytes, perms });
    }
    segments.sort_by_key(|segment| segment.vaddr);
    Case { program: Program { xlen, entry, segments }, max_input_bytes }
}

/// `words` instruction words: random, or random with a valid opcode and
/// funct fields, ending (if it gets there) with exit(0).
fn random_words(src: &mut Source<'_>, words: u32, xlen: Xlen) -> Vec<u32> {
    let mut code: Vec<u32> =
        (0..words - 5).map(|_| if src.one_in(3) { src.u32() } else { valid_ish(src, xlen) }).collect();
    code.extend(exit_code(0));
    code
}

/// A word with a valid opcode of the ISA and (mostly) valid funct fields,
/// random registers and immediates.
fn valid_ish(src: &mut Source<'_>, xlen: Xlen) -> u32 {
    if xlen == Xlen::Rv64 {
        return valid_ish64(src);
    }
    let word = src.u32();
    let opcode = src.pick(&[0x37, 0x17, 0x6f, 0x67, 0x63, 0x03, 0x23, 0x13, 0x33, 0x0f, 0x73]);
    let mut word = (word & !0x7f) | opcode;
    if opcode == 0x33 && !src.one_in(8) {
        word = (word & 0x01ff_ffff) | src.pick(&[0x00u32, 0x20, 0x01]) << 25;
    }
    if opcode == 0x73 && !src.one_in(4) {
        word = ECALL;
    }
    word
}

/// [`valid_ish`] for rv64im: the OP-32 and OP-IMM-32 opcodes too.
fn valid_ish64(src: &mut Source<'_>) -> u32 {
    let word = src.u32();
    let opcode = src.pick(&[0x37, 0x17, 0x6f, 0x67, 0x63, 0x03, 0x23, 0x13, 0x33, 0x0f, 0x73, 0x1b, 0x3b, 0x3b]);
    let mut word = (word & !0x7f) | opcode;
    if (opcode == 0x33 || opcode == 0x3b) && !src.one_in(8) {
        word = (word & 0x01ff_ffff) | src.pick(&[0x00u32, 0x20, 0x01]) << 25;
    }
    let funct3 = (word >> 12) & 7;
    if (opcode == 0x13 || opcode == 0x1b) && (funct3 == 1 || funct3 == 5) && !src.one_in(4) {
        // A shift: its kind field 0, or arithmetic (bit 30); a 6-bit shamt, or 5 for a W shift.
        let keep = if opcode == 0x13 { 0x03ff_ffff } else { 0x01ff_ffff };
        word = (word & keep) | if src.one_in(2) { 1 << 30 } else { 0 };
    }
    if opcode == 0x73 && !src.one_in(4) {
        word = ECALL;
    }
    word
}

/// `li rd, value` for the ISA: two words on rv32im (the low 32 bits), eight on rv64im.
fn li_x(xlen: Xlen, rd: u32, value: u64) -> Vec<u32> {
    match xlen {
        Xlen::Rv32 => li(rd, value as u32).to_vec(),
        Xlen::Rv64 => li64(rd, value).to_vec(),
    }
}

/// An rv64im address from an rv32im-interesting one: as it is, or with
/// high bits that must make it fault (never alias the low 4 GiB), or
/// sign-extended as `lui` would make it.
fn widen(src: &mut Source<'_>, addr: u32) -> u64 {
    let addr = u64::from(addr);
    match src.below(10) {
        0 => 1 << 32 | addr,
        1 => 0xffff_ffff_0000_0000 | addr,
        2 => addr as u32 as i32 as i64 as u64,
        3 => addr | 1 << (32 + src.below(32)),
        4 => src.pick(&[1 << 63, u64::MAX, (1 << 32) - 4, 1 << 32, 0xffff_ffff_ffff_f000]),
        _ => addr,
    }
}

/// A 64-bit operand: edges of every width, or random.
fn value64(src: &mut Source<'_>) -> u64 {
    match src.below(4) {
        0 => src.pick(&[
            0,
            1,
            u64::MAX,
            1 << 63,
            i64::MAX as u64,
            0x8000_0000,
            0xffff_ffff,
            0xffff_ffff_8000_0000,
            0x1_0000_0000,
            0x7fff_ffff,
            0xffff_ffff_0000_0000,
        ]),
        1 => u64::from(src.u32()) as u32 as i32 as i64 as u64,
        _ => src.u64(),
    }
}

fn exit_code(code: u32) -> Vec<u32> {
    let mut words = li(10, code).to_vec();
    words.extend(li(17, 93));
    words.push(ECALL);
    words
}

/// An address worth touching: the edges of pages, regions and the window.
fn interesting(src: &mut Source<'_>, layout: &Layout) -> u32 {
    let near = |src: &mut Source<'_>, at: u32| at.wrapping_add(src.below(16)).wrapping_sub(8);
    match src.below(14) {
        0 => match layout.data {
            Some((base, mem)) => base.wrapping_add(src.below(mem + 8)),
            None => near(src, 0x0100_0000),
        },
        1 => match layout.data {
            Some((base, mem)) => near(src, (base.wrapping_add(mem) & !(PAGE_SIZE - 1)).wrapping_add(PAGE_SIZE)),
            None => near(src, 0x2000_1000),
        },
        2 => {
            let page = src.below(4) << 12;
            near(src, 0x2000_0000 + page)
        }
        3 => near(src, 0x0001_0000),
        4 => near(src, GUEST_WINDOW_END),
        5 => STACK_TOP - src.below(64),
        6 => ONCHAIN_INPUT_ADDR + src.below(layout.capacity + 8),
        7 => near(src, ONCHAIN_INPUT_ADDR + layout.capacity),
        8 => OFFCHAIN_INPUT_ADDR + src.below(64),
        9 => layout.text + 4 * src.below(layout.words) + if src.one_in(4) { src.below(4) } else { 0 },
        10 => near(src, layout.text + 4 * layout.words),
        11 => src.below(64).wrapping_sub(32),
        12 => src.pick(&[0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX, 0xffff_f000]),
        _ => src.u32(),
    }
}

/// [`interesting`], widened on rv64im.
fn interesting_x(src: &mut Source<'_>, layout: &Layout) -> u64 {
    let addr = interesting(src, layout);
    match layout.xlen {
        Xlen::Rv32 => u64::from(addr),
        Xlen::Rv64 => widen(src, addr),
    }
}

/// A register-register operation of rv64im: OP (64-bit) or OP-32 (the W forms).
fn alu_r64(src: &mut Source<'_>) -> u32 {
    let op = src.pick(&[
        (0x33, 0x00, 0),
        (0x33, 0x20, 0),
        (0x33, 0x00, 1),
        (0x33, 0x00, 2),
        (0x33, 0x00, 3),
        (0x33, 0x00, 4),
        (0x33, 0x00, 5),
        (0x33, 0x20, 5),
        (0x33, 0x00, 6),
        (0x33, 0x00, 7),
        (0x33, 0x01, 0),
        (0x33, 0x01, 1),
        (0x33, 0x01, 2),
        (0x33, 0x01, 3),
        (0x33, 0x01, 4),
        (0x33, 0x01, 5),
        (0x33, 0x01, 6),
        (0x33, 0x01, 7),
        (0x3b, 0x00, 0),
        (0x3b, 0x20, 0),
        (0x3b, 0x00, 1),
        (0x3b, 0x00, 5),
        (0x3b, 0x20, 5),
        (0x3b, 0x01, 0),
        (0x3b, 0x01, 4),
        (0x3b, 0x01, 5),
        (0x3b, 0x01, 6),
        (0x3b, 0x01, 7),
    ]);
    let (opcode, funct7, funct3) = op;
    r(opcode, reg(src), funct3, reg(src), reg(src), funct7)
}

/// A register-immediate operation of rv64im: OP-IMM (6-bit shift amounts)
/// or OP-IMM-32 (`addiw` and the 5-bit W shifts).
fn alu_i64(src: &mut Source<'_>) -> u32 {
    if src.one_in(3) {
        let funct3 = src.pick(&[0, 0, 1, 5]);
        let imm = match funct3 {
            0 => (src.u16() as i16 >> 4) as i32,
            1 => src.below(32) as i32,
            _ => (src.below(32) | if src.one_in(2) { 0x400 } else { 0 }) as i32,
        };
        return i(0x1b, reg(src), funct3, reg(src), imm);
    }
    let funct3 = src.below(8);
    let imm = match funct3 {
        1 => src.below(64) as i32,
        5 => (src.below(64) | if src.one_in(2) { 0x400 } else { 0 }) as i32,
        _ => (src.u16() as i16 >> 4) as i32,
    };
    i(0x13, reg(src), funct3, reg(src), imm)
}

/// rv64im data paths: 64-bit values in three registers, then a chain of
/// operations among them (every result is visible at the stop unless
/// overwritten).
fn alu_block64(src: &mut Source<'_>) -> Vec<u32> {
    let regs = [src.pick(&[5, 6, 7]), src.pick(&[18, 19, 20]), src.pick(&[28, 29, 30, 31])];
    let mut words: Vec<u32> = regs.iter().flat_map(|&rd| li64(rd, value64(src))).collect();
    for _ in 0..2 + src.below(10) {
        let word = if src.one_in(3) { alu_i64(src) } else { alu_r64(src) };
        let (rd, rs1, rs2) = (src.pick(&regs), src.pick(&regs), src.pick(&regs));
        let word = (word & !(31 << 7 | 31 << 15)) | rd << 7 | rs1 << 15;
        // Only R-type words have rs2 (bits 20..24 of an I-type are its immediate).
        words.push(if word & 0x7f == 0x33 || word & 0x7f == 0x3b { (word & !(31 << 20)) | rs2 << 20 } else { word });
    }
    words
}

fn alu_r(src: &mut Source<'_>, xlen: Xlen) -> u32 {
    if xlen == Xlen::Rv64 {
        return alu_r64(src);
    }
    let (funct7, funct3) = src.pick(&[
        (0x00, 0),
        (0x20, 0),
        (0x00, 1),
        (0x00, 2),
        (0x00, 3),
        (0x00, 4),
        (0x00, 5),
        (0x20, 5),
        (0x00, 6),
        (0x00, 7),
        (0x01, 0),
        (0x01, 1),
        (0x01, 2),
        (0x01, 3),
        (0x01, 4),
        (0x01, 5),
        (0x01, 6),
        (0x01, 7),
    ]);
    r(0x33, reg(src), funct3, reg(src), reg(src), funct7)
}

fn alu_i(src: &mut Source<'_>, xlen: Xlen) -> u32 {
    if xlen == Xlen::Rv64 {
        return alu_i64(src);
    }
    let funct3 = src.below(8);
    let imm = match funct3 {
        1 => src.below(32) as i32,
        5 => (src.below(32) | if src.one_in(2) { 0x400 } else { 0 }) as i32,
        _ => (src.u16() as i16 >> 4) as i32,
    };
    i(0x13, reg(src), funct3, reg(src), imm)
}

fn imm12(src: &mut Source<'_>) -> i32 {
    if src.one_in(4) {
        (src.u16() as i16 >> 4) as i32
    } else {
        src.below(16) as i32 - 8
    }
}

fn load(src: &mut Source<'_>, xlen: Xlen) -> u32 {
    let funct3 = match xlen {
        Xlen::Rv32 => src.pick(&[0, 1, 2, 4, 5]),
        Xlen::Rv64 => src.pick(&[0, 1, 2, 3, 3, 4, 5, 6]),
    };
    i(0x03, reg(src), funct3, reg(src), imm12(src))
}

fn store(src: &mut Source<'_>, xlen: Xlen) -> u32 {
    let funct3 = match xlen {
        Xlen::Rv32 => src.below(3),
        Xlen::Rv64 => src.below(4),
    };
    s(funct3, reg(src), reg(src), imm12(src))
}

/// A structured program filling `layout.words` words, ending with exit.
fn structured(src: &mut Source<'_>, layout: &Layout) -> Vec<u32> {
    let xlen = layout.xlen;
    let budget = layout.words as usize - 5;
    let mut code: Vec<u32> = Vec::new();
    while code.len() < budget && !src.is_empty() {
        let mut piece: Vec<u32> = Vec::new();
        // rv64im has two more kinds of piece; rv32im's choices are as they were.
        let kinds = if xlen == Xlen::Rv64 { 14 } else { 12 };
        match src.below(kinds) {
            0 | 1 => {
                let rd = reg(src);
                if xlen == Xlen::Rv64 && src.one_in(2) {
                    piece.extend(li64(rd, value64(src)));
                } else {
                    piece.extend(li_x(xlen, rd, interesting_x(src, layout)));
                }
            }
            2 => piece.push(alu_r(src, xlen)),
            3 => piece.push(alu_i(src, xlen)),
            4 => {
                let base = reg(src);
                piece.extend(li_x(xlen, base, interesting_x(src, layout)));
                let access = if src.one_in(2) { load(src, xlen) } else { store(src, xlen) };
                piece.push((access & !(31 << 15)) | base << 15);
            }
            5 => {
                // A loop: counter in x28..x31, a body of simple instructions.
                let counter = 28 + src.below(4);
                let most = if src.one_in(4) { 600 } else { 12 };
                piece.extend(li(counter, 1 + src.below(most)));
                let body: Vec<u32> = (0..1 + src.below(6))
                    .map(|_| match src.below(4) {
                        0 => load(src, xlen),
                        1 => store(src, xlen),
                        2 => alu_i(src, xlen),
                        _ => alu_r(src, xlen),
                    })
                    .map(|word| if (word >> 7) & 31 == counter { word & !(31 << 7) } else { word })
                    .collect();
                piece.extend(&body);
                piece.push(addi(counter, counter, -1));
                piece.push(b(1, counter, 0, -4 * (body.len() as i32 + 1)));
            }
            6 | 7 => piece.extend(syscall(src, layout)),
            8 => piece.push(match (src.one_in(3), xlen) {
                (true, _) => src.u32(),
                (false, Xlen::Rv32) => src.pick(&ILLEGAL),
                (false, Xlen::Rv64) => src.pick(&ILLEGAL64),
            }),
            9 => match src.below(3) {
                0 => piece.push(jal(reg(src), 4 * src.below(8) as i32 + if src.one_in(6) { 2 } else { 0 })),
                1 => {
                    let target = reg(src);
                    piece.extend(li_x(xlen, target, interesting_x(src, layout)));
                    piece.push(jalr(reg(src), target, src.below(8) as i32 - 4));
                }
                _ => {
                    let offset = 4 * src.below(8) as i32 + if src.one_in(6) { 2 } else { 0 };
                    piece.push(b(src.pick(&[0, 1, 4, 5, 6, 7]), reg(src), reg(src), offset));
                }
            },
            10 => piece.push(match src.below(3) {
                0 => 0x0ff0_000f, // fence
                1 => lui(reg(src), src.u32()),
                _ => (src.u32() & 0xffff_f000) | reg(src) << 7 | 0x17, // auipc
            }),
            12 | 13 if xlen == Xlen::Rv64 => piece.extend(alu_block64(src)),
            _ => piece.push(valid_ish(src, xlen)),
        }
        if code.len() + piece.len() > budget {
            break;
        }
        code.extend(piece);
    }
    while code.len() < budget {
        code.push(addi(0, 0, 0));
    }
    let exit = if src.one_in(8) { src.below(4) } else { 0 };
    code.extend(exit_code(exit));
    code
}

/// Sets up `a0..a2` and `a7` and calls `ecall`.
fn syscall(src: &mut Source<'_>, layout: &Layout) -> Vec<u32> {
    if layout.xlen == Xlen::Rv64 {
        return syscall64(src, layout);
    }
    let mut words = Vec::new();
    let number = src.pick(&[64, 64, 64, 0x100, 0x101, 93, 0, 63, 0x102, 0xffff_ffff]);
    let fd = src.pick(&[3, 3, 1, 2, 0, 4, u32::MAX]);
    let ptr = interesting(src, layout);
    let len = match src.below(5) {
        0 => 0,
        1 => src.below(8),
        2 => src.below(300),
        3 => layout.capacity.wrapping_sub(src.below(8)),
        _ => src.u32(),
    };
    let out = interesting(src, layout);
    let args = match number {
        64 => [fd, ptr, len],
        0x100 | 0x101 => [ptr, len, out],
        _ => [src.below(4), ptr, len],
    };
    for (reg, value) in [10, 11, 12].into_iter().zip(args) {
        if !src.one_in(8) {
            words.extend(li(reg, value));
        }
    }
    words.extend(li(17, number));
    words.push(ECALL);
    words
}

/// Inputs for one job: random bytes, sometimes filling the region.
pub fn inputs(src: &mut Source<'_>, max_input_bytes: usize) -> (Vec<u8>, Vec<u8>) {
    let capacity = input_capacity(max_input_bytes);
    let one = |src: &mut Source<'_>| {
        if src.one_in(8) {
            let fill = src.u8();
            vec![fill; capacity]
        } else {
            let mut bytes = src.bytes(300);
            bytes.truncate(capacity);
            bytes
        }
    };
    let onchain = one(src);
    (onchain, one(src))
}

/// Limits for one job, given what a probe run with a large budget did
/// (`needed`: its cycles if it stopped on its own, its peak memory and its
/// output length), so that budgets land on the exact edges often.
pub fn limits(
    src: &mut Source<'_>,
    cap: u64,
    needed: Option<u64>,
    image_bytes: u64,
    peak: u64,
    output: usize,
) -> Limits {
    let max_cycles = match (src.below(6), needed) {
        (0, Some(n)) => n,
        (1, Some(n)) => n.saturating_sub(1),
        (2, Some(n)) => u64::from(src.u32()) % (n + 2),
        (3, _) => u64::from(src.below(64)),
        _ => cap,
    };
    let max_memory_bytes = match src.below(6) {
        0 => peak,
        1 => peak.saturating_sub(1),
        2 => image_bytes.saturating_sub(u64::from(src.below(2))),
        3 => image_bytes + u64::from(src.below(4) * PAGE_SIZE + src.below(PAGE_SIZE)),
        _ => 256 << 20,
    };
    let max_output_bytes = match src.below(5) {
        0 => output,
        1 => output.saturating_sub(1),
        2 => src.below(64) as usize,
        _ => 1 << 20,
    };
    Limits { max_cycles, max_memory_bytes, max_output_bytes }
}

/// [`syscall`] on rv64im: numbers, descriptors, pointers and lengths with
/// high bits set too (a number is matched in full, a descriptor and an exit
/// code are the low 32 bits, a pointer or length above 4 GiB faults).
fn syscall64(src: &mut Source<'_>, layout: &Layout) -> Vec<u32> {
    let number = src.pick(&[
        64,
        64,
        64,
        0x100,
        0x101,
        93,
        0,
        63,
        0x102,
        0xffff_ffff,
        1 << 32 | 64,
        1 << 32 | 93,
        0xffff_ffff_0000_0100,
        u64::MAX,
    ]);
    let fd = src.pick(&[3, 3, 1, 2, 0, 4, u64::MAX, 1 << 32 | 3, 0xffff_ffff_0000_0001, 0xffff_ffff]);
    let ptr = interesting_x(src, layout);
    let len = match src.below(7) {
        0 => 0,
        1 => u64::from(src.below(8)),
        2 => u64::from(src.below(300)),
        3 => u64::from(layout.capacity.wrapping_sub(src.below(8))),
        4 => 1 << 32 | u64::from(src.below(8)),
        5 => src.pick(&[u64::MAX, 1 << 63, 0xffff_ffff_0000_0004, (1 << 32) - 1]),
        _ => u64::from(src.u32()),
    };
    let out = interesting_x(src, layout);
    let args = match number {
        64 => [fd, ptr, len],
        0x100 | 0x101 => [ptr, len, out],
        _ => [u64::from(src.below(4)) | if src.one_in(3) { 0xffff_ffff_0000_0000 } else { 0 }, ptr, len],
    };
    let mut words = Vec::new();
    for (reg, value) in [10, 11, 12].into_iter().zip(args) {
        if !src.one_in(8) {
            words.extend(li64(reg, value));
        }
    }
    words.extend(li64(17, number));
    words.push(ECALL);
    words
}

#[cfg(test)]
mod tests {
    use super::{ILLEGAL, ILLEGAL64, RX};
    use rv32im_reference::{run, Failure, Limits, Program, Segment, Xlen};

    /// Each listed word is illegal on the reference for its ISA.
    #[test]
    fn the_illegal_words_are_illegal() {
        for (xlen, words) in [(Xlen::Rv32, ILLEGAL), (Xlen::Rv64, ILLEGAL64)] {
            for word in words {
                let segment = Segment { vaddr: 0x1_0000, mem_size: 4, data: word.to_le_bytes().to_vec(), perms: RX };
                let program = Program { xlen, entry: 0x1_0000, segments: vec![segment] };
                let limits = Limits { max_cycles: 10, max_memory_bytes: 1 << 20, max_output_bytes: 0 };
                let outcome = run(&program, 0, &[], &[], &limits).expect("no input");
                assert_eq!(
                    outcome.failure,
                    Some(Failure::IllegalInstruction { pc: 0x1_0000 }),
                    "{xlen:?} {word:#010x}"
                );
            }
        }
    }
}
