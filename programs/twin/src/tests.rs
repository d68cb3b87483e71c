//! The dispatch against the example crates, natively; and, when
//! `qemu-riscv32` / `qemu-riscv64` and the built twins
//! (`programs/build.sh --twins`) are there, the twins under QEMU against
//! the native outputs. Set `TWIN_REQUIRE_QEMU=1` to fail instead of
//! skipping when either is missing.

extern crate std;

use super::*;
use alloc::format;
use alloc::vec;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use std::{env, eprintln, fs, println};

/// One workload run: name, onchain input, offchain input.
type Case = (&'static str, Vec<u8>, Vec<u8>);

/// Deterministic bytes (the benchmark's pattern).
fn pattern(len: u32) -> Vec<u8> {
    (0..len).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

/// Small inputs for every workload, in both hashing modes, and a clob batch
/// on a non-empty book (so the offchain input matters).
fn small_cases() -> Vec<Case> {
    let data = pattern(10_000);
    let empty_root = clob::state_root(&clob::EMPTY_STATE);
    let mut orders = clob::OrderGenerator::new(3);
    let first = orders.next_batch(2_000);
    let (state, _) = clob::step(&clob::EMPTY_STATE, &clob::encode_orders(&first)).expect("first batch");
    let second = orders.next_batch(2_000);
    vec![
        ("sha256-rounds", sha256_rounds::encode_input(sha256_rounds::Mode::Plain, 3, &data), Vec::new()),
        ("sha256-rounds", sha256_rounds::encode_input(sha256_rounds::Mode::Precompile, 2, b"abc"), Vec::new()),
        ("keccak-rounds", keccak_rounds::encode_input(keccak_rounds::Mode::Plain, 3, &data), Vec::new()),
        ("keccak-rounds", keccak_rounds::encode_input(keccak_rounds::Mode::Precompile, 2, b"abc"), Vec::new()),
        ("clob", clob::onchain_input(&empty_root, &first), clob::EMPTY_STATE.to_vec()),
        ("clob", clob::onchain_input(&clob::state_root(&state), &second), state),
        ("fibonacci", coprocessor_abi::u64_word(100_000).to_vec(), Vec::new()),
        ("xorshift", coprocessor_abi::u64_word(100_000).to_vec(), Vec::new()),
        ("none", data.clone(), data),
    ]
}

/// The benchmark's inputs (`benches/vm.rs`, `workloads()`).
fn bench_cases() -> Vec<Case> {
    let mib = pattern(1 << 20);
    let orders = clob::generate_orders(7, 100_000);
    let empty_root = clob::state_root(&clob::EMPTY_STATE);
    vec![
        ("sha256-rounds", sha256_rounds::encode_input(sha256_rounds::Mode::Plain, 1, &mib), Vec::new()),
        ("keccak-rounds", keccak_rounds::encode_input(keccak_rounds::Mode::Plain, 1, &mib), Vec::new()),
        ("clob", clob::onchain_input(&empty_root, &orders), clob::EMPTY_STATE.to_vec()),
        ("fibonacci", coprocessor_abi::u64_word(10_000_000).to_vec(), Vec::new()),
        ("xorshift", coprocessor_abi::u64_word(10_000_000).to_vec(), Vec::new()),
        ("none", mib, Vec::new()),
    ]
}

/// What the guest would commit, computed straight from the example crates
/// (not through `run`), as the benchmark's native column does.
fn native(workload: &str, onchain: &[u8], offchain: &[u8]) -> Vec<u8> {
    match workload {
        "sha256-rounds" => sha256_rounds::run(onchain, offchain, coprocessor_hashes::sha256).expect("sha256"),
        "keccak-rounds" => keccak_rounds::run(onchain, offchain, coprocessor_hashes::keccak256).expect("keccak"),
        "clob" => clob::run(onchain, offchain, coprocessor_hashes::keccak256).expect("clob"),
        "fibonacci" => fibonacci::run(onchain, offchain).expect("fibonacci"),
        "xorshift" => xorshift::run(onchain, offchain).expect("xorshift"),
        "none" => Vec::new(),
        other => panic!("no native run for {other}"),
    }
}

#[test]
fn every_workload_runs_its_example_crate() {
    for (workload, onchain, offchain) in small_cases() {
        let expected = native(workload, &onchain, &offchain);
        assert_eq!(run(workload, &onchain, &offchain).as_deref(), Ok(&expected[..]), "{workload}");
        if workload != "none" {
            assert!(!expected.is_empty(), "{workload}");
        }
    }
    // Known values, so that the comparison is not only code against itself.
    assert_eq!(
        run("fibonacci", &coprocessor_abi::u64_word(90), &[]),
        Ok(coprocessor_abi::u64_word(2_880_067_194_370_816_120).to_vec())
    );
    assert_eq!(
        run("sha256-rounds", &sha256_rounds::encode_input(sha256_rounds::Mode::Plain, 1, b""), &[])
            .map(|d| d[..4].to_vec()),
        Ok(vec![0xe3, 0xb0, 0xc4, 0x42])
    );
}

#[test]
fn every_listed_workload_is_accepted() {
    for workload in WORKLOADS {
        assert!(!matches!(run(workload, &[], &[]), Err(Error::UnknownWorkload(_))), "{workload}");
    }
}

#[test]
fn an_unknown_workload_is_a_usage_error() {
    let error = run("square-root", &[], &[]).unwrap_err();
    assert_eq!(error, Error::UnknownWorkload("square-root".into()));
    assert_eq!(
        format!("{error}"),
        "unknown workload \"square-root\" (expected one of sha256-rounds, keccak-rounds, clob, fibonacci, xorshift, none)"
    );
}

#[test]
fn a_failing_workload_reports_as_its_guest_panics() {
    let error = run("fibonacci", &[], &[]).unwrap_err();
    assert_eq!(format!("{error}"), "fibonacci: abi: input must be 32 bytes, got 0");
    let onchain = clob::onchain_input(&[7; 32], &clob::generate_orders(1, 3));
    let error = run("clob", &onchain, &clob::EMPTY_STATE).unwrap_err();
    assert_eq!(error, Error::Job { workload: "clob", message: format!("{}", clob::Error::StateRootMismatch) });
}

/// The built twin for `isa` ("rv32" or "rv64") and its QEMU, or why not.
fn twin_and_qemu(isa: &str) -> Result<(PathBuf, PathBuf), String> {
    let twin = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/twins/{isa}/twin"));
    if !twin.is_file() {
        return Err(format!("{} is missing (programs/build.sh --twins)", twin.display()));
    }
    let qemu = format!("qemu-riscv{}", &isa[2..]);
    let path = env::var_os("PATH").unwrap_or_default();
    let found = env::split_paths(&path).map(|dir| dir.join(&qemu)).find(|p| p.is_file());
    found.map(|q| (twin, q)).ok_or_else(|| format!("{qemu} is not on PATH (apt-get install qemu-user)"))
}

/// Runs `f` with each ISA's twin and QEMU; skips (or, with
/// `TWIN_REQUIRE_QEMU=1`, fails) where one is missing.
fn with_each_twin(mut f: impl FnMut(&str, &Path, &Path)) {
    for isa in ["rv32", "rv64"] {
        match twin_and_qemu(isa) {
            Ok((twin, qemu)) => f(isa, &twin, &qemu),
            Err(why) if env::var_os("TWIN_REQUIRE_QEMU").is_some_and(|v| v == "1") => panic!("{why}"),
            Err(why) => eprintln!("skipping the {isa} twin: {why}"),
        }
    }
}

/// A scratch directory for one test's input files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = env::temp_dir().join(format!("twin-test-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).expect("write input");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn run_twin(qemu: &Path, twin: &Path, args: &[&std::ffi::OsStr]) -> (Output, Duration) {
    let start = Instant::now();
    let output = Command::new(qemu).arg(twin).args(args).output().expect("run qemu");
    (output, start.elapsed())
}

/// Runs every case under each twin; requires exit 0, no stderr and the
/// native output. Returns (isa, workload, native time, twin time) rows.
/// Each case runs `runs` times; the times are medians.
fn check_cases(cases: &[Case], scratch: &Scratch, runs: usize) -> Vec<(String, &'static str, Duration, Duration)> {
    let mut rows = Vec::new();
    with_each_twin(|isa, twin, qemu| {
        for (i, (workload, onchain, offchain)) in cases.iter().enumerate() {
            let on = scratch.file(&format!("{i}.on"), onchain);
            let off = scratch.file(&format!("{i}.off"), offchain);
            let (mut native_times, mut twin_times) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let start = Instant::now();
                let expected = native(workload, onchain, offchain);
                native_times.push(start.elapsed());
                let (out, twin_time) = run_twin(qemu, twin, &[workload.as_ref(), on.as_os_str(), off.as_os_str()]);
                twin_times.push(twin_time);
                let stderr = std::string::String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(0), "{isa} {workload}: {stderr}");
                assert!(out.stderr.is_empty(), "{isa} {workload}: {stderr}");
                assert_eq!(out.stdout, expected, "{isa} {workload}: the twin and native disagree");
            }
            let (native_time, twin_time) = (median(native_times), median(twin_times));
            rows.push((isa.into(), *workload, native_time, twin_time));
        }
    });
    rows
}

#[test]
fn twins_under_qemu_give_the_native_outputs() {
    let scratch = Scratch::new("small");
    check_cases(&small_cases(), &scratch, 1);
}

#[test]
fn twins_under_qemu_report_errors_with_their_exit_codes() {
    let scratch = Scratch::new("errors");
    let empty = scratch.file("empty", &[]);
    let missing = scratch.0.join("missing");
    with_each_twin(|isa, twin, qemu| {
        let expect = |args: &[&std::ffi::OsStr], code: i32, stderr: &str| {
            let (out, _) = run_twin(qemu, twin, args);
            assert_eq!(out.status.code(), Some(code), "{isa} {args:?}");
            assert_eq!(std::string::String::from_utf8_lossy(&out.stderr), stderr, "{isa} {args:?}");
            assert!(out.stdout.is_empty(), "{isa} {args:?}");
        };
        let workloads = WORKLOADS.join(", ");
        expect(
            &["bogus".as_ref(), empty.as_os_str(), empty.as_os_str()],
            2,
            &format!("twin: unknown workload \"bogus\" (expected one of {workloads})\n"),
        );
        expect(
            &["none".as_ref(), empty.as_os_str(), missing.as_os_str()],
            2,
            &format!("twin: cannot read {}: No such file or directory (errno 2)\n", missing.display()),
        );
        expect(
            &["none".as_ref(), scratch.0.as_os_str(), empty.as_os_str()],
            2,
            &format!("twin: cannot read {}: Is a directory (errno 21)\n", scratch.0.display()),
        );
        expect(
            &["none".as_ref()],
            2,
            &format!("usage: twin <workload> <onchain-file> <offchain-file>; workloads: {workloads}\n"),
        );
        expect(
            &["fibonacci".as_ref(), empty.as_os_str(), empty.as_os_str()],
            101,
            "twin: fibonacci: abi: input must be 32 bytes, got 0\n",
        );
    });
}

/// The benchmark's inputs under QEMU, with rough wall times (medians of 7,
/// QEMU start-up included: see `none`; never asserted). Slow-ish: `cargo test
/// --manifest-path programs/Cargo.toml -p twin --release -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn twins_under_qemu_with_the_bench_inputs() {
    let scratch = Scratch::new("bench");
    let rows = check_cases(&bench_cases(), &scratch, 7);
    println!("{:<6} {:<14} {:>12} {:>12} {:>8}", "isa", "workload", "native", "qemu", "ratio");
    for (isa, workload, native, twin) in rows {
        let ratio = twin.as_secs_f64() / native.as_secs_f64().max(1e-9);
        println!("{isa:<6} {workload:<14} {native:>12.2?} {twin:>12.2?} {ratio:>7.1}x");
    }
}

/// Writes the benchmark's inputs as `<workload>.on` / `<workload>.off`, and
/// the small cases as `small<i>-<workload>.on` / `.off`, into
/// `$TWIN_INPUTS_DIR`, for timing the twins (or `coprocessor exec`) by
/// hand: `TWIN_INPUTS_DIR=/tmp/in cargo test --manifest-path
/// programs/Cargo.toml -p twin -- --ignored write_bench_inputs`.
#[test]
#[ignore]
fn write_bench_inputs() {
    let dir = PathBuf::from(env::var_os("TWIN_INPUTS_DIR").expect("set TWIN_INPUTS_DIR"));
    fs::create_dir_all(&dir).expect("inputs dir");
    for (workload, onchain, offchain) in bench_cases() {
        fs::write(dir.join(format!("{workload}.on")), onchain).expect("write");
        fs::write(dir.join(format!("{workload}.off")), offchain).expect("write");
    }
    for (i, (workload, onchain, offchain)) in small_cases().into_iter().enumerate() {
        fs::write(dir.join(format!("small{i}-{workload}.on")), onchain).expect("write");
        fs::write(dir.join(format!("small{i}-{workload}.off")), offchain).expect("write");
    }
}
