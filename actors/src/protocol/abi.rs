//! InfinityVM's onchain structs (field order is ABI-significant).
//!
//! Encodings are Solidity `abi.encode(structValue)`: one dynamic tuple whose
//! first word is the 0x20 offset, as the JobManager decodes them.

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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{keccak256, Bytes, B256};
    use alloy::sol_types::SolType;

    #[test]
    fn struct_encoding_starts_with_the_tuple_offset() {
        let result = ResultWithMetadata {
            jobID: B256::repeat_byte(1),
            onchainInputHash: keccak256(b"in"),
            maxCycles: 100,
            programID: Bytes::from_static(b"prog"),
            result: Bytes::from_static(b"out"),
        };
        let encoded = <ResultWithMetadata as SolType>::abi_encode(&result);
        assert_eq!(encoded[..32], B256::with_last_byte(0x20)[..]);
        assert_eq!(<ResultWithMetadata as SolType>::abi_decode(&encoded).unwrap(), result);
    }

    #[test]
    fn an_offchain_result_round_trips_with_its_fields_in_order() {
        let result = OffchainResultWithMetadata {
            jobID: B256::repeat_byte(2),
            onchainInputHash: keccak256(b"on"),
            offchainInputHash: keccak256(b""),
            maxCycles: 1_000,
            programID: Bytes::from_static(b"program"),
            result: Bytes::from_static(b"out"),
            versionedBlobHashes: vec![B256::repeat_byte(3)],
        };
        let encoded = <OffchainResultWithMetadata as SolType>::abi_encode(&result);
        assert_eq!(<OffchainResultWithMetadata as SolType>::abi_decode(&encoded).unwrap(), result);
    }
}
