//! `docs/guide.md` runs as written: its `sh` blocks, in order, as one
//! script, against an engine on a scratch data dir (each command's exit
//! status counts).

mod common;

use common::engine::Engine;
use std::path::Path;
use std::process::Command;

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

#[test]
fn every_command_of_the_guide_runs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(repo.join("docs/guide.md")).unwrap();
    let blocks = shell_blocks(&guide);
    assert!(blocks.len() >= 6, "{blocks:?}");

    // The guide's engine: default data dir `data` under the current one.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let binary = Path::new(env!("CARGO_BIN_EXE_coprocessor"));
    let path = format!("{}:{}", binary.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let script = format!("set -euo pipefail\n{}", blocks.join("\n"));
    let out = common::output_within(
        Command::new("bash").arg("-c").arg(&script).current_dir(dir.path()).env("PATH", path).env("REPO", repo),
        common::COMMAND_LIMIT,
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the guide failed ({}):\n{stdout}\n{stderr}", out.status);
    // What it showed along the way.
    assert!(stdout.contains("fib64"), "{stdout}");
    assert!(stdout.contains(" done\n"), "{stdout}");
    assert!(stdout.contains("engine      ready\n"), "{stdout}");
    assert!(stdout.contains("\"status\":\"done\""), "{stdout}");
    drop(engine);
}
