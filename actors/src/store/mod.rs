//! Persistence in sled.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `programs` | program ID | the ELF |
//! | `jobs` | job ID | [`JobEntry`]: status and log positions |
//! | `log` | big-endian u64 sequence | [`LogRecord`]: one state transition |
//! | `dead_letters` | job ID | [`DeadLetter`]: jobs whose submission kept failing |
//! | `meta` | name | engine metadata (the format, the listener's block cursor) |
//! | `attempts` | job ID | [`Attempts`]: failed attempts of a job whose execution panicked |
//! | `program_info` | program ID | [`ProgramInfo`]: its name, size and registration time |
//! | `program_stats` | program ID | [`ProgramStats`]: its jobs run and their cycles (with the results) |
//!
//! A job costs four records: its `Pending` log record (the spec, inputs
//! and signed request included) and its entry when it is admitted, its
//! `Executed` log record (output, exit code, cycles, failure, the
//! operator's signature) and its entry again when it has run. A result is
//! served by rebuilding its `ResultWithMetadata` from the spec, never
//! stored twice. With `store.compression`, sled compresses its pages (zstd
//! level 1): ABI words are mostly padding, so a job takes about half the
//! disk, for about a quarter of the throughput.
//!
//! Job writes go through one writer thread ([`writer`]) that groups every
//! write waiting at that moment into one sled transaction over `log`,
//! `jobs`, `dead_letters` (and `attempts`) and `program_stats`, flushes
//! once, and then tells each writer. A
//! job is acknowledged only after that flush.
//!
//! sled never meets a full disk: [`space`] keeps a reserve of free space
//! (`store.min_free_bytes`) below which new jobs are refused, and bounds
//! every flush, so a failed sled makes the store refuse writes instead of
//! hanging the engine.

mod records;
mod space;
mod writer;

#[cfg(test)]
pub(crate) use records::test_result;
pub(crate) use records::unix_ms;
pub(crate) use records::JobEntry;
pub use records::{Attempts, Execution, LogRecord, ResultRecord, Transition};
pub(crate) use records::{ProgramInfo, ProgramStats};
pub use space::DiskFull;
pub(crate) use space::Space;
pub(crate) use writer::{CommitError, CommitStats, Done, JobEvent, Write};

use crate::job::{DeadLetter, JobId, JobSpec, Status};
use crate::program::ProgramId;
use records::decode;
use std::path::Path;
use std::sync::Arc;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption, or the directory is in use).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("corrupt {tree} record {key}: {source}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key, as hex.
        key: String,
        /// The decoder's error.
        source: bincode::error::DecodeError,
    },
    /// The writer thread is gone (the engine is stopping).
    #[error("the store is closed")]
    Closed,
    /// The free space under the store is below `store.min_free_bytes`.
    #[error(transparent)]
    DiskFull(#[from] DiskFull),
    /// sled failed (an I/O error, or a flush that did not return in time);
    /// the store refuses every write until the engine restarts.
    #[error("the store failed ({0}): it refuses writes until the engine restarts")]
    Broken(String),
    /// A group commit failed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The data was written in another store format; it is refused rather
    /// than misread.
    #[error(
        "{dir} holds store format {found}, this engine reads format {expected}: \
         move the data dir aside (or replay it with the engine that wrote it)"
    )]
    Format {
        /// The store's directory.
        dir: String,
        /// The format found.
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
}

/// The layout of the records this build reads and writes. A data dir of
/// another format is refused at open. Format 1 (before job IDs, addresses
/// and settlement steps got their own types) recorded no format at all;
/// format 2 kept results in a tree of their own.
pub(crate) const FORMAT: u32 = 3;

/// The `meta` key that holds the format, as a big-endian u32.
const FORMAT_KEY: &str = "store.format";

/// The `meta` key of the first sequence number the log holds, big-endian.
const LOG_START_KEY: &str = "store.log_start";
/// Job status changes kept for [`Store::job_events`] receivers that are
/// behind.
pub(crate) const JOB_EVENTS_CAPACITY: usize = 16_384;

/// The engine's sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    programs: sled::Tree,
    jobs: sled::Tree,
    log: sled::Tree,
    dead_letters: sled::Tree,
    meta: sled::Tree,
    attempts: sled::Tree,
    program_info: sled::Tree,
    program_stats: sled::Tree,
    events: tokio::sync::broadcast::Sender<JobEvent>,
    space: Arc<Space>,
    flusher: space::Flusher,
    writer: writer::Handle,
    /// One count per handle, so [`Store::close`] can wait for the others.
    handles: Arc<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// The trees the writer thread writes.
#[derive(Clone)]
pub(crate) struct JobTrees {
    pub(crate) jobs: sled::Tree,
    pub(crate) log: sled::Tree,
    pub(crate) dead_letters: sled::Tree,
    pub(crate) attempts: sled::Tree,
    pub(crate) program_stats: sled::Tree,
}

/// A job executed successfully but not settled onchain.
#[derive(Debug, Clone)]
pub struct Unsettled {
    /// The job.
    pub spec: JobSpec,
    /// Its result.
    pub result: ResultRecord,
    /// The last transaction sent for it, if any (`Submitted`).
    pub tx_hash: Option<[u8; 32]>,
}

impl Store {
    /// Opens (or creates) the store under `dir` with the default settings.
    /// Fails if another process has it open.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, &crate::config::StoreConfig::default())
    }

    /// Opens (or creates) the store under `dir` with `config`: at most
    /// `cache_bytes` of it cached in memory, its pages compressed or not,
    /// `min_free_bytes` kept free on its filesystem.
    /// Fails if another process has it open, or if it was created with the
    /// other compression setting (sled fixes that at creation).
    pub fn open_with(dir: &Path, config: &crate::config::StoreConfig) -> Result<Store, StoreError> {
        let (cache_bytes, compression) = (config.cache_bytes, config.compression);
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .use_compression(compression)
            .compression_factor(1)
            .open()?;
        let programs = db.open_tree("programs")?;
        let jobs = db.open_tree("jobs")?;
        let log = db.open_tree("log")?;
        let dead_letters = db.open_tree("dead_letters")?;
        let meta = db.open_tree("meta")?;
        let attempts = db.open_tree("attempts")?;
        let program_info = db.open_tree("program_info")?;
        let program_stats = db.open_tree("program_stats")?;
        check_format(dir, &meta, &jobs)?;
        let log_start = log_start_of(meta.get(LOG_START_KEY)?.as_deref());
        let next_seq = match log.last()? {
            Some((key, _)) => seq_of(&key).map_or(0, |seq| seq + 1),
            None => 0,
        }
        .max(log_start);
        let trees = JobTrees {
            jobs: jobs.clone(),
            log: log.clone(),
            dead_letters: dead_letters.clone(),
            attempts: attempts.clone(),
            program_stats: program_stats.clone(),
        };
        let space = Arc::new(Space::new(dir, config.min_free_bytes));
        let flusher = space::Flusher::spawn(db.clone(), Arc::clone(&space));
        let (events, _) = tokio::sync::broadcast::channel(JOB_EVENTS_CAPACITY);
        let guard = writer::Guard { space: Arc::clone(&space), flusher: flusher.clone(), events: events.clone() };
        let writer = writer::spawn(trees, next_seq, guard);
        Ok(Store {
            db,
            programs,
            jobs,
            log,
            dead_letters,
            meta,
            attempts,
            program_info,
            program_stats,
            events,
            space,
            flusher,
            writer,
            handles: Arc::new(()),
        })
    }

    /// The free-space guard: whether a new job may be written, and the
    /// figures for metrics.
    pub(crate) fn space(&self) -> &Arc<Space> {
        &self.space
    }

    /// The failed attempts of a job whose execution panicked, if any (for
    /// the job as it is now: a nonce reused after a failure starts again).
    pub fn attempts(&self, id: &JobId) -> Result<Option<Attempts>, StoreError> {
        let Some(entry) = self.job(id)? else { return Ok(None) };
        let Some(bytes) = self.attempts.get(id)? else { return Ok(None) };
        let attempts: Attempts = decoded("attempts", &id.0, &bytes)?;
        Ok((attempts.pending_seq == entry.pending_seq).then_some(attempts))
    }

    /// Queues job writes for the next group commit; `done` runs once they
    /// are durable (or failed).
    pub fn commit(&self, writes: Vec<Write>, done: Done) {
        self.writer.commit(writes, done);
    }

    /// Waits until everything committed so far is durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.commit_and_wait(Vec::new())
    }

    /// Queues job writes and waits until they are durable (for callers on
    /// a thread of their own, and tests).
    pub(crate) fn commit_and_wait(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commit(writes, Box::new(move |result| drop(tx.send(result))));
        Ok(rx.recv().map_err(|_| StoreError::Closed)??)
    }

    /// Every durable status change of a job from now on, in order. A
    /// receiver that falls [`JOB_EVENTS_CAPACITY`] events behind gets
    /// `Lagged` (and has lost them).
    pub(crate) fn job_events(&self) -> tokio::sync::broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    /// Counters of the group commit.
    pub fn commit_stats(&self) -> Arc<CommitStats> {
        self.writer.stats()
    }

    /// Stores a program durably, named `name` (a program stored before
    /// keeps its registration time, and its name unless `name` is given);
    /// refused when the disk is below the reserve, as a new job is.
    pub fn put_program(&self, id: &ProgramId, elf: &[u8], name: Option<&str>) -> Result<ProgramInfo, StoreError> {
        self.space.admit(elf.len())?;
        let info = match self.program_info(id)? {
            Some(info) => ProgramInfo { name: name.map_or(info.name, str::to_owned), ..info },
            None => ProgramInfo {
                name: name.unwrap_or_default().to_owned(),
                size_bytes: elf.len() as u64,
                registered_unix_ms: unix_ms(),
            },
        };
        // The ELF first: a crash between the two leaves a program with no
        // name, never a name with no program.
        self.programs.insert(id.0, elf)?;
        self.program_info.insert(id.0, records::encode(&info))?;
        self.flusher.flush()?;
        Ok(info)
    }

    /// What a program was registered as (`None` for a program stored
    /// before names existed).
    pub fn program_info(&self, id: &ProgramId) -> Result<Option<ProgramInfo>, StoreError> {
        self.program_info.get(id.0)?.map(|bytes| decoded("program_info", &id.0, &bytes)).transpose()
    }

    /// The jobs a program ran to a result, and their cycles.
    pub fn program_stats(&self, id: &ProgramId) -> Result<ProgramStats, StoreError> {
        let stats = self.program_stats.get(id.0)?.map(|bytes| decoded("program_stats", &id.0, &bytes)).transpose()?;
        Ok(stats.unwrap_or_default())
    }

    /// A stored program's ELF.
    pub fn program(&self, id: &ProgramId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.programs.get(id.0)?.map(|v| v.to_vec()))
    }

    /// Every stored program ID, in order.
    pub fn program_ids(&self) -> Result<Vec<ProgramId>, StoreError> {
        self.programs
            .iter()
            .keys()
            .map(|key| {
                let key = key?;
                let id: [u8; 32] = key.as_ref().try_into().map_err(|_| corrupt_key("programs", &key))?;
                Ok(ProgramId(id))
            })
            .collect()
    }

    /// A job's entry.
    pub fn job(&self, id: &JobId) -> Result<Option<JobEntry>, StoreError> {
        self.jobs.get(id)?.map(|bytes| decoded("jobs", &id.0, &bytes)).transpose()
    }

    /// Whether a job ID is known.
    pub fn contains_job(&self, id: &JobId) -> Result<bool, StoreError> {
        Ok(self.jobs.contains_key(id)?)
    }

    /// A job's result.
    pub fn result(&self, id: &JobId) -> Result<Option<ResultRecord>, StoreError> {
        let Some(entry) = self.job(id)? else { return Ok(None) };
        Ok(self.executed(&entry)?.map(|(_, result)| result))
    }

    /// The spec and the result of an executed job whose entry the caller
    /// has: one read of each log record. `None` if the job has not been
    /// executed, or its records were pruned.
    pub(crate) fn executed(&self, entry: &JobEntry) -> Result<Option<(JobSpec, ResultRecord)>, StoreError> {
        let (Some(spec), Some((_, execution))) = (self.spec(entry)?, self.execution(entry)?) else {
            return Ok(None);
        };
        let result = ResultRecord::rebuild(&spec, execution);
        Ok(Some((spec, result)))
    }

    /// The spec and the logged execution of an executed job (`None`: not
    /// executed, unknown, or pruned), as cluster mode shares it.
    pub(crate) fn executed_record(&self, id: &JobId) -> Result<Option<(JobSpec, Execution)>, StoreError> {
        let Some(entry) = self.job(id)? else { return Ok(None) };
        let (Some(spec), Some((_, execution))) = (self.spec(&entry)?, self.execution(&entry)?) else {
            return Ok(None);
        };
        Ok(Some((spec, execution)))
    }

    /// A job's `Executed` record and where it is in the log.
    fn execution(&self, entry: &JobEntry) -> Result<Option<(u64, Execution)>, StoreError> {
        let Some(seq) = entry.executed_seq else { return Ok(None) };
        Ok(match self.log_record(seq)? {
            Some(LogRecord { transition: Transition::Executed(execution), .. }) => Some((seq, execution)),
            _ => None,
        })
    }

    /// Overwrites the recorded execution of a job (for repair tools, and
    /// for tests that corrupt a result on purpose). False if the job has
    /// not been executed.
    pub fn overwrite_result(&self, id: &JobId, result: &ResultRecord) -> Result<bool, StoreError> {
        let Some(entry) = self.job(id)? else { return Ok(false) };
        let Some((seq, _)) = self.execution(&entry)? else { return Ok(false) };
        let record = records::LogRecordRef {
            job_id: *id,
            unix_ms: records::unix_ms(),
            transition: records::TransitionRef::Executed(result.execution()),
        };
        self.space.check_broken()?;
        self.log.insert(seq.to_be_bytes(), records::encode(&record))?;
        self.flusher.flush()?;
        Ok(true)
    }

    /// The log record at `seq`.
    pub fn log_record(&self, seq: u64) -> Result<Option<LogRecord>, StoreError> {
        self.log.get(seq.to_be_bytes())?.map(|bytes| decoded("log", &seq.to_be_bytes(), &bytes)).transpose()
    }

    /// Log records with `from <= seq <= to`, in order.
    pub fn log_range(&self, from: u64, to: u64) -> impl Iterator<Item = Result<(u64, LogRecord), StoreError>> + '_ {
        self.log.range(from.to_be_bytes()..=to.to_be_bytes()).map(|item| {
            let (key, value) = item?;
            let seq = seq_of(&key).ok_or_else(|| corrupt_key("log", &key))?;
            Ok((seq, decoded("log", &key, &value)?))
        })
    }

    /// The next sequence number the log will use.
    pub fn log_len(&self) -> Result<u64, StoreError> {
        let after_last = match self.log.last()? {
            Some((key, _)) => seq_of(&key).ok_or_else(|| corrupt_key("log", &key))? + 1,
            None => 0,
        };
        // A log pruned to nothing still continues where it was.
        Ok(after_last.max(self.log_start()?))
    }

    /// Jobs accepted but not executed (`Pending` or `Running` at a crash),
    /// with their specs, in log order.
    pub fn unfinished(&self) -> Result<Vec<JobSpec>, StoreError> {
        let mut seqs = Vec::new();
        for item in self.jobs.iter() {
            let (key, value) = item?;
            let entry: JobEntry = decoded("jobs", &key, &value)?;
            if !entry.status.is_executed() {
                seqs.push(entry.pending_seq);
            }
        }
        seqs.sort_unstable();
        let mut specs = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(LogRecord { transition: Transition::Pending(spec), .. }) = self.log_record(seq)? {
                specs.push(spec);
            }
        }
        Ok(specs)
    }

    /// A dead-lettered job's record.
    pub fn dead_letter(&self, id: &JobId) -> Result<Option<DeadLetter>, StoreError> {
        self.dead_letters.get(id)?.map(|bytes| decoded("dead_letters", &id.0, &bytes)).transpose()
    }

    /// Jobs in the dead-letter tree (a scan of the tree: for status, not
    /// for a hot path).
    pub fn dead_letter_count(&self) -> usize {
        self.dead_letters.len()
    }

    /// The spec of a job, from its `Pending` record.
    pub fn spec(&self, entry: &JobEntry) -> Result<Option<JobSpec>, StoreError> {
        Ok(match self.log_record(entry.pending_seq)? {
            Some(LogRecord { transition: Transition::Pending(spec), .. }) => Some(spec),
            _ => None,
        })
    }

    /// Jobs executed successfully but not settled onchain (`Done` or
    /// `Submitted`), in log order: start-up hands them to the relayer.
    pub fn unsettled(&self) -> Result<Vec<Unsettled>, StoreError> {
        let mut entries = Vec::new();
        for item in self.jobs() {
            let (id, entry) = item?;
            if matches!(entry.status, Status::Done | Status::Submitted) {
                entries.push((id, entry));
            }
        }
        entries.sort_unstable_by_key(|(_, entry)| entry.pending_seq);
        let mut jobs = Vec::with_capacity(entries.len());
        for (_, entry) in entries {
            if let Some((spec, result)) = self.executed(&entry)? {
                jobs.push(Unsettled { spec, result, tx_hash: entry.tx_hash });
            }
        }
        Ok(jobs)
    }

    /// Every job entry (for status scans).
    pub fn jobs(&self) -> impl Iterator<Item = Result<(JobId, JobEntry), StoreError>> + '_ {
        self.jobs.iter().map(|item| {
            let (key, value) = item?;
            let id = JobId::try_from(key.as_ref()).map_err(|_| corrupt_key("jobs", &key))?;
            Ok((id, decoded("jobs", &key, &value)?))
        })
    }

    /// The first sequence number the log still holds: records before it
    /// were pruned (`store.retain_days`).
    pub fn log_start(&self) -> Result<u64, StoreError> {
        Ok(log_start_of(self.meta(LOG_START_KEY)?.as_deref()))
    }

    /// Removes the log's oldest records, those written before `cutoff_ms`
    /// (ms since the Unix epoch), from the start of the log up to the first
    /// record of a job that is not `finished`: recovery and settlement
    /// still need every record of such a job. Job entries stay, so a pruned
    /// job's nonce stays used and its status is still served; its spec and
    /// result are gone. Returns how many records went.
    pub(crate) fn prune(&self, cutoff_ms: u64, finished: impl Fn(Status) -> bool) -> Result<u64, StoreError> {
        let start = self.log_start()?;
        let mut removed = 0;
        let mut next = start;
        for item in self.log_range(start, u64::MAX) {
            let (seq, record) = item?;
            let done = match self.job(&record.job_id)? {
                Some(entry) => finished(entry.status),
                None => true,
            };
            if record.unix_ms >= cutoff_ms || !done {
                break;
            }
            self.log.remove(seq.to_be_bytes())?;
            removed += 1;
            next = seq + 1;
            if removed % 4096 == 0 {
                self.set_meta(LOG_START_KEY, &next.to_be_bytes())?;
            }
        }
        if next != start {
            self.set_meta(LOG_START_KEY, &next.to_be_bytes())?;
        }
        Ok(removed)
    }

    /// A metadata value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// Sets a metadata value durably.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.space.check_broken()?;
        self.meta.insert(name, value)?;
        self.flusher.flush()
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Flushes everything, waits up to `limit` for every other handle to
    /// be dropped (actors' threads let go of theirs as they stop), then
    /// drops this one, which stops the writer thread. False if others still
    /// hold the store after `limit` (it stays open until they drop it).
    ///
    /// A broken store is not flushed again (its flush would never return)
    /// and its handle is left to the process's exit: dropping the last one
    /// would flush too. It answers with why it broke.
    pub fn close(self, limit: std::time::Duration) -> Result<bool, StoreError> {
        if let Err(err) = self.space.check_broken() {
            std::mem::forget(self);
            return Err(err);
        }
        if let Err(err) = self.flush() {
            if self.space.is_broken() {
                std::mem::forget(self);
            }
            return Err(err);
        }
        let start = std::time::Instant::now();
        while Arc::strong_count(&self.handles) > 1 {
            if start.elapsed() >= limit {
                return Ok(false);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(true)
    }

    /// Flushes everything to disk, waiting at most
    /// [`space::FLUSH_TIMEOUT`] for sled.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.sync()?;
        self.flusher.flush()
    }
}

/// Refuses a store of another format; stamps a new one with [`FORMAT`].
fn check_format(dir: &Path, meta: &sled::Tree, jobs: &sled::Tree) -> Result<(), StoreError> {
    let found = match meta.get(FORMAT_KEY)? {
        Some(bytes) => <[u8; 4]>::try_from(bytes.as_ref()).map(u32::from_be_bytes).unwrap_or(0),
        None if jobs.is_empty() => {
            meta.insert(FORMAT_KEY, &FORMAT.to_be_bytes())?;
            meta.flush()?;
            return Ok(());
        }
        None => 1,
    };
    if found != FORMAT {
        return Err(StoreError::Format { dir: dir.display().to_string(), found, expected: FORMAT });
    }
    Ok(())
}

/// The log's start from its `meta` value (0 when never pruned).
fn log_start_of(value: Option<&[u8]>) -> u64 {
    value.and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()).map_or(0, u64::from_be_bytes)
}

fn seq_of(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

fn corrupt_key(tree: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt { tree, key: hex::encode(key), source: bincode::error::DecodeError::Other("malformed key") }
}

fn decoded<T: serde::de::DeserializeOwned>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    decode(bytes).map_err(|source| StoreError::Corrupt { tree, key: hex::encode(key), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Failure;

    fn spec(nonce: u64) -> JobSpec {
        crate::job::test_spec(nonce, 3)
    }

    fn result(output: &[u8], failure: Option<Failure>) -> ResultRecord {
        records::test_result(output, failure)
    }

    /// Opens a store just closed in this process: sled's own background
    /// threads let go of the directory lock shortly after the last handle,
    /// so a lock error is retried for up to 5 s; any other result is final.
    fn open_after_close(dir: &Path, config: &crate::config::StoreConfig) -> Result<Store, StoreError> {
        let start = std::time::Instant::now();
        loop {
            match Store::open_with(dir, config) {
                Err(err) if err.to_string().contains("could not acquire lock") => {
                    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{err}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                opened => return opened,
            }
        }
    }

    fn reopen(dir: &Path) -> Store {
        open_after_close(dir, &Default::default()).unwrap()
    }

    fn refused(dir: &Path) -> StoreError {
        open_after_close(dir, &Default::default()).expect_err("the store opened")
    }

    fn commit(store: &Store, writes: Vec<Write>) {
        store.commit_and_wait(writes).unwrap();
    }

    #[test]
    fn a_job_is_logged_pending_then_executed_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (spec(1), spec(2));
        {
            let store = Store::open(dir.path()).unwrap();
            commit(&store, vec![Write::admit(&a), Write::admit(&b)]);
            commit(&store, vec![Write::executed(&a, &result(b"out", None))]);
        }
        let store = reopen(dir.path());
        assert_eq!(store.log_len().unwrap(), 3);
        let entry = store.job(&a.id).unwrap().unwrap();
        assert_eq!((entry.status, entry.pending_seq, entry.executed_seq), (Status::Done, 0, Some(2)));
        // The served result is rebuilt from the spec and the `Executed` record.
        let served = store.result(&a.id).unwrap().unwrap();
        assert_eq!((served.output.as_slice(), served.cycles), (&b"out"[..], 7));
        assert_eq!(served.result_with_metadata, a.result_with_metadata(b"out"));
        assert_eq!(store.result(&b.id).unwrap(), None);
        let record = store.log_record(2).unwrap().unwrap();
        let Transition::Executed(execution) = record.transition else { panic!("{record:?}") };
        assert_eq!((execution.output, execution.cycles), (b"out".to_vec(), 7));
        // b is unfinished: start-up recovery gets its full spec back.
        assert_eq!(store.unfinished().unwrap(), vec![b]);
    }

    #[test]
    fn pruning_removes_old_records_of_finished_jobs_up_to_the_first_unfinished_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b, c) = (spec(1), spec(2), spec(3));
        commit(&store, vec![Write::admit(&a), Write::admit(&b), Write::executed(&a, &result(b"a", None))]);
        commit(&store, vec![Write::admit(&c), Write::executed(&c, &result(b"c", None))]);
        // Log: 0 Pending(a), 1 Pending(b), 2 Executed(a), 3 Pending(c), 4 Executed(c).
        let done = |status: Status| status.is_executed();
        // Nothing is older than a cutoff in the past.
        assert_eq!(store.prune(0, done).unwrap(), 0);
        // b has not run: the log stops before its Pending record.
        let future = records::unix_ms() + 60_000;
        assert_eq!(store.prune(future, done).unwrap(), 1);
        assert_eq!(store.log_start().unwrap(), 1);
        assert!(store.log_record(0).unwrap().is_none());
        // a's entry stays: its nonce is used, its status served, its result gone.
        assert_eq!(store.job(&a.id).unwrap().unwrap().status, Status::Done);
        assert_eq!(store.result(&a.id).unwrap(), None);
        // Once b has run, everything goes; c's result went with its records.
        commit(&store, vec![Write::executed(&b, &result(b"b", None))]);
        assert_eq!(store.prune(records::unix_ms() + 60_000, done).unwrap(), 5);
        assert_eq!((store.log_start().unwrap(), store.log_len().unwrap()), (6, 6));
        assert_eq!(store.result(&c.id).unwrap(), None);
        assert!(store.contains_job(&c.id).unwrap());
        // A log pruned to nothing goes on from where it was, after a reopen too.
        drop(store);
        let store = reopen(dir.path());
        commit(&store, vec![Write::admit(&spec(4))]);
        assert!(store.log_record(6).unwrap().is_some());
    }

    /// What `job watch` relies on: a commit's callback (which takes a
    /// finished job off the board) has run before its status change is
    /// announced, so a reader that subscribes after the announcement finds
    /// the change wherever it reads.
    #[test]
    fn a_status_change_is_announced_after_its_commit_callback_has_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut events = store.job_events();
        let a = spec(1);
        let (told, heard) = std::sync::mpsc::channel();
        let mut early = store.job_events();
        store.commit(
            vec![Write::admit(&a), Write::executed(&a, &result(b"out", None))],
            Box::new(move |result| drop(told.send((result, early.try_recv())))),
        );
        let (result, announced_before) = heard.recv().unwrap();
        result.unwrap();
        assert_eq!(announced_before, Err(tokio::sync::broadcast::error::TryRecvError::Empty));
        let changes = [events.blocking_recv().unwrap(), events.blocking_recv().unwrap()].map(|e| (e.id, e.status));
        assert_eq!(changes, [(a.id, Status::Pending), (a.id, Status::Done)]);
    }

    #[test]
    fn a_second_result_for_a_job_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = spec(1);
        commit(&store, vec![Write::admit(&a), Write::executed(&a, &result(b"one", None))]);
        commit(&store, vec![Write::executed(&a, &result(b"two", Some(Failure::GuestExit(1))))]);
        assert_eq!(store.log_len().unwrap(), 2);
        assert_eq!(store.result(&a.id).unwrap().unwrap().output, b"one");
        assert_eq!(store.commit_stats().duplicate_results.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn a_store_of_another_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            commit(&store, vec![Write::admit(&spec(1))]);
            store.set_meta(FORMAT_KEY, &1u32.to_be_bytes()).unwrap();
        }
        let err = refused(dir.path());
        assert_eq!(
            err.to_string(),
            format!(
                "{} holds store format 1, this engine reads format {FORMAT}: move the data dir aside \
                 (or replay it with the engine that wrote it)",
                dir.path().display()
            )
        );
    }

    #[test]
    fn a_store_with_jobs_and_no_format_is_format_1() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            commit(&store, vec![Write::admit(&spec(1))]);
            store.meta.remove(FORMAT_KEY).unwrap();
            store.meta.flush().unwrap();
        }
        let err = refused(dir.path());
        assert!(matches!(err, StoreError::Format { found: 1, expected: FORMAT, .. }), "{err}");
        // A fresh store is stamped, so it opens again.
        let fresh = tempfile::tempdir().unwrap();
        drop(Store::open(fresh.path()).unwrap());
        let _ = reopen(fresh.path());
    }

    #[test]
    fn compression_is_fixed_when_the_store_is_created() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let compressed = crate::config::StoreConfig { compression: true, ..Default::default() };
        let err =
            open_after_close(dir.path(), &compressed).expect_err("a store made without compression opened with it");
        assert!(err.to_string().contains("use_compression"), "{err}");
        let made_compressed = tempfile::tempdir().unwrap();
        let store = Store::open_with(made_compressed.path(), &compressed).unwrap();
        commit(&store, vec![Write::admit(&spec(1))]);
        assert_eq!(store.unfinished().unwrap(), vec![spec(1)]);
    }

    #[test]
    fn below_the_reserve_admissions_are_refused_while_results_are_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let a = spec(1);
        {
            let store = Store::open(dir.path()).unwrap();
            commit(&store, vec![Write::admit(&a)]);
        }
        // A reserve of 1.5 times the free space: its floor (half) is below it.
        let free = Space::new(dir.path(), 0).measure();
        let config = crate::config::StoreConfig { min_free_bytes: free / 2 * 3, ..Default::default() };
        let store = open_after_close(dir.path(), &config).unwrap();
        let refused = store.commit_and_wait(vec![Write::admit(&spec(2))]).unwrap_err();
        let StoreError::Commit(CommitError::DiskFull(full)) = &refused else { panic!("{refused}") };
        assert_eq!((full.reserve, full.dir.as_str()), (free / 2 * 3, dir.path().to_str().unwrap()));
        assert!(!store.contains_job(&spec(2).id).unwrap());
        // The accepted job's result goes in, out of the reserve; an empty
        // commit (a sync) always passes.
        commit(&store, vec![Write::executed(&a, &result(b"out", None))]);
        assert_eq!(store.result(&a.id).unwrap().unwrap().output, b"out");
        store.sync().unwrap();
        // Admission says so before any write is queued.
        assert!(matches!(store.space().admit(0), Err(StoreError::DiskFull(_))));
    }

    #[test]
    fn attempts_are_durable_and_belong_to_the_job_they_were_made_for() {
        let dir = tempfile::tempdir().unwrap();
        let a = spec(1);
        {
            let store = Store::open(dir.path()).unwrap();
            commit(&store, vec![Write::admit(&a)]);
            let attempt = |n: u8| Write::Attempt { id: a.id, attempts: n, reason: format!("host panic: {n}") };
            commit(&store, vec![attempt(1)]);
            commit(&store, vec![attempt(2)]);
            // An attempt of a job that was never stored is dropped.
            commit(&store, vec![Write::Attempt { id: spec(9).id, attempts: 1, reason: "x".into() }]);
            assert_eq!(store.attempts(&spec(9).id).unwrap(), None);
        }
        let store = reopen(dir.path());
        let attempts = store.attempts(&a.id).unwrap().unwrap();
        assert_eq!((attempts.count, attempts.reason.as_str(), attempts.pending_seq), (2, "host panic: 2", 0));
        // Failed, then its nonce reused: the new job starts from none.
        commit(&store, vec![Write::executed(&a, &result(b"", Some(Failure::GuestExit(1))))]);
        commit(&store, vec![Write::admit(&a)]);
        assert_eq!(store.attempts(&a.id).unwrap(), None);
    }

    #[test]
    fn a_result_for_a_job_never_stored_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, vec![Write::executed(&spec(1), &result(b"out", None))]);
        assert_eq!((store.log_len().unwrap(), store.job(&spec(1).id).unwrap()), (0, None));
    }

    #[test]
    fn a_second_engine_cannot_open_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Sled(_))));
    }
}
