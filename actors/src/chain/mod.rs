//! Chain I/O shared by the relayer, the listener and the socket API's
//! onchain checks. The contracts' types are in `protocol::bindings`.
//!
//! - [`Chain`]: a node connection where every call has a deadline and
//!   every failure is classified, so callers know whether to back off
//!   (the node is unreachable) or give up (the node said no).
//! - `batch`: many `eth_call`s in one JSON-RPC batch, and the onchain
//!   checks of offchain job requests built on it.

mod batch;

pub(crate) use batch::{OffchainAnswer, OffchainCheck};

use crate::config;
use crate::protocol::bindings::Consumer;
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::transports::{RpcError, TransportErrorKind};
use std::future::IntoFuture;
use std::time::Duration;

/// EIP-1271's "valid signature" answer.
pub(crate) const EIP1271_MAGIC_VALUE: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// InfinityVM's job states (`IJobManager.sol` constants; 0 = no job).
pub mod job_state {
    /// No such job onchain.
    pub const NONE: u8 = 0;
    /// Created, waiting for its result.
    pub const PENDING: u8 = 1;
    /// Cancelled by its consumer or the owner.
    pub const CANCELLED: u8 = 2;
    /// Its result was accepted.
    pub const COMPLETED: u8 = 3;
}

/// Why a chain call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No answer in time, or no connection: back off and try again.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// The node answered with an error (a revert, a rejected transaction).
    #[error("node refused: {0}")]
    Refused(String),
    /// The answer did not decode.
    #[error("bad answer from the node: {0}")]
    BadAnswer(String),
    /// The configuration names something unusable.
    #[error("chain config: {0}")]
    Config(String),
}

impl ChainError {
    /// Whether retrying later may help without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, ChainError::Unreachable(_))
    }

    /// Classifies a transport-level error.
    pub fn from_rpc(err: RpcError<TransportErrorKind>) -> ChainError {
        match err {
            RpcError::ErrorResp(payload) => {
                let reason = payload
                    .as_revert_data()
                    .and_then(|data| alloy::sol_types::decode_revert_reason(&data))
                    .filter(|reason| !reason.is_empty())
                    .unwrap_or_else(|| payload.message.to_string());
                ChainError::Refused(reason)
            }
            RpcError::DeserError { err, .. } => ChainError::BadAnswer(err.to_string()),
            other => ChainError::Unreachable(other.to_string()),
        }
    }

    /// Classifies a contract-call error.
    pub fn from_contract(err: alloy::contract::Error) -> ChainError {
        match err {
            alloy::contract::Error::TransportError(err) => ChainError::from_rpc(err),
            other => ChainError::BadAnswer(other.to_string()),
        }
    }
}

/// A connection to the node, and the JobManager's address.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    provider: RootProvider,
    job_manager: Address,
    timeout: Duration,
}

impl Chain {
    /// A client for the `[chain]` section (no I/O yet).
    pub(crate) fn new(config: &config::Chain) -> Result<Chain, ChainError> {
        let url =
            config.rpc_url.parse().map_err(|err| ChainError::Config(format!("rpc_url {:?}: {err}", config.rpc_url)))?;
        let job_manager = config
            .job_manager
            .parse()
            .map_err(|_| ChainError::Config(format!("job_manager {:?} is not an address", config.job_manager)))?;
        Ok(Chain {
            provider: RootProvider::new_http(url),
            job_manager,
            timeout: Duration::from_millis(config.rpc_timeout_ms),
        })
    }

    /// The node connection, for calls this type does not wrap.
    pub(crate) fn provider(&self) -> &RootProvider {
        &self.provider
    }

    /// The JobManager.
    pub(crate) fn job_manager(&self) -> Address {
        self.job_manager
    }

    /// How long any call may take (`rpc_timeout_ms`).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs a transport call with the deadline.
    pub(crate) async fn rpc<T>(
        &self,
        call: impl IntoFuture<Output = Result<T, RpcError<TransportErrorKind>>>,
    ) -> Result<T, ChainError> {
        match tokio::time::timeout(self.timeout, call.into_future()).await {
            Ok(result) => result.map_err(ChainError::from_rpc),
            Err(_) => Err(ChainError::Unreachable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// Runs a contract call with the deadline.
    pub(crate) async fn contract<T>(
        &self,
        call: impl IntoFuture<Output = Result<T, alloy::contract::Error>>,
    ) -> Result<T, ChainError> {
        match tokio::time::timeout(self.timeout, call.into_future()).await {
            Ok(result) => result.map_err(ChainError::from_contract),
            Err(_) => Err(ChainError::Unreachable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// The chain ID.
    pub(crate) async fn chain_id(&self) -> Result<u64, ChainError> {
        self.rpc(self.provider.get_chain_id()).await
    }

    /// The head block number.
    pub(crate) async fn head(&self) -> Result<u64, ChainError> {
        self.rpc(self.provider.get_block_number()).await
    }

    /// An account's balance at the head, in wei.
    pub(crate) async fn balance(&self, account: Address) -> Result<U256, ChainError> {
        self.rpc(self.provider.get_balance(account)).await
    }

    /// The consumer's next nonce (`Consumer.getNextNonce()`).
    pub(crate) async fn next_nonce(&self, consumer: Address) -> Result<u64, ChainError> {
        self.contract(Consumer::new(consumer, &self.provider).getNextNonce().call()).await
    }
}

/// The pause after the node was unreachable: it starts at the poll
/// interval, doubles on each failure up to [`Backoff::MAX`], and resets on
/// the first success. The relayer and the listener each keep one.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    next: Duration,
    until: std::time::Instant,
}

impl Backoff {
    /// The longest pause.
    pub(crate) const MAX: Duration = Duration::from_secs(5);

    /// A backoff starting at `base`.
    pub(crate) fn new(base: Duration) -> Backoff {
        Backoff { base, next: base, until: std::time::Instant::now() }
    }

    /// Whether the pause is still on.
    pub(crate) fn paused(&self) -> bool {
        std::time::Instant::now() < self.until
    }

    /// The node failed: pause, and return for how long.
    pub(crate) fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.until = std::time::Instant::now() + pause;
        self.next = (self.next * 2).min(Backoff::MAX);
        pause
    }

    /// The node answered: the next failure pauses for `base` again.
    pub(crate) fn succeeded(&mut self) {
        self.next = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_on_success() {
        let mut backoff = Backoff::new(Duration::from_secs(1));
        assert!(!backoff.paused());
        let pauses: Vec<u64> = (0..5).map(|_| backoff.failed().as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 5, 5]);
        assert!(backoff.paused());
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_secs(1));
    }
}
