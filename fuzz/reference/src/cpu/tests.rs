//! One test per instruction class and per trap.

use crate::asm::{addi, b, i, jal, jalr, li, r, s, ECALL};
use crate::{run, Failure, Limits, Outcome, Perms, Program, Segment, Xlen, OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR};

const TEXT: u32 = 0x1_0000;
const DATA: u32 = 0x100_0000;
const RX: Perms = Perms { read: true, write: false, exec: true };
const RW: Perms = Perms { read: true, write: true, exec: false };

fn limits(max_cycles: u64) -> Limits {
    Limits { max_cycles, max_memory_bytes: 256 << 20, max_output_bytes: 1 << 20 }
}

fn program(text: &[u32], data: &[u8]) -> Program {
    let mut segments = vec![Segment {
        vaddr: TEXT,
        mem_size: 4 * text.len() as u32,
        data: text.iter().flat_map(|w| w.to_le_bytes()).collect(),
        perms: RX,
    }];
    if !data.is_empty() {
        segments.push(Segment { vaddr: DATA, mem_size: data.len() as u32, data: data.to_vec(), perms: RW });
    }
    Program { xlen: Xlen::Rv32, entry: TEXT, segments }
}

fn exec(text: &[u32], onchain: &[u8], limits: Limits) -> Outcome {
    run(&program(text, &[]), 4096, onchain, &[], &limits).expect("inputs fit")
}

/// Runs `text`, then `exit(0)`, and returns the registers at the exit.
fn regs_after(text: &[u32]) -> [u32; 32] {
    let mut all = text.to_vec();
    all.extend(exit(0));
    let outcome = exec(&all, &[], limits(1 << 20));
    assert_eq!(outcome.failure, None, "{outcome:?}");
    outcome.stop.expect("started").regs.map(|r| u32::try_from(r).expect("a 32-bit value"))
}

fn exit(code: u32) -> Vec<u32> {
    let mut words = li(10, code).to_vec();
    words.extend(li(17, 93));
    words.push(ECALL);
    words
}

fn with(words: &[&[u32]]) -> Vec<u32> {
    words.concat()
}

#[test]
fn entry_state_follows_the_abi() {
    let outcome = exec(&exit(0), &[1, 2, 3], limits(100));
    assert_eq!((outcome.failure.clone(), outcome.exit_code, outcome.cycles), (None, Some(0), 5));
    let stop = outcome.stop.expect("started");
    assert_eq!(stop.regs[2], 0x8000_0000 - 16);
    assert_eq!(stop.regs[11], 3);
    assert_eq!((stop.regs[12], stop.regs[13]), (u64::from(OFFCHAIN_INPUT_ADDR), 0));
    assert_eq!(stop.pc, u64::from(TEXT + 20), "pc after the ecall");
    assert_eq!(outcome.peak_memory_bytes, 4096);
}

#[test]
fn alu_immediate_and_register_instructions() {
    let regs = regs_after(&with(&[
        &li(5, 0x8000_0001),
        &[
            i(0x13, 6, 0, 5, -1),        // addi
            i(0x13, 7, 2, 5, 0),         // slti: negative < 0
            i(0x13, 8, 3, 5, 0),         // sltiu
            i(0x13, 9, 4, 5, 0x7ff),     // xori
            i(0x13, 18, 6, 5, 2),        // ori
            i(0x13, 19, 7, 5, 3),        // andi
            i(0x13, 20, 1, 5, 4),        // slli
            i(0x13, 21, 5, 5, 4),        // srli
            i(0x13, 22, 5, 5, 0x404),    // srai
            r(0x33, 23, 0, 5, 5, 0x20),  // sub
            r(0x33, 24, 1, 5, 19, 0),    // sll by 1
            r(0x33, 25, 5, 5, 19, 0x20), // sra by 1
            r(0x33, 26, 2, 19, 5, 0),    // slt
            r(0x33, 27, 3, 19, 5, 0),    // sltu
            r(0x33, 28, 4, 5, 19, 0),    // xor
            r(0x33, 29, 0, 5, 5, 0),     // add
            addi(0, 5, 1),               // x0 stays 0
        ],
    ]));
    assert_eq!(regs[0], 0);
    assert_eq!(regs[6], 0x8000_0000);
    assert_eq!((regs[7], regs[8]), (1, 0));
    assert_eq!(regs[9], 0x8000_07fe);
    assert_eq!((regs[18], regs[19]), (0x8000_0003, 1));
    assert_eq!((regs[20], regs[21], regs[22]), (0x10, 0x0800_0000, 0xf800_0000));
    assert_eq!((regs[23], regs[24], regs[25]), (0, 2, 0xc000_0000));
    assert_eq!((regs[26], regs[27], regs[28], regs[29]), (0, 1, 0x8000_0000, 2));
}

#[test]
fn multiply_and_divide_follow_the_m_extension() {
    let m = |f3| r(0x33, 20 + f3, f3, 5, 6, 1);
    let regs = regs_after(&with(&[&li(5, 0x8000_0000), &li(6, u32::MAX), &(0..8).map(m).collect::<Vec<_>>()]));
    // mul, mulh, mulhsu, mulhu of i32::MIN and -1
    assert_eq!(&regs[20..24], &[0x8000_0000, 0, 0x8000_0000, 0x7fff_ffff]);
    // div overflow, divu, rem overflow, remu
    assert_eq!(&regs[24..28], &[0x8000_0000, 0, 0, 0x8000_0000]);
    let regs = regs_after(&with(&[&li(5, 7), &[addi(6, 0, 0)], &(4..8).map(m).collect::<Vec<_>>()]));
    // division by zero
    assert_eq!(&regs[24..28], &[u32::MAX, u32::MAX, 7, 7]);
}

#[test]
fn lui_auipc_jal_jalr_and_branches() {
    let regs = regs_after(&[
        0x1234_52b7,      // lui x5
        0x0000_1317,      // auipc x6, 1 (at TEXT + 4)
        jal(7, 8),        // skip one
        addi(8, 0, 1),    // skipped
        b(0, 0, 0, 8),    // beq taken
        addi(9, 0, 1),    // skipped
        b(1, 0, 0, 8),    // bne not taken
        addi(18, 0, 1),   // runs
        0x17 | 19 << 7,   // auipc x19, 0
        jalr(20, 19, 12), // to the next-but-one
        addi(21, 0, 1),   // skipped
    ]);
    assert_eq!(regs[5], 0x1234_5000);
    assert_eq!(regs[6], TEXT + 4 + 0x1000);
    assert_eq!((regs[7], regs[8], regs[9], regs[18]), (TEXT + 12, 0, 0, 1));
    assert_eq!((regs[20], regs[21]), (TEXT + 40, 0));
}

#[test]
fn loads_and_stores_are_little_endian_at_any_alignment() {
    let text = with(&[
        &li(5, DATA),
        &li(6, 0x8899_aabb),
        &[
            s(2, 5, 6, 1),        // sw at DATA + 1 (misaligned)
            i(0x03, 7, 0, 5, 4),  // lb 0x88
            i(0x03, 8, 4, 5, 4),  // lbu
            i(0x03, 9, 1, 5, 3),  // lh 0x8899
            i(0x03, 18, 5, 5, 3), // lhu
            i(0x03, 19, 2, 5, 1), // lw
            s(0, 5, 6, 0),        // sb
            s(1, 5, 6, 6),        // sh
            i(0x03, 20, 2, 5, 4), // lw of bytes 4..8
            i(0x03, 21, 2, 5, 0),
        ],
        &exit(0),
    ]);
    let outcome = run(&program(&text, &[0; 16]), 4096, &[], &[], &limits(1000)).expect("fits");
    let regs = outcome.stop.expect("started").regs;
    assert_eq!((regs[7], regs[8]), (0xffff_ff88, 0x88));
    assert_eq!((regs[9], regs[18], regs[19]), (0xffff_8899, 0x8899, 0x8899_aabb));
    assert_eq!((regs[20], regs[21]), (0xaabb_0088, 0x99aa_bbbb));
    assert_eq!(outcome.peak_memory_bytes, 8192, "the image: text and data pages");
}

#[test]
fn a_load_across_a_page_boundary_touches_both_pages() {
    let text = with(&[&li(5, 0x2000_0ffe), &[i(0x03, 6, 2, 5, 0)], &exit(0)]);
    let outcome = exec(&text, &[], limits(100));
    assert_eq!((outcome.failure.clone(), outcome.peak_memory_bytes), (None, 3 * 4096));
    // With room for one zero page only, the second fails the job.
    let tight = Limits { max_memory_bytes: 2 * 4096 + 4095, ..limits(100) };
    let outcome = exec(&text, &[], tight);
    assert_eq!(
        (outcome.failure, outcome.cycles, outcome.peak_memory_bytes),
        (Some(Failure::MemoryLimitExceeded), 2, 8192)
    );
}

#[test]
fn inputs_are_readable_zero_padded_and_read_only() {
    let text = with(&[&[i(0x03, 5, 2, 10, 0), i(0x03, 6, 2, 10, 4)], &exit(0)]);
    let outcome = exec(&text, &[1, 2, 3, 4, 5], limits(100));
    let regs = outcome.stop.expect("started").regs;
    assert_eq!((regs[5], regs[6]), (0x0403_0201, 5));
    let store = with(&[&[s(0, 10, 0, 0)], &exit(0)]);
    assert_eq!(
        exec(&store, &[1], limits(100)).failure,
        Some(Failure::MemoryFault { addr: u64::from(ONCHAIN_INPUT_ADDR), len: 1 })
    );
    // Past the region (one page for 4096 bytes) is unmapped.
    let past = with(&[&li(5, ONCHAIN_INPUT_ADDR + 4096), &[i(0x03, 6, 0, 5, 0)], &exit(0)]);
    assert_eq!(
        exec(&past, &[], limits(100)).failure,
        Some(Failure::MemoryFault { addr: u64::from(ONCHAIN_INPUT_ADDR + 4096), len: 1 })
    );
}

#[test]
fn stores_to_text_fetches_from_data_and_wild_accesses_fault() {
    let store_text = with(&[&li(5, TEXT), &[s(2, 5, 0, 0)], &exit(0)]);
    let outcome = exec(&store_text, &[], limits(100));
    assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::MemoryFault { addr: u64::from(TEXT), len: 4 }), 2));
    assert_eq!(outcome.stop.expect("started").pc, u64::from(TEXT + 8), "pc at the faulting store");

    let jump_data = with(&[&li(5, DATA), &[jalr(1, 5, 0)]]);
    let outcome = run(&program(&jump_data, &[0; 4]), 4096, &[], &[], &limits(100)).expect("fits");
    assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::MemoryFault { addr: u64::from(DATA), len: 4 }), 3));
    assert_eq!(outcome.stop.expect("started").regs[1], u64::from(TEXT + 12), "the jump retired");

    let below = with(&[&[i(0x03, 5, 2, 0, 0x100)], &exit(0)]);
    assert_eq!(exec(&below, &[], limits(100)).failure, Some(Failure::MemoryFault { addr: 0x100, len: 4 }));
    let top = with(&[&li(5, 0x7fff_fffe), &[i(0x03, 6, 2, 5, 0)], &exit(0)]);
    assert_eq!(exec(&top, &[], limits(100)).failure, Some(Failure::MemoryFault { addr: 0x7fff_fffe, len: 4 }));
}

#[test]
fn a_jump_to_a_fresh_page_counts_it_then_faults() {
    let text = with(&[&li(5, 0x3000_0000), &[jalr(0, 5, 0)]]);
    let outcome = exec(&text, &[], limits(100));
    assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: 0x3000_0000, len: 4 }));
    assert_eq!((outcome.peak_memory_bytes, outcome.stop.expect("started").pc), (8192, 0x3000_0000));
}

#[test]
fn illegal_words_fail_without_retiring() {
    for word in [
        0x0000_0000,             // all zeros
        0xffff_ffff,             // all ones
        0x0000_0001,             // compressed
        0x0000_100f,             // fence.i
        0x0010_0073,             // ebreak
        0x3020_0073,             // mret
        0xc000_2373,             // csrr cycle
        0x1000_202f,             // lr.w
        r(0x53, 1, 0, 2, 3, 0),  // fadd.s
        i(0x03, 5, 3, 0, 0),     // ld
        s(3, 0, 0, 0),           // sd
        b(2, 0, 0, 8),           // branch funct3 2
        i(0x67, 1, 1, 0, 0),     // jalr funct3 1
        r(0x33, 1, 0, 2, 3, 2),  // op funct7 2
        i(0x13, 1, 1, 2, 0x20),  // slli shamt 32
        i(0x13, 1, 5, 2, 0x220), // srli with a stray bit
    ] {
        let text = with(&[&[addi(5, 0, 1)], &[word], &exit(0)]);
        let outcome = exec(&text, &[], limits(100));
        assert_eq!(outcome.failure, Some(Failure::IllegalInstruction { pc: u64::from(TEXT + 4) }), "{word:#010x}");
        assert_eq!(outcome.cycles, 1, "{word:#010x}");
        assert_eq!(outcome.stop.expect("started").pc, u64::from(TEXT + 4));
    }
    let fence = with(&[&[0x0ff0_000f], &exit(0)]);
    assert_eq!(exec(&fence, &[], limits(100)).failure, None);
}

#[test]
fn misaligned_jumps_fail_at_the_jump_without_linking() {
    let outcome = exec(&[addi(5, 0, 1), jal(1, 6)], &[], limits(100));
    assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::MisalignedFetch { pc: u64::from(TEXT + 4) }), 1));
    assert_eq!(outcome.stop.expect("started").regs[1], 0);
    let jalr_odd = with(&[&li(5, TEXT + 3), &[jalr(0, 5, 0)]]);
    // jalr clears bit 0: TEXT + 2 is still misaligned.
    assert_eq!(exec(&jalr_odd, &[], limits(100)).failure, Some(Failure::MisalignedFetch { pc: u64::from(TEXT + 8) }));
    let jalr_one = with(&[&li(5, TEXT + 13), &[jalr(0, 5, 0)], &exit(7)]);
    assert_eq!(exec(&jalr_one, &[], limits(100)).failure, Some(Failure::GuestExit(7)), "bit 0 cleared: aligned");
    let branch = exec(&[b(0, 0, 0, 6)], &[], limits(100));
    assert_eq!(branch.failure, Some(Failure::MisalignedFetch { pc: u64::from(TEXT) }));
    let not_taken = with(&[&[b(1, 0, 0, 6)], &exit(0)]);
    assert_eq!(exec(&not_taken, &[], limits(100)).failure, None);
}

#[test]
fn max_cycles_is_exact() {
    let text = with(&[&li(5, 10), &[addi(5, 5, -1), b(1, 5, 0, -4)], &exit(0)]);
    let n = exec(&text, &[], limits(1000)).cycles;
    assert_eq!(n, 2 + 20 + 5);
    assert_eq!(exec(&text, &[], limits(n)).failure, None);
    let short = exec(&text, &[], limits(n - 1));
    assert_eq!((short.failure, short.cycles), (Some(Failure::CycleLimitExceeded), n - 1));
    assert_eq!(short.stop.expect("started").pc, u64::from(TEXT + 4 * 8), "before the ecall");
    let none = exec(&text, &[], limits(0));
    assert_eq!(
        (none.failure, none.cycles, none.stop.expect("started").pc),
        (Some(Failure::CycleLimitExceeded), 0, u64::from(TEXT))
    );
}

#[test]
fn write_appends_to_output_and_log_and_the_output_limit_is_inclusive() {
    let write =
        |fd: u32, len: u32| with(&[&li(10, fd), &li(11, ONCHAIN_INPUT_ADDR), &li(12, len), &li(17, 64), &[ECALL]]);
    let text = with(&[&write(3, 3), &write(2, 2), &write(9, 5), &exit(0)]);
    let outcome = exec(&text, b"abc", Limits { max_output_bytes: 3, ..limits(1000) });
    assert_eq!((outcome.failure.clone(), &outcome.output[..], &outcome.log[..]), (None, &b"abc"[..], &b"ab"[..]));
    assert_eq!(outcome.stop.expect("started").regs[12], 5);
    let over = exec(&text, b"abc", Limits { max_output_bytes: 2, ..limits(1000) });
    assert_eq!((over.failure, over.cycles), (Some(Failure::OutputTooLarge), 9));
    // Past the region: the syscall's whole range is the fault.
    let wild = with(&[&write(3, 4097), &exit(0)]);
    assert_eq!(
        exec(&wild, &[], limits(1000)).failure,
        Some(Failure::MemoryFault { addr: u64::from(ONCHAIN_INPUT_ADDR), len: 4097 })
    );
}

#[test]
fn hashes_write_their_digest_and_charge_per_block() {
    let hash = |number: u32, len: u32| {
        with(&[
            &li(10, ONCHAIN_INPUT_ADDR),
            &li(11, len),
            &li(12, DATA),
            &li(17, number),
            &[ECALL],
            &li(10, 3),
            &li(11, DATA),
            &li(12, 32),
            &li(17, 64),
            &[ECALL],
            &exit(0),
        ])
    };
    let out = |number, input: &[u8], max_cycles| {
        run(&program(&hash(number, input.len() as u32), &[0; 32]), 4096, input, &[], &limits(max_cycles)).expect("fits")
    };
    let keccak = out(0x100, b"", 1000);
    assert_eq!(hex(&keccak.output), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    let sha = out(0x101, b"abc", 1000);
    assert_eq!(hex(&sha.output), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(keccak.cycles, 9 + 16 + 64 + 9 + 5);
    assert_eq!(out(0x100, &[0; 65], 1000).cycles, keccak.cycles + 64);
    let n = keccak.cycles;
    let short = out(0x100, b"", n - 1);
    assert_eq!((short.failure, short.cycles), (Some(Failure::CycleLimitExceeded), n - 1));
    // The charge itself does not fit: stopped after the ecall.
    let charge = out(0x100, b"", 9 + 16 + 63);
    assert_eq!((charge.failure, charge.cycles), (Some(Failure::CycleLimitExceeded), 88));
    assert_eq!(charge.stop.expect("started").pc, u64::from(TEXT + 36));
}

#[test]
fn unsupported_syscalls_and_exit_codes() {
    let outcome = exec(&with(&[&li(17, 999), &[ECALL]]), &[], limits(100));
    assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::UnsupportedSyscall(999)), 3));
    let outcome = exec(&exit(42), &[], limits(100));
    assert_eq!((outcome.failure, outcome.exit_code), (Some(Failure::GuestExit(42)), Some(42)));
}

#[test]
fn an_image_over_the_memory_limit_never_starts() {
    let outcome = exec(&exit(0), &[], Limits { max_memory_bytes: 4095, ..limits(100) });
    assert_eq!((outcome.failure, outcome.cycles, outcome.stop), (Some(Failure::MemoryLimitExceeded), 0, None));
    assert_eq!(outcome.peak_memory_bytes, 4096);
}

#[test]
fn pages_shared_by_segments_get_the_union_of_their_rights() {
    let mut p = program(&with(&[&li(5, TEXT + 0x800), &[s(2, 5, 0, 0)], &exit(0)]), &[]);
    // A read-only segment on the text's page: still not writable.
    p.segments.push(Segment {
        vaddr: TEXT + 0x800,
        mem_size: 4,
        data: vec![],
        perms: Perms { read: true, ..Perms::default() },
    });
    let outcome = run(&p, 4096, &[], &[], &limits(100)).expect("fits");
    assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: u64::from(TEXT + 0x800), len: 4 }));
}

#[test]
fn inputs_over_their_region_are_refused() {
    let err = run(&program(&exit(0), &[]), 10, &[0; 4097], &[], &limits(100)).expect_err("too large");
    assert_eq!((err.which, err.len, err.capacity), ("onchain", 4097, 4096));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// --- rv64im ---------------------------------------------------------------

use crate::asm::li64;

fn exec64(text: &[u32], limits: Limits) -> Outcome {
    let mut program = program(text, &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99]);
    program.xlen = Xlen::Rv64;
    run(&program, 4096, &[], &[], &limits).expect("inputs fit")
}

fn regs64_after(text: &[u32]) -> [u64; 32] {
    let mut all = text.to_vec();
    all.extend(exit(0));
    let outcome = exec64(&all, limits(1 << 20));
    assert_eq!(outcome.failure, None, "{outcome:?}");
    outcome.stop.expect("started").regs
}

#[test]
fn li64_builds_any_value() {
    let values = [0, 1, u64::MAX, 1 << 63, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 0x1234_5678_9abc_def0, 0xfff];
    let text: Vec<u32> = values.iter().enumerate().flat_map(|(n, &v)| li64(18 + n as u32, v)).collect();
    let regs = regs64_after(&text);
    assert_eq!(&regs[18..18 + values.len()], &values);
}

#[test]
fn rv64_alu_word_forms_and_wide_multiplies() {
    let regs = regs64_after(&with(&[
        &li64(5, 0xffff_ffff_8000_0000),
        &li64(6, 0x0000_0001_7fff_ffff),
        &[
            r(0x3b, 7, 0, 5, 6, 0x00),  // addw: 0x8000_0000 + 0x7fff_ffff = -1
            r(0x3b, 8, 0, 6, 5, 0x20),  // subw: 0x7fff_ffff - 0x8000_0000 = -1
            i(0x1b, 9, 1, 6, 1),        // slliw 1
            i(0x1b, 18, 5, 5, 0x41f),   // sraiw 31
            i(0x13, 19, 1, 6, 33),      // slli 33
            i(0x13, 20, 5, 5, 0x420),   // srai 32
            r(0x33, 21, 1, 5, 6, 0x01), // mulh
            r(0x33, 22, 3, 5, 6, 0x01), // mulhu
            r(0x33, 23, 2, 5, 6, 0x01), // mulhsu
            r(0x3b, 24, 4, 5, 0, 0x01), // divw by zero
            r(0x3b, 25, 7, 6, 0, 0x01), // remuw by zero: the low word, sign-extended
            r(0x33, 26, 4, 5, 0, 0x01), // div by zero
        ],
    ]));
    assert_eq!((regs[7], regs[8], regs[9], regs[18]), (u64::MAX, u64::MAX, 0xffff_ffff_ffff_fffe, u64::MAX));
    assert_eq!((regs[19], regs[20]), (0xffff_fffe_0000_0000, u64::MAX));
    assert_eq!((regs[21], regs[22], regs[23]), (u64::MAX, 0x1_7fff_fffe, u64::MAX));
    assert_eq!((regs[24], regs[25], regs[26]), (u64::MAX, 0x7fff_ffff, u64::MAX));
}

#[test]
fn rv64_loads_extend_and_addresses_above_4_gib_fault() {
    let regs = regs64_after(&with(&[
        &li(5, DATA),
        &[
            i(0x03, 6, 3, 5, 0), // ld
            i(0x03, 7, 2, 5, 4), // lw: 0x8877_6655 sign-extended
            i(0x03, 8, 6, 5, 4), // lwu
        ],
    ]));
    assert_eq!((regs[6], regs[7], regs[8]), (0x8877_6655_4433_2211, 0xffff_ffff_8877_6655, 0x8877_6655));
    for addr in [1 << 32 | u64::from(DATA), 0xffff_ffff_0000_0000 | u64::from(DATA), 1 << 63] {
        let load = exec64(&with(&[&li64(5, addr), &[i(0x03, 6, 3, 5, 0)], &exit(0)]), limits(100));
        assert_eq!(load.failure, Some(Failure::MemoryFault { addr, len: 8 }), "{addr:#x}");
        assert_eq!(load.peak_memory_bytes, 2 * 4096, "nothing touched");
        let jump = exec64(&with(&[&li64(5, addr & !3), &[jalr(0, 5, 0)]]), limits(100));
        assert_eq!(jump.failure, Some(Failure::MemoryFault { addr: addr & !3, len: 4 }), "{addr:#x}");
        assert_eq!(jump.stop.expect("started").pc, addr & !3);
    }
}

#[test]
fn rv64_syscalls_read_whole_registers() {
    // write(fd = 1 << 32 | 3, DATA, 4): the descriptor is the low 32 bits.
    let call = |number: u64, args: [u64; 3]| {
        let mut text = with(&[&li64(10, args[0]), &li64(11, args[1]), &li64(12, args[2]), &li64(17, number)]);
        text.push(ECALL);
        text.extend(exit(0));
        exec64(&text, limits(1000))
    };
    let data = u64::from(DATA);
    let out = call(64, [1 << 32 | 3, data, 4]);
    assert_eq!((out.failure, out.output), (None, vec![0x11, 0x22, 0x33, 0x44]));
    assert_eq!(call(64, [3, 1 << 32 | data, 4]).failure, Some(Failure::MemoryFault { addr: 1 << 32 | data, len: 4 }));
    assert_eq!(call(64, [1, data, 1 << 32]).failure, Some(Failure::MemoryFault { addr: data, len: 1 << 32 }));
    // Another descriptor reads nothing and returns the whole length.
    let other = call(64, [5, 1 << 40, 1 << 32]);
    assert_eq!((other.failure, other.stop.expect("started").regs[10]), (None, 0));
    assert_eq!(call(1 << 32 | 93, [0, 0, 0]).failure, Some(Failure::UnsupportedSyscall(1 << 32 | 93)));
    assert_eq!(call(93, [0xffff_ffff_0000_0007, 0, 0]).failure, Some(Failure::GuestExit(7)));
    // A precompile's whole length is charged first.
    assert_eq!(call(0x100, [data, 1 << 40, data]).failure, Some(Failure::CycleLimitExceeded));
}
