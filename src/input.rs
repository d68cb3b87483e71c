//! Byte arguments given as `0x`-hex (or bare hex) or as `@FILE`.

use std::path::PathBuf;

/// Why a byte argument could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The text is not hex.
    #[error("not hex: {0}")]
    NotHex(#[from] hex::FromHexError),
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Reads `HEX` or `@FILE` into bytes. An empty string is empty input.
pub fn parse_bytes(arg: &str) -> Result<Vec<u8>, InputError> {
    if let Some(path) = arg.strip_prefix('@') {
        let path = PathBuf::from(path);
        return std::fs::read(&path).map_err(|source| InputError::File { path, source });
    }
    let digits = arg.strip_prefix("0x").or_else(|| arg.strip_prefix("0X")).unwrap_or(arg);
    Ok(hex::decode(digits)?)
}

/// Formats bytes as `0x`-hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_with_or_without_prefix() {
        assert_eq!(parse_bytes("0x0aff").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(parse_bytes("0aff").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(parse_bytes("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn bad_hex_and_missing_files_are_errors() {
        assert!(matches!(parse_bytes("0xzz"), Err(InputError::NotHex(_))));
        assert!(matches!(parse_bytes("0xabc"), Err(InputError::NotHex(_))));
        let err = parse_bytes("@/nonexistent/file").unwrap_err();
        assert!(err.to_string().starts_with("reading /nonexistent/file:"), "{err}");
    }
}
