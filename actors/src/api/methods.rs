//! What each method does. Both encodings land here with a typed [`Call`].

use super::verifier::Verify;
use super::wire::*;
use super::ApiContext;
use super::ChainAccess;
use crate::jobs::AdmitError;
use crate::protocol::abi::{job_id, OffchainJobRequest};
use crate::registry::elf::ProgramId;
use crate::registry::{RegistryError, SubmitProgram as RegisterProgram};
use crate::store::{JobId, JobSpec, Origin, Status};
use crate::submitter::relay::{LaneQuery, Retry, RetryError};
use crate::supervisor::Panic;
use alloy::primitives::{keccak256, Address, B256};
use alloy::sol_types::SolValue;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs one call. Refusals other than `busy` count as rejected requests.
pub(crate) async fn call(ctx: &ApiContext, call: Call) -> Result<Reply, RpcError> {
    let result = dispatch(ctx, call).await;
    if let Err(err) = &result {
        if err.code != codes::BUSY {
            ctx.metrics.engine.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }
    result
}

async fn dispatch(ctx: &ApiContext, call: Call) -> Result<Reply, RpcError> {
    match call {
        Call::SubmitProgram(p) => submit_program(ctx, p).await,
        Call::ContainsProgram(p) => {
            let id = program_id(&p.program_id)?;
            Ok(Reply::Contains(ContainsReply { contains: ctx.programs.contains(&id) }))
        }
        Call::ListPrograms(_) => Ok(Reply::Programs(ProgramsReply {
            program_ids: ctx.programs.ids().into_iter().map(|id| HexBytes(id.0.to_vec())).collect(),
        })),
        Call::SubmitJob(p) => submit_job(ctx, p).await,
        Call::GetResult(p) => get_result(ctx, &p),
        Call::GetPendingJobs(p) => pending_jobs(ctx, &p).await,
        Call::NextNonce(p) => next_nonce(ctx, &p).await,
        Call::Metrics(_) => Ok(Reply::Metrics(Box::new(ctx.metrics.snapshot(ctx.store.size_on_disk())))),
        Call::Status(_) => Ok(Reply::Status(StatusReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            operator: HexBytes(ctx.operator.to_vec()),
            uptime_seconds: ctx.metrics.uptime().as_secs(),
            chain: ctx.chain.as_ref().map(|c| {
                format!(
                    "{} (JobManager {})",
                    ctx.config.chain.as_ref().map_or("", |c| c.rpc_url.as_str()),
                    c.chain.job_manager()
                )
            }),
            dev_signer: ctx.dev_signer.map(|a| HexBytes(a.to_vec())),
        })),
        Call::Replay(p) => replay(ctx, p).await,
        Call::RetryJob(p) => retry(ctx, &p).await,
        Call::Panic(p) => inject_panic(ctx, &p),
    }
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

fn internal(err: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::INTERNAL, err.to_string())
}

async fn submit_program(ctx: &ApiContext, p: SubmitProgram) -> Result<Reply, RpcError> {
    let max = ctx.config.limits.max_program_bytes;
    if p.elf.0.len() > max {
        return Err(RpcError::new(
            codes::TOO_LARGE,
            format!("program is {} bytes, over the limit of {max}", p.elf.0.len()),
        ));
    }
    ctx.metrics.actor("registry").received();
    let answer = ctx.registry.send(RegisterProgram { elf: p.elf.0 }).await.map_err(internal)?;
    match answer {
        Ok(id) => Ok(Reply::ProgramId(ProgramIdReply { program_id: HexBytes(id.0.to_vec()) })),
        Err(RegistryError::Elf(err)) => Err(RpcError::new(codes::INVALID_PROGRAM, format!("invalid program: {err}"))),
        Err(err) => Err(internal(err)),
    }
}

/// `coproc_submitJob`: decode, check limits, verify the signer, admit
/// (nonce and queue), dispatch, and answer once the `Pending` record is
/// durable.
async fn submit_job(ctx: &ApiContext, p: SubmitJob) -> Result<Reply, RpcError> {
    if ctx.shutting_down.load(Ordering::Relaxed) {
        return Err(RpcError::new(codes::SHUTTING_DOWN, "the engine is shutting down; retry after restart"));
    }
    let request = OffchainJobRequest::abi_decode(&p.request.0)
        .map_err(|err| RpcError::invalid_params(format!("request is not an ABI-encoded OffchainJobRequest: {err}")))?;
    let limits = &ctx.config.limits;
    for (which, len) in [("onchain", request.onchainInput.len()), ("offchain", p.offchain_input.0.len())] {
        if len > limits.max_input_bytes {
            return Err(RpcError::new(
                codes::TOO_LARGE,
                format!("{which} input is {len} bytes, over the limit of {}", limits.max_input_bytes),
            ));
        }
    }
    if request.maxCycles > limits.max_job_cycles {
        return Err(RpcError::new(
            codes::TOO_LARGE,
            format!("maxCycles {} is over the limit of {}", request.maxCycles, limits.max_job_cycles),
        ));
    }
    if keccak256(&p.offchain_input.0) != request.offchainInputHash {
        return Err(RpcError::invalid_params("offchainInputHash is not keccak256 of offchainInput"));
    }
    let program_id = program_id(&HexBytes(request.programID.to_vec()))?;
    if !ctx.programs.contains(&program_id) {
        return Err(RpcError::new(codes::UNKNOWN_PROGRAM, format!("program {program_id} is not registered")));
    }
    let input_bytes = request.onchainInput.len() + p.offchain_input.0.len();
    ctx.board.has_room(input_bytes).map_err(|err| admit_error(ctx, err))?;

    let id = job_id(request.nonce, request.consumer).0;
    let checked = match &ctx.chain {
        Some(chain) => check_onchain(chain, &request, &p, id).await,
        None => check_signer(ctx, &p).await,
    };
    if let Err(err) = checked {
        if err.code != codes::CHAIN_UNAVAILABLE {
            ctx.rejections.record(id, err.message.clone());
        }
        return Err(err);
    }
    let spec = Arc::new(JobSpec {
        id,
        nonce: request.nonce,
        consumer: request.consumer.0 .0,
        program_id,
        max_cycles: request.maxCycles,
        max_memory_bytes: limits.max_memory_bytes,
        max_output_bytes: limits.max_output_bytes as u64,
        onchain_input: request.onchainInput.to_vec(),
        offchain_input: p.offchain_input.0,
        origin: Origin::Offchain { signature: p.signature.0, ordered: p.relay_strategy == RelayStrategy::Ordered },
    });
    let admitted = ctx.intake.admit(spec, p.wait).map_err(|err| {
        let err = admit_error(ctx, err);
        if err.code == codes::NONCE_USED {
            ctx.rejections.record(id, err.message.clone());
        }
        err
    })?;
    match admitted.durable.await {
        Ok(Ok(())) => {
            let job_id = JobIdParams { job_id: HexBytes(id.to_vec()) };
            match admitted.executed {
                Some(executed) => {
                    // A dropped waiter means the result could not be recorded;
                    // the job stays pending and get_result says so.
                    let _ = executed.await;
                    get_result(ctx, &job_id)
                }
                None => Ok(Reply::JobId(job_id)),
            }
        }
        Ok(Err(err)) => Err(internal(err)),
        Err(_) => Err(internal("the store closed before the job was durable")),
    }
}

/// With no chain: the signer recovered from the EIP-191 signature must be
/// in `offchain.allowed_signers` (or be the dev signer).
async fn check_signer(ctx: &ApiContext, p: &SubmitJob) -> Result<(), RpcError> {
    ctx.metrics.actor("verifier").received();
    let signer = ctx
        .verifier
        .send(Verify { request: p.request.0.clone(), signature: p.signature.0.clone() })
        .await
        .map_err(internal)?;
    let signer = signer.map_err(|err| RpcError::new(codes::BAD_SIGNATURE, format!("bad request signature: {err}")))?;
    if !ctx.allowed_signers.contains(&signer) {
        return Err(RpcError::new(codes::BAD_SIGNATURE, format!("signer {signer} is not allowed for offchain jobs")));
    }
    Ok(())
}

/// With a chain, the chain decides, as the JobManager will at settlement:
/// the consumer must accept the signature over the request's EIP-191
/// digest (EIP-1271 `isValidSignature`), and the job ID (nonce and
/// consumer) must be unused onchain.
async fn check_onchain(
    chain: &ChainAccess,
    request: &OffchainJobRequest,
    p: &SubmitJob,
    id: JobId,
) -> Result<(), RpcError> {
    let unavailable = |err: crate::chain::ChainError| {
        RpcError::new(codes::CHAIN_UNAVAILABLE, format!("cannot check the request onchain: {err}"))
    };
    let digest = crate::protocol::eip191::digest(&p.request.0);
    let accepted =
        chain.chain.accepts_signature(request.consumer, digest, &p.signature.0).await.map_err(unavailable)?;
    if !accepted {
        return Err(RpcError::new(
            codes::BAD_SIGNATURE,
            format!("bad request signature: consumer {} rejects it (EIP-1271 isValidSignature)", request.consumer),
        ));
    }
    let state = chain.chain.job_state(B256::from(id)).await.map_err(unavailable)?;
    if state != crate::chain::job_state::NONE {
        return Err(RpcError::new(
            codes::NONCE_USED,
            format!("nonce {} already used onchain by consumer {}", request.nonce, request.consumer),
        ));
    }
    Ok(())
}

/// One past the highest nonce the engine has seen for the consumer and,
/// with a chain, at least the consumer's own `getNextNonce()`, so an
/// offchain job does not take a nonce an onchain one already used.
async fn next_nonce(ctx: &ApiContext, p: &ConsumerParams) -> Result<Reply, RpcError> {
    let consumer = address(&p.consumer)?;
    let mut nonce = ctx.board.next_nonce(&consumer.0 .0);
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
        PendingReply { nonces: ctx.board.pending_nonces(&consumer.0 .0), awaiting_relay: vec![], blocked_on: None };
    if let Some(chain) = &ctx.chain {
        let lane = chain.relayer.send(LaneQuery { consumer: consumer.0 .0 }).await.map_err(internal)?;
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
    match chain.relayer.send(Retry { id }).await.map_err(internal)? {
        Ok(()) => get_result(ctx, p),
        Err(RetryError::Unknown(_)) => Err(RpcError::new(codes::UNKNOWN_JOB, format!("no job 0x{}", hex::encode(id)))),
        Err(err @ RetryError::NotDeadLettered { .. }) => Err(RpcError::new(codes::NOT_DEAD_LETTERED, err.to_string())),
        Err(err) => Err(internal(err)),
    }
}

fn job_id_param(p: &JobIdParams) -> Result<JobId, RpcError> {
    p.job_id
        .0
        .as_slice()
        .try_into()
        .map_err(|_| RpcError::invalid_params(format!("jobId must be 32 bytes, got {}", p.job_id.0.len())))
}

fn admit_error(ctx: &ApiContext, err: AdmitError) -> RpcError {
    match err {
        AdmitError::Busy { .. } => {
            ctx.metrics.engine.busy.fetch_add(1, Ordering::Relaxed);
            RpcError::new(codes::BUSY, err.to_string())
        }
        AdmitError::NonceUsed { .. } => RpcError::new(codes::NONCE_USED, err.to_string()),
        AdmitError::Store(err) => internal(err),
    }
}

fn get_result(ctx: &ApiContext, p: &JobIdParams) -> Result<Reply, RpcError> {
    let id = job_id_param(p)?;
    let mut reply = JobResult {
        job_id: p.job_id.clone(),
        status: String::new(),
        exit_code: None,
        cycles: None,
        peak_memory_bytes: None,
        output: None,
        result_with_metadata: None,
        signature: None,
        failure_reason: None,
        tx_hash: None,
        relay_error: None,
        rejection: ctx.rejections.get(&id),
    };
    // A job in flight has no result or transaction yet: the board answers
    // without a store read.
    let status = match ctx.board.status(&id) {
        Some(status) => status,
        None => match ctx.store.job(&id).map_err(internal)? {
            Some(entry) => {
                reply.tx_hash = entry.tx_hash.map(|tx| HexBytes(tx.to_vec()));
                entry.status
            }
            None if reply.rejection.is_some() => {
                reply.status = "rejected".to_owned();
                return Ok(Reply::Result(Box::new(reply)));
            }
            None => return Err(RpcError::new(codes::UNKNOWN_JOB, format!("no job 0x{}", hex::encode(id)))),
        },
    };
    if status == Status::DeadLettered {
        reply.relay_error = ctx.store.dead_letter(&id).map_err(internal)?.map(|letter| letter.reason);
    }
    reply.status = status.as_str().to_owned();
    if status.is_executed() {
        if let Some(result) = ctx.store.result(&id).map_err(internal)? {
            reply.exit_code = result.exit_code;
            reply.cycles = Some(result.cycles);
            reply.peak_memory_bytes = Some(result.peak_memory_bytes);
            reply.output = Some(HexBytes(result.output));
            reply.failure_reason = result.failure.map(|f| f.to_string());
            if status != Status::Failed {
                reply.result_with_metadata = Some(HexBytes(result.result_with_metadata));
                reply.signature = Some(HexBytes(result.signature));
            }
        }
    }
    Ok(Reply::Result(Box::new(reply)))
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
        mismatched: report.mismatched.into_iter().map(|id| HexBytes(id.to_vec())).collect(),
    }))
}

fn inject_panic(ctx: &ApiContext, p: &PanicParams) -> Result<Reply, RpcError> {
    if !ctx.fault_injection {
        return Err(RpcError::new(codes::METHOD_NOT_FOUND, "method not found: debug_panic (fault injection is off)"));
    }
    match p.actor.as_str() {
        "registry" => ctx.registry.do_send(Panic),
        "executor" => ctx.executor.do_send(Panic),
        "submitter" => ctx.submitter.do_send(Panic),
        other => return Err(RpcError::invalid_params(format!("no actor {other:?} takes injected faults"))),
    }
    ctx.metrics.actor(&p.actor).received();
    Ok(Reply::Empty(Empty {}))
}
