//! Job IDs.

use alloy::primitives::{keccak256, Address, B256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A job ID: `keccak256(abi.encodePacked(uint64 nonce, address consumer))`,
/// as the JobManager derives it.
///
/// Displays (and `Debug`s) as `0x` and 64 lowercase hex digits. Serializes
/// as that string in human-readable formats and as 32 raw bytes otherwise
/// (bincode, sled keys).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct JobId(pub [u8; 32]);

impl JobId {
    /// The ID of the consumer's job with this nonce: the 28-byte preimage is
    /// the nonce big-endian, then the address.
    pub fn of(nonce: u64, consumer: Address) -> JobId {
        let mut preimage = [0u8; 28];
        preimage[..8].copy_from_slice(&nonce.to_be_bytes());
        preimage[8..].copy_from_slice(consumer.as_slice());
        JobId(keccak256(preimage).0)
    }

    /// The ID as the bytes32 the contracts use.
    pub fn to_b256(self) -> B256 {
        B256::from(self.0)
    }
}

impl From<B256> for JobId {
    fn from(id: B256) -> Self {
        JobId(id.0)
    }
}

impl TryFrom<&[u8]> for JobId {
    type Error = usize;

    /// A job ID from exactly 32 bytes; the error is the length given.
    fn try_from(bytes: &[u8]) -> Result<Self, usize> {
        bytes.try_into().map(JobId).map_err(|_| bytes.len())
    }
}

impl AsRef<[u8]> for JobId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            let digits = text.strip_prefix("0x").ok_or_else(|| serde::de::Error::custom("job id must be 0x-hex"))?;
            let bytes = hex::decode(digits).map_err(serde::de::Error::custom)?;
            JobId::try_from(bytes.as_slice())
                .map_err(|len| serde::de::Error::custom(format!("job id must be 32 bytes, got {len}")))
        } else {
            <[u8; 32]>::deserialize(deserializer).map(JobId)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_is_keccak_of_the_packed_nonce_and_consumer() {
        let consumer = Address::repeat_byte(0xab);
        let mut packed = 7u64.to_be_bytes().to_vec();
        packed.extend_from_slice(consumer.as_slice());
        assert_eq!(JobId::of(7, consumer).0, keccak256(&packed).0);
        assert_ne!(JobId::of(7, consumer), JobId::of(8, consumer));
    }

    #[test]
    fn a_job_id_prints_as_hex_and_round_trips_through_json_and_bincode() {
        let id = JobId([0x1f; 32]);
        assert_eq!(id.to_string(), format!("0x{}", "1f".repeat(32)));
        assert_eq!(format!("{id:?}"), id.to_string());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<JobId>(&json).unwrap(), id);
        let bytes = bincode::serde::encode_to_vec(id, bincode::config::standard()).unwrap();
        assert_eq!(bytes, [0x1f; 32]);
        assert!(serde_json::from_str::<JobId>("\"0x1234\"").unwrap_err().to_string().contains("got 2"));
        assert_eq!(JobId::try_from(&[0u8; 31][..]), Err(31));
    }
}
