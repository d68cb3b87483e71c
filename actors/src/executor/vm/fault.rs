//! Turning a refused memory access into [`Failure::MemoryFault`].

use super::memory::GuestMemory;
use super::State;
use crate::job::Failure;
use crate::program::Isa;
use unicorn_engine::unicorn_const::uc_error;
use unicorn_engine::{RegisterRISCV, Unicorn};

/// The integer registers at the fault, as whole registers (an rv32im
/// guest's are zero-extended).
#[derive(Debug)]
pub(crate) struct Registers(pub(crate) [u64; 32]);

impl Registers {
    pub(crate) fn read(uc: &Unicorn<'_, State>) -> Result<Registers, uc_error> {
        let mut regs = [0u64; 32];
        for (i, slot) in regs.iter_mut().enumerate().skip(1) {
            let reg = RegisterRISCV::X0 as i32 + i as i32;
            *slot = uc.reg_read(reg)?;
        }
        Ok(Registers(regs))
    }
}

/// Builds the fault for the instruction at `pc`: for a fetch, the pc itself;
/// for a load or store, its effective address and width. Addresses are
/// computed at the ISA's width: an rv32im address wraps at 4 GiB as the
/// hardware's does, an rv64im one is never truncated.
pub(crate) fn memory_fault(mem: &GuestMemory, isa: Isa, pc: u64, fetch: bool, regs: &Registers) -> Failure {
    let at_pc = Failure::MemoryFault { addr: pc, len: 4 };
    if fetch {
        return at_pc;
    }
    // Not a load (`mem.read`): an execute-only page has no read right
    // (found by the fuzzer: such a fault named the pc, not the access).
    let Some(word) = u32::try_from(pc).ok().and_then(|pc| mem.instruction(pc)) else {
        return at_pc;
    };
    match decode_access(word, isa, regs) {
        Some((addr, len)) => Failure::MemoryFault { addr, len },
        None => at_pc,
    }
}

/// Effective address and width of a load or store instruction.
fn decode_access(word: u32, isa: Isa, regs: &Registers) -> Option<(u64, u64)> {
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
    // lb/lbu/sb, lh/lhu/sh, lw/lwu/sw, ld/sd (rv64im: on rv32im an ld or sd
    // is illegal before it accesses anything).
    let len = match funct3 & 0x3 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let base = *regs.0.get(rs1)?;
    let addr = base.wrapping_add(i64::from(imm) as u64);
    let addr = match isa {
        Isa::Rv32im => addr & u64::from(u32::MAX),
        Isa::Rv64im => addr,
    };
    Some((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(x5: u64) -> Registers {
        let mut regs = [0; 32];
        regs[5] = x5;
        Registers(regs)
    }

    #[test]
    fn effective_addresses_wrap_at_the_isa_width() {
        // lw x6, 16(x5); sd x6, -8(x5); ld x6, 0(x5)
        let lw = 0x0102_a303;
        let sd = 0xfe62_bc23;
        let ld = 0x0002_b303;
        assert_eq!(decode_access(lw, Isa::Rv32im, &regs(0xffff_fff8)), Some((0x8, 4)));
        assert_eq!(decode_access(lw, Isa::Rv64im, &regs(0xffff_fff8)), Some((0x1_0000_0008, 4)));
        assert_eq!(decode_access(sd, Isa::Rv64im, &regs(0x1_0000_0010)), Some((0x1_0000_0008, 8)));
        assert_eq!(decode_access(ld, Isa::Rv64im, &regs(u64::MAX)), Some((u64::MAX, 8)));
        assert_eq!(decode_access(0x0000_0013, Isa::Rv64im, &regs(0)), None, "not a memory access");
    }
}
