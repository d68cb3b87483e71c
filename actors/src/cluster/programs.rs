//! Programs, shared through the `coprocessor-programs` object store: one
//! object per program, named by its ID (`0x…`), its name in the object's
//! metadata.

use super::{Cluster, ClusterError, PROGRAMS_BUCKET};
use crate::program::ProgramId;
use async_nats::jetstream::object_store;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

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
        let untrusted = |reason: String| ClusterError::Untrusted {
            name: format!("program {:?}", info.name),
            bucket: PROGRAMS_BUCKET,
            reason,
        };
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
