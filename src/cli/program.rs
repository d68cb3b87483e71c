//! `coprocessor program submit|list`.

use super::{describe, EngineArgs};
use coprocessor_actors::wire::{Call, HexBytes, NoParams, ProgramIdReply, ProgramsReply, SubmitProgram};
use std::path::PathBuf;
use std::process::ExitCode;

/// Program commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProgramCommand {
    /// Register an rv32im ELF and print its program ID.
    Submit {
        /// The ELF file.
        elf: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// List registered program IDs.
    List {
        #[command(flatten)]
        engine: EngineArgs,
    },
}

pub(crate) fn run(command: ProgramCommand) -> Result<ExitCode, String> {
    match command {
        ProgramCommand::Submit { elf, engine } => {
            let bytes = std::fs::read(&elf).map_err(|err| format!("reading {}: {err}", elf.display()))?;
            let reply: ProgramIdReply = engine
                .connect()?
                .call(Call::SubmitProgram(SubmitProgram { elf: HexBytes(bytes) }))
                .map_err(describe)?;
            println!("0x{}", hex::encode(reply.program_id.0));
        }
        ProgramCommand::List { engine } => {
            let reply: ProgramsReply = engine.connect()?.call(Call::ListPrograms(NoParams {})).map_err(describe)?;
            for id in reply.program_ids {
                println!("0x{}", hex::encode(id.0));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
