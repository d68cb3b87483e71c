//! The api: the local socket server.
//!
//! - [`wire`]: the request and response types (shared with clients).
//! - `connection`: framing, pipelining, the two encodings.
//! - `jsonrpc`: JSON-RPC 2.0 envelopes, batches and notifications.
//! - `methods`: what each method does.
//! - `verifier`: request signature checks on their own threads.
//! - `onchain`: with a chain, the onchain checks of offchain requests,
//!   batched.
//! - `rejections`: why recent requests were refused.

mod connection;
mod jsonrpc;
mod methods;
mod onchain;
mod rejections;
mod verifier;
pub mod wire;

pub use connection::fast_frame;
pub(crate) use rejections::Rejections;
pub(crate) use verifier::{Verifier, Verify};

use crate::board::JobBoard;
use crate::chain::Chain;
use crate::config::Config;
use crate::intake::Intake;
use crate::metrics::{ActorName, Metrics};
use crate::pool::{Mailbox, Panic};
use crate::programs::Programs;
use crate::registry::SubmitProgram;
use crate::relayer::{LaneQuery, Retry};
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
    /// The signature verifier pool.
    pub(crate) verifier: Mailbox<Verify>,
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
}

/// What every connection shares: the supervisor's context, and what the
/// api runs on it.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Shared state and the other actors.
    pub(crate) ctx: ApiContext,
    /// The batched onchain checks of offchain requests, with a chain.
    pub(crate) onchain: Option<OnchainChecks>,
}

impl Shared {
    /// Starts what the api runs beside its connections (on the current
    /// arbiter).
    fn start(ctx: ApiContext) -> Shared {
        let onchain = ctx.chain.as_ref().map(|access| OnchainChecks::start(access.chain.clone()));
        Shared { ctx, onchain }
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
}

impl Api {
    /// Binds the Unix socket (mode 0600) and the optional TCP address, then
    /// starts the actor that serves them.
    pub(crate) fn start(ctx: ApiContext) -> Result<Addr<Api>, ApiError> {
        let socket = ctx.config.socket_path();
        let bind_error = |source| ApiError::Bind { what: socket.display().to_string(), source };
        if socket.exists() {
            // A socket left by a crash; the store's lock proves no engine owns it.
            std::fs::remove_file(&socket).map_err(bind_error)?;
        }
        let unix = std::os::unix::net::UnixListener::bind(&socket).map_err(bind_error)?;
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(bind_error)?;
        unix.set_nonblocking(true).map_err(bind_error)?;
        let tcp = match ctx.config.api.tcp {
            Some(addr) => {
                let tcp_error = |source| ApiError::Bind { what: addr.to_string(), source };
                let listener = std::net::TcpListener::bind(addr).map_err(tcp_error)?;
                listener.set_nonblocking(true).map_err(tcp_error)?;
                Some(listener)
            }
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let connections = Arc::new(Semaphore::new(ctx.config.api.max_connections));
        tracing::info!(socket = %socket.display(), "api listening");
        let api = Api { socket, stop };
        Ok(Api::create(move |_| {
            let shared = Rc::new(Shared::start(ctx));
            let unix = tokio::net::UnixListener::from_std(unix).map(Listener::Unix);
            actix_rt::spawn(accept_loop(unix, Rc::clone(&shared), Arc::clone(&connections), stopped.clone()));
            if let Some(tcp) = tcp {
                let tcp = tokio::net::TcpListener::from_std(tcp).map(Listener::Tcp);
                actix_rt::spawn(accept_loop(tcp, Rc::clone(&shared), connections, stopped));
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
                    connection::serve(stream, shared).await;
                    drop(slot);
                });
            }
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                actix_rt::spawn(async move {
                    connection::serve(stream, shared).await;
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
