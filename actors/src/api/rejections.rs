//! The last refused job requests, by job ID, so `coproc_getResult` (and
//! `coprocessor job status`) can say why a request was refused: a bad
//! signature, a nonce used before. Bounded and in memory: a refused
//! request never becomes a job, and must not let anyone fill the store.

use super::wire::{codes, RpcError};
use crate::job::JobId;
use crate::store::{CommitError, StoreError};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Refusals remembered.
const CAPACITY: usize = 10_000;

/// The last [`CAPACITY`] refusals.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    inner: Mutex<(HashMap<JobId, String>, VecDeque<JobId>)>,
}

impl Rejections {
    /// Remembers why a request for job `id` was refused.
    pub(crate) fn record(&self, id: JobId, reason: String) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (reasons, order) = &mut *inner;
        if reasons.insert(id, reason).is_none() {
            order.push_back(id);
        }
        while order.len() > CAPACITY {
            if let Some(oldest) = order.pop_front() {
                reasons.remove(&oldest);
            }
        }
    }

    /// Why the last request for job `id` was refused, if it was.
    pub(crate) fn get(&self, id: &JobId) -> Option<String> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.get(id).cloned()
    }
}

/// A store failure as the client sees it: a full disk is `-32020` with
/// the figures (retry once space is freed), anything else is internal.
pub(crate) fn store_refusal(err: StoreError) -> RpcError {
    match err {
        StoreError::DiskFull(full) => RpcError::new(codes::DISK_FULL, full.to_string()),
        StoreError::Commit(err) => commit_refusal(err),
        err => RpcError::new(codes::INTERNAL, err.to_string()),
    }
}

/// A commit that was not made durable, as the client sees it.
pub(crate) fn commit_refusal(err: CommitError) -> RpcError {
    match err {
        CommitError::DiskFull(full) => RpcError::new(codes::DISK_FULL, full.to_string()),
        err => RpcError::new(codes::INTERNAL, err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_refusal_is_forgotten_first() {
        let rejections = Rejections::default();
        for i in 0..=CAPACITY as u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            rejections.record(JobId(id), format!("reason {i}"));
        }
        assert_eq!(rejections.get(&JobId([0; 32])), None);
        let mut last = [0u8; 32];
        last[..4].copy_from_slice(&(CAPACITY as u32).to_be_bytes());
        assert_eq!(rejections.get(&JobId(last)).as_deref(), Some(format!("reason {CAPACITY}").as_str()));
    }
}
