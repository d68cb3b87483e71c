//! `coprocessor replay`: over the socket when the engine runs, otherwise
//! straight from the stopped engine's data dir.

use super::{describe, EngineArgs};
use coprocessor::client::{Client, ClientError};
use coprocessor_actors::config::Limits;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::wire::{Call, HexBytes, ReplayParams, ReplayReply};
use coprocessor_actors::Store;
use coprocessor_actors::{replay, ReplayRange as Range};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::process::ExitCode;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// First job log sequence number.
    #[arg(long)]
    from: Option<u64>,
    /// Last job log sequence number (inclusive).
    #[arg(long)]
    to: Option<u64>,
    /// Only jobs of this program.
    #[arg(long)]
    program: Option<String>,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(crate) fn run(args: ReplayArgs) -> Result<ExitCode, String> {
    let program: Option<ProgramId> =
        args.program.as_deref().map(str::parse).transpose().map_err(|err| format!("--program: {err}"))?;
    let reply = match args.engine.client() {
        Ok(client) => over_socket(client, &args, program)?,
        Err(ClientError::Connect { .. }) => offline(&args, program)?,
        Err(err) => return Err(describe(err)),
    };
    if reply.first_retained > args.from.unwrap_or(0) {
        println!(
            "log records before {} were pruned (store.retain_days): replay covers {} on",
            reply.first_retained, reply.first_retained
        );
    }
    println!("replayed {}  matched {}  mismatched {}", reply.replayed, reply.matched, reply.mismatched.len());
    for id in &reply.mismatched {
        println!("mismatch 0x{}", hex::encode(&id.0));
    }
    Ok(if reply.mismatched.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} log records  {per_sec}  eta {eta}") {
        bar.set_style(style);
    }
    bar
}

fn over_socket(mut client: Client, args: &ReplayArgs, program: Option<ProgramId>) -> Result<ReplayReply, String> {
    let spinner = bar(0);
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    spinner.set_message("replaying on the engine");
    let params = ReplayParams { from: args.from, to: args.to, program_id: program.map(|id| HexBytes(id.0.to_vec())) };
    let reply = client.call(Call::Replay(params)).map_err(describe);
    spinner.finish_and_clear();
    reply
}

fn offline(args: &ReplayArgs, program: Option<ProgramId>) -> Result<ReplayReply, String> {
    let db = args.engine.data_dir.join("db");
    if !db.exists() {
        return Err(format!("no engine at {} and no store at {}", args.engine.socket_path().display(), db.display()));
    }
    let store = Store::open(&db).map_err(|err| format!("opening {}: {err}", db.display()))?;
    let range = Range { from: args.from.unwrap_or(0), to: args.to.unwrap_or(u64::MAX), program };
    let progress = bar(0);
    let report = replay(&store, &range, Limits::default().max_input_bytes.max(64 << 20), |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    })
    .map_err(|err| err.to_string())?;
    progress.finish_and_clear();
    Ok(ReplayReply {
        replayed: report.replayed,
        matched: report.matched,
        mismatched: report.mismatched.into_iter().map(|id| HexBytes(id.0.to_vec())).collect(),
        first_retained: report.first_retained,
    })
}
