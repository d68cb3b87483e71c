//! The api in cluster mode: a job accepted here is claimed and queued in
//! the cluster (any engine may run it), and a result not in this engine's
//! store is read from the cluster, as is how its settlement ended when
//! another engine relayed it.

use super::quota::Charge;
use super::replies::{empty_reply, fill_result, internal};
use super::wire::{codes, HexBytes, JobIdParams, JobResult, Reply, RpcError};
use super::{ApiContext, Shared};
use crate::cluster::{SharedResult, SharedSettlement};
use crate::job::{JobId, JobSpec, Settlement, Status};
use crate::peers::{ClusterJob, FetchResult, FetchSettlement, FollowRetry, PublishError, PublishJob};
use crate::store::ResultRecord;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Claims and queues a checked job; answers its ID once the cluster's
/// stream has it, or (`wait`) its result once an engine records one.
pub(crate) async fn submit(shared: &Shared, spec: Arc<JobSpec>, charge: Charge, wait: bool) -> Result<Reply, RpcError> {
    let ctx = &shared.ctx;
    let id = publish(shared, spec, charge).await?;
    if !wait {
        return Ok(Reply::JobId(JobIdParams { job_id: HexBytes(id.0.to_vec()) }));
    }
    match result(ctx, id, true).await? {
        Some(reply) => Ok(Reply::Result(Box::new(reply))),
        None => Err(internal("the cluster's watch ended without a result")),
    }
}

/// Claims and queues one checked job of a batch (each on its own, as the
/// cluster takes them one by one); answers its ID.
pub(crate) async fn submit_one(shared: &Shared, spec: Arc<JobSpec>, charge: Charge) -> Result<HexBytes, RpcError> {
    publish(shared, spec, charge).await.map(|id| HexBytes(id.0.to_vec()))
}

/// The claim and the queue; a refusal refunds the signer's quota.
async fn publish(shared: &Shared, spec: Arc<JobSpec>, charge: Charge) -> Result<JobId, RpcError> {
    let ctx = &shared.ctx;
    let Some(peers) = &ctx.peers else { return Err(internal("not in cluster mode")) };
    let id = spec.id;
    match peers.publish.send(PublishJob { spec }).await.map_err(internal)? {
        Ok(()) => {
            ctx.metrics.engine.accepted.fetch_add(1, Ordering::Relaxed);
            Ok(id)
        }
        Err(err @ PublishError::Taken { .. }) => {
            shared.quotas.refund(charge);
            ctx.rejections.record(id, err.to_string());
            Err(RpcError::new(codes::NONCE_USED, err.to_string()))
        }
        Err(PublishError::Cluster(err)) => {
            shared.quotas.refund(charge);
            Err(RpcError::new(
                codes::CLUSTER_UNAVAILABLE,
                format!("cluster unavailable: job {id} was not accepted: {err}"),
            ))
        }
    }
}

/// A job's `coproc_getResult` object from the cluster: its recorded
/// result, or `pending` while it is queued (`None`: it never entered the
/// cluster). With `wait`, once some engine records its result.
pub(crate) async fn result(ctx: &ApiContext, id: JobId, wait: bool) -> Result<Option<JobResult>, RpcError> {
    let Some(peers) = &ctx.peers else { return Ok(None) };
    let known = peers.fetch.send(FetchResult { id, wait }).await.map_err(internal)?.map_err(|err| {
        RpcError::new(codes::CLUSTER_UNAVAILABLE, format!("job {id}: the cluster did not answer: {err}"))
    })?;
    Ok(match known {
        ClusterJob::Recorded(shared) => Some(reply(ctx, &shared)),
        ClusterJob::Queued => {
            let mut reply = empty_reply(id, None);
            reply.status = crate::job::Status::Pending.as_str().to_owned();
            Some(reply)
        }
        ClusterJob::Unknown => None,
    })
}

/// A recorded result's `coproc_getResult` object.
pub(crate) fn reply(ctx: &ApiContext, shared: &SharedResult) -> JobResult {
    let result = ResultRecord::rebuild(&shared.spec, shared.execution.clone());
    let mut reply = empty_reply(shared.spec.id, None);
    fill_result(&mut reply, result.status(), &result);
    reply.isa = ctx.programs.isa(&shared.spec.program_id);
    reply
}

/// A result this engine holds as executed but not settled (`done`,
/// `submitted`) may have been settled by another engine of the cluster:
/// then it answers as that engine would. Best effort: without an answer
/// from the cluster, the reply stays as this engine knows it.
pub(crate) async fn settled_elsewhere(ctx: &ApiContext, id: JobId, reply: &mut JobResult) {
    let unsettled = [Status::Done.as_str(), Status::Submitted.as_str()];
    let (Some(peers), Some(_)) = (&ctx.peers, &ctx.config.chain) else { return };
    if !unsettled.contains(&reply.status.as_str()) {
        return;
    }
    let shared = match peers.settled.send(FetchSettlement { id }).await {
        Ok(Ok(Some(shared))) => shared,
        Ok(Ok(None)) => return,
        Ok(Err(err)) => return tracing::debug!(job = %id, %err, "reading the job's settlement from the cluster"),
        Err(err) => return tracing::debug!(job = %id, %err, "the peers actor did not answer"),
    };
    settle(reply, &shared);
}

/// `reply` as `shared` ended its settlement.
pub(crate) fn settle(reply: &mut JobResult, shared: &SharedSettlement) {
    let Some(status) = shared.step.next(Status::Done) else { return };
    reply.status = status.as_str().to_owned();
    if let Some(tx_hash) = shared.step.tx_hash().filter(|tx_hash| *tx_hash != [0; 32]) {
        reply.tx_hash = Some(HexBytes(tx_hash.to_vec()));
    }
    if let Settlement::DeadLettered(letter) = &shared.step {
        reply.relay_error = Some(format!("{} (relayed by {})", letter.reason, shared.node));
    }
}

/// Has the peers actor record, once the relayer tells `end`, how the
/// settlement of job `id` (dead-lettered here, pushed again) ended.
pub(crate) fn follow_retry(ctx: &ApiContext, id: JobId, end: tokio::sync::oneshot::Receiver<Settlement>) {
    let Some(peers) = &ctx.peers else { return };
    match ctx.store.job(&id) {
        Ok(Some(entry)) => peers.retried.do_send(FollowRetry { id, consumer: entry.consumer, ended: end }),
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(job = %id, %err, "a retried job's consumer cannot be read; its end stays unrecorded")
        }
    }
}

/// The engine that dead-lettered job `id`, when the cluster says one did.
pub(crate) async fn dead_lettered_by(ctx: &ApiContext, id: JobId) -> Option<String> {
    let peers = ctx.peers.as_ref()?;
    match peers.settled.send(FetchSettlement { id }).await {
        Ok(Ok(Some(SharedSettlement { step: Settlement::DeadLettered(_), node, .. }))) => Some(node),
        _ => None,
    }
}
