//! `coprocessor exec`: run one program locally and print the outcome.
//!
//! Exit status: 0 when the job is done, 1 when it failed (the outcome still
//! prints), 2 when the program or the arguments are rejected.

use coprocessor::input::{parse_bytes, to_hex};
use coprocessor_actors::job::{JobLimits, JobOutcome};
use coprocessor_actors::program::{Isa, ProgramImage, DEFAULT_MAX_PROGRAM_BYTES};
use coprocessor_actors::{Vm, DEFAULT_MAX_INPUT_BYTES};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `exec`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// The guest program (an rv32im ELF32 or an rv64im ELF64).
    elf: PathBuf,
    /// Onchain input, as hex or @FILE.
    #[arg(long, default_value = "")]
    input: String,
    /// Offchain input, as hex or @FILE.
    #[arg(long, default_value = "")]
    offchain_input: String,
    /// Cycle limit (exact).
    #[arg(long, default_value_t = JobLimits::default().max_cycles)]
    max_cycles: u64,
    /// Memory limit in bytes (image plus touched pages).
    #[arg(long, default_value_t = JobLimits::default().max_memory_bytes)]
    max_memory: u64,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ExecArgs) -> ExitCode {
    match execute(&args) {
        Ok((isa, outcome, wall_micros)) => {
            if args.json {
                println!("{}", json(isa, &outcome, wall_micros));
            } else {
                print_human(isa, &outcome, wall_micros);
            }
            if outcome.is_done() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn execute(args: &ExecArgs) -> Result<(Isa, JobOutcome, u128), String> {
    let elf = std::fs::read(&args.elf).map_err(|err| format!("reading {}: {err}", args.elf.display()))?;
    let onchain = parse_bytes(&args.input).map_err(|err| format!("--input: {err}"))?;
    let offchain = parse_bytes(&args.offchain_input).map_err(|err| format!("--offchain-input: {err}"))?;
    let image =
        ProgramImage::parse(&elf, DEFAULT_MAX_PROGRAM_BYTES).map_err(|err| format!("{}: {err}", args.elf.display()))?;
    let mut vm = Vm::new(&image, DEFAULT_MAX_INPUT_BYTES).map_err(|err| err.to_string())?;
    let limits = JobLimits { max_cycles: args.max_cycles, max_memory_bytes: args.max_memory, ..JobLimits::default() };
    let start = Instant::now();
    let outcome = vm.run(&onchain, &offchain, &limits).map_err(|err| err.to_string())?;
    let wall_micros = start.elapsed().as_micros();
    if !outcome.log.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&outcome.log).trim_end());
    }
    Ok((image.isa, outcome, wall_micros))
}

fn status(outcome: &JobOutcome) -> &'static str {
    if outcome.is_done() {
        "done"
    } else {
        "failed"
    }
}

fn json(isa: Isa, outcome: &JobOutcome, wall_micros: u128) -> serde_json::Value {
    serde_json::json!({
        "status": status(outcome),
        "isa": isa,
        "exitCode": outcome.exit_code,
        "cycles": outcome.cycles,
        "peakMemoryBytes": outcome.peak_memory_bytes,
        "output": to_hex(&outcome.output),
        "failureReason": outcome.failure.as_ref().map(ToString::to_string),
        "wallMicros": wall_micros,
    })
}

fn print_human(isa: Isa, outcome: &JobOutcome, wall_micros: u128) {
    println!("status:      {}", status(outcome));
    println!("isa:         {isa}");
    if let Some(failure) = &outcome.failure {
        println!("reason:      {failure}");
    }
    match outcome.exit_code {
        Some(code) => println!("exit code:   {code}"),
        None => println!("exit code:   -"),
    }
    println!("cycles:      {}", outcome.cycles);
    println!("peak memory: {} bytes", outcome.peak_memory_bytes);
    println!("wall time:   {wall_micros} µs");
    println!("output:      {}", to_hex(&outcome.output));
}
