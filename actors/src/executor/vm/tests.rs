//! VM tests: every line of guest ABI v1, with hand-assembled programs.

mod asm;
mod direct;
mod groups;
mod isa;
mod metering;
mod rv64;
mod rv64_vm;
mod semantics;
mod unicorn_patches;

use super::Vm;
use crate::job::{Failure, JobLimits, JobOutcome};
use crate::program::ProgramImage;
use asm::Asm;

/// Runs `program` once with `limits`.
fn run_with(program: &Asm, onchain: &[u8], limits: JobLimits) -> JobOutcome {
    let mut vm = vm(program);
    vm.run(onchain, &[], &limits).expect("engine error")
}

fn run(program: &Asm) -> JobOutcome {
    run_with(program, &[], JobLimits::default())
}

fn vm(program: &Asm) -> Vm {
    let image = ProgramImage::parse(&program.elf(), 1 << 24).expect("test ELF is valid");
    Vm::new(&image, 1 << 20).expect("vm")
}

/// A VM for `program` built as an rv64im ELF64.
fn vm64(program: &Asm) -> Vm {
    let image = ProgramImage::parse(&program.elf64(), 1 << 24).expect("test ELF64 is valid");
    assert_eq!(image.isa, crate::program::Isa::Rv64im);
    Vm::new(&image, 1 << 20).expect("vm")
}

/// Runs `program` once as an rv64im guest with `limits`.
fn run64_with(program: &Asm, onchain: &[u8], limits: JobLimits) -> JobOutcome {
    vm64(program).run(onchain, &[], &limits).expect("engine error")
}

fn run64(program: &Asm) -> JobOutcome {
    run64_with(program, &[], JobLimits::default())
}

fn limits(max_cycles: u64) -> JobLimits {
    JobLimits { max_cycles, ..JobLimits::default() }
}

#[test]
fn exit_zero_is_done_with_exact_cycles() {
    let mut p = Asm::new();
    p.exit(0);
    let outcome = run(&p);
    assert_eq!(outcome.failure, None);
    assert_eq!(outcome.exit_code, Some(0));
    // li a0 (2) + li a7 (2) + ecall (1)
    assert_eq!(outcome.cycles, 5);
}

#[test]
fn non_zero_exit_fails_with_the_code() {
    let mut p = Asm::new();
    p.exit(3);
    assert_eq!(run(&p).failure, Some(Failure::GuestExit(3)));
}

#[test]
fn unknown_syscall_fails() {
    let mut p = Asm::new();
    p.li(17, 999).ecall();
    assert_eq!(run(&p).failure, Some(Failure::UnsupportedSyscall(999)));
}

#[test]
fn infinite_loop_hits_the_cycle_limit() {
    let mut p = Asm::new();
    p.jal(0, 0);
    let outcome = run_with(&p, &[], limits(10_000));
    assert_eq!(outcome.failure, Some(Failure::CycleLimitExceeded));
    assert_eq!(outcome.cycles, 10_000);
}

#[test]
fn wild_store_is_a_memory_fault_with_address_and_length() {
    let mut p = Asm::new();
    p.li(5, 0x0000_0100).li(6, 7).sh(6, 5, 2).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: 0x102, len: 2 }));
}

#[test]
fn a_write_syscall_from_unmapped_memory_is_a_memory_fault() {
    for fd in [1, 3] {
        let mut p = Asm::new();
        p.write(fd, 0x100, 4).exit(0);
        assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: 0x100, len: 4 }), "fd {fd}");
    }
}

#[test]
fn an_image_over_the_memory_limit_fails_before_it_runs() {
    let mut p = Asm::new();
    p.exit(0);
    let outcome = run_with(&p, &[], JobLimits { max_memory_bytes: 0, ..JobLimits::default() });
    assert_eq!(outcome.failure, Some(Failure::MemoryLimitExceeded));
    assert_eq!((outcome.cycles, outcome.exit_code), (0, None));
}

#[test]
fn store_into_text_is_a_memory_fault() {
    let mut p = Asm::new();
    p.li(5, asm::TEXT_BASE).sw(0, 5, 0).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: u64::from(asm::TEXT_BASE), len: 4 }));
}

#[test]
fn store_into_an_input_is_a_memory_fault() {
    let mut p = Asm::new();
    p.sb(0, 10, 0).exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: u64::from(super::ONCHAIN_INPUT_ADDR), len: 1 }));
}

#[test]
fn jump_into_data_is_a_fetch_fault() {
    let mut p = Asm::new();
    p.li(5, asm::DATA_BASE).jalr(0, 5, 0);
    p.data(&[0x13, 0, 0, 0]);
    assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: u64::from(asm::DATA_BASE), len: 4 }));
}

#[test]
fn output_is_what_the_guest_writes_to_fd_3() {
    let mut p = Asm::new();
    p.data(b"hello, world");
    p.write(3, asm::DATA_BASE, 5).write(3, asm::DATA_BASE + 7, 5).exit(0);
    assert_eq!(run(&p).output, b"helloworld");
}

#[test]
fn fd_1_and_2_go_to_the_log_not_the_output() {
    let mut p = Asm::new();
    p.data(b"log line");
    p.write(1, asm::DATA_BASE, 3).write(2, asm::DATA_BASE + 4, 4).exit(0);
    let outcome = run(&p);
    assert_eq!(outcome.output, b"");
    assert_eq!(outcome.log, b"logline");
}

/// A guest that writes `a0` bytes (from its onchain input's first word) of
/// zero-filled memory to its output.
fn flood() -> Asm {
    let mut p = Asm::new();
    p.lw(12, 10, 0).li(10, 3).li(11, 0x1000_0000).li(17, 64).ecall().exit(0);
    p
}

#[test]
fn output_limit_is_inclusive() {
    let exactly = run(&flood()).clone();
    assert_eq!(exactly.failure, None, "0 bytes");
    let at_limit = run_with(&flood(), &(1u32 << 20).to_le_bytes(), JobLimits::default());
    assert_eq!(at_limit.failure, None);
    assert_eq!(at_limit.output.len(), 1 << 20);
    let over = run_with(&flood(), &((1u32 << 20) + 1).to_le_bytes(), JobLimits::default());
    assert_eq!(over.failure, Some(Failure::OutputTooLarge));
}

/// A guest that stores one byte into each of `n` fresh pages (n = the
/// onchain input's first word), starting at 0x1000_0000.
fn touch_pages() -> Asm {
    let mut p = Asm::new();
    p.lw(6, 10, 0).li(5, 0x1000_0000).li(7, 1);
    // loop: beq x6, x0, done; sb x7, 0(x5); addi x5, x5, 4096 (as lui-free: add x5, x5, x8)
    p.li(8, 4096);
    p.beq(6, 0, 20).sb(7, 5, 0).add(5, 5, 8).addi(6, 6, -1).jal(0, -16);
    p.exit(0);
    p
}

#[test]
fn fresh_pages_count_against_the_memory_limit() {
    let base = run_with(&touch_pages(), &0u32.to_le_bytes(), JobLimits::default());
    assert_eq!(base.failure, None);
    let ten = run_with(&touch_pages(), &10u32.to_le_bytes(), JobLimits::default());
    assert_eq!(ten.peak_memory_bytes - base.peak_memory_bytes, 10 * 4096);

    // The stack page and the image are part of the base; allow exactly 10 more pages.
    let limit = JobLimits { max_memory_bytes: ten.peak_memory_bytes, ..JobLimits::default() };
    assert_eq!(run_with(&touch_pages(), &10u32.to_le_bytes(), limit).failure, None);
    let over = run_with(&touch_pages(), &11u32.to_le_bytes(), limit);
    assert_eq!(over.failure, Some(Failure::MemoryLimitExceeded));
}

#[test]
fn inputs_are_mapped_read_only_with_pointers_in_a0_to_a3() {
    let mut p = Asm::new();
    // write(3, a0, a1); write(3, a2, a3)
    p.mv(20, 10).mv(21, 11).mv(22, 12).mv(23, 13);
    p.li(10, 3).mv(11, 20).mv(12, 21).li(17, 64).ecall();
    p.li(10, 3).mv(11, 22).mv(12, 23).li(17, 64).ecall();
    p.exit(0);
    let mut vm = vm(&p);
    let out = vm.run(b"onchain", b"offchain!", &JobLimits::default()).expect("run");
    assert_eq!(out.output, b"onchainoffchain!");
}

#[test]
fn a_shorter_input_does_not_reveal_the_previous_one() {
    let mut p = Asm::new();
    // write(3, a0, 8): the first 8 bytes of the input region, whatever the length.
    p.li(12, 8).mv(11, 10).li(10, 3).li(17, 64).ecall().exit(0);
    let mut vm = vm(&p);
    assert_eq!(vm.run(b"secret!!", &[], &JobLimits::default()).expect("run").output, b"secret!!");
    assert_eq!(vm.run(b"ab", &[], &JobLimits::default()).expect("run").output, b"ab\0\0\0\0\0\0");
}

#[test]
fn job_two_cannot_see_what_job_one_wrote() {
    // Reads a .data word, a fresh heap page word and a stack word, writes
    // them to the output, then overwrites all three with a secret.
    let mut p = Asm::new();
    p.data(&0x1111_1111u32.to_le_bytes());
    p.li(5, asm::DATA_BASE).li(6, 0x2000_0000).addi(7, 2, -64);
    p.lw(8, 5, 0).lw(9, 6, 0).lw(18, 7, 0);
    p.li(19, 0x1000_0000).sw(8, 19, 0).sw(9, 19, 4).sw(18, 19, 8);
    p.li(20, 0x5ec2_e700).sw(20, 5, 0).sw(20, 6, 0).sw(20, 7, 0);
    p.write(3, 0x1000_0000, 12).exit(0);
    let mut vm = vm(&p);
    let first = vm.run(&[], &[], &JobLimits::default()).expect("run");
    let second = vm.run(&[], &[], &JobLimits::default()).expect("run");
    let expected: Vec<u8> = [0x1111_1111u32, 0, 0].iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(first.output, expected);
    assert_eq!(second.output, expected);
    assert_eq!(first, second);
}

#[test]
fn isolation_holds_after_many_pages_were_touched() {
    let mut vm = vm(&touch_pages());
    let many = vm.run(&200u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(many.failure, None);
    let none = vm.run(&0u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    let again = vm.run(&200u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    assert_eq!(none.peak_memory_bytes + 200 * 4096, again.peak_memory_bytes);
    assert_eq!(many, again);
}

#[test]
fn precompiles_hash_guest_memory() {
    let mut p = Asm::new();
    // keccak256(a0=input, a1=len, a2=0x1000_0000); sha256(... , 0x1000_0020)
    p.mv(20, 10).mv(21, 11);
    p.mv(10, 20).mv(11, 21).li(12, 0x1000_0000).li(17, 0x100).ecall();
    p.mv(10, 20).mv(11, 21).li(12, 0x1000_0020).li(17, 0x101).ecall();
    p.write(3, 0x1000_0000, 64).exit(0);
    let outcome = run_with(&p, b"abc", JobLimits::default());
    assert_eq!(outcome.failure, None);
    assert_eq!(hex(&outcome.output[..32]), "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
    assert_eq!(hex(&outcome.output[32..]), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn precompile_output_into_text_is_a_memory_fault() {
    let mut p = Asm::new();
    p.li(11, 0).li(12, asm::TEXT_BASE).li(17, 0x100).ecall().exit(0);
    assert_eq!(run(&p).failure, Some(Failure::MemoryFault { addr: u64::from(asm::TEXT_BASE), len: 32 }));
}

#[test]
fn same_job_gives_identical_results_every_time() {
    let mut vm = vm(&touch_pages());
    let first = vm.run(&37u32.to_le_bytes(), &[], &JobLimits::default()).expect("run");
    for _ in 0..100 {
        assert_eq!(vm.run(&37u32.to_le_bytes(), &[], &JobLimits::default()).expect("run"), first);
    }
}

#[test]
fn an_input_over_the_limit_is_an_engine_error() {
    let mut p = Asm::new();
    p.exit(0);
    let image = ProgramImage::parse(&p.elf(), 1 << 24).expect("valid");
    let mut vm = Vm::new(&image, 4096).expect("vm");
    let err = vm.run(&[0u8; 4097], &[], &JobLimits::default()).expect_err("too large");
    assert!(matches!(err, super::VmError::InputTooLarge { which: "onchain", len: 4097, max: 4096 }), "{err}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_fault_in_execute_only_text_names_the_access_not_the_pc() {
    // Found by the fuzzer (fuzz/regressions/vm_diff/fault-in-execute-only-text):
    // the fault decoder read the instruction as a load, which an
    // execute-only page refuses, and reported the pc instead.
    let mut p = Asm::new();
    p.li(5, 0x0000_0100).sh(6, 5, 2).exit(0);
    let mut elf = p.elf();
    // The text segment's p_flags (first program header, offset 24): PF_X only.
    elf[52 + 24..52 + 28].copy_from_slice(&1u32.to_le_bytes());
    let image = ProgramImage::parse(&elf, 1 << 24).expect("valid");
    assert!(!image.segments[0].perms.read);
    let mut vm = Vm::new(&image, 1 << 20).expect("vm");
    let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
    assert_eq!(outcome.failure, Some(Failure::MemoryFault { addr: 0x102, len: 2 }));
}

/// `program`'s ELF with the data segment's memory size set to `mem_size`.
fn with_bss(program: &Asm, mem_size: u32) -> Vm {
    let mut elf = program.elf();
    // The second program header's p_memsz (offset 20).
    elf[52 + 32 + 20..52 + 32 + 24].copy_from_slice(&mem_size.to_le_bytes());
    let image = ProgramImage::parse(&elf, 1 << 24).expect("valid");
    Vm::new(&image, 1 << 20).expect("vm")
}

#[test]
fn a_segment_of_a_gigabyte_loads_at_once_and_is_over_the_default_memory_limit() {
    // Found by the fuzzer (fuzz/regressions/elf/segment-of-a-gigabyte): the
    // image's page runs were built in time quadratic in its pages, and every
    // writable page was copied, so Vm::new never returned.
    let mut p = Asm::new();
    p.data(&[1; 8]).exit(0);
    let started = std::time::Instant::now();
    let mut vm = with_bss(&p, 1 << 30);
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "Vm::new took {:?}", started.elapsed());
    let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
    assert_eq!((outcome.failure, outcome.cycles), (Some(Failure::MemoryLimitExceeded), 0));
    assert_eq!(outcome.peak_memory_bytes, 4096 + (1 << 30));
}

#[test]
fn bss_pages_are_zero_and_data_pages_pristine_for_every_job() {
    let mut p = Asm::new();
    p.data(&[7; 8]);
    // Read a data word and a bss word (64 KiB on), save both, then overwrite both.
    p.li(5, asm::DATA_BASE).lw(6, 5, 0).li(7, asm::DATA_BASE + 0x1_0000).lw(8, 7, 0);
    p.save(6, 0).save(8, 1);
    p.li(9, 0xdead_beef).sw(9, 5, 0).sw(9, 7, 0).commit_saved(2);
    let mut vm = with_bss(&p, 0x2_0000);
    for _ in 0..3 {
        let outcome = vm.run(&[], &[], &JobLimits::default()).expect("run");
        assert_eq!(outcome.failure, None);
        assert_eq!(outcome.output, [[7u8; 4], [0; 4]].concat());
    }
}
