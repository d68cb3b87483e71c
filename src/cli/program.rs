//! `coprocessor program submit|list`.

use super::{describe, EngineArgs};
use coprocessor_actors::wire::{Call, HexBytes, NoParams, ProgramIdReply, ProgramInfo, ProgramsReply, SubmitProgram};
use std::path::PathBuf;
use std::process::ExitCode;

/// Program commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProgramCommand {
    /// Register an rv32im or rv64im ELF; prints its program ID and ISA.
    Submit {
        /// The ELF file.
        elf: PathBuf,
        /// A name for it (a label: the ID stays keccak256 of the ELF)
        /// [default: the file's name without its extension].
        #[arg(long)]
        name: Option<String>,
        /// Print the `coproc_submitProgram` object (`{programId, isa, name}`) as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// List registered programs: name, ID, ISA, size, registration time,
    /// jobs run and their cycles.
    List {
        /// Print the `coproc_listPrograms` object as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

pub(crate) fn run(command: ProgramCommand) -> Result<ExitCode, String> {
    match command {
        ProgramCommand::Submit { elf, name, json, engine } => {
            let bytes = std::fs::read(&elf).map_err(|err| format!("reading {}: {err}", elf.display()))?;
            let name = name.or_else(|| elf.file_stem().map(|stem| stem.to_string_lossy().into_owned()));
            let reply: ProgramIdReply = engine
                .connect()?
                .call(Call::SubmitProgram(SubmitProgram { elf: HexBytes(bytes), name }))
                .map_err(describe)?;
            if json {
                println!("{}", serde_json::to_string(&reply).map_err(|err| err.to_string())?);
            } else {
                println!("0x{} {}", hex::encode(reply.program_id.0), reply.isa);
            }
        }
        ProgramCommand::List { json, engine } => {
            let reply: ProgramsReply = engine.connect()?.call(Call::ListPrograms(NoParams {})).map_err(describe)?;
            if json {
                println!("{}", serde_json::to_string(&reply).map_err(|err| err.to_string())?);
            } else {
                print!("{}", table(&reply.programs));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The programs as an aligned table with a header.
fn table(programs: &[ProgramInfo]) -> String {
    let rows: Vec<[String; 7]> = programs
        .iter()
        .map(|p| {
            [
                if p.name.is_empty() { "-".to_owned() } else { p.name.clone() },
                format!("0x{}", hex::encode(&p.program_id.0)),
                p.isa.to_string(),
                p.size_bytes.to_string(),
                registered(p.registered_unix_ms),
                p.jobs.to_string(),
                p.cycles.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "PROGRAM", "ISA", "BYTES", "REGISTERED", "JOBS", "CYCLES"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A registration time as UTC, `-` when it was not recorded.
fn registered(unix_ms: u64) -> String {
    i64::try_from(unix_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".to_owned(), |time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}
