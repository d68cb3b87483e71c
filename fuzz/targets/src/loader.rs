//! `elf`: the ELF validator and the loader on arbitrary bytes.

use crate::vm::{compare, to_reference, Job};
use coprocessor_actors::program::{ProgramImage, GUEST_WINDOW_END, GUEST_WINDOW_START, PAGE_SIZE};
use coprocessor_actors::Vm;
use rv32im_reference::Limits;

/// Parses `data` as a guest ELF. What it accepts must satisfy every rule of
/// guest ABI v1, load into a VM, and run a short job exactly as the
/// reference interpreter runs it.
pub fn elf(data: &[u8]) {
    let Ok(image) = ProgramImage::parse(data, 1 << 20) else { return };
    assert!(!image.segments.is_empty(), "no segment");
    assert_eq!(image.entry % 4, 0, "entry misaligned");
    let mut end_of_previous = 0u64;
    for segment in &image.segments {
        let (start, end) = (u64::from(segment.vaddr), u64::from(segment.vaddr) + u64::from(segment.mem_size));
        assert!(segment.mem_size > 0 && segment.data.len() <= segment.mem_size as usize, "{segment:?}");
        assert!(start >= u64::from(GUEST_WINDOW_START) && end <= u64::from(GUEST_WINDOW_END), "{segment:?}");
        assert!(!(segment.perms.write && segment.perms.exec), "W+X segment {segment:?}");
        assert!(start >= end_of_previous, "segments overlap or are unsorted");
        end_of_previous = end;
    }
    assert!(
        image.segments.iter().any(|s| s.perms.exec && s.vaddr <= image.entry && image.entry - s.vaddr < s.mem_size),
        "entry outside every executable segment"
    );
    let page = |addr: u32| addr / PAGE_SIZE;
    for w in image.segments.iter().filter(|s| s.perms.write) {
        for x in image.segments.iter().filter(|s| s.perms.exec) {
            let (w_pages, x_pages) =
                (page(w.vaddr)..=page(w.vaddr + (w.mem_size - 1)), page(x.vaddr)..=page(x.vaddr + (x.mem_size - 1)));
            assert!(
                w_pages.end() < x_pages.start() || x_pages.end() < w_pages.start(),
                "a page is writable and executable: {w:?} {x:?}"
            );
        }
    }
    let mut vm = Vm::new(&image, 4096).expect("a VM for a valid image");
    let limits = Limits { max_cycles: 2_000, max_memory_bytes: 64 << 20, max_output_bytes: 1 << 10 };
    compare(&mut vm, &to_reference(&image), 4096, &Job { onchain: b"input".to_vec(), offchain: vec![], limits });
}
