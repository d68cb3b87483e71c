//! A relayer key's nonce lane: the transactions it has out, by nonce.
//!
//! Nonces are assigned here, not read from the node per transaction. The
//! node's two counts for the account, read once a round at a known block,
//! tell the rest:
//! - `latest` (mined): every transaction below it is mined; its outcome is
//!   read from the JobManager's events once the event cursor has passed
//!   the block where the count first showed it;
//! - `pending` (mined + queued without a gap): a value below our next
//!   nonce points at the first missing transaction — dropped by the node,
//!   or never accepted — which is sent again (or the nonce is reused).

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
    /// The call.
    pub(super) calldata: Bytes,
    /// Its gas limit.
    pub(super) gas: u64,
    /// The fees of its latest version.
    pub(super) fees: Fees,
    /// Every version's hash (replacements add one).
    pub(super) hashes: Vec<B256>,
    /// The latest version, signed (sent again if the node drops it).
    pub(super) raw: Bytes,
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
            txs: BTreeMap::new(),
        }
    }

    /// The node's counts for the account at block `head`.
    pub(super) fn observe(&mut self, head: u64, latest: u64, pending: u64) {
        self.latest = latest;
        self.pending = pending.max(latest);
        for (_, tx) in self.txs.range_mut(..latest) {
            tx.mined_at.get_or_insert(head);
        }
        let highest_out = self.txs.keys().next_back().map_or(0, |nonce| nonce + 1);
        match self.next {
            None => self.next = Some(self.pending.max(highest_out)),
            Some(_) if self.resync => self.next = Some(self.pending.max(highest_out)),
            Some(next) => self.next = Some(next.max(latest)),
        }
        self.resync = false;
    }

    /// Whether the counts have been read at least once.
    pub(super) fn ready(&self) -> bool {
        self.next.is_some()
    }

    /// The nonces new transactions take, lowest first: a hole the node
    /// reports (a transaction it never took), then the next ones.
    pub(super) fn free_nonces(&self, count: usize) -> Vec<u64> {
        let Some(next) = self.next else { return Vec::new() };
        let holes = (self.pending.min(next)..next).filter(|nonce| !self.txs.contains_key(nonce));
        holes.chain(next..).take(count).collect()
    }

    /// Transactions to send again at `head`: the first missing one if the
    /// node dropped it, and those unmined for `after_blocks` blocks.
    pub(super) fn resends(&self, head: u64, after_blocks: u64) -> Vec<Resend> {
        let mut resends = Vec::new();
        let gap = self.next.is_some_and(|next| self.pending < next);
        for (&nonce, tx) in self.txs.range(self.latest..) {
            if tx.mined_at.is_some() {
                continue;
            }
            if gap && nonce == self.pending {
                resends.push(Resend::Dropped(nonce));
            } else if head >= tx.sent_head + after_blocks {
                resends.push(Resend::Stuck(nonce));
            }
        }
        resends
    }

    /// Transactions out and not yet mined.
    pub(super) fn in_flight(&self) -> usize {
        self.txs.values().filter(|tx| tx.mined_at.is_none()).count()
    }

    /// A transaction (or a new version of one) went out with `nonce`.
    pub(super) fn sent(&mut self, nonce: u64, tx: Tx) {
        self.next = Some(self.next.map_or(nonce + 1, |next| next.max(nonce + 1)));
        match self.txs.get_mut(&nonce) {
            Some(out) => {
                out.fees = tx.fees;
                out.raw = tx.raw;
                out.sent_head = tx.sent_head;
                out.hashes.extend(tx.hashes);
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
            calldata: Bytes::new(),
            gas: 100_000,
            fees: Fees::Legacy { gas_price: 1 },
            hashes: vec![B256::repeat_byte(job)],
            raw: Bytes::new(),
            sent_head: head,
            mined_at: None,
        }
    }

    #[test]
    fn nonces_come_from_the_node_once_then_from_the_lane() {
        let mut lane = sender();
        assert!(lane.free_nonces(2).is_empty(), "nothing before the first count");
        lane.observe(10, 4, 6);
        assert_eq!(lane.free_nonces(3), [6, 7, 8], "transactions from before a restart are left alone");
        lane.sent(6, tx(1, 10));
        lane.sent(7, tx(2, 10));
        assert_eq!(lane.free_nonces(1), [8]);
        assert_eq!(lane.in_flight(), 2);
    }

    #[test]
    fn a_mined_transaction_is_finished_once_the_event_cursor_passes_it() {
        let mut lane = sender();
        lane.observe(10, 0, 0);
        lane.sent(0, tx(1, 10));
        lane.sent(1, tx(2, 10));
        lane.observe(11, 1, 2);
        assert_eq!(lane.in_flight(), 1);
        assert!(lane.finished(11).is_empty(), "block 11's events are not read yet");
        assert_eq!(lane.finished(12), [0]);
        let done = lane.remove(0).unwrap();
        assert_eq!(done.jobs, [JobId([1; 32])]);
    }

    #[test]
    fn a_dropped_transaction_is_sent_again_and_a_never_taken_nonce_is_reused() {
        let mut lane = sender();
        lane.observe(10, 0, 0);
        lane.sent(0, tx(1, 10));
        lane.sent(1, tx(2, 10));
        lane.sent(2, tx(3, 10));
        // The node lost nonce 1: pending stops at it.
        lane.observe(11, 1, 1);
        assert_eq!(lane.resends(11, 3), [Resend::Dropped(1)]);
        // A nonce the node never took (its send was refused) is a hole.
        let mut lane = sender();
        lane.observe(10, 0, 0);
        lane.sent(1, tx(2, 10));
        lane.observe(11, 0, 0);
        assert_eq!(lane.free_nonces(2), [0, 2]);
    }

    #[test]
    fn a_transaction_unmined_for_n_blocks_is_replaced() {
        let mut lane = sender();
        lane.observe(10, 0, 0);
        lane.sent(0, tx(1, 10));
        lane.observe(12, 0, 1);
        assert!(lane.resends(12, 3).is_empty());
        lane.observe(13, 0, 1);
        assert_eq!(lane.resends(13, 3), [Resend::Stuck(0)]);
        let mut replacement = tx(1, 13);
        replacement.hashes = vec![B256::repeat_byte(9)];
        lane.sent(0, replacement);
        assert_eq!(lane.tx(0).unwrap().hashes, [B256::repeat_byte(1), B256::repeat_byte(9)]);
        assert!(lane.resends(13, 3).is_empty());
    }

    #[test]
    fn a_nonce_too_low_re_reads_the_counts() {
        let mut lane = sender();
        lane.observe(10, 0, 0);
        assert_eq!(lane.free_nonces(1), [0]);
        lane.resync();
        lane.observe(11, 5, 5);
        assert_eq!(lane.free_nonces(1), [5]);
    }
}
