//! `coprocessor program submit|list`.

use super::{describe, EngineArgs};
use coprocessor_actors::wire::{Call, HexBytes, NoParams, ProgramIdReply, ProgramsReply, SubmitProgram};
use std::path::PathBuf;
use std::process::ExitCode;

/// Program commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProgramCommand {
    /// Register an rv32im or rv64im ELF; prints its program ID and ISA.
    Submit {
        /// The ELF file.
        elf: PathBuf,
        /// Print the `coproc_submitProgram` object (`{programId, isa}`) as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// List registered programs: one line each, its ID and ISA.
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
        ProgramCommand::Submit { elf, json, engine } => {
            let bytes = std::fs::read(&elf).map_err(|err| format!("reading {}: {err}", elf.display()))?;
            let reply: ProgramIdReply = engine
                .connect()?
                .call(Call::SubmitProgram(SubmitProgram { elf: HexBytes(bytes) }))
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
                for program in reply.programs {
                    println!("0x{} {}", hex::encode(program.program_id.0), program.isa);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
