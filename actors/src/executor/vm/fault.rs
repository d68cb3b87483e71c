//! Turning a refused memory access into [`Failure::MemoryFault`].

use super::memory::GuestMemory;
use super::State;
use crate::job::Failure;
use unicorn_engine::unicorn_const::uc_error;
use unicorn_engine::{RegisterRISCV, Unicorn};

/// The integer registers at the fault.
#[derive(Debug)]
pub(crate) struct Registers(pub(crate) [u32; 32]);

impl Registers {
    pub(crate) fn read(uc: &Unicorn<'_, State>) -> Result<Registers, uc_error> {
        let mut regs = [0u32; 32];
        for (i, slot) in regs.iter_mut().enumerate().skip(1) {
            let reg = RegisterRISCV::X0 as i32 + i as i32;
            *slot = uc.reg_read(reg)? as u32;
        }
        Ok(Registers(regs))
    }
}

/// Builds the fault for the instruction at `pc`: for a fetch, the pc itself;
/// for a load or store, its effective address and width.
pub(crate) fn memory_fault(mem: &GuestMemory, pc: u32, fetch: bool, regs: &Registers) -> Failure {
    if fetch {
        return Failure::MemoryFault { addr: pc, len: 4 };
    }
    // Not a load (`mem.read`): an execute-only page has no read right
    // (found by the fuzzer: such a fault named the pc, not the access).
    let Some(word) = mem.instruction(pc) else {
        return Failure::MemoryFault { addr: pc, len: 4 };
    };
    match decode_access(word, regs) {
        Some((addr, len)) => Failure::MemoryFault { addr, len },
        None => Failure::MemoryFault { addr: pc, len: 4 },
    }
}

/// Effective address and width of a load or store instruction.
fn decode_access(word: u32, regs: &Registers) -> Option<(u32, u32)> {
    let opcode = word & 0x7f;
    let funct3 = (word >> 12) & 0x7;
    let rs1 = ((word >> 15) & 0x1f) as usize;
    let imm = match opcode {
        // LOAD: imm[11:0] = inst[31:20]
        0x03 => (word as i32) >> 20,
        // STORE: imm[11:5] = inst[31:25], imm[4:0] = inst[11:7]
        0x23 => (((word as i32) >> 25) << 5) | ((word >> 7) & 0x1f) as i32,
        _ => return None,
    };
    let len = match funct3 & 0x3 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => return None,
    };
    Some((regs.0[rs1].wrapping_add(imm as u32), len))
}
