//! The engine's configuration: `config.toml`, embedded as the default.
//!
//! Every field has a default, so a file only names what it changes, and no
//! file at all runs on [`Config::embedded`] (the repository's `config.toml`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The repository's `config.toml`, compiled in.
pub const EMBEDDED: &str = include_str!("../../config.toml");

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{origin}: {source}")]
    Parse {
        /// The file, or "embedded default".
        origin: String,
        /// The parser's message (names the line and the field).
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where sled, the keys and the socket live.
    pub data_dir: PathBuf,
    /// Executor threads; 0 means one per core.
    pub executors: usize,
    /// Job limits.
    pub limits: Limits,
    /// The socket server.
    pub api: Api,
    /// The bounded queue in front of the executors.
    pub queue: Queue,
    /// The sled store.
    pub store: StoreConfig,
    /// Who may submit offchain jobs.
    pub offchain: Offchain,
    /// Per-signer quotas on submitted jobs.
    pub quota: Quota,
    /// Metrics export.
    pub metrics: Metrics,
    /// How the executors treat a job whose execution fails the host.
    pub executor: ExecutorConfig,
    /// The chain to settle on; `None` runs the engine with no chain.
    pub chain: Option<Chain>,
    /// Cluster mode: several engines acting as one node over NATS
    /// JetStream; `None` (the default) is one engine on its own sled store.
    pub cluster: Option<Cluster>,
}

/// `[cluster]`: the NATS JetStream servers this engine shares programs,
/// jobs, results and settlement with, and its name among them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// The NATS servers (`nats://host:port`); the client uses any of them
    /// and fails over between them.
    pub servers: Vec<String>,
    /// This engine's name in the cluster: unique per engine, 1 to 64 of
    /// `A-Z a-z 0-9 _ -`.
    pub node_name: String,
    /// Replicas of each stream and bucket the engines create (JetStream's
    /// RAFT groups: at most 5); 0 means min(servers, 3).
    pub replicas: usize,
    /// How long one request to NATS may take, in ms.
    pub request_timeout_ms: u64,
    /// How long a job pulled by an engine may go without a word from it
    /// (an ack, or a progress report every third of this) before the
    /// servers offer it to another engine, in ms. Set by the first engine
    /// that creates the cluster's consumer.
    pub ack_wait_ms: u64,
    /// Jobs this engine pulls from the cluster's queue and holds at once
    /// (running or waiting for an executor); 0 means executors × 8, at
    /// least 16, which keeps small jobs flowing. Jobs pulled here wait here,
    /// so for long jobs set it near the executor count: the others go to
    /// idle engines.
    pub jobs_in_flight: usize,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            servers: Vec::new(),
            node_name: String::new(),
            replicas: 0,
            request_timeout_ms: 5000,
            ack_wait_ms: 30_000,
            jobs_in_flight: 0,
        }
    }
}

impl Cluster {
    /// The replicas of each stream and bucket.
    pub fn stream_replicas(&self) -> usize {
        match self.replicas {
            0 => self.servers.len().clamp(1, 3),
            replicas => replicas,
        }
    }

    /// Jobs pulled and held at once by an engine with `executors` threads.
    pub fn jobs_in_flight(&self, executors: usize) -> usize {
        match self.jobs_in_flight {
            0 => (executors * 8).max(16),
            jobs => jobs,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |what: String| Err(ConfigError::Invalid(format!("cluster.{what}")));
        if self.servers.is_empty() {
            return invalid("servers must name at least one NATS server".to_owned());
        }
        for server in &self.servers {
            let address = server.strip_prefix("nats://").unwrap_or(server);
            let port = address.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
            if port.and_then(|port| port.parse::<u16>().ok()).is_none() {
                return invalid(format!("servers: {server:?} is not nats://HOST:PORT"));
            }
        }
        let name_ok = (1..=64).contains(&self.node_name.len())
            && self.node_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return invalid(format!("node_name {:?} must be 1 to 64 of A-Z a-z 0-9 _ -", self.node_name));
        }
        if self.replicas > 5 {
            return invalid(format!("replicas must be at most 5 (JetStream's limit), got {}", self.replicas));
        }
        if self.request_timeout_ms == 0 {
            return invalid("request_timeout_ms must be positive".to_owned());
        }
        if self.ack_wait_ms < 300 {
            return invalid(format!("ack_wait_ms must be at least 300, got {}", self.ack_wait_ms));
        }
        Ok(())
    }
}

/// Job and program limits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest ELF accepted.
    pub max_program_bytes: usize,
    /// Largest onchain input, and separately largest offchain input.
    pub max_input_bytes: usize,
    /// Largest output, inclusive.
    pub max_output_bytes: usize,
    /// Guest memory per job.
    pub max_memory_bytes: u64,
    /// Cycle limit for a job that names none (the CLI's default).
    pub default_max_cycles: u64,
    /// The largest `maxCycles` a job may ask for.
    pub max_job_cycles: u64,
}

/// The socket server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// The Unix socket; relative paths are under `data_dir`.
    pub socket: PathBuf,
    /// Optional loopback TCP address for the same protocol. Its clients
    /// must present `<data_dir>/api.token` first (`coproc_auth`).
    pub tcp: Option<SocketAddr>,
    /// Allow `tcp` on an address other than loopback (the token is sent in
    /// clear: put TLS or a tunnel in front).
    pub tcp_allow_remote: bool,
    /// Largest request frame (a JSON line or a bincode frame).
    pub max_frame_bytes: usize,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests one connection may have in flight (pipelining depth).
    pub max_requests_in_flight: usize,
    /// Requests one `coproc_submitJobs` call may carry.
    pub max_batch_jobs: usize,
    /// `coproc_call` dry runs started per second, engine-wide (a token
    /// bucket with a second's worth of burst).
    pub calls_per_second: u32,
    /// `coproc_call` dry runs running or waiting for an executor at once.
    pub max_calls_in_flight: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// Notifications a subscription may have queued and not yet written to
    /// its socket; past it the subscription is dropped.
    pub subscription_backlog: usize,
}

/// The sled store.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Bytes sled may keep cached in memory (its page cache). This bounds
    /// the store's share of the engine's memory whatever the number of jobs.
    pub cache_bytes: u64,
    /// Days the log keeps the records of finished jobs; 0 keeps them all.
    pub retain_days: u32,
    /// Compress the store's pages (zstd). Fixed when the store is created.
    pub compression: bool,
    /// Free bytes kept on the store's filesystem: below this, new jobs and
    /// programs are refused (`disk full`); results of accepted jobs are
    /// written down to half of it, never below.
    pub min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { cache_bytes: 128 << 20, retain_days: 0, compression: false, min_free_bytes: 256 << 20 }
    }
}

/// The bounded job queue.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    /// Jobs accepted but not yet finished; a job beyond this gets `busy`.
    pub max_jobs: usize,
    /// Input bytes held by those jobs; a job beyond this gets `busy`.
    pub max_bytes: usize,
}

/// Offchain request signers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Offchain {
    /// Signer addresses whose requests are accepted (0x-hex).
    pub allowed_signers: Vec<String>,
    /// Generate `dev-consumer.key` in the data dir and allow its address.
    pub dev_signer: bool,
}

/// Per-signer quotas on offchain job submissions, by the request's
/// recovered signer: token buckets that refill at `*_per_second` up to
/// `*_burst`. 0 turns a quota off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Quota {
    /// Jobs one signer may submit per second, sustained.
    pub jobs_per_second: u64,
    /// Jobs one signer may submit at once after being idle.
    pub jobs_burst: u64,
    /// Cycles one signer may ask for per second, sustained (a job is
    /// charged its `maxCycles` when it is admitted).
    pub cycles_per_second: u64,
    /// Cycles one signer may ask for at once after being idle; at least
    /// `limits.max_job_cycles`, so that any admissible job can pass.
    pub cycles_burst: u64,
    /// Signers tracked at once. Idle ones (their buckets full again) are
    /// forgotten first; beyond this, new signers share one bucket.
    pub max_signers: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            jobs_per_second: 100_000,
            jobs_burst: 100_000,
            cycles_per_second: 1_000_000_000_000,
            cycles_burst: 1_000_000_000_000,
            max_signers: 100_000,
        }
    }
}

/// Metrics export, health and readiness.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Serve Prometheus text (`/metrics`), `/healthz` and `/readyz` on this
    /// loopback address.
    pub prometheus: Option<SocketAddr>,
    /// With a chain, the engine is ready only while the listener is at most
    /// this many blocks behind the newest block it may read.
    pub ready_max_lag_blocks: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics { prometheus: None, ready_max_lag_blocks: 64 }
    }
}

/// Onchain settlement: the node, the JobManager, and how the relayer and
/// the listener behave.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Chain {
    /// The node's HTTP JSON-RPC endpoint.
    pub rpc_url: String,
    /// The JobManager contract (its proxy).
    pub job_manager: String,
    /// Blocks a transaction or an event must be deep before it counts
    /// (1 = included in the head block).
    pub confirmations: u64,
    /// How often the listener and the relayer poll the node, in ms.
    pub poll_interval_ms: u64,
    /// Failed submissions (reverts, rejections) before a job is
    /// dead-lettered. An unreachable node is retried without limit.
    pub max_relay_attempts: u32,
    /// Transactions each relayer key keeps in flight (sent, not yet
    /// mined) at once.
    pub max_in_flight: usize,
    /// Results settled by one transaction (`submitResults`); 1 sends each
    /// result on its own with InfinityVM's `submitResult` /
    /// `submitResultForOffchainJob`.
    pub max_batch_items: usize,
    /// Gas one settlement transaction may use; 0 means a tenth of the block
    /// gas limit. Never more than half the block gas limit.
    pub max_batch_gas: u64,
    /// How long a result waits for others to share its transaction (a
    /// full batch goes at once).
    pub batch_wait_ms: u64,
    /// Gas one result (its checks and the consumer's callback) may use
    /// inside a batch; a callback that needs more is skipped.
    pub max_gas_per_result: u64,
    /// Blocks without any of a key's transactions mined before its unmined
    /// ones are sent again with the same nonces and higher fees (+12.5% at
    /// least).
    pub replace_after_blocks: u64,
    /// The fee ceiling, in wei per gas: no transaction offers more, however
    /// high the base fee goes (sending waits until it falls back).
    pub max_fee_per_gas_wei: u64,
    /// The tip: this percentile of the tips paid in recent blocks
    /// (`eth_feeHistory`)...
    pub priority_fee_percentile: u8,
    /// ... and at least this many wei per gas.
    pub min_priority_fee_wei: u64,
    /// Warn when a relayer key's balance covers fewer than this many full
    /// batches at the current fees.
    pub low_balance_batches: u64,
    /// Every RPC call gives up after this many ms (then backs off).
    pub rpc_timeout_ms: u64,
    /// The first block the listener reads when it has no cursor yet.
    pub start_block: u64,
    /// Most blocks one `eth_getLogs` call covers.
    pub max_log_range: u64,
    /// The relayer's key file, relative to `data_dir`; generated if absent.
    pub relayer_key: PathBuf,
    /// More relayer key files, each with its own nonce lane (generated if
    /// absent). They settle offchain jobs; onchain ones too once the
    /// JobManager's owner authorizes them (`setRelayerAuthorized`).
    pub relayer_keys: Vec<PathBuf>,
    /// Where an offchain job's input is made available onchain: posted as
    /// EIP-4844 blobs in the transaction that settles it (`blobs`, the
    /// InfinityVM way), or not at all (`none`); `auto` is `blobs` on a
    /// node with blob transactions (`eth_blobBaseFee` answers) and `none`
    /// elsewhere.
    pub offchain_input_da: InputDa,
    /// The most blobs one job's input may take, compressed (1 to 6); a
    /// larger input is refused at submission while inputs are posted.
    pub max_blobs_per_job: usize,
    /// The blob fee ceiling, in wei per blob gas: a result whose input
    /// goes in blobs waits while the blob base fee is above it.
    pub max_fee_per_blob_gas_wei: u64,
}

/// Where offchain inputs are made available onchain.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InputDa {
    /// Blobs where the node supports them, else nowhere.
    Auto,
    /// EIP-4844 blobs in the settling transaction.
    Blobs,
    /// Nowhere: the input stays with the engine (and the client).
    None,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            rpc_url: "http://127.0.0.1:8545".to_owned(),
            job_manager: String::new(),
            confirmations: 1,
            poll_interval_ms: 250,
            max_relay_attempts: 5,
            max_in_flight: 256,
            max_batch_items: 64,
            max_batch_gas: 0,
            batch_wait_ms: 50,
            max_gas_per_result: 2_000_000,
            replace_after_blocks: 3,
            max_fee_per_gas_wei: 500_000_000_000,
            priority_fee_percentile: 50,
            min_priority_fee_wei: 1_000_000,
            low_balance_batches: 20,
            rpc_timeout_ms: 5_000,
            start_block: 0,
            max_log_range: 2_000,
            relayer_key: PathBuf::from(crate::keys::RELAYER_KEY),
            relayer_keys: Vec::new(),
            offchain_input_da: InputDa::Auto,
            max_blobs_per_job: crate::protocol::blobs::MAX_BLOBS_PER_JOB,
            max_fee_per_blob_gas_wei: 100_000_000_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            executors: 0,
            limits: Limits::default(),
            api: Api::default(),
            queue: Queue::default(),
            store: StoreConfig::default(),
            offchain: Offchain::default(),
            quota: Quota::default(),
            metrics: Metrics::default(),
            executor: ExecutorConfig::default(),
            chain: None,
            cluster: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_program_bytes: 16 << 20,
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_memory_bytes: 256 << 20,
            default_max_cycles: 1_000_000_000,
            max_job_cycles: 10_000_000_000,
        }
    }
}

impl Default for Api {
    fn default() -> Self {
        Api {
            socket: PathBuf::from("coprocessor.ipc"),
            tcp: None,
            tcp_allow_remote: false,
            max_frame_bytes: 48 << 20,
            max_connections: 4096,
            max_requests_in_flight: 1024,
            max_batch_jobs: 1024,
            calls_per_second: 100,
            max_calls_in_flight: 8,
            max_subscriptions_per_connection: 64,
            subscription_backlog: 1024,
        }
    }
}

impl Default for Queue {
    fn default() -> Self {
        Queue { max_jobs: 16_384, max_bytes: 512 << 20 }
    }
}

/// The executors' handling of a job whose execution panics the host (an
/// engine bug, not the guest's failure).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// Attempts before such a job is quarantined (recorded `failed` with
    /// the reason). Counted durably, across restarts.
    pub max_attempts: u8,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig { max_attempts: 3 }
    }
}

impl Default for Offchain {
    fn default() -> Self {
        Offchain { allowed_signers: Vec::new(), dev_signer: true }
    }
}

impl Config {
    /// The embedded default (`config.toml` of the repository).
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(EMBEDDED, "embedded default")
    }

    /// Reads `path`, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Config::embedded(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                Config::parse(&text, &path.display().to_string())
            }
        }
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|source| ConfigError::Parse { origin: origin.to_owned(), source })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |what: &str| Err(ConfigError::Invalid(what.to_owned()));
        if self.limits.max_input_bytes == 0 || self.limits.max_input_bytes > 64 << 20 {
            return invalid("limits.max_input_bytes must be between 1 and 64 MiB");
        }
        if self.limits.max_memory_bytes == 0 {
            return invalid("limits.max_memory_bytes must be positive");
        }
        if self.limits.default_max_cycles > self.limits.max_job_cycles {
            return invalid("limits.default_max_cycles must not exceed limits.max_job_cycles");
        }
        if self.api.max_frame_bytes < 1024 {
            return invalid("api.max_frame_bytes must be at least 1024");
        }
        if self.api.max_connections == 0 || self.api.max_requests_in_flight == 0 {
            return invalid("api.max_connections and api.max_requests_in_flight must be positive");
        }
        if self.api.max_batch_jobs == 0 || self.api.calls_per_second == 0 || self.api.max_calls_in_flight == 0 {
            return invalid("api.max_batch_jobs, api.calls_per_second and api.max_calls_in_flight must be positive");
        }
        if self.api.max_subscriptions_per_connection == 0 || self.api.subscription_backlog == 0 {
            return invalid("api.max_subscriptions_per_connection and api.subscription_backlog must be positive");
        }
        if self.queue.max_jobs == 0 || self.queue.max_bytes == 0 {
            return invalid("queue.max_jobs and queue.max_bytes must be positive");
        }
        if self.store.cache_bytes < 1 << 20 {
            return invalid("store.cache_bytes must be at least 1 MiB (1048576)");
        }
        if self.executor.max_attempts == 0 {
            return invalid("executor.max_attempts must be at least 1");
        }
        for (name, addr) in [("api.tcp", self.api.tcp), ("metrics.prometheus", self.metrics.prometheus)] {
            if let Some(addr) = addr {
                let allowed = addr.ip().is_loopback() || (name == "api.tcp" && self.api.tcp_allow_remote);
                if !allowed {
                    let hint = if name == "api.tcp" { " (or set api.tcp_allow_remote = true)" } else { "" };
                    return Err(ConfigError::Invalid(format!("{name} must be a loopback address, got {addr}{hint}")));
                }
            }
        }
        let quota = &self.quota;
        if (quota.jobs_per_second > 0 && quota.jobs_burst == 0) || quota.max_signers == 0 {
            return invalid(
                "quota.jobs_burst must be positive when quota.jobs_per_second is, and quota.max_signers positive",
            );
        }
        if quota.cycles_per_second > 0 && quota.cycles_burst < self.limits.max_job_cycles {
            return Err(ConfigError::Invalid(format!(
                "quota.cycles_burst ({}) must be at least limits.max_job_cycles ({}), or no such job could ever pass",
                quota.cycles_burst, self.limits.max_job_cycles
            )));
        }
        for signer in &self.offchain.allowed_signers {
            if signer.parse::<alloy::primitives::Address>().is_err() {
                return Err(ConfigError::Invalid(format!("offchain.allowed_signers: {signer:?} is not an address")));
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        if let Some(chain) = &self.chain {
            if chain.job_manager.parse::<alloy::primitives::Address>().is_err() {
                return Err(ConfigError::Invalid(format!(
                    "chain.job_manager: {:?} is not an address",
                    chain.job_manager
                )));
            }
            if !(chain.rpc_url.starts_with("http://") || chain.rpc_url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!("chain.rpc_url: {:?} is not an http(s) URL", chain.rpc_url)));
            }
            if chain.confirmations == 0 || chain.max_relay_attempts == 0 || chain.max_in_flight == 0 {
                return invalid(
                    "chain.confirmations, chain.max_relay_attempts and chain.max_in_flight must be positive",
                );
            }
            if chain.poll_interval_ms == 0 || chain.max_log_range == 0 || chain.rpc_timeout_ms == 0 {
                return invalid(
                    "chain.poll_interval_ms, chain.max_log_range and chain.rpc_timeout_ms must be positive",
                );
            }
            if chain.max_batch_items == 0 || chain.max_batch_items > 1024 {
                return invalid("chain.max_batch_items must be between 1 and 1024");
            }
            if chain.max_gas_per_result < 50_000 || chain.replace_after_blocks == 0 {
                return invalid(
                    "chain.max_gas_per_result must be at least 50000 and chain.replace_after_blocks positive",
                );
            }
            if chain.priority_fee_percentile > 100 {
                return invalid("chain.priority_fee_percentile must be between 0 and 100");
            }
            if u128::from(chain.min_priority_fee_wei) > u128::from(chain.max_fee_per_gas_wei) {
                return invalid("chain.min_priority_fee_wei must not exceed chain.max_fee_per_gas_wei");
            }
            if !(1..=crate::protocol::blobs::MAX_BLOBS_PER_JOB).contains(&chain.max_blobs_per_job) {
                return invalid("chain.max_blobs_per_job must be between 1 and 6");
            }
        }
        Ok(())
    }

    /// Executor threads after resolving 0 to the number of cores.
    pub fn executor_threads(&self) -> usize {
        if self.executors == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            self.executors
        }
    }

    /// The socket path, resolved against `data_dir`.
    pub fn socket_path(&self) -> PathBuf {
        self.data_dir.join(&self.api.socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_the_documented_default() {
        assert_eq!(Config::embedded().unwrap(), Config::default());
    }

    #[test]
    fn a_file_names_only_what_it_changes() {
        let config = Config::parse("executors = 3\n[limits]\nmax_output_bytes = 10\n", "test").unwrap();
        assert_eq!(config.executors, 3);
        assert_eq!(config.limits.max_output_bytes, 10);
        assert_eq!(config.limits.max_input_bytes, Limits::default().max_input_bytes);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors() {
        let err = Config::parse("[limits]\nmax_ouptut_bytes = 1\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("unknown field `max_ouptut_bytes`"), "{err}");
        let err = Config::parse("[metrics]\nprometheus = \"0.0.0.0:9100\"\n", "f.toml").unwrap_err();
        assert_eq!(err.to_string(), "invalid config: metrics.prometheus must be a loopback address, got 0.0.0.0:9100");
        let err = Config::parse("[chain]\njob_manager = \"0x12\"\n", "f.toml").unwrap_err();
        assert_eq!(err.to_string(), "invalid config: chain.job_manager: \"0x12\" is not an address");
        let err = Config::parse("[offchain]\nallowed_signers = [\"0x12\"]\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("is not an address"), "{err}");
        let err = Config::parse("[api]\ntcp = \"0.0.0.0:8645\"\n", "f.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: api.tcp must be a loopback address, got 0.0.0.0:8645 (or set api.tcp_allow_remote = true)"
        );
        let remote = Config::parse("[api]\ntcp = \"0.0.0.0:8645\"\ntcp_allow_remote = true\n", "f.toml").unwrap();
        assert_eq!(remote.api.tcp, Some("0.0.0.0:8645".parse().unwrap()));
        let err = Config::parse("[quota]\ncycles_burst = 1000\n", "f.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: quota.cycles_burst (1000) must be at least limits.max_job_cycles (10000000000), or no \
             such job could ever pass"
        );
        let off =
            Config::parse("[quota]\ncycles_per_second = 0\ncycles_burst = 0\njobs_per_second = 0\n", "f").unwrap();
        assert_eq!((off.quota.jobs_per_second, off.quota.cycles_per_second), (0, 0));
        let err = Config::parse("[store]\ncache_bytes = 1000\n", "f.toml").unwrap_err();
        assert_eq!(err.to_string(), "invalid config: store.cache_bytes must be at least 1 MiB (1048576)");
        for field in ["max_batch_jobs", "calls_per_second", "max_calls_in_flight"] {
            let err = Config::parse(&format!("[api]\n{field} = 0\n"), "f.toml").unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid config: api.max_batch_jobs, api.calls_per_second and api.max_calls_in_flight must be positive"
            );
        }
        for field in ["max_subscriptions_per_connection", "subscription_backlog"] {
            let err = Config::parse(&format!("[api]\n{field} = 0\n"), "f.toml").unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid config: api.max_subscriptions_per_connection and api.subscription_backlog must be positive"
            );
        }
    }

    #[test]
    fn cluster_settings_are_checked() {
        let cluster = |lines: &str| Config::parse(&format!("[cluster]\n{lines}\n"), "f.toml");
        let ok = cluster("servers = [\"nats://127.0.0.1:4222\", \"127.0.0.1:4223\"]\nnode_name = \"node-1\"").unwrap();
        let section = ok.cluster.unwrap();
        assert_eq!((section.stream_replicas(), section.request_timeout_ms), (2, 5000));
        let refused = |lines: &str| cluster(lines).unwrap_err().to_string();
        assert_eq!(
            refused("servers = [\"nats://127.0.0.1\"]\nnode_name = \"a\""),
            "invalid config: cluster.servers: \"nats://127.0.0.1\" is not nats://HOST:PORT"
        );
        assert_eq!(
            refused("servers = [\"nats://127.0.0.1:4222\"]\nnode_name = \"a b\""),
            "invalid config: cluster.node_name \"a b\" must be 1 to 64 of A-Z a-z 0-9 _ -"
        );
        assert_eq!(
            refused("servers = [\"nats://127.0.0.1:4222\"]\nnode_name = \"a\"\nreplicas = 6"),
            "invalid config: cluster.replicas must be at most 5 (JetStream's limit), got 6"
        );
        let both = format!(
            "[chain]\njob_manager = \"0x{}\"\n[cluster]\nservers = [\"nats://127.0.0.1:4222\"]\nnode_name = \"a\"\n",
            "11".repeat(20)
        );
        let both = Config::parse(&both, "f.toml").unwrap();
        assert!(both.cluster.is_some() && both.chain.is_some(), "a cluster settles onchain");
    }

    #[test]
    fn relay_settings_are_checked() {
        let chain = |line: &str| {
            let text = format!("[chain]\njob_manager = \"0x{}\"\n{line}\n", "11".repeat(20));
            Config::parse(&text, "f.toml").map(|config| config.chain.map(|chain| chain.max_batch_items))
        };
        assert_eq!(chain("max_batch_items = 1").unwrap(), Some(1));
        let err = chain("max_batch_items = 0").unwrap_err();
        assert_eq!(err.to_string(), "invalid config: chain.max_batch_items must be between 1 and 1024");
        let err = chain("priority_fee_percentile = 101").unwrap_err();
        assert_eq!(err.to_string(), "invalid config: chain.priority_fee_percentile must be between 0 and 100");
        let err = chain("max_fee_per_gas_wei = 10\nmin_priority_fee_wei = 11").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: chain.min_priority_fee_wei must not exceed chain.max_fee_per_gas_wei"
        );
        let err = chain("drop_timeout_ms = 60000").unwrap_err();
        assert!(err.to_string().contains("unknown field `drop_timeout_ms`"), "{err}");
    }
}
