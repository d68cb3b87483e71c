//! What each method does. Both encodings land here with a typed [`Call`].

use super::onchain::{self, CheckError, OnchainChecks};
use super::quota::{Charge, QuotaError};
use super::replies::{empty_reply, fill_result, internal};
use super::verifier::{BlobHashes, Verify};
use super::wire::*;
use super::{ApiContext, ChainAccess, Shared};
use crate::board::{AdmitError, Finished};
use crate::chain::OffchainCheck;
use crate::executor::{DryRun, ExecuteError};
use crate::job::{check_limits, JobId, JobLimits, JobSpec, Status};
use crate::metrics::ActorName;
use crate::peers::FetchNextNonce;
use crate::peers::ShareProgram;
use crate::pool::Panic;
use crate::program::ProgramId;
use crate::protocol::abi::OffchainJobRequest;
use crate::protocol::blobs::BlobError;
use crate::protocol::eip191::Rules;
use crate::registry::{RegistryError, SubmitProgram as RegisterProgram};
use crate::relayer::{LaneQuery, Retry, RetryError, Waiting};
use crate::store::CommitError;
use alloy::primitives::Address;
use alloy::sol_types::SolValue;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::oneshot::error::RecvError;

/// Runs one call. Refusals other than `busy` and `quota` (counted on
/// their own) count as rejected requests.
pub(crate) async fn call(shared: &Shared, call: Call) -> Result<Reply, RpcError> {
    let ctx = &shared.ctx;
    let result = dispatch(shared, call).await;
    if let Err(err) = &result {
        count_refusal(ctx, err);
    }
    result
}

async fn dispatch(shared: &Shared, call: Call) -> Result<Reply, RpcError> {
    let ctx = &shared.ctx;
    match call {
        Call::SubmitProgram(p) => submit_program(ctx, p).await,
        Call::ContainsProgram(p) => {
            let id = program_id(&p.program_id)?;
            Ok(Reply::Contains(ContainsReply { contains: ctx.programs.contains(&id) }))
        }
        Call::ListPrograms(_) => list_programs(ctx),
        Call::SubmitJob(p) => submit_job(shared, p).await,
        Call::SubmitJobs(p) => submit_jobs(shared, p).await,
        Call::CallProgram(p) => call_program(shared, p).await,
        Call::Health(_) => Ok(Reply::Health(ctx.health.check().await)),
        // A JSON-RPC connection answers these itself (`subscriptions.rs`).
        Call::Subscribe(_) | Call::Unsubscribe(_) => Err(RpcError::new(
            codes::INVALID_REQUEST,
            "coproc_subscribe and coproc_unsubscribe are for JSON-RPC connections, not the fast path",
        )),
        Call::GetResult(p) => {
            let id = job_id_param(&p)?;
            let answer = match get_result(ctx, &p) {
                // Run by another engine of the cluster, maybe.
                Err(err) if err.code == codes::UNKNOWN_JOB && ctx.peers.is_some() => {
                    super::cluster::result(ctx, id, false).await?.map(|found| Reply::Result(Box::new(found))).ok_or(err)
                }
                answer => answer,
            };
            match answer {
                // Settled by another engine of the cluster, maybe; or held
                // back here by a fee ceiling.
                Ok(Reply::Result(mut found)) => {
                    super::cluster::settled_elsewhere(ctx, id, &mut found).await;
                    if let (Some(chain), true) = (&ctx.chain, found.status == Status::Done.as_str()) {
                        found.relay_waiting = chain.waiting.send(Waiting { id }).await.map_err(internal)?;
                    }
                    Ok(Reply::Result(found))
                }
                answer => answer,
            }
        }
        Call::GetPendingJobs(p) => pending_jobs(ctx, &p).await,
        Call::NextNonce(p) => next_nonce(ctx, &p).await,
        Call::Metrics(_) => Ok(Reply::Metrics(Box::new(ctx.metrics.snapshot(ctx.store.size_on_disk())))),
        Call::Status(_) => status(ctx).await,
        Call::Replay(p) => replay(ctx, p).await,
        Call::RetryJob(p) => retry(ctx, &p).await,
        Call::Panic(p) => inject_panic(ctx, &p),
        // A TCP connection's first request is judged before it gets here.
        Call::Auth(_) => Err(RpcError::new(
            codes::INVALID_REQUEST,
            "coproc_auth is only the first request of a TCP connection; Unix socket connections need no token",
        )),
    }
}

/// `coproc_status`: who the node is, what it holds, and with a chain what
/// the node and the relayer report (read now, each read bounded by
/// `chain.rpc_timeout_ms`; a figure the node does not give is null).
async fn status(ctx: &ApiContext) -> Result<Reply, RpcError> {
    let onchain = match &ctx.chain {
        Some(access) => Some(onchain_status(ctx, access).await),
        None => None,
    };
    Ok(Reply::Status(Box::new(StatusReply {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        operator: HexBytes(ctx.signers.operator.to_vec()),
        uptime_seconds: ctx.metrics.uptime().as_secs(),
        chain: ctx.chain.as_ref().map(|c| {
            format!(
                "{} (JobManager {})",
                ctx.config.chain.as_ref().map_or("", |c| c.rpc_url.as_str()),
                c.chain.job_manager()
            )
        }),
        dev_signer: ctx.signers.dev_signer.map(|a| HexBytes(a.to_vec())),
        git_commit: env!("COPROCESSOR_GIT_COMMIT").to_owned(),
        jobs_pending: ctx.board.len() as u64,
        jobs_dead_lettered: ctx.store.dead_letter_count() as u64,
        onchain,
        cluster: ctx.config.cluster.as_ref().map(|section| {
            let engine = &ctx.metrics.engine;
            ClusterStatus {
                node: section.node_name.clone(),
                servers: section.servers.clone(),
                jobs_queued: engine.cluster_jobs_queued.load(Ordering::Relaxed),
                jobs_run_here: engine.cluster_jobs_run.load(Ordering::Relaxed),
                results_recorded_here: engine.cluster_results_recorded.load(Ordering::Relaxed),
                redeliveries_here: engine.cluster_redeliveries.load(Ordering::Relaxed),
                relays_queued: engine.cluster_relays_queued.load(Ordering::Relaxed),
                relays_held_here: engine.cluster_relays_held.load(Ordering::Relaxed),
                leases_held_here: engine.cluster_leases_held.load(Ordering::Relaxed),
                relays_ended_here: engine.cluster_relays_ended.load(Ordering::Relaxed),
            }
        }),
    })))
}

async fn onchain_status(ctx: &ApiContext, access: &ChainAccess) -> OnchainStatus {
    let chain = &access.chain;
    let (chain_id, head) = (chain.chain_id().await.ok(), chain.head().await.ok());
    let listener_block = ctx.metrics.engine.listener_block.load(Ordering::Relaxed);
    let newest = head.map(|head| (head + 1).saturating_sub(access.confirmations));
    let mut relayers = Vec::new();
    for &address in &access.relayers {
        let balance_wei = chain.balance(address).await.ok().map(|wei| wei.to_string());
        relayers.push(RelayerStatus { address: HexBytes(address.to_vec()), balance_wei });
    }
    OnchainStatus {
        chain_id,
        head,
        listener_block,
        listener_lag_blocks: newest.map(|newest| newest.saturating_sub(listener_block)),
        relayers,
        awaiting_relay: ctx.metrics.engine.relay_backlog.load(Ordering::Relaxed),
    }
}

/// `coproc_listPrograms`: every program with its ISA (from the image
/// cache), its name, size and registration time, and its jobs and cycles
/// (from the store).
fn list_programs(ctx: &ApiContext) -> Result<Reply, RpcError> {
    let list = ctx.programs.list();
    let mut programs = Vec::with_capacity(list.len());
    for &(id, isa) in &list {
        let info = ctx.store.program_info(&id).map_err(internal)?;
        let stats = ctx.store.program_stats(&id).map_err(internal)?;
        let (name, size_bytes, registered_unix_ms) = match info {
            Some(info) => (info.name, info.size_bytes, info.registered_unix_ms),
            // Registered before names were recorded.
            None => (String::new(), ctx.store.program(&id).map_err(internal)?.map_or(0, |elf| elf.len() as u64), 0),
        };
        programs.push(ProgramInfo {
            program_id: HexBytes(id.0.to_vec()),
            isa,
            name,
            size_bytes,
            registered_unix_ms,
            jobs: stats.jobs,
            cycles: stats.cycles,
        });
    }
    Ok(Reply::Programs(ProgramsReply {
        program_ids: list.iter().map(|(id, _)| HexBytes(id.0.to_vec())).collect(),
        programs,
    }))
}

fn program_id(bytes: &HexBytes) -> Result<ProgramId, RpcError> {
    let id: [u8; 32] = bytes
        .0
        .as_slice()
        .try_into()
        .map_err(|_| RpcError::invalid_params(format!("programId must be 32 bytes, got {}", bytes.0.len())))?;
    Ok(ProgramId(id))
}

fn address(bytes: &HexBytes) -> Result<Address, RpcError> {
    Address::try_from(bytes.0.as_slice()).map_err(|_| {
        RpcError::invalid_params(format!("consumer must be a 20-byte address, got {} bytes", bytes.0.len()))
    })
}

async fn submit_program(ctx: &ApiContext, p: SubmitProgram) -> Result<Reply, RpcError> {
    let max = ctx.config.limits.max_program_bytes;
    if p.elf.0.len() > max {
        return Err(RpcError::new(
            codes::TOO_LARGE,
            format!("program is {} bytes, over the limit of {max}", p.elf.0.len()),
        ));
    }
    // In cluster mode the program is acknowledged once the cluster has it.
    let shared = ctx.peers.as_ref().map(|peers| (&peers.share, p.elf.0.clone()));
    let answer = ctx.registry.send(RegisterProgram { elf: p.elf.0, name: p.name }).await.map_err(internal)?;
    match answer {
        Ok(registered) => {
            if let Some((peers, elf)) = shared {
                let share = ShareProgram { id: registered.id, elf, name: registered.name.clone() };
                peers.send(share).await.map_err(internal)?.map_err(|err| {
                    let message =
                        format!("program {} is registered here but not shared with the cluster: {err}", registered.id);
                    RpcError::new(codes::CLUSTER_UNAVAILABLE, message)
                })?;
            }
            Ok(Reply::ProgramId(ProgramIdReply {
                program_id: HexBytes(registered.id.0.to_vec()),
                isa: registered.isa,
                name: registered.name,
            }))
        }
        Err(RegistryError::Elf(err)) => Err(RpcError::new(codes::INVALID_PROGRAM, format!("invalid program: {err}"))),
        Err(err @ RegistryError::Name(_)) => Err(RpcError::invalid_params(err.to_string())),
        Err(RegistryError::Store(err)) => Err(super::rejections::store_refusal(err)),
        Err(err) => Err(internal(err)),
    }
}

/// `coproc_submitJob`: decode, check limits, recover the signer, charge
/// its quotas, check it (with a chain, `onchain`), admit (nonce and queue),
/// dispatch, and answer once the `Pending` record is durable. A request
/// refused after its quota was charged is refunded.
async fn submit_job(shared: &Shared, p: SubmitJob) -> Result<Reply, RpcError> {
    let ctx = &shared.ctx;
    refuse_when_shutting_down(ctx)?;
    let checked = check_request(shared, p.request.0, p.signature.0, p.offchain_input.0, p.relay_strategy).await?;
    if ctx.peers.is_some() {
        return super::cluster::submit(shared, checked.spec, checked.charge, p.wait).await;
    }
    let (id, program, charge) = (checked.spec.id, checked.spec.program_id, checked.charge);
    let admitted = ctx.intake.admit(checked.spec, p.wait).map_err(|err| admission_refused(shared, id, charge, err))?;
    match durable(admitted.durable.await) {
        Ok(()) => match admitted.executed {
            // The waiter carries the result; a dropped waiter means it was
            // not recorded here (cancelled, or a store failure): the store
            // says what became of the job.
            Some(executed) => match executed.await {
                Ok(result) => Ok(Reply::Result(Box::new(executed_reply(ctx, id, program, &result)))),
                Err(_) => get_result(ctx, &JobIdParams { job_id: HexBytes(id.0.to_vec()) }),
            },
            None => Ok(Reply::JobId(JobIdParams { job_id: HexBytes(id.0.to_vec()) })),
        },
        // Not admitted after all (a full disk, a failed store): like every
        // refusal after the charge, it costs the signer nothing.
        Err(err) => {
            shared.quotas.refund(charge);
            Err(err)
        }
    }
}

/// `coproc_submitJobs`: every request is checked as `coproc_submitJob`
/// checks one (concurrently: signature recoveries on the verifier pool,
/// onchain checks in the same batches) and answered on its own, in order;
/// the admitted ones are recorded with one durable write and answered
/// `{jobId}` once it is done.
async fn submit_jobs(shared: &Shared, p: SubmitJobs) -> Result<Reply, RpcError> {
    let ctx = &shared.ctx;
    refuse_when_shutting_down(ctx)?;
    let max = ctx.config.api.max_batch_jobs;
    if p.jobs.len() > max {
        return Err(RpcError::new(
            codes::TOO_LARGE,
            format!("a batch of {} jobs is over api.max_batch_jobs ({max}); split it", p.jobs.len()),
        ));
    }
    let checks = p
        .jobs
        .into_iter()
        .map(|job| check_request(shared, job.request.0, job.signature.0, job.offchain_input.0, job.relay_strategy));
    let checked = futures_util::future::join_all(checks).await;
    if ctx.peers.is_some() {
        let published = checked.into_iter().map(|check| async move {
            let check = check?;
            super::cluster::submit_one(shared, check.spec, check.charge).await
        });
        return Ok(batch_reply(ctx, futures_util::future::join_all(published).await));
    }
    let specs: Vec<Arc<JobSpec>> =
        checked.iter().filter_map(|check| check.as_ref().ok().map(|c| Arc::clone(&c.spec))).collect();
    let batch = ctx.intake.admit_batch(&specs);
    let mut admissions = batch.admitted.into_iter();
    let mut results: Vec<Result<Checked, RpcError>> = checked
        .into_iter()
        .map(|check| {
            let check = check?;
            match admissions.next() {
                Some(Ok(())) => Ok(check),
                Some(Err(err)) => Err(admission_refused(shared, check.spec.id, check.charge, err)),
                None => Err(internal("a batch lost track of an admission")),
            }
        })
        .collect();
    if let Some(written) = batch.durable {
        if let Err(err) = durable(written.await) {
            for result in &mut results {
                if let Ok(check) = result {
                    shared.quotas.refund(check.charge);
                    *result = Err(err.clone());
                }
            }
        }
    }
    let results = results.into_iter().map(|result| result.map(|check| HexBytes(check.spec.id.0.to_vec()))).collect();
    Ok(batch_reply(ctx, results))
}

/// A batch's answers, in order; each refusal counted.
fn batch_reply(ctx: &ApiContext, results: Vec<Result<HexBytes, RpcError>>) -> Reply {
    let results = results
        .into_iter()
        .map(|result| {
            if let Err(err) = &result {
                count_refusal(ctx, err);
            }
            BatchItem::new(result)
        })
        .collect();
    Reply::Batch(BatchReply { results })
}

/// A request checked, its signer charged: ready for admission.
struct Checked {
    spec: Arc<JobSpec>,
    charge: Charge,
}

/// Everything `coproc_submitJob` checks before admission: the request
/// decodes and is within the limits, its program is registered, there is
/// room in the queue, the signature recovers to an allowed signer (with a
/// chain, one the consumer accepts, and the job ID is unused onchain), and
/// the signer's quotas cover it (charged here; refunded if a check after
/// the charge refuses it).
async fn check_request(
    shared: &Shared,
    request: Vec<u8>,
    signature: Vec<u8>,
    offchain_input: Vec<u8>,
    relay: RelayStrategy,
) -> Result<Checked, RpcError> {
    let ctx = &shared.ctx;
    let onchain = shared.onchain.as_ref();
    let decoded = OffchainJobRequest::abi_decode(&request)
        .map_err(|err| RpcError::invalid_params(format!("request is not an ABI-encoded OffchainJobRequest: {err}")))?;
    let ordered = relay == RelayStrategy::Ordered;
    let spec = JobSpec::from_offchain(
        request.clone(),
        &decoded,
        offchain_input,
        signature.clone(),
        ordered,
        &ctx.config.limits,
    )
    .map_err(|err| match err.is_too_large() {
        true => RpcError::new(codes::TOO_LARGE, err.to_string()),
        false => RpcError::invalid_params(err.to_string()),
    })?;
    if !ctx.programs.contains(&spec.program_id) {
        return Err(RpcError::new(codes::UNKNOWN_PROGRAM, format!("program {} is not registered", spec.program_id)));
    }
    ctx.board.has_room(spec.input_bytes()).map_err(|err| admit_error(ctx, err))?;
    let spec = match ctx.chain.as_ref().and_then(|chain| chain.blobs) {
        Some(limit) if !spec.offchain_input.is_empty() => posting_blobs(ctx, spec, limit).await?,
        _ => spec,
    };

    let id = spec.id;
    let refused = |err: RpcError| {
        // Worth retrying: not a refusal of the request.
        if err.code != codes::CHAIN_UNAVAILABLE && err.code != codes::BUSY {
            ctx.rejections.record(id, err.message.clone());
        }
        err
    };
    let rules = if onchain.is_some() { Rules::Ecrecover } else { Rules::Lenient };
    let verify = Verify { request, signature: signature.clone(), rules };
    let recovered = ctx.verifier.send(verify).await.map_err(internal)?.map_err(|err| refused(bad_signature(err)))?;
    if onchain.is_none() && !ctx.signers.allowed.contains(&recovered.signer) {
        let signer = recovered.signer;
        return Err(refused(RpcError::new(
            codes::BAD_SIGNATURE,
            format!("signer {signer} is not allowed for offchain jobs"),
        )));
    }
    let charge = charge_quota(shared, recovered.signer, spec.max_cycles)?;
    if let Some(onchain) = onchain {
        let checked = check_onchain(ctx, onchain, &decoded, signature, recovered.digest, id).await;
        if let Err(err) = checked {
            shared.quotas.refund(charge);
            return Err(refused(err));
        }
    }
    Ok(Checked { spec: Arc::new(spec), charge })
}

/// `spec` with the hashes of the blobs its offchain input goes onchain in,
/// computed on the verifier pool; refused if the input takes more than
/// `limit` blobs.
async fn posting_blobs(ctx: &ApiContext, mut spec: JobSpec, limit: usize) -> Result<JobSpec, RpcError> {
    let input = std::mem::take(&mut spec.offchain_input);
    let (input, hashes) = ctx.blob_hashes.send(BlobHashes { input, limit }).await.map_err(internal)?;
    spec.offchain_input = input;
    match hashes {
        Ok(hashes) => Ok(spec.posting_blobs(hashes)),
        Err(err @ BlobError::TooLarge { .. }) => Err(RpcError::new(
            codes::TOO_LARGE,
            format!("{err} (chain.max_blobs_per_job): it is posted onchain as blobs"),
        )),
        Err(err) => Err(internal(err)),
    }
}

fn refuse_when_shutting_down(ctx: &ApiContext) -> Result<(), RpcError> {
    if ctx.shutting_down.load(Ordering::Relaxed) {
        return Err(RpcError::new(codes::SHUTTING_DOWN, "the engine is shutting down; retry after restart"));
    }
    Ok(())
}

/// The board refused a checked request: its charge is refunded, and a used
/// nonce is remembered as the request's rejection.
fn admission_refused(shared: &Shared, id: JobId, charge: Charge, err: AdmitError) -> RpcError {
    let ctx = &shared.ctx;
    shared.quotas.refund(charge);
    let err = admit_error(ctx, err);
    if err.code == codes::NONCE_USED {
        ctx.rejections.record(id, err.message.clone());
    }
    err
}

/// What became of admitted jobs' `Pending` records.
fn durable(written: Result<Result<(), CommitError>, RecvError>) -> Result<(), RpcError> {
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(super::rejections::commit_refusal(err)),
        Err(_) => Err(internal("the store closed before the job was durable")),
    }
}

/// Counts a refusal the way [`call`] counts a failed call.
fn count_refusal(ctx: &ApiContext, err: &RpcError) {
    if err.code != codes::BUSY && err.code != codes::QUOTA {
        ctx.metrics.engine.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

/// `coproc_call`: runs a registered program on the given inputs exactly as
/// a job would run (an executor's warm VM, the job limits, the meter) and
/// answers its outcome. Nothing is stored, signed or relayed, so it needs
/// no signature; it is refused while the job queue is full, and its own
/// rate and in-flight bound (`api.calls_per_second`,
/// `api.max_calls_in_flight`) keep it from starving real jobs.
async fn call_program(shared: &Shared, p: CallParams) -> Result<Reply, RpcError> {
    let ctx = &shared.ctx;
    refuse_when_shutting_down(ctx)?;
    let program_id = program_id(&p.program_id)?;
    let limits = &ctx.config.limits;
    let max_cycles = p.max_cycles.unwrap_or(limits.default_max_cycles);
    let (onchain, offchain) = (p.onchain_input.0, p.offchain_input.0);
    check_limits(limits, onchain.len(), offchain.len(), max_cycles)
        .map_err(|err| RpcError::new(codes::TOO_LARGE, err.to_string()))?;
    if !ctx.programs.contains(&program_id) {
        return Err(RpcError::new(codes::UNKNOWN_PROGRAM, format!("program {program_id} is not registered")));
    }
    ctx.board.has_room(onchain.len() + offchain.len()).map_err(|err| admit_error(ctx, err))?;
    let _permit = shared.calls.enter(std::time::Instant::now())?;
    let job_limits =
        JobLimits { max_cycles, max_memory_bytes: limits.max_memory_bytes, max_output_bytes: limits.max_output_bytes };
    let run = DryRun { program_id, onchain_input: onchain, offchain_input: offchain, limits: job_limits };
    match ctx.dry_runs.send(run).await.map_err(internal)? {
        Ok(ran) => {
            let micros = u64::try_from(ran.wall.as_micros()).unwrap_or(u64::MAX);
            Ok(Reply::Run(Box::new(RunReply::new(ran.isa, &ran.outcome, micros))))
        }
        Err(ExecuteError::UnknownProgram(id)) => {
            Err(RpcError::new(codes::UNKNOWN_PROGRAM, format!("program {id} is not registered")))
        }
        Err(err) => Err(internal(err)),
    }
}

/// The reply for a job of `program` whose result was just recorded, from
/// memory.
fn executed_reply(ctx: &ApiContext, id: JobId, program: ProgramId, result: &Finished) -> JobResult {
    let mut reply = empty_reply(id, None);
    fill_result(&mut reply, result.status(), result);
    reply.isa = ctx.programs.isa(&program);
    reply
}

/// Charges the signer's quotas for one job asking for `max_cycles`.
fn charge_quota(shared: &Shared, signer: Address, max_cycles: u64) -> Result<Charge, RpcError> {
    shared.quotas.charge(signer, max_cycles, std::time::Instant::now()).map_err(|err| {
        let counter = match err {
            QuotaError::Jobs { .. } => &shared.ctx.metrics.engine.quota_refused_jobs,
            QuotaError::Cycles { .. } => &shared.ctx.metrics.engine.quota_refused_cycles,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        RpcError::new(codes::QUOTA, err.to_string())
    })
}

fn bad_signature(err: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::BAD_SIGNATURE, format!("bad request signature: {err}"))
}

/// With a chain, the chain decides, as the JobManager will at settlement:
/// the consumer must accept the signature over the request's EIP-191
/// `digest` (EIP-1271 `isValidSignature`), and the job ID (nonce and
/// consumer) must be unused onchain. A signature that recovers to no key
/// under `ECDSA.tryRecover`'s rules was refused before, on a verifier
/// thread, without asking the node; the rest are checked in batches
/// (`onchain.rs`).
async fn check_onchain(
    ctx: &ApiContext,
    onchain: &OnchainChecks,
    request: &OffchainJobRequest,
    signature: Vec<u8>,
    digest: alloy::primitives::B256,
    id: JobId,
) -> Result<(), RpcError> {
    let check = OffchainCheck { consumer: request.consumer, digest, signature: signature.into(), job_id: id.to_b256() };
    let answer = onchain.check(check).await.map_err(|err| match err {
        CheckError::Busy(_) => {
            ctx.metrics.engine.busy.fetch_add(1, Ordering::Relaxed);
            RpcError::new(codes::BUSY, err.to_string())
        }
        CheckError::Chain(err) => onchain::unavailable(err),
        CheckError::Stopped => internal(err),
    })?;
    onchain::verdict(answer, request.consumer, request.nonce)
}

/// One past the highest nonce the engine has seen for the consumer and,
/// with a chain, at least the consumer's own `getNextNonce()`, so an
/// offchain job does not take a nonce an onchain one already used.
async fn next_nonce(ctx: &ApiContext, p: &ConsumerParams) -> Result<Reply, RpcError> {
    let consumer = address(&p.consumer)?;
    let mut nonce = ctx.board.next_nonce(&consumer);
    // The jobs every engine of the cluster took in.
    if let Some(peers) = &ctx.peers {
        let cluster = peers.next_nonce.send(FetchNextNonce { consumer }).await.map_err(internal)?;
        nonce = nonce.max(cluster.map_err(|err| {
            RpcError::new(codes::CLUSTER_UNAVAILABLE, format!("cannot read the consumer's nonce: {err}"))
        })?);
    }
    if let Some(chain) = &ctx.chain {
        match chain.chain.next_nonce(consumer).await {
            Ok(onchain) => nonce = nonce.max(onchain),
            Err(err) if err.is_transient() => {
                return Err(RpcError::new(codes::CHAIN_UNAVAILABLE, format!("cannot read the consumer's nonce: {err}")))
            }
            // Not a Consumer contract (an EOA, say): the engine's count stands.
            Err(_) => {}
        }
    }
    Ok(Reply::Nonce(NonceReply { nonce }))
}

async fn pending_jobs(ctx: &ApiContext, p: &ConsumerParams) -> Result<Reply, RpcError> {
    let consumer = address(&p.consumer)?;
    let mut reply =
        PendingReply { nonces: ctx.board.pending_nonces(&consumer), awaiting_relay: vec![], blocked_on: None };
    if let Some(chain) = &ctx.chain {
        let lane = chain.lanes.send(LaneQuery { consumer }).await.map_err(internal)?;
        reply.awaiting_relay = lane.awaiting;
        reply.blocked_on = lane.blocked_on;
    }
    Ok(Reply::Pending(reply))
}

async fn retry(ctx: &ApiContext, p: &JobIdParams) -> Result<Reply, RpcError> {
    let id = job_id_param(p)?;
    let Some(chain) = &ctx.chain else {
        return Err(RpcError::new(codes::NOT_DEAD_LETTERED, "the engine has no chain; nothing is relayed"));
    };
    // In cluster mode, how it ends this time is recorded for every engine.
    let (ended, end) = match ctx.peers {
        Some(_) => {
            let (ended, end) = tokio::sync::oneshot::channel();
            (Some(ended), Some(end))
        }
        None => (None, None),
    };
    let err = match chain.retry.send(Retry { id, ended }).await.map_err(internal)? {
        Ok(()) => {
            if let Some(end) = end {
                super::cluster::follow_retry(ctx, id, end);
            }
            return get_result(ctx, p);
        }
        Err(err) => err,
    };
    // In cluster mode, maybe another engine's relayer gave up on it.
    if matches!(err, RetryError::Unknown(_) | RetryError::NotDeadLettered { .. }) {
        if let Some(node) = super::cluster::dead_lettered_by(ctx, id).await {
            let message = format!("job {id} was dead-lettered by engine {node:?}, not by this one: retry it there");
            return Err(RpcError::new(codes::NOT_DEAD_LETTERED, message));
        }
    }
    match err {
        RetryError::Unknown(_) => Err(RpcError::new(codes::UNKNOWN_JOB, format!("no job {id}"))),
        RetryError::NotDeadLettered { .. } => Err(RpcError::new(codes::NOT_DEAD_LETTERED, err.to_string())),
        err => Err(internal(err)),
    }
}

fn job_id_param(p: &JobIdParams) -> Result<JobId, RpcError> {
    JobId::try_from(p.job_id.0.as_slice())
        .map_err(|len| RpcError::invalid_params(format!("jobId must be 32 bytes, got {len}")))
}

fn admit_error(ctx: &ApiContext, err: AdmitError) -> RpcError {
    match err {
        AdmitError::Busy { .. } => {
            ctx.metrics.engine.busy.fetch_add(1, Ordering::Relaxed);
            RpcError::new(codes::BUSY, err.to_string())
        }
        AdmitError::NonceUsed { .. } => RpcError::new(codes::NONCE_USED, err.to_string()),
        AdmitError::Store(err) => super::rejections::store_refusal(err),
    }
}

fn get_result(ctx: &ApiContext, p: &JobIdParams) -> Result<Reply, RpcError> {
    let id = job_id_param(p)?;
    let rejection = ctx.rejections.get(&id);
    // A job in flight has no result or transaction yet: the board answers
    // without a store read.
    let status = match ctx.board.status(&id) {
        Some(status) => status.as_str(),
        None => match stored_result(ctx, id, rejection.clone())? {
            Some(stored) => return Ok(Reply::Result(Box::new(stored))),
            None if rejection.is_some() => "rejected",
            None => return Err(RpcError::new(codes::UNKNOWN_JOB, format!("no job {id}"))),
        },
    };
    let mut reply = empty_reply(id, rejection);
    reply.status = status.to_owned();
    Ok(Reply::Result(Box::new(reply)))
}

/// A job's `coproc_getResult` object from the store alone (`None`: the
/// store has no such job).
pub(crate) fn stored_result(
    ctx: &ApiContext,
    id: JobId,
    rejection: Option<String>,
) -> Result<Option<JobResult>, RpcError> {
    let Some(entry) = ctx.store.job(&id).map_err(internal)? else { return Ok(None) };
    let mut reply = empty_reply(id, rejection);
    reply.status = entry.status.as_str().to_owned();
    reply.tx_hash = entry.tx_hash.map(|tx| HexBytes(tx.to_vec()));
    if entry.status == Status::DeadLettered {
        reply.relay_error = ctx.store.dead_letter(&id).map_err(internal)?.map(|letter| letter.reason);
    }
    // The ISA is the program's (the store keeps the ELF, not the ISA):
    // from the job's `Pending` record, which pruning may have removed.
    let executed = match entry.status.is_executed() {
        true => ctx.store.executed(&entry).map_err(internal)?,
        false => None,
    };
    let spec = match executed {
        Some((spec, result)) => {
            fill_result(&mut reply, entry.status, &result);
            Some(spec)
        }
        // Not executed (cancelled before it ran, say): its request alone.
        None => ctx.store.spec(&entry).map_err(internal)?,
    };
    reply.isa = spec.and_then(|spec| ctx.programs.isa(&spec.program_id));
    Ok(Some(reply))
}

async fn replay(ctx: &ApiContext, p: ReplayParams) -> Result<Reply, RpcError> {
    let program = p.program_id.as_ref().map(program_id).transpose()?;
    let range = crate::replay::Range { from: p.from.unwrap_or(0), to: p.to.unwrap_or(u64::MAX), program };
    let store = ctx.store.clone();
    let max_input_bytes = ctx.config.limits.max_input_bytes;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("replay".into())
        .spawn(move || drop(tx.send(crate::replay::replay(&store, &range, max_input_bytes, |_, _| {}))))
        .map_err(internal)?;
    let report = rx.await.map_err(|_| internal("replay thread crashed"))?.map_err(internal)?;
    Ok(Reply::Replay(ReplayReply {
        replayed: report.replayed,
        matched: report.matched,
        mismatched: report.mismatched.into_iter().map(|id| HexBytes(id.0.to_vec())).collect(),
        first_retained: report.first_retained,
    }))
}

fn inject_panic(ctx: &ApiContext, p: &PanicParams) -> Result<Reply, RpcError> {
    let Some(faults) = &ctx.faults else {
        return Err(RpcError::new(codes::METHOD_NOT_FOUND, "method not found: debug_panic (fault injection is off)"));
    };
    let target = p.actor.parse::<ActorName>().ok().and_then(|name| faults.get(&name));
    let Some(mailbox) = target else {
        return Err(RpcError::invalid_params(format!("no actor {:?} takes injected faults", p.actor)));
    };
    mailbox.do_send(Panic);
    Ok(Reply::Empty(Empty {}))
}
