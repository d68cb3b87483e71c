//! The jobs in flight: admission control, the bounded queue, and nonces.
//!
//! A job is in the board from admission until its result is durable. The
//! board is what makes a nonce usable once (the check and the insert happen
//! under one lock, against both the board and the `jobs` tree) and what
//! bounds the queue in front of the executors (by jobs and by input bytes).

use crate::config::Queue;
use crate::store::{JobId, JobSpec, Status, Store, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;

/// Why a job was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// The consumer already used this nonce.
    #[error("nonce {nonce} already used by consumer 0x{consumer}")]
    NonceUsed {
        /// The nonce.
        nonce: u64,
        /// The consumer, as hex.
        consumer: String,
    },
    /// The queue is full.
    #[error("busy: {jobs} jobs ({bytes} input bytes) queued; retry later")]
    Busy {
        /// Jobs in flight.
        jobs: usize,
        /// Their input bytes.
        bytes: usize,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
struct Active {
    /// Told when the job's result is durable.
    waiter: Option<tokio::sync::oneshot::Sender<()>>,
    status: Status,
    consumer: [u8; 20],
    nonce: u64,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    active: HashMap<JobId, Active>,
    bytes: usize,
    /// Per consumer, one past the highest nonce seen.
    next_nonce: HashMap<[u8; 20], u64>,
}

/// The jobs in flight.
#[derive(Debug)]
pub struct JobBoard {
    inner: Mutex<Inner>,
    limits: Queue,
}

impl JobBoard {
    /// An empty board with the queue limits. `next_nonce` is rebuilt from
    /// the store's job entries.
    pub fn new(limits: Queue, store: &Store) -> Result<JobBoard, StoreError> {
        let mut inner = Inner::default();
        for item in store.jobs() {
            let (_, entry) = item?;
            let next = inner.next_nonce.entry(entry.consumer).or_default();
            *next = (*next).max(entry.nonce.saturating_add(1));
        }
        Ok(JobBoard { inner: Mutex::new(inner), limits })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; carry on.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a job of `bytes` input bytes would find room now.
    pub fn has_room(&self, bytes: usize) -> Result<(), AdmitError> {
        let inner = self.lock();
        self.room(&inner, bytes)
    }

    fn room(&self, inner: &Inner, bytes: usize) -> Result<(), AdmitError> {
        if inner.active.len() >= self.limits.max_jobs || inner.bytes + bytes > self.limits.max_bytes {
            return Err(AdmitError::Busy { jobs: inner.active.len(), bytes: inner.bytes });
        }
        Ok(())
    }

    /// Admits a new job: its nonce must be unused and the queue must have
    /// room. The caller then commits its `Pending` record. A nonce whose
    /// job failed may be used again (as in InfinityVM): a failed result is
    /// never relayed, so the nonce is still free onchain.
    pub fn admit(&self, spec: &JobSpec, store: &Store) -> Result<(), AdmitError> {
        let mut inner = self.lock();
        let reusable = |entry: crate::store::JobEntry| entry.status == Status::Failed;
        if inner.active.contains_key(&spec.id) || store.job(&spec.id)?.is_some_and(|entry| !reusable(entry)) {
            return Err(AdmitError::NonceUsed { nonce: spec.nonce, consumer: hex::encode(spec.consumer) });
        }
        self.room(&inner, spec.input_bytes())?;
        insert(&mut inner, spec);
        Ok(())
    }

    /// Whether a job is in flight.
    pub fn contains(&self, id: &JobId) -> bool {
        self.lock().active.contains_key(id)
    }

    /// Puts back a job found unfinished at start-up (no limits apply).
    pub fn restore(&self, spec: &JobSpec) {
        insert(&mut self.lock(), spec);
    }

    /// Marks a job as running. False if it is no longer in flight (it was
    /// cancelled), so it must not run.
    pub fn set_running(&self, id: &JobId) -> bool {
        match self.lock().active.get_mut(id) {
            Some(job) => {
                job.status = Status::Running;
                true
            }
            None => false,
        }
    }

    /// Removes a job whose result is durable, or whose admission failed,
    /// and wakes whoever waits for it.
    pub fn remove(&self, id: &JobId) {
        let mut inner = self.lock();
        if let Some(job) = inner.active.remove(id) {
            inner.bytes -= job.bytes;
            if let Some(waiter) = job.waiter {
                let _ = waiter.send(());
            }
        }
    }

    /// A receiver that resolves once the job leaves the board (its result
    /// is durable). `None` if the job is not in flight.
    pub fn wait(&self, id: &JobId) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let mut inner = self.lock();
        let job = inner.active.get_mut(id)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        job.waiter = Some(tx);
        Some(rx)
    }

    /// The status of a job in flight.
    pub fn status(&self, id: &JobId) -> Option<Status> {
        self.lock().active.get(id).map(|job| job.status)
    }

    /// Nonces of the consumer's jobs in flight, ascending.
    pub fn pending_nonces(&self, consumer: &[u8; 20]) -> Vec<u64> {
        let inner = self.lock();
        let mut nonces: Vec<u64> =
            inner.active.values().filter(|job| &job.consumer == consumer).map(|job| job.nonce).collect();
        nonces.sort_unstable();
        nonces
    }

    /// One past the highest nonce the consumer has used (0 if none).
    pub fn next_nonce(&self, consumer: &[u8; 20]) -> u64 {
        self.lock().next_nonce.get(consumer).copied().unwrap_or(0)
    }

    /// Jobs in flight.
    pub fn len(&self) -> usize {
        self.lock().active.len()
    }

    /// Whether no job is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        crate::store::records::test_spec(nonce, bytes)
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
        assert_eq!(board.pending_nonces(&[1; 20]), vec![1, 2]);
        assert_eq!(board.next_nonce(&[1; 20]), 3);
        board.remove(&spec(1, 0).id);
        board.admit(&spec(3, 0), &store).unwrap();
    }

    #[test]
    fn a_nonce_in_the_store_stays_used_after_the_job_leaves_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        store.commit(vec![Write::admit(&spec(5, 1))], Box::new(move |r| tx.send(r).unwrap()));
        rx.recv().unwrap().unwrap();
        let board = JobBoard::new(Queue { max_jobs: 10, max_bytes: 100 }, &store).unwrap();
        assert_eq!(board.next_nonce(&[1; 20]), 6);
        assert!(matches!(board.admit(&spec(5, 1), &store), Err(AdmitError::NonceUsed { .. })));
    }
}
