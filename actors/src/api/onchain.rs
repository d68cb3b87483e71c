//! The onchain checks of offchain job requests, coalesced: the checks of
//! requests that arrive together go to the node together
//! (`Chain::offchain_checks`: one `checkOffchainRequests` view call, or a
//! JSON-RPC batch of two `eth_call`s per request) instead of two round
//! trips per request.
//!
//! A request queues its check (at most [`Batching::max_waiting`] wait at
//! once; beyond that it is refused as `busy`) and waits for its answer at
//! most the chain's rpc timeout. One task takes the checks in batches: it
//! waits for a first one, gathers more for at most [`Batching::linger`] or
//! until [`Batching::max_batch`], and sends them while it gathers the next.
//! At most [`Batching::in_flight`] batches are at the node at once (one:
//! a node such as hardhat answers one call at a time, and checks that
//! arrive meanwhile make the next batch bigger, so batches grow with the
//! load). A batch that fails as
//! a whole (no connection, no answer in time) answers each of its requests
//! with that error; a call that fails answers only its own request.

use super::wire::{codes, RpcError};
use crate::chain::{job_state, Chain, ChainError, OffchainAnswer, OffchainCheck};
use alloy::primitives::Address;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// How checks are gathered into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Batching {
    /// Most requests in one batch (two calls each: geth takes at most 1000
    /// calls in a batch by default).
    pub(crate) max_batch: usize,
    /// Most checks waiting for a batch at once.
    pub(crate) max_waiting: usize,
    /// How long a batch waits for more checks after its first.
    pub(crate) linger: Duration,
    /// Most batches at the node at once.
    pub(crate) in_flight: usize,
}

impl Batching {
    /// The engine's batching.
    pub(crate) const DEFAULT: Batching =
        Batching { max_batch: 256, max_waiting: 4096, linger: Duration::from_millis(1), in_flight: 1 };
}

/// What one check is answered with.
type Answer = Result<OffchainAnswer, ChainError>;

/// A check waiting for its batch.
#[derive(Debug)]
struct Waiting {
    check: OffchainCheck,
    answer: oneshot::Sender<Answer>,
}

/// Why a check has no answer from the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CheckError {
    /// Too many checks are waiting already.
    #[error("{0} requests are already waiting for their onchain checks; retry shortly")]
    Busy(usize),
    /// The chain could not answer.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The batching task is gone (the engine is stopping).
    #[error("the onchain checks stopped")]
    Stopped,
}

/// The queue of the batching task.
#[derive(Debug)]
pub(crate) struct OnchainChecks {
    queue: mpsc::Sender<Waiting>,
    max_waiting: usize,
    timeout: Duration,
}

impl OnchainChecks {
    /// Starts the batching task on the current arbiter; each check waits at
    /// most `chain`'s rpc timeout for its answer.
    pub(crate) fn start(chain: Chain) -> OnchainChecks {
        let timeout = chain.timeout();
        let send = move |checks: Vec<OffchainCheck>| {
            let chain = chain.clone();
            async move { chain.offchain_checks(&checks).await }
        };
        OnchainChecks::with(send, Batching::DEFAULT, timeout)
    }

    /// Starts a batching task that sends its batches with `send`.
    fn with<S, F>(send: S, batching: Batching, timeout: Duration) -> OnchainChecks
    where
        S: Fn(Vec<OffchainCheck>) -> F + 'static,
        F: Future<Output = Result<Vec<OffchainAnswer>, ChainError>> + 'static,
    {
        let (queue, waiting) = mpsc::channel(batching.max_waiting);
        actix_rt::spawn(run(send, waiting, batching));
        OnchainChecks { queue, max_waiting: batching.max_waiting, timeout }
    }

    /// The chain's answers about one request.
    pub(crate) async fn check(&self, check: OffchainCheck) -> Result<OffchainAnswer, CheckError> {
        let (answer, answered) = oneshot::channel();
        self.queue.try_send(Waiting { check, answer }).map_err(|err| match err {
            TrySendError::Full(_) => CheckError::Busy(self.max_waiting),
            TrySendError::Closed(_) => CheckError::Stopped,
        })?;
        match tokio::time::timeout(self.timeout, answered).await {
            Ok(Ok(answer)) => Ok(answer?),
            Ok(Err(_)) => Err(CheckError::Stopped),
            Err(_) => Err(ChainError::Unreachable(format!("no answer within {} ms", self.timeout.as_millis())).into()),
        }
    }
}

/// The batching task: runs until every [`OnchainChecks`] is dropped.
async fn run<S, F>(send: S, mut waiting: mpsc::Receiver<Waiting>, batching: Batching)
where
    S: Fn(Vec<OffchainCheck>) -> F,
    F: Future<Output = Result<Vec<OffchainAnswer>, ChainError>> + 'static,
{
    let slots = Arc::new(Semaphore::new(batching.in_flight.max(1)));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let Some(batch) = next_batch(&mut waiting, batching.max_batch.max(1), batching.linger).await else { return };
        let (checks, answers) = split(batch);
        if checks.is_empty() {
            continue;
        }
        let requests = checks.len();
        tracing::debug!(requests, "onchain checks: one batch");
        let sent = send(checks);
        actix_rt::spawn(async move {
            let result = sent.await;
            if let Err(err) = &result {
                tracing::debug!(%err, requests, "onchain checks: the batch failed");
            }
            deliver(answers, result);
            drop(slot);
        });
    }
}

/// The next batch: waits for a first check, then takes what arrives within
/// `linger`, up to `max`. `None` once the queue is closed and empty.
async fn next_batch(waiting: &mut mpsc::Receiver<Waiting>, max: usize, linger: Duration) -> Option<Vec<Waiting>> {
    let mut batch = Vec::with_capacity(max);
    if waiting.recv_many(&mut batch, max).await == 0 {
        return None;
    }
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < max {
        let room = max - batch.len();
        match tokio::time::timeout_at(deadline, waiting.recv_many(&mut batch, room)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Some(batch)
}

/// The checks to send and where their answers go, in the same order. A
/// request that stopped waiting (its deadline passed) is not sent.
fn split(batch: Vec<Waiting>) -> (Vec<OffchainCheck>, Vec<oneshot::Sender<Answer>>) {
    batch.into_iter().filter(|waiting| !waiting.answer.is_closed()).map(|w| (w.check, w.answer)).unzip()
}

/// Answers each request with its own answer, or all with the batch's error.
fn deliver(answers: Vec<oneshot::Sender<Answer>>, result: Result<Vec<OffchainAnswer>, ChainError>) {
    match result {
        Ok(replies) => {
            let mut replies = replies.into_iter();
            for answer in answers {
                let reply = replies
                    .next()
                    .ok_or_else(|| ChainError::BadAnswer("no answer for this request in the batch".into()));
                let _ = answer.send(reply);
            }
        }
        Err(err) => {
            for answer in answers {
                let _ = answer.send(Err(err.clone()));
            }
        }
    }
}

/// The refusal for a request, if any, from the chain's answers: the
/// consumer must accept the signature (checked first), and the job ID must
/// be unused. A question the chain could not answer is `chain unavailable`.
pub(crate) fn verdict(answer: OffchainAnswer, consumer: Address, nonce: u64) -> Result<(), RpcError> {
    if !answer.accepted.map_err(unavailable)? {
        return Err(RpcError::new(
            codes::BAD_SIGNATURE,
            format!("bad request signature: consumer {consumer} rejects it (EIP-1271 isValidSignature)"),
        ));
    }
    if answer.state.map_err(unavailable)? != job_state::NONE {
        return Err(RpcError::new(
            codes::NONCE_USED,
            format!("nonce {nonce} already used onchain by consumer {consumer}"),
        ));
    }
    Ok(())
}

/// The refusal for a request the chain could not check.
pub(crate) fn unavailable(err: ChainError) -> RpcError {
    RpcError::new(codes::CHAIN_UNAVAILABLE, format!("cannot check the request onchain: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, B256};
    use std::cell::RefCell;
    use std::rc::Rc;

    fn check(n: u64) -> OffchainCheck {
        OffchainCheck {
            consumer: Address::repeat_byte(1),
            digest: B256::with_last_byte(n as u8),
            signature: Bytes::from(n.to_be_bytes().to_vec()),
            job_id: B256::left_padding_from(&n.to_be_bytes()),
        }
    }

    /// The node's answer to check `n`: accepted when `n` is even, the job
    /// state `n % 4`.
    fn answer(check: &OffchainCheck) -> OffchainAnswer {
        let n = u64::from_be_bytes(check.signature[..8].try_into().unwrap());
        OffchainAnswer { accepted: Ok(n % 2 == 0), state: Ok((n % 4) as u8) }
    }

    fn expected(n: u64) -> OffchainAnswer {
        answer(&check(n))
    }

    /// A fake node: records each batch's size and answers every check.
    fn node(sizes: Rc<RefCell<Vec<usize>>>) -> impl Fn(Vec<OffchainCheck>) -> std::future::Ready<Answers> {
        move |checks| {
            sizes.borrow_mut().push(checks.len());
            std::future::ready(Ok(checks.iter().map(answer).collect()))
        }
    }

    type Answers = Result<Vec<OffchainAnswer>, ChainError>;

    const TEST: Batching =
        Batching { max_batch: 256, max_waiting: 4096, linger: Duration::from_millis(1), in_flight: 4 };
    const TIMEOUT: Duration = Duration::from_secs(5);

    /// Runs `checks` concurrently; their results in order.
    async fn all(checks: &Rc<OnchainChecks>, ns: impl Iterator<Item = u64>) -> Vec<Result<OffchainAnswer, CheckError>> {
        let tasks: Vec<_> = ns
            .map(|n| {
                let checks = Rc::clone(checks);
                actix_rt::spawn(async move { checks.check(check(n)).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    #[test]
    fn checks_that_arrive_together_share_batches_of_at_most_max_and_each_gets_its_own_answer() {
        actix_rt::System::new().block_on(async {
            let sizes = Rc::new(RefCell::new(Vec::new()));
            let checks = Rc::new(OnchainChecks::with(node(Rc::clone(&sizes)), TEST, TIMEOUT));
            let results = all(&checks, 0..600).await;
            assert_eq!(results, (0..600).map(|n| Ok(expected(n))).collect::<Vec<_>>());
            assert_eq!(*sizes.borrow(), [256, 256, 88]);
            // A lone check later is a batch of its own, sent after the linger.
            assert_eq!(checks.check(check(7)).await, Ok(expected(7)));
            assert_eq!(*sizes.borrow(), [256, 256, 88, 1]);
        });
    }

    #[test]
    fn a_failed_batch_answers_each_of_its_checks_with_the_error_and_the_next_batch_is_fine() {
        actix_rt::System::new().block_on(async {
            let fail = Rc::new(RefCell::new(true));
            let failing = Rc::clone(&fail);
            let send = move |checks: Vec<OffchainCheck>| {
                let result = match failing.replace(false) {
                    true => Err(ChainError::Unreachable("connection refused".into())),
                    false => Ok(checks.iter().map(answer).collect()),
                };
                std::future::ready(result)
            };
            let checks = Rc::new(OnchainChecks::with(send, TEST, TIMEOUT));
            let error = CheckError::Chain(ChainError::Unreachable("connection refused".into()));
            assert_eq!(all(&checks, 0..3).await, vec![Err(error.clone()), Err(error.clone()), Err(error)]);
            assert_eq!(all(&checks, 3..5).await, vec![Ok(expected(3)), Ok(expected(4))]);
        });
    }

    #[test]
    fn a_batch_with_too_few_answers_fails_only_the_unanswered_checks() {
        let (answers, mut answered): (Vec<_>, Vec<_>) = (0..3).map(|_| oneshot::channel::<Answer>()).unzip();
        deliver(answers, Ok(vec![expected(0), expected(1)]));
        assert_eq!(answered[0].try_recv().unwrap(), Ok(expected(0)));
        assert_eq!(answered[1].try_recv().unwrap(), Ok(expected(1)));
        assert_eq!(
            answered[2].try_recv().unwrap(),
            Err(ChainError::BadAnswer("no answer for this request in the batch".into()))
        );
    }

    #[test]
    fn a_check_that_stopped_waiting_is_not_sent() {
        let (answer, answered) = oneshot::channel();
        let gone = Waiting { check: check(1), answer };
        drop(answered);
        let (answer, _answered) = oneshot::channel();
        let (checks, answers) = split(vec![gone, Waiting { check: check(2), answer }]);
        assert_eq!((checks, answers.len()), (vec![check(2)], 1));
    }

    #[test]
    fn beyond_max_waiting_a_check_is_busy_and_a_check_with_no_answer_in_time_is_unreachable() {
        actix_rt::System::new().block_on(async {
            // A node that never answers; one batch of one at a time.
            let sizes = Rc::new(RefCell::new(Vec::new()));
            let seen = Rc::clone(&sizes);
            let send = move |checks: Vec<OffchainCheck>| {
                seen.borrow_mut().push(checks.len());
                std::future::pending::<Answers>()
            };
            let batching = Batching { max_batch: 1, max_waiting: 2, linger: Duration::ZERO, in_flight: 1 };
            let checks = Rc::new(OnchainChecks::with(send, batching, Duration::from_millis(100)));
            let start = tokio::time::Instant::now();
            // The first is sent, and the batch never comes back.
            let first = Rc::clone(&checks);
            let first = actix_rt::spawn(async move { first.check(check(0)).await });
            tokio::time::sleep(Duration::from_millis(10)).await;
            // The next two wait for the batch in flight; the fourth finds no room.
            let results = all(&checks, 1..4).await;
            let late = CheckError::Chain(ChainError::Unreachable("no answer within 100 ms".into()));
            assert_eq!(first.await.unwrap(), Err(late.clone()));
            assert_eq!(results, vec![Err(late.clone()), Err(late), Err(CheckError::Busy(2))]);
            assert!(start.elapsed() >= Duration::from_millis(100), "{:?}", start.elapsed());
            assert_eq!(*sizes.borrow(), [1]);
            assert_eq!(
                CheckError::Busy(2).to_string(),
                "2 requests are already waiting for their onchain checks; retry shortly"
            );
        });
    }

    #[test]
    fn the_verdict_checks_the_signature_first_then_the_nonce() {
        let consumer = Address::repeat_byte(0x11);
        let answer = |accepted, state| OffchainAnswer { accepted, state };
        let down = ChainError::Unreachable("connection refused".into());
        let refusal = |result: Result<(), RpcError>| result.map_err(|err| (err.code, err.message));
        assert_eq!(refusal(verdict(answer(Ok(true), Ok(job_state::NONE)), consumer, 5)), Ok(()));
        let rejected = (
            codes::BAD_SIGNATURE,
            format!("bad request signature: consumer {consumer} rejects it (EIP-1271 isValidSignature)"),
        );
        // Rejected even when the nonce is used or its state is unknown.
        assert_eq!(refusal(verdict(answer(Ok(false), Ok(job_state::COMPLETED)), consumer, 5)), Err(rejected.clone()));
        assert_eq!(refusal(verdict(answer(Ok(false), Err(down.clone())), consumer, 5)), Err(rejected));
        let used = (codes::NONCE_USED, format!("nonce 5 already used onchain by consumer {consumer}"));
        for state in [job_state::PENDING, job_state::CANCELLED, job_state::COMPLETED] {
            assert_eq!(refusal(verdict(answer(Ok(true), Ok(state)), consumer, 5)), Err(used.clone()));
        }
        let unavailable =
            (codes::CHAIN_UNAVAILABLE, "cannot check the request onchain: node unreachable: connection refused".into());
        assert_eq!(
            refusal(verdict(answer(Err(down.clone()), Ok(job_state::NONE)), consumer, 5)),
            Err(unavailable.clone())
        );
        assert_eq!(refusal(verdict(answer(Ok(true), Err(down)), consumer, 5)), Err(unavailable));
    }
}
