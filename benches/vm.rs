//! Guest speed and per-job overhead of the metered VM.
//!
//! Every workload runs twice in this one process: natively (the guest's own
//! pure-logic crate, compiled for the host) and in the VM (the same crate,
//! compiled for rv32im). The machine is shared and noisy, so what to quote is
//! the ratio of medians printed at the end ("vm / native"), not an absolute
//! time. Run with `make bench` (the guests must be built: `make guests`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{abi_u64, guest_elf};
use coprocessor_actors::job::JobLimits;
use coprocessor_actors::program::{ProgramImage, DEFAULT_MAX_PROGRAM_BYTES};
use coprocessor_actors::Vm;
use criterion::{black_box, Criterion};
use std::time::{Duration, Instant};

/// One workload: its guest, its input, and the native call it is compared with.
struct Workload {
    name: &'static str,
    guest: &'static str,
    onchain: Vec<u8>,
    offchain: Vec<u8>,
    native: fn(&[u8], &[u8]) -> Vec<u8>,
}

fn workloads() -> Vec<Workload> {
    let mib: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let orders = clob::generate_orders(7, 100_000);
    let empty_root = clob::state_root(&clob::EMPTY_STATE);
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
        Workload {
            name: "clob 100k orders",
            guest: "clob",
            onchain: clob::onchain_input(&empty_root, &orders),
            offchain: clob::EMPTY_STATE.to_vec(),
            native: |on, off| clob::run(on, off, coprocessor_hashes::keccak256).expect("clob"),
        },
        Workload {
            name: "fibonacci 10M",
            guest: "fibonacci",
            onchain: abi_u64(10_000_000),
            offchain: Vec::new(),
            native: |on, off| fibonacci::run(on, off).expect("fib"),
        },
        Workload {
            name: "xorshift+store+load 10M",
            guest: "xorshift",
            onchain: abi_u64(10_000_000),
            offchain: Vec::new(),
            native: |on, off| xorshift::run(on, off).expect("xorshift"),
        },
    ]
}

fn load_vm(guest: &str) -> Vm {
    let elf = guest_elf(guest);
    let image = ProgramImage::parse(&elf, DEFAULT_MAX_PROGRAM_BYTES).expect("valid guest");
    Vm::new(&image, 4 << 20).expect("vm")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Interleaves native and VM runs and prints the ratio of medians.
fn ratio_summary(workloads: &[Workload]) {
    println!("\n{:<26} {:>12} {:>12} {:>8} {:>10}", "workload", "native", "vm", "ratio", "vm MIPS");
    let mut log_sum = 0.0;
    for w in workloads {
        let mut vm = load_vm(w.guest);
        let limits = JobLimits { max_cycles: u64::MAX >> 2, ..JobLimits::default() };
        let (mut native, mut metered) = (Vec::new(), Vec::new());
        let mut cycles = 0;
        for _ in 0..9 {
            let start = Instant::now();
            let expected = black_box((w.native)(&w.onchain, &w.offchain));
            native.push(start.elapsed());
            let start = Instant::now();
            let outcome = vm.run(&w.onchain, &w.offchain, &limits).expect("run");
            metered.push(start.elapsed());
            assert_eq!(outcome.failure, None, "{}", w.name);
            assert_eq!(outcome.output, expected, "{}: VM and native disagree", w.name);
            cycles = outcome.cycles;
        }
        let (native, metered) = (median(native), median(metered));
        let ratio = metered.as_secs_f64() / native.as_secs_f64();
        log_sum += ratio.ln();
        let mips = cycles as f64 / metered.as_secs_f64() / 1e6;
        println!("{:<26} {:>12.2?} {:>12.2?} {:>7.2}x {:>10.0}", w.name, native, metered, ratio, mips);
    }
    println!("{:<26} {:>42.2}x", "geomean vm / native", (log_sum / workloads.len() as f64).exp());
}

fn guest_speed(c: &mut Criterion, workloads: &[Workload]) {
    for w in workloads {
        let mut group = c.benchmark_group(w.name);
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
        group.bench_function("native", |b| b.iter(|| (w.native)(black_box(&w.onchain), &w.offchain)));
        let mut vm = load_vm(w.guest);
        let limits = JobLimits { max_cycles: u64::MAX >> 2, ..JobLimits::default() };
        group.bench_function("vm", |b| b.iter(|| vm.run(black_box(&w.onchain), &w.offchain, &limits).expect("run")));
        group.finish();
    }
}

/// A tiny job on a warm instance, with full isolation, through the VM API.
fn per_job_overhead(c: &mut Criterion) {
    let mut vm = load_vm("fibonacci");
    let input = abi_u64(1);
    let limits = JobLimits::default();
    let cycles = vm.run(&input, &[], &limits).expect("run").cycles;
    println!("tiny job: fibonacci(1), {cycles} guest instructions");
    c.bench_function("per-job overhead (tiny job, warm VM)", |b| {
        b.iter(|| vm.run(black_box(&input), &[], &limits).expect("run"))
    });
    c.bench_function("cold start (new VM + tiny job)", |b| {
        b.iter(|| load_vm("fibonacci").run(black_box(&input), &[], &limits).expect("run"))
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let workloads = workloads();
    per_job_overhead(&mut c);
    guest_speed(&mut c, &workloads);
    c.final_summary();
    ratio_summary(&workloads);
}
