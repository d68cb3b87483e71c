//! `coproc_subscribe` / `coproc_unsubscribe`: each durable status change
//! of a consumer's jobs (or of given job IDs) pushed on the JSON-RPC
//! connection, in the shape of `eth_subscribe`.
//!
//! The store writer announces every status it makes durable (pending,
//! done, failed, submitted, confirmed, cancelled, dead-lettered, ...), in
//! the order it wrote them. Each subscription is a task on the api thread
//! that filters them and queues a `coproc_subscription` notification with
//! the job's `coproc_getResult` object. Memory is bounded twice: a
//! subscription may have at most `api.subscription_backlog` notifications
//! queued and not yet written to the socket, and the announcements it has
//! not yet filtered are bounded by the store's channel. A subscriber that
//! does not read past either bound gets one last notification with an
//! error instead of a result, and the subscription ends.
//!
//! In cluster mode a subscription also follows what the other engines
//! record (results, and how settlements ended), from the cluster's watch
//! (`peers::follow_changes`), except what this engine's store tells itself.

use super::methods;
use super::wire::{codes, JobFilter, JobResult, Reply, RpcError, SubscribeParams, UnsubscribeParams};
use super::Shared;
use crate::cluster::Change;
use crate::job::{JobId, Status};
use crate::store::JobEvent;
use alloy::primitives::Address;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// A line on its way out, holding its slot (a request's, or a
/// subscription's backlog) until written.
pub(crate) type Outgoing = (Vec<u8>, Option<OwnedSemaphorePermit>);

/// Job IDs one subscription may name.
const MAX_JOB_IDS: usize = 1024;

/// The subscriptions of one JSON-RPC connection.
pub(crate) struct Session {
    shared: Rc<Shared>,
    responses: mpsc::UnboundedSender<Outgoing>,
    live: RefCell<HashMap<String, tokio::task::JoinHandle<()>>>,
    next: Cell<u64>,
}

/// Which jobs a subscription follows.
enum Filter {
    Consumer(Address),
    Jobs(HashSet<JobId>),
}

impl Filter {
    fn parse(filter: JobFilter) -> Result<Filter, RpcError> {
        match (filter.consumer, filter.job_ids) {
            (Some(consumer), None) => Address::try_from(consumer.0.as_slice()).map(Filter::Consumer).map_err(|_| {
                RpcError::invalid_params(format!("consumer must be a 20-byte address, got {} bytes", consumer.0.len()))
            }),
            (None, Some(ids)) if ids.is_empty() || ids.len() > MAX_JOB_IDS => {
                Err(RpcError::invalid_params(format!("jobIds must name 1 to {MAX_JOB_IDS} jobs, got {}", ids.len())))
            }
            (None, Some(ids)) => ids
                .iter()
                .map(|id| {
                    JobId::try_from(id.0.as_slice())
                        .map_err(|len| RpcError::invalid_params(format!("a jobId must be 32 bytes, got {len}")))
                })
                .collect::<Result<_, _>>()
                .map(Filter::Jobs),
            _ => Err(RpcError::invalid_params("the filter must be {consumer} or {jobIds}, exactly one of them")),
        }
    }

    fn matches(&self, id: &JobId, consumer: &Address) -> bool {
        match self {
            Filter::Consumer(followed) => consumer == followed,
            Filter::Jobs(ids) => ids.contains(id),
        }
    }
}

impl Session {
    pub(crate) fn new(shared: Rc<Shared>, responses: mpsc::UnboundedSender<Outgoing>) -> Session {
        Session { shared, responses, live: RefCell::default(), next: Cell::new(1) }
    }

    /// `coproc_subscribe ["jobs", {consumer} | {jobIds}]`: answers the
    /// subscription's ID; its notifications follow on this connection.
    pub(crate) fn subscribe(&self, SubscribeParams(kind, filter): SubscribeParams) -> Result<Reply, RpcError> {
        if kind != "jobs" {
            return Err(RpcError::invalid_params(format!("unknown subscription {kind:?}: the one kind is \"jobs\"")));
        }
        let filter = Filter::parse(filter)?;
        let api = &self.shared.ctx.config.api;
        let mut live = self.live.borrow_mut();
        live.retain(|_, task| !task.is_finished());
        if live.len() >= api.max_subscriptions_per_connection {
            return Err(RpcError::new(
                codes::BUSY,
                format!(
                    "{} subscriptions on this connection (api.max_subscriptions_per_connection); unsubscribe first",
                    live.len()
                ),
            ));
        }
        let id = format!("0x{:016x}", self.next.get());
        self.next.set(self.next.get() + 1);
        let forward = Forward {
            shared: Rc::clone(&self.shared),
            id: id.clone(),
            filter,
            responses: self.responses.clone(),
            backlog: Arc::new(Semaphore::new(api.subscription_backlog)),
        };
        let events = self.shared.ctx.store.job_events();
        let changes = self.shared.ctx.peers.as_ref().map(|peers| peers.changes.subscribe());
        live.insert(id.clone(), actix_rt::spawn(forward.run(events, changes)));
        Ok(Reply::Subscribed(id))
    }

    /// `coproc_unsubscribe [ID]`: true if the subscription was live.
    pub(crate) fn unsubscribe(&self, UnsubscribeParams(ids): UnsubscribeParams) -> Result<Reply, RpcError> {
        let [id] = ids.as_slice() else {
            return Err(RpcError::invalid_params(format!("expected [subscriptionId], got {} values", ids.len())));
        };
        let task = self.live.borrow_mut().remove(id);
        let live = task.is_some_and(|task| {
            let live = !task.is_finished();
            task.abort();
            live
        });
        Ok(Reply::Unsubscribed(live))
    }
}

impl Drop for Session {
    /// The connection is gone: so are its subscriptions.
    fn drop(&mut self) {
        for (_, task) in self.live.borrow_mut().drain() {
            task.abort();
        }
    }
}

/// One subscription's task.
struct Forward {
    shared: Rc<Shared>,
    id: String,
    filter: Filter,
    responses: mpsc::UnboundedSender<Outgoing>,
    backlog: Arc<Semaphore>,
}

impl Forward {
    async fn run(self, mut events: Receiver<JobEvent>, mut changes: Option<Receiver<Change>>) {
        loop {
            let received = tokio::select! {
                event = events.recv() => event.map(|event| self.local(&event)),
                change = next_change(&mut changes) => change.map(|change| self.remote(&change)),
            };
            let result = match received {
                Ok(Some(result)) => result,
                Ok(None) => continue,
                Err(RecvError::Lagged(missed)) => {
                    return self.end(format!(
                        "subscription dropped: {missed} status changes were missed (the client did not keep up); \
                         subscribe again and read coproc_getResult for what you missed"
                    ))
                }
                Err(RecvError::Closed) => return,
            };
            let Ok(slot) = Arc::clone(&self.backlog).try_acquire_owned() else {
                let unread = self.shared.ctx.config.api.subscription_backlog;
                return self.end(format!(
                    "subscription dropped: {unread} notifications unread (api.subscription_backlog): the client does \
                     not read; subscribe again"
                ));
            };
            let line = notification(&self.id, Ok(&result));
            if self.responses.send((line, Some(slot))).is_err() {
                return;
            }
        }
    }

    /// A change of this engine's store, if followed.
    fn local(&self, event: &JobEvent) -> Option<JobResult> {
        self.filter.matches(&event.id, &event.consumer).then(|| self.result_of(event))
    }

    /// A change another engine of the cluster made, if followed and not
    /// already told by this engine's store (a job it ran, a settlement it
    /// relayed).
    fn remote(&self, change: &Change) -> Option<JobResult> {
        let ctx = &self.shared.ctx;
        let (id, consumer) = match change {
            Change::Recorded(result) => (result.spec.id, result.spec.consumer),
            Change::Settled(id, settled) => (*id, settled.consumer),
        };
        if !self.filter.matches(&id, &consumer) {
            return None;
        }
        let here = ctx.store.job(&id).ok().flatten().map(|entry| entry.status);
        match change {
            Change::Recorded(_) if here.is_some_and(Status::is_executed) => None,
            Change::Recorded(result) => Some(super::cluster::reply(ctx, result)),
            Change::Settled(_, settled)
                if here.is_some_and(|status| Some(status) == settled.step.next(Status::Done)) =>
            {
                None
            }
            Change::Settled(_, settled) => {
                let mut result = match methods::stored_result(ctx, id, None) {
                    Ok(Some(result)) => result,
                    _ => super::replies::empty_reply(id, None),
                };
                super::cluster::settle(&mut result, settled);
                Some(result)
            }
        }
    }

    /// The job's `coproc_getResult` object as the store has it, with the
    /// status of this change (the store may be a step further already).
    fn result_of(&self, event: &JobEvent) -> JobResult {
        let mut result = match methods::stored_result(&self.shared.ctx, event.id, None) {
            Ok(Some(result)) => result,
            _ => super::replies::empty_reply(event.id, None),
        };
        result.status = event.status.as_str().to_owned();
        result
    }

    fn end(&self, message: String) {
        tracing::debug!(subscription = %self.id, %message, "subscription ended");
        let error = RpcError::new(codes::SUBSCRIPTION_DROPPED, message);
        let _ = self.responses.send((notification(&self.id, Err(&error)), None));
    }
}

/// The next cluster change, or never without a cluster.
async fn next_change(changes: &mut Option<Receiver<Change>>) -> Result<Change, RecvError> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

/// A `coproc_subscription` notification line.
fn notification(subscription: &str, payload: Result<&JobResult, &RpcError>) -> Vec<u8> {
    let params = match payload {
        Ok(result) => serde_json::json!({ "subscription": subscription, "result": result }),
        Err(error) => serde_json::json!({ "subscription": subscription, "error": error }),
    };
    let message = serde_json::json!({ "jsonrpc": "2.0", "method": "coproc_subscription", "params": params });
    let mut line = serde_json::to_vec(&message).unwrap_or_default();
    line.push(b'\n');
    line
}
