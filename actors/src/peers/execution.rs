//! Executing the cluster's jobs: pull them from the work queue, run each
//! through this engine's own intake (so it is logged in this engine's sled
//! store and replays here), record its result in the cluster, then ack.

use crate::cluster::{Cluster, Delivery, SharedResult};
use crate::config::Limits;
use crate::intake::Intake;
use crate::job::{JobSpec, Origin};
use crate::metrics::{ActorMetrics, Metrics};
use crate::store::Store;
use alloy::primitives::Address;
use alloy::sol_types::SolValue;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a job cannot be taken now (the queue is full, the job is being
/// recovered here), it is offered again after this long.
const LATER: Duration = Duration::from_millis(250);

/// What running the cluster's jobs needs.
#[derive(Debug, Clone)]
pub(crate) struct ExecutionSetup {
    /// The cluster.
    pub(crate) cluster: Cluster,
    /// This engine's intake (admission, the `Pending` record, dispatch).
    pub(crate) intake: Intake,
    /// This engine's store (results are read from it).
    pub(crate) store: Store,
    /// This engine's limits, which a shared job must respect.
    pub(crate) limits: Limits,
    /// Jobs pulled and in flight at once.
    pub(crate) in_flight: usize,
    /// The peers actor's counters.
    pub(crate) metrics: Arc<ActorMetrics>,
    /// The engine's metrics (the cluster counters).
    pub(crate) engine: Arc<Metrics>,
    /// This engine's name in the cluster.
    pub(crate) node: String,
    /// Who may sign offchain requests here: a shared offchain job must be
    /// signed by one of them, as if it had been sent to this engine.
    pub(crate) allowed_signers: Arc<HashSet<Address>>,
    /// The cluster settles onchain (`[chain]`): a successful result is
    /// queued for a relayer before its job is acked.
    pub(crate) settle: bool,
}

/// Samples the depth of the cluster's queues (jobs, and with `settle`
/// results to settle) into the engine's metrics, every second, for as long
/// as the engine runs.
pub(crate) async fn sample_queue(cluster: Cluster, engine: Arc<Metrics>, settle: bool) {
    loop {
        match cluster.queued().await {
            Ok(queued) => engine.engine.cluster_jobs_queued.store(queued, Ordering::Relaxed),
            Err(err) => tracing::debug!(%err, "sampling the cluster's queue"),
        }
        if settle {
            match cluster.relays_queued().await {
                Ok(queued) => engine.engine.cluster_relays_queued.store(queued, Ordering::Relaxed),
                Err(err) => tracing::debug!(%err, "sampling the cluster's relay queue"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Pulls and runs the cluster's jobs for as long as the engine runs.
pub(crate) async fn execute_jobs(setup: ExecutionSetup) {
    let open = || setup.cluster.feed(setup.in_flight);
    super::pull_forever("jobs", setup.in_flight, open, |delivery| run(&setup, delivery)).await;
}

/// One delivered job: run here (or found run here already), its result
/// recorded in the cluster, then acked. Whatever fails leaves it unacked
/// or offered again, never acked without a recorded result.
async fn run(setup: &ExecutionSetup, delivery: Delivery) {
    setup.metrics.received();
    if delivery.attempt() > 1 {
        setup.engine.engine.cluster_redeliveries.fetch_add(1, Ordering::Relaxed);
    }
    let started = Instant::now();
    let ok = match take(setup, &delivery).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(%err, attempt = delivery.attempt(), "a cluster job");
            false
        }
    };
    setup.metrics.handled(started.elapsed(), ok);
}

async fn take(setup: &ExecutionSetup, delivery: &Delivery) -> Result<(), String> {
    // Another engine sent it. A message that is no job, or whose job is
    // not what its signed request asks for, no engine runs: it is dropped.
    // One this engine may not run (a signer or a limit of its own) goes
    // back for another engine, up to the consumer's delivery limit.
    let spec = match delivery.spec() {
        Ok(spec) => spec,
        Err(err) => {
            delivery.discard().await;
            return Err(format!("refused: {err}"));
        }
    };
    let id = spec.id;
    match signed_here(&spec, &setup.allowed_signers) {
        Ok(()) => {}
        Err(Refusal::Tampered(err)) => {
            delivery.discard().await;
            return Err(format!("refused: job {id}: {err}"));
        }
        Err(Refusal::NotHere(err)) => {
            delivery.later(LATER).await;
            return Err(format!("left for another engine: job {id}: {err}"));
        }
    }
    if let Err(err) = spec.check_shared(&setup.limits) {
        delivery.later(LATER).await;
        return Err(format!("left for another engine: job {id}: {err}"));
    }
    // Run here before (this engine restarted after running it, before its
    // ack): share that result.
    if let Some(shared) = executed_here(setup, &spec)? {
        return record_and_ack(setup, delivery, &shared).await;
    }
    // Offered again (its engine died after recording the result, before its
    // ack), or an onchain job queued again by a listener after the
    // duplicate window: the recorded result stands, it is not run again.
    if delivery.attempt() > 1 || matches!(spec.origin, Origin::Onchain) {
        match setup.cluster.result(&id).await {
            Ok(Some(shared)) => return record_and_ack(setup, delivery, &shared).await,
            Ok(None) => {}
            Err(err) => tracing::warn!(job = %id, %err, "cannot read the job's recorded result; running it"),
        }
    }
    let admitted = match setup.intake.admit(Arc::new(spec.clone()), true) {
        Ok(admitted) => admitted,
        // Known here but not run yet (start-up recovery has it), or the
        // queue is full: again later.
        Err(err) => {
            delivery.later(LATER).await;
            return Err(format!("job {id}: not now ({err})"));
        }
    };
    match admitted.durable.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            delivery.later(LATER).await;
            return Err(format!("job {id}: its Pending record failed: {err}"));
        }
        Err(_) => return Err(format!("job {id}: the store writer stopped")),
    }
    let Some(mut executed) = admitted.executed else {
        return Err(format!("job {id}: no waiter"));
    };
    loop {
        tokio::select! {
            finished = &mut executed => {
                if finished.is_err() {
                    delivery.later(LATER).await;
                    return Err(format!("job {id}: dropped before it finished"));
                }
                break;
            }
            // Well inside the consumer's ack wait.
            () = tokio::time::sleep(setup.cluster.ack_wait() / 3) => delivery.in_progress().await,
        }
    }
    let shared = executed_here(setup, &spec)?.ok_or_else(|| format!("job {id}: finished, but not in the store"))?;
    record_and_ack(setup, delivery, &shared).await
}

/// Why a shared job is not run here.
enum Refusal {
    /// It is not what its signed request asks for: no engine runs it.
    Tampered(String),
    /// This engine does not allow its signer: another may.
    NotHere(String),
}

/// An offchain job must be exactly what its signed request asks for (the
/// request is what the signature covers), signed by a signer this engine
/// allows; an onchain job came from a `JobCreated` event.
fn signed_here(spec: &JobSpec, allowed: &HashSet<Address>) -> Result<(), Refusal> {
    let Some(offchain) = spec.origin.offchain() else { return Ok(()) };
    let (request, signature, offchain_input_hash) =
        (offchain.request, offchain.signature, &offchain.offchain_input_hash);
    let tampered = |what: String| Refusal::Tampered(what);
    let signer = crate::protocol::eip191::recover(request, signature)
        .map_err(|err| tampered(format!("its request's signature: {err}")))?;
    let decoded = crate::protocol::abi::OffchainJobRequest::abi_decode(request)
        .map_err(|err| tampered(format!("its request: {err}")))?;
    let asked = (decoded.nonce, decoded.consumer, decoded.programID.as_ref(), decoded.maxCycles);
    let shared = (spec.nonce, spec.consumer, &spec.program_id.0[..], spec.max_cycles);
    let inputs_asked = (decoded.onchainInput.as_ref(), decoded.offchainInputHash.0);
    if asked != shared || inputs_asked != (spec.onchain_input.as_slice(), *offchain_input_hash) {
        return Err(tampered("not the job its signed request asks for".to_owned()));
    }
    // The hashes the result will be signed with must be those of the blobs
    // its input makes.
    if !offchain.blob_hashes.is_empty() {
        let limit = crate::protocol::blobs::MAX_BLOBS_PER_JOB;
        let hashes = crate::protocol::blobs::versioned_hashes(&spec.offchain_input, limit)
            .map_err(|err| tampered(format!("its blobs: {err}")))?;
        if hashes.iter().map(|hash| hash.0).ne(offchain.blob_hashes.iter().copied()) {
            return Err(tampered("blob hashes that are not its input's".to_owned()));
        }
    }
    if !allowed.contains(&signer) {
        return Err(Refusal::NotHere(format!("signer {signer} is not allowed for offchain jobs here")));
    }
    Ok(())
}

/// The job's result from this engine's store, if it ran here.
fn executed_here(setup: &ExecutionSetup, spec: &JobSpec) -> Result<Option<SharedResult>, String> {
    let record = setup.store.executed_record(&spec.id).map_err(|err| format!("job {}: {err}", spec.id))?;
    Ok(record.map(|(spec, execution)| SharedResult { spec, execution, node: setup.node.clone() }))
}

async fn record_and_ack(setup: &ExecutionSetup, delivery: &Delivery, shared: &SharedResult) -> Result<(), String> {
    let id = shared.spec.id;
    let first = setup.cluster.record_result(shared).await.map_err(|err| format!("job {id}: {err}"))?;
    let engine = &setup.engine.engine;
    engine.cluster_jobs_run.fetch_add(1, Ordering::Relaxed);
    if first {
        engine.cluster_results_recorded.fetch_add(1, Ordering::Relaxed);
    } else {
        tracing::info!(job = %id, "another engine recorded this job's result first");
    }
    // Queued for settlement before the ack: an engine that dies in between
    // leaves the job to be offered again, and this is done again.
    if setup.settle && shared.execution.failure.is_none() {
        let queued = match shared.spec.is_ordered() {
            // To the holder of its consumer's lease, which keeps the order.
            true => setup.cluster.publish_ordered(&id, shared.spec.consumer).await,
            false => setup.cluster.publish_relay(&id).await,
        };
        if let Err(err) = queued {
            delivery.later(LATER).await;
            return Err(format!("job {id}: {err}"));
        }
    }
    delivery.ack().await.map_err(|err| format!("job {id}: {err}"))
}
