//! `coprocessor metrics [--watch] [--json]`.

use super::{describe, EngineArgs};
use coprocessor_actors::wire::{Call, NoParams};
use coprocessor_actors::MetricsSnapshot;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `metrics`.
#[derive(Debug, clap::Args)]
pub(crate) struct MetricsArgs {
    /// Refresh every second until interrupted.
    #[arg(long)]
    watch: bool,
    /// Print the `coproc_metrics` object as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(crate) fn run(args: MetricsArgs) -> Result<ExitCode, String> {
    let mut client = args.engine.connect()?;
    loop {
        let snapshot: MetricsSnapshot = client.call(Call::Metrics(NoParams {})).map_err(describe)?;
        let text =
            if args.json { serde_json::to_string(&snapshot).map_err(|err| err.to_string())? } else { table(&snapshot) };
        if args.watch && !args.json {
            // Clear the screen and home the cursor.
            print!("\x1b[2J\x1b[H");
        }
        println!("{text}");
        if !args.watch {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The human-readable form: one row per actor, then the engine totals.
pub(crate) fn table(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>7} {:>8} {:>9} {:>9} {:>8}",
        "actor", "received", "handled", "errors", "mailbox", "p50 µs", "p99 µs", "restarts"
    );
    for (name, a) in &snapshot.actors {
        let _ = writeln!(
            out,
            "{name:<10} {:>10} {:>10} {:>7} {:>8} {:>9} {:>9} {:>8}",
            a.received, a.handled, a.errors, a.mailbox, a.p50_micros, a.p99_micros, a.restarts
        );
    }
    let e = &snapshot.engine;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "jobs       accepted {}  done {}  failed {}  busy {}",
        e.jobs_accepted, e.jobs_done, e.jobs_failed, e.jobs_busy
    );
    let _ =
        writeln!(out, "rate       {:.0} jobs/s  {:.0} instructions/s", e.jobs_per_second, e.instructions_per_second);
    let _ = writeln!(out, "executors  {}  utilization {:.1}%", e.executors, e.executor_utilization * 100.0);
    let _ = writeln!(out, "sled       {} bytes", e.sled_bytes);
    let _ = write!(out, "uptime     {} s  rejected requests {}", e.uptime_seconds, e.requests_rejected);
    out
}
