//! `coprocessor new`: a new app builds, tests and runs on its own: its
//! guest, its consumer contract, and a job end to end on a local chain.

mod common;

use std::path::Path;
use std::process::Command;

/// What the example answers to `abi.encode(uint64 1000)`:
/// `abi.encode(uint64 1000, uint256 333833500)`.
const OUTPUT: &str = "0x00000000000000000000000000000000000000000000000000000000000003e8\
                      0000000000000000000000000000000000000000000000000000000013e5e51c";

#[test]
fn a_new_app_passes_its_own_make_test_onchain_and_offchain() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().to_str().unwrap();
    let out = common::coprocessor(&["new", "demo-app", "--dir", parent]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let app = dir.path().join("demo-app");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("created {} (35 files): cd {} && make test\n", app.display(), app.display())
    );
    for file in ["contracts/src/DemoAppConsumer.sol", "contracts/test/consumer.test.js", "scripts/local.sh"] {
        assert!(app.join(file).is_file(), "{file} is missing");
    }

    // Its own `make test`, with this build of the binary on its PATH.
    let binary = Path::new(env!("CARGO_BIN_EXE_coprocessor"));
    let path = format!("{}:{}", binary.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    // It builds a guest twice with -Zbuild-std and installs npm packages:
    // minutes on a cold machine.
    let mut make = Command::new("make");
    let out = common::output_within(make.arg("-C").arg(&app).arg("test").env("PATH", path), 4 * common::COMMAND_LIMIT);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "make test failed:\n{stdout}\n{stderr}");
    // The guest's logic, on the host.
    assert!(stdout.contains("test result: ok. 2 passed"), "{stdout}");
    // The guest, built both ways, run by `exec`.
    for isa in ["rv32im", "rv64im"] {
        assert!(stdout.contains(&format!("\"isa\":\"{isa}\",\"exitCode\":0")), "{isa}: {stdout}");
        assert!(stdout.contains(&format!("\"output\":\"{OUTPUT}\"")), "{stdout}");
    }
    // The consumer's contract test, on a hardhat node.
    assert!(stdout.contains("# pass 4\n# fail 0\n"), "{stdout}");
    // End to end on `coprocessor dev`: a job requested onchain, one
    // submitted offchain, each stored by the consumer.
    assert!(stdout.contains(&format!("status   completed\nresult   {OUTPUT}\n")), "{stdout}");
    assert!(stdout.contains("the consumer stored sum(1000) = 333833500\n"), "{stdout}");
    assert!(stdout.contains(" confirmed\nthe consumer stored sum(24) = 4900\n"), "{stdout}");
    assert!(stdout.contains("\nend to end: ok\n"), "{stdout}");

    // The consumer names the guest the build made, by its program ID.
    let elf = std::fs::read(app.join("elf/demo-app.elf")).unwrap();
    let id = ::hex::encode(coprocessor_actors::program::ProgramId::of(&elf).0);
    let generated = std::fs::read_to_string(app.join("contracts/src/ProgramID.sol")).unwrap();
    assert!(generated.contains(&format!("bytes internal constant DEMO_APP_ID = hex\"{id}\";")), "{generated}");

    // Refusals: an existing folder, a name that cannot be a crate's.
    let out = common::coprocessor(&["new", "demo-app", "--dir", parent]);
    assert_eq!(String::from_utf8(out.stderr).unwrap(), format!("error: {} already exists\n", app.display()));
    let out = common::coprocessor(&["new", "Demo_App", "--dir", parent]);
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: app name \"Demo_App\": use lowercase letters, digits and dashes, starting with a letter (at most 40)\n"
    );
}
