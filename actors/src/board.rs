//! The jobs in flight: admission control, the bounded queue, and nonces.
//!
//! A job is in the board from admission until its result is durable. The
//! board is what makes a nonce usable once (the check and the insert happen
//! under one lock, against both the board and the `jobs` tree) and what
//! bounds the queue in front of the executors (by jobs and by input bytes),
//! and what refuses new jobs while the disk is below the store's reserve.

use crate::config::Queue;
use crate::job::{JobId, JobSpec, Status};
use crate::store::{ResultRecord, Space, Store, StoreError};
use alloy::primitives::Address;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a waiter is told once a job's result is durable: the result, as the
/// submitter recorded it, so `wait: true` answers without a store read.
pub(crate) type Finished = Arc<ResultRecord>;

/// Why a job was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdmitError {
    /// The consumer already used this nonce.
    #[error("nonce {nonce} already used by consumer 0x{}", hex::encode(.consumer))]
    NonceUsed {
        /// The nonce.
        nonce: u64,
        /// The consumer.
        consumer: Address,
    },
    /// The queue is full.
    #[error("busy: {jobs} jobs ({bytes} input bytes) queued; retry later")]
    Busy {
        /// Jobs in flight.
        jobs: usize,
        /// Their input bytes.
        bytes: usize,
    },
    /// The store could not be read, is broken, or its disk is below the
    /// reserve (`StoreError::DiskFull`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
struct Active {
    /// Told when the job's result is durable.
    waiter: Option<tokio::sync::oneshot::Sender<Finished>>,
    status: Status,
    consumer: Address,
    nonce: u64,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    active: HashMap<JobId, Active>,
    bytes: usize,
    /// Per consumer, one past the highest nonce seen.
    next_nonce: HashMap<Address, u64>,
}

/// The jobs in flight.
#[derive(Debug)]
pub(crate) struct JobBoard {
    inner: Mutex<Inner>,
    limits: Queue,
    space: Arc<Space>,
}

impl JobBoard {
    /// An empty board with the queue limits. `next_nonce` is rebuilt from
    /// the store's job entries.
    pub(crate) fn new(limits: Queue, store: &Store) -> Result<JobBoard, StoreError> {
        let mut inner = Inner::default();
        for item in store.jobs() {
            let (_, entry) = item?;
            let next = inner.next_nonce.entry(entry.consumer).or_default();
            *next = (*next).max(entry.nonce.saturating_add(1));
        }
        Ok(JobBoard { inner: Mutex::new(inner), limits, space: Arc::clone(store.space()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; carry on.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a job of `bytes` input bytes would find room now, in the
    /// queue and on the disk.
    pub(crate) fn has_room(&self, bytes: usize) -> Result<(), AdmitError> {
        self.space.admit(bytes)?;
        let inner = self.lock();
        self.room(&inner, bytes)
    }

    fn room(&self, inner: &Inner, bytes: usize) -> Result<(), AdmitError> {
        if inner.active.len() >= self.limits.max_jobs || inner.bytes + bytes > self.limits.max_bytes {
            return Err(AdmitError::Busy { jobs: inner.active.len(), bytes: inner.bytes });
        }
        Ok(())
    }

    /// Admits a new job: its nonce must be unused, the queue must have
    /// room and the disk must not be below the store's reserve. The caller
    /// then commits its `Pending` record (which the store's writer weighs
    /// against the free space once more). A nonce whose job failed may be
    /// used again (as in InfinityVM): a failed result is never relayed, so
    /// the nonce is still free onchain.
    pub(crate) fn admit(&self, spec: &JobSpec, store: &Store) -> Result<(), AdmitError> {
        self.space.admit(spec.input_bytes())?;
        let mut inner = self.lock();
        let reusable = |entry: crate::store::JobEntry| entry.status == Status::Failed;
        // A nonce past every nonce the consumer has used was never stored:
        // the common case (nonces counting up) needs no store read.
        let fresh = inner.next_nonce.get(&spec.consumer).is_none_or(|next| spec.nonce >= *next && *next != u64::MAX);
        if inner.active.contains_key(&spec.id) || (!fresh && store.job(&spec.id)?.is_some_and(|entry| !reusable(entry)))
        {
            return Err(AdmitError::NonceUsed { nonce: spec.nonce, consumer: spec.consumer });
        }
        self.room(&inner, spec.input_bytes())?;
        insert(&mut inner, spec);
        Ok(())
    }

    /// Whether a job is in flight.
    pub(crate) fn contains(&self, id: &JobId) -> bool {
        self.lock().active.contains_key(id)
    }

    /// Puts back a job found unfinished at start-up (no limits apply).
    pub(crate) fn restore(&self, spec: &JobSpec) {
        insert(&mut self.lock(), spec);
    }

    /// Marks a job as running. False if it is no longer in flight (it was
    /// cancelled), so it must not run.
    pub(crate) fn set_running(&self, id: &JobId) -> bool {
        match self.lock().active.get_mut(id) {
            Some(job) => {
                job.status = Status::Running;
                true
            }
            None => false,
        }
    }

    /// Removes a job whose result is durable and hands the result to
    /// whoever waits for it.
    pub(crate) fn finish(&self, id: &JobId, result: Finished) {
        if let Some(Some(waiter)) = self.take(id) {
            let _ = waiter.send(result);
        }
    }

    /// Removes a job that will not finish here (cancelled, or its admission
    /// or its result failed to be recorded): a waiter sees its channel
    /// closed and reads the store instead.
    pub(crate) fn remove(&self, id: &JobId) {
        self.take(id);
    }

    fn take(&self, id: &JobId) -> Option<Option<tokio::sync::oneshot::Sender<Finished>>> {
        let mut inner = self.lock();
        let job = inner.active.remove(id)?;
        inner.bytes -= job.bytes;
        Some(job.waiter)
    }

    /// A receiver that resolves with the job's result once it is durable.
    /// `None` if the job is not in flight.
    pub(crate) fn wait(&self, id: &JobId) -> Option<tokio::sync::oneshot::Receiver<Finished>> {
        let mut inner = self.lock();
        let job = inner.active.get_mut(id)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        job.waiter = Some(tx);
        Some(rx)
    }

    /// The status of a job in flight.
    pub(crate) fn status(&self, id: &JobId) -> Option<Status> {
        self.lock().active.get(id).map(|job| job.status)
    }

    /// Nonces of the consumer's jobs in flight, ascending.
    pub(crate) fn pending_nonces(&self, consumer: &Address) -> Vec<u64> {
        let inner = self.lock();
        let mut nonces: Vec<u64> =
            inner.active.values().filter(|job| &job.consumer == consumer).map(|job| job.nonce).collect();
        nonces.sort_unstable();
        nonces
    }

    /// One past the highest nonce the consumer has used (0 if none).
    pub(crate) fn next_nonce(&self, consumer: &Address) -> u64 {
        self.lock().next_nonce.get(consumer).copied().unwrap_or(0)
    }

    /// Jobs in flight.
    pub(crate) fn len(&self) -> usize {
        self.lock().active.len()
    }
}

fn insert(inner: &mut Inner, spec: &JobSpec) {
    let bytes = spec.input_bytes();
    let job = Active { waiter: None, status: Status::Pending, consumer: spec.consumer, nonce: spec.nonce, bytes };
    if inner.active.insert(spec.id, job).is_none() {
        inner.bytes += bytes;
    }
    let next = inner.next_nonce.entry(spec.consumer).or_default();
    *next = (*next).max(spec.nonce.saturating_add(1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Write;

    fn spec(nonce: u64, bytes: usize) -> JobSpec {
        crate::job::test_spec(nonce, bytes)
    }

    fn result(output: &[u8]) -> Finished {
        Arc::new(crate::store::test_result(output, None))
    }

    #[test]
    fn a_nonce_is_admitted_once_and_the_queue_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let board = JobBoard::new(Queue { max_jobs: 2, max_bytes: 100 }, &store).unwrap();
        board.admit(&spec(1, 10), &store).unwrap();
        assert!(matches!(board.admit(&spec(1, 10), &store), Err(AdmitError::NonceUsed { nonce: 1, .. })));
        assert!(matches!(board.admit(&spec(2, 91), &store), Err(AdmitError::Busy { jobs: 1, bytes: 10 })));
        board.admit(&spec(2, 90), &store).unwrap();
        assert!(matches!(board.admit(&spec(3, 0), &store), Err(AdmitError::Busy { jobs: 2, .. })));
        let consumer = Address::repeat_byte(1);
        assert_eq!(board.pending_nonces(&consumer), vec![1, 2]);
        assert_eq!(board.next_nonce(&consumer), 3);
        board.remove(&spec(1, 0).id);
        board.admit(&spec(3, 0), &store).unwrap();
    }

    #[test]
    fn a_nonce_in_the_store_stays_used_after_the_job_leaves_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.commit_and_wait(vec![Write::admit(&spec(5, 1))]).unwrap();
        let board = JobBoard::new(Queue { max_jobs: 10, max_bytes: 100 }, &store).unwrap();
        assert_eq!(board.next_nonce(&Address::repeat_byte(1)), 6);
        assert!(matches!(board.admit(&spec(5, 1), &store), Err(AdmitError::NonceUsed { .. })));
    }

    #[test]
    fn nonces_past_the_highest_are_fresh_and_lower_ones_are_checked_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.commit_and_wait(vec![Write::admit(&spec(7, 1)), Write::admit(&spec(u64::MAX, 1))]).unwrap();
        let board = JobBoard::new(Queue { max_jobs: 10, max_bytes: 100 }, &store).unwrap();
        // 3 is below the highest nonce but was never used; 7 and u64::MAX were.
        board.admit(&spec(3, 1), &store).unwrap();
        assert!(matches!(board.admit(&spec(7, 1), &store), Err(AdmitError::NonceUsed { nonce: 7, .. })));
        let max = board.admit(&spec(u64::MAX, 1), &store);
        assert!(matches!(max, Err(AdmitError::NonceUsed { nonce: u64::MAX, .. })), "{max:?}");
    }

    #[test]
    fn a_waiter_gets_the_result_from_memory_and_a_removed_job_closes_its_channel() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let board = JobBoard::new(Queue { max_jobs: 10, max_bytes: 100 }, &store).unwrap();
        let (done, cancelled) = (spec(1, 1), spec(2, 1));
        board.admit(&done, &store).unwrap();
        board.admit(&cancelled, &store).unwrap();
        let mut waiting = board.wait(&done.id).unwrap();
        let mut closed = board.wait(&cancelled.id).unwrap();
        board.finish(&done.id, result(b"out"));
        board.remove(&cancelled.id);
        assert_eq!(waiting.try_recv().unwrap().output, b"out");
        assert!(closed.try_recv().is_err());
        assert!(board.len() == 0 && board.wait(&done.id).is_none());
    }
}
