//! `coprocessor exec`: run one program locally and print the outcome.
//!
//! Exit status: 0 when the job is done, 1 when it failed (the outcome still
//! prints), 2 when the program or the arguments are rejected.

use coprocessor::input::{parse_bytes, to_hex};
use coprocessor_actors::job::JobLimits;
use coprocessor_actors::program::{ProgramImage, DEFAULT_MAX_PROGRAM_BYTES};
use coprocessor_actors::wire::RunReply;
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
        Ok(reply) => print_run(&reply, args.json),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn execute(args: &ExecArgs) -> Result<RunReply, String> {
    let elf = std::fs::read(&args.elf).map_err(|err| format!("reading {}: {err}", args.elf.display()))?;
    let onchain = parse_bytes(&args.input).map_err(|err| format!("--input: {err}"))?;
    let offchain = parse_bytes(&args.offchain_input).map_err(|err| format!("--offchain-input: {err}"))?;
    let image =
        ProgramImage::parse(&elf, DEFAULT_MAX_PROGRAM_BYTES).map_err(|err| format!("{}: {err}", args.elf.display()))?;
    let mut vm = Vm::new(&image, DEFAULT_MAX_INPUT_BYTES).map_err(|err| err.to_string())?;
    let limits = JobLimits { max_cycles: args.max_cycles, max_memory_bytes: args.max_memory, ..JobLimits::default() };
    let start = Instant::now();
    let outcome = vm.run(&onchain, &offchain, &limits).map_err(|err| err.to_string())?;
    let wall_micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    if !outcome.log.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&outcome.log).trim_end());
    }
    Ok(RunReply::new(image.isa, &outcome, wall_micros))
}

/// Prints a run's outcome (`exec`, `job call`), as one JSON object with
/// `json`; exit status 0 when it is done, 1 when it failed.
pub(crate) fn print_run(reply: &RunReply, json: bool) -> ExitCode {
    if json {
        match serde_json::to_string(reply) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        println!("status:      {}", reply.status);
        println!("isa:         {}", reply.isa);
        if let Some(reason) = &reply.failure_reason {
            println!("reason:      {reason}");
        }
        match reply.exit_code {
            Some(code) => println!("exit code:   {code}"),
            None => println!("exit code:   -"),
        }
        println!("cycles:      {}", reply.cycles);
        println!("peak memory: {} bytes", reply.peak_memory_bytes);
        println!("wall time:   {} µs", reply.wall_micros);
        println!("output:      {}", to_hex(&reply.output.0));
    }
    if reply.status == "done" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
