//! Key files in the data dir: 0x-hex secp256k1 secrets, mode 0600.
//!
//! `operator.key` signs results. `dev-consumer.key` is the dev consumer
//! signer that the embedded default allows and the CLI signs with.

use crate::protocol::eip191::Signer;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The operator's key file name.
pub const OPERATOR_KEY: &str = "operator.key";
/// The relayer's key file name (the default of `chain.relayer_key`).
pub const RELAYER_KEY: &str = "relayer.key";
/// The dev consumer signer's key file name.
pub const DEV_CONSUMER_KEY: &str = "dev-consumer.key";

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or creating the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not hold a valid key.
    #[error("{path}: not a 0x-hex secp256k1 secret key")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// Others can read the file.
    #[error("{path}: mode {mode:o} lets others read the key; chmod 600 it")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
}

/// Reads the key at `path`.
pub fn load(path: &Path) -> Result<Signer, KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_owned(), mode });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let malformed = || KeyError::Malformed { path: path.to_owned() };
    let digits = text.trim().strip_prefix("0x").ok_or_else(malformed)?;
    let bytes: [u8; 32] = hex::decode(digits).ok().and_then(|b| b.try_into().ok()).ok_or_else(malformed)?;
    Signer::from_bytes(&bytes).map_err(|_| malformed())
}

/// Reads the key at `path`, or creates it (mode 0600) with a fresh key.
pub fn load_or_generate(path: &Path) -> Result<Signer, KeyError> {
    if path.exists() {
        return load(path);
    }
    let signer = Signer::random();
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    writeln!(file, "0x{}", hex::encode(signer.secret_bytes())).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OPERATOR_KEY);
        let signer = load_or_generate(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_generate(&path).unwrap().address(), signer.address());
    }

    #[test]
    fn a_readable_or_malformed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "0x1234\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&path), Err(KeyError::Malformed { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&path), Err(KeyError::Permissions { mode: 0o644, .. })));
    }
}
