//! A relayer key's nonce lane: the transactions it has out, by nonce.
//!
//! Nonces are assigned here, not read from the node per transaction. What
//! the node says, once a round, tells the rest:
//! - the account's mined count at the round's head block: every
//!   transaction below it is mined; its outcome is read from the
//!   JobManager's events once the event cursor has passed the block where
//!   the count first showed it;
//! - whether the node still knows the first unmined transaction (the one
//!   every later nonce waits for): if not, it was dropped, and it is sent
//!   again as it was.
//!
//! The pending count (mined + queued) is read only at start-up and after
//! a "nonce too low": asking for it makes some nodes build a pending block
//! out of their whole mempool.

use super::fees::Fees;
use crate::job::JobId;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, B256, U256};
use std::collections::BTreeMap;

/// A settlement transaction that is out.
#[derive(Debug, Clone)]
pub(super) struct Tx {
    /// Its jobs not yet settled or given up.
    pub(super) jobs: Vec<JobId>,
    /// How many results it carried.
    pub(super) carried: usize,
    /// The kind and size of its result when it carries one.
    pub(super) single: Option<(super::gas::GasKey, usize)>,
    /// The call.
    pub(super) calldata: Bytes,
    /// Its gas limit.
    pub(super) gas: u64,
    /// The gas each of its items runs with.
    pub(super) share: u64,
    /// The fees of its latest version.
    pub(super) fees: Fees,
    /// Every version's hash (replacements add one).
    pub(super) hashes: Vec<B256>,
    /// The latest version, signed (sent again if the node drops it).
    pub(super) raw: Bytes,
    /// The blobs it carries, and the blob fee its latest version offers
    /// (wei per blob gas).
    pub(super) blobs: Option<(std::sync::Arc<alloy::eips::eip4844::BlobTransactionSidecar>, u128)>,
    /// The head when its latest version went out.
    pub(super) sent_head: u64,
    /// The head at which the account's mined count first covered it.
    pub(super) mined_at: Option<u64>,
}

/// One relayer key.
#[derive(Debug, Clone)]
pub(super) struct Sender {
    /// Its address.
    pub(super) address: Address,
    /// Its key.
    pub(super) wallet: EthereumWallet,
    /// Whether it may settle onchain jobs (it is the JobManager's relayer,
    /// or an authorized one).
    pub(super) onchain: bool,
    /// Its balance at the last head read.
    pub(super) balance: Option<U256>,
    next: Option<u64>,
    resync: bool,
    latest: u64,
    pending: u64,
    /// Whether the node still knows the first unmined transaction.
    head_of_line_known: bool,
    /// The head at which the line last moved: a transaction of ours mined,
    /// or the first one (or a replacement) sent.
    progress_head: u64,
    txs: BTreeMap<u64, Tx>,
}

/// What a sender should send again this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resend {
    /// Dropped by the node: the same signed bytes again.
    Dropped(u64),
    /// Unmined for too long: the same call with higher fees.
    Stuck(u64),
}

impl Sender {
    /// A sender that knows nothing of the chain yet.
    pub(super) fn new(address: Address, wallet: EthereumWallet) -> Sender {
        Sender {
            address,
            wallet,
            onchain: false,
            balance: None,
            next: None,
            resync: false,
            latest: 0,
            pending: 0,
            head_of_line_known: true,
            progress_head: 0,
            txs: BTreeMap::new(),
        }
    }

    /// Whether the pending count must be read this round (start-up, or
    /// after a "nonce too low").
    pub(super) fn needs_pending(&self) -> bool {
        self.next.is_none() || self.resync
    }

    /// The first unmined transaction (the head of the line), if any.
    pub(super) fn head_of_line(&self) -> Option<(u64, &Tx)> {
        self.head_of_line_at(self.latest)
    }

    /// The first transaction a mined count of `latest` leaves unmined.
    pub(super) fn head_of_line_at(&self, latest: u64) -> Option<(u64, &Tx)> {
        self.txs.range(latest..).find(|(_, tx)| tx.mined_at.is_none()).map(|(nonce, tx)| (*nonce, tx))
    }

    /// What the node said at block `head`: the account's mined count, its
    /// pending count when read ([`Sender::needs_pending`]), and whether it
    /// knows the head of the line.
    pub(super) fn observe(&mut self, head: u64, latest: u64, pending: Option<u64>, head_of_line_known: bool) {
        if latest > self.latest {
            self.progress_head = self.progress_head.max(head);
        }
        self.latest = latest;
        self.head_of_line_known = head_of_line_known;
        for (_, tx) in self.txs.range_mut(..latest) {
            tx.mined_at.get_or_insert(head);
        }
        let highest_out = self.txs.keys().next_back().map_or(0, |nonce| nonce + 1);
        match (self.next, pending) {
            (None, Some(pending)) => self.next = Some(pending.max(latest).max(highest_out)),
            (Some(_), Some(pending)) if self.resync => self.next = Some(pending.max(latest).max(highest_out)),
            (Some(next), _) => self.next = Some(next.max(latest)),
            (None, None) => {}
        }
        if let Some(pending) = pending {
            self.pending = pending.max(latest);
            self.resync = false;
        }
    }

    /// Whether the counts have been read at least once.
    pub(super) fn ready(&self) -> bool {
        self.next.is_some()
    }

    /// Whether the node holds no unmined transaction of this key from
    /// before start-up (the pending count read then is mined).
    pub(super) fn drained(&self) -> bool {
        self.ready() && self.pending <= self.latest
    }

    /// The nonces new transactions take, lowest first: a hole below our
    /// next nonce (one whose send the node refused), then the next ones.
    pub(super) fn free_nonces(&self, count: usize) -> Vec<u64> {
        let Some(next) = self.next else { return Vec::new() };
        let holes = (self.latest.max(self.pending).min(next)..next).filter(|nonce| !self.txs.contains_key(nonce));
        holes.chain(next..).take(count).collect()
    }

    /// Transactions to send again at `head`: the head of the line if the
    /// node dropped it; and when none of ours has been mined for
    /// `after_blocks` blocks (the line is stuck: its fees are too low),
    /// every unmined one, to be replaced with higher fees. Transactions
    /// that merely wait behind others that are being mined are left alone.
    pub(super) fn resends(&self, head: u64, after_blocks: u64) -> Vec<Resend> {
        let mut resends = Vec::new();
        let first = self.head_of_line().map(|(nonce, _)| nonce);
        let stuck = head >= self.progress_head + after_blocks;
        for (&nonce, tx) in self.txs.range(self.latest..) {
            if tx.mined_at.is_some() {
                continue;
            }
            if !self.head_of_line_known && Some(nonce) == first {
                resends.push(Resend::Dropped(nonce));
            } else if stuck && head >= tx.sent_head + after_blocks {
                resends.push(Resend::Stuck(nonce));
            }
        }
        resends
    }

    /// Transactions out and not yet mined.
    pub(super) fn in_flight(&self) -> usize {
        self.txs.values().filter(|tx| tx.mined_at.is_none()).count()
    }

    /// Whether a transaction of this key not yet mined carries blobs.
    pub(super) fn carries_blobs(&self) -> bool {
        self.txs.values().any(|tx| tx.mined_at.is_none() && tx.blobs.is_some())
    }

    /// A transaction (or a new version of one) went out with `nonce`.
    pub(super) fn sent(&mut self, nonce: u64, tx: Tx) {
        let first = self.head_of_line().map(|(first, _)| first);
        if first.is_none_or(|first| first == nonce) {
            self.head_of_line_known = true;
        }
        // The line starts moving now (a first transaction, or a stuck one
        // replaced): it has `after_blocks` from here.
        if first.is_none() || self.txs.contains_key(&nonce) {
            self.progress_head = self.progress_head.max(tx.sent_head);
        }
        self.next = Some(self.next.map_or(nonce + 1, |next| next.max(nonce + 1)));
        match self.txs.get_mut(&nonce) {
            Some(out) => {
                out.fees = tx.fees;
                out.raw = tx.raw;
                out.sent_head = tx.sent_head;
                // A dropped transaction sent again keeps its hash.
                for hash in tx.hashes {
                    if !out.hashes.contains(&hash) {
                        out.hashes.push(hash);
                    }
                }
            }
            None => {
                self.txs.insert(nonce, tx);
            }
        }
    }

    /// The node said a nonce is too low: re-read the counts before more.
    pub(super) fn resync(&mut self) {
        self.resync = true;
    }

    /// The transaction with `nonce`.
    pub(super) fn tx(&self, nonce: u64) -> Option<&Tx> {
        self.txs.get(&nonce)
    }

    /// `job` left the transaction with `nonce` (settled or given up).
    pub(super) fn resolve(&mut self, nonce: u64, job: JobId) {
        if let Some(tx) = self.txs.get_mut(&nonce) {
            tx.jobs.retain(|id| *id != job);
        }
    }

    /// Mined transactions whose block the event cursor has passed
    /// (`cursor` is the next block to read): their events are all known.
    pub(super) fn finished(&self, cursor: u64) -> Vec<u64> {
        self.txs.iter().filter(|(_, tx)| tx.mined_at.is_some_and(|at| at < cursor)).map(|(nonce, _)| *nonce).collect()
    }

    /// Forgets a finished transaction; returns it.
    pub(super) fn remove(&mut self, nonce: u64) -> Option<Tx> {
        self.txs.remove(&nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        let signer = alloy::signers::local::PrivateKeySigner::random();
        Sender::new(signer.address(), EthereumWallet::from(signer))
    }

    fn tx(job: u8, head: u64) -> Tx {
        Tx {
            jobs: vec![JobId([job; 32])],
            carried: 1,
            single: None,
            calldata: Bytes::new(),
            gas: 100_000,
            share: 100_000,
            fees: Fees::Legacy { gas_price: 1 },
            hashes: vec![B256::repeat_byte(job)],
            raw: Bytes::new(),
            blobs: None,
            sent_head: head,
            mined_at: None,
        }
    }

    #[test]
    fn nonces_come_from_the_node_once_then_from_the_lane() {
        let mut lane = sender();
        assert!(lane.needs_pending());
        assert!(lane.free_nonces(2).is_empty(), "nothing before the first count");
        lane.observe(10, 4, Some(6), true);
        assert!(!lane.needs_pending());
        assert_eq!(lane.free_nonces(3), [6, 7, 8], "transactions from before a restart are left alone");
        assert!(!lane.drained(), "two of them are still out");
        lane.sent(6, tx(1, 10));
        lane.sent(7, tx(2, 10));
        assert_eq!(lane.free_nonces(1), [8]);
        assert_eq!(lane.in_flight(), 2);
        lane.observe(11, 6, None, true);
        assert!(lane.drained());
    }

    #[test]
    fn a_mined_transaction_is_finished_once_the_event_cursor_passes_it() {
        let mut lane = sender();
        lane.observe(10, 0, Some(0), true);
        lane.sent(0, tx(1, 10));
        lane.sent(1, tx(2, 10));
        lane.observe(11, 1, None, true);
        assert_eq!(lane.in_flight(), 1);
        assert_eq!(lane.head_of_line().map(|(nonce, _)| nonce), Some(1));
        assert!(lane.finished(11).is_empty(), "block 11's events are not read yet");
        assert_eq!(lane.finished(12), [0]);
        let done = lane.remove(0).unwrap();
        assert_eq!(done.jobs, [JobId([1; 32])]);
    }

    #[test]
    fn a_dropped_head_of_the_line_is_sent_again() {
        let mut lane = sender();
        lane.observe(10, 0, Some(0), true);
        lane.sent(0, tx(1, 10));
        lane.sent(1, tx(2, 10));
        lane.sent(2, tx(3, 10));
        // Nonce 0 is mined; the node no longer knows nonce 1.
        lane.observe(11, 1, None, false);
        assert_eq!(lane.resends(11, 3), [Resend::Dropped(1)]);
        lane.sent(1, tx(2, 11));
        assert!(lane.resends(11, 3).is_empty());
    }

    #[test]
    fn a_nonce_whose_send_was_refused_is_reused() {
        let mut lane = sender();
        lane.observe(10, 0, Some(0), true);
        lane.sent(1, tx(2, 10));
        assert_eq!(lane.free_nonces(2), [0, 2]);
    }

    #[test]
    fn a_transaction_unmined_for_n_blocks_is_replaced() {
        let mut lane = sender();
        lane.observe(10, 0, Some(0), true);
        lane.sent(0, tx(1, 10));
        lane.observe(12, 0, None, true);
        assert!(lane.resends(12, 3).is_empty());
        lane.observe(13, 0, None, true);
        assert_eq!(lane.resends(13, 3), [Resend::Stuck(0)]);
        let mut replacement = tx(1, 13);
        replacement.hashes = vec![B256::repeat_byte(9)];
        lane.sent(0, replacement);
        assert_eq!(lane.tx(0).unwrap().hashes, [B256::repeat_byte(1), B256::repeat_byte(9)]);
        lane.sent(0, tx(9, 13));
        assert_eq!(lane.tx(0).unwrap().hashes.len(), 2, "the same signed bytes sent again add no hash");
        assert!(lane.resends(13, 3).is_empty());
    }

    #[test]
    fn transactions_waiting_behind_mined_ones_are_not_replaced() {
        let mut lane = sender();
        lane.observe(10, 0, Some(0), true);
        for nonce in 0..6 {
            lane.sent(nonce, tx(nonce as u8, 10));
        }
        // Two mined at block 13: the line moves, nothing is stuck.
        lane.observe(13, 2, None, true);
        assert!(lane.resends(13, 3).is_empty());
        lane.observe(15, 2, None, true);
        assert!(lane.resends(15, 3).is_empty());
        // Three blocks without one of ours: every unmined one is replaced.
        lane.observe(16, 2, None, true);
        let stuck: Vec<Resend> = (2..6).map(Resend::Stuck).collect();
        assert_eq!(lane.resends(16, 3), stuck);
    }

    #[test]
    fn a_nonce_too_low_re_reads_the_pending_count() {
        let mut lane = sender();
        lane.observe(10, 0, Some(0), true);
        assert_eq!(lane.free_nonces(1), [0]);
        lane.resync();
        assert!(lane.needs_pending());
        lane.observe(11, 5, Some(5), true);
        assert_eq!(lane.free_nonces(1), [5]);
    }
}
