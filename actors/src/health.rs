//! Health and readiness: what `coproc_health` answers, and what the metrics
//! listener's `/healthz` and `/readyz` serve.
//!
//! - *healthy*: the engine runs and its store works. Only a failed store
//!   (sled refused a write; it refuses all of them until a restart) makes
//!   it unhealthy: that is the one state a restart repairs.
//! - *ready*: it accepts jobs. Every check must pass: the store is open
//!   with room on its disk (`store.min_free_bytes`), the api is not
//!   draining, and with a chain the node answers and the listener is within
//!   `metrics.ready_max_lag_blocks` of the newest block it may read.

use crate::chain::Chain;
use crate::metrics::Metrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The engine's health, as `coproc_health`, `/healthz` and `/readyz`
/// answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The engine runs and its store works (`/healthz`).
    pub healthy: bool,
    /// It accepts jobs: every check passes (`/readyz`).
    pub ready: bool,
    /// Each check by name: `store`, `api`, and with a chain `chain`.
    pub checks: BTreeMap<String, Check>,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Whether it passes.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// Where the checks look.
#[derive(Debug, Clone)]
pub(crate) struct HealthProbe {
    /// The store's gauges (broken, disk full, free bytes) are in here, and
    /// the listener's last block.
    pub(crate) metrics: Arc<Metrics>,
    /// The data dir (for the messages).
    pub(crate) data_dir: PathBuf,
    /// `store.min_free_bytes`.
    pub(crate) min_free_bytes: u64,
    /// The socket the api serves.
    pub(crate) socket: PathBuf,
    /// Set when shutdown begins.
    pub(crate) shutting_down: Arc<AtomicBool>,
    /// With a chain: the node, its URL, and the listener's settings.
    pub(crate) chain: Option<ChainProbe>,
}

/// The chain part of a [`HealthProbe`].
#[derive(Debug, Clone)]
pub(crate) struct ChainProbe {
    pub(crate) chain: Chain,
    pub(crate) rpc_url: String,
    /// `chain.confirmations`: the newest block the listener may read is
    /// `head + 1 - confirmations`.
    pub(crate) confirmations: u64,
    /// `metrics.ready_max_lag_blocks`.
    pub(crate) max_lag: u64,
}

impl HealthProbe {
    /// Runs every check (with a chain, one `eth_blockNumber`, bounded by
    /// `chain.rpc_timeout_ms`).
    pub(crate) async fn check(&self) -> Health {
        let mut checks = BTreeMap::new();
        let store = self.store();
        let healthy = self.metrics.engine.store_broken.load(Ordering::Relaxed) == 0;
        checks.insert("store".to_owned(), store);
        checks.insert("api".to_owned(), self.api());
        if let Some(chain) = &self.chain {
            checks.insert("chain".to_owned(), self.chain(chain).await);
        }
        let ready = checks.values().all(|check| check.ok);
        Health { healthy, ready, checks }
    }

    fn store(&self) -> Check {
        let engine = &self.metrics.engine;
        let free = engine.disk_free_bytes.load(Ordering::Relaxed);
        let dir = self.data_dir.display();
        if engine.store_broken.load(Ordering::Relaxed) != 0 {
            return Check {
                ok: false,
                detail: format!("the store under {dir} failed: it refuses writes until the engine restarts"),
            };
        }
        if engine.disk_full.load(Ordering::Relaxed) != 0 {
            let reserve = self.min_free_bytes;
            return Check {
                ok: false,
                detail: format!(
                    "disk full: {free} bytes free under {dir}, reserve {reserve} (store.min_free_bytes): new jobs \
                     are refused"
                ),
            };
        }
        Check { ok: true, detail: format!("open, {free} bytes free under {dir}") }
    }

    fn api(&self) -> Check {
        let socket = self.socket.display();
        if self.shutting_down.load(Ordering::Relaxed) {
            return Check { ok: false, detail: format!("draining: {socket} refuses new jobs while the engine stops") };
        }
        Check { ok: true, detail: format!("accepting on {socket}") }
    }

    async fn chain(&self, probe: &ChainProbe) -> Check {
        let head = match probe.chain.head().await {
            Ok(head) => head,
            Err(err) => {
                return Check { ok: false, detail: format!("the node at {} does not answer: {err}", probe.rpc_url) }
            }
        };
        let newest = (head + 1).saturating_sub(probe.confirmations);
        let read = self.metrics.engine.listener_block.load(Ordering::Relaxed);
        let lag = newest.saturating_sub(read);
        let detail = format!(
            "head {head}, the listener has read up to block {read}: {lag} behind the newest it may read (at most {})",
            probe.max_lag
        );
        Check { ok: lag <= probe.max_lag, detail }
    }
}
