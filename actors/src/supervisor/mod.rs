//! The supervisor: reads the config, opens the store, starts every actor,
//! recovers unfinished jobs, samples metrics, and drains on SIGTERM/SIGINT.
//!
//! Sync actors restart themselves under [`guarded`] (see [`restart`]); the
//! supervisor owns the order of start-up and shutdown.

mod restart;

pub use restart::{guarded, inject_panic, start_pool, Panic, RestartCount};

use crate::api::verifier::Verifier;
use crate::api::{Api, ApiContext, ApiError, ChainAccess, StopAccepting};
use crate::chain::Chain;
use crate::config::Config;
use crate::executor::{Execute, Executor, ExecutorSetup};
use crate::intake::Intake;
use crate::jobs::JobBoard;
use crate::keys::{self, KeyError};
use crate::listener::{Listener, ListenerSetup};
use crate::metrics::Metrics;
use crate::registry::{Programs, Registry};
use crate::store::{Store, StoreError};
use crate::submitter::relay::{Relay, Relayer, RelayerSetup};
use crate::submitter::{Submitter, SubmitterSetup};
use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};
use alloy::primitives::Address;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The actors whose metrics the engine reports.
pub const ACTORS: &[&str] = &["api", "verifier", "registry", "executor", "submitter", "relayer", "listener"];

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
    Chain(#[from] crate::chain::ChainError),
}

/// Creates the data dir, mode 0700, if it does not exist. Only a directory
/// the engine creates is made private; an existing one keeps the rights its
/// owner gave it.
pub fn create_data_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Runs the engine until SIGTERM or SIGINT, then drains and returns.
pub fn run(config: Config) -> Result<(), EngineError> {
    let data_dir = config.data_dir.clone();
    create_data_dir(&data_dir)
        .map_err(|source| EngineError::DataDir { path: data_dir.display().to_string(), source })?;
    let store = Store::open(&data_dir.join("db"))?;
    let operator = keys::load_or_generate(&data_dir.join(keys::OPERATOR_KEY))?;
    let dev_signer = if config.offchain.dev_signer {
        Some(keys::load_or_generate(&data_dir.join(keys::DEV_CONSUMER_KEY))?.address())
    } else {
        None
    };
    let mut allowed_signers: HashSet<Address> =
        config.offchain.allowed_signers.iter().filter_map(|s| s.parse().ok()).collect();
    allowed_signers.extend(dev_signer);
    tracing::info!(operator = %operator.address(), dev_signer = ?dev_signer, "keys loaded");

    let threads = config.executor_threads();
    let metrics = Arc::new(Metrics::new(ACTORS, threads));
    let programs = Arc::new(Programs::load(&store, config.limits.max_program_bytes)?);
    let board = Arc::new(JobBoard::new(config.queue, &store)?);
    let unfinished = store.unfinished()?;
    let chain = match &config.chain {
        Some(section) => {
            let key = keys::load_or_generate(&data_dir.join(&section.relayer_key))?;
            tracing::info!(relayer = %key.address(), rpc = %section.rpc_url, job_manager = %section.job_manager, "settling onchain");
            Some((Chain::new(section)?, section.clone(), key, store.unsettled()?))
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
            Some((chain, section, key, _)) => {
                let relayer = Relayer::new(RelayerSetup {
                    chain: chain.clone(),
                    config: section.clone(),
                    key: key.clone(),
                    store: store.clone(),
                    metrics: Arc::clone(&metrics),
                })?;
                Some(Relayer::start_in_arbiter(&chain_arbiter.handle(), |_| relayer))
            }
            None => None,
        };
        let registry = Registry::new(
            store.clone(),
            Arc::clone(&programs),
            config.limits.max_program_bytes,
            metrics.actor("registry"),
        )
        .start();
        let submitter = Submitter::start(
            threads,
            SubmitterSetup {
                store: store.clone(),
                board: Arc::clone(&board),
                metrics: Arc::clone(&metrics),
                operator: operator.clone(),
                relayer: relayer.clone().map(Addr::recipient),
            },
        );
        let executor = Executor::start(
            threads,
            ExecutorSetup {
                programs: Arc::clone(&programs),
                board: Arc::clone(&board),
                metrics: Arc::clone(&metrics),
                submitter: submitter.clone().recipient(),
                max_input_bytes: config.limits.max_input_bytes,
            },
        );
        let verifier = Verifier::start(threads, metrics.actor("verifier"));
        recover(&unfinished, &board, &executor, &metrics);
        let intake = Intake {
            store: store.clone(),
            board: Arc::clone(&board),
            executor: executor.clone(),
            metrics: Arc::clone(&metrics),
        };
        let chain_access = match (&chain, &relayer) {
            (Some((chain, section, _, unsettled)), Some(relayer)) => {
                resubmit(unsettled, relayer);
                let listener = Listener::new(ListenerSetup {
                    chain: chain.clone(),
                    config: section.clone(),
                    limits: config.limits,
                    programs: Arc::clone(&programs),
                    intake: intake.clone(),
                    relayer: relayer.clone(),
                })?;
                Listener::start_in_arbiter(&chain_arbiter.handle(), |_| listener);
                Some(ChainAccess { chain: chain.clone(), relayer: relayer.clone() })
            }
            _ => None,
        };
        let shutting_down = Arc::new(AtomicBool::new(false));
        let api = Api::start(ApiContext {
            config: config.clone(),
            store: store.clone(),
            board: Arc::clone(&board),
            programs: Arc::clone(&programs),
            metrics: Arc::clone(&metrics),
            registry,
            executor,
            submitter,
            verifier,
            operator: operator.address(),
            dev_signer,
            allowed_signers,
            fault_injection,
            shutting_down: Arc::clone(&shutting_down),
            intake,
            chain: chain_access,
            rejections: Arc::default(),
        })?;
        if let Some(addr) = config.metrics.prometheus {
            let (metrics, store) = (Arc::clone(&metrics), store.clone());
            let snapshot = Arc::new(move || metrics.snapshot(store.size_on_disk()));
            actix_rt::spawn(async move {
                if let Err(err) = crate::metrics::prometheus::serve(addr, snapshot).await {
                    tracing::error!(%addr, %err, "Prometheus endpoint failed");
                }
            });
        }
        Supervisor { api, board: Arc::clone(&board), metrics: Arc::clone(&metrics), shutting_down }.start();
        Ok::<(), EngineError>(())
    });
    started?;
    tracing::info!(executors = threads, data_dir = %data_dir.display(), "engine running");
    system.run()?;
    store.flush()?;
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
fn resubmit(unsettled: &[(crate::store::JobSpec, crate::store::ResultRecord)], relayer: &Addr<Relayer>) {
    if unsettled.is_empty() {
        return;
    }
    tracing::info!(jobs = unsettled.len(), "resubmitting unsettled results");
    for (spec, result) in unsettled {
        relayer.do_send(Relay {
            spec: Arc::new(spec.clone()),
            result_with_metadata: result.result_with_metadata.clone(),
            signature: result.signature.clone(),
        });
    }
}

/// Puts jobs found `Pending`/`Running` at start-up back on the executors.
fn recover(unfinished: &[crate::store::JobSpec], board: &JobBoard, executor: &Addr<Executor>, metrics: &Metrics) {
    if unfinished.is_empty() {
        return;
    }
    tracing::info!(jobs = unfinished.len(), "recovering unfinished jobs");
    let executor_metrics = metrics.actor("executor");
    for spec in unfinished {
        board.restore(spec);
        executor_metrics.received();
        executor.do_send(Execute { spec: Arc::new(spec.clone()), attempt: 0 });
    }
}

/// The supervisor actor.
#[derive(Debug)]
struct Supervisor {
    api: Addr<Api>,
    board: Arc<JobBoard>,
    metrics: Arc<Metrics>,
    shutting_down: Arc<AtomicBool>,
}

/// Begin a graceful shutdown.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Shutdown {
    signal: &'static str,
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let metrics = Arc::clone(&self.metrics);
        ctx.run_interval(Duration::from_secs(1), move |_, _| metrics.sample());
        let me = ctx.address();
        actix_rt::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                return tracing::error!("cannot install signal handlers");
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            me.do_send(Shutdown { signal: name });
        });
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!(signal = msg.signal, in_flight = self.board.len(), "draining");
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
