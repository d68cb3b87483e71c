//! InfinityVM's onchain structs (field order is ABI-significant), and job IDs.
//!
//! Encodings are Solidity `abi.encode(structValue)`: one dynamic tuple whose
//! first word is the 0x20 offset, as the JobManager decodes them.

use alloy::primitives::{keccak256, Address, Bytes, FixedBytes, B256};
use alloy::sol;

sol! {
    /// A job request signed offchain by the consumer's signer.
    #[derive(Debug, PartialEq, Eq)]
    struct OffchainJobRequest {
        uint64 nonce;
        uint64 maxCycles;
        address consumer;
        bytes programID;
        bytes onchainInput;
        bytes32 offchainInputHash;
    }

    /// The result of an onchain job, signed by the operator.
    #[derive(Debug, PartialEq, Eq)]
    struct ResultWithMetadata {
        bytes32 jobID;
        bytes32 onchainInputHash;
        uint64 maxCycles;
        bytes programID;
        bytes result;
    }

    /// The result of an offchain job, signed by the operator.
    #[derive(Debug, PartialEq, Eq)]
    struct OffchainResultWithMetadata {
        bytes32 jobID;
        bytes32 onchainInputHash;
        bytes32 offchainInputHash;
        uint64 maxCycles;
        bytes programID;
        bytes result;
        bytes32[] versionedBlobHashes;
    }
}

/// `keccak256(abi.encodePacked(uint64 nonce, address consumer))`: the
/// 28-byte preimage is the nonce big-endian, then the address.
pub fn job_id(nonce: u64, consumer: Address) -> B256 {
    let mut preimage = [0u8; 28];
    preimage[..8].copy_from_slice(&nonce.to_be_bytes());
    preimage[8..].copy_from_slice(consumer.as_slice());
    keccak256(preimage)
}

/// Builds the `ResultWithMetadata` of an offchain job's onchain twin or an
/// onchain job.
pub fn result_with_metadata(
    job_id: B256,
    onchain_input: &[u8],
    max_cycles: u64,
    program_id: &[u8],
    result: &[u8],
) -> ResultWithMetadata {
    ResultWithMetadata {
        jobID: job_id,
        onchainInputHash: keccak256(onchain_input),
        maxCycles: max_cycles,
        programID: Bytes::copy_from_slice(program_id),
        result: Bytes::copy_from_slice(result),
    }
}

/// Builds the `OffchainResultWithMetadata` of an offchain job (no blobs).
pub fn offchain_result_with_metadata(request: &OffchainJobRequest, result: &[u8]) -> OffchainResultWithMetadata {
    OffchainResultWithMetadata {
        jobID: job_id(request.nonce, request.consumer),
        onchainInputHash: keccak256(&request.onchainInput),
        offchainInputHash: request.offchainInputHash,
        maxCycles: request.maxCycles,
        programID: request.programID.clone(),
        result: Bytes::copy_from_slice(result),
        versionedBlobHashes: Vec::<FixedBytes<32>>::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::{SolType, SolValue};

    #[test]
    fn job_id_is_keccak_of_the_packed_nonce_and_consumer() {
        let consumer: Address = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf".parse().unwrap();
        let packed = (7u64, consumer).abi_encode_packed();
        assert_eq!(packed.len(), 28);
        assert_eq!(job_id(7, consumer), keccak256(&packed));
        assert_ne!(job_id(7, consumer), job_id(8, consumer));
    }

    #[test]
    fn struct_encoding_starts_with_the_tuple_offset() {
        let result = result_with_metadata(B256::repeat_byte(1), b"in", 100, b"prog", b"out");
        let encoded = <ResultWithMetadata as SolType>::abi_encode(&result);
        assert_eq!(encoded[..32], B256::with_last_byte(0x20)[..]);
        let decoded = <ResultWithMetadata as SolType>::abi_decode(&encoded).unwrap();
        assert_eq!(decoded, result);
        assert_eq!(decoded.onchainInputHash, keccak256(b"in"));
    }

    #[test]
    fn offchain_result_carries_the_request_fields_in_order() {
        let request = OffchainJobRequest {
            nonce: 3,
            maxCycles: 1_000,
            consumer: Address::repeat_byte(0xaa),
            programID: Bytes::from_static(b"program"),
            onchainInput: Bytes::from_static(b"on"),
            offchainInputHash: keccak256(b""),
        };
        let result = offchain_result_with_metadata(&request, b"out");
        assert_eq!(result.jobID, job_id(3, Address::repeat_byte(0xaa)));
        assert_eq!(result.offchainInputHash, keccak256(b""));
        let encoded = <OffchainResultWithMetadata as SolType>::abi_encode(&result);
        assert_eq!(<OffchainResultWithMetadata as SolType>::abi_decode(&encoded).unwrap(), result);
    }
}
