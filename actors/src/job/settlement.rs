//! The steps of a job's way onchain, after execution: one vocabulary for the
//! job log, the store's writer and the relayer.

use super::Status;
use serde::{Deserialize, Serialize};

/// A step of an executed (or cancelled) job's settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    /// Its result transaction was sent.
    Submitted {
        /// The transaction.
        tx_hash: [u8; 32],
    },
    /// Its result transaction is `confirmations` deep.
    Confirmed {
        /// The transaction (zero when the job was found settled onchain by
        /// a transaction this engine no longer knows, e.g. after a crash).
        tx_hash: [u8; 32],
        /// The block that included it.
        block: u64,
    },
    /// Cancelled onchain before it settled.
    Cancelled,
    /// Moved to the dead-letter tree.
    DeadLettered(DeadLetter),
    /// Pushed again from the dead-letter tree.
    Retried,
    /// Found settled onchain by a transaction that is not this engine's
    /// (another engine on the same JobManager won the race).
    AlreadySettled {
        /// The transaction that settled it (zero when only the job's
        /// onchain state told).
        tx_hash: [u8; 32],
        /// The block that included it (0 when unknown).
        block: u64,
    },
}

/// Why a job is in the dead-letter tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Failed submissions.
    pub attempts: u32,
    /// The last failure.
    pub reason: String,
}

impl Settlement {
    /// The status after this step, if a job may take it from `from`.
    ///
    /// Settled jobs (confirmed, cancelled) take no step, so a confirmed job
    /// is never sent again. A job that is still pending or running may only
    /// be cancelled; a failed one is never relayed, so it may only be
    /// cancelled too.
    pub fn next(&self, from: Status) -> Option<Status> {
        use Status::*;
        match (self, from) {
            (_, Confirmed | Cancelled | AlreadySettled) => None,
            (Settlement::Cancelled, _) => Some(Cancelled),
            (Settlement::Submitted { .. }, Done | Submitted) => Some(Submitted),
            (Settlement::Confirmed { .. }, Done | Submitted | DeadLettered) => Some(Confirmed),
            (Settlement::DeadLettered(_), Done | Submitted) => Some(DeadLettered),
            (Settlement::Retried, DeadLettered) => Some(Done),
            (Settlement::AlreadySettled { .. }, Done | Submitted | DeadLettered) => Some(AlreadySettled),
            _ => None,
        }
    }

    /// The transaction this step names, if any.
    pub fn tx_hash(&self) -> Option<[u8; 32]> {
        match self {
            Settlement::Submitted { tx_hash }
            | Settlement::Confirmed { tx_hash, .. }
            | Settlement::AlreadySettled { tx_hash, .. } => Some(*tx_hash),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn steps() -> [Settlement; 6] {
        [
            Settlement::Submitted { tx_hash: [1; 32] },
            Settlement::Confirmed { tx_hash: [1; 32], block: 9 },
            Settlement::Cancelled,
            Settlement::DeadLettered(DeadLetter { attempts: 3, reason: "reverted".into() }),
            Settlement::Retried,
            Settlement::AlreadySettled { tx_hash: [2; 32], block: 10 },
        ]
    }

    /// The whole table: each row is a status, each column a step in the
    /// order of [`steps`]; `None` means the step is refused.
    #[test]
    fn the_transition_table() {
        let table: [(Status, [Option<Status>; 6]); 9] = [
            (Pending, [None, None, Some(Cancelled), None, None, None]),
            (Running, [None, None, Some(Cancelled), None, None, None]),
            (Done, [Some(Submitted), Some(Confirmed), Some(Cancelled), Some(DeadLettered), None, Some(AlreadySettled)]),
            (Failed, [None, None, Some(Cancelled), None, None, None]),
            (
                Submitted,
                [Some(Submitted), Some(Confirmed), Some(Cancelled), Some(DeadLettered), None, Some(AlreadySettled)],
            ),
            (Confirmed, [None, None, None, None, None, None]),
            (Cancelled, [None, None, None, None, None, None]),
            (DeadLettered, [None, Some(Confirmed), Some(Cancelled), None, Some(Done), Some(AlreadySettled)]),
            (AlreadySettled, [None, None, None, None, None, None]),
        ];
        assert_eq!(table.map(|(from, _)| from), Status::ALL);
        for (from, expected) in table {
            for (step, want) in steps().iter().zip(expected) {
                assert_eq!(step.next(from), want, "{step:?} from {from}");
            }
        }
    }

    #[test]
    fn a_settled_job_takes_no_step() {
        for from in Status::ALL.into_iter().filter(|s| s.is_settled()) {
            assert!(steps().iter().all(|step| step.next(from).is_none()), "{from}");
        }
    }

    #[test]
    fn only_sends_and_confirmations_name_a_transaction() {
        let named: Vec<bool> = steps().iter().map(|step| step.tx_hash().is_some()).collect();
        assert_eq!(named, [true, true, false, false, false, true]);
    }
}
