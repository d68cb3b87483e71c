//! The offchain-request checks of many requests at once: one
//! `checkOffchainRequests` view call, or JSON-RPC batches of `eth_call`s
//! (many read-only calls in one HTTP request, each with its own answer) on
//! a JobManager without it.
//!
//! A node answers a batch with one response per call, so one call that
//! reverts fails only itself; a transport failure (no connection, no answer
//! before the deadline) fails the whole batch. Geth refuses batches of more
//! than 1000 calls by default: callers keep theirs well under that.

use super::{Chain, ChainError, EIP1271_MAGIC_VALUE};
use crate::protocol::bindings::{IBatchSettlement, IJobManager, OffchainRequester};
use alloy::eips::BlockId;
use alloy::network::{Ethereum, TransactionBuilder};
use alloy::primitives::{Address, Bytes, FixedBytes, B256};
use alloy::providers::{EthCallParams, Provider};
use alloy::rpc::client::BatchRequest;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;

/// One read-only contract call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContractCall {
    /// The contract.
    pub(crate) to: Address,
    /// The ABI-encoded call.
    pub(crate) input: Bytes,
}

impl ContractCall {
    /// `call` to `to`.
    pub(crate) fn new<C: SolCall>(to: Address, call: &C) -> ContractCall {
        ContractCall { to, input: call.abi_encode().into() }
    }

    /// The `eth_call` parameters, as a contract binding's `.call()` sends
    /// them: the transaction, then the latest block.
    fn params(&self) -> EthCallParams<Ethereum> {
        let tx = TransactionRequest::default().with_to(self.to).with_input(self.input.clone());
        EthCallParams::new(tx).with_block(BlockId::latest())
    }
}

/// What the chain is asked about one offchain job request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffchainCheck {
    /// The consumer, whose `isValidSignature` decides.
    pub(crate) consumer: Address,
    /// The request's EIP-191 digest.
    pub(crate) digest: B256,
    /// The request's signature.
    pub(crate) signature: Bytes,
    /// The job ID (nonce and consumer), which must be unused onchain.
    pub(crate) job_id: B256,
}

/// The chain's two answers about one offchain job request, decoded as a
/// contract binding's `.call()` decodes them (see [`accepted`]; `state` is
/// what [`Chain::job_states`] reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffchainAnswer {
    /// Whether the consumer accepts the signature.
    pub(crate) accepted: Result<bool, ChainError>,
    /// The job's onchain state ([`super::job_state`]).
    pub(crate) state: Result<u8, ChainError>,
}

impl Chain {
    /// Sends `calls` as one JSON-RPC batch of `eth_call`s at the latest
    /// block, within the deadline: one answer per call, in order (the
    /// returned data, or why that call failed), or the error that failed
    /// the whole batch. No calls, no request.
    pub(crate) async fn call_batch(
        &self,
        calls: &[ContractCall],
    ) -> Result<Vec<Result<Bytes, ChainError>>, ChainError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = BatchRequest::new(self.provider.client());
        let mut waiters = Vec::with_capacity(calls.len());
        for call in calls {
            waiters.push(batch.add_call::<_, Bytes>("eth_call", &call.params()).map_err(ChainError::from_rpc)?);
        }
        self.rpc(batch.send()).await?;
        // The batch is in: every waiter has its answer (a response missing
        // from the node's reply is an error for that call alone).
        let mut answers = Vec::with_capacity(waiters.len());
        for waiter in waiters {
            answers.push(waiter.await.map_err(ChainError::from_rpc));
        }
        Ok(answers)
    }

    /// The onchain checks of offchain job requests: one answer per check,
    /// in order. One `checkOffchainRequests` call asks the JobManager for
    /// all of them (it asks each consumer's `isValidSignature` exactly as
    /// settlement will); on a JobManager without it, or when that call
    /// fails (a consumer's check used up its gas, say), two calls per check
    /// (`isValidSignature` on the consumer, `getJobMetadata` on the
    /// JobManager) go in one JSON-RPC batch, each answered on its own.
    pub(crate) async fn offchain_checks(&self, checks: &[OffchainCheck]) -> Result<Vec<OffchainAnswer>, ChainError> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        match self.offchain_checks_in_one_call(checks).await {
            Ok(answers) => return Ok(answers),
            Err(err) if err.is_transient() => return Err(err),
            Err(_) => {}
        }
        let calls = offchain_calls(self.job_manager, checks);
        let answers = self.call_batch(&calls).await?;
        Ok(offchain_answers(answers))
    }

    /// The onchain state of each job ([`super::job_state`]), in order:
    /// `getJobStatuses` for up to 500 at a time, or, on a JobManager without
    /// it, a JSON-RPC batch of one `getJobMetadata` each.
    pub(crate) async fn job_states(&self, ids: &[B256]) -> Result<Vec<u8>, ChainError> {
        let manager = IBatchSettlement::new(self.job_manager, &self.provider);
        let mut states = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            match self.contract(manager.getJobStatuses(chunk.to_vec()).call()).await {
                Ok(answer) if answer.len() == chunk.len() => states.extend(answer),
                Err(err) if err.is_transient() => return Err(err),
                _ => {
                    let calls: Vec<ContractCall> = chunk
                        .iter()
                        .map(|id| ContractCall::new(self.job_manager, &IJobManager::getJobMetadataCall { jobID: *id }))
                        .collect();
                    for answer in self.call_batch(&calls).await? {
                        let metadata =
                            answer.and_then(|data| decode_returns::<IJobManager::getJobMetadataCall>(&data))?;
                        states.push(metadata.status);
                    }
                }
            }
        }
        Ok(states)
    }

    /// All the checks in one `checkOffchainRequests` call.
    async fn offchain_checks_in_one_call(&self, checks: &[OffchainCheck]) -> Result<Vec<OffchainAnswer>, ChainError> {
        let manager = IBatchSettlement::new(self.job_manager, &self.provider);
        let asked = checks
            .iter()
            .map(|check| IBatchSettlement::OffchainCheck {
                consumer: check.consumer,
                digest: check.digest,
                signature: check.signature.clone(),
                jobID: check.job_id,
            })
            .collect();
        let answer = self.contract(manager.checkOffchainRequests(asked).call()).await?;
        if answer.accepted.len() != checks.len() || answer.statuses.len() != checks.len() {
            return Err(ChainError::BadAnswer(format!(
                "checkOffchainRequests answered {} and {} for {} requests",
                answer.accepted.len(),
                answer.statuses.len(),
                checks.len()
            )));
        }
        Ok(answer
            .accepted
            .into_iter()
            .zip(answer.statuses)
            .map(|(accepted, state)| OffchainAnswer { accepted: Ok(accepted), state: Ok(state) })
            .collect())
    }
}

/// The two calls of each check, in order.
pub(crate) fn offchain_calls(job_manager: Address, checks: &[OffchainCheck]) -> Vec<ContractCall> {
    let mut calls = Vec::with_capacity(checks.len() * 2);
    for check in checks {
        let signature =
            OffchainRequester::isValidSignatureCall { hash: check.digest, signature: check.signature.clone() };
        calls.push(ContractCall::new(check.consumer, &signature));
        calls.push(ContractCall::new(job_manager, &IJobManager::getJobMetadataCall { jobID: check.job_id }));
    }
    calls
}

/// Pairs the answers of [`offchain_calls`] back into one answer per check.
/// An odd answer out (which [`Chain::call_batch`] never gives) is dropped.
pub(crate) fn offchain_answers(answers: Vec<Result<Bytes, ChainError>>) -> Vec<OffchainAnswer> {
    let mut answers = answers.into_iter();
    let mut checks = Vec::with_capacity(answers.len() / 2);
    while let (Some(signature), Some(metadata)) = (answers.next(), answers.next()) {
        checks.push(OffchainAnswer {
            accepted: accepted(
                signature.and_then(|data| decode_returns::<OffchainRequester::isValidSignatureCall>(&data)),
            ),
            state: metadata
                .and_then(|data| decode_returns::<IJobManager::getJobMetadataCall>(&data))
                .map(|metadata| metadata.status),
        });
    }
    checks
}

/// Decodes a call's returned data as a contract binding's `.call()` does,
/// with the same errors.
pub(crate) fn decode_returns<C: SolCall>(data: &[u8]) -> Result<C::Return, ChainError> {
    C::abi_decode_returns(data).map_err(|err| {
        let err = if data.is_empty() {
            let name = C::SIGNATURE.split('(').next().unwrap_or(C::SIGNATURE);
            alloy::contract::Error::ZeroData(name.to_owned(), err.into())
        } else {
            alloy::contract::Error::from(err)
        };
        ChainError::from_contract(err)
    })
}

/// `isValidSignature`'s answer: accepted only with EIP-1271's magic value.
/// A consumer that reverts, or answers something that does not decode, does
/// not accept; an unreachable node is an error.
pub(crate) fn accepted(answer: Result<FixedBytes<4>, ChainError>) -> Result<bool, ChainError> {
    match answer {
        Ok(magic) => Ok(magic.0 == EIP1271_MAGIC_VALUE),
        Err(ChainError::Refused(_) | ChainError::BadAnswer(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::job_state;
    use alloy::sol_types::SolValue;

    fn metadata(status: u8) -> Bytes {
        let metadata = IJobManager::JobMetadata {
            programID: Bytes::from_static(b"program"),
            maxCycles: 1_000_000,
            consumer: Address::repeat_byte(7),
            status,
        };
        metadata.abi_encode().into()
    }

    fn check(n: u8) -> OffchainCheck {
        OffchainCheck {
            consumer: Address::repeat_byte(n),
            digest: B256::repeat_byte(n),
            signature: Bytes::from(vec![n; 65]),
            job_id: B256::repeat_byte(n + 100),
        }
    }

    #[test]
    fn each_check_is_a_signature_call_to_its_consumer_then_a_metadata_call_to_the_job_manager() {
        let manager = Address::repeat_byte(0xAA);
        let calls = offchain_calls(manager, &[check(1), check(2)]);
        let to: Vec<Address> = calls.iter().map(|c| c.to).collect();
        assert_eq!(to, [Address::repeat_byte(1), manager, Address::repeat_byte(2), manager]);
        let signature = OffchainRequester::isValidSignatureCall::abi_decode(&calls[2].input).unwrap();
        assert_eq!((signature.hash, signature.signature), (B256::repeat_byte(2), Bytes::from(vec![2; 65])));
        let metadata = IJobManager::getJobMetadataCall::abi_decode(&calls[3].input).unwrap();
        assert_eq!(metadata.jobID, B256::repeat_byte(102));
    }

    #[test]
    fn answers_pair_back_per_check_and_one_bad_answer_fails_only_its_own() {
        let magic = Bytes::from(FixedBytes::<4>::from(EIP1271_MAGIC_VALUE).abi_encode());
        let other = Bytes::from(FixedBytes::<4>::from([0xff, 0xff, 0xff, 0xff]).abi_encode());
        let unreachable = ChainError::Unreachable("missing batch response".into());
        let answers = offchain_answers(vec![
            // Accepted, unused.
            Ok(magic.clone()),
            Ok(metadata(job_state::NONE)),
            // Another magic value: not accepted; the job is completed.
            Ok(other),
            Ok(metadata(job_state::COMPLETED)),
            // A revert: not accepted; the metadata does not decode.
            Err(ChainError::Refused("execution reverted".into())),
            Ok(Bytes::from_static(&[1, 2, 3])),
            // No data (not a contract): not accepted; the node lost the metadata call.
            Ok(Bytes::new()),
            Err(unreachable.clone()),
            // The node lost the signature call: an error, not a refusal.
            Err(unreachable.clone()),
            Ok(metadata(job_state::PENDING)),
        ]);
        let accepted: Vec<_> = answers.iter().map(|a| a.accepted.clone()).collect();
        assert_eq!(accepted, [Ok(true), Ok(false), Ok(false), Ok(false), Err(unreachable.clone())]);
        assert_eq!(answers[0].state, Ok(job_state::NONE));
        assert_eq!(answers[1].state, Ok(job_state::COMPLETED));
        assert!(matches!(&answers[2].state, Err(ChainError::BadAnswer(_))), "{:?}", answers[2].state);
        assert_eq!(answers[3].state, Err(unreachable));
        assert_eq!(answers[4].state, Ok(job_state::PENDING));
    }

    #[test]
    fn decoding_fails_as_a_contract_binding_does() {
        assert_eq!(
            decode_returns::<IJobManager::getJobMetadataCall>(&[]).map(|m| m.status),
            Err(ChainError::BadAnswer(
                "contract call to `getJobMetadata` returned no data (\"0x\"); the called address might not be a contract"
                    .into()
            ))
        );
        assert!(matches!(decode_returns::<IJobManager::getJobMetadataCall>(&[0; 3]), Err(ChainError::BadAnswer(_))));
        assert_eq!(decode_returns::<IJobManager::getJobMetadataCall>(&metadata(2)).map(|m| m.status), Ok(2));
    }

    #[test]
    fn an_odd_answer_out_is_dropped() {
        assert_eq!(offchain_answers(vec![Ok(Bytes::new())]), []);
    }
}
