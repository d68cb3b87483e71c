//! The socket API's types, shared by the engine and its clients.
//!
//! The same structs serve both encodings: JSON-RPC 2.0 (camelCase objects,
//! bytes as 0x-hex) and the bincode fast path (raw bytes). [`Call`] and
//! [`Reply`] are the typed request and response; [`Method`] names them.

pub use crate::health::{Check, Health};
use crate::job::JobOutcome;
use crate::metrics::MetricsSnapshot;
use crate::program::Isa;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The first byte of a connection that speaks the bincode fast path. It can
/// never start JSON.
pub const FAST_PATH_MAGIC: u8 = 0xC0;

/// The most bytes the first request of a TCP connection may take (its
/// `coproc_auth`): nothing larger is read from a client not yet
/// authenticated.
pub const AUTH_MAX_BYTES: usize = 4096;

/// Bytes: 0x-hex in JSON, raw in bincode.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl From<Vec<u8>> for HexBytes {
    fn from(bytes: Vec<u8>) -> Self {
        HexBytes(bytes)
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let mut text = String::with_capacity(2 + self.0.len() * 2);
            text.push_str("0x");
            text.push_str(&hex::encode(&self.0));
            serializer.serialize_str(&text)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            let digits =
                text.strip_prefix("0x").ok_or_else(|| serde::de::Error::custom("bytes must be 0x-prefixed hex"))?;
            hex::decode(digits).map(HexBytes).map_err(|err| serde::de::Error::custom(format!("bad hex: {err}")))
        } else {
            <Vec<u8>>::deserialize(deserializer).map(HexBytes)
        }
    }
}

/// `coproc_submitProgram` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitProgram {
    /// The ELF.
    pub elf: HexBytes,
    /// A name for it (1 to 64 of `A-Z a-z 0-9 . _ -`): a label, not an
    /// identifier. Absent: a program registered before keeps its name, a
    /// new one has none.
    #[serde(default)]
    pub name: Option<String>,
}

/// A program ID result (`coproc_submitProgram`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramIdReply {
    /// The program ID (keccak256 of the ELF).
    pub program_id: HexBytes,
    /// The program's instruction set (its ELF class): `rv32im` or `rv64im`.
    pub isa: Isa,
    /// Its name (empty: none).
    #[serde(default)]
    pub name: String,
}

/// `coproc_containsProgram` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainsProgram {
    /// The program ID.
    pub program_id: HexBytes,
}

/// `coproc_containsProgram` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainsReply {
    /// Whether the engine has it.
    pub contains: bool,
}

/// `coproc_listPrograms` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramsReply {
    /// Every program ID, sorted.
    pub program_ids: Vec<HexBytes>,
    /// Every program with its instruction set, in the same order.
    #[serde(default)]
    pub programs: Vec<ProgramInfo>,
}

/// A registered program, as `coproc_listPrograms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramInfo {
    /// The program ID (keccak256 of the ELF).
    pub program_id: HexBytes,
    /// Its instruction set (its ELF class): `rv32im` or `rv64im`.
    pub isa: Isa,
    /// Its name (empty: none).
    #[serde(default)]
    pub name: String,
    /// The ELF's size.
    #[serde(default)]
    pub size_bytes: u64,
    /// When it was first registered, in Unix milliseconds (0: before the
    /// engine recorded it).
    #[serde(default)]
    pub registered_unix_ms: u64,
    /// Its jobs that ran to a result (done or failed).
    #[serde(default)]
    pub jobs: u64,
    /// The cycles those jobs used.
    #[serde(default)]
    pub cycles: u64,
}

/// `coproc_submitJob` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitJob {
    /// `abi.encode(OffchainJobRequest)`.
    pub request: HexBytes,
    /// The consumer signer's EIP-191 signature over `request`.
    pub signature: HexBytes,
    /// The offchain input (its keccak256 is in the request).
    #[serde(default)]
    pub offchain_input: HexBytes,
    /// Answer with the job's result (the `coproc_getResult` object) once it
    /// is durable, instead of with `{jobId}` once the job is.
    #[serde(default)]
    pub wait: bool,
    /// How the result is relayed onchain (InfinityVM's `relay_strategy`;
    /// like theirs, not covered by the signature).
    #[serde(default)]
    pub relay_strategy: RelayStrategy,
}

/// How a job's result is relayed onchain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayStrategy {
    /// As soon as it is executed.
    #[default]
    Unordered,
    /// In the consumer's nonce order: a nonce that failed blocks the later
    /// ones until it is submitted again and succeeds.
    Ordered,
}

/// A job ID (params of `coproc_getResult`, result of `coproc_submitJob`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobIdParams {
    /// The job ID.
    pub job_id: HexBytes,
}

/// `coproc_getResult` result. Fields not yet known are null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    /// The job ID.
    pub job_id: HexBytes,
    /// pending, running, done, failed, submitted, confirmed, cancelled,
    /// dead-lettered, or rejected.
    pub status: String,
    /// The guest's exit code.
    pub exit_code: Option<u32>,
    /// Cycles used.
    pub cycles: Option<u64>,
    /// Guest memory used.
    pub peak_memory_bytes: Option<u64>,
    /// The guest's output.
    pub output: Option<HexBytes>,
    /// `abi.encode(ResultWithMetadata)` or the offchain variant.
    pub result_with_metadata: Option<HexBytes>,
    /// The operator's signature over `resultWithMetadata`.
    pub signature: Option<HexBytes>,
    /// Why the job failed.
    pub failure_reason: Option<String>,
    /// The settlement transaction, once submitted.
    pub tx_hash: Option<HexBytes>,
    /// Why settlement failed, for a dead-lettered job.
    #[serde(default)]
    pub relay_error: Option<String>,
    /// Why a `done` job is not sent for settlement yet, when a fee ceiling
    /// holds it back (`chain.max_fee_per_gas_wei`, or for an input posted
    /// as blobs `chain.max_fee_per_blob_gas_wei`).
    #[serde(default)]
    pub relay_waiting: Option<String>,
    /// Why the last request for this job ID was refused, if one was (the
    /// status is `rejected` when no request for it was ever accepted).
    #[serde(default)]
    pub rejection: Option<String>,
    /// The instruction set the job ran (its program's ELF class): `rv32im`
    /// or `rv64im`. Known once the job is executed (or settled, cancelled,
    /// failed); null while it is pending or running, and when its log
    /// records were pruned or its program is not registered.
    #[serde(default)]
    pub isa: Option<Isa>,
}

/// A consumer address (params of `coproc_getPendingJobs`, `coproc_nextNonce`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerParams {
    /// The consumer contract.
    pub consumer: HexBytes,
}

/// `coproc_getPendingJobs` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingReply {
    /// Nonces of the consumer's jobs not yet executed, ascending.
    pub nonces: Vec<u64>,
    /// Nonces executed and waiting for ordered relay, ascending.
    #[serde(default)]
    pub awaiting_relay: Vec<u64>,
    /// The nonce ordered relay waits for, when later ones are ready but
    /// it is not (it failed, or has not arrived).
    #[serde(default)]
    pub blocked_on: Option<u64>,
}

/// `coproc_nextNonce` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonceReply {
    /// One past the highest nonce the consumer has used.
    pub nonce: u64,
}

/// `coproc_status` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReply {
    /// Engine version.
    pub version: String,
    /// The operator address.
    pub operator: HexBytes,
    /// Seconds since start-up.
    pub uptime_seconds: u64,
    /// The chain the engine settles on, if any.
    pub chain: Option<String>,
    /// The dev consumer signer's address, if the engine allows one.
    pub dev_signer: Option<HexBytes>,
    /// The git commit the engine was built from (`unknown` outside a
    /// checkout).
    #[serde(default)]
    pub git_commit: String,
    /// Jobs accepted and not yet executed and recorded (pending or running).
    #[serde(default)]
    pub jobs_pending: u64,
    /// Jobs in the dead-letter tree (settlement kept failing;
    /// `coproc_retryJob` pushes one again).
    #[serde(default)]
    pub jobs_dead_lettered: u64,
    /// With a chain: what the node and the relayer report.
    #[serde(default)]
    pub onchain: Option<OnchainStatus>,
    /// In cluster mode: this engine in its cluster.
    #[serde(default)]
    pub cluster: Option<ClusterStatus>,
}

/// The cluster part of `coproc_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// This engine's name in the cluster.
    pub node: String,
    /// The NATS servers it uses.
    pub servers: Vec<String>,
    /// Jobs in the cluster's queue not yet acked by any engine (sampled
    /// every second).
    pub jobs_queued: u64,
    /// Jobs this engine pulled from the cluster and ran.
    pub jobs_run_here: u64,
    /// Jobs whose recorded result is this engine's.
    pub results_recorded_here: u64,
    /// Jobs offered to this engine again after another delivery was not acked.
    pub redeliveries_here: u64,
    /// Results waiting to be settled, not yet acked by any engine's relayer
    /// (sampled every second; 0 without `[chain]`).
    #[serde(default)]
    pub relays_queued: u64,
    /// Results whose settlement this engine holds now.
    #[serde(default)]
    pub relays_held_here: u64,
    /// Consumers whose ordered results this engine relays (their leases).
    #[serde(default)]
    pub leases_held_here: u64,
    /// Results this engine took from the relay queue and saw to their end.
    #[serde(default)]
    pub relays_ended_here: u64,
}

/// The chain part of `coproc_status`. Read from the node at the call (each
/// read bounded by `chain.rpc_timeout_ms`); a figure the node did not give
/// is null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainStatus {
    /// The node's chain ID.
    pub chain_id: Option<u64>,
    /// The node's newest block.
    pub head: Option<u64>,
    /// The last block the listener has read.
    pub listener_block: u64,
    /// Blocks between the newest one the listener may read (`head + 1 -
    /// confirmations`) and the last one it read.
    pub listener_lag_blocks: Option<u64>,
    /// The relayer keys and their balances.
    pub relayers: Vec<RelayerStatus>,
    /// Results executed and not yet confirmed onchain or dead-lettered.
    pub awaiting_relay: u64,
}

/// One relayer key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayerStatus {
    /// Its address.
    pub address: HexBytes,
    /// Its balance in wei, as a decimal string (it may not fit in a JSON
    /// number).
    pub balance_wei: Option<String>,
}

/// `coproc_replay` params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayParams {
    /// First log sequence number (inclusive).
    #[serde(default)]
    pub from: Option<u64>,
    /// Last log sequence number (inclusive).
    #[serde(default)]
    pub to: Option<u64>,
    /// Only jobs of this program.
    #[serde(default)]
    pub program_id: Option<HexBytes>,
}

/// `coproc_replay` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReply {
    /// Jobs re-executed.
    pub replayed: u64,
    /// Jobs whose output, exit code and cycles matched the log.
    pub matched: u64,
    /// Jobs that did not match.
    pub mismatched: Vec<HexBytes>,
    /// The first log record the store still holds; records before it were
    /// pruned (`store.retain_days`) and were not replayed.
    #[serde(default)]
    pub first_retained: u64,
}

/// `debug_panic` params (only with fault injection on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PanicParams {
    /// registry, executor or submitter.
    pub actor: String,
}

/// `coproc_auth` params: the first request of every TCP connection.
///
/// In JSON-RPC: `{"jsonrpc":"2.0","id":1,"method":"coproc_auth",
/// "params":{"token":"<64 hex digits>"}}`, one line. On the fast path: the
/// first frame after the magic byte is a [`FastRequest`] whose call is
/// [`Call::Auth`]. The answer is an empty result; anything else as the
/// first request (or a wrong token, or nothing within 10 s, or a first
/// request over [`AUTH_MAX_BYTES`]) gets [`codes::UNAUTHORIZED`] and the
/// connection is closed before any work. Unix socket connections need no
/// token, and `coproc_auth` anywhere else is an invalid request.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthParams {
    /// The contents of `<data_dir>/api.token` (64 hex digits).
    pub token: String,
}

impl fmt::Debug for AuthParams {
    /// The token never appears in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthParams { token: <redacted> }")
    }
}

/// `coproc_submitJobs` params: many signed requests in one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitJobs {
    /// The requests, answered in this order (at most `api.max_batch_jobs`).
    pub jobs: Vec<BatchJob>,
}

/// One request of a batch: `coproc_submitJob`'s params but `wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchJob {
    /// `abi.encode(OffchainJobRequest)`.
    pub request: HexBytes,
    /// The consumer signer's EIP-191 signature over `request`.
    pub signature: HexBytes,
    /// The offchain input (its keccak256 is in the request).
    #[serde(default)]
    pub offchain_input: HexBytes,
    /// How the result is relayed onchain.
    #[serde(default)]
    pub relay_strategy: RelayStrategy,
}

/// `coproc_submitJobs` result: one item per request, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReply {
    /// In JSON each is `{"jobId": ...}` (accepted and durable) or
    /// `{"error": {"code", "message"}}` (refused, as `coproc_submitJob`
    /// would refuse it alone).
    pub results: Vec<BatchItem>,
}

/// One answer of a batch: exactly one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    /// The job ID of an accepted request.
    #[serde(default)]
    pub job_id: Option<HexBytes>,
    /// Why the request was refused.
    #[serde(default)]
    pub error: Option<RpcError>,
}

impl BatchItem {
    /// The answer for one request.
    pub fn new(result: Result<HexBytes, RpcError>) -> BatchItem {
        match result {
            Ok(id) => BatchItem { job_id: Some(id), error: None },
            Err(err) => BatchItem { job_id: None, error: Some(err) },
        }
    }
}

/// `coproc_call` params: run a registered program on these inputs as a
/// job would run, and store, sign and relay nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallParams {
    /// The program.
    pub program_id: HexBytes,
    /// The onchain input.
    #[serde(default)]
    pub onchain_input: HexBytes,
    /// The offchain input.
    #[serde(default)]
    pub offchain_input: HexBytes,
    /// The cycle limit (`limits.default_max_cycles` when absent).
    #[serde(default)]
    pub max_cycles: Option<u64>,
}

/// The outcome of one run with nothing stored: `coproc_call`'s result and
/// `exec --json`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReply {
    /// `done` (exit code 0) or `failed`.
    pub status: String,
    /// The instruction set the program ran.
    pub isa: Isa,
    /// The guest's exit code (null when it did not exit).
    pub exit_code: Option<u32>,
    /// Cycles used, exact.
    pub cycles: u64,
    /// Guest memory used: the image plus every page touched.
    pub peak_memory_bytes: u64,
    /// The guest's output.
    pub output: HexBytes,
    /// Why the run failed.
    pub failure_reason: Option<String>,
    /// Wall time of the run, in microseconds.
    pub wall_micros: u64,
}

impl RunReply {
    /// The reply for `outcome`, a run of an `isa` program that took
    /// `wall_micros`.
    pub fn new(isa: Isa, outcome: &JobOutcome, wall_micros: u64) -> RunReply {
        RunReply {
            status: if outcome.is_done() { "done" } else { "failed" }.to_owned(),
            isa,
            exit_code: outcome.exit_code,
            cycles: outcome.cycles,
            peak_memory_bytes: outcome.peak_memory_bytes,
            output: HexBytes(outcome.output.clone()),
            failure_reason: outcome.failure.as_ref().map(ToString::to_string),
            wall_micros,
        }
    }
}

/// `coproc_subscribe` params: `["jobs", {"consumer": ADDRESS}]` or
/// `["jobs", {"jobIds": [ID, ...]}]`. The answer is the subscription's ID;
/// then each durable status change of a matching job arrives as
/// `{"jsonrpc":"2.0","method":"coproc_subscription","params":
/// {"subscription": ID, "result": <the coproc_getResult object>}}`, in
/// order, and a subscription that is dropped gets one last notification
/// with `"error"` instead of `"result"`. JSON-RPC connections only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeParams(pub String, pub JobFilter);

/// Which jobs a subscription follows: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobFilter {
    /// Every job of this consumer.
    #[serde(default)]
    pub consumer: Option<HexBytes>,
    /// These jobs (at most 1024).
    #[serde(default)]
    pub job_ids: Option<Vec<HexBytes>>,
}

/// `coproc_unsubscribe` params: `[ID]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeParams(pub Vec<String>);

/// Empty params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// An empty result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Every request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// `coproc_submitProgram`
    SubmitProgram(SubmitProgram),
    /// `coproc_containsProgram`
    ContainsProgram(ContainsProgram),
    /// `coproc_listPrograms`
    ListPrograms(NoParams),
    /// `coproc_submitJob`
    SubmitJob(SubmitJob),
    /// `coproc_getResult`
    GetResult(JobIdParams),
    /// `coproc_getPendingJobs`
    GetPendingJobs(ConsumerParams),
    /// `coproc_nextNonce`
    NextNonce(ConsumerParams),
    /// `coproc_metrics`
    Metrics(NoParams),
    /// `coproc_status`
    Status(NoParams),
    /// `coproc_replay`
    Replay(ReplayParams),
    /// `coproc_retryJob`
    RetryJob(JobIdParams),
    /// `debug_panic`
    Panic(PanicParams),
    /// `coproc_auth` (the first request of a TCP connection)
    Auth(AuthParams),
    /// `coproc_submitJobs`
    SubmitJobs(SubmitJobs),
    /// `coproc_call`
    CallProgram(CallParams),
    /// `coproc_health`
    Health(NoParams),
    /// `coproc_subscribe` (JSON-RPC only)
    Subscribe(SubscribeParams),
    /// `coproc_unsubscribe` (JSON-RPC only)
    Unsubscribe(UnsubscribeParams),
}

/// Every response. In JSON-RPC the `result` is the variant's object alone
/// ([`Reply::to_json`]); bincode keeps the variant tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// A program ID.
    ProgramId(ProgramIdReply),
    /// Whether a program exists.
    Contains(ContainsReply),
    /// Program IDs.
    Programs(ProgramsReply),
    /// A job ID.
    JobId(JobIdParams),
    /// A job's result.
    Result(Box<JobResult>),
    /// Pending nonces.
    Pending(PendingReply),
    /// The next nonce.
    Nonce(NonceReply),
    /// Metrics.
    Metrics(Box<MetricsSnapshot>),
    /// Status.
    Status(Box<StatusReply>),
    /// A replay summary.
    Replay(ReplayReply),
    /// Nothing.
    Empty(Empty),
    /// A batch's answers.
    Batch(BatchReply),
    /// A run's outcome.
    Run(Box<RunReply>),
    /// Health and readiness.
    Health(Health),
    /// A subscription's ID.
    Subscribed(String),
    /// Whether a subscription was live when it was cancelled.
    Unsubscribed(bool),
}

impl Reply {
    /// The JSON-RPC `result` object.
    pub fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            Reply::ProgramId(r) => serde_json::to_value(r),
            Reply::Contains(r) => serde_json::to_value(r),
            Reply::Programs(r) => serde_json::to_value(r),
            Reply::JobId(r) => serde_json::to_value(r),
            Reply::Result(r) => serde_json::to_value(r),
            Reply::Pending(r) => serde_json::to_value(r),
            Reply::Nonce(r) => serde_json::to_value(r),
            Reply::Metrics(r) => serde_json::to_value(r),
            Reply::Status(r) => serde_json::to_value(r),
            Reply::Replay(r) => serde_json::to_value(r),
            Reply::Empty(r) => serde_json::to_value(r),
            Reply::Batch(r) => {
                // Each item shows only the field it has.
                let mut value = serde_json::to_value(r)?;
                if let Some(items) = value.get_mut("results").and_then(|v| v.as_array_mut()) {
                    for item in items.iter_mut().filter_map(|item| item.as_object_mut()) {
                        item.retain(|_, v| !v.is_null());
                    }
                }
                Ok(value)
            }
            Reply::Run(r) => serde_json::to_value(r),
            Reply::Health(r) => serde_json::to_value(r),
            Reply::Subscribed(r) => serde_json::to_value(r),
            Reply::Unsubscribed(r) => serde_json::to_value(r),
        }
    }
}

/// An error, as JSON-RPC sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// The code: JSON-RPC's reserved ones, or one of [`codes`].
    pub code: i32,
    /// What went wrong.
    pub message: String,
}

/// Error codes. -32700..-32600 are JSON-RPC's; the rest are the engine's.
pub mod codes {
    /// The text is not JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// Not a JSON-RPC 2.0 request, or a frame over the limit.
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// The params are missing, of the wrong type, or malformed.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The engine failed.
    pub const INTERNAL: i32 = -32603;
    /// The job queue is full; retry later.
    pub const BUSY: i32 = -32001;
    /// The consumer already used the nonce.
    pub const NONCE_USED: i32 = -32002;
    /// The request signature is invalid, or its signer is not allowed.
    pub const BAD_SIGNATURE: i32 = -32003;
    /// The program is not registered.
    pub const UNKNOWN_PROGRAM: i32 = -32004;
    /// An input, a program or a cycle limit is over the engine's limit.
    pub const TOO_LARGE: i32 = -32005;
    /// No job with that ID.
    pub const UNKNOWN_JOB: i32 = -32006;
    /// The engine is shutting down.
    pub const SHUTTING_DOWN: i32 = -32007;
    /// The ELF is not a valid guest program.
    pub const INVALID_PROGRAM: i32 = -32008;
    /// The chain could not be reached to check the request; retry later.
    pub const CHAIN_UNAVAILABLE: i32 = -32009;
    /// The job cannot be retried: it is not in the dead-letter tree.
    pub const NOT_DEAD_LETTERED: i32 = -32010;
    /// The disk under the store is below `store.min_free_bytes`: new jobs
    /// and programs are refused until space is freed (reads go on).
    pub const DISK_FULL: i32 = -32020;
    /// A TCP connection's first request was not `coproc_auth` with the
    /// engine's api token; the connection is closed.
    pub const UNAUTHORIZED: i32 = -32011;
    /// The request's signer is over one of its quotas (`[quota]`); retry
    /// later.
    pub const QUOTA: i32 = -32012;
    /// A subscription was dropped (its client did not read); in the last
    /// `coproc_subscription` notification it gets.
    pub const SUBSCRIPTION_DROPPED: i32 = -32013;
    /// Cluster mode: the NATS cluster did not take what this engine had to
    /// share with the others (a program); try again.
    pub const CLUSTER_UNAVAILABLE: i32 = -32014;
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }

    /// `-32602` with a message.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(codes::INVALID_PARAMS, message)
    }
}

/// A fast-path request frame: `u32` little-endian length, then this in
/// bincode (standard config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastRequest {
    /// Echoed in the response.
    pub id: u64,
    /// The request.
    pub call: Call,
}

/// A fast-path response frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FastResponse {
    /// The request's id.
    pub id: u64,
    /// The result or the error.
    pub result: Result<Reply, RpcError>,
}

/// Method names, for JSON-RPC.
#[derive(Debug)]
pub struct Method;

impl Method {
    /// Decodes JSON-RPC `params` for `method` into a [`Call`].
    pub fn parse(method: &str, params: Option<&serde_json::value::RawValue>) -> Result<Call, RpcError> {
        fn params_of<T: serde::de::DeserializeOwned + Default>(
            raw: Option<&serde_json::value::RawValue>,
        ) -> Result<T, RpcError> {
            match raw {
                None => Ok(T::default()),
                Some(raw) => required(Some(raw)),
            }
        }
        fn required<T: serde::de::DeserializeOwned>(raw: Option<&serde_json::value::RawValue>) -> Result<T, RpcError> {
            let raw = raw.ok_or_else(|| RpcError::invalid_params("missing params"))?;
            serde_json::from_str(raw.get()).map_err(|err| RpcError::invalid_params(format!("invalid params: {err}")))
        }
        Ok(match method {
            "coproc_submitProgram" => Call::SubmitProgram(required(params)?),
            "coproc_containsProgram" => Call::ContainsProgram(required(params)?),
            "coproc_listPrograms" => Call::ListPrograms(params_of(params)?),
            "coproc_submitJob" => Call::SubmitJob(required(params)?),
            "coproc_getResult" => Call::GetResult(required(params)?),
            "coproc_getPendingJobs" => Call::GetPendingJobs(required(params)?),
            "coproc_nextNonce" => Call::NextNonce(required(params)?),
            "coproc_metrics" => Call::Metrics(params_of(params)?),
            "coproc_status" => Call::Status(params_of(params)?),
            "coproc_replay" => Call::Replay(params_of(params)?),
            "coproc_retryJob" => Call::RetryJob(required(params)?),
            "debug_panic" => Call::Panic(required(params)?),
            "coproc_auth" => Call::Auth(required(params)?),
            "coproc_submitJobs" => Call::SubmitJobs(required(params)?),
            "coproc_call" => Call::CallProgram(required(params)?),
            "coproc_health" => Call::Health(params_of(params)?),
            "coproc_subscribe" => Call::Subscribe(required(params)?),
            "coproc_unsubscribe" => Call::Unsubscribe(required(params)?),
            other => return Err(RpcError::new(codes::METHOD_NOT_FOUND, format!("method not found: {other}"))),
        })
    }

    /// The JSON-RPC method name of a call, and its params as JSON.
    pub fn encode(call: &Call) -> (&'static str, serde_json::Value) {
        let name = match call {
            Call::SubmitProgram(_) => "coproc_submitProgram",
            Call::ContainsProgram(_) => "coproc_containsProgram",
            Call::ListPrograms(_) => "coproc_listPrograms",
            Call::SubmitJob(_) => "coproc_submitJob",
            Call::GetResult(_) => "coproc_getResult",
            Call::GetPendingJobs(_) => "coproc_getPendingJobs",
            Call::NextNonce(_) => "coproc_nextNonce",
            Call::Metrics(_) => "coproc_metrics",
            Call::Status(_) => "coproc_status",
            Call::Replay(_) => "coproc_replay",
            Call::RetryJob(_) => "coproc_retryJob",
            Call::Panic(_) => "debug_panic",
            Call::Auth(_) => "coproc_auth",
            Call::SubmitJobs(_) => "coproc_submitJobs",
            Call::CallProgram(_) => "coproc_call",
            Call::Health(_) => "coproc_health",
            Call::Subscribe(_) => "coproc_subscribe",
            Call::Unsubscribe(_) => "coproc_unsubscribe",
        };
        // Serde tags the variant as `{"Variant": params}`; the params are its value.
        let params = match serde_json::to_value(call) {
            Ok(serde_json::Value::Object(tagged)) => tagged.into_iter().next().map(|(_, v)| v),
            _ => None,
        };
        (name, params.unwrap_or(serde_json::Value::Null))
    }
}

/// The most bytes the decoding of one fast-path frame may claim for its
/// strings and byte vectors together (a frame is at most
/// `api.max_frame_bytes` long, so a valid one claims less than that).
const FAST_DECODE_LIMIT: usize = 256 << 20;

/// Decodes a fast-path request (a frame's bytes after its length prefix).
/// bincode's standard config allocates a string or vector at the length a
/// frame claims, before reading it: `vec![0; len]` with any `u64` panicked
/// (capacity overflow) or aborted the process (allocation failure) on a
/// 40-byte frame (found by fuzzing, `fast_frame`). The limit bounds every
/// claim first.
pub fn decode_fast_request(frame: &[u8]) -> Result<FastRequest, bincode::error::DecodeError> {
    let config = bincode::config::standard().with_limit::<FAST_DECODE_LIMIT>();
    bincode::serde::decode_from_slice::<FastRequest, _>(frame, config).map(|(request, _)| request)
}

/// A fast-path frame: `u32` little-endian length, then bincode.
pub fn fast_frame<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut frame = vec![0u8; 4];
    if bincode::serde::encode_into_std_write(value, &mut frame, bincode::config::standard()).is_err() {
        frame.truncate(4);
    }
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_claiming_a_huge_string_is_an_error_not_a_crash() {
        // Found by fuzzing (fuzz/regressions/fast_frame/string-length-of-2-pow-64):
        // bincode allocated the claimed length before reading it.
        let frame = [
            2, 12, 253, 253, 253, 0, 37, 253, 253, 134, 253, 253, 253, 254, 3, 0, 5, 255, 255, 255, 255, 255, 255, 255,
            255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 247, 255, 255, 255, 255, 255, 255,
        ];
        assert!(decode_fast_request(&frame).is_err());
        // A length of 2^40 (allocation failure, not only capacity overflow): tag 12 (coproc_auth), then the string.
        let mut frame = vec![7, 12, 253];
        frame.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode_fast_request(&frame).is_err());
    }

    #[test]
    fn bytes_are_hex_in_json_and_raw_in_bincode() {
        let params = JobIdParams { job_id: HexBytes(vec![0xab, 0x01]) };
        assert_eq!(serde_json::to_string(&params).unwrap(), r#"{"jobId":"0xab01"}"#);
        let back: JobIdParams = serde_json::from_str(r#"{"jobId":"0xAB01"}"#).unwrap();
        assert_eq!(back, params);
        let err = serde_json::from_str::<JobIdParams>(r#"{"jobId":"ab01"}"#).unwrap_err();
        assert!(err.to_string().contains("0x-prefixed"), "{err}");
        let encoded = bincode::serde::encode_to_vec(&params, bincode::config::standard()).unwrap();
        assert_eq!(encoded, vec![2, 0xab, 0x01]);
    }

    #[test]
    fn every_call_survives_encode_then_parse() {
        let calls = [
            Call::SubmitJob(SubmitJob {
                request: HexBytes(vec![1]),
                signature: HexBytes(vec![2]),
                offchain_input: HexBytes(vec![]),
                wait: true,
                relay_strategy: RelayStrategy::Ordered,
            }),
            Call::GetResult(JobIdParams { job_id: HexBytes(vec![3; 32]) }),
            Call::RetryJob(JobIdParams { job_id: HexBytes(vec![4; 32]) }),
            Call::Replay(ReplayParams { from: Some(1), to: None, program_id: None }),
            Call::Metrics(NoParams {}),
            Call::Panic(PanicParams { actor: "executor".into() }),
            Call::Auth(AuthParams { token: "ab".repeat(32) }),
        ];
        for call in calls {
            let (method, params) = Method::encode(&call);
            let raw = serde_json::value::RawValue::from_string(params.to_string()).unwrap();
            assert_eq!(Method::parse(method, Some(&raw)).unwrap(), call, "{method}");
        }
    }

    #[test]
    fn the_isa_is_a_string_in_json_null_when_unknown_and_survives_the_fast_path() {
        let mut result = JobResult {
            job_id: HexBytes(vec![1; 32]),
            status: "done".into(),
            exit_code: Some(0),
            cycles: Some(5),
            peak_memory_bytes: Some(4096),
            output: Some(HexBytes(vec![7])),
            result_with_metadata: None,
            signature: None,
            failure_reason: None,
            tx_hash: None,
            relay_error: None,
            relay_waiting: None,
            rejection: None,
            isa: Some(Isa::Rv64im),
        };
        assert_eq!(serde_json::to_value(&result).unwrap()["isa"], "rv64im");
        result.isa = None;
        assert_eq!(serde_json::to_value(&result).unwrap()["isa"], serde_json::Value::Null);
        // A result from an engine that predates the field reads as unknown.
        let mut old = serde_json::to_value(&result).unwrap();
        old.as_object_mut().unwrap().remove("isa");
        assert_eq!(serde_json::from_value::<JobResult>(old).unwrap(), result);

        result.isa = Some(Isa::Rv32im);
        let programs = ProgramsReply {
            program_ids: vec![HexBytes(vec![2; 32])],
            programs: vec![ProgramInfo {
                program_id: HexBytes(vec![2; 32]),
                isa: Isa::Rv64im,
                name: "clob".into(),
                size_bytes: 4096,
                registered_unix_ms: 1_764_547_200_000,
                jobs: 3,
                cycles: 300,
            }],
        };
        let registered = ProgramIdReply { program_id: HexBytes(vec![2; 32]), isa: Isa::Rv32im, name: String::new() };
        assert_eq!(
            serde_json::to_value(&programs).unwrap(),
            serde_json::json!({"programIds": [format!("0x{}", "02".repeat(32))],
                "programs": [{"programId": format!("0x{}", "02".repeat(32)), "isa": "rv64im", "name": "clob",
                    "sizeBytes": 4096, "registeredUnixMs": 1_764_547_200_000u64, "jobs": 3, "cycles": 300}]})
        );
        // A listing from an engine that predates names reads as unnamed.
        let old = serde_json::json!({"programId": format!("0x{}", "02".repeat(32)), "isa": "rv64im"});
        let old: ProgramInfo = serde_json::from_value(old).unwrap();
        assert_eq!((old.name.as_str(), old.size_bytes, old.jobs), ("", 0, 0));
        for reply in [Reply::Result(Box::new(result)), Reply::Programs(programs), Reply::ProgramId(registered)] {
            let response = FastResponse { id: 9, result: Ok(reply) };
            let frame = fast_frame(&response);
            let (back, _): (FastResponse, usize) =
                bincode::serde::decode_from_slice(&frame[4..], bincode::config::standard()).unwrap();
            assert_eq!(back, response);
        }
    }

    #[test]
    fn the_auth_token_never_shows_in_debug_output() {
        let call = Call::Auth(AuthParams { token: "5e".repeat(32) });
        let shown = format!("{call:?} {:?}", FastRequest { id: 1, call: call.clone() });
        assert!(!shown.contains("5e5e"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn unknown_methods_and_wrong_types_are_distinct_errors() {
        assert_eq!(Method::parse("coproc_nope", None).unwrap_err().code, codes::METHOD_NOT_FOUND);
        let raw = serde_json::value::RawValue::from_string(r#"{"jobId":5}"#.into()).unwrap();
        let err = Method::parse("coproc_getResult", Some(&raw)).unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert!(err.message.contains("invalid type"), "{}", err.message);
        assert_eq!(Method::parse("coproc_getResult", None).unwrap_err().message, "missing params");
        assert_eq!(Method::parse("coproc_metrics", None).unwrap(), Call::Metrics(NoParams {}));
    }
}
