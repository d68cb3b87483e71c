//! Secret files in the data dir, all mode 0600: the secp256k1 keys
//! (0x-hex) and the TCP api token (hex).
//!
//! `operator.key` signs results. `dev-consumer.key` is the dev consumer
//! signer that the embedded default allows and the CLI signs with.
//! `api.token` is what a TCP client presents first (`coproc_auth`).
//!
//! A secret file that others can read or write (any group or other bit
//! in its mode) is refused, as ssh refuses such a private key: the
//! engine will not start on it. A generated file is written whole under a
//! temporary name, mode 0600 from its creation, flushed, then linked to its
//! name, so a crash never leaves a partial key and two processes racing
//! to create one end up with the same key.

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
/// The TCP api token's file name.
pub const API_TOKEN: &str = "api.token";

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
    /// The file does not hold a valid api token.
    #[error("{path}: not an api token (64 hex digits)")]
    MalformedToken {
        /// The file.
        path: PathBuf,
    },
    /// Others can read or write the file.
    #[error("{path}: mode {mode:o} lets others read or write the key; chmod 600 it")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
}

/// Reads a secret file whose mode lets no one else in.
fn read_private(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_owned(), mode });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Writes `text` to a new file at `path`, mode 0600, atomically: under a
/// temporary name first, then hard-linked to `path` (which fails if
/// `path` exists: the caller reads that one instead). Returns false if
/// `path` appeared meanwhile.
fn write_private(path: &Path, text: &str) -> Result<bool, KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A name no other writer (thread or process) picks.
    let unique: u64 = secp256k1::rand::random();
    let temp = path.with_file_name(format!(".{name}.{}-{unique:016x}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(err) => return Err(io(err)),
    }
    // The new name is durable once its directory is.
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
    }
    Ok(true)
}

/// Reads the key at `path`.
pub fn load(path: &Path) -> Result<Signer, KeyError> {
    let text = read_private(path)?;
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
    if !write_private(path, &format!("0x{}\n", hex::encode(signer.secret_bytes())))? {
        return load(path);
    }
    Ok(signer)
}

/// The TCP api token: 32 random bytes, kept as 64 hex digits in
/// `<data_dir>/api.token`. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken([u8; 32]);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// A fresh random token.
    pub fn random() -> ApiToken {
        use secp256k1::rand::RngCore;
        let mut bytes = [0u8; 32];
        secp256k1::rand::thread_rng().fill_bytes(&mut bytes);
        ApiToken(bytes)
    }

    /// The token as a client sends it: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (an optional 0x prefix and surrounding
    /// whitespace are allowed).
    pub fn parse(text: &str) -> Option<ApiToken> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        if digits.len() != 64 {
            return None;
        }
        hex::decode(digits).ok()?.try_into().ok().map(ApiToken)
    }

    /// Whether `presented` is this token, in time that does not depend on
    /// where they differ (only on the presented text's length, which says
    /// nothing about the token).
    pub fn matches(&self, presented: &str) -> bool {
        let Some(candidate) = ApiToken::parse(presented) else { return false };
        let difference = self.0.iter().zip(candidate.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

/// Reads the api token at `path` (mode 0600, like the keys).
pub fn load_token(path: &Path) -> Result<ApiToken, KeyError> {
    ApiToken::parse(&read_private(path)?).ok_or_else(|| KeyError::MalformedToken { path: path.to_owned() })
}

/// Reads the api token at `path`, or creates it (mode 0600) with a fresh
/// one; it is kept across restarts.
pub fn load_or_generate_token(path: &Path) -> Result<ApiToken, KeyError> {
    if path.exists() {
        return load_token(path);
    }
    let token = ApiToken::random();
    if !write_private(path, &format!("{}\n", token.to_hex()))? {
        return load_token(path);
    }
    Ok(token)
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
        // Nothing but the key is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [OPERATOR_KEY]);
    }

    #[test]
    fn a_readable_or_malformed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "0x1234\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&path), Err(KeyError::Malformed { .. })));
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load(&path).unwrap_err();
            assert!(matches!(err, KeyError::Permissions { mode: m, .. } if m == mode), "{mode:o}: {err}");
            assert_eq!(
                err.to_string(),
                format!("{}: mode {mode:o} lets others read or write the key; chmod 600 it", path.display())
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(matches!(load(&path), Err(KeyError::Malformed { .. })), "0400 is private enough");
    }

    #[test]
    fn two_racing_generators_end_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OPERATOR_KEY);
        let addresses: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| load_or_generate(&path).unwrap().address())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(addresses.iter().all(|a| *a == addresses[0]), "{addresses:?}");
        assert_eq!(load(&path).unwrap().address(), addresses[0]);
    }

    #[test]
    fn the_api_token_is_private_kept_and_compared_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(API_TOKEN);
        let token = load_or_generate_token(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", token.to_hex()));
        assert_eq!(text.trim().len(), 64);
        assert_eq!(load_or_generate_token(&path).unwrap(), token, "kept across restarts");
        assert!(token.matches(&token.to_hex()));
        assert!(token.matches(&format!("0x{}", token.to_hex().to_uppercase())));
        let mut wrong = token.to_hex().into_bytes();
        wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
        assert!(!token.matches(std::str::from_utf8(&wrong).unwrap()));
        assert!(!token.matches(&token.to_hex()[..62]));
        assert!(!token.matches(""));
        assert!(!token.matches(&"zz".repeat(32)));
        assert_eq!(format!("{token:?}"), "ApiToken(<redacted>)");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(load_token(&path), Err(KeyError::Permissions { mode: 0o640, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(load_token(&path), Err(KeyError::MalformedToken { .. })));
    }
}
