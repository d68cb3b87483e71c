//! Ordered relay: per consumer, results go onchain in nonce order.
//!
//! A lane starts at the consumer's `getNextNonce()` (read once, when its
//! first ordered job arrives, as InfinityVM does). Executed jobs wait in
//! the lane until their nonce is the next one; then exactly one is in
//! flight until it is confirmed (or found cancelled), and the lane moves
//! on. A nonce that failed to execute never arrives, so the lane waits on
//! it — that is the "blocked" state — until the nonce is submitted again
//! and succeeds.

use crate::job::JobId;
use alloy::primitives::Address;
use std::collections::{BTreeMap, HashMap};

/// One consumer's lane.
#[derive(Debug, Default)]
struct Lane {
    /// The nonce that goes next; `None` until read from the consumer.
    next: Option<u64>,
    /// Executed jobs waiting for their turn, by nonce.
    waiting: BTreeMap<u64, JobId>,
    /// The nonce released and not yet settled.
    released: Option<u64>,
}

/// What a consumer's lane looks like, for `coproc_getPendingJobs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LaneView {
    /// Nonces executed and waiting (including the one in flight).
    pub awaiting: Vec<u64>,
    /// The nonce the lane waits for while later ones are ready.
    pub blocked_on: Option<u64>,
}

/// Every consumer's lane.
#[derive(Debug, Default)]
pub(super) struct Lanes {
    lanes: HashMap<Address, Lane>,
}

impl Lanes {
    /// Adds an executed ordered job.
    pub(super) fn add(&mut self, consumer: Address, nonce: u64, id: JobId) {
        self.lanes.entry(consumer).or_default().waiting.insert(nonce, id);
    }

    /// Consumers whose first nonce must still be read from the chain.
    pub(super) fn unstarted(&self) -> Vec<Address> {
        self.lanes.iter().filter(|(_, lane)| lane.next.is_none()).map(|(consumer, _)| *consumer).collect()
    }

    /// Sets a lane's next nonce (read from `Consumer.getNextNonce()`).
    pub(super) fn start(&mut self, consumer: Address, next: u64) {
        if let Some(lane) = self.lanes.get_mut(&consumer) {
            lane.next.get_or_insert(next);
        }
    }

    /// Jobs whose turn has come. Each is released once, until settled.
    /// A job whose nonce is already behind the lane (settled before a
    /// restart, say) is released too: the chain tells it is settled.
    pub(super) fn release(&mut self) -> Vec<JobId> {
        let mut ready = Vec::new();
        for lane in self.lanes.values_mut() {
            let Some(next) = lane.next else { continue };
            while let Some((&nonce, &id)) = lane.waiting.first_key_value() {
                if nonce < next {
                    lane.waiting.remove(&nonce);
                    ready.push(id);
                } else {
                    break;
                }
            }
            if lane.released.is_none() {
                if let Some(id) = lane.waiting.get(&next) {
                    lane.released = Some(next);
                    ready.push(*id);
                }
            }
        }
        ready
    }

    /// A released job settled (confirmed or cancelled): the lane moves on.
    pub(super) fn settled(&mut self, consumer: Address, nonce: u64) {
        if let Some(lane) = self.lanes.get_mut(&consumer) {
            lane.waiting.remove(&nonce);
            if lane.released == Some(nonce) {
                lane.released = None;
                lane.next = Some(nonce + 1);
            }
        }
    }

    /// A released job left the relay without settling (dead-lettered): the
    /// lane stays on its nonce, blocked, until the job is retried.
    pub(super) fn stalled(&mut self, consumer: Address, nonce: u64) {
        if let Some(lane) = self.lanes.get_mut(&consumer) {
            lane.waiting.remove(&nonce);
            if lane.released == Some(nonce) {
                lane.released = None;
            }
        }
    }

    /// A consumer's lane.
    pub(super) fn view(&self, consumer: &Address) -> LaneView {
        let Some(lane) = self.lanes.get(consumer) else { return LaneView::default() };
        LaneView { awaiting: lane.waiting.keys().copied().collect(), blocked_on: blocked_on(lane) }
    }

    /// Consumers whose lane is blocked.
    pub(super) fn blocked(&self) -> usize {
        self.lanes.values().filter(|lane| blocked_on(lane).is_some()).count()
    }
}

fn blocked_on(lane: &Lane) -> Option<u64> {
    let next = lane.next?;
    let waiting_later = lane.waiting.keys().next_back().is_some_and(|&last| last > next);
    (lane.released.is_none() && !lane.waiting.contains_key(&next) && waiting_later).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Address = Address::repeat_byte(7);

    fn id(n: u8) -> JobId {
        JobId([n; 32])
    }

    #[test]
    fn jobs_go_one_at_a_time_in_nonce_order() {
        let mut lanes = Lanes::default();
        lanes.add(C, 2, id(2));
        lanes.add(C, 1, id(1));
        assert!(lanes.release().is_empty(), "nothing goes before the lane knows its first nonce");
        assert_eq!(lanes.unstarted(), vec![C]);
        lanes.start(C, 1);
        assert_eq!(lanes.release(), vec![id(1)]);
        assert!(lanes.release().is_empty(), "one in flight at a time");
        lanes.settled(C, 1);
        assert_eq!(lanes.release(), vec![id(2)]);
    }

    #[test]
    fn a_missing_nonce_blocks_the_later_ones_until_it_arrives() {
        let mut lanes = Lanes::default();
        lanes.add(C, 3, id(3));
        lanes.start(C, 2);
        assert!(lanes.release().is_empty());
        assert_eq!(lanes.view(&C), LaneView { awaiting: vec![3], blocked_on: Some(2) });
        assert_eq!(lanes.blocked(), 1);
        lanes.add(C, 2, id(2));
        assert_eq!(lanes.release(), vec![id(2)]);
        assert_eq!(lanes.view(&C).blocked_on, None);
        lanes.settled(C, 2);
        assert_eq!(lanes.release(), vec![id(3)]);
    }

    #[test]
    fn a_dead_lettered_nonce_keeps_the_lane_blocked_until_retried() {
        let mut lanes = Lanes::default();
        lanes.add(C, 0, id(0));
        lanes.add(C, 1, id(1));
        lanes.start(C, 0);
        assert_eq!(lanes.release(), vec![id(0)]);
        lanes.stalled(C, 0);
        assert!(lanes.release().is_empty());
        assert_eq!(lanes.view(&C).blocked_on, Some(0));
        lanes.add(C, 0, id(0));
        assert_eq!(lanes.release(), vec![id(0)]);
    }

    #[test]
    fn nonces_behind_the_lane_are_released_at_once() {
        let mut lanes = Lanes::default();
        lanes.add(C, 4, id(4));
        lanes.start(C, 9);
        assert_eq!(lanes.release(), vec![id(4)]);
    }
}
