//! Writes RISC-V executables from a list of segments: ELF32 for an rv32im
//! program, ELF64 for an rv64im one.

use rv32im_reference::{Perms, Program, Xlen};

const EHDR: u32 = 52;
const PHDR: u32 = 32;

fn flags(perms: Perms) -> u32 {
    u32::from(perms.exec) | u32::from(perms.write) << 1 | u32::from(perms.read) << 2
}

/// The ELF of `program`: one `PT_LOAD` per segment, file bytes after the
/// program header table.
pub fn write(program: &Program) -> Vec<u8> {
    match program.xlen {
        Xlen::Rv32 => write32(program),
        Xlen::Rv64 => write64(program),
    }
}

const EHDR64: u64 = 64;
const PHDR64: u64 = 56;

fn write64(program: &Program) -> Vec<u8> {
    let count = program.segments.len() as u64;
    let mut out = Vec::new();
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&u64::from(program.entry).to_le_bytes());
    out.extend_from_slice(&EHDR64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&(EHDR64 as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR64 as u16).to_le_bytes());
    out.extend_from_slice(&(count as u16).to_le_bytes());
    out.extend_from_slice(&[0; 6]);
    let mut offset = EHDR64 + PHDR64 * count;
    for segment in &program.segments {
        let size = segment.data.len() as u64;
        out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        out.extend_from_slice(&flags(segment.perms).to_le_bytes());
        let (vaddr, mem_size) = (u64::from(segment.vaddr), u64::from(segment.mem_size));
        for word in [offset, vaddr, vaddr, size, mem_size, 4096] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        offset += size;
    }
    for segment in &program.segments {
        out.extend_from_slice(&segment.data);
    }
    out
}

fn write32(program: &Program) -> Vec<u8> {
    let count = program.segments.len() as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&program.entry.to_le_bytes());
    out.extend_from_slice(&EHDR.to_le_bytes()); // phoff
    out.extend_from_slice(&0u32.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&(EHDR as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR as u16).to_le_bytes());
    out.extend_from_slice(&(count as u16).to_le_bytes());
    out.extend_from_slice(&[0; 6]);
    let mut offset = EHDR + PHDR * count;
    for segment in &program.segments {
        let size = segment.data.len() as u32;
        for word in [1, offset, segment.vaddr, segment.vaddr, size, segment.mem_size, flags(segment.perms), 4096] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        offset += size;
    }
    for segment in &program.segments {
        out.extend_from_slice(&segment.data);
    }
    out
}
