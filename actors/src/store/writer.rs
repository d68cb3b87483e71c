//! The group commit: one thread writes every job transition.
//!
//! Callers queue [`Write`]s with a [`Done`] callback. The thread takes every
//! commit waiting at that moment, applies them as one sled transaction over
//! `log`, `jobs` and `dead_letters` (so a crash never leaves one tree ahead
//! of another), flushes once, and then runs the callbacks. Being the only
//! writer, it also guarantees that a job is recorded as executed at most
//! once: a second result for a job is dropped, never appended.
//!
//! Before a group touches sled, each commit is weighed against the free
//! space ([`Space`]): a commit that admits a job must leave the reserve
//! untouched, any other must stay above the floor; one that does not fit
//! is refused with [`DiskFull`] and the others go on. A group with nothing
//! to write is not flushed. Once sled has failed (an error, or a flush
//! that did not return in time) every commit is refused at once.

use super::records::{
    self, encode, unix_ms, Attempts, JobEntry, LogRecordRef, ProgramStats, ResultRecord, TransitionRef,
};
use super::space::{DiskFull, Flusher, Space};
use super::{JobTrees, StoreError};
use crate::job::{JobId, JobSpec, Settlement, Status};
use crate::program::ProgramId;
use alloy::primitives::Address;
use crossbeam_channel::{Receiver, Sender};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most commits folded into one transaction.
const MAX_COMMITS_PER_BATCH: usize = 8192;

/// One job write, its records already encoded by the caller's thread, so
/// the writer thread does nothing but sled work.
#[derive(Debug)]
pub enum Write {
    /// A new job: its `Pending` log record and its entry.
    Admit {
        /// The job.
        id: JobId,
        /// Its consumer.
        consumer: Address,
        /// Its nonce.
        nonce: u64,
        /// The encoded `Pending` log record.
        record: Vec<u8>,
        /// Written only if the store does not know the job yet (a job taken
        /// in from the cluster, which this engine may be running itself);
        /// otherwise it replaces the entry (a nonce reused after a failure).
        if_unknown: bool,
    },
    /// A job's result: its `Executed` log record and its entry (and its
    /// program's job and cycle counts).
    Executed {
        /// The job.
        id: JobId,
        /// Its program, if the job ran here (its job and cycle counts grow);
        /// `None` for a result another engine of the cluster ran.
        program: Option<ProgramId>,
        /// Cycles it used.
        cycles: u64,
        /// Done or failed.
        status: Status,
        /// The encoded `Executed` log record.
        record: Vec<u8>,
    },
    /// A settlement step of an executed (or cancelled) job.
    Settle {
        /// The job.
        id: JobId,
        /// The step.
        step: Settlement,
        /// The encoded log record.
        record: Vec<u8>,
    },
    /// A failed attempt to run a job (its execution panicked the host):
    /// how many so far, durably, so that a job that always fails this way
    /// is quarantined after `executor.max_attempts`, across restarts too.
    Attempt {
        /// The job.
        id: JobId,
        /// Attempts that failed so far, this one included.
        attempts: u8,
        /// Why this one failed.
        reason: String,
    },
}

impl Write {
    /// The writes that admit `spec`.
    pub fn admit(spec: &JobSpec) -> Write {
        let record = LogRecordRef { job_id: spec.id, unix_ms: unix_ms(), transition: TransitionRef::Pending(spec) };
        Write::Admit {
            id: spec.id,
            consumer: spec.consumer,
            nonce: spec.nonce,
            record: encode(&record),
            if_unknown: false,
        }
    }

    /// The writes that record `result` for job `spec`.
    pub fn executed(spec: &JobSpec, result: &ResultRecord) -> Write {
        let id = spec.id;
        let record =
            LogRecordRef { job_id: id, unix_ms: unix_ms(), transition: TransitionRef::Executed(result.execution()) };
        let (program, cycles) = (Some(spec.program_id), result.cycles);
        Write::Executed { id, program, cycles, status: result.status(), record: encode(&record) }
    }

    /// The writes that take in a job another engine of the cluster ran, to
    /// settle it here: its `Pending` and `Executed` records, its program's
    /// counts unchanged. A job the store knows keeps its entry and gets
    /// the result only if it has none.
    pub fn taken_in(spec: &JobSpec, result: &ResultRecord) -> Vec<Write> {
        let mut admit = Write::admit(spec);
        if let Write::Admit { if_unknown, .. } = &mut admit {
            *if_unknown = true;
        }
        let mut executed = Write::executed(spec, result);
        if let Write::Executed { program, .. } = &mut executed {
            *program = None;
        }
        vec![admit, executed]
    }

    /// Bytes this write stores (its record).
    fn len(&self) -> usize {
        match self {
            Write::Admit { record, .. } | Write::Executed { record, .. } | Write::Settle { record, .. } => record.len(),
            Write::Attempt { reason, .. } => reason.len() + 16,
        }
    }

    /// The write that records settlement `step` for job `id`.
    pub fn settle(id: JobId, step: Settlement) -> Write {
        let record =
            encode(&LogRecordRef { job_id: id, unix_ms: unix_ms(), transition: TransitionRef::Settled(&step) });
        Write::Settle { id, step, record }
    }
}

/// Runs once a commit is durable, or failed.
pub(crate) type Done = Box<dyn FnOnce(Result<(), CommitError>) + Send>;

/// Why a commit was not made durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The group failed; every commit in it gets this error.
    #[error("group commit failed: {0}")]
    Failed(String),
    /// The free space is below the reserve (a new job) or the floor
    /// (anything else); nothing was written.
    #[error(transparent)]
    DiskFull(#[from] DiskFull),
    /// sled failed earlier; the store refuses every write.
    #[error("the store failed ({0}): it refuses writes until the engine restarts")]
    Broken(String),
    /// The writer has stopped.
    #[error("the store is closed")]
    Closed,
}

impl From<StoreError> for CommitError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Broken(reason) => CommitError::Broken(reason),
            StoreError::Closed => CommitError::Closed,
            StoreError::DiskFull(full) => CommitError::DiskFull(full),
            StoreError::Commit(err) => err,
            other => CommitError::Failed(other.to_string()),
        }
    }
}

/// Counters of the writer thread.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Results dropped because the job was already executed.
    pub duplicate_results: AtomicU64,
    /// Settlement steps dropped because the job could not take them (for
    /// example, anything after `Confirmed`).
    pub stale_settlements: AtomicU64,
}

struct Commit {
    writes: Vec<Write>,
    done: Done,
}

/// The writer's queue. Field order matters: when the last handle drops,
/// its sender goes first, so the thread sees the queue close, and then
/// `_joiner` joins it: the writer's handle on the database is gone when the
/// last `Store` is (sled's own background threads may hold it a moment more).
#[derive(Clone)]
pub(super) struct Handle {
    tx: Sender<Commit>,
    stats: Arc<CommitStats>,
    _joiner: Arc<Joiner>,
}

struct Joiner(Option<std::thread::JoinHandle<()>>);

impl Drop for Joiner {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

impl Handle {
    pub(super) fn commit(&self, writes: Vec<Write>, done: Done) {
        if let Err(err) = self.tx.send(Commit { writes, done }) {
            (err.0.done)(Err(CommitError::Closed));
        }
    }

    pub(super) fn stats(&self) -> Arc<CommitStats> {
        Arc::clone(&self.stats)
    }
}

/// What the writer needs besides the trees.
pub(super) struct Guard {
    pub(super) space: Arc<Space>,
    pub(super) flusher: Flusher,
    /// Where each durable status change of a job is announced.
    pub(super) events: tokio::sync::broadcast::Sender<JobEvent>,
}

/// A job's status changed, durably (announced after the flush that wrote
/// it, in the order of the writes): what `coproc_subscribe` pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobEvent {
    /// The job.
    pub id: JobId,
    /// Its consumer.
    pub consumer: Address,
    /// Its new status.
    pub status: Status,
}

pub(super) fn spawn(trees: JobTrees, next_seq: u64, guard: Guard) -> Handle {
    let (tx, rx) = crossbeam_channel::unbounded();
    let stats = Arc::new(CommitStats::default());
    let thread_stats = Arc::clone(&stats);
    let spawned = std::thread::Builder::new().name("store-writer".into()).spawn(move || {
        run(&trees, next_seq, &rx, &thread_stats, &guard);
        if guard.space.is_broken() {
            // Dropping the last handle of a tree flushes it (sled's Drop),
            // which never returns on a failed sled: leave them to the exit.
            std::mem::forget(trees);
        }
    });
    let thread = match spawned {
        Ok(thread) => Some(thread),
        Err(err) => {
            tracing::error!(%err, "cannot start the store writer thread");
            None
        }
    };
    Handle { tx, stats, _joiner: Arc::new(Joiner(thread)) }
}

/// What the writer thread keeps between groups.
#[derive(Default)]
struct State {
    /// The next log sequence number.
    next_seq: u64,
    /// Entries of the jobs admitted since the writer started and not yet
    /// executed: their result finds its entry here, not with a sled read,
    /// so a growing `jobs` tree costs the hot path nothing. The writer is
    /// the only writer of the tree, so these are exact; a job admitted
    /// before a restart is read from sled.
    unexecuted: HashMap<JobId, JobEntry>,
}

fn run(trees: &JobTrees, next_seq: u64, rx: &Receiver<Commit>, stats: &CommitStats, guard: &Guard) {
    let mut state = State { next_seq, ..State::default() };
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_COMMITS_PER_BATCH {
            match rx.try_recv() {
                Ok(commit) => group.push(commit),
                Err(_) => break,
            }
        }
        let (results, events) = commit_group(trees, &mut state, &group, stats, guard);
        for (commit, result) in group.into_iter().zip(results) {
            (commit.done)(result);
        }
        // Announced after the callbacks, to the receivers there are then.
        // The callbacks take finished jobs off the board, which answers
        // for jobs in flight: a reader that subscribes after this sees the
        // change in the store, and one that subscribed before hears of it
        // (announced before the callbacks, it could read a status the
        // board still held and wait for a change already sent).
        if guard.events.receiver_count() > 0 {
            for event in events {
                // A receiver gone since is not an error.
                let _ = guard.events.send(event);
            }
        }
    }
}

/// Weighs each commit of a group against the free space, applies those
/// that fit as one transaction, and returns each commit's result, in
/// order, with the status changes made durable.
fn commit_group(
    trees: &JobTrees,
    state: &mut State,
    group: &[Commit],
    stats: &CommitStats,
    guard: &Guard,
) -> (Vec<Result<(), CommitError>>, Vec<JobEvent>) {
    if let Err(err) = guard.space.check_broken() {
        return (vec![Err(err.into()); group.len()], Vec::new());
    }
    let writes_anything = group.iter().any(|commit| !commit.writes.is_empty());
    let free = if writes_anything { guard.space.measure() } else { u64::MAX };
    let (mut budget, mut admit_budget) = (guard.space.budget(free), guard.space.admit_budget(free));
    let mut refused = 0;
    let verdicts: Vec<Option<CommitError>> = group
        .iter()
        .map(|commit| {
            if commit.writes.is_empty() {
                return None;
            }
            let cost: u64 = commit.writes.iter().map(|write| Space::cost(write.len())).sum();
            let admits = commit.writes.iter().any(|write| matches!(write, Write::Admit { .. }));
            if cost > budget || (admits && cost > admit_budget) {
                refused += 1;
                return Some(CommitError::DiskFull(guard.space.disk_full(free)));
            }
            budget -= cost;
            admit_budget = admit_budget.saturating_sub(cost);
            None
        })
        .collect();
    if refused > 0 {
        tracing::debug!(refused, free, "commits refused: disk full");
    }
    let accepted = group.iter().zip(&verdicts).filter(|(_, verdict)| verdict.is_none()).map(|(commit, _)| commit);
    let (result, events) = match apply(trees, state, accepted, stats, guard) {
        Ok(events) => (Ok(()), events),
        Err(err) => {
            tracing::error!(%err, "group commit failed");
            (Err(err), Vec::new())
        }
    };
    (verdicts.into_iter().map(|verdict| verdict.map_or_else(|| result.clone(), Err)).collect(), events)
}

/// Applies the writes of `group` as one transaction and flushes (if there
/// was anything to write), and returns the status changes it made durable.
/// On failure the state is left as it was; a sled failure breaks the store.
fn apply<'a>(
    trees: &JobTrees,
    state: &mut State,
    group: impl Iterator<Item = &'a Commit>,
    stats: &CommitStats,
    guard: &Guard,
) -> Result<Vec<JobEvent>, CommitError> {
    let mut seq = state.next_seq;
    let mut log = sled::Batch::default();
    let mut jobs = sled::Batch::default();
    let mut dead_letters = sled::Batch::default();
    let mut attempts = sled::Batch::default();
    let mut programs: HashMap<ProgramId, ProgramStats> = HashMap::new();
    // Announced once durable and the commits' callbacks have run (`run`).
    let mut events = Vec::new();
    let (mut written, mut attempted) = (false, false);
    let mut entries: HashMap<JobId, JobEntry> = HashMap::new();
    for write in group.flat_map(|commit| &commit.writes) {
        match write {
            Write::Admit { id, consumer, nonce, record, if_unknown } => {
                if *if_unknown && entry_of(trees, state, &entries, id)?.is_some() {
                    continue;
                }
                log.insert(&seq.to_be_bytes(), record.as_slice());
                let entry = JobEntry {
                    consumer: *consumer,
                    nonce: *nonce,
                    status: Status::Pending,
                    pending_seq: seq,
                    executed_seq: None,
                    tx_hash: None,
                };
                jobs.insert(&id.0, encode(&entry));
                events.push(JobEvent { id: *id, consumer: entry.consumer, status: entry.status });
                entries.insert(*id, entry);
                seq += 1;
            }
            Write::Executed { id, program, cycles, status, record } => {
                let Some(mut entry) = entry_of(trees, state, &entries, id)? else {
                    // Its admission was refused (a full disk, say) after it
                    // had been dispatched: there is nothing to record.
                    tracing::warn!(job = %id, "result for a job that was never stored dropped");
                    continue;
                };
                if entry.status.is_executed() {
                    stats.duplicate_results.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                log.insert(&seq.to_be_bytes(), record.as_slice());
                if let Some(program) = program {
                    let stats = programs.entry(*program).or_default();
                    stats.jobs += 1;
                    stats.cycles = stats.cycles.saturating_add(*cycles);
                }
                entry.status = *status;
                entry.executed_seq = Some(seq);
                jobs.insert(&id.0, encode(&entry));
                events.push(JobEvent { id: *id, consumer: entry.consumer, status: entry.status });
                entries.insert(*id, entry);
                seq += 1;
            }
            Write::Settle { id, step, record } => {
                let Some(mut entry) = entry_of(trees, state, &entries, id)? else {
                    tracing::error!(job = %id, "settlement of an unknown job dropped");
                    continue;
                };
                let Some(status) = step.next(entry.status) else {
                    stats.stale_settlements.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                log.insert(&seq.to_be_bytes(), record.as_slice());
                if let Some(tx_hash) = step.tx_hash() {
                    entry.tx_hash = Some(tx_hash);
                }
                match step {
                    Settlement::DeadLettered(letter) => dead_letters.insert(&id.0, encode(letter)),
                    Settlement::Retried => dead_letters.remove(&id.0),
                    _ => {}
                }
                entry.status = status;
                jobs.insert(&id.0, encode(&entry));
                events.push(JobEvent { id: *id, consumer: entry.consumer, status });
                entries.insert(*id, entry);
                seq += 1;
            }
            Write::Attempt { id, attempts: count, reason } => {
                let Some(entry) = entry_of(trees, state, &entries, id)? else { continue };
                if entry.status.is_executed() {
                    continue;
                }
                let record = Attempts { pending_seq: entry.pending_seq, count: *count, reason: reason.clone() };
                attempts.insert(&id.0, encode(&record));
                attempted = true;
                continue;
            }
        }
        written = true;
    }
    if !(written || attempted) {
        return Ok(events);
    }
    let failed = |err: TransactionError<()>| {
        let reason = format!("transaction failed: {err:?}");
        guard.space.set_broken(reason.clone());
        CommitError::Broken(reason)
    };
    // A program's counts are read and added to inside the transaction, so
    // they hold exactly the results the log holds.
    let add_stats = |stats_tx: &sled::transaction::TransactionalTree| {
        for (program, delta) in &programs {
            let old: ProgramStats = match stats_tx.get(program.0)? {
                Some(bytes) => records::decode(&bytes).unwrap_or_default(),
                None => ProgramStats::default(),
            };
            let new = ProgramStats { jobs: old.jobs + delta.jobs, cycles: old.cycles.saturating_add(delta.cycles) };
            stats_tx.insert(&program.0, encode(&new))?;
        }
        Ok::<(), ConflictableTransactionError<()>>(())
    };
    if attempted {
        (&trees.log, &trees.jobs, &trees.dead_letters, &trees.attempts, &trees.program_stats)
            .transaction(|(log_tx, jobs_tx, dead_tx, attempts_tx, stats_tx)| {
                log_tx.apply_batch(&log)?;
                jobs_tx.apply_batch(&jobs)?;
                dead_tx.apply_batch(&dead_letters)?;
                attempts_tx.apply_batch(&attempts)?;
                add_stats(stats_tx)
            })
            .map_err(failed)?;
    } else {
        (&trees.log, &trees.jobs, &trees.dead_letters, &trees.program_stats)
            .transaction(|(log_tx, jobs_tx, dead_tx, stats_tx)| {
                log_tx.apply_batch(&log)?;
                jobs_tx.apply_batch(&jobs)?;
                dead_tx.apply_batch(&dead_letters)?;
                add_stats(stats_tx)
            })
            .map_err(failed)?;
    }
    guard.flusher.flush()?;
    state.next_seq = seq;
    for (id, entry) in entries {
        if entry.status.is_executed() {
            state.unexecuted.remove(&id);
        } else {
            state.unexecuted.insert(id, entry);
        }
    }
    Ok(events)
}

/// A job's entry as this group leaves it so far, as the writer knows it,
/// or as stored.
fn entry_of(
    trees: &JobTrees,
    state: &State,
    entries: &HashMap<JobId, JobEntry>,
    id: &JobId,
) -> Result<Option<JobEntry>, CommitError> {
    match entries.get(id).or_else(|| state.unexecuted.get(id)) {
        Some(entry) => Ok(Some(*entry)),
        None => current_entry(trees, id),
    }
}

fn current_entry(trees: &JobTrees, id: &JobId) -> Result<Option<JobEntry>, CommitError> {
    let bytes = trees.jobs.get(id).map_err(|err| CommitError::Failed(err.to_string()))?;
    bytes
        .map(|bytes| {
            super::records::decode(&bytes).map_err(|err| CommitError::Failed(format!("corrupt job entry: {err}")))
        })
        .transpose()
}
