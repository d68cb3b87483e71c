//! Peers: what this engine shares with the other engines of its cluster
//! (cluster mode, `[cluster]`). Today that is programs: a program registered
//! here is put in the cluster's object store before its client hears it was
//! registered, and every program another engine shares is registered here,
//! validated by this engine's own registry like any other.

use crate::cluster::{Cluster, ClusterError, SharedProgram};
use crate::metrics::ActorMetrics;
use crate::pool::Mailbox;
use crate::program::ProgramId;
use crate::programs::Programs;
use crate::registry::SubmitProgram;
use actix::{Actor, Context, Handler, Message, ResponseFuture};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long following the cluster's programs waits before trying again
/// after the cluster failed it.
const FOLLOW_RETRY: Duration = Duration::from_secs(1);

/// Share a program registered here with the other engines.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ClusterError>")]
pub(crate) struct ShareProgram {
    /// Its ID.
    pub(crate) id: ProgramId,
    /// The ELF.
    pub(crate) elf: Vec<u8>,
    /// Its name (empty: none).
    pub(crate) name: String,
}

/// The peers actor.
#[derive(Debug)]
pub(crate) struct Peers {
    cluster: Cluster,
    metrics: Arc<ActorMetrics>,
}

impl Peers {
    /// The actor over a connected cluster.
    pub(crate) fn new(cluster: Cluster, metrics: Arc<ActorMetrics>) -> Peers {
        Peers { cluster, metrics }
    }
}

impl Actor for Peers {
    type Context = Context<Self>;
}

impl Handler<ShareProgram> for Peers {
    type Result = ResponseFuture<Result<(), ClusterError>>;

    fn handle(&mut self, msg: ShareProgram, _: &mut Context<Self>) -> Self::Result {
        let (cluster, metrics) = (self.cluster.clone(), Arc::clone(&self.metrics));
        Box::pin(async move {
            let started = Instant::now();
            let shared = cluster.share_program(&msg.id, &msg.elf, &msg.name).await;
            metrics.handled(started.elapsed(), shared.is_ok());
            if let Err(err) = &shared {
                tracing::error!(program = %msg.id, %err, "cannot share the program with the cluster");
            }
            shared
        })
    }
}

/// Registers here every program the cluster holds and each one shared
/// later, for as long as the engine runs: the cluster's failures are
/// retried, a program that cannot be one is logged and skipped.
pub(crate) async fn follow_programs(
    cluster: Cluster,
    registry: Mailbox<SubmitProgram>,
    programs: Arc<Programs>,
    max_bytes: usize,
    metrics: Arc<ActorMetrics>,
) {
    loop {
        match cluster.watch_programs(max_bytes).await {
            Ok(mut watch) => loop {
                match watch.next(|id| programs.contains(id)).await {
                    Ok(Some(shared)) => register(&registry, &programs, &metrics, shared).await,
                    Ok(None) => break tracing::warn!("the cluster ended the watch of its programs; watching again"),
                    Err(err) => break tracing::warn!(%err, "following the cluster's programs; watching again"),
                }
            },
            Err(err) => tracing::warn!(%err, "cannot follow the cluster's programs; trying again"),
        }
        tokio::time::sleep(FOLLOW_RETRY).await;
    }
}

async fn register(
    registry: &Mailbox<SubmitProgram>,
    programs: &Programs,
    metrics: &ActorMetrics,
    shared: Result<SharedProgram, ClusterError>,
) {
    metrics.received();
    let started = Instant::now();
    let shared = match shared {
        Ok(shared) => shared,
        Err(err) => {
            metrics.handled(started.elapsed(), false);
            return tracing::error!(%err, "refused a program another engine shared");
        }
    };
    if programs.contains(&shared.id) {
        return metrics.handled(started.elapsed(), true);
    }
    let id = shared.id;
    let registered = registry.send(SubmitProgram { elf: shared.elf, name: shared.name }).await;
    match registered {
        Ok(Ok(_)) => {
            metrics.handled(started.elapsed(), true);
            tracing::info!(program = %id, "registered a program another engine shared");
        }
        Ok(Err(err)) => {
            metrics.handled(started.elapsed(), false);
            tracing::error!(program = %id, %err, "refused a program another engine shared");
        }
        Err(err) => {
            metrics.handled(started.elapsed(), false);
            tracing::error!(program = %id, %err, "the registry did not answer for a shared program");
        }
    }
}
