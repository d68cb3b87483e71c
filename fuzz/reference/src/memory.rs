//! Guest memory, page by page: the image, zero pages made on first touch
//! (counted against the limit), and the two read-only input regions.

use crate::{Perms, Program, GUEST_WINDOW_END, GUEST_WINDOW_START, OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR, PAGE_SIZE};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What an access is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
    Exec,
}

/// Why an access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Outside every mapped region, or against the page's rights.
    Fault,
    /// The access needed a fresh page and the limit is reached.
    Limit,
}

/// A read-only input region: `capacity` bytes at `addr`, the input first,
/// zeros after it.
#[derive(Debug)]
struct Input {
    addr: u32,
    capacity: u32,
    bytes: Vec<u8>,
}

impl Input {
    fn contains(&self, addr: u32) -> bool {
        addr >= self.addr && addr - self.addr < self.capacity
    }

    fn byte(&self, addr: u32) -> u8 {
        self.bytes.get((addr - self.addr) as usize).copied().unwrap_or(0)
    }
}

/// The memory of one job.
#[derive(Debug)]
pub(crate) struct Memory {
    /// Rights of every image page (a page shared by segments has the union).
    image: BTreeMap<u32, Perms>,
    /// Contents of every page created so far (image pages from the start).
    pages: HashMap<u32, Vec<u8>>,
    /// Pages this job has touched.
    touched: HashSet<u32>,
    fresh_pages: u64,
    limit_pages: u64,
    inputs: [Input; 2],
}

fn page_of(addr: u32) -> u32 {
    addr / PAGE_SIZE
}

impl Memory {
    pub(crate) fn new(program: &Program, capacity: u32, onchain: &[u8], offchain: &[u8], max_memory: u64) -> Memory {
        let mut image: BTreeMap<u32, Perms> = BTreeMap::new();
        let mut pages: HashMap<u32, Vec<u8>> = HashMap::new();
        for segment in program.segments.iter().filter(|s| s.mem_size > 0) {
            let last = segment.vaddr + (segment.mem_size - 1);
            for page in page_of(segment.vaddr)..=page_of(last) {
                let perms = image.entry(page).or_default();
                perms.read |= segment.perms.read;
                perms.write |= segment.perms.write;
                perms.exec |= segment.perms.exec;
                pages.entry(page).or_insert_with(|| vec![0; PAGE_SIZE as usize]);
            }
            for (i, &byte) in segment.data.iter().enumerate() {
                let addr = segment.vaddr + i as u32;
                if let Some(page) = pages.get_mut(&page_of(addr)) {
                    page[(addr % PAGE_SIZE) as usize] = byte;
                }
            }
        }
        let input = |addr, bytes: &[u8]| Input { addr, capacity, bytes: bytes.to_vec() };
        Memory {
            image,
            pages,
            touched: HashSet::new(),
            fresh_pages: 0,
            limit_pages: max_memory / u64::from(PAGE_SIZE),
            inputs: [input(ONCHAIN_INPUT_ADDR, onchain), input(OFFCHAIN_INPUT_ADDR, offchain)],
        }
    }

    pub(crate) fn image_pages(&self) -> u64 {
        self.image.len() as u64
    }

    pub(crate) fn image_over_limit(&self) -> bool {
        self.image_pages() > self.limit_pages
    }

    pub(crate) fn used_bytes(&self) -> u64 {
        (self.image_pages() + self.fresh_pages) * u64::from(PAGE_SIZE)
    }

    fn input_of(&self, addr: u32) -> Option<&Input> {
        self.inputs.iter().find(|input| input.contains(addr))
    }

    /// The first access of the job to a page of the window counts it (a
    /// fresh page against the limit); then the page's rights decide.
    fn check_page(&mut self, page: u32, access: Access) -> Result<(), Refused> {
        if self.inputs.iter().any(|input| input.contains(page * PAGE_SIZE)) {
            return if access == Access::Read { Ok(()) } else { Err(Refused::Fault) };
        }
        if !(page_of(GUEST_WINDOW_START)..page_of(GUEST_WINDOW_END)).contains(&page) {
            return Err(Refused::Fault);
        }
        let perms = self.image.get(&page).copied();
        if !self.touched.contains(&page) {
            if perms.is_none() {
                if self.image_pages() + self.fresh_pages + 1 > self.limit_pages {
                    return Err(Refused::Limit);
                }
                self.fresh_pages += 1;
            }
            self.touched.insert(page);
        }
        let perms = perms.unwrap_or(Perms { read: true, write: true, exec: false });
        let allowed = match access {
            Access::Read => perms.read,
            Access::Write => perms.write,
            Access::Exec => perms.exec,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused::Fault)
        }
    }

    /// An instruction's access of `len` bytes (1, 2 or 4; any alignment):
    /// its pages are checked in address order, then it happens.
    pub(crate) fn check(&mut self, addr: u32, len: u32, access: Access) -> Result<(), Refused> {
        let last = addr.wrapping_add(len - 1);
        self.check_page(page_of(addr), access)?;
        if page_of(last) != page_of(addr) {
            self.check_page(page_of(last), access)?;
        }
        Ok(())
    }

    fn byte(&self, addr: u32) -> u8 {
        if let Some(input) = self.input_of(addr) {
            return input.byte(addr);
        }
        self.pages.get(&page_of(addr)).map_or(0, |page| page[(addr % PAGE_SIZE) as usize])
    }

    /// Reads `len` (1, 2 or 4) bytes little-endian, after [`Memory::check`].
    pub(crate) fn load(&mut self, addr: u32, len: u32, access: Access) -> Result<u32, Refused> {
        self.check(addr, len, access)?;
        let mut value = 0u32;
        for i in (0..len).rev() {
            value = value << 8 | u32::from(self.byte(addr.wrapping_add(i)));
        }
        Ok(value)
    }

    /// Writes the low `len` bytes of `value` little-endian.
    pub(crate) fn store(&mut self, addr: u32, len: u32, value: u32) -> Result<(), Refused> {
        self.check(addr, len, Access::Write)?;
        for i in 0..len {
            self.put(addr.wrapping_add(i), (value >> (8 * i)) as u8);
        }
        Ok(())
    }

    fn put(&mut self, addr: u32, byte: u8) {
        let page = self.pages.entry(page_of(addr)).or_insert_with(|| vec![0; PAGE_SIZE as usize]);
        page[(addr % PAGE_SIZE) as usize] = byte;
    }

    /// A syscall's read of `len` bytes at `addr`: a range inside one input
    /// region, or inside the window (each page checked in order); an empty
    /// range is always allowed. Returns the first `keep` bytes.
    pub(crate) fn read_range(&mut self, addr: u32, len: u32, keep: u32) -> Result<Vec<u8>, Refused> {
        if let Some(input) = self.input_of(addr) {
            let end = u64::from(addr - input.addr) + u64::from(len);
            if end > u64::from(input.capacity) {
                return Err(Refused::Fault);
            }
        } else {
            self.check_range(addr, len, Access::Read)?;
        }
        Ok((0..keep.min(len)).map(|i| self.byte(addr + i)).collect())
    }

    /// A syscall's write of `bytes` at `addr`, inside the window.
    pub(crate) fn write_range(&mut self, addr: u32, bytes: &[u8]) -> Result<(), Refused> {
        self.check_range(addr, bytes.len() as u32, Access::Write)?;
        for (i, &byte) in bytes.iter().enumerate() {
            self.put(addr + i as u32, byte);
        }
        Ok(())
    }

    fn check_range(&mut self, addr: u32, len: u32, access: Access) -> Result<(), Refused> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Refused::Fault)?;
        if addr < GUEST_WINDOW_START || end > GUEST_WINDOW_END {
            return Err(Refused::Fault);
        }
        for page in page_of(addr)..=page_of(end - 1) {
            self.check_page(page, access)?;
        }
        Ok(())
    }
}
