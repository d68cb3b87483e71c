//! Programs: what a guest is before it runs.
//!
//! A program is a guest ELF (Guest ABI v1). [`ProgramImage::parse`] validates
//! untrusted bytes into the segments the VM maps; a [`ProgramId`] names a
//! program by the Keccak-256 (Ethereum's, not SHA3-256) of its whole file;
//! its [`Isa`] (rv32im or rv64im) is its ELF class.
//! The guest window constants say where a guest may live.

mod elf;

pub use elf::{ElfError, ProgramImage, Segment, SegmentPerms};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// First guest address a `PT_LOAD` segment may occupy.
pub const GUEST_WINDOW_START: u32 = 0x0001_0000;
/// End (exclusive) of the guest address window for `PT_LOAD` segments.
pub const GUEST_WINDOW_END: u32 = 0x8000_0000;
/// The page size the VM maps guest memory with, in bytes.
pub const PAGE_SIZE: u32 = 4096;
/// Default limit on an ELF file: 16 MiB.
pub const DEFAULT_MAX_PROGRAM_BYTES: usize = 16 << 20;

/// A guest's instruction set, from its ELF class.
///
/// Displays as `rv32im` or `rv64im`, and serializes as that string too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isa {
    /// `ELFCLASS32`: RV32I with M, nothing else.
    Rv32im,
    /// `ELFCLASS64`: RV64I with M, nothing else.
    Rv64im,
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Rv32im => "rv32im",
            Isa::Rv64im => "rv64im",
        })
    }
}

/// Why a string is not a program ID.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ProgramIdError {
    /// Not 64 hex digits (after an optional `0x`).
    #[error("program id must be 64 hex digits, got {0}")]
    WrongLength(usize),
    /// A character that is not a hex digit, at this byte position.
    #[error("program id has a non-hex character at position {0}")]
    NotHex(usize),
}

/// A program's identity: Keccak-256 of its ELF bytes.
///
/// Displays (and `Debug`s) as `0x` and 64 lowercase hex digits. Serializes as
/// that string in human-readable formats (JSON) and as 32 raw bytes otherwise
/// (bincode).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramId(pub [u8; 32]);

impl ProgramId {
    /// The ID of these ELF bytes: their Keccak-256.
    pub fn of(elf: &[u8]) -> Self {
        Self(alloy::primitives::keccak256(elf).0)
    }

    /// Parses 64 hex digits, with or without a `0x` prefix, in either case.
    pub fn from_hex(s: &str) -> Result<Self, ProgramIdError> {
        let (prefix, digits) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(rest) => (2, rest),
            None => (0, s),
        };
        if digits.len() != 64 {
            return Err(ProgramIdError::WrongLength(digits.len()));
        }
        let mut out = [0u8; 32];
        for (i, c) in digits.bytes().enumerate() {
            let nibble = char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or(ProgramIdError::NotHex(prefix + i))?;
            let byte = out.get_mut(i / 2).ok_or(ProgramIdError::WrongLength(digits.len()))?;
            *byte = (*byte << 4) | nibble;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for ProgramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ProgramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ProgramId {
    type Err = ProgramIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl Serialize for ProgramId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ProgramId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            Self::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_id_is_keccak256_of_the_elf_bytes() {
        assert_eq!(
            ProgramId::of(b"").to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            ProgramId::of(b"abc").to_string(),
            "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
        );
    }

    #[test]
    fn isa_displays_and_serializes_in_lowercase() {
        assert_eq!((Isa::Rv32im.to_string(), Isa::Rv64im.to_string()), ("rv32im".into(), "rv64im".into()));
        assert_eq!(serde_json::to_string(&Isa::Rv64im).unwrap(), "\"rv64im\"");
        assert_eq!(serde_json::from_str::<Isa>("\"rv32im\"").unwrap(), Isa::Rv32im);
        assert!(serde_json::from_str::<Isa>("\"Rv32im\"").is_err());
    }

    #[test]
    fn program_id_round_trips_through_hex() {
        let id = ProgramId::of(b"abc");
        assert_eq!(format!("{id:?}"), id.to_string());
        assert_eq!(ProgramId::from_hex(&id.to_string()), Ok(id));
        assert_eq!(id.to_string()[2..].to_uppercase().parse::<ProgramId>(), Ok(id));
        assert_eq!(ProgramId::from_hex("0x12"), Err(ProgramIdError::WrongLength(2)));
        let bad = format!("0x{}g", "0".repeat(63));
        assert_eq!(ProgramId::from_hex(&bad), Err(ProgramIdError::NotHex(65)));
        assert!(ProgramId::from_hex(&"é".repeat(32)).is_err());
    }
}
