//! Every seed in `fuzz/corpus/<target>/` and every input that ever failed,
//! in `fuzz/regressions/<target>/`, through its target.

use coprocessor_fuzz_targets::TARGETS;
use std::path::Path;

fn run_dir(target: &str, run: fn(&[u8]), dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        eprintln!("{target}: {}", file.display());
        run(&data);
    }
    files.len()
}

fn fuzz_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("fuzz/")
}

#[test]
fn every_seed_passes_its_target() {
    for (target, run) in TARGETS {
        let count = run_dir(target, run, &fuzz_dir().join("corpus").join(target));
        assert!(count > 0, "no seeds for {target}");
    }
}

#[test]
fn every_regression_input_passes_its_target() {
    for (target, run) in TARGETS {
        run_dir(target, run, &fuzz_dir().join("regressions").join(target));
    }
}
