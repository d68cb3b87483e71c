//! `vm_diff`: the engine's VM against the reference interpreter.

use crate::elf_writer;
use crate::gen;
use crate::source::Source;
use coprocessor_actors::job::{Failure, JobLimits, JobOutcome};
use coprocessor_actors::program::{Isa, ProgramImage, SegmentPerms};
use coprocessor_actors::Vm;
use rv32im_reference::{self as reference, Limits, Perms, Program, Segment, Xlen};

/// The most cycles a generated job may use (keeps a run short).
const MAX_CYCLES: u64 = 30_000;

/// One job: inputs and limits.
#[derive(Debug, Clone)]
pub struct Job {
    /// The onchain input.
    pub onchain: Vec<u8>,
    /// The offchain input.
    pub offchain: Vec<u8>,
    /// Its limits.
    pub limits: Limits,
}

/// Generates a program, loads it into a VM, and runs one to three jobs on
/// that same warm VM and on the reference: they must agree on everything.
pub fn vm_diff(data: &[u8]) {
    let mut src = Source::new(data);
    let case = gen::case(&mut src);
    let elf = elf_writer::write(&case.program);
    // A layout the generator got wrong (overlapping segments) is no test.
    let Ok(image) = ProgramImage::parse(&elf, 1 << 24) else { return };
    assert_eq!(to_reference(&image), case.program, "the validator changed the program");
    let mut vm = Vm::new(&image, case.max_input_bytes).expect("a VM for a valid image");
    for _ in 0..1 + src.below(3) {
        let (onchain, offchain) = gen::inputs(&mut src, case.max_input_bytes);
        let probe_limits = Limits { max_cycles: MAX_CYCLES, max_memory_bytes: 256 << 20, max_output_bytes: 1 << 20 };
        let probe = reference::run(&case.program, case.max_input_bytes, &onchain, &offchain, &probe_limits)
            .expect("inputs fit their regions");
        let needed = (probe.failure != Some(reference::Failure::CycleLimitExceeded)).then_some(probe.cycles);
        let limits =
            gen::limits(&mut src, MAX_CYCLES, needed, image.image_bytes(), probe.peak_memory_bytes, probe.output.len());
        compare(&mut vm, &case.program, case.max_input_bytes, &Job { onchain, offchain, limits });
    }
}

/// The reference's view of a validated image.
pub(crate) fn to_reference(image: &ProgramImage) -> Program {
    let perms = |p: SegmentPerms| Perms { read: p.read, write: p.write, exec: p.exec };
    Program {
        xlen: match image.isa {
            Isa::Rv32im => Xlen::Rv32,
            Isa::Rv64im => Xlen::Rv64,
        },
        entry: image.entry,
        segments: image
            .segments
            .iter()
            .map(|s| Segment { vaddr: s.vaddr, mem_size: s.mem_size, data: s.data.clone(), perms: perms(s.perms) })
            .collect(),
    }
}

fn failure(failure: &Failure) -> Option<reference::Failure> {
    use reference::Failure as R;
    Some(match *failure {
        Failure::CycleLimitExceeded => R::CycleLimitExceeded,
        Failure::MemoryLimitExceeded => R::MemoryLimitExceeded,
        Failure::MemoryFault { addr, len } => R::MemoryFault { addr, len },
        Failure::IllegalInstruction { pc } => R::IllegalInstruction { pc },
        Failure::MisalignedFetch { pc } => R::MisalignedFetch { pc },
        Failure::UnsupportedSyscall(n) => R::UnsupportedSyscall(n),
        Failure::GuestExit(code) => R::GuestExit(code),
        Failure::OutputTooLarge => R::OutputTooLarge,
        // Recorded by the executor after host panics; never a VM outcome.
        Failure::Quarantined { .. } => return None,
    })
}

/// Runs `job` on `vm` and on the reference and panics, saying where, if
/// they differ in status, failure, exit code, output, log, cycles, peak
/// memory, or the pc and registers at the stop.
pub fn compare(vm: &mut Vm, program: &Program, max_input_bytes: usize, job: &Job) {
    let expected = reference::run(program, max_input_bytes, &job.onchain, &job.offchain, &job.limits)
        .expect("inputs fit their regions");
    let limits = JobLimits {
        max_cycles: job.limits.max_cycles,
        max_memory_bytes: job.limits.max_memory_bytes,
        max_output_bytes: job.limits.max_output_bytes,
    };
    let got: JobOutcome = vm.run(&job.onchain, &job.offchain, &limits).expect("the VM ran the job");
    let context = || {
        let segments: Vec<String> = program
            .segments
            .iter()
            .map(|s| format!("{:#x}+{:#x} {:?} ({} file bytes)", s.vaddr, s.mem_size, s.perms, s.data.len()))
            .collect();
        let head = |bytes: &[u8]| format!("{} bytes {:02x?}", bytes.len(), &bytes[..bytes.len().min(16)]);
        let word_at = |pc: u64| {
            program.segments.iter().find_map(|s| {
                let at = pc.checked_sub(u64::from(s.vaddr))? as usize;
                let bytes = s.data.get(at..at + 4)?;
                Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            })
        };
        let stop_pc = expected.stop.as_ref().map(|stop| stop.pc);
        format!(
            "{:?} entry {:#x}, segments {segments:?}, word at the reference's stop: {:x?}\ninputs: onchain {}, offchain {}; {:?}\nreference: {:x?} \
             cycles {} peak {} exit {:?} output {} log {} stop {:x?}\nvm: {:x?} cycles {} peak {} exit {:?} output {} log {}",
            program.xlen,
            program.entry,
            stop_pc.and_then(word_at),
            head(&job.onchain),
            head(&job.offchain),
            job.limits,
            expected.failure,
            expected.cycles,
            expected.peak_memory_bytes,
            expected.exit_code,
            head(&expected.output),
            head(&expected.log),
            expected.stop,
            got.failure,
            got.cycles,
            got.peak_memory_bytes,
            got.exit_code,
            head(&got.output),
            head(&got.log),
        )
    };
    assert_eq!(got.failure.as_ref().map(failure), expected.failure.clone().map(Some), "failure differs\n{}", context());
    assert_eq!(got.exit_code, expected.exit_code, "exit code differs\n{}", context());
    assert_eq!(got.cycles, expected.cycles, "cycles differ\n{}", context());
    assert_eq!(got.peak_memory_bytes, expected.peak_memory_bytes, "peak memory differs\n{}", context());
    assert_eq!(got.output, expected.output, "output differs\n{}", context());
    assert_eq!(got.log, expected.log, "log differs\n{}", context());
    if let Some(stop) = &expected.stop {
        let (pc, regs) = vm.stop_registers().expect("registers");
        assert_eq!(pc, stop.pc, "pc at the stop differs\n{}", context());
        for (i, (got, want)) in regs.iter().zip(stop.regs.iter()).enumerate() {
            assert_eq!(got, want, "x{i} at the stop differs\n{}", context());
        }
    }
}
