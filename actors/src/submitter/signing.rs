//! Signs a job's result: `abi.encode(ResultWithMetadata)` (or the offchain
//! variant, see `JobSpec::result_with_metadata`) signed EIP-191 by the
//! operator.

use crate::job::{JobOutcome, JobSpec};
use crate::protocol::eip191::Signer;
use crate::store::ResultRecord;

/// The result of an executed job, signed. A failed job is not signed: like
/// InfinityVM, the coprocessor relays only successful results.
pub(crate) fn sign_result(spec: &JobSpec, outcome: JobOutcome, operator: &Signer) -> ResultRecord {
    let (result_with_metadata, signature) = if outcome.is_done() {
        let bytes = spec.result_with_metadata(&outcome.output);
        let signature = operator.sign(&bytes).to_vec();
        (bytes, signature)
    } else {
        (Vec::new(), Vec::new())
    };
    ResultRecord {
        exit_code: outcome.exit_code,
        cycles: outcome.cycles,
        peak_memory_bytes: outcome.peak_memory_bytes,
        output: outcome.output,
        failure: outcome.failure,
        result_with_metadata,
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Failure, JobId, Origin};
    use crate::program::ProgramId;
    use crate::protocol::abi::{OffchainResultWithMetadata, ResultWithMetadata};
    use crate::protocol::eip191::recover;
    use alloy::primitives::Address;
    use alloy::primitives::{keccak256, B256};
    use alloy::sol_types::SolType;

    fn spec(origin: Origin) -> JobSpec {
        JobSpec {
            id: JobId([7; 32]),
            nonce: 1,
            consumer: Address::repeat_byte(9),
            program_id: ProgramId([3; 32]),
            max_cycles: 1000,
            max_memory_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            onchain_input: b"on".to_vec(),
            offchain_input: b"off".to_vec(),
            origin,
        }
    }

    fn outcome(failure: Option<Failure>) -> JobOutcome {
        JobOutcome {
            output: b"out".to_vec(),
            exit_code: Some(0),
            cycles: 42,
            peak_memory_bytes: 4096,
            failure,
            log: vec![],
        }
    }

    #[test]
    fn an_onchain_result_is_a_signed_result_with_metadata() {
        let operator = Signer::random();
        let record = sign_result(&spec(Origin::Onchain), outcome(None), &operator);
        let decoded = <ResultWithMetadata as SolType>::abi_decode(&record.result_with_metadata).unwrap();
        assert_eq!(decoded.jobID, B256::from([7; 32]));
        assert_eq!(decoded.onchainInputHash, keccak256(b"on"));
        assert_eq!(decoded.programID.as_ref(), &[3; 32]);
        assert_eq!(decoded.result.as_ref(), b"out");
        assert_eq!(recover(&record.result_with_metadata, &record.signature), Ok(operator.address()));
    }

    #[test]
    fn an_offchain_result_carries_the_offchain_input_hash() {
        let origin = Origin::Offchain {
            request: vec![],
            signature: vec![],
            offchain_input_hash: keccak256(b"off").0,
            ordered: false,
        };
        let record = sign_result(&spec(origin), outcome(None), &Signer::random());
        let decoded = <OffchainResultWithMetadata as SolType>::abi_decode(&record.result_with_metadata).unwrap();
        assert_eq!(decoded.offchainInputHash, keccak256(b"off"));
        assert_eq!(decoded.maxCycles, 1000);
    }

    #[test]
    fn a_failed_job_is_not_signed() {
        let failure = Some(Failure::GuestExit(3));
        let record = sign_result(&spec(Origin::Onchain), outcome(failure), &Signer::random());
        assert!(record.result_with_metadata.is_empty() && record.signature.is_empty());
        assert_eq!(record.status(), crate::job::Status::Failed);
    }
}
