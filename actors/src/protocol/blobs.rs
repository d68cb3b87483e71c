//! Offchain inputs as EIP-4844 blob data, as InfinityVM's node posts them:
//! the input is lz4-compressed (`compress_prepend_size`: its length, then
//! the block), packed by alloy's `SimpleCoder` (a word with the length,
//! then 31 bytes per field element) into as many blobs as that takes, and
//! the operator signs the blobs' versioned hashes in
//! `OffchainResultWithMetadata.versionedBlobHashes`; the JobManager checks
//! them against `blobhash(i)` and records them (`jobIDToBlobhashes`).
//!
//! Everything here is deterministic: the same input gives the same blobs,
//! so the engine signs their hashes when it signs the result and builds
//! the sidecar (with its KZG proofs) again when it sends the result.

use alloy::eips::eip4844::builder::{SidecarBuilder, SidecarCoder, SimpleCoder};
use alloy::eips::eip4844::{Blob, BlobTransactionSidecar, FIELD_ELEMENTS_PER_BLOB};
use alloy::primitives::B256;

/// The most blobs one job's input may take (and one transaction may carry
/// under Cancun's rules), as in InfinityVM.
pub const MAX_BLOBS_PER_JOB: usize = 6;

/// Why an input cannot be blob data.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    /// Compressed, it takes more blobs than allowed.
    #[error(
        "the offchain input takes {blobs} blobs compressed ({compressed} bytes), more than the {limit} allowed per job"
    )]
    TooLarge {
        /// The blobs it would take.
        blobs: usize,
        /// Its compressed size.
        compressed: usize,
        /// The limit.
        limit: usize,
    },
    /// Computing the KZG commitments or proofs failed.
    #[error("KZG: {0}")]
    Kzg(String),
    /// The blobs do not decode to an input.
    #[error("the blobs do not hold an offchain input: {0}")]
    Undecodable(String),
}

/// What an offchain input takes as blob data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobData {
    /// The compressed input, as packed into the blobs.
    pub compressed: Vec<u8>,
    /// How many blobs that takes (0 for an empty input: no blobs at all).
    pub blobs: usize,
}

/// The blob data of `input`, refused if it takes more than `limit` blobs.
pub fn blob_data(input: &[u8], limit: usize) -> Result<BlobData, BlobError> {
    if input.is_empty() {
        return Ok(BlobData { compressed: Vec::new(), blobs: 0 });
    }
    let compressed = lz4_flex::compress_prepend_size(input);
    let blobs = SimpleCoder::default().required_fe(&compressed).div_ceil(FIELD_ELEMENTS_PER_BLOB as usize);
    if blobs > limit {
        return Err(BlobError::TooLarge { blobs, compressed: compressed.len(), limit });
    }
    Ok(BlobData { compressed, blobs })
}

/// The sidecar that carries `data` (blobs, KZG commitments and proofs);
/// `None` for an empty input.
pub fn sidecar(data: &BlobData) -> Result<Option<BlobTransactionSidecar>, BlobError> {
    if data.blobs == 0 {
        return Ok(None);
    }
    SidecarBuilder::<SimpleCoder>::from_slice(&data.compressed)
        .build_4844()
        .map(Some)
        .map_err(|err| BlobError::Kzg(err.to_string()))
}

/// The versioned hashes the operator signs for `input` (empty for an empty
/// input), refused if it takes more than `limit` blobs.
pub fn versioned_hashes(input: &[u8], limit: usize) -> Result<Vec<B256>, BlobError> {
    let data = blob_data(input, limit)?;
    Ok(sidecar(&data)?.map(|sidecar| sidecar.versioned_hashes().collect()).unwrap_or_default())
}

/// The offchain input `blobs` carry, at most `max_bytes` of it (what a
/// reader of the chain does to get an input back).
pub fn decode(blobs: &[Blob], max_bytes: usize) -> Result<Vec<u8>, BlobError> {
    let undecodable = |why: &str| BlobError::Undecodable(why.to_owned());
    let mut pieces = SimpleCoder::default().decode_all(blobs).ok_or_else(|| undecodable("not SimpleCoder data"))?;
    if pieces.len() != 1 {
        return Err(undecodable(&format!("{} pieces of data, not one", pieces.len())));
    }
    let compressed = pieces.remove(0);
    let size = compressed.get(..4).ok_or_else(|| undecodable("no length prefix"))?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
    if size > max_bytes {
        return Err(undecodable(&format!("it says {size} bytes, more than {max_bytes}")));
    }
    lz4_flex::decompress_size_prepended(&compressed).map_err(|err| undecodable(&err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that do not compress much (a xorshift stream).
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn an_input_goes_through_its_blobs_and_comes_back_the_same() {
        for input in [b"x".to_vec(), vec![7; 100 * 1024], noise(100 * 1024)] {
            let data = blob_data(&input, MAX_BLOBS_PER_JOB).unwrap();
            let sidecar = sidecar(&data).unwrap().expect("blobs");
            assert_eq!(sidecar.blobs.len(), data.blobs);
            assert_eq!(decode(&sidecar.blobs, input.len()).unwrap(), input);
            // The hashes signed are the sidecar's, and the same every time.
            let hashes: Vec<B256> = sidecar.versioned_hashes().collect();
            assert_eq!(versioned_hashes(&input, MAX_BLOBS_PER_JOB).unwrap(), hashes);
            assert!(hashes.iter().all(|hash| hash[0] == 0x01), "version 1 (KZG)");
        }
        // 100 KiB of noise takes one blob; of one byte value, much less.
        assert_eq!(blob_data(&noise(100 * 1024), 6).unwrap().blobs, 1);
        assert!(blob_data(&vec![7; 100 * 1024], 6).unwrap().compressed.len() < 1024);
    }

    #[test]
    fn an_empty_input_takes_no_blobs() {
        assert_eq!(blob_data(&[], 0).unwrap(), BlobData { compressed: Vec::new(), blobs: 0 });
        assert_eq!(versioned_hashes(&[], 0).unwrap(), Vec::<B256>::new());
    }

    #[test]
    fn an_input_over_the_limit_is_refused_with_its_size() {
        // A blob carries 4096 field elements of 31 bytes, less one for the
        // length: 126,945 bytes of compressed data.
        let per_blob = FIELD_ELEMENTS_PER_BLOB as usize * 31 - 31;
        let two = noise(per_blob + 10);
        let err = blob_data(&two, 1).unwrap_err();
        let BlobError::TooLarge { blobs, compressed, limit } = err.clone() else { panic!("{err}") };
        assert_eq!((blobs, limit), (2, 1));
        assert!(compressed > per_blob, "{compressed}");
        assert_eq!(
            err.to_string(),
            format!(
                "the offchain input takes 2 blobs compressed ({compressed} bytes), more than the 1 allowed per job"
            )
        );
        assert_eq!(blob_data(&two, 2).unwrap().blobs, 2);
    }

    #[test]
    fn blobs_that_hold_no_input_are_refused() {
        let data = blob_data(&noise(1000), 6).unwrap();
        let blobs = sidecar(&data).unwrap().expect("blobs").blobs;
        assert_eq!(
            decode(&blobs, 999).unwrap_err(),
            BlobError::Undecodable("it says 1000 bytes, more than 999".to_owned())
        );
        assert!(matches!(decode(&[Blob::ZERO], 1 << 20), Err(BlobError::Undecodable(_))));
    }
}
