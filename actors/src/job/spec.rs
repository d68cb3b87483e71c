//! Job specs: one constructor per origin, one limits check for both.

use super::{JobId, JobLimits};
use crate::config::Limits;
use crate::program::ProgramId;
use crate::protocol::abi::{OffchainJobRequest, OffchainResultWithMetadata, ResultWithMetadata};
use crate::protocol::bindings::IJobManager::JobCreated;
use alloy::primitives::{keccak256, Address, Bytes, B256};
use alloy::sol_types::SolValue;
use serde::{Deserialize, Serialize};

/// Where a job came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// A signed request over the socket. The request travels whole: the
    /// relayer settles with exactly the bytes the consumer's signer signed.
    Offchain {
        /// `abi.encode(OffchainJobRequest)`, as signed.
        request: Vec<u8>,
        /// The consumer signer's signature, 65 bytes `r ‖ s ‖ v`.
        signature: Vec<u8>,
        /// keccak256 of the offchain input, checked once at admission.
        offchain_input_hash: [u8; 32],
        /// Relay in nonce order (InfinityVM's `RelayStrategy::Ordered`).
        ordered: bool,
    },
    /// A `JobCreated` event.
    Onchain,
    /// A signed request over the socket whose offchain input goes onchain
    /// as EIP-4844 blobs with its result (`chain.offchain_input_da`); a
    /// variant of its own, after the others, so that records written
    /// before it decode as they were.
    OffchainInBlobs {
        /// `abi.encode(OffchainJobRequest)`, as signed.
        request: Vec<u8>,
        /// The consumer signer's signature.
        signature: Vec<u8>,
        /// keccak256 of the offchain input, checked once at admission.
        offchain_input_hash: [u8; 32],
        /// Relay in nonce order.
        ordered: bool,
        /// The versioned hashes of the blobs that carry the input
        /// ([`crate::protocol::blobs`]), signed in the result.
        blob_hashes: Vec<[u8; 32]>,
    },
}

/// An offchain job's origin, whichever variant holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffchainOrigin<'a> {
    /// `abi.encode(OffchainJobRequest)`, as signed.
    pub request: &'a [u8],
    /// The consumer signer's signature.
    pub signature: &'a [u8],
    /// keccak256 of the offchain input.
    pub offchain_input_hash: [u8; 32],
    /// Relay in nonce order.
    pub ordered: bool,
    /// The versioned hashes of the blobs that carry the input (none: it is
    /// not posted).
    pub blob_hashes: &'a [[u8; 32]],
}

impl Origin {
    /// The request and what came with it, for an offchain job.
    pub fn offchain(&self) -> Option<OffchainOrigin<'_>> {
        match self {
            Origin::Offchain { request, signature, offchain_input_hash, ordered } => Some(OffchainOrigin {
                request,
                signature,
                offchain_input_hash: *offchain_input_hash,
                ordered: *ordered,
                blob_hashes: &[],
            }),
            Origin::OffchainInBlobs { request, signature, offchain_input_hash, ordered, blob_hashes } => {
                Some(OffchainOrigin {
                    request,
                    signature,
                    offchain_input_hash: *offchain_input_hash,
                    ordered: *ordered,
                    blob_hashes,
                })
            }
            Origin::Onchain => None,
        }
    }
}

/// Everything needed to run (or re-run) a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job ID.
    pub id: JobId,
    /// The consumer's nonce.
    pub nonce: u64,
    /// The consumer contract.
    pub consumer: Address,
    /// The program to run.
    pub program_id: ProgramId,
    /// The cycle limit.
    pub max_cycles: u64,
    /// The memory limit the job runs with (recorded so replay is exact
    /// even if the configuration changes).
    pub max_memory_bytes: u64,
    /// The output limit the job runs with.
    pub max_output_bytes: u64,
    /// The onchain input.
    pub onchain_input: Vec<u8>,
    /// The offchain input (empty for onchain jobs).
    pub offchain_input: Vec<u8>,
    /// Where the job came from.
    pub origin: Origin,
}

/// Why a request or an event does not make a job. The messages are the
/// API's: they name the field and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// An input over `limits.max_input_bytes`.
    #[error("{which} input is {len} bytes, over the limit of {max}")]
    InputTooLarge {
        /// "onchain" or "offchain".
        which: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `maxCycles` over `limits.max_job_cycles`.
    #[error("maxCycles {requested} is over the limit of {max}")]
    TooManyCycles {
        /// What the job asks for.
        requested: u64,
        /// The limit.
        max: u64,
    },
    /// The program ID is not 32 bytes.
    #[error("programId must be 32 bytes, got {0}")]
    ProgramIdLength(usize),
    /// The request's `offchainInputHash` does not match the input sent.
    #[error("offchainInputHash is not keccak256 of offchainInput")]
    OffchainInputHash,
    /// A job another engine shared is not one this engine would take.
    #[error("a shared job {0}")]
    Shared(&'static str),
}

impl SpecError {
    /// Whether the job is refused for its size (the API's `too large`),
    /// rather than for a malformed field.
    pub fn is_too_large(&self) -> bool {
        matches!(self, SpecError::InputTooLarge { .. } | SpecError::TooManyCycles { .. })
    }
}

/// The one check both origins go through (and `coproc_call`'s dry runs).
pub(crate) fn check(limits: &Limits, onchain: usize, offchain: usize, max_cycles: u64) -> Result<(), SpecError> {
    for (which, len) in [("onchain", onchain), ("offchain", offchain)] {
        if len > limits.max_input_bytes {
            return Err(SpecError::InputTooLarge { which, len, max: limits.max_input_bytes });
        }
    }
    if max_cycles > limits.max_job_cycles {
        return Err(SpecError::TooManyCycles { requested: max_cycles, max: limits.max_job_cycles });
    }
    Ok(())
}

fn program_id(bytes: &[u8]) -> Result<ProgramId, SpecError> {
    bytes.try_into().map(ProgramId).map_err(|_| SpecError::ProgramIdLength(bytes.len()))
}

impl JobSpec {
    /// A job from a signed offchain request: `request` is the ABI bytes
    /// the signature covers, `decoded` the same request decoded. Checks
    /// sizes, then the offchain input's hash (the only time it is hashed).
    pub fn from_offchain(
        request: Vec<u8>,
        decoded: &OffchainJobRequest,
        offchain_input: Vec<u8>,
        signature: Vec<u8>,
        ordered: bool,
        limits: &Limits,
    ) -> Result<JobSpec, SpecError> {
        check(limits, decoded.onchainInput.len(), offchain_input.len(), decoded.maxCycles)?;
        let offchain_input_hash = keccak256(&offchain_input);
        if offchain_input_hash != decoded.offchainInputHash {
            return Err(SpecError::OffchainInputHash);
        }
        Ok(JobSpec {
            id: JobId::of(decoded.nonce, decoded.consumer),
            nonce: decoded.nonce,
            consumer: decoded.consumer,
            program_id: program_id(&decoded.programID)?,
            max_cycles: decoded.maxCycles,
            max_memory_bytes: limits.max_memory_bytes,
            max_output_bytes: limits.max_output_bytes as u64,
            onchain_input: decoded.onchainInput.to_vec(),
            offchain_input,
            origin: Origin::Offchain { request, signature, offchain_input_hash: offchain_input_hash.0, ordered },
        })
    }

    /// A job from a JobManager `JobCreated` event.
    pub fn from_event(event: &JobCreated, limits: &Limits) -> Result<JobSpec, SpecError> {
        check(limits, event.onchainInput.len(), 0, event.maxCycles)?;
        Ok(JobSpec {
            id: JobId::from(event.jobID),
            nonce: event.nonce,
            consumer: event.consumer,
            program_id: program_id(&event.programID)?,
            max_cycles: event.maxCycles,
            max_memory_bytes: limits.max_memory_bytes,
            max_output_bytes: limits.max_output_bytes as u64,
            onchain_input: event.onchainInput.to_vec(),
            offchain_input: Vec::new(),
            origin: Origin::Onchain,
        })
    }

    /// Checks a job another engine of the cluster shared, against this
    /// engine's limits: the sizes and cycles admission checks, memory and
    /// output limits no larger than this engine's, an ID that is its nonce
    /// and consumer's, and an offchain input that hashes as its request says.
    pub fn check_shared(&self, limits: &Limits) -> Result<(), SpecError> {
        check(limits, self.onchain_input.len(), self.offchain_input.len(), self.max_cycles)?;
        if self.max_memory_bytes > limits.max_memory_bytes || self.max_output_bytes > limits.max_output_bytes as u64 {
            return Err(SpecError::Shared("asks for more memory or output than limits allow"));
        }
        if let Some(offchain) = self.origin.offchain() {
            if self.id != JobId::of(self.nonce, self.consumer) {
                return Err(SpecError::Shared("whose ID is not its nonce and consumer's"));
            }
            if keccak256(&self.offchain_input).0 != offchain.offchain_input_hash {
                return Err(SpecError::OffchainInputHash);
            }
        }
        Ok(())
    }

    /// The VM limits of this job.
    pub fn limits(&self) -> JobLimits {
        JobLimits {
            max_cycles: self.max_cycles,
            max_memory_bytes: self.max_memory_bytes,
            max_output_bytes: usize::try_from(self.max_output_bytes).unwrap_or(usize::MAX),
        }
    }

    /// Input bytes the job holds in memory.
    pub fn input_bytes(&self) -> usize {
        self.onchain_input.len() + self.offchain_input.len()
    }

    /// keccak256 of the offchain input: from the request for an offchain
    /// job (checked at admission), of the empty input otherwise.
    pub fn offchain_input_hash(&self) -> [u8; 32] {
        match self.origin.offchain() {
            Some(offchain) => offchain.offchain_input_hash,
            None => keccak256(&self.offchain_input).0,
        }
    }

    /// What the operator signs for this job's `output`:
    /// `abi.encode(ResultWithMetadata)` for an onchain job, the offchain
    /// variant (with the hashes of the blobs that carry its input, if any)
    /// for an offchain one. Deterministic, so the store rebuilds it rather
    /// than keeping it.
    pub fn result_with_metadata(&self, output: &[u8]) -> Vec<u8> {
        let program_id = Bytes::copy_from_slice(&self.program_id.0);
        let result = Bytes::copy_from_slice(output);
        match self.origin.offchain() {
            None => ResultWithMetadata {
                jobID: self.id.to_b256(),
                onchainInputHash: keccak256(&self.onchain_input),
                maxCycles: self.max_cycles,
                programID: program_id,
                result,
            }
            .abi_encode(),
            Some(offchain) => OffchainResultWithMetadata {
                jobID: self.id.to_b256(),
                onchainInputHash: keccak256(&self.onchain_input),
                offchainInputHash: B256::from(offchain.offchain_input_hash),
                maxCycles: self.max_cycles,
                programID: program_id,
                result,
                versionedBlobHashes: offchain.blob_hashes.iter().map(|hash| B256::from(*hash)).collect(),
            }
            .abi_encode(),
        }
    }

    /// Whether its result is relayed in the consumer's nonce order.
    pub fn is_ordered(&self) -> bool {
        self.origin.offchain().is_some_and(|offchain| offchain.ordered)
    }

    /// The versioned hashes of the blobs that carry its offchain input to
    /// the chain with its result (none: the input is not posted).
    pub fn blob_hashes(&self) -> &[[u8; 32]] {
        self.origin.offchain().map_or(&[], |offchain| offchain.blob_hashes)
    }

    /// This offchain job with its input posted as blobs whose versioned
    /// hashes are `blob_hashes` (none: as it was).
    pub fn posting_blobs(mut self, blob_hashes: Vec<[u8; 32]>) -> JobSpec {
        if blob_hashes.is_empty() {
            return self;
        }
        if let Origin::Offchain { request, signature, offchain_input_hash, ordered } = self.origin {
            self.origin = Origin::OffchainInBlobs { request, signature, offchain_input_hash, ordered, blob_hashes };
        }
        self
    }
}

/// A job spec for tests: consumer 0x0101…01, program 0x0202…02, an onchain
/// input of `input_bytes` bytes.
#[cfg(test)]
pub(crate) fn test_spec(nonce: u64, input_bytes: usize) -> JobSpec {
    let consumer = Address::repeat_byte(1);
    JobSpec {
        id: JobId::of(nonce, consumer),
        nonce,
        consumer,
        program_id: ProgramId([2; 32]),
        max_cycles: 100,
        max_memory_bytes: 1 << 20,
        max_output_bytes: 1 << 20,
        onchain_input: vec![nonce as u8; input_bytes],
        offchain_input: vec![],
        origin: Origin::Onchain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_input_bytes: 8, max_job_cycles: 1000, ..Limits::default() }
    }

    fn request(onchain: &[u8], offchain: &[u8], max_cycles: u64) -> OffchainJobRequest {
        OffchainJobRequest {
            nonce: 3,
            maxCycles: max_cycles,
            consumer: Address::repeat_byte(9),
            programID: Bytes::from(vec![4; 32]),
            onchainInput: Bytes::copy_from_slice(onchain),
            offchainInputHash: keccak256(offchain),
        }
    }

    fn offchain(decoded: &OffchainJobRequest, offchain_input: &[u8]) -> Result<JobSpec, SpecError> {
        JobSpec::from_offchain(decoded.abi_encode(), decoded, offchain_input.to_vec(), vec![7; 65], true, &limits())
    }

    #[test]
    fn an_offchain_request_keeps_its_signed_bytes_and_its_input_hash() {
        let decoded = request(b"on", b"off", 500);
        let spec = offchain(&decoded, b"off").unwrap();
        assert_eq!(spec.id, JobId::of(3, Address::repeat_byte(9)));
        assert_eq!((spec.program_id, spec.max_cycles), (ProgramId([4; 32]), 500));
        assert_eq!(spec.offchain_input_hash(), keccak256(b"off").0);
        assert!(spec.is_ordered());
        let Origin::Offchain { request, .. } = &spec.origin else { panic!("{:?}", spec.origin) };
        assert_eq!(request, &decoded.abi_encode());
    }

    #[test]
    fn both_origins_share_one_limits_check() {
        let too_long = request(&[0; 9], b"", 500);
        let expected = SpecError::InputTooLarge { which: "onchain", len: 9, max: 8 };
        assert_eq!(offchain(&too_long, b"").unwrap_err(), expected);
        let event = JobCreated {
            jobID: B256::repeat_byte(1),
            nonce: 1,
            consumer: Address::repeat_byte(9),
            maxCycles: 500,
            programID: Bytes::from(vec![4; 32]),
            onchainInput: Bytes::from(vec![0; 9]),
        };
        assert_eq!(JobSpec::from_event(&event, &limits()).unwrap_err(), expected);
        assert_eq!(expected.to_string(), "onchain input is 9 bytes, over the limit of 8");

        let greedy = JobCreated { maxCycles: 1001, onchainInput: Bytes::new(), ..event.clone() };
        let err = JobSpec::from_event(&greedy, &limits()).unwrap_err();
        assert_eq!(err.to_string(), "maxCycles 1001 is over the limit of 1000");
        assert_eq!(offchain(&request(b"", b"", 1001), b"").unwrap_err(), err);
        assert!(err.is_too_large());
    }

    #[test]
    fn a_malformed_request_is_refused_with_the_field_it_got_wrong() {
        let big_offchain = request(b"", &[0; 9], 5);
        assert_eq!(
            offchain(&big_offchain, &[0; 9]).unwrap_err().to_string(),
            "offchain input is 9 bytes, over the limit of 8"
        );
        assert_eq!(offchain(&request(b"", b"off", 5), b"OFF").unwrap_err(), SpecError::OffchainInputHash);
        let short_program = OffchainJobRequest { programID: Bytes::from(vec![4; 31]), ..request(b"", b"", 5) };
        assert_eq!(offchain(&short_program, b"").unwrap_err(), SpecError::ProgramIdLength(31));
    }

    #[test]
    fn an_onchain_job_is_named_by_its_event() {
        let event = JobCreated {
            jobID: B256::repeat_byte(5),
            nonce: 2,
            consumer: Address::repeat_byte(9),
            maxCycles: 100,
            programID: Bytes::from(vec![4; 32]),
            onchainInput: Bytes::from_static(b"in"),
        };
        let spec = JobSpec::from_event(&event, &limits()).unwrap();
        assert_eq!((spec.id, spec.nonce, spec.origin.clone()), (JobId([5; 32]), 2, Origin::Onchain));
        assert_eq!(spec.offchain_input_hash(), keccak256(b"").0);
        assert_eq!(spec.limits().max_cycles, 100);
    }
}
