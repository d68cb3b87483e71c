//! Safe wrappers over the coprocessor extensions of the vendored Unicorn
//! (`uc_coproc_*`, see `actors/vendor/unicorn-engine-sys/PATCHES.md`).

use unicorn_engine::Unicorn;
use unicorn_engine_sys::{
    uc_coproc_direct, uc_coproc_flush_tlb_page, uc_coproc_meter_exhausted, uc_coproc_meter_remaining,
    uc_coproc_meter_start, uc_coproc_rv32im, uc_error,
};

/// Turns inline metering on with `budget` instructions.
pub(crate) fn start<D>(uc: &mut Unicorn<'_, D>, budget: u64) -> Result<(), uc_error> {
    // SAFETY: the handle is live for as long as `uc` is.
    unsafe { uc_coproc_meter_start(uc.get_handle(), budget) }.into()
}

/// Instructions left in the budget.
pub(crate) fn remaining<D>(uc: &Unicorn<'_, D>) -> u64 {
    // SAFETY: the handle is live for as long as `uc` is.
    unsafe { uc_coproc_meter_remaining(uc.get_handle()) }
}

/// Whether the last run stopped because the budget was spent.
pub(crate) fn exhausted<D>(uc: &Unicorn<'_, D>) -> bool {
    // SAFETY: the handle is live for as long as `uc` is.
    unsafe { uc_coproc_meter_exhausted(uc.get_handle()) }
}

/// Flushes one guest page from the software TLB.
pub(crate) fn flush_tlb_page<D>(uc: &mut Unicorn<'_, D>, address: u64) -> Result<(), uc_error> {
    // SAFETY: the handle is live for as long as `uc` is.
    unsafe { uc_coproc_flush_tlb_page(uc.get_handle(), address) }.into()
}

/// Restricts the CPU to exactly rv32im (no C/A/F/D, no Zicsr, no
/// privileged instructions, no `fence.i`).
pub(crate) fn strict_rv32im<D>(uc: &mut Unicorn<'_, D>) -> Result<(), uc_error> {
    // SAFETY: the handle is live for as long as `uc` is.
    unsafe { uc_coproc_rv32im(uc.get_handle()) }.into()
}

/// Turns on direct guest memory (patch 11): `base` is the host address of
/// guest address 0, `map` the page map, or null to leave it
/// off. Flushes the translation cache.
pub(crate) fn direct<D>(uc: &mut Unicorn<'_, D>, base: *mut u8, map: *mut u8) -> Result<(), uc_error> {
    if map.is_null() {
        return Ok(());
    }
    // SAFETY: the handle is live for as long as `uc` is; `base` and `map`
    // belong to the VM's memory, which outlives the Unicorn instance (see
    // `Vm`), and the map stays true to the TLB (`GuestMemory::grant`).
    unsafe { uc_coproc_direct(uc.get_handle(), base.cast(), map.cast()) }.into()
}

/// How many guest pcs Unicorn translates with a check per access because a
/// group check there failed (patch 15).
#[cfg(test)]
pub(crate) fn checked_blocks<D>(uc: &Unicorn<'_, D>) -> usize {
    // SAFETY: the handle is live for as long as `uc` is.
    unsafe { unicorn_engine_sys::uc_coproc_checked_blocks(uc.get_handle()) }
}
