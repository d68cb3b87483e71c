//! Guest memory, page by page: the image, zero pages made on first touch
//! (counted against the limit), and the two read-only input regions.

use crate::{Perms, Program, GUEST_WINDOW_END, GUEST_WINDOW_START, OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR, PAGE_SIZE};
use std::collections::{HashMap, HashSet};

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
    /// Each segment's pages (first, last) and rights.
    image: Vec<(u32, u32, Perms)>,
    /// Each segment's file bytes, by address.
    data: Vec<(u32, Vec<u8>)>,
    /// Distinct pages the segments cover.
    image_pages: u64,
    /// Pages stored this job (written); others read from the image or as zeros.
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
        let segments = program.segments.iter().filter(|s| s.mem_size > 0);
        let image: Vec<(u32, u32, Perms)> =
            segments.clone().map(|s| (page_of(s.vaddr), page_of(s.vaddr + (s.mem_size - 1)), s.perms)).collect();
        let data = segments.map(|s| (s.vaddr, s.data.clone())).collect();
        // Distinct pages: the union of the segments' page ranges.
        let mut ranges: Vec<(u32, u32)> = image.iter().map(|&(first, last, _)| (first, last)).collect();
        ranges.sort_unstable();
        let mut image_pages = 0u64;
        let mut next = 0u64;
        for (first, last) in ranges {
            let first = u64::from(first).max(next);
            if first <= u64::from(last) {
                image_pages += u64::from(last) - first + 1;
                next = u64::from(last) + 1;
            }
        }
        let input = |addr, bytes: &[u8]| Input { addr, capacity, bytes: bytes.to_vec() };
        Memory {
            image,
            data,
            image_pages,
            pages: HashMap::new(),
            touched: HashSet::new(),
            fresh_pages: 0,
            limit_pages: max_memory / u64::from(PAGE_SIZE),
            inputs: [input(ONCHAIN_INPUT_ADDR, onchain), input(OFFCHAIN_INPUT_ADDR, offchain)],
        }
    }

    /// The rights of an image page: the union of every segment on it.
    fn image_perms(&self, page: u32) -> Option<Perms> {
        self.image.iter().filter(|&&(first, last, _)| first <= page && page <= last).fold(None, |acc, &(_, _, p)| {
            let acc: Perms = acc.unwrap_or_default();
            Some(Perms { read: acc.read | p.read, write: acc.write | p.write, exec: acc.exec | p.exec })
        })
    }

    /// A byte of the image as loaded (zero past the file bytes).
    fn image_byte(&self, addr: u32) -> u8 {
        self.data.iter().find_map(|(vaddr, bytes)| bytes.get(addr.checked_sub(*vaddr)? as usize).copied()).unwrap_or(0)
    }

    pub(crate) fn image_pages(&self) -> u64 {
        self.image_pages
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
        let perms = self.image_perms(page);
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

    /// An instruction's access of `len` bytes (1, 2, 4 or 8; any alignment):
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
        match self.pages.get(&page_of(addr)) {
            Some(page) => page[(addr % PAGE_SIZE) as usize],
            None => self.image_byte(addr),
        }
    }

    /// Reads `len` (1, 2, 4 or 8) bytes little-endian, after [`Memory::check`].
    pub(crate) fn load(&mut self, addr: u32, len: u32, access: Access) -> Result<u64, Refused> {
        self.check(addr, len, access)?;
        let mut value = 0u64;
        for i in (0..len).rev() {
            value = value << 8 | u64::from(self.byte(addr.wrapping_add(i)));
        }
        Ok(value)
    }

    /// Writes the low `len` bytes of `value` little-endian.
    pub(crate) fn store(&mut self, addr: u32, len: u32, value: u64) -> Result<(), Refused> {
        self.check(addr, len, Access::Write)?;
        for i in 0..len {
            self.put(addr.wrapping_add(i), (value >> (8 * i)) as u8);
        }
        Ok(())
    }

    fn put(&mut self, addr: u32, byte: u8) {
        let number = page_of(addr);
        if !self.pages.contains_key(&number) {
            let base = number * PAGE_SIZE;
            let loaded = (0..PAGE_SIZE).map(|i| self.image_byte(base + i)).collect();
            self.pages.insert(number, loaded);
        }
        if let Some(page) = self.pages.get_mut(&number) {
            page[(addr % PAGE_SIZE) as usize] = byte;
        }
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
