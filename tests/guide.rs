//! The guides run as written: each one's `sh` blocks, in order, as one
//! script (each command's exit status counts). `docs/guide.md` builds an
//! app from `coprocessor new` and settles its jobs on a local chain;
//! `docs/engine-tour.md` drives an engine on a scratch data dir.

mod common;

use common::engine::Engine;
use std::path::Path;
use std::process::{Command, Output};
/// The guide's `sh` blocks, in order.
fn shell_blocks(guide: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in guide.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed sh block");
    blocks
}

/// Runs `doc`'s `sh` blocks in `dir`, with this build of the binary on the
/// PATH and `REPO` set; whatever they leave running is stopped at the end.
fn run_guide(doc: &str, dir: &Path, limit: std::time::Duration) -> Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(repo.join(doc)).unwrap();
    let blocks = shell_blocks(&guide);
    assert!(blocks.len() >= 6, "{blocks:?}");
    let binary = Path::new(env!("CARGO_BIN_EXE_coprocessor"));
    let path = format!("{}:{}", binary.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let script = format!("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}", blocks.join("\n"));
    let mut bash = Command::new("bash");
    let out =
        common::output_within(bash.arg("-c").arg(&script).current_dir(dir).env("PATH", path).env("REPO", repo), limit);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{doc} failed ({}):\n{stdout}\n{stderr}", out.status);
    out
}

#[test]
fn the_guide_takes_a_new_app_to_results_onchain() {
    let dir = tempfile::tempdir().unwrap();
    // It builds a guest and installs npm packages: minutes on a cold machine.
    let out = run_guide("docs/guide.md", dir.path(), 4 * common::COMMAND_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // What it showed along the way.
    assert!(stdout.contains("library ProgramID {\n"), "{stdout}");
    assert!(stdout.contains("status   completed\n"), "{stdout}");
    assert!(stdout.contains("true 333833500\n"), "{stdout}");
    assert!(stdout.contains(" confirmed\ntrue 4900\n"), "{stdout}");
    assert!(stdout.contains("status:      done\n"), "{stdout}");
}

#[test]
fn the_engine_tour_runs_as_written() {
    // The tour's engine: default data dir `data` under the current one.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let out = run_guide("docs/engine-tour.md", dir.path(), common::COMMAND_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // What it showed along the way.
    assert!(stdout.contains("fib64"), "{stdout}");
    assert!(stdout.contains(" done\n"), "{stdout}");
    assert!(stdout.contains("engine      ready\n"), "{stdout}");
    assert!(stdout.contains("\"status\":\"done\""), "{stdout}");
    drop(engine);
}
