//! The vocabulary of a relay round: what the actor asks of it ([`Plan`])
//! and what it reports back ([`Event`]), shared by the reads ([`super::io`]),
//! the sends ([`super::send`]) and the actor.

use super::batch::Item;
use super::fees::{FeeError, Fees};
use super::gas::{GasBook, GasKey};
use super::senders::{Sender, Tx};
use crate::config;
use crate::job::JobId;
use alloy::primitives::{Address, Bytes, B256, U256};
use std::collections::HashSet;
use std::sync::Arc;

/// What a round should do.
#[derive(Debug)]
pub(super) struct Plan {
    /// The chain ID, once known.
    pub(super) chain_id: Option<u64>,
    /// The block gas limit, once known (with which keys settle onchain jobs).
    pub(super) block_gas_limit: Option<u64>,
    /// The next block whose events to read (`None`: start at the head).
    pub(super) cursor: Option<u64>,
    /// The head the last round read.
    pub(super) last_head: Option<u64>,
    /// The fees last read.
    pub(super) fees: Option<Result<Fees, FeeError>>,
    /// Whether fees and balances are due to be read again (on a new head,
    /// at most once a [`super::REFRESH_EVERY`]: a node that mines a block
    /// per transaction would otherwise spend a third of its time on them).
    pub(super) refresh: bool,
    /// Copies of the relayer's keys and their transactions.
    pub(super) senders: Vec<Sender>,
    /// Consumers whose ordered lane needs its first nonce.
    pub(super) start_lanes: Vec<Address>,
    /// Jobs awaiting a verdict: the state tells, or a simulation (`true`).
    pub(super) verdicts: Vec<(JobId, bool, Item)>,
    /// Jobs to send, in order.
    pub(super) ready: Vec<Item>,
    /// Of those, the ones that go alone with the whole per-item share.
    pub(super) solo: HashSet<JobId>,
    /// What settlements cost so far.
    pub(super) book: GasBook,
    /// The `[chain]` section.
    pub(super) config: Arc<config::Chain>,
}

/// What a round found or did, for the actor to apply in order.
#[derive(Debug, Clone)]
pub(super) enum Event {
    /// The chain ID.
    ChainId(u64),
    /// The block gas limit, and which keys may settle onchain jobs.
    Setup { block_gas_limit: u64, onchain: Vec<bool> },
    /// The head block of this round.
    Head(u64),
    /// A job's result was accepted (`JobCompleted`) by transaction `tx`.
    Completed { id: JobId, tx: B256, block: u64 },
    /// A batch item was not settled (`ResultSkipped`).
    Skipped { id: JobId, tx: B256, reason: String },
    /// The events are read up to this block (exclusive).
    Cursor(u64),
    /// The fees to offer at this head.
    Fees(Result<Fees, FeeError>),
    /// What blob transactions offer per blob gas (read when there are
    /// blobs to send).
    BlobFee(Result<u128, FeeError>),
    /// A key's mined transaction count at `head` (and pending count, when
    /// read), whether the node knows its first unmined transaction, and its
    /// balance.
    Counts { sender: usize, head: u64, latest: u64, pending: Option<u64>, known: bool, balance: U256 },
    /// A mined transaction whose events are all read, with its receipt if
    /// it was `read` (`None`: no version of it is known to the node any
    /// more, e.g. after a reorg).
    Receipt { sender: usize, nonce: u64, read: bool, receipt: Option<Mined> },
    /// An ordered lane's first nonce.
    LaneStart(Address, u64),
    /// A job's onchain state ([`job_state`]).
    State { id: JobId, state: u8 },
    /// The node's estimate for one result of a kind sent alone.
    Learned { key: GasKey, estimate: u64, calldata: Bytes, item_bytes: usize },
    /// A submission or simulation was refused: counts towards dead-lettering.
    Failed { id: JobId, reason: String },
    /// A transaction (or a new version of one) went out.
    Sent { sender: usize, nonce: u64, tx: Box<Tx>, replaced: bool },
    /// The node refused a send; its jobs go back, nothing counted.
    SendRefused { sender: usize, jobs: Vec<JobId>, reason: String, nonce_too_low: bool },
    /// The base fee is above the ceiling: nothing can be replaced.
    AtCeiling { sender: usize, nonce: u64 },
    /// The node is unreachable: back off.
    Unreachable(String),
}

/// What a mined transaction's receipt says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mined {
    /// The version that was mined.
    pub(super) tx: B256,
    /// Whether it succeeded.
    pub(super) success: bool,
    /// Gas used.
    pub(super) gas_used: u64,
    /// Wei paid per gas.
    pub(super) price: u128,
}
