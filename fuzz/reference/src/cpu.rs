//! The interpreter loop: fetch, decode, execute, one instruction at a time.

use crate::memory::{Access, Memory, Refused};
use crate::{
    input_capacity, Failure, InputTooLarge, Program, Xlen, HASH_CYCLES_BASE, HASH_CYCLES_PER_BLOCK, MAX_LOG_BYTES,
    OFFCHAIN_INPUT_ADDR, ONCHAIN_INPUT_ADDR, STACK_TOP,
};
use sha2::Digest;

/// The limits of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cycle budget (exact).
    pub max_cycles: u64,
    /// Memory limit in bytes (whole pages count).
    pub max_memory_bytes: u64,
    /// Output limit in bytes (inclusive).
    pub max_output_bytes: usize,
}

/// Where the job stopped: the pc and the 32 registers (`x0` is 0), at 64
/// bits (an rv32im guest's are zero-extended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// At a trap, the trapping instruction (a fetch fault: the address
    /// fetched); after `ecall`, the instruction after it; at the cycle
    /// limit, the next instruction.
    pub pc: u64,
    /// `x0..x31`.
    pub regs: [u64; 32],
}

/// The result of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes written to fd 3.
    pub output: Vec<u8>,
    /// The code given to `exit`, if the guest called it.
    pub exit_code: Option<u32>,
    /// Retired instructions plus syscall costs (`max_cycles` at the limit).
    pub cycles: u64,
    /// Image pages plus the zero pages touched, in bytes.
    pub peak_memory_bytes: u64,
    /// `None` when the job is done.
    pub failure: Option<Failure>,
    /// fd 1/2 output, truncated to [`MAX_LOG_BYTES`].
    pub log: Vec<u8>,
    /// Where it stopped; `None` if it never started (the image alone is
    /// over the memory limit).
    pub stop: Option<Stop>,
}

struct Cpu {
    xlen: Xlen,
    pc: u64,
    regs: [u64; 32],
    mem: Memory,
    cycles: u64,
    limits: Limits,
    output: Vec<u8>,
    log: Vec<u8>,
}

/// What one instruction did.
enum Step {
    /// Retired; continue at this pc.
    Next(u64),
    /// Trapped without retiring.
    Trap(Failure),
    /// `ecall` retired; the pc is past it.
    Ecall,
}

/// What a syscall did.
enum Syscall {
    Resume { ret: u64 },
    Exit(u32),
    Fail(Failure),
}

fn refused(err: Refused, addr: u64, len: u64) -> Failure {
    match err {
        Refused::Fault => Failure::MemoryFault { addr, len },
        Refused::Limit => Failure::MemoryLimitExceeded,
    }
}

/// Runs `program` on one job. `max_input_bytes` sizes the input regions.
pub fn run(
    program: &Program,
    max_input_bytes: usize,
    onchain: &[u8],
    offchain: &[u8],
    limits: &Limits,
) -> Result<Outcome, InputTooLarge> {
    let capacity = input_capacity(max_input_bytes);
    for (which, input) in [("onchain", onchain), ("offchain", offchain)] {
        if input.len() > capacity {
            return Err(InputTooLarge { which, len: input.len(), capacity });
        }
    }
    let mem = Memory::new(program, capacity as u32, onchain, offchain, limits.max_memory_bytes);
    let mut regs = [0u64; 32];
    regs[2] = u64::from(STACK_TOP);
    regs[10] = u64::from(ONCHAIN_INPUT_ADDR);
    regs[11] = onchain.len() as u64;
    regs[12] = u64::from(OFFCHAIN_INPUT_ADDR);
    regs[13] = offchain.len() as u64;
    let mut cpu = Cpu {
        xlen: program.xlen,
        pc: u64::from(program.entry),
        regs,
        mem,
        cycles: 0,
        limits: *limits,
        output: Vec::new(),
        log: Vec::new(),
    };
    if cpu.mem.image_over_limit() {
        return Ok(cpu.finish(None, Some(Failure::MemoryLimitExceeded), false));
    }
    let (exit_code, failure) = cpu.execute();
    Ok(cpu.finish(exit_code, failure, true))
}

impl Cpu {
    fn finish(self, exit_code: Option<u32>, failure: Option<Failure>, started: bool) -> Outcome {
        Outcome {
            output: self.output,
            exit_code,
            cycles: self.cycles,
            peak_memory_bytes: self.mem.used_bytes(),
            failure,
            log: self.log,
            stop: started.then_some(Stop { pc: self.pc, regs: self.regs }),
        }
    }

    /// Runs until the job stops: `(exit code, failure)`.
    fn execute(&mut self) -> (Option<u32>, Option<Failure>) {
        loop {
            if self.cycles >= self.limits.max_cycles {
                self.cycles = self.limits.max_cycles;
                return (None, Some(Failure::CycleLimitExceeded));
            }
            match self.step() {
                Step::Next(pc) => {
                    self.cycles += 1;
                    self.pc = pc;
                }
                Step::Trap(failure) => return (None, Some(failure)),
                Step::Ecall => {
                    self.cycles += 1;
                    self.pc = self.pc.wrapping_add(4);
                    // A precompile's charge depends on its length alone and
                    // is checked before it runs (a 64-bit length saturates).
                    let cost = match self.regs[17] {
                        0x100 | 0x101 => HASH_CYCLES_PER_BLOCK
                            .saturating_mul(self.regs[11].div_ceil(64).max(1))
                            .saturating_add(HASH_CYCLES_BASE),
                        _ => 0,
                    };
                    if cost > self.limits.max_cycles - self.cycles {
                        self.cycles = self.limits.max_cycles;
                        return (None, Some(Failure::CycleLimitExceeded));
                    }
                    match self.syscall() {
                        Syscall::Resume { ret } => {
                            self.cycles += cost;
                            self.regs[10] = ret;
                        }
                        Syscall::Exit(code) => return (Some(code), (code != 0).then_some(Failure::GuestExit(code))),
                        Syscall::Fail(failure) => return (None, Some(failure)),
                    }
                }
            }
        }
    }

    fn set(&mut self, rd: usize, value: u64) {
        if rd != 0 {
            self.regs[rd] = value;
        }
    }

    /// A jump or taken branch to `target`.
    fn jump(&mut self, target: u64, rd: usize) -> Step {
        if !target.is_multiple_of(4) {
            return Step::Trap(Failure::MisalignedFetch { pc: self.pc });
        }
        self.set(rd, self.pc.wrapping_add(4));
        Step::Next(target)
    }

    /// An instruction's load of `len` bytes at `addr`: above 4 GiB a fault,
    /// never an alias.
    fn load(&mut self, addr: u64, len: u32, access: Access) -> Result<u64, Failure> {
        let narrow = u32::try_from(addr).map_err(|_| Failure::MemoryFault { addr, len: u64::from(len) })?;
        self.mem.load(narrow, len, access).map_err(|err| refused(err, addr, u64::from(len)))
    }

    /// An instruction's store of the low `len` bytes of `value` at `addr`.
    fn store(&mut self, addr: u64, len: u32, value: u64) -> Result<(), Failure> {
        let narrow = u32::try_from(addr).map_err(|_| Failure::MemoryFault { addr, len: u64::from(len) })?;
        self.mem.store(narrow, len, value).map_err(|err| refused(err, addr, u64::from(len)))
    }

    fn step(&mut self) -> Step {
        let word = match self.load(self.pc, 4, Access::Exec) {
            Ok(word) => word as u32,
            Err(failure) => return Step::Trap(failure),
        };
        match self.xlen {
            Xlen::Rv32 => self.step32(word),
            Xlen::Rv64 => self.step64(word),
        }
    }

    /// One rv32im instruction (registers hold zero-extended 32-bit values).
    fn step32(&mut self, word: u32) -> Step {
        let pc = self.pc as u32;
        let illegal = Step::Trap(Failure::IllegalInstruction { pc: self.pc });
        let opcode = word & 0x7f;
        let rd = ((word >> 7) & 0x1f) as usize;
        let funct3 = (word >> 12) & 0x7;
        let rs1 = ((word >> 15) & 0x1f) as usize;
        let rs2 = ((word >> 20) & 0x1f) as usize;
        let funct7 = word >> 25;
        let (a, b) = (self.regs[rs1] as u32, self.regs[rs2] as u32);
        let imm_i = (word as i32 >> 20) as u32;
        let imm_s = ((word as i32 >> 25) << 5) as u32 | ((word >> 7) & 0x1f);
        let imm_b = ((word as i32 >> 31) << 12) as u32
            | ((word >> 7) & 1) << 11
            | ((word >> 25) & 0x3f) << 5
            | ((word >> 8) & 0xf) << 1;
        let imm_u = word & 0xffff_f000;
        let imm_j = ((word as i32 >> 31) << 20) as u32
            | (word & 0x000f_f000)
            | ((word >> 20) & 1) << 11
            | ((word >> 21) & 0x3ff) << 1;
        let next = pc.wrapping_add(4);
        match opcode {
            0x37 => self.set(rd, u64::from(imm_u)),
            0x17 => self.set(rd, u64::from(pc.wrapping_add(imm_u))),
            0x6f => return self.jump(u64::from(pc.wrapping_add(imm_j)), rd),
            0x67 if funct3 == 0 => return self.jump(u64::from(a.wrapping_add(imm_i) & !1), rd),
            0x63 => {
                let taken = match funct3 {
                    0 => a == b,
                    1 => a != b,
                    4 => (a as i32) < (b as i32),
                    5 => (a as i32) >= (b as i32),
                    6 => a < b,
                    7 => a >= b,
                    _ => return illegal,
                };
                if taken {
                    return self.jump(u64::from(pc.wrapping_add(imm_b)), 0);
                }
            }
            0x03 => {
                let addr = u64::from(a.wrapping_add(imm_i));
                let (len, signed) = match funct3 {
                    0 => (1, true),
                    1 => (2, true),
                    2 => (4, false),
                    4 => (1, false),
                    5 => (2, false),
                    _ => return illegal,
                };
                let value = match self.load(addr, len, Access::Read) {
                    Ok(value) => value as u32,
                    Err(failure) => return Step::Trap(failure),
                };
                let value = match (len, signed) {
                    (1, true) => value as u8 as i8 as u32,
                    (2, true) => value as u16 as i16 as u32,
                    _ => value,
                };
                self.set(rd, u64::from(value));
            }
            0x23 => {
                let addr = u64::from(a.wrapping_add(imm_s));
                let len = match funct3 {
                    0 => 1,
                    1 => 2,
                    2 => 4,
                    _ => return illegal,
                };
                if let Err(failure) = self.store(addr, len, u64::from(b)) {
                    return Step::Trap(failure);
                }
            }
            0x13 => {
                let shamt = imm_i & 0x1f;
                let value = match (funct3, funct7) {
                    (0, _) => a.wrapping_add(imm_i),
                    (2, _) => ((a as i32) < (imm_i as i32)) as u32,
                    (3, _) => (a < imm_i) as u32,
                    (4, _) => a ^ imm_i,
                    (6, _) => a | imm_i,
                    (7, _) => a & imm_i,
                    (1, 0x00) => a << shamt,
                    (5, 0x00) => a >> shamt,
                    (5, 0x20) => ((a as i32) >> shamt) as u32,
                    _ => return illegal,
                };
                self.set(rd, u64::from(value));
            }
            0x33 => {
                let value = match (funct7, funct3) {
                    (0x00, 0) => a.wrapping_add(b),
                    (0x20, 0) => a.wrapping_sub(b),
                    (0x00, 1) => a << (b & 0x1f),
                    (0x00, 2) => ((a as i32) < (b as i32)) as u32,
                    (0x00, 3) => (a < b) as u32,
                    (0x00, 4) => a ^ b,
                    (0x00, 5) => a >> (b & 0x1f),
                    (0x20, 5) => ((a as i32) >> (b & 0x1f)) as u32,
                    (0x00, 6) => a | b,
                    (0x00, 7) => a & b,
                    (0x01, op) => muldiv(op, a, b),
                    _ => return illegal,
                };
                self.set(rd, u64::from(value));
            }
            // FENCE (any predecessor/successor sets) is a no-op; FENCE.I is not rv32im.
            0x0f if funct3 == 0 => {}
            0x73 if word == 0x0000_0073 => return Step::Ecall,
            _ => return illegal,
        }
        Step::Next(u64::from(next))
    }

    /// One rv64im instruction.
    fn step64(&mut self, word: u32) -> Step {
        let pc = self.pc;
        let illegal = Step::Trap(Failure::IllegalInstruction { pc });
        let opcode = word & 0x7f;
        let rd = ((word >> 7) & 0x1f) as usize;
        let funct3 = (word >> 12) & 0x7;
        let rs1 = ((word >> 15) & 0x1f) as usize;
        let rs2 = ((word >> 20) & 0x1f) as usize;
        let funct7 = word >> 25;
        let (a, b) = (self.regs[rs1], self.regs[rs2]);
        // The immediates as rv32 decodes them, then sign-extended to 64 bits.
        let imm_i = sext((word as i32 >> 20) as u32);
        let imm_s = sext(((word as i32 >> 25) << 5) as u32 | ((word >> 7) & 0x1f));
        let imm_b = sext(
            ((word as i32 >> 31) << 12) as u32
                | ((word >> 7) & 1) << 11
                | ((word >> 25) & 0x3f) << 5
                | ((word >> 8) & 0xf) << 1,
        );
        let imm_u = sext(word & 0xffff_f000);
        let imm_j = sext(
            ((word as i32 >> 31) << 20) as u32
                | (word & 0x000f_f000)
                | ((word >> 20) & 1) << 11
                | ((word >> 21) & 0x3ff) << 1,
        );
        match opcode {
            0x37 => self.set(rd, imm_u),
            0x17 => self.set(rd, pc.wrapping_add(imm_u)),
            0x6f => return self.jump(pc.wrapping_add(imm_j), rd),
            0x67 if funct3 == 0 => return self.jump(a.wrapping_add(imm_i) & !1, rd),
            0x63 => {
                let taken = match funct3 {
                    0 => a == b,
                    1 => a != b,
                    4 => (a as i64) < (b as i64),
                    5 => (a as i64) >= (b as i64),
                    6 => a < b,
                    7 => a >= b,
                    _ => return illegal,
                };
                if taken {
                    return self.jump(pc.wrapping_add(imm_b), 0);
                }
            }
            0x03 => {
                let addr = a.wrapping_add(imm_i);
                // (width, sign-extended)
                let (len, signed) = match funct3 {
                    0 => (1, true),
                    1 => (2, true),
                    2 => (4, true),
                    3 => (8, false),
                    4 => (1, false),
                    5 => (2, false),
                    6 => (4, false),
                    _ => return illegal,
                };
                let value = match self.load(addr, len, Access::Read) {
                    Ok(value) => value,
                    Err(failure) => return Step::Trap(failure),
                };
                let value = match (len, signed) {
                    (1, true) => value as u8 as i8 as u64,
                    (2, true) => value as u16 as i16 as u64,
                    (4, true) => value as u32 as i32 as u64,
                    _ => value,
                };
                self.set(rd, value);
            }
            0x23 => {
                let addr = a.wrapping_add(imm_s);
                let len = match funct3 {
                    0 => 1,
                    1 => 2,
                    2 => 4,
                    3 => 8,
                    _ => return illegal,
                };
                if let Err(failure) = self.store(addr, len, b) {
                    return Step::Trap(failure);
                }
            }
            0x13 => {
                // Shifts take a 6-bit shamt; imm[11:6] selects the kind.
                let shamt = (imm_i & 0x3f) as u32;
                let funct6 = word >> 26;
                let value = match (funct3, funct6) {
                    (0, _) => a.wrapping_add(imm_i),
                    (2, _) => u64::from((a as i64) < (imm_i as i64)),
                    (3, _) => u64::from(a < imm_i),
                    (4, _) => a ^ imm_i,
                    (6, _) => a | imm_i,
                    (7, _) => a & imm_i,
                    (1, 0x00) => a << shamt,
                    (5, 0x00) => a >> shamt,
                    (5, 0x10) => ((a as i64) >> shamt) as u64,
                    _ => return illegal,
                };
                self.set(rd, value);
            }
            0x1b => {
                // OP-IMM-32: 32-bit results, sign-extended; 5-bit shamt.
                let a = a as u32;
                let shamt = (word >> 20) & 0x1f;
                let value = match (funct3, funct7) {
                    (0, _) => a.wrapping_add(imm_i as u32),
                    (1, 0x00) => a << shamt,
                    (5, 0x00) => a >> shamt,
                    (5, 0x20) => ((a as i32) >> shamt) as u32,
                    _ => return illegal,
                };
                self.set(rd, sext(value));
            }
            0x33 => {
                let value = match (funct7, funct3) {
                    (0x00, 0) => a.wrapping_add(b),
                    (0x20, 0) => a.wrapping_sub(b),
                    (0x00, 1) => a << (b & 0x3f),
                    (0x00, 2) => u64::from((a as i64) < (b as i64)),
                    (0x00, 3) => u64::from(a < b),
                    (0x00, 4) => a ^ b,
                    (0x00, 5) => a >> (b & 0x3f),
                    (0x20, 5) => ((a as i64) >> (b & 0x3f)) as u64,
                    (0x00, 6) => a | b,
                    (0x00, 7) => a & b,
                    (0x01, op) => muldiv64(op, a, b),
                    _ => return illegal,
                };
                self.set(rd, value);
            }
            0x3b => {
                // OP-32: the low 32 bits of each operand, the result sign-extended.
                let (a, b) = (a as u32, b as u32);
                let value = match (funct7, funct3) {
                    (0x00, 0) => a.wrapping_add(b),
                    (0x20, 0) => a.wrapping_sub(b),
                    (0x00, 1) => a << (b & 0x1f),
                    (0x00, 5) => a >> (b & 0x1f),
                    (0x20, 5) => ((a as i32) >> (b & 0x1f)) as u32,
                    (0x01, 0) => a.wrapping_mul(b),
                    (0x01, op @ 4..=7) => muldiv(op, a, b),
                    _ => return illegal,
                };
                self.set(rd, sext(value));
            }
            // FENCE (any predecessor/successor sets) is a no-op; FENCE.I is not rv64im.
            0x0f if funct3 == 0 => {}
            0x73 if word == 0x0000_0073 => return Step::Ecall,
            _ => return illegal,
        }
        Step::Next(pc.wrapping_add(4))
    }

    fn syscall(&mut self) -> Syscall {
        let [a0, a1, a2] = [self.regs[10], self.regs[11], self.regs[12]];
        // The number in full; an exit code and a descriptor are C ints: the low 32 bits.
        match self.regs[17] {
            93 => Syscall::Exit(a0 as u32),
            64 => self.write(a0 as u32, a1, a2),
            0x100 => self.hash(a0, a1, a2, |data| {
                let mut out = [0u8; 32];
                let mut keccak = tiny_keccak::Keccak::v256();
                tiny_keccak::Hasher::update(&mut keccak, data);
                tiny_keccak::Hasher::finalize(keccak, &mut out);
                out
            }),
            0x101 => self.hash(a0, a1, a2, |data| sha2::Sha256::digest(data).into()),
            other => Syscall::Fail(Failure::UnsupportedSyscall(other)),
        }
    }

    fn write(&mut self, fd: u32, ptr: u64, len: u64) -> Syscall {
        let (ptr, len) = match span(ptr, len) {
            Ok(span) => span,
            // Another descriptor reads nothing: it cannot fault.
            Err(_) if !matches!(fd, 1..=3) => return Syscall::Resume { ret: len },
            Err(failure) => return Syscall::Fail(failure),
        };
        let whole = |err| refused(err, u64::from(ptr), u64::from(len));
        match fd {
            3 => {
                if self.output.len().saturating_add(len as usize) > self.limits.max_output_bytes {
                    return Syscall::Fail(Failure::OutputTooLarge);
                }
                match self.mem.read_range(ptr, len, len) {
                    Ok(bytes) => self.output.extend_from_slice(&bytes),
                    Err(err) => return Syscall::Fail(whole(err)),
                }
            }
            1 | 2 => {
                // The whole range is checked (and its pages touched); the log keeps a prefix.
                let room = MAX_LOG_BYTES.saturating_sub(self.log.len()).min(len as usize) as u32;
                match self.mem.read_range(ptr, len, room) {
                    Ok(bytes) => self.log.extend_from_slice(&bytes),
                    Err(err) => return Syscall::Fail(whole(err)),
                }
            }
            // Any other descriptor discards the bytes unread.
            _ => {}
        }
        Syscall::Resume { ret: u64::from(len) }
    }

    fn hash(&mut self, ptr: u64, len: u64, out: u64, f: impl Fn(&[u8]) -> [u8; 32]) -> Syscall {
        let ((ptr, len), (out, _)) = match span(ptr, len).and_then(|input| Ok((input, span(out, 32)?))) {
            Ok(spans) => spans,
            Err(failure) => return Syscall::Fail(failure),
        };
        let digest = match self.mem.read_range(ptr, len, len) {
            Ok(bytes) => f(&bytes),
            Err(err) => return Syscall::Fail(refused(err, u64::from(ptr), u64::from(len))),
        };
        if let Err(err) = self.mem.write_range(out, &digest) {
            return Syscall::Fail(refused(err, u64::from(out), 32));
        }
        Syscall::Resume { ret: 0 }
    }
}

/// A syscall's `(ptr, len)` as 32-bit values, or the fault it is: on rv64im
/// a pointer or length above 4 GiB, reported in full (an rv32im guest's
/// always fit). An empty range touches nothing, wherever it points.
fn span(ptr: u64, len: u64) -> Result<(u32, u32), Failure> {
    if len == 0 {
        return Ok((0, 0));
    }
    match (u32::try_from(ptr), u32::try_from(len)) {
        (Ok(ptr), Ok(len)) => Ok((ptr, len)),
        _ => Err(Failure::MemoryFault { addr: ptr, len }),
    }
}

/// A 32-bit value sign-extended to 64 bits.
fn sext(value: u32) -> u64 {
    value as i32 as i64 as u64
}

/// The M extension at one width: `$u` the register type, `$s` its signed
/// twin, `$w`/`$uw` the double-width signed and unsigned types for the high
/// halves of products.
macro_rules! muldiv {
    ($(#[$doc:meta])* $name:ident, $u:ty, $s:ty, $w:ty, $uw:ty) => {
        $(#[$doc])*
        fn $name(funct3: u32, a: $u, b: $u) -> $u {
            let (sa, sb) = (a as $s, b as $s);
            let bits = <$u>::BITS;
            match funct3 {
                0 => a.wrapping_mul(b),
                1 => ((<$w>::from(sa) * <$w>::from(sb)) >> bits) as $u,
                2 => ((<$w>::from(sa) * <$w>::from(b)) >> bits) as $u,
                3 => ((<$uw>::from(a) * <$uw>::from(b)) >> bits) as $u,
                4 => match (sa, sb) {
                    (_, 0) => <$u>::MAX,
                    (<$s>::MIN, -1) => a,
                    _ => (sa / sb) as $u,
                },
                5 => a.checked_div(b).unwrap_or(<$u>::MAX),
                6 => match (sa, sb) {
                    (_, 0) => a,
                    (<$s>::MIN, -1) => 0,
                    _ => (sa % sb) as $u,
                },
                _ => a.checked_rem(b).unwrap_or(a),
            }
        }
    };
}

muldiv!(
    /// The M extension at 64 bits.
    muldiv64, u64, i64, i128, u128
);
muldiv!(
    /// The M extension at 32 bits.
    muldiv, u32, i32, i64, u64
);

#[cfg(test)]
mod tests;
