//! Guest memory owned by the host.
//!
//! The whole guest window `[0x1_0000, 0x8000_0000)` is one anonymous,
//! lazily backed host mapping that Unicorn uses in place (`mem_map_ptr`), so
//! a job's memory is plain host memory: the image is loaded once, inputs are
//! copied straight in, and isolation between jobs is a `memcpy`/`memset` of
//! the pages the previous job touched. Pages are tracked through Unicorn's
//! TLB-fill hook: the first access of a job to a page fills its TLB entry,
//! and that is where the page is counted against the memory limit.

use super::direct::{PageMap, Space};
use crate::program::{ProgramImage, GUEST_WINDOW_END, GUEST_WINDOW_START, PAGE_SIZE};
use std::ptr::NonNull;

/// log2 of [`PAGE_SIZE`].
pub(crate) const PAGE_SHIFT: u32 = 12;
const WINDOW_BYTES: usize = (GUEST_WINDOW_END - GUEST_WINDOW_START) as usize;
const WINDOW_PAGES: usize = WINDOW_BYTES >> PAGE_SHIFT;
const FIRST_PAGE: u32 = GUEST_WINDOW_START >> PAGE_SHIFT;
/// Above this many touched pages, a reset releases memory with `madvise`
/// instead of zeroing it page by page.
const MADVISE_THRESHOLD_PAGES: usize = 64;

/// Access rights of a guest page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PagePerms {
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) exec: bool,
}

impl PagePerms {
    const RW: PagePerms = PagePerms { read: true, write: true, exec: false };
}

/// A contiguous run of image pages with the same rights.
#[derive(Debug, Clone)]
struct ImageRun {
    first_page: u32,
    end_page: u32,
    perms: PagePerms,
}

/// A guest memory access that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessError {
    /// Outside the guest window or not permitted.
    Fault,
    /// Touching the page would exceed the memory limit.
    LimitExceeded,
}

/// The guest window of one program, with its image loaded.
#[derive(Debug)]
pub(crate) struct GuestMemory {
    base: NonNull<u8>,
    runs: Vec<ImageRun>,
    /// Pristine bytes of the writable image pages that hold file bytes:
    /// (first page, whole pages), sorted.
    pristine: Vec<(u32, Vec<u8>)>,
    image_pages: u64,
    touched: Vec<u64>,
    touched_list: Vec<u32>,
    fresh_pages: u64,
    limit_pages: u64,
    /// The onchain and offchain input regions.
    pub(crate) inputs: [InputRegion; 2],
    /// Which pages generated code may load from or store to directly.
    map: PageMap,
    /// The host address space the window and the inputs are mapped into
    /// (guest address `a` at `space.base() + a`). Last: dropped after
    /// everything that points into it.
    space: Space,
}

// SAFETY: the mapping is owned by this value and only accessed through it.
unsafe impl Send for GuestMemory {}

impl GuestMemory {
    /// Maps the window and loads `image` into it.
    pub(crate) fn new(image: &ProgramImage, max_input_bytes: usize) -> std::io::Result<GuestMemory> {
        let space = Space::reserve()?;
        let base = space.map(GUEST_WINDOW_START, WINDOW_BYTES)?;
        let inputs = [
            InputRegion::new(&space, ONCHAIN_INPUT_ADDR, max_input_bytes)?,
            InputRegion::new(&space, OFFCHAIN_INPUT_ADDR, max_input_bytes)?,
        ];
        // Inputs are readable by every job (and never counted): granted
        // once, for good.
        let mut map = PageMap::new();
        for input in &inputs {
            let first = input.addr >> PAGE_SHIFT;
            for page in first..first + (input.capacity >> PAGE_SHIFT) as u32 {
                map.grant(page, true, false);
            }
        }
        let mut mem = GuestMemory {
            inputs,
            map,
            space,
            base,
            runs: image_runs(image),
            pristine: Vec::new(),
            image_pages: image.image_pages(),
            touched: vec![0; WINDOW_PAGES.div_ceil(64)],
            touched_list: Vec::new(),
            fresh_pages: 0,
            limit_pages: u64::MAX,
        };
        for segment in &image.segments {
            let offset = (segment.vaddr - GUEST_WINDOW_START) as usize;
            mem.window_mut()[offset..offset + segment.data.len()].copy_from_slice(&segment.data);
        }
        // Pristine copies of the writable image pages that hold file bytes
        // only; the rest of a writable run (bss) is restored by zeroing, so
        // a large bss costs no copy (it did: a copy of every writable page).
        let mut data_pages: Vec<(u32, u32)> = Vec::new();
        for segment in image.segments.iter().filter(|s| !s.data.is_empty()) {
            let first = segment.vaddr >> PAGE_SHIFT;
            let end = ((segment.vaddr + (segment.data.len() as u32 - 1)) >> PAGE_SHIFT) + 1;
            match data_pages.last_mut() {
                Some(last) if last.1 >= first => last.1 = last.1.max(end),
                _ => data_pages.push((first, end)),
            }
        }
        let mut pristine = Vec::new();
        for run in mem.runs.iter().filter(|run| run.perms.write) {
            for &(first, end) in &data_pages {
                let (first, end) = (first.max(run.first_page), end.min(run.end_page));
                if first < end {
                    pristine.push((first, mem.window()[page_range(first, end)].to_vec()));
                }
            }
        }
        mem.pristine = pristine;
        Ok(mem)
    }

    /// Host address of the window's first byte (guest `GUEST_WINDOW_START`).
    pub(crate) fn host_base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// For `uc_coproc_direct`: the host address of guest address 0 and the
    /// page map (null when direct memory is off).
    pub(crate) fn direct(&self) -> (*mut u8, *mut u8) {
        (self.space.base(), self.map.as_ptr())
    }

    /// Whether generated code reaches this memory directly (the page map
    /// could be mapped).
    pub(crate) fn is_direct(&self) -> bool {
        !self.map.as_ptr().is_null()
    }

    /// Lets generated code load from (and, if `perms` allow, store to)
    /// `page` directly for the rest of the job. Only for a page the TLB
    /// fill has just granted: counted, and with these rights.
    pub(crate) fn grant(&mut self, page: u32, perms: PagePerms) {
        self.map.grant(page, perms.read, perms.write);
    }

    /// The Unicorn regions to map: `(guest address, size, perms)` covering the window.
    pub(crate) fn regions(&self) -> Vec<(u32, u32, PagePerms)> {
        let mut regions = Vec::new();
        let mut next = FIRST_PAGE;
        for run in &self.runs {
            if run.first_page > next {
                regions.push((next << PAGE_SHIFT, (run.first_page - next) << PAGE_SHIFT, PagePerms::RW));
            }
            regions.push((run.first_page << PAGE_SHIFT, (run.end_page - run.first_page) << PAGE_SHIFT, run.perms));
            next = run.end_page;
        }
        let end_page = GUEST_WINDOW_END >> PAGE_SHIFT;
        if next < end_page {
            regions.push((next << PAGE_SHIFT, (end_page - next) << PAGE_SHIFT, PagePerms::RW));
        }
        regions
    }

    /// Sets the memory limit for the next job, in bytes.
    pub(crate) fn set_limit(&mut self, max_memory_bytes: u64) {
        self.limit_pages = max_memory_bytes >> PAGE_SHIFT;
    }

    /// Pages the current job uses: the image plus every fresh page touched.
    pub(crate) fn used_bytes(&self) -> u64 {
        (self.image_pages + self.fresh_pages) << PAGE_SHIFT
    }

    /// Whether the image alone is over the limit.
    pub(crate) fn image_over_limit(&self) -> bool {
        self.image_pages > self.limit_pages
    }

    /// The image run that holds `page`, if the page is part of the image.
    fn run_of(&self, page: u32) -> Option<&ImageRun> {
        let i = self.runs.partition_point(|run| run.end_page <= page);
        self.runs.get(i).filter(|run| run.first_page <= page)
    }

    /// Records the first access of this job to `page`, counting it against
    /// the limit. Returns the page's rights.
    pub(crate) fn touch(&mut self, page: u32) -> Result<PagePerms, AccessError> {
        if !(FIRST_PAGE..GUEST_WINDOW_END >> PAGE_SHIFT).contains(&page) {
            return Err(AccessError::Fault);
        }
        let index = (page - FIRST_PAGE) as usize;
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let run = self.run_of(page);
        let perms = run.map_or(PagePerms::RW, |run| run.perms);
        if self.touched[word] & bit == 0 {
            if run.is_none() {
                if self.image_pages + self.fresh_pages + 1 > self.limit_pages {
                    return Err(AccessError::LimitExceeded);
                }
                self.fresh_pages += 1;
            }
            self.touched[word] |= bit;
            self.touched_list.push(page);
        }
        Ok(perms)
    }

    /// Checks and tracks a host-side access of `len` bytes at `addr`.
    fn check(&mut self, addr: u32, len: u32, write: bool) -> Result<std::ops::Range<usize>, AccessError> {
        if len == 0 {
            return Ok(0..0);
        }
        let end = addr.checked_add(len).ok_or(AccessError::Fault)?;
        if addr < GUEST_WINDOW_START || end > GUEST_WINDOW_END {
            return Err(AccessError::Fault);
        }
        for page in addr >> PAGE_SHIFT..=(end - 1) >> PAGE_SHIFT {
            let perms = self.touch(page)?;
            if (write && !perms.write) || (!write && !perms.read) {
                return Err(AccessError::Fault);
            }
        }
        let start = (addr - GUEST_WINDOW_START) as usize;
        Ok(start..start + len as usize)
    }

    /// Reads guest memory on behalf of a syscall.
    pub(crate) fn read(&mut self, addr: u32, len: u32) -> Result<&[u8], AccessError> {
        if let Some(i) = self.inputs.iter().position(|input| input.contains(addr)) {
            return self.inputs[i].read(addr, len);
        }
        let range = self.check(addr, len, false)?;
        Ok(&self.window()[range])
    }

    /// The instruction word at `pc`, which the guest has just fetched: read
    /// without the rights a load needs (an execute-only page has no read
    /// right) and without touching the page again.
    pub(crate) fn instruction(&self, pc: u32) -> Option<u32> {
        if pc < GUEST_WINDOW_START || pc.checked_add(4)? > GUEST_WINDOW_END {
            return None;
        }
        let start = (pc - GUEST_WINDOW_START) as usize;
        let bytes = self.window().get(start..start + 4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    /// Writes guest memory on behalf of a syscall.
    pub(crate) fn write(&mut self, addr: u32, bytes: &[u8]) -> Result<(), AccessError> {
        let len = u32::try_from(bytes.len()).map_err(|_| AccessError::Fault)?;
        let range = self.check(addr, len, true)?;
        self.window_mut()[range].copy_from_slice(bytes);
        Ok(())
    }

    /// Undoes everything the last job did: restores touched image pages,
    /// zeroes touched fresh pages, and returns the pages whose TLB entries
    /// must be flushed, the writable and fresh ones (`Err`: too many, flush
    /// the whole TLB). Either way the
    /// caller hands the list back with [`GuestMemory::recycle`], so a job
    /// allocates nothing here.
    pub(crate) fn reset(&mut self) -> Result<Vec<u32>, Vec<u32>> {
        let mut touched = std::mem::take(&mut self.touched_list);
        touched.sort_unstable();
        let many = touched.len() > MADVISE_THRESHOLD_PAGES;
        let mut start = 0;
        while start < touched.len() {
            // Coalesce consecutive pages into one run.
            let mut end = start + 1;
            while end < touched.len() && touched[end] == touched[end - 1] + 1 {
                end += 1;
            }
            self.reset_pages(touched[start], touched[end - 1] + 1);
            start = end;
        }
        for &page in &touched {
            let index = (page - FIRST_PAGE) as usize;
            self.touched[index / 64] = 0;
        }
        // Read-only image pages (text, rodata) keep their TLB entries and
        // their grants: no job can change them, and they are counted up
        // front (`image_pages`), so the next job reaching them without a
        // fill changes neither a byte nor a count. Only pages a job may
        // have written go back through the fill.
        touched.retain(|&page| self.run_of(page).is_none_or(|run| run.perms.write));
        for &page in &touched {
            self.map.revoke(page);
        }
        self.fresh_pages = 0;
        if many {
            Err(touched)
        } else {
            Ok(touched)
        }
    }

    /// Takes back the page list returned by [`GuestMemory::reset`].
    pub(crate) fn recycle(&mut self, mut pages: Vec<u32>) {
        pages.clear();
        self.touched_list = pages;
    }

    /// Restores pages `[first, end)` to their state at load time.
    fn reset_pages(&mut self, first: u32, end: u32) {
        let mut page = first;
        while page < end {
            match self.run_of(page) {
                Some(run) => {
                    let (writable, run_end) = (run.perms.write, run.end_page.min(end));
                    if writable {
                        self.restore_image(page, run_end);
                    }
                    page = run_end;
                }
                None => {
                    let next_run = self.runs.get(self.runs.partition_point(|run| run.end_page <= page));
                    let gap_end = next_run.map_or(end, |run| run.first_page.min(end));
                    self.zero(page, gap_end);
                    page = gap_end;
                }
            }
        }
    }

    /// Restores pages `[first, end)` of a writable image run: pages with
    /// file bytes from the pristine copy, the others (bss) by zeroing.
    fn restore_image(&mut self, first: u32, end: u32) {
        let mut page = first;
        while page < end {
            let pages_of = |bytes: &Vec<u8>| (bytes.len() >> PAGE_SHIFT) as u32;
            let i = self.pristine.partition_point(|(start, bytes)| start + pages_of(bytes) <= page);
            match self.pristine.get(i) {
                Some((start, bytes)) if *start <= page => {
                    let stop = (start + pages_of(bytes)).min(end);
                    let from = ((page - start) as usize) << PAGE_SHIFT;
                    let to = ((stop - start) as usize) << PAGE_SHIFT;
                    // SAFETY: the window mapping is WINDOW_BYTES long and owned by self;
                    // `pristine` is a separate allocation, so the two do not alias.
                    let window = unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), WINDOW_BYTES) };
                    window[page_range(page, stop)].copy_from_slice(&bytes[from..to]);
                    page = stop;
                }
                next => {
                    let stop = next.map_or(end, |(start, _)| (*start).min(end));
                    self.zero(page, stop);
                    page = stop;
                }
            }
        }
    }

    fn zero(&mut self, first: u32, end: u32) {
        let range = page_range(first, end);
        if end - first >= 16 {
            // SAFETY: the range lies inside our private anonymous mapping;
            // MADV_DONTNEED makes the next access see fresh zero pages.
            let rc =
                unsafe { libc::madvise(self.base.as_ptr().add(range.start).cast(), range.len(), libc::MADV_DONTNEED) };
            if rc == 0 {
                return;
            }
        }
        self.window_mut()[range].fill(0);
    }

    fn window(&self) -> &[u8] {
        // SAFETY: the mapping is WINDOW_BYTES long, readable and writable,
        // and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), WINDOW_BYTES) }
    }

    fn window_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in window(); &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), WINDOW_BYTES) }
    }
}

/// Guest address of the onchain input.
pub(crate) const ONCHAIN_INPUT_ADDR: u32 = 0x9000_0000;
/// Guest address of the offchain input.
pub(crate) const OFFCHAIN_INPUT_ADDR: u32 = 0xA000_0000;
/// Guest address space per input region (the distance between the two).
const INPUT_REGION_SPAN: usize = (OFFCHAIN_INPUT_ADDR - ONCHAIN_INPUT_ADDR) as usize;

/// A read-only input region: a host buffer mapped at a fixed guest address.
#[derive(Debug)]
pub(crate) struct InputRegion {
    pub(crate) addr: u32,
    buf: NonNull<u8>,
    /// Mapped bytes (the input limit rounded up to whole pages, at least one).
    pub(crate) capacity: usize,
    len: usize,
}

impl InputRegion {
    /// Maps the region at its guest address in `space` (which owns the
    /// mapping). Each region has 256 MiB of guest address space.
    fn new(space: &Space, addr: u32, max_input_bytes: usize) -> std::io::Result<InputRegion> {
        let capacity = max_input_bytes.max(1).div_ceil(PAGE_SIZE as usize) * PAGE_SIZE as usize;
        if capacity > INPUT_REGION_SPAN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("an input region of {capacity} bytes is over the {INPUT_REGION_SPAN} bytes the ABI gives it"),
            ));
        }
        Ok(InputRegion { addr, buf: space.map(addr, capacity)?, capacity, len: 0 })
    }

    /// Host address of the buffer.
    pub(crate) fn host_ptr(&self) -> *mut u8 {
        self.buf.as_ptr()
    }

    fn contains(&self, addr: u32) -> bool {
        addr >= self.addr && ((addr - self.addr) as usize) < self.capacity
    }

    /// Whether the page at `page` (a page number) lies in this region.
    pub(crate) fn contains_page(&self, page: u32) -> bool {
        self.contains(page << PAGE_SHIFT)
    }

    /// Replaces the input. Bytes past the new input read as zero.
    /// The caller checks `bytes.len() <= capacity`.
    pub(crate) fn set(&mut self, bytes: &[u8]) {
        let old = self.len;
        let buf = self.bytes_mut();
        buf[..bytes.len()].copy_from_slice(bytes);
        if old > bytes.len() {
            buf[bytes.len()..old].fill(0);
        }
        self.len = bytes.len();
    }

    fn read(&self, addr: u32, len: u32) -> Result<&[u8], AccessError> {
        let start = (addr - self.addr) as usize;
        let end = start.checked_add(len as usize).ok_or(AccessError::Fault)?;
        if end > self.capacity {
            return Err(AccessError::Fault);
        }
        // SAFETY: the buffer is `capacity` bytes long and lives as long as self.
        let all = unsafe { std::slice::from_raw_parts(self.buf.as_ptr(), self.capacity) };
        Ok(&all[start..end])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in read(); &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr(), self.capacity) }
    }
}

/// A private, zero-filled, lazily backed host mapping.
fn page_range(first: u32, end: u32) -> std::ops::Range<usize> {
    (((first - FIRST_PAGE) as usize) << PAGE_SHIFT)..(((end - FIRST_PAGE) as usize) << PAGE_SHIFT)
}

/// Splits the image into runs of pages with equal rights. A page shared by
/// two segments gets the union of their rights (ELF validation has already
/// rejected a page that would be both writable and executable). Linear in
/// the number of segments, not of pages: a segment may cover most of the
/// window (found by the fuzzer: a 1 GiB segment made this quadratic in
/// pages, and `Vm::new` never returned).
fn image_runs(image: &ProgramImage) -> Vec<ImageRun> {
    let mut ranges: Vec<ImageRun> = Vec::new();
    // Segments are sorted and do not overlap, so a page is shared only
    // between the last page of earlier segments and the first of the next.
    for segment in image.segments.iter().filter(|s| s.mem_size > 0) {
        let first = segment.vaddr >> PAGE_SHIFT;
        let end = ((segment.vaddr + (segment.mem_size - 1)) >> PAGE_SHIFT) + 1;
        let perms = PagePerms { read: segment.perms.read, write: segment.perms.write, exec: segment.perms.exec };
        let mut rest = first;
        if let Some(last) = ranges.last_mut() {
            if last.end_page > first {
                // The shared page `first` (last.end_page == first + 1).
                let mut shared = last.perms;
                shared.read |= perms.read;
                shared.write |= perms.write;
                shared.exec |= perms.exec;
                if last.first_page == first {
                    last.perms = shared;
                } else {
                    last.end_page = first;
                    ranges.push(ImageRun { first_page: first, end_page: first + 1, perms: shared });
                }
                rest = first + 1;
            }
        }
        if rest < end {
            ranges.push(ImageRun { first_page: rest, end_page: end, perms });
        }
    }
    let mut runs: Vec<ImageRun> = Vec::new();
    for range in ranges {
        match runs.last_mut() {
            Some(run) if run.end_page == range.first_page && run.perms == range.perms => run.end_page = range.end_page,
            _ => runs.push(range),
        }
    }
    runs
}
