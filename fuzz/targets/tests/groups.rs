//! The VM against the reference on programs made of groups of loads and
//! stores off one base register (Unicorn patches 14 and 15: one check per
//! group, first touch by the page map). Each program sets a base register
//! near a page edge, a segment's edge, the stack, an input, an unmapped
//! address or (rv64) 4 GiB above the window, sometimes touches the page in a
//! block of its own first, and then runs three to eight accesses off it,
//! sometimes writing the base register or loading into it part way. Every
//! program runs several jobs on one warm VM, with tight memory limits and
//! short cycle budgets, so group checks fail and pass, on the first job and
//! on later ones. `compare` checks status, failure, cycles, peak memory,
//! output and the registers at the stop.

use coprocessor_actors::program::ProgramImage;
use coprocessor_actors::Vm;
use coprocessor_fuzz_targets::source::{pseudo_random_bytes, Source};
use coprocessor_fuzz_targets::{compare, elf_writer, Job};
use rv32im_reference::{Limits, Perms, Program, Segment, Xlen, ONCHAIN_INPUT_ADDR, STACK_TOP};

const TEXT: u32 = 0x0001_0000;
const DATA: u32 = 0x0004_0000;
const DATA_BYTES: u32 = 2 * 4096;
const HEAP: u32 = 0x2000_0000;
const MAX_INPUT_BYTES: usize = 8192;

fn i_type(opcode: u32, rd: u32, f3: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | rs1 << 15 | f3 << 12 | rd << 7 | opcode
}

fn s_type(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32 & 0xfff;
    (imm >> 5) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (imm & 31) << 7 | 0x23
}

/// `rd = value` for a value below 2^31 (lui + addi, the same on both ISAs).
fn li(code: &mut Vec<u32>, rd: u32, value: u32) {
    let lo = ((value & 0xfff) as i32) << 20 >> 20;
    let hi = value.wrapping_sub(lo as u32) & 0xffff_f000;
    code.push(hi | rd << 7 | 0x37);
    code.push(i_type(0x13, rd, 0, rd, lo));
}

/// A base address for a group, and whether it may point 4 GiB higher.
fn base_address(src: &mut Source<'_>) -> u32 {
    let near = |src: &mut Source<'_>, at: u32| at.wrapping_add(src.below(48)).wrapping_sub(24);
    match src.below(7) {
        0 => near(src, DATA),
        1 => near(src, DATA + 4096),
        2 => near(src, DATA + DATA_BYTES),
        3 => {
            let page = src.below(3);
            near(src, HEAP + 4096 * page)
        }
        4 => near(src, STACK_TOP & !0xfff),
        5 => near(src, ONCHAIN_INPUT_ADDR + 4096),
        _ => near(src, 0x0002_0000), // unmapped: between text and data
    }
}

/// One group: set the base, maybe touch its page in a block of its own,
/// then 3..=8 accesses off it.
fn group(src: &mut Source<'_>, xlen: Xlen, code: &mut Vec<u32>) {
    let base = src.pick(&[2, 5, 6, 7, 8]);
    li(code, base, base_address(src));
    if xlen == Xlen::Rv64 && src.one_in(6) {
        // base += 1 << 32: the same page 4 GiB higher.
        code.push(i_type(0x13, 31, 0, 0, 1));
        code.push(i_type(0x13, 31, 1, 31, 32));
        code.push(0x33 | base << 7 | base << 15 | 31 << 20);
    }
    if src.one_in(2) {
        code.push(i_type(0x03, 9, 2, base, 0)); // lw x9, 0(base)
        code.push(0x0000_0463); // beq x0, x0, 8: ends the block
        code.push(0x0000_0013); // (skipped)
    }
    let sizes: &[u32] = if xlen == Xlen::Rv64 { &[0, 1, 2, 3] } else { &[0, 1, 2] };
    for _ in 0..3 + src.below(6) {
        let f3 = src.pick(sizes);
        let size = 1i32 << f3;
        let off = if src.one_in(4) { src.below(33) as i32 - 16 } else { size * (src.below(9) as i32 - 4) };
        let data = 9 + src.below(6);
        if src.one_in(2) {
            code.push(s_type(f3, base, data, off));
        } else {
            let unsigned = src.one_in(3) && f3 < 3;
            code.push(i_type(0x03, data, f3 + if unsigned { 4 } else { 0 }, base, off));
        }
        match src.below(12) {
            0 => code.push(i_type(0x13, base, 0, base, src.below(2048) as i32)), // addi base, base, k
            1 => code.push(i_type(0x03, base, 2, base, 0)),                      // lw base, 0(base)
            2 => code.push(i_type(0x13, data, 0, data, 1)),                      // addi on the data register
            _ => {}
        }
    }
}

fn program(src: &mut Source<'_>, xlen: Xlen) -> Program {
    let mut code = Vec::new();
    for _ in 0..1 + src.below(4) {
        group(src, xlen, &mut code);
    }
    li(&mut code, 10, 0);
    li(&mut code, 17, 93);
    code.push(0x0000_0073);
    let text: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    let data: Vec<u8> = (0..DATA_BYTES).map(|_| src.u8()).collect();
    Program {
        xlen,
        entry: TEXT,
        segments: vec![
            Segment {
                vaddr: TEXT,
                mem_size: text.len() as u32,
                data: text,
                perms: Perms { read: true, write: false, exec: true },
            },
            Segment { vaddr: DATA, mem_size: DATA_BYTES, data, perms: Perms { read: true, write: true, exec: false } },
        ],
    }
}

fn agree(xlen: Xlen, cases: u64) {
    for seed in 0..cases {
        let bytes = pseudo_random_bytes(seed ^ 0x6772_6f75_7073, 20_000);
        let mut src = Source::new(&bytes);
        let program = program(&mut src, xlen);
        let elf = elf_writer::write(&program);
        let image = ProgramImage::parse(&elf, 1 << 24).expect("a valid program");
        let mut vm = Vm::new(&image, MAX_INPUT_BYTES).expect("a VM");
        let onchain: Vec<u8> = (0..8192).map(|_| src.u8()).collect();
        let image_bytes = image.image_bytes();
        for job in 0..4 {
            let limits = Limits {
                max_cycles: if job == 2 { u64::from(src.below(120)) } else { 100_000 },
                max_memory_bytes: if job == 1 { image_bytes + 4096 * u64::from(src.below(4)) } else { 64 << 20 },
                max_output_bytes: 1 << 10,
            };
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                compare(&mut vm, &program, MAX_INPUT_BYTES, &Job { onchain: onchain.clone(), offchain: vec![], limits })
            }));
            if let Err(panic) = run {
                eprintln!("{xlen:?} seed {seed}, job {job}: the VM and the reference disagree");
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[test]
fn vm_and_reference_agree_on_groups_of_accesses_rv32im() {
    agree(Xlen::Rv32, 400);
}

#[test]
fn vm_and_reference_agree_on_groups_of_accesses_rv64im() {
    agree(Xlen::Rv64, 400);
}
