//! CLOB: a central limit order book with price-time priority, run as a
//! stateful coprocessor app (InfinityVM's `StatefulConsumer` pattern).
//!
//! # Guest input and output
//! - Onchain input: `abi.encode(StatefulAppOnchainInput{bytes32
//!   inputStateRoot; bytes onchainInput})`, where `onchainInput` is a batch
//!   of orders (see [Batch](#batch)).
//! - Offchain input: the book state (see [State](#state)).
//! - The guest checks `keccak256(state) == inputStateRoot`, applies the batch
//!   in order, and outputs `abi.encode(StatefulAppResult{bytes32
//!   outputStateRoot; bytes result})` where `outputStateRoot =
//!   keccak256(new state)` and `result` is the fills (see [Fills](#fills)).
//! - A root mismatch or any malformed input is an error (the guest panics,
//!   exit 101). Nothing is output for a rejected batch.
//!
//! # Matching rules
//! - Bids: the best is the highest price; asks: the lowest. At equal prices
//!   the earlier order (arrival order) goes first.
//! - An incoming limit order (the taker) trades against the best opposite
//!   order while the prices cross (a buy while `ask <= limit`, a sell while
//!   `bid >= limit`), at the resting (maker) order's price, with partial
//!   fills. Whatever is left rests at the taker's limit price, behind the
//!   orders already there.
//! - A cancel removes the resting order with that id; a cancel of an id that
//!   is not resting (never placed, filled, or cancelled) does nothing.
//! - A limit order whose id is already resting, or whose quantity is zero,
//!   is an error that rejects the whole batch. Ids of orders that are no
//!   longer resting may be reused.
//!
//! # Encodings (all integers little-endian)
//! ## Batch
//! `count: u32`, then `count` records, with no trailing bytes:
//! - limit buy: `0u8 ‖ id: u64 ‖ price: u32 ‖ quantity: u32` (17 bytes)
//! - limit sell: `1u8 ‖ id: u64 ‖ price: u32 ‖ quantity: u32` (17 bytes)
//! - cancel: `2u8 ‖ id: u64` (9 bytes)
//!
//! ## State
//! `bid_count: u32 ‖ bid_count × order ‖ ask_count: u32 ‖ ask_count × order`,
//! where `order = id: u64 ‖ price: u32 ‖ quantity: u32` (16 bytes), each side
//! in priority order (bids by price descending, asks by price ascending, and
//! within a price by arrival). The decoder accepts only this canonical form:
//! sorted sides, quantities above zero, unique ids, a book that is not
//! crossed (best bid < best ask), no trailing bytes. So one book has exactly
//! one encoding, and the empty book is 8 zero bytes ([`EMPTY_STATE`]).
//!
//! ## Fills
//! `count: u32`, then `count` records of 25 bytes, in the order they
//! happened: `taker_side: u8 (0 buy, 1 sell) ‖ taker_id: u64 ‖ maker_id: u64
//! ‖ price: u32 ‖ quantity: u32`.
//!
//! # Layout
//! - [`Book`]: the book and its matching ([`Book::apply`]), [`apply_batch`].
//! - Codecs: [`Book::encode`]/[`Book::decode`], [`encode_orders`]/
//!   [`decode_orders`], [`encode_fills`]/[`decode_fills`].
//! - The guest's job: [`run`]; the host-side step without hashing: [`step`].
//! - Test and benchmark load: [`OrderGenerator`], [`generate_orders`].
#![no_std]

extern crate alloc;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use coprocessor_abi::{AbiError, Word};
use core::fmt;

/// A 32-byte hash function (the guest passes the Keccak-256 precompile).
pub type HashFn = fn(&[u8]) -> [u8; 32];

/// The encoding of the empty book.
pub const EMPTY_STATE: [u8; 8] = [0; 8];

/// Bytes per limit record in a batch.
pub const LIMIT_RECORD_BYTES: usize = 17;
/// Bytes per cancel record in a batch.
pub const CANCEL_RECORD_BYTES: usize = 9;
/// Bytes per resting order in the state.
pub const STATE_ORDER_BYTES: usize = 16;
/// Bytes per fill.
pub const FILL_BYTES: usize = 25;

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// A bid.
    Buy = 0,
    /// An ask.
    Sell = 1,
}

/// One instruction in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// A limit order: trade up to `quantity` at `price` or better, rest the
    /// remainder.
    Limit {
        /// Buy or sell.
        side: Side,
        /// The order id; must not be resting already.
        id: u64,
        /// The limit price in ticks.
        price: u32,
        /// The quantity in lots (> 0).
        quantity: u32,
    },
    /// Removes the resting order `id`, if there is one.
    Cancel {
        /// The order to remove.
        id: u64,
    },
}

/// One trade between an incoming order (taker) and a resting one (maker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// The taker's side.
    pub taker_side: Side,
    /// The incoming order.
    pub taker: u64,
    /// The resting order.
    pub maker: u64,
    /// The maker's price.
    pub price: u32,
    /// The traded quantity (> 0).
    pub quantity: u32,
}

/// A resting order inside a price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resting {
    /// The order id.
    pub id: u64,
    /// The quantity left (> 0).
    pub quantity: u32,
}

/// Why a batch, a state or an input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The onchain input is not `abi.encode(StatefulAppOnchainInput)`.
    Abi(AbiError),
    /// `keccak256(offchain state)` differs from `inputStateRoot`.
    StateRootMismatch,
    /// A batch ends in the middle of a record (at byte `offset`).
    BatchTruncated {
        /// Where the incomplete record or count starts.
        offset: usize,
    },
    /// A batch record has an unknown kind byte.
    BadOrderKind {
        /// The record's index.
        index: usize,
        /// The kind byte.
        kind: u8,
    },
    /// Bytes follow the last record of a batch or fill list.
    TrailingBytes {
        /// Where they start.
        offset: usize,
    },
    /// A limit order has quantity zero.
    ZeroQuantity {
        /// The order id.
        id: u64,
    },
    /// A limit order reuses the id of a resting order.
    DuplicateId {
        /// The order id.
        id: u64,
    },
    /// The state is not the canonical encoding of a valid book.
    BadState {
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Abi(e) => e.fmt(f),
            Error::StateRootMismatch => {
                write!(f, "the offchain state does not hash to inputStateRoot")
            }
            Error::BatchTruncated { offset } => write!(f, "batch truncated at byte {offset}"),
            Error::BadOrderKind { index, kind } => {
                write!(f, "order {index} has unknown kind {kind}")
            }
            Error::TrailingBytes { offset } => write!(f, "trailing bytes at offset {offset}"),
            Error::ZeroQuantity { id } => write!(f, "order {id} has quantity zero"),
            Error::DuplicateId { id } => write!(f, "order id {id} is already resting"),
            Error::BadState { reason } => write!(f, "invalid state: {reason}"),
        }
    }
}

impl From<AbiError> for Error {
    fn from(e: AbiError) -> Self {
        Error::Abi(e)
    }
}

/// Price levels of one side: price → orders in arrival order.
type Levels = BTreeMap<u32, VecDeque<Resting>>;

/// The order book. Two books are equal exactly when they hold the same
/// orders in the same priority, which is also when their encodings are equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    bids: Levels,
    asks: Levels,
    /// Resting order id → (side, price), for cancels and duplicate checks.
    index: BTreeMap<u64, (Side, u32)>,
}

impl Book {
    /// The empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of resting orders.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no order rests.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The highest bid price.
    pub fn best_bid(&self) -> Option<u32> {
        self.bids.keys().next_back().copied()
    }

    /// The lowest ask price.
    pub fn best_ask(&self) -> Option<u32> {
        self.asks.keys().next().copied()
    }

    /// The resting orders of `side` in priority order, as (price, order).
    pub fn orders(&self, side: Side) -> impl Iterator<Item = (u32, Resting)> + '_ {
        let (bids, asks) = match side {
            Side::Buy => (Some(self.bids.iter().rev().flat_map(level_orders)), None),
            Side::Sell => (None, Some(self.asks.iter().flat_map(level_orders))),
        };
        bids.into_iter().flatten().chain(asks.into_iter().flatten())
    }

    /// Whether order `id` rests.
    pub fn contains(&self, id: u64) -> bool {
        self.index.contains_key(&id)
    }

    /// Applies one order, appending its fills to `fills`. On error the book
    /// is unchanged.
    pub fn apply(&mut self, order: &Order, fills: &mut Vec<Fill>) -> Result<(), Error> {
        match *order {
            Order::Limit { side, id, price, quantity } => self.limit(side, id, price, quantity, fills),
            Order::Cancel { id } => {
                self.cancel(id);
                Ok(())
            }
        }
    }

    fn limit(&mut self, side: Side, id: u64, price: u32, quantity: u32, fills: &mut Vec<Fill>) -> Result<(), Error> {
        if quantity == 0 {
            return Err(Error::ZeroQuantity { id });
        }
        if self.index.contains_key(&id) {
            return Err(Error::DuplicateId { id });
        }
        let mut left = quantity;
        while left > 0 {
            // The best opposite level, if it crosses the limit.
            let entry = match side {
                Side::Buy => self.asks.first_entry().filter(|e| *e.key() <= price),
                Side::Sell => self.bids.last_entry().filter(|e| *e.key() >= price),
            };
            let Some(mut entry) = entry else { break };
            let level_price = *entry.key();
            let level = entry.get_mut();
            while left > 0 {
                let Some(maker) = level.front_mut() else {
                    break;
                };
                let traded = left.min(maker.quantity);
                maker.quantity -= traded;
                left -= traded;
                fills.push(Fill { taker_side: side, taker: id, maker: maker.id, price: level_price, quantity: traded });
                if maker.quantity == 0 {
                    let maker_id = maker.id;
                    level.pop_front();
                    self.index.remove(&maker_id);
                }
            }
            if level.is_empty() {
                entry.remove();
            }
        }
        if left > 0 {
            self.rest(side, price, Resting { id, quantity: left });
            self.index.insert(id, (side, price));
        }
        Ok(())
    }

    /// Queues `order` at the back of its price level (time priority).
    fn rest(&mut self, side: Side, price: u32, order: Resting) {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        levels.entry(price).or_default().push_back(order);
    }

    /// Removes order `id` if it rests; returns whether it did.
    pub fn cancel(&mut self, id: u64) -> bool {
        let Some((side, price)) = self.index.remove(&id) else {
            return false;
        };
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if let Some(level) = levels.get_mut(&price) {
            if let Some(pos) = level.iter().position(|o| o.id == id) {
                level.remove(pos);
            }
            if level.is_empty() {
                levels.remove(&price);
            }
        }
        true
    }

    /// The canonical state encoding (see the crate docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.len() * STATE_ORDER_BYTES);
        for side in [Side::Buy, Side::Sell] {
            let levels = match side {
                Side::Buy => &self.bids,
                Side::Sell => &self.asks,
            };
            let count: usize = levels.values().map(VecDeque::len).sum();
            out.extend_from_slice(&(count as u32).to_le_bytes());
            for (price, order) in self.orders(side) {
                out.extend_from_slice(&order.id.to_le_bytes());
                out.extend_from_slice(&price.to_le_bytes());
                out.extend_from_slice(&order.quantity.to_le_bytes());
            }
        }
        out
    }

    /// Decodes a state, accepting only the canonical encoding of a valid
    /// book (see the crate docs).
    pub fn decode(bytes: &[u8]) -> Result<Book, Error> {
        let bad = |reason| Error::BadState { reason };
        let mut r = Reader { bytes, pos: 0 };
        let mut book = Book::new();
        for side in [Side::Buy, Side::Sell] {
            let count = r.u32().ok_or(bad("truncated count"))? as usize;
            if count > r.remaining() / STATE_ORDER_BYTES {
                return Err(bad("count exceeds the data"));
            }
            let mut last: Option<u32> = None;
            for _ in 0..count {
                let (id, price, quantity) = (r.u64(), r.u32(), r.u32());
                let (Some(id), Some(price), Some(quantity)) = (id, price, quantity) else {
                    return Err(bad("truncated order"));
                };
                if quantity == 0 {
                    return Err(bad("zero quantity"));
                }
                let in_order = match (side, last) {
                    (_, None) => true,
                    (Side::Buy, Some(prev)) => price <= prev,
                    (Side::Sell, Some(prev)) => price >= prev,
                };
                if !in_order {
                    return Err(bad("side not in priority order"));
                }
                last = Some(price);
                if book.index.insert(id, (side, price)).is_some() {
                    return Err(bad("duplicate id"));
                }
                book.rest(side, price, Resting { id, quantity });
            }
        }
        if r.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
            if bid >= ask {
                return Err(bad("crossed book"));
            }
        }
        Ok(book)
    }
}

/// The orders of one price level as (price, order).
fn level_orders<'a>((price, level): (&'a u32, &'a VecDeque<Resting>)) -> impl Iterator<Item = (u32, Resting)> + 'a {
    let price = *price;
    level.iter().map(move |o| (price, *o))
}

/// Applies `orders` in order; returns the new book and every fill. An error
/// rejects the whole batch.
pub fn apply_batch(mut book: Book, orders: &[Order]) -> Result<(Book, Vec<Fill>), Error> {
    let mut fills = Vec::new();
    for order in orders {
        book.apply(order, &mut fills)?;
    }
    Ok((book, fills))
}

/// A little-endian cursor.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let chunk = self.bytes.get(self.pos..self.pos.checked_add(N)?)?;
        self.pos += N;
        chunk.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
}

/// Encodes a batch (see the crate docs).
pub fn encode_orders(orders: &[Order]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + orders.len() * LIMIT_RECORD_BYTES);
    out.extend_from_slice(&(orders.len() as u32).to_le_bytes());
    for order in orders {
        match *order {
            Order::Limit { side, id, price, quantity } => {
                out.push(side as u8);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&price.to_le_bytes());
                out.extend_from_slice(&quantity.to_le_bytes());
            }
            Order::Cancel { id } => {
                out.push(2);
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
    }
    out
}

/// Decodes a batch (see the crate docs).
pub fn decode_orders(bytes: &[u8]) -> Result<Vec<Order>, Error> {
    let mut r = Reader { bytes, pos: 0 };
    let count = r.u32().ok_or(Error::BatchTruncated { offset: 0 })? as usize;
    if count > r.remaining() / CANCEL_RECORD_BYTES {
        return Err(Error::BatchTruncated { offset: bytes.len() });
    }
    let mut orders = Vec::with_capacity(count);
    for index in 0..count {
        let start = r.pos;
        let truncated = Error::BatchTruncated { offset: start };
        let kind = r.u8().ok_or(truncated)?;
        let id = r.u64().ok_or(truncated)?;
        let order = match kind {
            0 | 1 => {
                let side = if kind == 0 { Side::Buy } else { Side::Sell };
                let price = r.u32().ok_or(truncated)?;
                let quantity = r.u32().ok_or(truncated)?;
                Order::Limit { side, id, price, quantity }
            }
            2 => Order::Cancel { id },
            kind => return Err(Error::BadOrderKind { index, kind }),
        };
        orders.push(order);
    }
    if r.remaining() != 0 {
        return Err(Error::TrailingBytes { offset: r.pos });
    }
    Ok(orders)
}

/// Encodes fills (see the crate docs).
pub fn encode_fills(fills: &[Fill]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + fills.len() * FILL_BYTES);
    out.extend_from_slice(&(fills.len() as u32).to_le_bytes());
    for f in fills {
        out.push(f.taker_side as u8);
        out.extend_from_slice(&f.taker.to_le_bytes());
        out.extend_from_slice(&f.maker.to_le_bytes());
        out.extend_from_slice(&f.price.to_le_bytes());
        out.extend_from_slice(&f.quantity.to_le_bytes());
    }
    out
}

/// Decodes fills (see the crate docs); `None` if malformed.
pub fn decode_fills(bytes: &[u8]) -> Option<Vec<Fill>> {
    let mut r = Reader { bytes, pos: 0 };
    let count = r.u32()? as usize;
    if count.checked_mul(FILL_BYTES)? != r.remaining() {
        return None;
    }
    let mut fills = Vec::with_capacity(count);
    for _ in 0..count {
        let taker_side = match r.u8()? {
            0 => Side::Buy,
            1 => Side::Sell,
            _ => return None,
        };
        let (taker, maker, price, quantity) = (r.u64()?, r.u64()?, r.u32()?, r.u32()?);
        fills.push(Fill { taker_side, taker, maker, price, quantity });
    }
    Some(fills)
}

/// One state transition on encoded data, without hashing: returns the new
/// encoded state and the encoded fills. This is what a host that keeps the
/// state offchain runs to know the next state.
pub fn step(state: &[u8], batch: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let book = Book::decode(state)?;
    let orders = decode_orders(batch)?;
    let (book, fills) = apply_batch(book, &orders)?;
    Ok((book.encode(), encode_fills(&fills)))
}

/// The onchain input for a batch: `abi.encode(StatefulAppOnchainInput{
/// state_root, encode_orders(orders)})`.
pub fn onchain_input(state_root: &Word, orders: &[Order]) -> Vec<u8> {
    coprocessor_abi::encode_stateful_input(state_root, &encode_orders(orders))
}

/// `keccak256(state)` with the plain (non-precompile) Keccak-256.
pub fn state_root(state: &[u8]) -> Word {
    coprocessor_hashes::keccak256(state)
}

/// The guest's whole job (see the crate docs): verifies the state against
/// the root with `keccak256`, applies the batch, and returns
/// `abi.encode(StatefulAppResult{keccak256(new state), fills})`.
pub fn run(onchain: &[u8], offchain: &[u8], keccak256: HashFn) -> Result<Vec<u8>, Error> {
    let (input_root, batch) = coprocessor_abi::decode_stateful_input(onchain)?;
    if keccak256(offchain) != input_root {
        return Err(Error::StateRootMismatch);
    }
    let (state, fills) = step(offchain, batch)?;
    Ok(coprocessor_abi::encode_stateful_result(&keccak256(&state), &fills))
}

/// The default number of "live" ids an [`OrderGenerator`] aims for.
pub const DEFAULT_LIVE_TARGET: usize = 5000;

/// A deterministic pseudo-random order flow for tests and benchmarks.
///
/// Each order is, with probability `live / (live + target)`, a cancel of a
/// uniformly chosen id from the generator's own list of live ids (ids it
/// placed and has not cancelled yet; some of them may have filled, so the
/// cancel is a no-op), and otherwise a limit order with a fresh id (ids
/// count up from 1). So the live list, and hence the book, hovers around
/// `target` orders however many batches run. A limit order is a buy or a
/// sell with equal odds, quantity 1..=100, and a price around a mid price
/// that random-walks (±1 tick per order) in 99_000..=101_000: buys at
/// mid-40..=mid+10, sells at mid-10..=mid+40, so roughly a fifth of them
/// cross. The generator is a SplitMix64 stream; the same seed always gives
/// the same orders. Successive [`OrderGenerator::next_batch`] calls continue
/// the stream, so a sequence of batches never reuses a resting id.
#[derive(Debug, Clone)]
pub struct OrderGenerator {
    rng: u64,
    next_id: u64,
    mid: u32,
    live: Vec<u64>,
    target: usize,
}

impl OrderGenerator {
    /// A generator with the default live target.
    pub fn new(seed: u64) -> Self {
        Self::with_live_target(seed, DEFAULT_LIVE_TARGET)
    }

    /// A generator whose live list hovers around `target` ids.
    pub fn with_live_target(seed: u64, target: usize) -> Self {
        OrderGenerator { rng: seed, next_id: 1, mid: 100_000, live: Vec::new(), target: target.max(1) }
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-high.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// The next order.
    pub fn next_order(&mut self) -> Order {
        let live = self.live.len() as u64;
        if live > 0 && self.below(live + self.target as u64) < live {
            let i = self.below(live) as usize;
            return Order::Cancel { id: self.live.swap_remove(i) };
        }
        let step = self.below(3) as u32; // 0, 1, 2 → -1, 0, +1
        self.mid = (self.mid + step).saturating_sub(1).clamp(99_000, 101_000);
        let side = if self.below(2) == 0 { Side::Buy } else { Side::Sell };
        let offset = self.below(51) as u32;
        let price = match side {
            Side::Buy => self.mid - 40 + offset,
            Side::Sell => self.mid + 40 - offset,
        };
        let quantity = 1 + self.below(100) as u32;
        let id = self.next_id;
        self.next_id += 1;
        self.live.push(id);
        Order::Limit { side, id, price, quantity }
    }

    /// The next `count` orders.
    pub fn next_batch(&mut self, count: usize) -> Vec<Order> {
        (0..count).map(|_| self.next_order()).collect()
    }
}

/// `count` orders from a fresh [`OrderGenerator`] seeded with `seed`.
pub fn generate_orders(seed: u64, count: usize) -> Vec<Order> {
    OrderGenerator::new(seed).next_batch(count)
}

#[cfg(test)]
mod tests;
