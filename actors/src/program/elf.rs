//! ELF validation and program IDs (Guest ABI v1).
//!
//! [`ProgramImage::parse`] turns the bytes of a guest ELF into the segments
//! the VM maps, or says exactly why it refuses them. The parser is written by
//! hand and reads untrusted bytes: every offset and length is checked, and no
//! input makes it panic or allocate more than about twice the file size.
//!
//! The checks, in the order they run:
//!
//! 1. The file is at most `max_program_bytes` long (before anything else).
//! 2. The header: ELF magic, `ELFCLASS32` (an rv32im guest) or `ELFCLASS64`
//!    (an rv64im guest), little-endian, `EM_RISCV`, `ET_EXEC`, program header
//!    entries of the class's size (32 or 56 bytes), and a program header
//!    table inside the file. Every field is read at its class's width (an
//!    ELF64 address or size is a `u64`), and every later rule is the same for
//!    both classes.
//! 3. Each `PT_LOAD` with a non-zero memory size (other program headers and
//!    all section headers are ignored): its end does not wrap, its file size
//!    is at most its memory size, it lies in
//!    `[GUEST_WINDOW_START, GUEST_WINDOW_END)`, it is not both writable and
//!    executable, and its file bytes are inside the file.
//! 4. The segments together: there is at least one, together they carry no
//!    more file bytes than the file has, no two overlap, and no 4 KiB page
//!    is shared by a writable and an executable segment (the VM maps whole
//!    pages, so W^X must hold per page).
//! 5. The entry point is 4-byte aligned and inside an executable segment.

use super::{Isa, ProgramId, GUEST_WINDOW_END, GUEST_WINDOW_START, PAGE_SIZE};
use std::fmt;

const ELF_MAGIC: &[u8] = b"\x7fELF";
const EHDR_SIZE: usize = 52;
const PHDR_SIZE: usize = 32;
const EHDR64_SIZE: usize = 64;
const PHDR64_SIZE: usize = 56;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_RISCV: u16 = 243;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Why an ELF was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ElfError {
    /// The file is longer than `max_program_bytes`.
    #[error("program is {size} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// Length of the file in bytes.
        size: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The file does not start with the ELF magic.
    #[error("not an elf file (bad magic)")]
    NotElf,
    /// A header or table runs past the end of the file.
    #[error("truncated elf: the {what} runs past the end of the file")]
    Truncated {
        /// What was cut off ("elf header" (52 bytes), "elf64 header" (64
        /// bytes), "program header table").
        what: &'static str,
    },
    /// `EI_CLASS` is neither `ELFCLASS32` nor `ELFCLASS64`.
    #[error("elf class {0} is neither ELFCLASS32 (1, rv32im) nor ELFCLASS64 (2, rv64im)")]
    WrongClass(u8),
    /// `EI_DATA` is not `ELFDATA2LSB`.
    #[error("elf data encoding {0} is not little-endian (1)")]
    WrongEndianness(u8),
    /// `e_machine` is not `EM_RISCV`.
    #[error("elf machine {0} is not RISC-V (243)")]
    WrongMachine(u16),
    /// `e_type` is not `ET_EXEC` (for example a relocatable or a PIE).
    #[error("elf type {0} is not ET_EXEC (2)")]
    NotExecutable(u16),
    /// `e_phentsize` is not the program header size of the file's class
    /// (32 bytes for ELF32, 56 for ELF64): for instance an ELF32 body under
    /// an `ELFCLASS64` ident.
    #[error("program header entry size is {size} bytes, expected {expected} for ELFCLASS{bits}")]
    BadProgramHeaderSize {
        /// `e_phentsize`.
        size: u16,
        /// The class's entry size.
        expected: u16,
        /// The class: 32 or 64.
        bits: u32,
    },
    /// `vaddr + memsz` does not fit in the class's address width.
    #[error("segment at {vaddr:#010x} with mem size {mem_size:#x} wraps past the {bits}-bit address space")]
    MemSizeOverflow {
        /// Segment start.
        vaddr: u64,
        /// Segment size in memory.
        mem_size: u64,
        /// The class's address width: 32 or 64.
        bits: u32,
    },
    /// A segment has more file bytes than memory bytes.
    #[error("segment at {vaddr:#010x} has file size {file_size:#x} above its mem size {mem_size:#x}")]
    FileSizeExceedsMemSize {
        /// Segment start.
        vaddr: u64,
        /// `p_filesz`.
        file_size: u64,
        /// `p_memsz`.
        mem_size: u64,
    },
    /// A segment is not inside `[GUEST_WINDOW_START, GUEST_WINDOW_END)`.
    #[error(
        "segment at {vaddr:#010x} with mem size {mem_size:#x} is outside the guest window [{lo:#010x}, {hi:#010x})",
        lo = GUEST_WINDOW_START,
        hi = GUEST_WINDOW_END
    )]
    SegmentOutsideWindow {
        /// Segment start (64 bits wide in an ELF64).
        vaddr: u64,
        /// Segment size in memory.
        mem_size: u64,
    },
    /// A segment has both the W and the X flag.
    #[error("segment at {vaddr:#010x} is both writable and executable")]
    WritableAndExecutable {
        /// Segment start.
        vaddr: u32,
    },
    /// A segment's file bytes are not inside the file.
    #[error(
        "segment at {vaddr:#010x}: file bytes at offset {offset:#x} (size {file_size:#x}) run past the end of the file"
    )]
    SegmentDataOutOfFile {
        /// Segment start.
        vaddr: u32,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        file_size: u64,
    },
    /// The segments reuse file bytes so much that they carry more data than
    /// the file holds (a linker never does this; it guards memory).
    #[error("loadable segments carry {total} bytes of file data, more than the {size}-byte file")]
    SegmentDataExceedsFile {
        /// Sum of the segments' file sizes (saturated at `u64::MAX`).
        total: u64,
        /// Length of the file.
        size: usize,
    },
    /// Two segments overlap in guest memory.
    #[error("segments at {first:#010x} and {second:#010x} overlap")]
    SegmentsOverlap {
        /// Start of the lower segment.
        first: u32,
        /// Start of the higher segment.
        second: u32,
    },
    /// A writable and an executable segment share a page.
    #[error(
        "page {page:#010x} is shared by writable segment {writable:#010x} and executable segment {executable:#010x}"
    )]
    WritableAndExecutablePage {
        /// Address of the shared page.
        page: u32,
        /// Start of the writable segment.
        writable: u32,
        /// Start of the executable segment.
        executable: u32,
    },
    /// No `PT_LOAD` segment has a non-zero memory size.
    #[error("elf has no loadable segment")]
    NoLoadableSegments,
    /// The entry point is not 4-byte aligned.
    #[error("entry point {entry:#010x} is not 4-byte aligned")]
    EntryMisaligned {
        /// `e_entry`.
        entry: u64,
    },
    /// The entry point is not inside an executable segment.
    #[error("entry point {entry:#010x} is not inside an executable segment")]
    EntryNotExecutable {
        /// `e_entry` (64 bits wide in an ELF64).
        entry: u64,
    },
}

/// Access rights of a segment, from its `p_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentPerms {
    /// `PF_R`.
    pub read: bool,
    /// `PF_W`.
    pub write: bool,
    /// `PF_X`.
    pub exec: bool,
}

impl SegmentPerms {
    fn from_flags(flags: u32) -> Self {
        Self { read: flags & PF_R != 0, write: flags & PF_W != 0, exec: flags & PF_X != 0 }
    }
}

/// One validated `PT_LOAD` segment.
#[derive(Clone, PartialEq, Eq)]
pub struct Segment {
    /// Guest address of the first byte.
    pub vaddr: u32,
    /// Size in guest memory; the bytes past `data` are zero.
    /// `vaddr + mem_size` never exceeds [`GUEST_WINDOW_END`].
    pub mem_size: u32,
    /// The segment's file bytes (`p_filesz` of them, at most `mem_size`).
    pub data: Vec<u8>,
    /// How the VM maps it.
    pub perms: SegmentPerms,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("vaddr", &format_args!("{:#010x}", self.vaddr))
            .field("mem_size", &format_args!("{:#x}", self.mem_size))
            .field("data_len", &self.data.len())
            .field("perms", &self.perms)
            .finish()
    }
}

/// A validated guest program, ready for the VM to map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramImage {
    /// Keccak-256 of the ELF bytes.
    pub id: ProgramId,
    /// The instruction set, from the ELF class: `ELFCLASS32` is rv32im,
    /// `ELFCLASS64` rv64im.
    pub isa: Isa,
    /// Entry point: 4-byte aligned, inside an executable segment.
    pub entry: u32,
    /// Loadable segments, sorted by `vaddr`, non-overlapping, each with
    /// `mem_size > 0`.
    pub segments: Vec<Segment>,
}

impl ProgramImage {
    /// Validates `elf` against Guest ABI v1 (see the module docs for the
    /// rules) and decodes its loadable segments.
    pub fn parse(elf: &[u8], max_program_bytes: usize) -> Result<ProgramImage, ElfError> {
        if elf.len() > max_program_bytes {
            return Err(ElfError::TooLarge { size: elf.len(), max: max_program_bytes });
        }
        let header = Header::parse(elf)?;

        let mut loads = Vec::new();
        let mut file_bytes: usize = 0;
        for entry in header.program_headers.chunks_exact(header.class.phdr_size()) {
            let Some(load) = Load::parse(entry, elf, header.class)? else {
                continue;
            };
            file_bytes = file_bytes.saturating_add(load.data.len());
            loads.push(load);
        }
        if file_bytes > elf.len() {
            let total = u64::try_from(file_bytes).unwrap_or(u64::MAX);
            return Err(ElfError::SegmentDataExceedsFile { total, size: elf.len() });
        }
        if loads.is_empty() {
            return Err(ElfError::NoLoadableSegments);
        }
        loads.sort_by_key(|load| load.vaddr);
        for pair in loads.windows(2) {
            if let [a, b] = pair {
                if a.end > b.vaddr {
                    return Err(ElfError::SegmentsOverlap { first: a.vaddr, second: b.vaddr });
                }
            }
        }
        check_shared_pages(&loads)?;

        let entry = header.entry;
        if entry % 4 != 0 {
            return Err(ElfError::EntryMisaligned { entry });
        }
        // Compared in 64 bits: an ELF64 entry above 4 GiB never aliases a
        // segment's 32-bit address.
        let inside = |l: &Load<'_>| u64::from(l.vaddr) <= entry && entry < u64::from(l.end);
        if !loads.iter().any(|l| l.perms.exec && inside(l)) {
            return Err(ElfError::EntryNotExecutable { entry });
        }
        // Inside a segment, so inside the window.
        let entry = u32::try_from(entry).map_err(|_| ElfError::EntryNotExecutable { entry })?;

        // Copied only now, once the file data is known to be bounded.
        let segments = loads
            .into_iter()
            .map(|load| Segment {
                vaddr: load.vaddr,
                mem_size: load.mem_size,
                data: load.data.to_vec(),
                perms: load.perms,
            })
            .collect();
        Ok(ProgramImage { id: ProgramId::of(elf), isa: header.class.isa(), entry, segments })
    }

    /// How many [`PAGE_SIZE`] pages of guest memory the image covers. A page
    /// that several segments touch counts once. Multiply by `PAGE_SIZE` (or
    /// call [`image_bytes`](Self::image_bytes)) for bytes.
    pub fn image_pages(&self) -> u64 {
        let page = u64::from(PAGE_SIZE);
        let mut pages = 0u64;
        let mut next_uncounted = 0u64;
        for seg in self.segments.iter().filter(|s| s.mem_size > 0) {
            let start = u64::from(seg.vaddr);
            let first = (start / page).max(next_uncounted);
            let last = (start + u64::from(seg.mem_size) - 1) / page;
            if first <= last {
                pages += last - first + 1;
                next_uncounted = last + 1;
            }
        }
        pages
    }

    /// [`image_pages`](Self::image_pages) in bytes.
    pub fn image_bytes(&self) -> u64 {
        self.image_pages().saturating_mul(u64::from(PAGE_SIZE))
    }
}

/// The ELF class: the width of every address, size and offset field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Elf32,
    Elf64,
}

impl Class {
    fn phdr_size(self) -> usize {
        match self {
            Class::Elf32 => PHDR_SIZE,
            Class::Elf64 => PHDR64_SIZE,
        }
    }

    fn bits(self) -> u32 {
        match self {
            Class::Elf32 => 32,
            Class::Elf64 => 64,
        }
    }

    fn isa(self) -> Isa {
        match self {
            Class::Elf32 => Isa::Rv32im,
            Class::Elf64 => Isa::Rv64im,
        }
    }

    /// A word-sized field (`Elf32_Addr`/`Elf32_Off` or their 64-bit
    /// counterparts) at `at32` in ELF32 or `at64` in ELF64.
    fn word(self, bytes: &[u8], at32: usize, at64: usize) -> Option<u64> {
        match self {
            Class::Elf32 => u32_at(bytes, at32).map(u64::from),
            Class::Elf64 => u64_at(bytes, at64),
        }
    }
}

/// The fields of the ELF header that matter, after the header checks.
struct Header<'a> {
    class: Class,
    /// `e_entry`, at the class's width.
    entry: u64,
    /// The program header table, `e_phnum` entries of the class's size.
    program_headers: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(elf: &'a [u8]) -> Result<Self, ElfError> {
        if elf.get(..ELF_MAGIC.len()) != Some(ELF_MAGIC) {
            return Err(ElfError::NotElf);
        }
        let truncated = || ElfError::Truncated { what: "elf header" };
        let class = match elf.get(4).copied().ok_or_else(truncated)? {
            ELFCLASS64 => Class::Elf64,
            _ => Class::Elf32,
        };
        let h = match class {
            Class::Elf32 => elf.get(..EHDR_SIZE).ok_or_else(truncated)?,
            Class::Elf64 => elf.get(..EHDR64_SIZE).ok_or(ElfError::Truncated { what: "elf64 header" })?,
        };
        let ident_class = h.get(4).copied().ok_or_else(truncated)?;
        if ident_class != ELFCLASS32 && ident_class != ELFCLASS64 {
            return Err(ElfError::WrongClass(ident_class));
        }
        let data = h.get(5).copied().ok_or_else(truncated)?;
        if data != ELFDATA2LSB {
            return Err(ElfError::WrongEndianness(data));
        }
        let machine = u16_at(h, 18).ok_or_else(truncated)?;
        if machine != EM_RISCV {
            return Err(ElfError::WrongMachine(machine));
        }
        let e_type = u16_at(h, 16).ok_or_else(truncated)?;
        if e_type != ET_EXEC {
            return Err(ElfError::NotExecutable(e_type));
        }
        let entry = class.word(h, 24, 24).ok_or_else(truncated)?;
        let phoff = class.word(h, 28, 32).ok_or_else(truncated)?;
        let (at_phentsize, at_phnum) = match class {
            Class::Elf32 => (42, 44),
            Class::Elf64 => (54, 56),
        };
        let phentsize = u16_at(h, at_phentsize).ok_or_else(truncated)?;
        let phnum = u16_at(h, at_phnum).ok_or_else(truncated)?;
        // With no program headers the entry size is meaningless; the ELF is
        // then refused as having no loadable segment.
        if phnum > 0 && usize::from(phentsize) != class.phdr_size() {
            let expected = u16::try_from(class.phdr_size()).unwrap_or(u16::MAX);
            return Err(ElfError::BadProgramHeaderSize { size: phentsize, expected, bits: class.bits() });
        }
        let table = ElfError::Truncated { what: "program header table" };
        let start = usize::try_from(phoff).map_err(|_| table.clone())?;
        let len = usize::from(phnum).checked_mul(class.phdr_size()).ok_or_else(|| table.clone())?;
        let end = start.checked_add(len).ok_or_else(|| table.clone())?;
        let program_headers = elf.get(start..end).ok_or(table)?;
        Ok(Self { class, entry, program_headers })
    }
}

/// A `PT_LOAD` entry that passed the per-segment checks.
struct Load<'a> {
    vaddr: u32,
    mem_size: u32,
    /// `vaddr + mem_size`, checked.
    end: u32,
    /// Its file bytes, inside the ELF.
    data: &'a [u8],
    perms: SegmentPerms,
}

impl<'a> Load<'a> {
    /// Reads one program header entry of `class`: `None` if it is not a
    /// `PT_LOAD` with a non-zero memory size, an error if it breaks a
    /// per-segment rule. The checks run in 64 bits for both classes (an
    /// ELF32 field is zero-extended), so no value is ever truncated.
    fn parse(entry: &[u8], elf: &'a [u8], class: Class) -> Result<Option<Self>, ElfError> {
        let cut = || ElfError::Truncated { what: "program header" };
        let word = |at32, at64| class.word(entry, at32, at64).ok_or_else(cut);
        let p_type = u32_at(entry, 0).ok_or_else(cut)?;
        let mem_size = word(20, 40)?;
        if p_type != PT_LOAD || mem_size == 0 {
            return Ok(None);
        }
        let (offset, vaddr, file_size) = (word(4, 8)?, word(8, 16)?, word(16, 32)?);
        let flags = match class {
            Class::Elf32 => u32_at(entry, 24),
            Class::Elf64 => u32_at(entry, 4),
        }
        .ok_or_else(cut)?;
        let bits = class.bits();
        let address_space_end = 1u128 << bits;
        let end = vaddr
            .checked_add(mem_size)
            .filter(|&end| u128::from(end) < address_space_end)
            .ok_or(ElfError::MemSizeOverflow { vaddr, mem_size, bits })?;
        if file_size > mem_size {
            return Err(ElfError::FileSizeExceedsMemSize { vaddr, file_size, mem_size });
        }
        let outside = ElfError::SegmentOutsideWindow { vaddr, mem_size };
        if vaddr < u64::from(GUEST_WINDOW_START) || end > u64::from(GUEST_WINDOW_END) {
            return Err(outside);
        }
        // Inside the window, so all three fit in 32 bits.
        let narrow = |value: u64| u32::try_from(value).map_err(|_| outside.clone());
        let (vaddr, mem_size, end) = (narrow(vaddr)?, narrow(mem_size)?, narrow(end)?);
        let perms = SegmentPerms::from_flags(flags);
        if perms.write && perms.exec {
            return Err(ElfError::WritableAndExecutable { vaddr });
        }
        // A segment with no file bytes (pure .bss) may carry any offset.
        let data = if file_size == 0 {
            &[][..]
        } else {
            let out_of_file = ElfError::SegmentDataOutOfFile { vaddr, offset, file_size };
            let start = usize::try_from(offset).map_err(|_| out_of_file.clone())?;
            let len = usize::try_from(file_size).map_err(|_| out_of_file.clone())?;
            let stop = start.checked_add(len).ok_or_else(|| out_of_file.clone())?;
            elf.get(start..stop).ok_or(out_of_file)?
        };
        Ok(Some(Self { vaddr, mem_size, end, data, perms }))
    }
}

/// W^X per page: no page may be touched by a writable and an executable
/// segment. `loads` is sorted and non-overlapping, so a page can be shared
/// only at segment boundaries: the last page of one segment with the first
/// page of the next ones. One pass carries that boundary page along.
fn check_shared_pages(loads: &[Load<'_>]) -> Result<(), ElfError> {
    // (page index, start of a writable segment on it, of an executable one)
    let mut open: Option<(u32, Option<u32>, Option<u32>)> = None;
    for load in loads {
        let first = load.vaddr / PAGE_SIZE;
        let last = load.end.saturating_sub(1) / PAGE_SIZE;
        let own_w = load.perms.write.then_some(load.vaddr);
        let own_x = load.perms.exec.then_some(load.vaddr);
        let (mut w, mut x) = (own_w, own_x);
        if let Some((page, open_w, open_x)) = open {
            if page == first {
                w = w.or(open_w);
                x = x.or(open_x);
            }
        }
        if let (Some(writable), Some(executable)) = (w, x) {
            let page = first.saturating_mul(PAGE_SIZE);
            return Err(ElfError::WritableAndExecutablePage { page, writable, executable });
        }
        open = Some(if last == first { (first, w, x) } else { (last, own_w, own_x) });
    }
    Ok(())
}

fn read_array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    read_array(bytes, at).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    read_array(bytes, at).map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    read_array(bytes, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;
    const R: u32 = PF_R;
    const RX: u32 = PF_R | PF_X;
    const RW: u32 = PF_R | PF_W;
    /// `li a7, 93; li a0, 0; ecall`: exit(0).
    const EXIT_0: [u32; 3] = [0x05d0_0893, 0x0000_0513, 0x0000_0073];
    const PT_NOTE: u32 = 4;
    const PT_GNU_STACK: u32 = 0x6474_e551;

    fn text() -> Vec<u8> {
        EXIT_0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    struct Ph {
        p_type: u32,
        vaddr: u64,
        mem_size: u64,
        flags: u32,
        data: Vec<u8>,
    }

    /// Writes an ELF32 (or, with `layout64`, an ELF64) header, the program
    /// headers right after it, then each segment's data in order. `class` is
    /// the ident byte alone, so that it can disagree with the layout.
    struct ElfBuilder {
        layout64: bool,
        class: u8,
        data_encoding: u8,
        e_type: u16,
        machine: u16,
        entry: u64,
        phentsize: u16,
        phs: Vec<Ph>,
    }

    impl ElfBuilder {
        fn new(entry: u64) -> Self {
            Self {
                layout64: false,
                class: ELFCLASS32,
                data_encoding: ELFDATA2LSB,
                e_type: ET_EXEC,
                machine: EM_RISCV,
                entry,
                phentsize: 32,
                phs: Vec::new(),
            }
        }

        fn new64(entry: u64) -> Self {
            Self { layout64: true, class: ELFCLASS64, phentsize: 56, ..Self::new(entry) }
        }

        /// The ELF64 twin of [`minimal`](Self::minimal).
        fn minimal64() -> Self {
            Self::new64(0x10000).load(0x10000, 12, RX, text())
        }

        /// One read+exec segment at 0x10000 holding `exit(0)`.
        fn minimal() -> Self {
            Self::new(0x10000).load(0x10000, 12, RX, text())
        }

        fn load(self, vaddr: u64, mem_size: u64, flags: u32, data: Vec<u8>) -> Self {
            self.ph(PT_LOAD, vaddr, mem_size, flags, data)
        }

        fn ph(mut self, p_type: u32, vaddr: u64, mem_size: u64, flags: u32, data: Vec<u8>) -> Self {
            self.phs.push(Ph { p_type, vaddr, mem_size, flags, data });
            self
        }

        fn build(&self) -> Vec<u8> {
            if self.layout64 {
                return self.build64();
            }
            let u32_of = |v: u64| u32::try_from(v).unwrap();
            let mut out = Vec::new();
            out.extend_from_slice(ELF_MAGIC);
            out.extend_from_slice(&[self.class, self.data_encoding, 1]);
            out.resize(16, 0);
            out.extend_from_slice(&self.e_type.to_le_bytes());
            out.extend_from_slice(&self.machine.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes()); // e_version
            out.extend_from_slice(&u32_of(self.entry).to_le_bytes());
            out.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
            out.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
            out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
            out.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
            out.extend_from_slice(&self.phentsize.to_le_bytes());
            out.extend_from_slice(&u16::try_from(self.phs.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
            assert_eq!(out.len(), EHDR_SIZE);
            let mut offset = EHDR_SIZE + PHDR_SIZE * self.phs.len();
            for ph in &self.phs {
                let filesz = u32::try_from(ph.data.len()).unwrap();
                let (vaddr, mem_size) = (u32_of(ph.vaddr), u32_of(ph.mem_size));
                let fields = [ph.p_type, u32::try_from(offset).unwrap(), vaddr, vaddr, filesz, mem_size, ph.flags, 4];
                out.extend(fields.iter().flat_map(|f| f.to_le_bytes()));
                offset += ph.data.len();
            }
            for ph in &self.phs {
                out.extend_from_slice(&ph.data);
            }
            out
        }

        fn build64(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(ELF_MAGIC);
            out.extend_from_slice(&[self.class, self.data_encoding, 1]);
            out.resize(16, 0);
            out.extend_from_slice(&self.e_type.to_le_bytes());
            out.extend_from_slice(&self.machine.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes()); // e_version
            out.extend_from_slice(&self.entry.to_le_bytes());
            out.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
            out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
            out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
            out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
            out.extend_from_slice(&self.phentsize.to_le_bytes());
            out.extend_from_slice(&u16::try_from(self.phs.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
            assert_eq!(out.len(), EHDR64_SIZE);
            let mut offset = EHDR64_SIZE + PHDR64_SIZE * self.phs.len();
            for ph in &self.phs {
                out.extend_from_slice(&ph.p_type.to_le_bytes());
                out.extend_from_slice(&ph.flags.to_le_bytes());
                let filesz = ph.data.len() as u64;
                for field in [offset as u64, ph.vaddr, ph.vaddr, filesz, ph.mem_size, 4096] {
                    out.extend_from_slice(&field.to_le_bytes());
                }
                offset += ph.data.len();
            }
            for ph in &self.phs {
                out.extend_from_slice(&ph.data);
            }
            out
        }
    }

    /// Offset of field `at` of program header `index` in a built ELF64.
    fn ph64_field(index: usize, at: usize) -> usize {
        EHDR64_SIZE + PHDR64_SIZE * index + at
    }

    fn set_u64(elf: &mut [u8], at: usize, value: u64) {
        elf[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// Offset of field `at` of program header `index` in a built ELF.
    fn ph_field(index: usize, at: usize) -> usize {
        EHDR_SIZE + PHDR_SIZE * index + at
    }

    fn set_u32(elf: &mut [u8], at: usize, value: u32) {
        elf[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    fn parse(builder: &ElfBuilder) -> Result<ProgramImage, ElfError> {
        ProgramImage::parse(&builder.build(), MAX)
    }

    #[test]
    fn accepts_minimal_program_linked_at_0x10000() {
        let image = parse(&ElfBuilder::minimal()).unwrap();
        assert_eq!((image.entry, image.isa), (0x10000, Isa::Rv32im));
        assert_eq!(
            image.segments,
            vec![Segment {
                vaddr: 0x10000,
                mem_size: 12,
                data: text(),
                perms: SegmentPerms { read: true, write: false, exec: true },
            }]
        );
        assert_eq!(image.image_pages(), 1);
        assert_eq!(image.image_bytes(), 4096);
    }

    #[test]
    fn accepts_text_rodata_data_and_bss_in_any_header_order() {
        let builder = ElfBuilder::new(0x10000)
            .load(0x12000, 0x3000, RW, vec![7; 0x10]) // .data + .bss
            .load(0x10000, 12, RX, text())
            .load(0x11000, 5, R, b"hello".to_vec());
        let image = parse(&builder).unwrap();
        let starts: Vec<u32> = image.segments.iter().map(|s| s.vaddr).collect();
        assert_eq!(image.isa, Isa::Rv32im);
        assert_eq!(starts, [0x10000, 0x11000, 0x12000]);
        let data = &image.segments[2];
        assert_eq!((data.mem_size, data.data.len()), (0x3000, 0x10));
        assert_eq!(data.perms, SegmentPerms { read: true, write: true, exec: false });
        assert_eq!(image.segments[1].data, b"hello");
        assert_eq!(image.image_pages(), 5);
    }

    #[test]
    fn accepts_compatible_segments_sharing_a_page() {
        // .text and .rodata in one page, then .rodata and .data in another.
        let builder = ElfBuilder::new(0x10000).load(0x10000, 12, RX, text()).load(0x10010, 0x1000, R, vec![1; 4]).load(
            0x11010,
            0x10,
            RW,
            vec![2; 4],
        );
        let image = parse(&builder).unwrap();
        assert_eq!(image.segments.len(), 3);
        assert_eq!(image.image_pages(), 2, "shared pages count once");
    }

    #[test]
    fn accepts_segment_ending_exactly_at_window_end() {
        let builder = ElfBuilder::minimal().load(u64::from(GUEST_WINDOW_END) - 0x1000, 0x1000, RW, vec![]);
        assert!(parse(&builder).is_ok());
    }

    #[test]
    fn skips_zero_size_segments_and_other_program_headers() {
        let builder = ElfBuilder::minimal()
            .load(0, 0, PF_R | PF_W | PF_X, vec![]) // empty: ignored even outside the window
            .ph(PT_GNU_STACK, 0, 0, PF_R | PF_W | PF_X, vec![])
            .ph(PT_NOTE, 0x1000, 4, R, vec![0; 4]);
        let image = parse(&builder).unwrap();
        assert_eq!(image.segments.len(), 1);
    }

    #[test]
    fn an_image_is_named_by_the_id_of_its_file() {
        let elf = ElfBuilder::minimal().build();
        assert_eq!(ProgramImage::parse(&elf, MAX).unwrap().id, ProgramId::of(&elf));
    }

    #[test]
    fn accepts_file_exactly_at_max_program_bytes() {
        let elf = ElfBuilder::minimal().build();
        assert!(ProgramImage::parse(&elf, elf.len()).is_ok());
    }

    #[test]
    fn rejects_file_one_byte_over_max_program_bytes() {
        let elf = ElfBuilder::minimal().build();
        let max = elf.len() - 1;
        assert_eq!(ProgramImage::parse(&elf, max), Err(ElfError::TooLarge { size: elf.len(), max }));
    }

    #[test]
    fn checks_size_before_parsing() {
        assert_eq!(ProgramImage::parse(b"garbage", 3), Err(ElfError::TooLarge { size: 7, max: 3 }));
    }

    #[test]
    fn rejects_bad_magic() {
        assert_eq!(ProgramImage::parse(b"\x7fELG and more bytes", MAX), Err(ElfError::NotElf));
        assert_eq!(ProgramImage::parse(b"", MAX), Err(ElfError::NotElf));
    }

    #[test]
    fn rejects_truncated_header() {
        let elf = ElfBuilder::minimal().build();
        assert_eq!(ProgramImage::parse(&elf[..51], MAX), Err(ElfError::Truncated { what: "elf header" }));
    }

    #[test]
    fn rejects_program_header_table_past_end_of_file() {
        let mut elf = ElfBuilder::minimal().build();
        set_u32(&mut elf, 28, u32::MAX - 8); // e_phoff
        let table = Err(ElfError::Truncated { what: "program header table" });
        assert_eq!(ProgramImage::parse(&elf, MAX), table);
        let elf = ElfBuilder::minimal().load(0x20000, 4, R, vec![]).build();
        assert_eq!(ProgramImage::parse(&elf[..EHDR_SIZE + 40], MAX), table);
    }

    #[test]
    fn rejects_segment_data_past_end_of_file() {
        let elf = ElfBuilder::minimal().build();
        let err = ProgramImage::parse(&elf[..elf.len() - 1], MAX);
        let (vaddr, offset, file_size) = (0x10000, 84, 12);
        assert_eq!(err, Err(ElfError::SegmentDataOutOfFile { vaddr, offset, file_size }));
        let mut elf = elf;
        set_u32(&mut elf, ph_field(0, 4), u32::MAX - 4); // p_offset
        assert!(matches!(ProgramImage::parse(&elf, MAX), Err(ElfError::SegmentDataOutOfFile { .. })));
    }

    #[test]
    fn rejects_segments_that_reuse_file_bytes_beyond_the_file_size() {
        let mut elf = ElfBuilder::minimal().load(0x20000, 12, R, vec![]).build();
        set_u32(&mut elf, ph_field(1, 4), 0); // p_offset: the whole file...
        set_u32(&mut elf, ph_field(1, 16), 12); // ...p_filesz: 12 bytes
        assert!(ProgramImage::parse(&elf, MAX).is_ok(), "shared bytes within the file size are fine");
        let len = u32::try_from(elf.len()).unwrap();
        set_u32(&mut elf, ph_field(1, 16), len);
        set_u32(&mut elf, ph_field(1, 20), len);
        let err = ProgramImage::parse(&elf, MAX);
        assert_eq!(err, Err(ElfError::SegmentDataExceedsFile { total: u64::from(len) + 12, size: elf.len() }));
    }

    #[test]
    fn rejects_classes_other_than_32_and_64_bits() {
        for class in [0, 3, 0xff] {
            let builder = ElfBuilder { class, ..ElfBuilder::minimal() };
            assert_eq!(parse(&builder), Err(ElfError::WrongClass(class)));
        }
    }

    #[test]
    fn rejects_big_endian() {
        let builder = ElfBuilder { data_encoding: 2, ..ElfBuilder::minimal() };
        assert_eq!(parse(&builder), Err(ElfError::WrongEndianness(2)));
    }

    #[test]
    fn rejects_machine_other_than_riscv() {
        let builder = ElfBuilder { machine: 62, ..ElfBuilder::minimal() };
        assert_eq!(parse(&builder), Err(ElfError::WrongMachine(62)));
    }

    #[test]
    fn rejects_type_other_than_exec() {
        let builder = ElfBuilder { e_type: 3, ..ElfBuilder::minimal() };
        assert_eq!(parse(&builder), Err(ElfError::NotExecutable(3)));
    }

    #[test]
    fn rejects_program_header_entry_size_other_than_32() {
        let builder = ElfBuilder { phentsize: 56, ..ElfBuilder::minimal() };
        assert_eq!(parse(&builder), Err(ElfError::BadProgramHeaderSize { size: 56, expected: 32, bits: 32 }));
    }

    #[test]
    fn rejects_segment_whose_end_overflows_u32() {
        let builder = ElfBuilder::minimal().load(0xffff_f000, 0x1000, RW, vec![]);
        let err = Err(ElfError::MemSizeOverflow { vaddr: 0xffff_f000, mem_size: 0x1000, bits: 32 });
        assert_eq!(parse(&builder), err);
    }

    #[test]
    fn rejects_file_size_larger_than_mem_size() {
        let builder = ElfBuilder::minimal().load(0x20000, 2, R, vec![0; 3]);
        let err = Err(ElfError::FileSizeExceedsMemSize { vaddr: 0x20000, file_size: 3, mem_size: 2 });
        assert_eq!(parse(&builder), err);
    }

    #[test]
    fn rejects_segment_below_guest_window() {
        let builder = ElfBuilder::minimal().load(0xf000, 0x1000, R, vec![]);
        let err = Err(ElfError::SegmentOutsideWindow { vaddr: 0xf000, mem_size: 0x1000 });
        assert_eq!(parse(&builder), err);
    }

    #[test]
    fn rejects_segment_ending_past_guest_window() {
        let builder = ElfBuilder::minimal().load(0x7fff_f000, 0x1001, RW, vec![]);
        let err = Err(ElfError::SegmentOutsideWindow { vaddr: 0x7fff_f000, mem_size: 0x1001 });
        assert_eq!(parse(&builder), err);
    }

    #[test]
    fn rejects_segment_that_is_writable_and_executable() {
        let builder = ElfBuilder::new(0x10000).load(0x10000, 12, PF_R | PF_W | PF_X, text());
        assert_eq!(parse(&builder), Err(ElfError::WritableAndExecutable { vaddr: 0x10000 }));
    }

    #[test]
    fn rejects_overlapping_segments() {
        let builder = ElfBuilder::minimal().load(0x20000, 0x100, R, vec![]).load(0x200ff, 1, R, vec![]);
        assert_eq!(parse(&builder), Err(ElfError::SegmentsOverlap { first: 0x20000, second: 0x200ff }));
        let builder = ElfBuilder::minimal().load(0x10000, 4, R, vec![]);
        assert_eq!(parse(&builder), Err(ElfError::SegmentsOverlap { first: 0x10000, second: 0x10000 }));
    }

    #[test]
    fn rejects_writable_and_executable_segments_sharing_a_page() {
        let builder = ElfBuilder::minimal().load(0x10ff0, 0x20, RW, vec![]);
        let err = ElfError::WritableAndExecutablePage { page: 0x10000, writable: 0x10ff0, executable: 0x10000 };
        assert_eq!(parse(&builder), Err(err));
        // Also when a read-only segment sits between them in that page, and
        // when the executable segment comes second.
        let builder = ElfBuilder::new(0x21000).load(0x20000, 0x800, RW, vec![]).load(0x20800, 0x10, R, vec![]).load(
            0x20f00,
            0x200,
            RX,
            vec![0; 4],
        );
        let err = ElfError::WritableAndExecutablePage { page: 0x20000, writable: 0x20000, executable: 0x20f00 };
        assert_eq!(parse(&builder), Err(err));
    }

    #[test]
    fn rejects_elf_without_loadable_segments() {
        let builder = ElfBuilder::new(0x10000).load(0x10000, 0, RX, vec![]).ph(PT_NOTE, 0x10000, 4, R, vec![0; 4]);
        assert_eq!(parse(&builder), Err(ElfError::NoLoadableSegments));
        assert_eq!(parse(&ElfBuilder::new(0x10000)), Err(ElfError::NoLoadableSegments));
    }

    #[test]
    fn rejects_entry_outside_executable_segment() {
        let builder = ElfBuilder { entry: 0x20000, ..ElfBuilder::minimal().load(0x20000, 4, RW, vec![]) };
        assert_eq!(parse(&builder), Err(ElfError::EntryNotExecutable { entry: 0x20000 }));
        let builder = ElfBuilder { entry: 0x1000c, ..ElfBuilder::minimal() };
        assert_eq!(parse(&builder), Err(ElfError::EntryNotExecutable { entry: 0x1000c }));
    }

    #[test]
    fn rejects_misaligned_entry() {
        let builder = ElfBuilder { entry: 0x10002, ..ElfBuilder::minimal() };
        assert_eq!(parse(&builder), Err(ElfError::EntryMisaligned { entry: 0x10002 }));
    }

    #[test]
    fn error_messages_carry_hex_addresses() {
        let err = ElfError::SegmentOutsideWindow { vaddr: 0xf000, mem_size: 0x10 };
        assert_eq!(
            err.to_string(),
            "segment at 0x0000f000 with mem size 0x10 is outside the guest window [0x00010000, 0x80000000)"
        );
    }

    #[test]
    fn parse_never_panics_on_truncated_or_corrupted_input() {
        // The note's bytes come first so that every cut loses loaded bytes.
        let elf = ElfBuilder::new(0x10000)
            .ph(PT_NOTE, 0, 4, R, vec![0; 4])
            .load(0x10000, 12, RX, text())
            .load(0x11000, 0x2000, RW, vec![3; 8])
            .build();
        assert!(ProgramImage::parse(&elf, MAX).is_ok());
        for len in 0..elf.len() {
            assert!(ProgramImage::parse(&elf[..len], MAX).is_err(), "accepted a cut at {len}");
        }
        for at in 0..elf.len() {
            for mask in [0x01, 0x04, 0x10, 0x80, 0xff] {
                let mut bad = elf.clone();
                bad[at] ^= mask;
                let _ = ProgramImage::parse(&bad, MAX);
                for value in [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
                    if at + 4 <= bad.len() {
                        set_u32(&mut bad, at, value);
                        let _ = ProgramImage::parse(&bad, MAX);
                    }
                }
            }
        }
    }
    fn parse64_bytes(elf: &[u8]) -> Result<ProgramImage, ElfError> {
        ProgramImage::parse(elf, MAX)
    }

    #[test]
    fn accepts_a_minimal_elf64_as_rv64im() {
        let image = parse(&ElfBuilder::minimal64()).unwrap();
        assert_eq!((image.entry, image.isa), (0x10000, Isa::Rv64im));
        let rv32 = parse(&ElfBuilder::minimal()).unwrap();
        assert_eq!(image.segments, rv32.segments, "the same segments in either class");
        assert_eq!(image.image_pages(), 1);
    }

    #[test]
    fn accepts_elf64_text_rodata_data_and_bss_in_any_header_order() {
        let builder = ElfBuilder::new64(0x10000)
            .load(0x12000, 0x3000, RW, vec![7; 0x10])
            .load(0x10000, 12, RX, text())
            .load(0x11000, 5, R, b"hello".to_vec())
            .ph(PT_GNU_STACK, 0, 0, PF_R | PF_W, vec![]);
        let image = parse(&builder).unwrap();
        let starts: Vec<u32> = image.segments.iter().map(|s| s.vaddr).collect();
        assert_eq!(starts, [0x10000, 0x11000, 0x12000]);
        assert_eq!((image.segments[2].mem_size, image.segments[2].data.len()), (0x3000, 0x10));
        assert_eq!(image.segments[1].data, b"hello");
        assert_eq!(image.isa, Isa::Rv64im);
    }

    #[test]
    fn rejects_an_elf64_header_shorter_than_64_bytes() {
        let elf = ElfBuilder::minimal64().build();
        for len in [5, 52, 60, 63] {
            assert_eq!(parse64_bytes(&elf[..len]), Err(ElfError::Truncated { what: "elf64 header" }), "{len} bytes");
        }
    }

    #[test]
    fn rejects_an_elf64_whose_program_header_size_is_not_56() {
        let builder = ElfBuilder { phentsize: 32, ..ElfBuilder::minimal64() };
        assert_eq!(parse(&builder), Err(ElfError::BadProgramHeaderSize { size: 32, expected: 56, bits: 64 }));
        let err = ElfError::BadProgramHeaderSize { size: 32, expected: 56, bits: 64 };
        assert_eq!(err.to_string(), "program header entry size is 32 bytes, expected 56 for ELFCLASS64");
    }

    #[test]
    fn rejects_a_class_that_disagrees_with_the_layout() {
        // An ELF32 body under an ELFCLASS64 ident: its first program header
        // is read as e_phentsize (0) and e_phnum (84).
        let builder = ElfBuilder { class: ELFCLASS64, ..ElfBuilder::minimal() };
        assert_eq!(parse(&builder), Err(ElfError::BadProgramHeaderSize { size: 0, expected: 56, bits: 64 }));
        // An ELF64 body under an ELFCLASS32 ident: e_phoff reads as the
        // entry's high half and e_phnum as e_shoff's: no program header.
        let builder = ElfBuilder { class: ELFCLASS32, ..ElfBuilder::minimal64() };
        assert_eq!(parse(&builder), Err(ElfError::NoLoadableSegments));
    }

    #[test]
    fn rejects_elf64_with_the_wrong_endianness_machine_or_type() {
        let builder = ElfBuilder { data_encoding: 2, ..ElfBuilder::minimal64() };
        assert_eq!(parse(&builder), Err(ElfError::WrongEndianness(2)));
        let builder = ElfBuilder { machine: 62, ..ElfBuilder::minimal64() };
        assert_eq!(parse(&builder), Err(ElfError::WrongMachine(62)));
        let builder = ElfBuilder { e_type: 3, ..ElfBuilder::minimal64() };
        assert_eq!(parse(&builder), Err(ElfError::NotExecutable(3)));
    }

    #[test]
    fn rejects_an_elf64_program_header_table_past_the_end_of_the_file() {
        let mut elf = ElfBuilder::minimal64().build();
        set_u64(&mut elf, 32, u64::MAX - 8); // e_phoff
        assert_eq!(parse64_bytes(&elf), Err(ElfError::Truncated { what: "program header table" }));
        set_u64(&mut elf, 32, 1 << 32 | 64); // would be 64 if truncated
        assert_eq!(parse64_bytes(&elf), Err(ElfError::Truncated { what: "program header table" }));
        let elf = ElfBuilder::minimal64().load(0x20000, 4, R, vec![]).build();
        assert_eq!(parse64_bytes(&elf[..EHDR64_SIZE + 80]), Err(ElfError::Truncated { what: "program header table" }));
    }

    #[test]
    fn rejects_an_elf64_segment_whose_end_overflows_u64() {
        let builder = ElfBuilder::minimal64().load(0xffff_ffff_ffff_f000, 0x1000, RW, vec![]);
        let err = ElfError::MemSizeOverflow { vaddr: 0xffff_ffff_ffff_f000, mem_size: 0x1000, bits: 64 };
        assert_eq!(parse(&builder), Err(err.clone()));
        assert!(err.to_string().ends_with("wraps past the 64-bit address space"), "{err}");
    }

    #[test]
    fn rejects_elf64_segments_beyond_the_window_in_64_bits() {
        // Each would alias a valid 32-bit segment if truncated.
        for (vaddr, mem_size) in [
            (0x1_0002_0000, 0x1000),
            (0xffff_ffff_0002_0000, 0x1000),
            (0x20000, 0x1_0000_1000),
            (0x7fff_f000, 0x1001),
            (0xf000, 0x1000),
        ] {
            let builder = ElfBuilder::minimal64().load(vaddr, mem_size, RW, vec![]);
            assert_eq!(parse(&builder), Err(ElfError::SegmentOutsideWindow { vaddr, mem_size }), "{vaddr:#x}");
        }
        let builder = ElfBuilder::minimal64().load(u64::from(GUEST_WINDOW_END) - 0x1000, 0x1000, RW, vec![]);
        assert!(parse(&builder).is_ok(), "ending exactly at the window's end");
    }

    #[test]
    fn rejects_an_elf64_file_size_above_the_mem_size() {
        let mut elf = ElfBuilder::minimal64().build();
        set_u64(&mut elf, ph64_field(0, 32), 1 << 32 | 12); // p_filesz, 12 if truncated
        let err = ElfError::FileSizeExceedsMemSize { vaddr: 0x10000, file_size: 1 << 32 | 12, mem_size: 12 };
        assert_eq!(parse64_bytes(&elf), Err(err));
    }

    #[test]
    fn rejects_elf64_segment_data_outside_the_file_in_64_bits() {
        let mut elf = ElfBuilder::minimal64().build();
        let offset = (EHDR64_SIZE + PHDR64_SIZE) as u64;
        set_u64(&mut elf, ph64_field(0, 8), 1 << 32 | offset); // p_offset, valid if truncated
        let err = ElfError::SegmentDataOutOfFile { vaddr: 0x10000, offset: 1 << 32 | offset, file_size: 12 };
        assert_eq!(parse64_bytes(&elf), Err(err));
        let elf = ElfBuilder::minimal64().build();
        let err = ElfError::SegmentDataOutOfFile { vaddr: 0x10000, offset, file_size: 12 };
        assert_eq!(parse64_bytes(&elf[..elf.len() - 1]), Err(err));
    }

    #[test]
    fn rejects_elf64_segment_rules_as_elf32_does() {
        let builder = ElfBuilder::new64(0x10000).load(0x10000, 12, PF_R | PF_W | PF_X, text());
        assert_eq!(parse(&builder), Err(ElfError::WritableAndExecutable { vaddr: 0x10000 }));
        let builder = ElfBuilder::minimal64().load(0x20000, 0x100, R, vec![]).load(0x200ff, 1, R, vec![]);
        assert_eq!(parse(&builder), Err(ElfError::SegmentsOverlap { first: 0x20000, second: 0x200ff }));
        let builder = ElfBuilder::minimal64().load(0x10ff0, 0x20, RW, vec![]);
        let err = ElfError::WritableAndExecutablePage { page: 0x10000, writable: 0x10ff0, executable: 0x10000 };
        assert_eq!(parse(&builder), Err(err));
        let builder = ElfBuilder::new64(0x10000).load(0x10000, 0, RX, vec![]).ph(PT_NOTE, 0x10000, 4, R, vec![0; 4]);
        assert_eq!(parse(&builder), Err(ElfError::NoLoadableSegments));
        let mut elf = ElfBuilder::minimal64().load(0x20000, 12, R, vec![]).build();
        let len = elf.len() as u64;
        set_u64(&mut elf, ph64_field(1, 8), 0); // p_offset: the whole file
        set_u64(&mut elf, ph64_field(1, 32), len); // p_filesz
        set_u64(&mut elf, ph64_field(1, 40), len); // p_memsz
        assert_eq!(parse64_bytes(&elf), Err(ElfError::SegmentDataExceedsFile { total: len + 12, size: elf.len() }));
    }

    #[test]
    fn rejects_an_elf64_entry_that_is_misaligned_or_outside_text_in_64_bits() {
        let builder = ElfBuilder { entry: 0x10002, ..ElfBuilder::minimal64() };
        assert_eq!(parse(&builder), Err(ElfError::EntryMisaligned { entry: 0x10002 }));
        for entry in [0x1_0001_0000, 0xffff_ffff_0001_0000, 0x1000c] {
            let builder = ElfBuilder { entry, ..ElfBuilder::minimal64() };
            assert_eq!(parse(&builder), Err(ElfError::EntryNotExecutable { entry }), "{entry:#x}");
        }
        let err = ElfError::EntryNotExecutable { entry: 0x1_0001_0000 };
        assert_eq!(err.to_string(), "entry point 0x100010000 is not inside an executable segment");
    }

    #[test]
    fn rejects_an_elf64_over_max_program_bytes() {
        let elf = ElfBuilder::minimal64().build();
        let max = elf.len() - 1;
        assert_eq!(ProgramImage::parse(&elf, max), Err(ElfError::TooLarge { size: elf.len(), max }));
    }

    #[test]
    fn parse_never_panics_on_truncated_or_corrupted_elf64() {
        let elf = ElfBuilder::new64(0x10000)
            .ph(PT_NOTE, 0, 4, R, vec![0; 4])
            .load(0x10000, 12, RX, text())
            .load(0x11000, 0x2000, RW, vec![3; 8])
            .build();
        assert_eq!(parse64_bytes(&elf).map(|image| image.isa), Ok(Isa::Rv64im));
        for len in 0..elf.len() {
            assert!(parse64_bytes(&elf[..len]).is_err(), "accepted a cut at {len}");
        }
        for at in 0..elf.len() {
            for mask in [0x01, 0x04, 0x10, 0x80, 0xff] {
                let mut bad = elf.clone();
                bad[at] ^= mask;
                let _ = parse64_bytes(&bad);
                for value in [0, 1, 0x7fff_ffff, 0x8000_0000, 0x1_0000_0000, u64::MAX] {
                    if at + 8 <= bad.len() {
                        set_u64(&mut bad, at, value);
                        let _ = parse64_bytes(&bad);
                    }
                }
            }
        }
    }
}
