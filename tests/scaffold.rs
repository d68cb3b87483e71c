//! `coprocessor new`: a new app builds, tests and runs on its own, and its
//! guest runs on the engine like any program.

mod common;

use common::engine::Engine;
use coprocessor_actors::wire::{Call, CallParams, HexBytes, RunReply};
use std::path::Path;
use std::process::Command;

/// `abi.encode(uint64 1000)` and what the example answers:
/// `abi.encode(uint64 1000, uint256 333833500)`.
const INPUT: &str = "0x00000000000000000000000000000000000000000000000000000000000003e8";
const OUTPUT: &str = "0x00000000000000000000000000000000000000000000000000000000000003e8\
                      0000000000000000000000000000000000000000000000000000000013e5e51c";

#[test]
fn a_new_app_passes_its_own_make_test_and_its_guest_runs_on_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().to_str().unwrap();
    let out = common::coprocessor(&["new", "demo-app", "--dir", parent]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let app = dir.path().join("demo-app");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("created {} (18 files): cd {} && make test\n", app.display(), app.display())
    );

    // Its own `make test`: the unit tests, the guest for both ISAs, exec.
    let binary = Path::new(env!("CARGO_BIN_EXE_coprocessor"));
    let path = format!("{}:{}", binary.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    // It builds a guest twice with -Zbuild-std: minutes on a cold machine.
    let mut make = Command::new("make");
    let out = common::output_within(make.arg("-C").arg(&app).arg("test").env("PATH", path), 4 * common::COMMAND_LIMIT);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "make test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("test result: ok. 2 passed"), "{stdout}");
    assert!(stdout.contains("\"isa\":\"rv32im\"") && stdout.contains("\"isa\":\"rv64im\""), "{stdout}");

    // The guest is a program like any other: registered, it runs as a job would.
    let engine = Engine::start(&dir.path().join("data"));
    let elf = std::fs::read(app.join("elf/demo-app.elf")).unwrap();
    let program = coprocessor_actors::program::ProgramId::of(&elf);
    let out = common::coprocessor(&[
        "program",
        "submit",
        app.join("elf/demo-app.elf").to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let params = CallParams {
        program_id: HexBytes(program.0.to_vec()),
        onchain_input: HexBytes(::hex::decode(&INPUT[2..]).unwrap()),
        offchain_input: HexBytes(vec![]),
        max_cycles: None,
    };
    let ran: RunReply = engine.client().call(Call::CallProgram(params)).unwrap();
    assert_eq!((ran.status.as_str(), common::hex(&ran.output.0)), ("done", OUTPUT.to_owned()));

    // Refusals: an existing folder, a name that cannot be a crate's.
    let out = common::coprocessor(&["new", "demo-app", "--dir", parent]);
    assert_eq!(String::from_utf8(out.stderr).unwrap(), format!("error: {} already exists\n", app.display()));
    let out = common::coprocessor(&["new", "Demo_App", "--dir", parent]);
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: app name \"Demo_App\": use lowercase letters, digits and dashes, starting with a letter (at most 40)\n"
    );
}
