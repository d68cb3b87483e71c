//! The metered rv32im / rv64im VM (guest ABI v1).
//!
//! A [`Vm`] is a warm Unicorn instance for one program, in the program's
//! ISA ([`Isa`]: `Mode::RISCV32` or `Mode::RISCV64`, both made exact by the
//! same Unicorn patch). Both ISAs share the window, the inputs, the
//! syscalls and the metering; on rv64im every register, pointer and
//! address is read at 64 bits and never truncated. It runs any number
//! of jobs, one after another, with full isolation between them: guest
//! memory is host-owned ([`memory`]) and reset page by page, registers are
//! restored from a saved context, and metering is inline in every
//! translation block (`meter`, backed by the vendored Unicorn patches).
//!
//! Lifecycle: [`ProgramImage`] (validated ELF) → [`Vm::new`] → [`Vm::run`]
//! per job → [`JobOutcome`].

mod direct;
mod fault;
mod memory;
mod meter;
mod syscall;

pub(crate) use memory::{OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR};

use crate::job::{Failure, JobLimits, JobOutcome};
use crate::program::{Isa, ProgramImage, GUEST_WINDOW_END, GUEST_WINDOW_START};
use memory::{AccessError, GuestMemory, PagePerms, PAGE_SHIFT};
use syscall::{JobIo, Next};
use unicorn_engine::unicorn_const::{uc_error, Arch, MemType, Mode, Prot, TlbEntry, TlbType};
use unicorn_engine::{Context, RegisterRISCV, Unicorn};

/// Default limit on each input (onchain, offchain): 1 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 1 << 20;

/// Initial stack pointer (guest ABI v1).
pub const STACK_TOP: u32 = GUEST_WINDOW_END - 16;

/// An engine-side error: the job could not be run at all. A guest's own
/// failure is a [`Failure`] in the [`JobOutcome`] instead.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// Unicorn refused an operation.
    #[error("unicorn: {0:?}")]
    Unicorn(uc_error),
    /// Host memory for the guest could not be mapped.
    #[error("mapping guest memory: {0}")]
    Map(#[from] std::io::Error),
    /// An input is larger than the VM's input limit.
    #[error("{which} input is {len} bytes, over the limit of {max}")]
    InputTooLarge {
        /// "onchain" or "offchain".
        which: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The guest stopped without exiting, failing or running out of cycles.
    #[error("guest stopped without a reason at pc {pc:#010x}")]
    StoppedWithoutReason {
        /// Where it stopped.
        pc: u64,
    },
}

impl From<uc_error> for VmError {
    fn from(err: uc_error) -> Self {
        VmError::Unicorn(err)
    }
}

/// The state hooks see, kept in Unicorn's user data.
#[derive(Debug)]
struct State {
    /// The program's ISA: the width of its registers and addresses.
    isa: Isa,
    mem: GuestMemory,
    io: JobIo,
    exit: Option<u32>,
    failure: Option<Failure>,
    /// A page the TLB hook refused because of the memory limit.
    limit_hit: bool,
    /// The kind of the last access the TLB hook refused.
    denied: Option<MemType>,
    cycle_limit_hit: bool,
}

/// A warm VM instance for one program.
pub struct Vm {
    uc: Unicorn<'static, State>,
    entry: u32,
    initial: Context,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("entry", &format_args!("{:#010x}", self.entry)).finish_non_exhaustive()
    }
}

impl Vm {
    /// Builds a VM for `image`. Inputs up to `max_input_bytes` each fit.
    pub fn new(image: &ProgramImage, max_input_bytes: usize) -> Result<Vm, VmError> {
        let mem = GuestMemory::new(image, max_input_bytes)?;
        let state = State {
            isa: image.isa,
            mem,
            io: JobIo::default(),
            exit: None,
            failure: None,
            limit_hit: false,
            denied: None,
            cycle_limit_hit: false,
        };
        let mode = match image.isa {
            Isa::Rv32im => Mode::RISCV32,
            Isa::Rv64im => Mode::RISCV64,
        };
        let mut uc = Unicorn::new_with_data(Arch::RISCV, mode, state)?;
        // Exactly rv32im or rv64im: the patch clears C, A, F and D from misa
        // (keeping the mode's own XLEN) and refuses CSRs, fence.i and every
        // SYSTEM instruction but ecall, in both builds.
        meter::strict_rv32im(&mut uc)?;
        uc.ctl_set_tlb_type(TlbType::VIRTUAL)?;
        map_regions(&mut uc)?;
        let (space, map) = uc.get_data().mem.direct();
        meter::direct(&mut uc, space, map)?;
        // Every hook is installed before the first run: hooks added later
        // would not apply to blocks already translated.
        uc.add_tlb_hook(0, u64::MAX, tlb_fill)?;
        uc.add_intr_hook(on_trap)?;
        uc.reg_write(RegisterRISCV::X2, u64::from(STACK_TOP))?;
        uc.set_pc(u64::from(image.entry))?;
        let initial = uc.context_init()?;
        Ok(Vm { uc, entry: image.entry, initial })
    }

    /// Runs one job and leaves the VM clean for the next.
    pub fn run(&mut self, onchain: &[u8], offchain: &[u8], limits: &JobLimits) -> Result<JobOutcome, VmError> {
        self.load_inputs(onchain, offchain)?;
        let state = self.uc.get_data_mut();
        state.mem.set_limit(limits.max_memory_bytes);
        state.io = JobIo { max_output_bytes: limits.max_output_bytes, ..JobIo::default() };
        let image_too_big = state.mem.image_over_limit();
        // Started before the branch, so that a job that never runs reports 0 cycles.
        meter::start(&mut self.uc, limits.max_cycles)?;

        let result = if image_too_big {
            self.uc.get_data_mut().failure = Some(Failure::MemoryLimitExceeded);
            Ok(())
        } else {
            self.uc.context_restore(&self.initial)?;
            for (reg, value) in [
                (RegisterRISCV::X10, ONCHAIN_INPUT_ADDR),
                (RegisterRISCV::X11, len_u32(onchain)),
                (RegisterRISCV::X12, OFFCHAIN_INPUT_ADDR),
                (RegisterRISCV::X13, len_u32(offchain)),
            ] {
                self.uc.reg_write(reg, u64::from(value))?;
            }
            self.uc.emu_start(u64::from(self.entry), 0, 0, 0)
        };
        let outcome = self.outcome(result, limits);
        self.reset()?;
        outcome
    }

    fn load_inputs(&mut self, onchain: &[u8], offchain: &[u8]) -> Result<(), VmError> {
        let inputs = &mut self.uc.get_data_mut().mem.inputs;
        for (region, bytes, which) in
            inputs.iter_mut().zip([onchain, offchain]).zip(["onchain", "offchain"]).map(|((r, b), w)| (r, b, w))
        {
            if bytes.len() > region.capacity {
                return Err(VmError::InputTooLarge { which, len: bytes.len(), max: region.capacity });
            }
            region.set(bytes);
        }
        Ok(())
    }

    fn outcome(&mut self, result: Result<(), uc_error>, limits: &JobLimits) -> Result<JobOutcome, VmError> {
        let used = limits.max_cycles.saturating_sub(meter::remaining(&self.uc));
        let exhausted = meter::exhausted(&self.uc);
        let pc = pc(&self.uc);
        let fault = result.err();
        let regs = if fault.is_some() { Some(fault::Registers::read(&self.uc)?) } else { None };
        let state = self.uc.get_data_mut();
        let mut cycles = used;
        let failure = if let Some(failure) = state.failure.take() {
            if matches!(failure, Failure::IllegalInstruction { .. } | Failure::MisalignedFetch { .. }) {
                // The trapping instruction was counted by its block's
                // prologue but did not retire.
                cycles = cycles.saturating_sub(1);
            }
            Some(failure)
        } else if state.cycle_limit_hit || exhausted {
            cycles = limits.max_cycles;
            Some(Failure::CycleLimitExceeded)
        } else if let Some(code) = state.exit {
            (code != 0).then_some(Failure::GuestExit(code))
        } else if let (Some(err), Some(regs)) = (fault, regs) {
            match err {
                uc_error::INSN_INVALID => Some(Failure::IllegalInstruction { pc }),
                _ if state.limit_hit => Some(Failure::MemoryLimitExceeded),
                uc_error::READ_UNMAPPED
                | uc_error::WRITE_UNMAPPED
                | uc_error::FETCH_UNMAPPED
                | uc_error::READ_PROT
                | uc_error::WRITE_PROT
                | uc_error::FETCH_PROT
                | uc_error::EXCEPTION => {
                    let fetch = state.denied == Some(MemType::FETCH)
                        || matches!(err, uc_error::FETCH_UNMAPPED | uc_error::FETCH_PROT);
                    Some(fault::memory_fault(&state.mem, state.isa, pc, fetch, &regs))
                }
                other => return Err(VmError::Unicorn(other)),
            }
        } else {
            return Err(VmError::StoppedWithoutReason { pc });
        };
        Ok(JobOutcome {
            output: std::mem::take(&mut state.io.output),
            exit_code: state.exit,
            cycles,
            peak_memory_bytes: state.mem.used_bytes(),
            failure,
            log: std::mem::take(&mut state.io.log),
        })
    }

    /// Undoes the job: memory, TLB entries and per-job flags.
    fn reset(&mut self) -> Result<(), VmError> {
        let state = self.uc.get_data_mut();
        state.exit = None;
        state.failure = None;
        state.limit_hit = false;
        state.denied = None;
        state.cycle_limit_hit = false;
        // With direct memory, a job's first touch of a page is decided by
        // the page map alone (Unicorn patch 14): `reset` revokes the map
        // bits, and the TLB keeps its entries, whose rights never change.
        let keep_tlb = state.mem.is_direct();
        let (flushed, pages) = match state.mem.reset() {
            Ok(pages) | Err(pages) if keep_tlb => (Ok(()), pages),
            Ok(pages) => {
                let uc = &mut self.uc;
                (pages.iter().try_for_each(|&page| meter::flush_tlb_page(uc, u64::from(page) << PAGE_SHIFT)), pages)
            }
            Err(pages) => (self.uc.ctl_flush_tlb(), pages),
        };
        self.uc.get_data_mut().mem.recycle(pages);
        Ok(flushed?)
    }
}

impl Vm {
    /// The pc and the 32 integer registers (`x0` reads 0) where the last
    /// run stopped, as whole registers: 64 bits on rv64im, zero-extended on
    /// rv32im. For the fuzzer's comparison with a reference interpreter;
    /// the run itself never calls it. Meaningless after a job that never
    /// started (its image alone over the memory limit).
    pub fn stop_registers(&self) -> Result<(u64, [u64; 32]), VmError> {
        let regs = fault::Registers::read(&self.uc)?;
        Ok((self.uc.reg_read(RegisterRISCV::PC)?, regs.0))
    }

    /// The ISA this VM runs.
    pub fn isa(&self) -> Isa {
        self.uc.get_data().isa
    }
}

#[cfg(test)]
impl Vm {
    /// The pc and integer registers where the last run of an rv32im guest
    /// stopped.
    pub(crate) fn registers(&self) -> (u32, [u32; 32]) {
        let (pc, regs) = self.registers64();
        let narrow = |v: u64| u32::try_from(v).expect("an rv32im register fits in 32 bits");
        (narrow(pc), regs.map(narrow))
    }

    /// The pc and integer registers where the last run stopped, 64 bits wide.
    pub(crate) fn registers64(&self) -> (u64, [u64; 32]) {
        self.stop_registers().expect("registers")
    }
}

/// The pc (in 64 bits: an rv64im pc is never truncated). Read as a
/// register: `pc_read` asks Unicorn for the mode on every call.
fn pc<D>(uc: &Unicorn<'_, D>) -> u64 {
    // Cannot fail on a live handle.
    uc.reg_read(RegisterRISCV::PC).unwrap_or(0)
}

fn len_u32(bytes: &[u8]) -> u32 {
    // Inputs are bounded by the input regions, far below 4 GiB.
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}

/// Maps the window (host-owned memory) and the two input regions.
fn map_regions(uc: &mut Unicorn<'static, State>) -> Result<(), VmError> {
    let (regions, base) = {
        let mem = &uc.get_data().mem;
        (mem.regions(), mem.host_base())
    };
    for (addr, size, perms) in regions {
        let offset = (addr - GUEST_WINDOW_START) as usize;
        // SAFETY: the window mapping outlives the Unicorn instance: both
        // live in the same Vm, and the Unicorn handle is closed first
        // because the state (which owns the mapping) is dropped with it.
        unsafe { uc.mem_map_ptr(u64::from(addr), u64::from(size), prot(perms), base.add(offset).cast())? };
    }
    let inputs: Vec<(u32, usize, *mut u8)> =
        uc.get_data().mem.inputs.iter().map(|input| (input.addr, input.capacity, input.host_ptr())).collect();
    for (addr, capacity, ptr) in inputs {
        // SAFETY: as above; the input buffers live in the same state.
        unsafe { uc.mem_map_ptr(u64::from(addr), capacity as u64, Prot::READ, ptr.cast())? };
    }
    Ok(())
}

fn prot(perms: PagePerms) -> Prot {
    let mut prot = Prot::NONE;
    if perms.read {
        prot |= Prot::READ;
    }
    if perms.write {
        prot |= Prot::WRITE;
    }
    if perms.exec {
        prot |= Prot::EXEC;
    }
    prot
}

/// TLB-fill hook: the first access of a job to a page. Counts the page,
/// enforces the memory limit, and hands out the page's rights (identity
/// mapping).
fn tlb_fill(uc: &mut Unicorn<'_, State>, address: u64, kind: MemType) -> Option<TlbEntry> {
    // A fetch with the budget spent: QEMU translates the next block (and
    // fetches it) before that block's prologue checks the meter, so a fetch
    // that would fault, or touch a page over the memory limit, must not be
    // what ends a job that has no cycle left to run it. The job is out of
    // cycles; the page is not touched (found by the fuzzer, `vm_diff`).
    if kind == MemType::FETCH && meter::remaining(uc) == 0 {
        uc.get_data_mut().cycle_limit_hit = true;
        return None;
    }
    let state = uc.get_data_mut();
    // In 64 bits: an rv64im address above 4 GiB is a fault, never wrapped
    // onto a page of the window.
    let Ok(page) = u32::try_from(address >> PAGE_SHIFT) else {
        state.denied = Some(kind);
        return None;
    };
    if state.mem.inputs.iter().any(|input| input.contains_page(page)) {
        if kind != MemType::READ {
            state.denied = Some(kind);
        }
        return Some(TlbEntry { paddr: address, perms: Prot::READ });
    }
    match state.mem.touch(page) {
        Ok(perms) => {
            let allowed = match kind {
                MemType::READ => perms.read,
                MemType::WRITE => perms.write,
                _ => perms.exec,
            };
            if allowed {
                state.mem.grant(page, perms);
            } else {
                state.denied = Some(kind);
            }
            Some(TlbEntry { paddr: address, perms: prot(perms) })
        }
        Err(AccessError::LimitExceeded) => {
            state.limit_hit = true;
            None
        }
        Err(AccessError::Fault) => {
            state.denied = Some(kind);
            None
        }
    }
}

/// Interrupt hook: `ecall` (a syscall) or a trap.
fn on_trap(uc: &mut Unicorn<'_, State>, cause: u32) {
    // Unicorn has already advanced the pc past the trapping instruction
    // (in 64 bits: the pc of an rv64im guest is never truncated).
    let stop = match cause {
        // ecall from U, S or M mode.
        8 | 9 | 11 => syscall(uc),
        _ => {
            let pc = pc(uc).wrapping_sub(4);
            // 0: instruction address misaligned.
            let failure = if cause == 0 { Failure::MisalignedFetch { pc } } else { Failure::IllegalInstruction { pc } };
            trap(uc, failure, pc)
        }
    };
    if stop {
        // Cannot fail on a live handle; the run ends either way.
        let _ = uc.emu_stop();
    }
}

/// A trap: the job fails and stops on the trapping instruction, which did
/// not retire (as at a memory fault), so the pc goes back to it (found by
/// the fuzzer: the stop pc was the next instruction's).
fn trap(uc: &mut Unicorn<'_, State>, failure: Failure, pc: u64) -> bool {
    // Cannot fail on a live handle; the run ends either way.
    let _ = uc.set_pc(pc);
    fail(uc, failure)
}

fn fail(uc: &mut Unicorn<'_, State>, failure: Failure) -> bool {
    uc.get_data_mut().failure = Some(failure);
    true
}

/// Runs the syscall in `a7`. Returns whether the run must stop. The
/// registers are read whole (64 bits on rv64im): `syscall.rs` refuses what
/// does not fit, and never truncates.
fn syscall(uc: &mut Unicorn<'_, State>) -> bool {
    let reg = |uc: &Unicorn<'_, State>, r| uc.reg_read(r).unwrap_or(0);
    let number = reg(uc, RegisterRISCV::X17);
    let args = [reg(uc, RegisterRISCV::X10), reg(uc, RegisterRISCV::X11), reg(uc, RegisterRISCV::X12)];
    let remaining = meter::remaining(uc);
    if syscall::cost(number, args) > remaining {
        uc.get_data_mut().cycle_limit_hit = true;
        return true;
    }
    let state = uc.get_data_mut();
    match syscall::dispatch(number, args, &mut state.mem, &mut state.io) {
        Next::Resume { ret, cycles } => {
            if meter::start(uc, remaining - cycles).is_err() || uc.reg_write(RegisterRISCV::X10, ret).is_err() {
                return true;
            }
            false
        }
        Next::Exit(code) => {
            uc.get_data_mut().exit = Some(code);
            true
        }
        Next::Fail(failure) => fail(uc, failure),
    }
}

#[cfg(test)]
mod tests;
