//! Records the git commit the engine is built from, for `coproc_status`
//! (`COPROCESSOR_GIT_COMMIT`; "unknown" outside a git checkout).

use std::path::Path;
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=COPROCESSOR_GIT_COMMIT={commit}");
    // Again when HEAD moves (a commit, a checkout); only files that exist,
    // or cargo would run this at every build.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let head_ref = git(&["symbolic-ref", "-q", "HEAD"]);
        let watched = ["HEAD".to_owned(), "packed-refs".to_owned()].into_iter().chain(head_ref);
        for file in watched.map(|name| Path::new(&dir).join(name)).filter(|path| path.exists()) {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
}
