//! Guest speed and per-job overhead of the metered VM, rv32im and rv64im,
//! against native code and against QEMU user-mode.
//!
//! Run with `make bench` (it builds the guests and the twins, and installs
//! `qemu-user` if `qemu-riscv32` is missing), or `cargo bench --bench vm`.
//! `VM_BENCH_TABLE_ONLY=1` prints only the table (no criterion);
//! `VM_BENCH_ROUNDS=N` changes the number of rounds (default 15);
//! `VM_BENCH_PROFILE=...` runs one workload one way, for `perf` (see
//! [`profile`]).
//!
//! # The table (printed at the end)
//!
//! Five workloads, each the same Rust guest logic built several ways:
//! sha256 and keccak over 1 MiB in plain guest code, the clob with 100k
//! orders on an empty book, fibonacci(10M) and xorshift+store+load (10M
//! iterations). In each round every workload is measured once each way,
//! in a rotating order so that no column always follows the same one:
//!
//! - `native`: the example crate's `run`, compiled for the host, in process;
//! - `vm warm` (rv32 and rv64): `Vm::run` on a VM built once per workload and
//!   ISA; it includes the reset after the job, so it is what a job costs the
//!   engine's executor, which keeps one warm VM per program;
//! - `vm fresh`: `Vm::new` + `Vm::run`, as `coprocessor exec` does;
//! - `qemu` (rv32 and rv64): the twin (`programs/twin`, the same logic as a
//!   Linux user-mode program) under `qemu-riscv32`/`qemu-riscv64`, unmetered:
//!   the wall time of the process minus the median of the twin's `none`
//!   workload on the same input files (QEMU start-up and input reading;
//!   printed raw in the `qemu none` column), measured in the same rounds.
//!
//! Times are medians over the rounds, in milliseconds. The ratios are ratios
//! of medians: `vm/nat` (warm VM / native), `fresh/nat`, `qemu/nat`, `vm/qemu`
//! and `fresh/warm` (above 1: the warm VM is the faster). `instructions` is
//! the VM's exact `cycles` (instructions retired plus syscall costs; the
//! same in every run, which is checked), `MIPS` those per second of the
//! warm VM and of QEMU. Below the table: the geomeans of each ratio per ISA,
//! rv64 ÷ rv32 instructions per workload, and the clob's cost per order at
//! several batch sizes (`coprocessor exec` takes at most 1 MiB of input, so
//! its clob runs are smaller than the table's).
//!
//! Two differences in the work done: the VMs take inputs up to 4 MiB (the
//! clob's 100k orders are 1.3 MiB), `exec` up to 1 MiB; and the clob guest
//! hashes its state root with the Keccak precompile where the twin runs
//! portable Keccak code (about 37 KB of state at 100k orders: some 3% of the
//! twin's clob time under QEMU).
//!
//! Every VM output and every twin's stdout must equal the native output
//! (and the twin must exit 0 with nothing on stderr): a mismatch aborts the
//! bench. Where `qemu-riscv32`/`qemu-riscv64` is not on `PATH` or a twin is
//! not built (`make twins`), the QEMU columns show `-` and a note says why.
//!
//! The machine is shared and noisy: quote ratios, not absolute times; speed
//! is never asserted.
//!
//! # Criterion (before the table)
//!
//! Per-job overhead of a tiny job (fibonacci(1)) on a warm VM, and a cold
//! start (`Vm::new` + the tiny job, the ELF already parsed), for each ISA.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{abi_u64, guest_elf};
use coprocessor_actors::job::JobLimits;
use coprocessor_actors::program::{Isa, ProgramImage, DEFAULT_MAX_PROGRAM_BYTES};
use coprocessor_actors::{Vm, DEFAULT_MAX_INPUT_BYTES};
use criterion::{black_box, Criterion};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Input capacity of the bench's VMs: the clob's 100k orders do not fit the
/// engine's 1 MiB default.
const BENCH_MAX_INPUT_BYTES: usize = 4 << 20;

/// One workload: its guest (also the twin's workload name), its input, and
/// the native call it is compared with.
struct Workload {
    name: &'static str,
    guest: &'static str,
    onchain: Vec<u8>,
    offchain: Vec<u8>,
    native: fn(&[u8], &[u8]) -> Vec<u8>,
}

fn clob_native(on: &[u8], off: &[u8]) -> Vec<u8> {
    clob::run(on, off, coprocessor_hashes::keccak256).expect("clob")
}

fn clob_workload(orders: usize) -> Workload {
    let empty_root = clob::state_root(&clob::EMPTY_STATE);
    Workload {
        name: "clob",
        guest: "clob",
        onchain: clob::onchain_input(&empty_root, &clob::generate_orders(7, orders)),
        offchain: clob::EMPTY_STATE.to_vec(),
        native: clob_native,
    }
}

fn workloads() -> Vec<Workload> {
    let mib: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    vec![
        Workload {
            name: "sha256 1 MiB",
            guest: "sha256-rounds",
            onchain: sha256_rounds::encode_input(sha256_rounds::Mode::Plain, 1, &mib),
            offchain: Vec::new(),
            native: |on, off| sha256_rounds::run(on, off, coprocessor_hashes::sha256).expect("sha256").to_vec(),
        },
        Workload {
            name: "keccak 1 MiB",
            guest: "keccak-rounds",
            onchain: keccak_rounds::encode_input(keccak_rounds::Mode::Plain, 1, &mib),
            offchain: Vec::new(),
            native: |on, off| keccak_rounds::run(on, off, coprocessor_hashes::keccak256).expect("keccak").to_vec(),
        },
        Workload { name: "clob 100k orders", ..clob_workload(100_000) },
        Workload {
            name: "fibonacci 10M",
            guest: "fibonacci",
            onchain: abi_u64(10_000_000),
            offchain: Vec::new(),
            native: |on, off| fibonacci::run(on, off).expect("fib"),
        },
        Workload {
            name: "xorshift 10M",
            guest: "xorshift",
            onchain: abi_u64(10_000_000),
            offchain: Vec::new(),
            native: |on, off| xorshift::run(on, off).expect("xorshift"),
        },
    ]
}

/// The two ISAs, in table order.
const ISAS: [Isa; 2] = [Isa::Rv32im, Isa::Rv64im];

fn isa_label(isa: Isa) -> &'static str {
    match isa {
        Isa::Rv32im => "rv32",
        Isa::Rv64im => "rv64",
    }
}

/// The parsed ELF of `guest` built for `isa` (`programs/elf/` or `programs/elf/rv64/`).
fn image(guest: &str, isa: Isa) -> ProgramImage {
    let name = match isa {
        Isa::Rv32im => guest.to_string(),
        Isa::Rv64im => format!("rv64/{guest}"),
    };
    let image = ProgramImage::parse(&guest_elf(&name), DEFAULT_MAX_PROGRAM_BYTES)
        .unwrap_or_else(|err| panic!("programs/elf/{name}.elf: {err}"));
    assert_eq!(image.isa, isa, "programs/elf/{name}.elf is not {isa}");
    image
}

fn new_vm(image: &ProgramImage, max_input_bytes: usize) -> Vm {
    Vm::new(image, max_input_bytes).unwrap_or_else(|err| panic!("Vm::new: {err}"))
}

/// Limits that never stop the bench's workloads.
fn unbounded() -> JobLimits {
    JobLimits { max_cycles: u64::MAX >> 2, ..JobLimits::default() }
}

/// Runs one job; aborts the bench unless it is done with `expected` as output.
/// Returns the time of `Vm::run`, the cycles and the peak guest memory.
fn run_checked(vm: &mut Vm, w: &Workload, expected: &[u8], what: &str) -> (Duration, u64, u64) {
    let start = Instant::now();
    let outcome = vm.run(&w.onchain, &w.offchain, &unbounded());
    let elapsed = start.elapsed();
    let outcome = outcome.unwrap_or_else(|err| panic!("{} {what}: Vm::run: {err}", w.name));
    if let Some(failure) = &outcome.failure {
        panic!("{} {what}: the job failed: {failure}; log: {}", w.name, String::from_utf8_lossy(&outcome.log));
    }
    if outcome.output != expected {
        panic!(
            "{} {what}: the VM's output differs from native:\n  vm:     {}\n  native: {}",
            w.name,
            hex::encode(&outcome.output),
            hex::encode(expected)
        );
    }
    (elapsed, outcome.cycles, outcome.peak_memory_bytes)
}

fn median(samples: &[Duration]) -> Duration {
    let mut samples = samples.to_vec();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// A twin and its QEMU, found, or why not.
struct Twin {
    qemu: PathBuf,
    twin: PathBuf,
}

fn find_twin(isa: Isa) -> Result<Twin, String> {
    let label = isa_label(isa);
    let twin = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("programs/target/twins/{label}/twin"));
    if !twin.is_file() {
        return Err(format!("{} is not built (make twins)", twin.display()));
    }
    let qemu = format!("qemu-riscv{}", &label[2..]);
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(&qemu))
        .find(|p| p.is_file())
        .map(|qemu| Twin { qemu, twin })
        .ok_or_else(|| format!("{qemu} is not on PATH (apt-get install qemu-user, or make bench)"))
}

impl Twin {
    /// Runs `twin WORKLOAD ON OFF` under QEMU; aborts the bench unless it
    /// exits 0 with `expected` on stdout and nothing on stderr. Returns the
    /// wall time of the process.
    fn run(&self, workload: &str, files: &InputFiles, expected: &[u8], what: &str) -> Duration {
        let start = Instant::now();
        let out = Command::new(&self.qemu)
            .arg(&self.twin)
            .arg(workload)
            .arg(&files.onchain)
            .arg(&files.offchain)
            .output()
            .unwrap_or_else(|err| panic!("{what}: cannot run {}: {err}", self.qemu.display()));
        let elapsed = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !out.stderr.is_empty() {
            panic!("{what}: {} {workload} exited with {}: {stderr}", self.twin.display(), out.status);
        }
        if out.stdout != expected {
            panic!(
                "{what}: the twin's stdout differs from native:\n  twin:   {}\n  native: {}",
                hex::encode(&out.stdout),
                hex::encode(expected)
            );
        }
        elapsed
    }
}

/// A scratch directory for the twins' input files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("vm-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One workload's inputs, as files for the twin.
struct InputFiles {
    onchain: PathBuf,
    offchain: PathBuf,
}

/// One measurement of a round.
#[derive(Clone, Copy)]
enum Measure {
    Native,
    Warm(usize),
    Fresh(usize),
    Qemu(usize),
    QemuNone(usize),
}

/// Samples of one ISA of one workload.
#[derive(Default)]
struct IsaSamples {
    warm: Vec<Duration>,
    fresh: Vec<Duration>,
    qemu: Vec<Duration>,
    qemu_none: Vec<Duration>,
    cycles: Option<u64>,
}

/// Everything about one workload during the rounds.
struct Subject<'a> {
    w: &'a Workload,
    expected: Vec<u8>,
    files: InputFiles,
    images: Vec<ProgramImage>,
    warm: Vec<Vm>,
    native: Vec<Duration>,
    isas: Vec<IsaSamples>,
}

impl Subject<'_> {
    fn record_cycles(&mut self, i: usize, cycles: u64, what: &str) {
        match self.isas[i].cycles {
            None => self.isas[i].cycles = Some(cycles),
            Some(c) if c == cycles => {}
            Some(c) => panic!("{} {what}: {cycles} cycles, {c} in an earlier run: the VM is not exact", self.w.name),
        }
    }

    fn measure(&mut self, m: Measure, twins: &[Option<Twin>]) {
        let w = self.w;
        match m {
            Measure::Native => {
                let start = Instant::now();
                let output = black_box((w.native)(black_box(&w.onchain), &w.offchain));
                self.native.push(start.elapsed());
                assert_eq!(output, self.expected, "{}: native output changed between runs", w.name);
            }
            Measure::Warm(i) => {
                let what = format!("{} warm VM", isa_label(ISAS[i]));
                let (time, cycles, _) = run_checked(&mut self.warm[i], w, &self.expected, &what);
                self.isas[i].warm.push(time);
                self.record_cycles(i, cycles, &what);
            }
            Measure::Fresh(i) => {
                let what = format!("{} fresh VM", isa_label(ISAS[i]));
                let start = Instant::now();
                let mut vm = new_vm(&self.images[i], BENCH_MAX_INPUT_BYTES);
                let built = start.elapsed();
                let (time, cycles, _) = run_checked(&mut vm, w, &self.expected, &what);
                self.isas[i].fresh.push(built + time);
                self.record_cycles(i, cycles, &what);
            }
            Measure::Qemu(i) | Measure::QemuNone(i) => {
                let Some(twin) = &twins[i] else { return };
                let label = isa_label(ISAS[i]);
                if let Measure::Qemu(_) = m {
                    let what = format!("{} {label} twin", w.name);
                    let time = twin.run(w.guest, &self.files, &self.expected, &what);
                    self.isas[i].qemu.push(time);
                } else {
                    let what = format!("{} {label} twin (none)", w.name);
                    let time = twin.run("none", &self.files, &[], &what);
                    self.isas[i].qemu_none.push(time);
                }
            }
        }
    }
}

fn rounds() -> usize {
    match std::env::var("VM_BENCH_ROUNDS") {
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => panic!("VM_BENCH_ROUNDS must be a positive integer, got {v:?}"),
        },
        Err(_) => 15,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn geomean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

fn opt(value: Option<f64>, f: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "-".to_string(), f)
}

fn times(x: f64) -> String {
    format!("{x:.2}x")
}

/// The interleaved rounds and the summary table.
fn table(workloads: &[Workload], rounds: usize) {
    let twins: Vec<Option<Twin>> = ISAS
        .iter()
        .map(|&isa| {
            find_twin(isa).map_err(|why| println!("note: the QEMU {} columns show \"-\": {why}", isa_label(isa))).ok()
        })
        .collect();
    let scratch = Scratch::new();
    let mut subjects: Vec<Subject> = workloads
        .iter()
        .enumerate()
        .map(|(n, w)| {
            let images: Vec<ProgramImage> = ISAS.iter().map(|&isa| image(w.guest, isa)).collect();
            Subject {
                w,
                expected: (w.native)(&w.onchain, &w.offchain),
                files: InputFiles {
                    onchain: scratch.write(&format!("{n}.on"), &w.onchain),
                    offchain: scratch.write(&format!("{n}.off"), &w.offchain),
                },
                warm: images.iter().map(|image| new_vm(image, BENCH_MAX_INPUT_BYTES)).collect(),
                images,
                native: Vec::new(),
                isas: ISAS.iter().map(|_| IsaSamples::default()).collect(),
            }
        })
        .collect();
    // One untimed run each way first: page faults, translation, the twin's
    // binary in the page cache.
    let mut order = vec![Measure::Native];
    for i in 0..ISAS.len() {
        order.extend([Measure::Warm(i), Measure::Fresh(i), Measure::Qemu(i), Measure::QemuNone(i)]);
    }
    for s in &mut subjects {
        for &m in &order {
            s.measure(m, &twins);
        }
        s.native.clear();
        for isa in &mut s.isas {
            *isa = IsaSamples { cycles: isa.cycles, ..IsaSamples::default() };
        }
    }
    println!("running {rounds} interleaved rounds ({} measurements each)", subjects.len() * order.len());
    for round in 0..rounds {
        for s in &mut subjects {
            for k in 0..order.len() {
                s.measure(order[(round + k) % order.len()], &twins);
            }
        }
    }
    print_table(&subjects, rounds);
}

/// The medians and ratios of one workload and ISA.
struct Row {
    native: Duration,
    warm: Duration,
    fresh: Duration,
    qemu: Option<Duration>,
    qemu_none: Option<Duration>,
    cycles: u64,
}

impl Row {
    fn of(s: &Subject, i: usize) -> Row {
        let isa = &s.isas[i];
        let (qemu, qemu_none) = if isa.qemu.is_empty() {
            (None, None)
        } else {
            let none = median(&isa.qemu_none);
            (Some(median(&isa.qemu).saturating_sub(none)), Some(none))
        };
        Row {
            native: median(&s.native),
            warm: median(&isa.warm),
            fresh: median(&isa.fresh),
            qemu,
            qemu_none,
            cycles: isa.cycles.expect("measured"),
        }
    }

    fn vm_native(&self) -> f64 {
        ratio(self.warm, self.native)
    }

    fn fresh_native(&self) -> f64 {
        ratio(self.fresh, self.native)
    }

    fn qemu_native(&self) -> Option<f64> {
        self.qemu.map(|q| ratio(q, self.native))
    }

    fn vm_qemu(&self) -> Option<f64> {
        self.qemu.map(|q| ratio(self.warm, q))
    }

    fn fresh_warm(&self) -> f64 {
        ratio(self.fresh, self.warm)
    }
}

fn print_table(subjects: &[Subject], rounds: usize) {
    println!("\nVM benchmark: medians of {rounds} interleaved rounds; times in ms");
    println!(
        "{:<17} {:<4} {:>9} {:>9} {:>9} {:>9} {:>9} | {:>7} {:>9} {:>8} {:>7} {:>10} | {:>13} {:>7} {:>9}",
        "workload",
        "isa",
        "native",
        "vm warm",
        "vm fresh",
        "qemu",
        "qemu none",
        "vm/nat",
        "fresh/nat",
        "qemu/nat",
        "vm/qemu",
        "fresh/warm",
        "instructions",
        "vm MIPS",
        "qemu MIPS",
    );
    for s in subjects {
        for (i, &isa) in ISAS.iter().enumerate() {
            let r = Row::of(s, i);
            let mips = |d: Duration| r.cycles as f64 / d.as_secs_f64().max(1e-9) / 1e6;
            println!(
                "{:<17} {:<4} {:>9} {:>9} {:>9} {:>9} {:>9} | {:>7} {:>9} {:>8} {:>7} {:>10} | {:>13} {:>7.0} {:>9}",
                if i == 0 { s.w.name } else { "" },
                isa_label(isa),
                ms(r.native),
                ms(r.warm),
                ms(r.fresh),
                r.qemu.map_or_else(|| "-".into(), ms),
                r.qemu_none.map_or_else(|| "-".into(), ms),
                times(r.vm_native()),
                times(r.fresh_native()),
                opt(r.qemu_native(), times),
                opt(r.vm_qemu(), times),
                format!("{:.3}", r.fresh_warm()),
                r.cycles,
                mips(r.warm),
                opt(r.qemu.map(mips), |m| format!("{m:.0}")),
            );
        }
    }
    println!();
    for (i, &isa) in ISAS.iter().enumerate() {
        let rows: Vec<Row> = subjects.iter().map(|s| Row::of(s, i)).collect();
        let all = |f: fn(&Row) -> f64| geomean(&rows.iter().map(f).collect::<Vec<_>>());
        let some = |f: fn(&Row) -> Option<f64>| rows.iter().map(f).collect::<Option<Vec<f64>>>();
        println!(
            "geomean {:<4}  vm/native {:>7}  fresh/native {:>7}  qemu/native {:>7}  vm/qemu {:>7}  fresh/warm {:>6}",
            isa_label(isa),
            opt(all(Row::vm_native), times),
            opt(all(Row::fresh_native), times),
            opt(some(Row::qemu_native).and_then(|v| geomean(&v)), times),
            opt(some(Row::vm_qemu).and_then(|v| geomean(&v)), times),
            opt(all(Row::fresh_warm), |x| format!("{x:.3}")),
        );
    }
    println!("\nrv64 ÷ rv32 instructions");
    let mut per = Vec::new();
    for s in subjects {
        let (rv32, rv64) = (s.isas[0].cycles.expect("measured"), s.isas[1].cycles.expect("measured"));
        let r = rv64 as f64 / rv32 as f64;
        per.push(r);
        println!("  {:<17} {:>6.2}  ({rv64} / {rv32})", s.w.name, r);
    }
    println!("  {:<17} {:>6}", "geomean", opt(geomean(&per), |x| format!("{x:.2}")));
}

/// The clob's cost per order at several batch sizes, rv32: natively, on a
/// warm VM, and as `coprocessor exec` runs it (a fresh VM with the 1 MiB
/// input limit, where the batch fits).
fn clob_per_order(rounds: usize) {
    struct Size {
        orders: usize,
        w: Workload,
        expected: Vec<u8>,
        /// `coprocessor exec`'s input limit where the batch fits it.
        limit: usize,
        native: Vec<Duration>,
        warm: Vec<Duration>,
        fresh: Vec<Duration>,
        cycles: u64,
        peak: u64,
    }
    let image = image("clob", Isa::Rv32im);
    let mut warm = new_vm(&image, BENCH_MAX_INPUT_BYTES);
    let mut sizes: Vec<Size> = [10_000, 20_000, 40_000, 60_000, 79_000, 100_000]
        .into_iter()
        .map(|orders| {
            let w = clob_workload(orders);
            let fits = w.onchain.len() <= DEFAULT_MAX_INPUT_BYTES;
            Size {
                orders,
                expected: (w.native)(&w.onchain, &w.offchain),
                limit: if fits { DEFAULT_MAX_INPUT_BYTES } else { BENCH_MAX_INPUT_BYTES },
                w,
                native: Vec::new(),
                warm: Vec::new(),
                fresh: Vec::new(),
                cycles: 0,
                peak: 0,
            }
        })
        .collect();
    // Round 0 is a warm-up; the sizes are interleaved like the table's workloads.
    for round in 0..=rounds {
        for s in &mut sizes {
            let start = Instant::now();
            black_box((s.w.native)(black_box(&s.w.onchain), &s.w.offchain));
            let native = start.elapsed();
            let (time, cycles, peak) = run_checked(&mut warm, &s.w, &s.expected, "warm VM");
            (s.cycles, s.peak) = (cycles, peak);
            let start = Instant::now();
            let mut vm = new_vm(&image, s.limit);
            let built = start.elapsed();
            let (fresh, ..) = run_checked(&mut vm, &s.w, &s.expected, "fresh VM");
            if round > 0 {
                s.native.push(native);
                s.warm.push(time);
                s.fresh.push(built + fresh);
            }
        }
    }
    println!("\nclob cost per order, rv32 (medians of {rounds} interleaved rounds; ns per order)");
    println!(
        "{:>8} {:>9} {:>9} {:>9} {:>10} {:>8} {:>9} {:>11} {:>9}",
        "orders", "input KiB", "native", "vm warm", "vm fresh", "vm/nat", "fresh/nat", "instr/order", "peak MiB"
    );
    for s in &sizes {
        let per = |v: &[Duration]| median(v).as_secs_f64() * 1e9 / s.orders as f64;
        let (n, v, f) = (per(&s.native), per(&s.warm), per(&s.fresh));
        println!(
            "{:>8} {:>9} {n:>9.1} {v:>9.1} {f:>10.1} {:>7.2}x {:>8.2}x {:>11.0} {:>9.1}",
            s.orders,
            s.w.onchain.len() / 1024,
            v / n,
            f / n,
            s.cycles as f64 / s.orders as f64,
            s.peak as f64 / f64::from(1 << 20)
        );
    }
}

/// A tiny job on a warm instance, with full isolation, through the VM API;
/// and a cold start: a new VM for an already parsed ELF, and the tiny job.
fn per_job_overhead(c: &mut Criterion) {
    let input = abi_u64(1);
    let limits = JobLimits::default();
    for isa in ISAS {
        let label = isa_label(isa);
        let image = image("fibonacci", isa);
        let mut vm = new_vm(&image, DEFAULT_MAX_INPUT_BYTES);
        let cycles = vm.run(&input, &[], &limits).expect("run").cycles;
        println!("tiny job {label}: fibonacci(1), {cycles} guest instructions");
        c.bench_function(&format!("per-job overhead {label} (tiny job, warm VM)"), |b| {
            b.iter(|| vm.run(black_box(&input), &[], &limits).expect("run"))
        });
        c.bench_function(&format!("cold start {label} (Vm::new + tiny job)"), |b| {
            b.iter(|| new_vm(&image, DEFAULT_MAX_INPUT_BYTES).run(black_box(&input), &[], &limits).expect("run"))
        });
    }
}

/// `VM_BENCH_PROFILE=GUEST[@ARG]:ISA:MODE[:RUNS]` (e.g. `clob@79000:rv32:warm:50`,
/// `fibonacci:rv64:fresh`, `fibonacci@1:rv32:warm:1000000`): runs only that,
/// `RUNS` times (default 30), and prints each run's time (up to 100 runs)
/// and the median; for `perf record` on the bench binary. `MODE` is `warm`
/// (one VM, `Vm::run` each time), `fresh` (`Vm::new` + `Vm::run`) or
/// `native`; `@ARG` sets the clob's orders or fibonacci's / xorshift's n.
fn profile(spec: &str) {
    let usage = |what: &str| -> ! {
        panic!(
            "VM_BENCH_PROFILE={spec:?}: bad {what}; expected GUEST[@ARG]:ISA:MODE[:RUNS], e.g. clob@79000:rv32:warm:50"
        )
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (guest, isa, mode, runs) = match parts[..] {
        [g, i, m] => (g, i, m, 30),
        [g, i, m, r] => (g, i, m, r.parse().unwrap_or_else(|_| usage("RUNS"))),
        _ => usage("number of fields"),
    };
    let isa = match isa {
        "rv32" => Isa::Rv32im,
        "rv64" => Isa::Rv64im,
        _ => usage("ISA"),
    };
    let w = match guest.split_once('@') {
        Some((guest, arg)) => {
            let arg: u64 = arg.parse().unwrap_or_else(|_| usage("@ARG"));
            match workloads().into_iter().find(|w| w.guest == guest) {
                Some(w) if guest == "clob" => {
                    Workload { name: w.name, ..clob_workload(usize::try_from(arg).unwrap_or_else(|_| usage("@ARG"))) }
                }
                Some(w) if matches!(guest, "fibonacci" | "xorshift") => Workload { onchain: abi_u64(arg), ..w },
                _ => usage("GUEST (@ARG: clob, fibonacci and xorshift only)"),
            }
        }
        None => workloads().into_iter().find(|w| w.guest == guest).unwrap_or_else(|| usage("GUEST")),
    };
    let expected = (w.native)(&w.onchain, &w.offchain);
    let image = image(w.guest, isa);
    let mut warm = new_vm(&image, BENCH_MAX_INPUT_BYTES);
    let mut times = Vec::new();
    for run in 0..runs {
        let start = Instant::now();
        match mode {
            "native" => assert_eq!(black_box((w.native)(black_box(&w.onchain), &w.offchain)), expected),
            "warm" => drop(run_checked(&mut warm, &w, &expected, "warm VM")),
            "fresh" => drop(run_checked(&mut new_vm(&image, BENCH_MAX_INPUT_BYTES), &w, &expected, "fresh VM")),
            _ => usage("MODE"),
        }
        let time = start.elapsed();
        if runs <= 100 {
            println!("{} {} {mode} run {run}: {time:.2?}", w.guest, isa_label(isa));
        }
        times.push(time);
    }
    println!("median: {:.2?} ({runs} runs)", median(&times));
}

fn main() {
    if let Ok(spec) = std::env::var("VM_BENCH_PROFILE") {
        return profile(&spec);
    }
    let table_only = std::env::var_os("VM_BENCH_TABLE_ONLY").is_some_and(|v| v == "1");
    let rounds = rounds();
    if !table_only {
        let mut c = Criterion::default().configure_from_args();
        per_job_overhead(&mut c);
        c.final_summary();
    }
    table(&workloads(), rounds);
    clob_per_order(rounds);
}
