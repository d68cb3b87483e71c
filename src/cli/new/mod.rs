//! `coprocessor new NAME`: a ready app in `./NAME` (or `--dir DIR/NAME`): a
//! guest crate on the SDK (copied in, so the app builds on its own) with a
//! real example and a unit test of its logic; a consumer contract that
//! requests its jobs, with the guest's program ID generated from the built
//! ELF, and a contract test; a Makefile whose `make test` tests the logic,
//! builds the guest for rv32im and rv64im and runs it with `coprocessor
//! exec`, tests the contract on a hardhat node, and proves a job end to end
//! on a local chain (`coprocessor dev`), onchain and offchain; and a README.
//!
//! The templates are in `template/`; the SDK and the contracts' set-up are
//! this repository's own files, embedded when the binary is built.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `new`.
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The app's name: lowercase letters, digits and dashes, starting with a
    /// letter (it names the folder, the crate and the guest binary).
    name: String,
    /// Where to create it [default: the current directory].
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The SDK and the ABI helpers, as this binary was built with them.
const SDK_FILES: [(&str, &str); 12] = [
    (".cargo/config.toml", include_str!("../../../programs/.cargo/config.toml")),
    ("sdk/sdk/Cargo.toml", include_str!("../../../programs/sdk/Cargo.toml")),
    ("sdk/sdk/build.rs", include_str!("../../../programs/sdk/build.rs")),
    ("sdk/sdk/link.x", include_str!("../../../programs/sdk/link.x")),
    ("sdk/sdk/src/lib.rs", include_str!("../../../programs/sdk/src/lib.rs")),
    ("sdk/sdk/src/heap.rs", include_str!("../../../programs/sdk/src/heap.rs")),
    ("sdk/sdk/src/io.rs", include_str!("../../../programs/sdk/src/io.rs")),
    ("sdk/sdk/src/start.rs", include_str!("../../../programs/sdk/src/start.rs")),
    ("sdk/sdk/src/syscall.rs", include_str!("../../../programs/sdk/src/syscall.rs")),
    ("sdk/abi/Cargo.toml", include_str!("../../../programs/abi/Cargo.toml")),
    ("sdk/abi/src/lib.rs", include_str!("../../../programs/abi/src/lib.rs")),
    ("guest/build.rs", include_str!("../../../programs/guest-build.rs")),
];

/// The app's own files; `{name}`, `{crate}`, `{Pascal}` and `{CONST}` are
/// filled in.
const APP_FILES: [(&str, &str, Mode); 11] = [
    ("guest/Cargo.toml", include_str!("template/guest-Cargo.toml"), Mode::File),
    ("guest/src/lib.rs", include_str!("template/guest-lib.rs"), Mode::File),
    ("guest/src/main.rs", include_str!("template/guest-main.rs"), Mode::File),
    ("contracts/src/{Pascal}Consumer.sol", include_str!("template/Consumer.sol"), Mode::File),
    ("contracts/test/consumer.test.js", include_str!("template/consumer.test.js"), Mode::File),
    ("contracts/scripts/app.js", include_str!("template/app.js"), Mode::File),
    ("scripts/local.sh", include_str!("template/local.sh"), Mode::Executable),
    ("Makefile", include_str!("template/Makefile"), Mode::File),
    ("README.md", include_str!("template/README.md"), Mode::File),
    (".gitignore", include_str!("template/gitignore"), Mode::File),
    ("contracts/package.json", include_str!("../../../contracts/package.json"), Mode::File),
];

/// The contracts' build and test set-up, and the JobManager and consumer
/// base contracts, as this binary was built with them.
const CONTRACT_FILES: [(&str, &str); 11] = [
    ("contracts/build.js", include_str!("../../../contracts/build.js")),
    ("contracts/hardhat.config.js", include_str!("../../../contracts/hardhat.config.js")),
    ("contracts/test/helpers/node.js", include_str!("../../../contracts/test/helpers/node.js")),
    ("contracts/test/helpers/coproc.js", include_str!("../../../contracts/test/helpers/coproc.js")),
    ("contracts/src/coprocessor/Consumer.sol", include_str!("../../../contracts/src/Consumer.sol")),
    ("contracts/src/coprocessor/JobManager.sol", include_str!("../../../contracts/src/JobManager.sol")),
    ("contracts/src/coprocessor/JobManagerProxy.sol", include_str!("../../../contracts/src/JobManagerProxy.sol")),
    ("contracts/src/coprocessor/IJobManager.sol", include_str!("../../../contracts/src/IJobManager.sol")),
    ("contracts/src/coprocessor/IBatchSettlement.sol", include_str!("../../../contracts/src/IBatchSettlement.sol")),
    ("contracts/src/coprocessor/OffchainRequester.sol", include_str!("../../../contracts/src/OffchainRequester.sol")),
    (
        "contracts/src/coprocessor/SingleOffchainSigner.sol",
        include_str!("../../../contracts/src/SingleOffchainSigner.sol"),
    ),
];

/// The npm lock of the contracts' packages (hardhat, ethers, solc-js,
/// OpenZeppelin): the app installs exactly what this repository tests with.
const PACKAGE_LOCK: &str = include_str!("../../../contracts/package-lock.json");

/// How a file is written.
#[derive(Debug, Clone, Copy)]
enum Mode {
    File,
    Executable,
}

/// The names an app's files use, from its name (`my-app`).
struct Names {
    name: String,
    krate: String,
    pascal: String,
    constant: String,
}

impl Names {
    fn of(name: &str) -> Names {
        let pascal = name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            })
            .collect();
        Names {
            name: name.to_owned(),
            krate: name.replace('-', "_"),
            pascal,
            // What `coprocessor program id --solidity elf/NAME.elf` names it.
            constant: format!("{}_ID", name.to_ascii_uppercase().replace('-', "_")),
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{name}", &self.name)
            .replace("{crate}", &self.krate)
            .replace("{Pascal}", &self.pascal)
            .replace("{CONST}", &self.constant)
    }
}

/// `new NAME`: refuses a bad name or an existing folder.
pub(crate) fn run(args: NewArgs) -> Result<ExitCode, String> {
    let name = args.name.as_str();
    let valid = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(format!(
            "app name {name:?}: use lowercase letters, digits and dashes, starting with a letter (at most 40)"
        ));
    }
    let root = args.dir.unwrap_or_else(|| PathBuf::from(".")).join(name);
    if root.exists() {
        return Err(format!("{} already exists", root.display()));
    }
    let names = Names::of(name);
    // The shared guest build script watches itself under its name here.
    let mut files: Vec<(String, String, Mode)> = SDK_FILES
        .iter()
        .map(|(path, text)| (path.to_string(), text.replace("../../guest-build.rs", "build.rs"), Mode::File))
        .collect();
    files.extend(CONTRACT_FILES.iter().map(|(path, text)| (path.to_string(), text.to_string(), Mode::File)));
    files.extend(APP_FILES.iter().map(|(path, text, mode)| (names.fill(path), names.fill(text), *mode)));
    files.push(("contracts/package-lock.json".to_owned(), PACKAGE_LOCK.to_owned(), Mode::File));
    for (path, text, _) in &mut files {
        if path.starts_with("contracts/package") {
            *text = package(text, name);
        }
    }
    for (path, text, mode) in &files {
        write(&root.join(path), text, *mode)?;
    }
    println!("created {} ({} files): cd {} && make test", root.display(), files.len(), root.display());
    Ok(ExitCode::SUCCESS)
}

/// The repository's contracts package, renamed for the app.
fn package(text: &str, name: &str) -> String {
    text.replace("\"name\": \"coprocessor-contracts\"", &format!("\"name\": \"{name}-contracts\"")).replace(
        "Onchain contracts of the coprocessor (InfinityVM-compatible JobManager ABI), built with solc-js and tested \
             against a local hardhat node",
        &format!("The {name} app's consumer contract, built with solc-js and tested against a local hardhat node"),
    )
}

fn write(path: &Path, text: &str, mode: Mode) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| format!("creating {}: {err}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|err| format!("writing {}: {err}", path.display()))?;
    if let Mode::Executable = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|err| format!("making {} executable: {err}", path.display()))?;
    }
    Ok(())
}
