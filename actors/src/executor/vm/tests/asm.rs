//! A tiny rv32im assembler and ELF writer for tests.

/// Where the text segment is linked.
pub(crate) const TEXT_BASE: u32 = 0x0001_0000;
/// Where the data segment (if any) is linked.
pub(crate) const DATA_BASE: u32 = 0x0100_0000;

/// A program under construction: text words and data bytes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Asm {
    pub(crate) text: Vec<u32>,
    data: Vec<u8>,
}

pub(crate) fn r(opcode: u32, rd: u32, f3: u32, rs1: u32, rs2: u32, f7: u32) -> u32 {
    f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opcode
}

pub(crate) fn i(opcode: u32, rd: u32, f3: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32) & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opcode
}

pub(crate) fn s(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (imm & 0x1f) << 7 | 0x23
}

pub(crate) fn b(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 12) & 1) << 31
        | ((imm >> 5) & 0x3f) << 25
        | rs2 << 20
        | rs1 << 15
        | f3 << 12
        | ((imm >> 1) & 0xf) << 8
        | ((imm >> 11) & 1) << 7
        | 0x63
}

pub(crate) fn j(rd: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 20) & 1) << 31
        | ((imm >> 1) & 0x3ff) << 21
        | ((imm >> 11) & 1) << 20
        | ((imm >> 12) & 0xff) << 12
        | rd << 7
        | 0x6f
}

impl Asm {
    pub(crate) fn new() -> Asm {
        Asm::default()
    }

    /// Appends a raw instruction word.
    pub(crate) fn raw(&mut self, word: u32) -> &mut Self {
        self.text.push(word);
        self
    }

    /// Address of the next instruction.
    pub(crate) fn pc(&self) -> u32 {
        TEXT_BASE + 4 * self.text.len() as u32
    }

    /// Sets the data segment.
    pub(crate) fn data(&mut self, bytes: &[u8]) -> &mut Self {
        self.data = bytes.to_vec();
        self
    }

    /// `li rd, value`, always two instructions (lui + addi).
    pub(crate) fn li(&mut self, rd: u32, value: u32) -> &mut Self {
        let lo = ((value & 0xfff) as i32) << 20 >> 20;
        let hi = value.wrapping_sub(lo as u32) & 0xffff_f000;
        self.raw(hi | rd << 7 | 0x37).addi(rd, rd, lo)
    }

    pub(crate) fn addi(&mut self, rd: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(i(0x13, rd, 0, rs1, imm))
    }

    pub(crate) fn mv(&mut self, rd: u32, rs1: u32) -> &mut Self {
        self.addi(rd, rs1, 0)
    }

    pub(crate) fn add(&mut self, rd: u32, rs1: u32, rs2: u32) -> &mut Self {
        self.raw(r(0x33, rd, 0, rs1, rs2, 0))
    }

    pub(crate) fn lw(&mut self, rd: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(i(0x03, rd, 2, rs1, imm))
    }

    pub(crate) fn sw(&mut self, rs2: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(s(2, rs1, rs2, imm))
    }

    pub(crate) fn sh(&mut self, rs2: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(s(1, rs1, rs2, imm))
    }

    pub(crate) fn sb(&mut self, rs2: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(s(0, rs1, rs2, imm))
    }

    pub(crate) fn beq(&mut self, rs1: u32, rs2: u32, imm: i32) -> &mut Self {
        self.raw(b(0, rs1, rs2, imm))
    }

    pub(crate) fn jal(&mut self, rd: u32, imm: i32) -> &mut Self {
        self.raw(j(rd, imm))
    }

    pub(crate) fn jalr(&mut self, rd: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(i(0x67, rd, 0, rs1, imm))
    }

    pub(crate) fn ecall(&mut self) -> &mut Self {
        self.raw(0x0000_0073)
    }

    /// `exit(code)`: five instructions.
    pub(crate) fn exit(&mut self, code: u32) -> &mut Self {
        self.li(10, code).li(17, 93).ecall()
    }

    /// `write(fd, addr, len)`.
    pub(crate) fn write(&mut self, fd: u32, addr: u32, len: u32) -> &mut Self {
        self.li(10, fd).li(11, addr).li(12, len).li(17, 64).ecall()
    }

    /// Stores `rs` at `DATA_SCRATCH + 4 * slot` (clobbers x31).
    pub(crate) fn save(&mut self, rs: u32, slot: u32) -> &mut Self {
        self.li(31, SCRATCH + 4 * slot).sw(rs, 31, 0)
    }

    /// Writes `slots` saved words to the output and exits 0.
    pub(crate) fn commit_saved(&mut self, slots: u32) -> &mut Self {
        self.write(3, SCRATCH, 4 * slots).exit(0)
    }

    /// The program as an ELF32 executable.
    pub(crate) fn elf(&self) -> Vec<u8> {
        let text: Vec<u8> = self.text.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut segments = vec![(TEXT_BASE, text, 5u32)];
        if !self.data.is_empty() {
            segments.push((DATA_BASE, self.data.clone(), 6));
        }
        let phoff = 52u32;
        let mut offset = phoff + 32 * segments.len() as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&TEXT_BASE.to_le_bytes()); // entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&52u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
        for (vaddr, bytes, flags) in &segments {
            let size = bytes.len() as u32;
            for word in [1, offset, *vaddr, *vaddr, size, size, *flags, 4096] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            offset += size;
        }
        for (_, bytes, _) in &segments {
            out.extend_from_slice(bytes);
        }
        out
    }
}

impl Asm {
    /// `li rd, value` for rv64im: `lui` + `addiw` for a sign-extended 32-bit
    /// value, otherwise the upper part, `slli 12` and `addi` (as many as the
    /// value needs).
    pub(crate) fn li64(&mut self, rd: u32, value: u64) -> &mut Self {
        let v = value as i64;
        let lo = (v << 52) >> 52;
        if v == i64::from(v as i32) {
            let hi = (v.wrapping_sub(lo) as u32) & 0xffff_f000;
            return self.raw(hi | rd << 7 | 0x37).raw(i(0x1b, rd, 0, rd, lo as i32));
        }
        let hi = ((i128::from(v) - i128::from(lo)) >> 12) as i64;
        self.li64(rd, hi as u64).raw(i(0x13, rd, 1, rd, 12)).addi(rd, rd, lo as i32)
    }

    /// `sd rs2, imm(rs1)`.
    pub(crate) fn sd(&mut self, rs2: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(s(3, rs1, rs2, imm))
    }

    /// `ld rd, imm(rs1)`.
    pub(crate) fn ld(&mut self, rd: u32, rs1: u32, imm: i32) -> &mut Self {
        self.raw(i(0x03, rd, 3, rs1, imm))
    }

    /// Stores the 64-bit `rs` at `SCRATCH + 8 * slot` (clobbers x31).
    pub(crate) fn save64(&mut self, rs: u32, slot: u32) -> &mut Self {
        self.li(31, SCRATCH + 8 * slot).sd(rs, 31, 0)
    }

    /// Writes `slots` saved doublewords to the output and exits 0.
    pub(crate) fn commit_saved64(&mut self, slots: u32) -> &mut Self {
        self.write(3, SCRATCH, 8 * slots).exit(0)
    }

    /// The program as an ELF64 executable (an rv64im guest), with the same
    /// segments as [`elf`](Self::elf).
    pub(crate) fn elf64(&self) -> Vec<u8> {
        let text: Vec<u8> = self.text.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut segments = vec![(TEXT_BASE, text, 5u32)];
        if !self.data.is_empty() {
            segments.push((DATA_BASE, self.data.clone(), 6));
        }
        let phoff = 64u64;
        let mut offset = phoff + 56 * segments.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&u64::from(TEXT_BASE).to_le_bytes()); // entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&64u16.to_le_bytes());
        out.extend_from_slice(&56u16.to_le_bytes());
        out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
        for (vaddr, bytes, flags) in &segments {
            let size = bytes.len() as u64;
            out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            out.extend_from_slice(&flags.to_le_bytes());
            for word in [offset, u64::from(*vaddr), u64::from(*vaddr), size, size, 4096] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            offset += size;
        }
        for (_, bytes, _) in &segments {
            out.extend_from_slice(bytes);
        }
        out
    }
}

/// A fresh (zero-filled, non-image) page used to collect results.
pub(crate) const SCRATCH: u32 = 0x1000_0000;
