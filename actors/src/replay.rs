//! Replay: re-execute logged jobs and check them against what was recorded.
//!
//! For each `Pending` record in the range (optionally of one program) whose
//! job has been executed, the job runs again with the limits it ran with,
//! and its output, exit code, cycles and failure must equal what the log's
//! `Executed` record holds. It reads the log once, in order, and nothing
//! else (no index lookups, so its speed does not depend on the store's
//! cache); every attempt of a nonce that was used again after a failure is
//! replayed against its own record.
//! Replay reads the store only; it works on a running engine's store (over
//! the socket) and on a stopped engine's data dir alike. It covers what the
//! log retains, and says where that starts (`store.retain_days` prunes the
//! records of old finished jobs).

use crate::executor::WarmVms;
use crate::job::{JobId, JobSpec, Settlement};
use crate::program::{ProgramId, ProgramImage};
use crate::store::{Store, StoreError, Transition};
use std::collections::HashMap;
use std::sync::Arc;

/// Which jobs to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First log sequence number (inclusive).
    pub from: u64,
    /// Last log sequence number (inclusive).
    pub to: u64,
    /// Only jobs of this program.
    pub program: Option<ProgramId>,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Jobs re-executed.
    pub replayed: u64,
    /// Jobs that matched.
    pub matched: u64,
    /// Jobs that did not match, in the order they were executed.
    pub mismatched: Vec<JobId>,
    /// Jobs in the range not yet executed (nothing to compare).
    pub skipped: u64,
    /// The first log record the store still holds: a range that starts
    /// before it was pruned (`store.retain_days`) and is not covered.
    pub first_retained: u64,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A logged job's program is missing or no longer decodes.
    #[error("program {0} of a logged job is not in the store")]
    MissingProgram(ProgramId),
    /// The VM failed (an engine problem, not a mismatch).
    #[error("running job {job}: {source}")]
    Vm {
        /// The job.
        job: JobId,
        /// The VM's error.
        source: crate::executor::vm::VmError,
    },
}

/// Replays `range`, calling `progress(seq_done, seq_total)` as it goes.
pub fn replay(
    store: &Store,
    range: &Range,
    max_input_bytes: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, ReplayError> {
    let first_retained = store.log_start()?;
    let from = range.from.max(first_retained);
    let end = store.log_len()?.min(range.to.saturating_add(1));
    let total = end.saturating_sub(from);
    let mut report = ReplayReport { first_retained, ..ReplayReport::default() };
    let mut images: HashMap<ProgramId, Arc<ProgramImage>> = HashMap::new();
    let mut vms = WarmVms::new(max_input_bytes);
    if total == 0 {
        return Ok(report);
    }
    // One pass in log order, with no index lookups: a job's `Pending`
    // record (in the range) waits here until its `Executed` record, which
    // is the next one for that job ID (a failed job's nonce may be used
    // again, so one ID can have several attempts, each replayed).
    let mut waiting: HashMap<JobId, JobSpec> = HashMap::new();
    for item in store.log_range(from, u64::MAX) {
        let (seq, record) = item?;
        if seq >= end && waiting.is_empty() {
            break;
        }
        if seq % 256 == 0 {
            progress((seq - from).min(total), total);
        }
        let (spec, recorded) = match record.transition {
            Transition::Pending(spec) => {
                if seq < end && range.program.is_none_or(|program| program == spec.program_id) {
                    waiting.insert(spec.id, spec);
                }
                continue;
            }
            Transition::Settled(Settlement::Cancelled) => {
                // Cancelled before it ran: nothing to compare.
                if waiting.remove(&record.job_id).is_some() {
                    report.skipped += 1;
                }
                continue;
            }
            Transition::Settled(_) => continue,
            Transition::Executed(crate::store::Execution {
                failure: Some(crate::job::Failure::Quarantined { .. }),
                ..
            }) => {
                // Quarantined: the host failed, the guest never finished;
                // there is no outcome to compare.
                if waiting.remove(&record.job_id).is_some() {
                    report.skipped += 1;
                }
                continue;
            }
            Transition::Executed(recorded) => match waiting.remove(&record.job_id) {
                Some(spec) => (spec, recorded),
                None => continue,
            },
        };
        let image = match images.get(&spec.program_id) {
            Some(image) => Arc::clone(image),
            None => {
                let elf = store.program(&spec.program_id)?.ok_or(ReplayError::MissingProgram(spec.program_id))?;
                let image =
                    ProgramImage::parse(&elf, elf.len()).map_err(|_| ReplayError::MissingProgram(spec.program_id))?;
                let image = Arc::new(image);
                images.insert(spec.program_id, Arc::clone(&image));
                image
            }
        };
        let outcome = vms
            .run(&spec.program_id, &image, &spec.onchain_input, &spec.offchain_input, &spec.limits())
            .map_err(|source| ReplayError::Vm { job: spec.id, source })?;
        let matches = outcome.output == recorded.output
            && outcome.exit_code == recorded.exit_code
            && outcome.cycles == recorded.cycles
            && outcome.failure == recorded.failure;
        report.replayed += 1;
        if matches {
            report.matched += 1;
        } else {
            tracing::warn!(job = %spec.id, "replay mismatch");
            report.mismatched.push(spec.id);
        }
    }
    // Not executed (yet): nothing to compare.
    report.skipped += waiting.len() as u64;
    progress(total, total);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Write;

    #[test]
    fn a_replay_says_where_the_retained_log_starts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let spec = crate::job::test_spec(1, 3);
        let result = crate::store::test_result(b"", None);
        store.commit_and_wait(vec![Write::admit(&spec), Write::executed(&spec, &result)]).unwrap();
        assert_eq!(store.prune(crate::store::unix_ms() + 60_000, |status| status.is_executed()).unwrap(), 2);
        let everything = Range { from: 0, to: u64::MAX, program: None };
        let report = replay(&store, &everything, 1024, |_, _| {}).unwrap();
        assert_eq!(report, ReplayReport { first_retained: 2, ..ReplayReport::default() });
    }
}
