//! Building signed offchain job requests, as a consumer's signer does.

use alloy::primitives::{keccak256, Address, Bytes};
use alloy::sol_types::SolValue;
use coprocessor_actors::job::JobId;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::abi::OffchainJobRequest;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{HexBytes, RelayStrategy, SubmitJob};

/// An offchain job before signing.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The consumer's nonce.
    pub nonce: u64,
    /// The cycle limit.
    pub max_cycles: u64,
    /// The consumer contract.
    pub consumer: Address,
    /// The program.
    pub program_id: ProgramId,
    /// The onchain input.
    pub onchain_input: Vec<u8>,
    /// The offchain input.
    pub offchain_input: Vec<u8>,
}

impl JobRequest {
    /// The job's ID.
    pub fn job_id(&self) -> JobId {
        JobId::of(self.nonce, self.consumer)
    }

    /// `abi.encode(OffchainJobRequest)`.
    pub fn abi_encode(&self) -> Vec<u8> {
        OffchainJobRequest {
            nonce: self.nonce,
            maxCycles: self.max_cycles,
            consumer: self.consumer,
            programID: Bytes::copy_from_slice(&self.program_id.0),
            onchainInput: Bytes::copy_from_slice(&self.onchain_input),
            offchainInputHash: keccak256(&self.offchain_input),
        }
        .abi_encode()
    }

    /// The `coproc_submitJob` params, signed EIP-191 by `signer`.
    pub fn sign(&self, signer: &Signer) -> SubmitJob {
        let request = self.abi_encode();
        let signature = signer.sign(&request);
        SubmitJob {
            request: HexBytes(request),
            signature: HexBytes(signature.to_vec()),
            offchain_input: HexBytes(self.offchain_input.clone()),
            wait: false,
            relay_strategy: RelayStrategy::Unordered,
        }
    }
}
