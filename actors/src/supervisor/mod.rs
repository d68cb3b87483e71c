//! The supervisor: reads the config, opens the store, starts every actor,
//! recovers unfinished jobs, samples metrics, and drains when asked to stop.
//!
//! It is the only module that names every actor: it starts each one and
//! hands the others its mailboxes. Sync actors restart themselves under
//! `pool::guarded`; the supervisor owns the order of start-up and shutdown.

use crate::api::{Api, ApiContext, ApiError, ChainAccess, Rejections, Signers, StopAccepting, Verifier};
use crate::board::JobBoard;
use crate::chain::{Chain, ChainError};
use crate::cluster::{Cluster, ClusterError};
use crate::config::Config;
use crate::executor::{Execute, Executor, ExecutorSetup};
use crate::health::{ChainProbe, HealthProbe};
use crate::intake::Intake;
use crate::job::JobSpec;
use crate::keys::{self, KeyError};
use crate::listener::{Listener, ListenerSetup};
use crate::metrics::{ActorName, Metrics};
use crate::peers::{
    execute_jobs, follow_changes, follow_programs, hold_leases, relay_results, sample_queue, ExecutionSetup, Peers,
    PeersAccess, RelaySetup, CHANGES_CAPACITY,
};
use crate::pool::{Handle, Mailbox, Panic};
use crate::programs::Programs;
use crate::registry::Registry;
use crate::relayer::{Relay, Relayer, RelayerSetup, Resumed};
use crate::store::{Store, StoreError, Unsettled};
use crate::submitter::{Submitter, SubmitterSetup};
use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};
use alloy::primitives::Address;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long `run` waits, once the actors have stopped, for their threads to
/// let go of the store.
const STORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a drain waits for jobs in flight before leaving them to
/// start-up recovery (they are durable either way).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the engine could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The data dir could not be created.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed to open (or another engine holds it).
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    /// A key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The socket could not be bound.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The actor system failed.
    #[error("actor system: {0}")]
    System(#[from] std::io::Error),
    /// The `[chain]` section is unusable.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The `[cluster]` servers cannot be used.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Creates the data dir, mode 0700, or makes sure an existing one is
/// private. It holds the keys, the api token, the socket and the store
/// (the jobs' inputs and results), so:
///
/// - one that another user owns, or that group or others may write to, is
///   refused (someone else could have put or swapped files in it: its
///   keys cannot be trusted), as ssh refuses such a directory;
/// - one that group or others may only read or enter (`mkdir` under the
///   usual umask makes 0755) is tightened to 0700, with a warning: nobody
///   else could have changed it, and the store's files must not be
///   readable through it.
pub fn create_data_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if !dir.exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::DirBuilder::new().mode(0o700).create(dir)?;
        // The umask may have taken bits away, never added any; set it exactly.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        return Ok(());
    }
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"));
    }
    let mode = meta.mode() & 0o7777;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("owned by uid {}, not by this user (uid {me}); refusing to trust its keys", meta.uid()),
        ));
    }
    if mode & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("mode {mode:o} lets others write to it; refusing to trust its keys (chmod 700 it)"),
        ));
    }
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "the data dir was readable by others; made 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT: what the binary hands [`run`]
/// as its shutdown.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; the engine stops only when killed");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutdown requested");
}

/// Runs the engine on the calling thread until `shutdown` resolves, then
/// drains (new jobs are refused, jobs in flight finish or stay durable for
/// the next start) and returns once the store is flushed.
///
/// The binary passes [`shutdown_signal`]; tests and benchmarks pass a
/// channel of their own and run the engine in their own process.
pub fn run(config: Config, shutdown: impl Future<Output = ()> + 'static) -> Result<(), EngineError> {
    let data_dir = config.data_dir.clone();
    create_data_dir(&data_dir)
        .map_err(|source| EngineError::DataDir { path: data_dir.display().to_string(), source })?;
    let store = Store::open_with(&data_dir.join("db"), &config.store)?;
    let operator = keys::load_or_generate(&data_dir.join(keys::OPERATOR_KEY))?;
    let dev_signer = if config.offchain.dev_signer {
        Some(keys::load_or_generate(&data_dir.join(keys::DEV_CONSUMER_KEY))?.address())
    } else {
        None
    };
    let mut allowed: HashSet<Address> = config.offchain.allowed_signers.iter().filter_map(|s| s.parse().ok()).collect();
    allowed.extend(dev_signer);
    tracing::info!(operator = %operator.address(), dev_signer = ?dev_signer, "keys loaded");
    let signers = Signers { operator: operator.address(), dev_signer, allowed };

    let threads = config.executor_threads();
    let metrics = Arc::new(Metrics::new(threads));
    let programs = Arc::new(Programs::load(&store, config.limits.max_program_bytes)?);
    let board = Arc::new(JobBoard::new(config.queue, &store)?);
    let unfinished = store.unfinished()?;
    // With the attempts that already failed the host, so that a job that
    // always does is quarantined, not retried at every start-up.
    let unfinished = unfinished
        .into_iter()
        .map(|spec| Ok((store.attempts(&spec.id)?.map_or(0, |attempts| attempts.count), spec)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let chain = match &config.chain {
        Some(section) => {
            let mut relayer_keys = vec![keys::load_or_generate(&data_dir.join(&section.relayer_key))?];
            for path in &section.relayer_keys {
                relayer_keys.push(keys::load_or_generate(&data_dir.join(path))?);
            }
            let addresses: Vec<Address> = relayer_keys.iter().map(|key| key.address()).collect();
            tracing::info!(relayers = ?addresses, rpc = %section.rpc_url, job_manager = %section.job_manager, "settling onchain");
            Some((Chain::new(section)?, section.clone(), relayer_keys, store.unsettled()?))
        }
        None => None,
    };
    let fault_injection = std::env::var_os("COPROCESSOR_FAULT_INJECTION").is_some_and(|v| v == "1");

    let system = actix::System::new();
    let chain_arbiter = system.block_on(async { actix::Arbiter::with_tokio_rt(chain_runtime) });
    let started = system.block_on(async {
        // The relayer and the listener share one thread: chain I/O waits on
        // the node, never on a core.
        let relayer = match &chain {
            Some((chain, section, keys, _)) => Some(Relayer::start(
                RelayerSetup {
                    chain: chain.clone(),
                    config: section.clone(),
                    keys: keys.clone(),
                    store: store.clone(),
                    metrics: Arc::clone(&metrics),
                },
                &chain_arbiter.handle(),
            )?),
            None => None,
        };
        let registry = Registry::start(store.clone(), Arc::clone(&programs), config.limits.max_program_bytes, &metrics);
        let peers = match &config.cluster {
            Some(section) => {
                let cluster = Cluster::connect(section).await?;
                tracing::info!(node = %section.node_name, servers = ?section.servers, "cluster mode");
                let counters = Arc::clone(metrics.actor(ActorName::Peers));
                let (changes, _) = tokio::sync::broadcast::channel(CHANGES_CAPACITY);
                let peers = Peers::new(cluster.clone(), Arc::clone(&counters), changes.clone());
                let peers = Handle::new(peers.start(), counters.clone());
                let max_bytes = config.limits.max_program_bytes;
                actix_rt::spawn(follow_programs(
                    cluster.clone(),
                    registry.mailbox(),
                    Arc::clone(&programs),
                    max_bytes,
                    Arc::clone(&counters),
                ));
                actix_rt::spawn(follow_changes(cluster.clone(), changes.clone()));
                Some((peers, cluster, counters, section.node_name.clone(), changes))
            }
            None => None,
        };
        let submitter = Submitter::start(
            threads,
            SubmitterSetup {
                store: store.clone(),
                board: Arc::clone(&board),
                metrics: Arc::clone(&metrics),
                operator: operator.clone(),
                // In cluster mode results reach a relayer through the
                // cluster's relay queue (one engine relays each).
                relayer: relayer.as_ref().filter(|_| peers.is_none()).map(|relayer| relayer.mailbox()),
            },
        );
        let executor = Executor::start(
            threads,
            ExecutorSetup {
                programs: Arc::clone(&programs),
                board: Arc::clone(&board),
                metrics: Arc::clone(&metrics),
                submitter: submitter.mailbox(),
                max_input_bytes: config.limits.max_input_bytes,
                store: store.clone(),
                max_attempts: config.executor.max_attempts,
                fault_injection,
            },
        );
        let verifier = Verifier::start(threads, &metrics);
        recover(&unfinished, &board, &executor.mailbox());
        let intake = Intake {
            store: store.clone(),
            board: Arc::clone(&board),
            executor: executor.mailbox(),
            metrics: Arc::clone(&metrics),
        };
        // In cluster mode this engine runs jobs from the cluster's queue.
        if let Some((_, cluster, counters, node, _)) = &peers {
            actix_rt::spawn(execute_jobs(ExecutionSetup {
                cluster: cluster.clone(),
                intake: intake.clone(),
                store: store.clone(),
                limits: config.limits,
                in_flight: config.cluster.as_ref().map_or(16, |section| section.jobs_in_flight(threads)),
                metrics: Arc::clone(counters),
                engine: Arc::clone(&metrics),
                node: node.clone(),
                allowed_signers: Arc::new(signers.allowed.clone()),
                settle: relayer.is_some(),
            }));
            actix_rt::spawn(sample_queue(cluster.clone(), Arc::clone(&metrics), relayer.is_some()));
            if let Some(relayer) = &relayer {
                let setup = RelaySetup {
                    cluster: cluster.clone(),
                    store: store.clone(),
                    relayer: relayer.mailbox(),
                    operator: operator.address(),
                    in_flight: 1024,
                    metrics: Arc::clone(counters),
                    engine: Arc::clone(&metrics),
                };
                actix_rt::spawn(hold_leases(setup.clone()));
                actix_rt::spawn(relay_results(setup));
            }
        }
        let chain_access = match (&chain, &relayer) {
            (Some((chain, section, keys, unsettled)), Some(relayer)) => {
                // In cluster mode the relay queue holds every result not yet
                // settled, this engine's among them.
                if peers.is_none() {
                    resubmit(unsettled, &relayer.mailbox());
                }
                let listener = Listener::new(ListenerSetup {
                    chain: chain.clone(),
                    config: section.clone(),
                    limits: config.limits,
                    programs: Arc::clone(&programs),
                    intake: intake.clone(),
                    relayer: relayer.mailbox(),
                    cluster: peers.as_ref().map(|(peers, ..)| peers.mailbox()),
                })?;
                Listener::start_in_arbiter(&chain_arbiter.handle(), |_| listener);
                Some(ChainAccess {
                    chain: chain.clone(),
                    retry: relayer.mailbox(),
                    lanes: relayer.mailbox(),
                    relayers: keys.iter().map(|key| key.address()).collect(),
                    confirmations: section.confirmations,
                    blobs: input_da(chain, section).await,
                    waiting: relayer.mailbox(),
                })
            }
            _ => None,
        };
        let faults = fault_injection.then(|| {
            HashMap::<ActorName, Mailbox<Panic>>::from([
                (ActorName::Registry, registry.mailbox()),
                (ActorName::Executor, executor.mailbox()),
                (ActorName::Submitter, submitter.mailbox()),
            ])
        });
        let shutting_down = Arc::new(AtomicBool::new(false));
        let health = HealthProbe {
            metrics: Arc::clone(&metrics),
            data_dir: data_dir.clone(),
            min_free_bytes: config.store.min_free_bytes,
            socket: config.socket_path(),
            shutting_down: Arc::clone(&shutting_down),
            chain: chain.as_ref().map(|(chain, section, _, _)| ChainProbe {
                chain: chain.clone(),
                rpc_url: section.rpc_url.clone(),
                confirmations: section.confirmations,
                max_lag: config.metrics.ready_max_lag_blocks,
            }),
        };
        let api = Api::start(ApiContext {
            config: config.clone(),
            store: store.clone(),
            board: Arc::clone(&board),
            programs: Arc::clone(&programs),
            metrics: Arc::clone(&metrics),
            registry: registry.mailbox(),
            peers: peers.as_ref().map(|(peers, .., changes)| PeersAccess {
                share: peers.mailbox(),
                publish: peers.mailbox(),
                fetch: peers.mailbox(),
                settled: peers.mailbox(),
                next_nonce: peers.mailbox(),
                retried: peers.mailbox(),
                changes: changes.clone(),
            }),
            verifier: verifier.mailbox(),
            blob_hashes: verifier.mailbox(),
            dry_runs: executor.mailbox(),
            intake,
            signers,
            chain: chain_access,
            faults,
            shutting_down: Arc::clone(&shutting_down),
            rejections: Arc::new(Rejections::default()),
            health: health.clone(),
        })?;
        if let Some(addr) = config.metrics.prometheus {
            let (metrics, store) = (Arc::clone(&metrics), store.clone());
            let programs = metrics.programs.clone();
            let snapshot: crate::metrics::prometheus::Snapshot =
                Arc::new(move || metrics.snapshot(store.size_on_disk()));
            let registry = crate::metrics::prometheus::registry(snapshot, Some(&programs));
            let probe: crate::metrics::prometheus::Probe = Arc::new(move |readiness| {
                let health = health.clone();
                Box::pin(async move {
                    let answer = health.check().await;
                    let passes = if readiness { answer.ready } else { answer.healthy };
                    (passes, serde_json::to_string(&answer).unwrap_or_default())
                })
            });
            actix_rt::spawn(async move {
                if let Err(err) = crate::metrics::prometheus::serve(addr, registry, probe).await {
                    tracing::error!(%addr, %err, "Prometheus endpoint failed");
                }
            });
        }
        let supervisor = Supervisor {
            api,
            board: Arc::clone(&board),
            store: store.clone(),
            metrics: Arc::clone(&metrics),
            shutting_down,
            retention: Retention::new(store.clone(), config.store.retain_days, config.chain.is_some()),
        }
        .start();
        actix_rt::spawn(async move {
            shutdown.await;
            supervisor.do_send(Shutdown);
        });
        Ok::<(), EngineError>(())
    });
    started?;
    tracing::info!(executors = threads, data_dir = %data_dir.display(), "engine running");
    system.run()?;
    // Actors' pool threads drop their store handles as they wind down; the
    // data dir is free for the next engine once `run` returns.
    if !store.close(STORE_CLOSE_TIMEOUT)? {
        tracing::warn!("store still held by a stopping thread; it closes when that thread ends");
    }
    tracing::info!("engine stopped");
    Ok(())
}

/// A runtime for the chain thread (HTTP calls need tokio's I/O and timers).
fn chain_runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread().enable_all().thread_name("chain").build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(%err, "cannot build the chain thread's runtime");
            std::process::exit(1)
        }
    }
}

/// Hands results executed but not settled at the last stop to the relayer.
/// Those already settled onchain are found so by the relayer, not sent.
fn resubmit(unsettled: &[Unsettled], relayer: &Mailbox<Relay>) {
    if unsettled.is_empty() {
        return;
    }
    tracing::info!(jobs = unsettled.len(), "resubmitting unsettled results");
    for job in unsettled {
        relayer.do_send(Relay {
            spec: Arc::new(job.spec.clone()),
            result: Arc::new(job.result.clone()),
            resumed: Some(Resumed { tx: job.tx_hash.map(alloy::primitives::B256::from) }),
            ended: None,
        });
    }
}

/// Puts jobs found `Pending`/`Running` at start-up back on the executors,
/// each with the attempts that already failed the host.
fn recover(unfinished: &[(u8, JobSpec)], board: &JobBoard, executor: &Mailbox<Execute>) {
    if unfinished.is_empty() {
        return;
    }
    tracing::info!(jobs = unfinished.len(), "recovering unfinished jobs");
    for (attempt, spec) in unfinished {
        board.restore(spec);
        executor.do_send(Execute { spec: Arc::new(spec.clone()), attempt: *attempt });
    }
}

/// The supervisor actor.
#[derive(Debug)]
struct Supervisor {
    api: Addr<Api>,
    board: Arc<JobBoard>,
    store: Store,
    metrics: Arc<Metrics>,
    shutting_down: Arc<AtomicBool>,
    retention: Option<Retention>,
}

/// How often settled jobs past `store.retain_days` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// `store.retain_days`: the log records of finished jobs older than that
/// are pruned, on a thread of their own, at start-up and every
/// [`PRUNE_EVERY`].
#[derive(Debug, Clone)]
struct Retention {
    store: Store,
    days: u32,
    settles_onchain: bool,
    running: Arc<AtomicBool>,
}

impl Retention {
    /// `None` when everything is kept (`retain_days = 0`).
    fn new(store: Store, days: u32, settles_onchain: bool) -> Option<Retention> {
        (days > 0).then(|| Retention { store, days, settles_onchain, running: Arc::default() })
    }

    /// A finished job takes no further step: settled (confirmed, cancelled,
    /// already settled by another engine) or failed, or done when nothing is
    /// settled onchain.
    fn finished(settles_onchain: bool, status: crate::job::Status) -> bool {
        status.is_settled()
            || status == crate::job::Status::Failed
            || (status == crate::job::Status::Done && !settles_onchain)
    }

    /// Starts a pass unless one is running.
    fn prune(&self) {
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        let spawned = std::thread::Builder::new().name("pruner".into()).spawn(move || {
            let cutoff = crate::store::unix_ms().saturating_sub(u64::from(this.days) * 86_400_000);
            let settles_onchain = this.settles_onchain;
            match this.store.prune(cutoff, |status| Retention::finished(settles_onchain, status)) {
                Ok(0) => {}
                Ok(records) => tracing::info!(records, retain_days = this.days, "pruned the log"),
                Err(err) => tracing::error!(%err, "pruning the log failed; it is tried again later"),
            }
            this.running.store(false, Ordering::SeqCst);
        });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the pruner thread");
            self.running.store(false, Ordering::SeqCst);
        }
    }
}

/// Measures the store's free space and copies the figures to the metrics.
fn sample_disk(store: &Store, metrics: &Metrics) {
    let space = store.space();
    space.measure();
    let state = space.state();
    let engine = &metrics.engine;
    engine.disk_full.store(u64::from(state.full), Ordering::Relaxed);
    engine.disk_free_bytes.store(state.free, Ordering::Relaxed);
    engine.store_broken.store(u64::from(state.broken), Ordering::Relaxed);
}

/// Begin a graceful shutdown.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Shutdown;

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let metrics = Arc::clone(&self.metrics);
        let store = self.store.clone();
        sample_disk(&store, &metrics);
        ctx.run_interval(Duration::from_secs(1), move |_, _| {
            metrics.sample();
            // Measured even when no job arrives, so the figures are fresh
            // and a disk that has room again shows it by itself.
            sample_disk(&store, &metrics);
        });
        if let Some(retention) = self.retention.clone() {
            retention.prune();
            ctx.run_interval(PRUNE_EVERY, move |_, _| retention.prune());
        }
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!(in_flight = self.board.len(), "draining");
        self.api.do_send(StopAccepting);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        ctx.run_interval(Duration::from_millis(20), move |this, _| {
            let left = this.board.len();
            if left == 0 || Instant::now() >= deadline {
                if left > 0 {
                    tracing::warn!(jobs = left, "drain timed out; these jobs are durable and run at next start-up");
                }
                // `run` flushes the store once the system has stopped.
                actix::System::current().stop();
            }
        });
    }
}

/// Whether offchain inputs are posted as blobs, and then at most how many
/// per job (`chain.offchain_input_da`; `auto` asks the node once, at
/// start-up, for its blob base fee).
async fn input_da(chain: &Chain, section: &crate::config::Chain) -> Option<usize> {
    let posted = match section.offchain_input_da {
        crate::config::InputDa::Blobs => true,
        crate::config::InputDa::None => false,
        crate::config::InputDa::Auto => {
            match chain.rpc(alloy::providers::Provider::get_blob_base_fee(chain.provider())).await {
                Ok(_) => true,
                Err(err) => {
                    tracing::warn!(%err, "the node gave no blob base fee: offchain inputs are not posted as blobs (chain.offchain_input_da = \"blobs\" posts them anyway)");
                    false
                }
            }
        }
    };
    tracing::info!(posted, max_blobs_per_job = section.max_blobs_per_job, "offchain inputs as blobs");
    posted.then_some(section.max_blobs_per_job)
}

#[cfg(test)]
mod tests {
    use super::Retention;
    use crate::job::Status;

    #[test]
    fn only_jobs_that_take_no_further_step_are_pruned() {
        let finished = |onchain| Status::ALL.into_iter().filter(move |s| Retention::finished(onchain, *s)).collect();
        let with_chain: Vec<Status> = finished(true);
        assert_eq!(with_chain, [Status::Failed, Status::Confirmed, Status::Cancelled, Status::AlreadySettled]);
        let without_chain: Vec<Status> = finished(false);
        assert_eq!(
            without_chain,
            [Status::Done, Status::Failed, Status::Confirmed, Status::Cancelled, Status::AlreadySettled]
        );
    }
}
