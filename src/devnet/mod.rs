//! The local development chain: a hardhat node ([`node`]) and the
//! deployment of the contracts onto it ([`deploy`]). `coprocessor dev`,
//! `coprocessor deploy` and the chain tests use it. [`cluster`] is the
//! local cluster of `coprocessor dev --cluster N`.

pub mod cluster;
pub mod deploy;
pub mod node;

pub use deploy::{deploy, DeployParams, Deployment, ExampleConsumers, ExamplePrograms, DEV_DEPLOYER_KEY};
pub use node::{contracts_dir, free_port, HardhatNode};

/// Why the local chain could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The node could not be started or reached.
    #[error("local node: {0}")]
    Node(String),
    /// A deployment transaction failed.
    #[error("deploying {what}: {reason}")]
    Deploy {
        /// The contract or step.
        what: &'static str,
        /// The node's answer.
        reason: String,
    },
}

/// The example guests' ELFs (`square-root`, `clob`) when `contracts` is the
/// coprocessor repository's (it has `programs/examples` beside it); `None`
/// elsewhere, as in an app from `coprocessor new`.
pub fn example_guests(contracts: &std::path::Path) -> Result<Option<[Vec<u8>; 2]>, DevnetError> {
    let root = contracts.parent().unwrap_or(contracts);
    if !root.join("programs/examples").is_dir() {
        return Ok(None);
    }
    Ok(Some([guest_elf(contracts, "square-root")?, guest_elf(contracts, "clob")?]))
}

/// An example guest's ELF, as `make guests` builds it:
/// `programs/elf/<name>.elf` beside the `contracts/` folder.
pub fn guest_elf(contracts: &std::path::Path, name: &str) -> Result<Vec<u8>, DevnetError> {
    let root = contracts.parent().unwrap_or(contracts);
    let path = root.join("programs/elf").join(format!("{name}.elf"));
    std::fs::read(&path).map_err(|err| DevnetError::Node(format!("{}: {err} (run `make guests`)", path.display())))
}
