//! The NATS JetStream cluster as cluster mode uses it: a client with
//! deadlines over the servers of `[cluster]`, and what the engines share
//! through it. Programs live in the `coprocessor-programs` object store,
//! one object per program, named by its ID (`0x…`).
//!
//! Everything read from the cluster is untrusted: another engine (or
//! anyone who can write to the servers) put it there. A program is read
//! only up to the size limit and kept only if its bytes hash to its name;
//! the registry then validates it like any other.

use crate::config;
use crate::program::ProgramId;
use async_nats::jetstream::{self, object_store};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The object store of programs.
pub(crate) const PROGRAMS_BUCKET: &str = "coprocessor-programs";

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
    /// What another engine shared cannot be a program.
    #[error("program {name:?} in {bucket}: {reason}")]
    Untrusted {
        /// The object's name.
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
    programs: object_store::ObjectStore,
    timeout: Duration,
    node: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish_non_exhaustive()
    }
}

/// One shared program: its ID and the name it was registered under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedProgram {
    /// The ID its bytes hash to.
    pub(crate) id: ProgramId,
    /// The ELF.
    pub(crate) elf: Vec<u8>,
    /// Its label, if it had one.
    pub(crate) name: Option<String>,
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
        Ok(Cluster { programs, timeout, node: section.node_name.clone() })
    }

    /// Puts `elf` under its ID, unless the bucket has it already.
    pub(crate) async fn share_program(&self, id: &ProgramId, elf: &[u8], name: &str) -> Result<(), ClusterError> {
        let object = id.to_string();
        if let Ok(info) = self.programs.info(&object).await {
            if !info.deleted && info.size == elf.len() {
                return Ok(());
            }
        }
        let mut metadata = std::collections::HashMap::new();
        if !name.is_empty() {
            metadata.insert("name".to_owned(), name.to_owned());
        }
        let meta = object_store::ObjectMetadata { name: object.clone(), metadata, ..Default::default() };
        let what = format!("put program {object} in {PROGRAMS_BUCKET}");
        self.deadline(&what, self.programs.put(meta, &mut &elf[..])).await.map(drop)
    }

    /// Every program in the bucket now, then each one put later, in order.
    pub(crate) async fn watch_programs(&self, max_bytes: usize) -> Result<ProgramWatch, ClusterError> {
        let what = format!("watch {PROGRAMS_BUCKET}");
        let watch = self.deadline(&what, self.programs.watch_with_history()).await?;
        Ok(ProgramWatch { cluster: self.clone(), watch, max_bytes })
    }

    async fn read_program(
        &self,
        info: &object_store::ObjectInfo,
        max_bytes: usize,
    ) -> Result<SharedProgram, ClusterError> {
        let untrusted =
            |reason: String| ClusterError::Untrusted { name: info.name.clone(), bucket: PROGRAMS_BUCKET, reason };
        let id = ProgramId::from_hex(&info.name).map_err(|err| untrusted(format!("not a program ID: {err}")))?;
        if info.size > max_bytes {
            return Err(untrusted(format!("{} bytes, over limits.max_program_bytes ({max_bytes})", info.size)));
        }
        let what = format!("get program {} from {PROGRAMS_BUCKET}", info.name);
        let object = self.deadline(&what, self.programs.get(&info.name)).await?;
        let mut elf = Vec::with_capacity(info.size);
        let mut bounded = object.take(max_bytes as u64 + 1);
        match tokio::time::timeout(self.timeout, bounded.read_to_end(&mut elf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(ClusterError::JetStream { what, reason: err.to_string() }),
            Err(_) => return Err(self.timed_out(&what)),
        }
        if elf.len() > max_bytes {
            return Err(untrusted(format!("over limits.max_program_bytes ({max_bytes})")));
        }
        if ProgramId::of(&elf) != id {
            return Err(untrusted(format!("its bytes hash to {}, not to its name", ProgramId::of(&elf))));
        }
        Ok(SharedProgram { id, elf, name: info.metadata.get("name").cloned() })
    }

    /// Runs `request` with the cluster's deadline.
    async fn deadline<T, E: std::fmt::Display>(
        &self,
        what: &str,
        request: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ClusterError> {
        within(self.timeout, what, request).await
    }

    fn timed_out(&self, what: &str) -> ClusterError {
        timed_out(self.timeout, what)
    }
}

/// The programs of the bucket, one at a time (see [`Cluster::watch_programs`]).
pub(crate) struct ProgramWatch {
    cluster: Cluster,
    watch: object_store::Watch,
    max_bytes: usize,
}

impl std::fmt::Debug for ProgramWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramWatch").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

impl ProgramWatch {
    /// The next program that is not `known`, or why it could not be read
    /// (`Ok(None)`: the watch ended; an `Err` of the watch itself ends it
    /// too). Known programs are not read again.
    pub(crate) async fn next(
        &mut self,
        known: impl Fn(&ProgramId) -> bool,
    ) -> Result<Option<Result<SharedProgram, ClusterError>>, ClusterError> {
        loop {
            let Some(info) = self.watch.next().await else { return Ok(None) };
            let info = info.map_err(|err| ClusterError::JetStream {
                what: format!("watch {PROGRAMS_BUCKET}"),
                reason: err.to_string(),
            })?;
            let seen = ProgramId::from_hex(&info.name).is_ok_and(|id| known(&id));
            if !info.deleted && !seen {
                return Ok(Some(self.cluster.read_program(&info, self.max_bytes).await));
            }
        }
    }
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
