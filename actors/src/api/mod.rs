//! The api: the local socket server.
//!
//! - [`wire`]: the request and response types (shared with clients).
//! - `connection`: framing, pipelining, the two encodings.
//! - `auth`: the first request of a TCP connection (`coproc_auth` with
//!   the api token).
//! - `quota`: per-signer quotas on submitted jobs.
//! - `calls`: the rate and in-flight bound of `coproc_call` dry runs.
//! - `jsonrpc`: JSON-RPC 2.0 envelopes, batches and notifications.
//! - `methods`: what each method does.
//! - `verifier`: request signature checks on their own threads.
//! - `onchain`: with a chain, the onchain checks of offchain requests,
//!   batched.
//! - `rejections`: why recent requests were refused.
//! - `subscriptions`: `coproc_subscribe`, job status changes pushed on a
//!   JSON-RPC connection.

mod auth;
mod calls;
mod cluster;
mod connection;
pub(crate) mod jsonrpc;
mod methods;
mod onchain;
mod quota;
mod rejections;
mod replies;
mod subscriptions;
mod verifier;
pub mod wire;

pub(crate) use rejections::Rejections;
pub(crate) use verifier::{BlobHashes, Verifier, Verify};
pub use wire::{decode_fast_request, fast_frame};

use crate::board::JobBoard;
use crate::chain::Chain;
use crate::config::Config;
use crate::executor::DryRun;
use crate::health::HealthProbe;
use crate::intake::Intake;
use crate::keys::{self, ApiToken, KeyError};
use crate::metrics::{ActorName, Metrics};
use crate::peers::PeersAccess;
use crate::pool::{Mailbox, Panic};
use crate::programs::Programs;
use crate::registry::SubmitProgram;
use crate::relayer::{LaneQuery, Retry, Waiting};
use crate::store::Store;
use actix::{Actor, ActorContext, Addr, Context, Handler, Message};
use alloy::primitives::Address;
use onchain::OnchainChecks;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::{watch, Semaphore};

/// Everything a request handler may touch: shared state it reads, and the
/// mailboxes of the actors it asks.
#[derive(Debug)]
pub(crate) struct ApiContext {
    /// The configuration.
    pub(crate) config: Config,
    /// The store (results and job entries are read from it).
    pub(crate) store: Store,
    /// Jobs in flight.
    pub(crate) board: Arc<JobBoard>,
    /// Decoded programs.
    pub(crate) programs: Arc<Programs>,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// The registry.
    pub(crate) registry: Mailbox<SubmitProgram>,
    /// The other engines of the cluster, in cluster mode.
    pub(crate) peers: Option<PeersAccess>,
    /// The signature verifier pool.
    pub(crate) verifier: Mailbox<Verify>,
    /// The same pool: the blob hashes of offchain inputs.
    pub(crate) blob_hashes: Mailbox<BlobHashes>,
    /// The executors, for `coproc_call` dry runs.
    pub(crate) dry_runs: Mailbox<DryRun>,
    /// Admission and dispatch.
    pub(crate) intake: Intake,
    /// Who signs results and who may sign requests.
    pub(crate) signers: Signers,
    /// The chain, when the engine settles onchain.
    pub(crate) chain: Option<ChainAccess>,
    /// The actors `debug_panic` reaches; `None` unless the engine runs with
    /// `COPROCESSOR_FAULT_INJECTION=1`.
    pub(crate) faults: Option<HashMap<ActorName, Mailbox<Panic>>>,
    /// Set when shutdown begins: new jobs are refused.
    pub(crate) shutting_down: Arc<AtomicBool>,
    /// Why recent job requests were refused.
    pub(crate) rejections: Arc<Rejections>,
    /// The checks behind `coproc_health`.
    pub(crate) health: HealthProbe,
}

/// The operator and the offchain request signers.
#[derive(Debug, Clone)]
pub(crate) struct Signers {
    /// The operator's address.
    pub(crate) operator: Address,
    /// The dev consumer signer, if allowed.
    pub(crate) dev_signer: Option<Address>,
    /// Signers whose offchain requests are accepted (with no chain).
    pub(crate) allowed: HashSet<Address>,
}

/// What the socket API uses of the chain.
#[derive(Debug, Clone)]
pub(crate) struct ChainAccess {
    /// The node: request signatures (EIP-1271) and nonces are checked there.
    pub(crate) chain: Chain,
    /// Dead-letter retries.
    pub(crate) retry: Mailbox<Retry>,
    /// Ordered-relay lanes.
    pub(crate) lanes: Mailbox<LaneQuery>,
    /// The relayer keys' addresses.
    pub(crate) relayers: Vec<Address>,
    /// `chain.confirmations`.
    pub(crate) confirmations: u64,
    /// Offchain inputs are posted as blobs, at most this many per job.
    pub(crate) blobs: Option<usize>,
    /// Why a result the relayer holds is not sent yet.
    pub(crate) waiting: Mailbox<Waiting>,
}

/// What every connection shares: the supervisor's context, and what the
/// api runs on it.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Shared state and the other actors.
    pub(crate) ctx: ApiContext,
    /// The batched onchain checks of offchain requests, with a chain.
    pub(crate) onchain: Option<OnchainChecks>,
    /// What TCP clients must present first; loaded whenever `api.tcp` is set.
    pub(crate) token: Option<ApiToken>,
    /// Per-signer quotas.
    pub(crate) quotas: quota::Quotas,
    /// The rate and in-flight bound of `coproc_call` dry runs.
    pub(crate) calls: calls::CallGate,
}

impl Shared {
    /// Starts what the api runs beside its connections (on the current
    /// arbiter).
    fn start(ctx: ApiContext, token: Option<ApiToken>) -> Shared {
        let onchain = ctx.chain.as_ref().map(|access| OnchainChecks::start(access.chain.clone()));
        let quotas = quota::Quotas::new(ctx.config.quota);
        let api = &ctx.config.api;
        let calls = calls::CallGate::new(api.calls_per_second, api.max_calls_in_flight, std::time::Instant::now());
        Shared { ctx, onchain, token, quotas, calls }
    }
}

/// The socket server actor.
#[derive(Debug)]
pub(crate) struct Api {
    socket: PathBuf,
    stop: watch::Sender<bool>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The socket could not be bound.
    #[error("binding {what}: {source}")]
    Bind {
        /// The socket path or address.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TCP api token could not be read or created.
    #[error("the TCP api token: {0}")]
    Token(#[from] KeyError),
}

/// Binds the Unix socket at `socket` with mode 0600 from the start: it is
/// bound inside a fresh private (0700) directory next to it, made 0600
/// there, then renamed into place, so no other user can connect to it
/// even for an instant (the socket path may be outside the data dir).
fn bind_private(socket: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = socket.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let unique: u64 = secp256k1::rand::random();
    let private = parent.join(format!(".coprocessor-bind-{}-{unique:016x}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("s");
    let bound = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, socket)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    bound
}

impl Api {
    /// Binds the Unix socket (mode 0600) and the optional TCP address
    /// (loading or creating `<data_dir>/api.token` for it), then starts the
    /// actor that serves them.
    pub(crate) fn start(ctx: ApiContext) -> Result<Addr<Api>, ApiError> {
        let (tcp, token) = match ctx.config.api.tcp {
            Some(addr) => {
                let token = keys::load_or_generate_token(&ctx.config.data_dir.join(keys::API_TOKEN))?;
                let tcp_error = |source| ApiError::Bind { what: addr.to_string(), source };
                let listener = std::net::TcpListener::bind(addr).map_err(tcp_error)?;
                listener.set_nonblocking(true).map_err(tcp_error)?;
                if !addr.ip().is_loopback() {
                    tracing::warn!(%addr, "api on a non-loopback TCP address: the token travels in clear");
                }
                (Some(listener), Some(token))
            }
            None => (None, None),
        };
        // The Unix socket last: once it answers, everything else is up.
        let socket = ctx.config.socket_path();
        let bind_error = |source| ApiError::Bind { what: socket.display().to_string(), source };
        if socket.exists() {
            // A socket left by a crash; the store's lock proves no engine owns it.
            std::fs::remove_file(&socket).map_err(bind_error)?;
        }
        let unix = bind_private(&socket).map_err(bind_error)?;
        unix.set_nonblocking(true).map_err(bind_error)?;
        let (stop, stopped) = watch::channel(false);
        // TCP has its own connection slots: clients that have not
        // authenticated yet cannot take the Unix socket's.
        let connections = Arc::new(Semaphore::new(ctx.config.api.max_connections));
        let tcp_connections = Arc::new(Semaphore::new(ctx.config.api.max_connections));
        tracing::info!(socket = %socket.display(), "api listening");
        let api = Api { socket, stop };
        Ok(Api::create(move |_| {
            let shared = Rc::new(Shared::start(ctx, token));
            let unix = tokio::net::UnixListener::from_std(unix).map(Listener::Unix);
            actix_rt::spawn(accept_loop(unix, Rc::clone(&shared), connections, stopped.clone()));
            if let Some(tcp) = tcp {
                let tcp = tokio::net::TcpListener::from_std(tcp).map(Listener::Tcp);
                actix_rt::spawn(accept_loop(tcp, Rc::clone(&shared), tcp_connections, stopped));
            }
            api
        }))
    }
}

/// A listening socket: the Unix socket or the loopback TCP address.
enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// Accepts one connection and serves it on its own task.
    async fn accept_and_serve(
        &self,
        shared: &Rc<Shared>,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> std::io::Result<()> {
        let shared = Rc::clone(shared);
        match self {
            Listener::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                actix_rt::spawn(async move {
                    connection::serve(stream, shared, None).await;
                    drop(slot);
                });
            }
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                actix_rt::spawn(async move {
                    connection::serve(stream, shared, Some(peer)).await;
                    drop(slot);
                });
            }
        }
        Ok(())
    }
}

/// Accepts connections (each holding one of `connections`) until stopped.
async fn accept_loop(
    listener: std::io::Result<Listener>,
    shared: Rc<Shared>,
    connections: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    let listener = match listener {
        Ok(listener) => listener,
        Err(err) => return tracing::error!(%err, "cannot serve the listener"),
    };
    loop {
        let Ok(slot) = Arc::clone(&connections).acquire_owned().await else { return };
        tokio::select! {
            accepted = listener.accept_and_serve(&shared, slot) => {
                if let Err(err) = accepted {
                    tracing::warn!(%err, "accept failed");
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

/// Stop accepting connections and remove the socket file.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct StopAccepting;

impl Actor for Api {
    type Context = Context<Self>;
}

impl Handler<StopAccepting> for Api {
    type Result = ();

    fn handle(&mut self, _: StopAccepting, ctx: &mut Context<Self>) {
        let _ = self.stop.send(true);
        if let Err(err) = std::fs::remove_file(&self.socket) {
            tracing::warn!(%err, socket = %self.socket.display(), "could not remove the socket");
        }
        ctx.stop();
    }
}
