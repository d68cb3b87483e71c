//! The NATS JetStream cluster as cluster mode uses it: a client with
//! deadlines over the servers of `[cluster]`, and what the engines share
//! through it. Programs live in the `coprocessor-programs` object store,
//! one object per program, named by its ID (`0x…`).
//!
//! Everything read from the cluster is untrusted: another engine (or
//! anyone who can write to the servers) put it there. A program is read
//! only up to the size limit and kept only if its bytes hash to its name;
//! the registry then validates it like any other.

mod changes;
mod jobs;
mod leases;
mod nonces;
mod programs;
mod queue;
mod relays;

pub(crate) use changes::Change;
pub(crate) use jobs::{Claim, SharedResult};
pub(crate) use leases::{Lease, LeaseEntry};
pub(crate) use programs::SharedProgram;
pub(crate) use queue::{Delivery, Feed};
pub(crate) use relays::SharedSettlement;

use crate::config;
use async_nats::jetstream::{self, kv, object_store, stream};
use std::time::Duration;

/// The object store of programs.
pub(crate) const PROGRAMS_BUCKET: &str = "coprocessor-programs";
/// How long start-up keeps trying to open the shared streams and buckets.
const OPEN_PATIENCE: Duration = Duration::from_secs(60);

/// Why the cluster could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server of `[cluster] servers` could be reached.
    #[error("cannot reach the NATS servers {servers}: {reason}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// What the client said.
        reason: String,
    },
    /// A JetStream request failed.
    #[error("NATS JetStream, {what}: {reason}")]
    JetStream {
        /// The request (with the bucket and object).
        what: String,
        /// What the server or client said.
        reason: String,
    },
    /// A request took longer than `cluster.request_timeout_ms`.
    #[error("NATS JetStream, {what}: no answer within {timeout_ms} ms")]
    Timeout {
        /// The request.
        what: String,
        /// The deadline.
        timeout_ms: u64,
    },
    /// What another engine shared cannot be used.
    #[error("{name} in {bucket}: {reason}")]
    Untrusted {
        /// What it is: `program "0x…"`, `the result of job 0x…`, `a message`.
        name: String,
        /// The bucket.
        bucket: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A connection to the cluster and the buckets the engines share.
#[derive(Clone)]
pub(crate) struct Cluster {
    js: jetstream::Context,
    programs: object_store::ObjectStore,
    jobs: stream::Stream,
    relays: stream::Stream,
    ordered: stream::Stream,
    claims: kv::Store,
    results: kv::Store,
    settled: kv::Store,
    nonces: kv::Store,
    leases: kv::Store,
    /// This engine's raises of `nonces` in progress.
    marks: std::sync::Arc<nonces::Marks>,
    timeout: Duration,
    ack_wait: Duration,
    node: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to the servers and opens (creating if missing) the shared
    /// buckets, with `section.stream_replicas()` replicas.
    pub(crate) async fn connect(section: &config::Cluster) -> Result<Cluster, ClusterError> {
        let timeout = Duration::from_millis(section.request_timeout_ms);
        let servers = section.servers.join(",");
        let options = async_nats::ConnectOptions::new()
            .name(format!("coprocessor {}", section.node_name))
            .connection_timeout(timeout)
            .request_timeout(Some(timeout));
        let addresses = section
            .servers
            .iter()
            .map(|server| server.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| ClusterError::Connect { servers: servers.clone(), reason: err.to_string() })?;
        let client = tokio::time::timeout(timeout, async_nats::connect_with_options(addresses, options))
            .await
            .map_err(|_| ClusterError::Connect {
                servers: servers.clone(),
                reason: format!("no answer in {timeout:?}"),
            })?
            .map_err(|err| ClusterError::Connect { servers: servers.clone(), reason: err.to_string() })?;
        let mut js = jetstream::new(client);
        js.set_timeout(timeout);
        // Engines started together create the streams together, and a
        // replicated stream's creation may outlast one request's deadline
        // while its RAFT group forms: tried again for a while.
        let start = std::time::Instant::now();
        loop {
            match Cluster::open(js.clone(), section, timeout).await {
                Ok(cluster) => return Ok(cluster),
                Err(err @ (ClusterError::Timeout { .. } | ClusterError::JetStream { .. }))
                    if start.elapsed() < OPEN_PATIENCE =>
                {
                    tracing::warn!(%err, "opening the cluster's streams and buckets; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Opens (creating if missing) the shared streams and buckets.
    async fn open(
        js: jetstream::Context,
        section: &config::Cluster,
        timeout: Duration,
    ) -> Result<Cluster, ClusterError> {
        let bucket = object_store::Config {
            bucket: PROGRAMS_BUCKET.to_owned(),
            description: Some("coprocessor programs, by program ID".to_owned()),
            num_replicas: section.stream_replicas(),
            ..Default::default()
        };
        let programs = match within(timeout, "open the programs bucket", js.get_object_store(PROGRAMS_BUCKET)).await {
            Ok(store) => store,
            Err(_) => within(timeout, "create the programs bucket", js.create_object_store(bucket)).await?,
        };
        let replicas = section.stream_replicas();
        let jobs = open_work_queue(
            &js,
            timeout,
            jobs::JOBS_STREAM,
            "coprocessor jobs, one message per job, pulled by the engines",
            jobs::JOBS_SUBJECT,
            replicas,
        )
        .await?;
        let relays = open_work_queue(
            &js,
            timeout,
            relays::RELAY_STREAM,
            "coprocessor results to settle, one message per job, pulled by the relayers",
            relays::RELAY_SUBJECT,
            replicas,
        )
        .await?;
        let ordered = open_work_queue(
            &js,
            timeout,
            leases::ORDERED_STREAM,
            "coprocessor ordered results to settle, a subject per consumer",
            leases::ORDERED_SUBJECTS,
            replicas,
        )
        .await?;
        let claims =
            open_kv(&js, timeout, jobs::CLAIMS_BUCKET, "job ID -> the engine that took it in", replicas).await?;
        let results =
            open_kv(&js, timeout, jobs::RESULTS_BUCKET, "job ID -> its first recorded result", replicas).await?;
        let settled =
            open_kv(&js, timeout, relays::SETTLED_BUCKET, "job ID -> how its settlement ended", replicas).await?;
        let nonces =
            open_kv(&js, timeout, nonces::NONCES_BUCKET, "consumer -> one past the highest nonce taken in", replicas)
                .await?;
        let leases = open_kv(
            &js,
            timeout,
            leases::LEASES_BUCKET,
            "consumer -> the engine relaying its ordered results",
            replicas,
        )
        .await?;
        let ack_wait = Duration::from_millis(section.ack_wait_ms);
        Ok(Cluster {
            js,
            programs,
            jobs,
            relays,
            ordered,
            claims,
            results,
            settled,
            nonces,
            leases,
            marks: std::sync::Arc::default(),
            timeout,
            ack_wait,
            node: section.node_name.clone(),
        })
    }

    /// Runs `request` with the cluster's deadline.
    async fn deadline<T, E: std::fmt::Display>(
        &self,
        what: &str,
        request: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ClusterError> {
        within(self.timeout, what, request).await
    }

    /// Runs `request` with the deadline; `Err(())` if it ran out.
    async fn within_raw<T>(&self, request: impl std::future::Future<Output = T>) -> Result<T, ()> {
        tokio::time::timeout(self.timeout, request).await.map_err(drop)
    }

    /// This engine's name in the cluster.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// How long a pulled job may go without an ack or a progress report.
    pub(crate) fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    fn timed_out(&self, what: &str) -> ClusterError {
        timed_out(self.timeout, what)
    }
}

/// Opens the stream `name`, creating it if missing: a replicated work queue
/// (a message is gone once acked) of `subjects`, deduplicated by message ID
/// (the job ID) over [`jobs::DUPLICATE_WINDOW`].
async fn open_work_queue(
    js: &jetstream::Context,
    timeout: Duration,
    name: &str,
    description: &str,
    subjects: &str,
    replicas: usize,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        subjects: vec![subjects.to_owned()],
        retention: stream::RetentionPolicy::WorkQueue,
        duplicate_window: jobs::DUPLICATE_WINDOW,
        num_replicas: replicas,
        ..Default::default()
    };
    within(timeout, &format!("open the stream {name}"), js.get_or_create_stream(config)).await
}

/// Opens the key-value bucket `bucket`, creating it if missing.
async fn open_kv(
    js: &jetstream::Context,
    timeout: Duration,
    bucket: &str,
    description: &str,
    replicas: usize,
) -> Result<kv::Store, ClusterError> {
    if let Ok(store) = within(timeout, &format!("open {bucket}"), js.get_key_value(bucket)).await {
        return Ok(store);
    }
    // The bucket's stream, as async-nats would configure it: its own
    // create_key_value first asks for the account's info, whose answer from
    // a 2.9 server it cannot parse.
    let config = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_secs(120),
        num_replicas: replicas,
        ..Default::default()
    };
    within(timeout, &format!("create {bucket}"), js.get_or_create_stream(config)).await?;
    within(timeout, &format!("open {bucket}"), js.get_key_value(bucket)).await
}

/// Runs `request` with a deadline.
async fn within<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(ClusterError::JetStream { what: what.to_owned(), reason: err.to_string() }),
        Err(_) => Err(timed_out(timeout, what)),
    }
}

fn timed_out(timeout: Duration, what: &str) -> ClusterError {
    ClusterError::Timeout { what: what.to_owned(), timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) }
}

/// A consumer as a key, a subject token and a durable consumer's name's
/// tail: `0x` and 40 lower-case hex digits.
fn consumer_key(consumer: alloy::primitives::Address) -> String {
    format!("0x{}", hex::encode(consumer))
}

/// A consumer from its key (another engine, or anyone who can write to
/// the servers, wrote it).
fn parse_consumer_key(key: &str) -> Option<alloy::primitives::Address> {
    let bytes = hex::decode(key.strip_prefix("0x")?).ok()?;
    alloy::primitives::Address::try_from(bytes.as_slice()).ok()
}
