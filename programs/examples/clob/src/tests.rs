extern crate std;

use super::*;
use alloc::vec;
use coprocessor_hashes::keccak256;

fn buy(id: u64, price: u32, quantity: u32) -> Order {
    Order::Limit { side: Side::Buy, id, price, quantity }
}

fn sell(id: u64, price: u32, quantity: u32) -> Order {
    Order::Limit { side: Side::Sell, id, price, quantity }
}

fn fill(taker_side: Side, taker: u64, maker: u64, price: u32, quantity: u32) -> Fill {
    Fill { taker_side, taker, maker, price, quantity }
}

fn book_of(orders: &[Order]) -> (Book, Vec<Fill>) {
    apply_batch(Book::new(), orders).unwrap()
}

fn side_vec(book: &Book, side: Side) -> Vec<(u32, u64, u32)> {
    book.orders(side).map(|(p, o)| (p, o.id, o.quantity)).collect()
}

#[test]
fn no_cross_both_rest() {
    let (book, fills) = book_of(&[buy(1, 10, 100), sell(2, 11, 100)]);
    assert!(fills.is_empty());
    assert_eq!(book.best_bid(), Some(10));
    assert_eq!(book.best_ask(), Some(11));
    assert_eq!(book.len(), 2);
}

#[test]
fn partial_fill_rests_the_remainder() {
    let (book, fills) = book_of(&[sell(1, 10, 5), buy(2, 10, 8)]);
    assert_eq!(fills, vec![fill(Side::Buy, 2, 1, 10, 5)]);
    assert_eq!(side_vec(&book, Side::Buy), vec![(10, 2, 3)]);
    assert!(side_vec(&book, Side::Sell).is_empty());
    // And a maker partially filled keeps its place with the rest.
    let (book, fills) = book_of(&[sell(1, 10, 5), buy(2, 10, 2)]);
    assert_eq!(fills, vec![fill(Side::Buy, 2, 1, 10, 2)]);
    assert_eq!(side_vec(&book, Side::Sell), vec![(10, 1, 3)]);
    assert!(book.best_bid().is_none());
}

#[test]
fn price_priority_for_asks_and_bids() {
    let (book, fills) = book_of(&[sell(1, 12, 10), sell(2, 11, 10), buy(3, 12, 15)]);
    assert_eq!(fills, vec![fill(Side::Buy, 3, 2, 11, 10), fill(Side::Buy, 3, 1, 12, 5)]);
    assert_eq!(side_vec(&book, Side::Sell), vec![(12, 1, 5)]);
    assert!(book.best_bid().is_none());

    let (book, fills) = book_of(&[buy(1, 9, 5), buy(2, 10, 5), sell(3, 9, 7)]);
    assert_eq!(fills, vec![fill(Side::Sell, 3, 2, 10, 5), fill(Side::Sell, 3, 1, 9, 2)]);
    assert_eq!(side_vec(&book, Side::Buy), vec![(9, 1, 3)]);
}

#[test]
fn time_priority_at_equal_price() {
    let (book, fills) = book_of(&[sell(1, 10, 5), sell(2, 10, 5), sell(3, 10, 5), buy(4, 10, 7)]);
    assert_eq!(fills, vec![fill(Side::Buy, 4, 1, 10, 5), fill(Side::Buy, 4, 2, 10, 2)]);
    assert_eq!(side_vec(&book, Side::Sell), vec![(10, 2, 3), (10, 3, 5)]);
    // A later order at an existing level queues behind.
    let (book, _) = apply_batch(book, &[sell(5, 10, 1)]).unwrap();
    assert_eq!(side_vec(&book, Side::Sell), vec![(10, 2, 3), (10, 3, 5), (10, 5, 1)]);
}

#[test]
fn taker_stops_at_its_limit_and_rests() {
    let (book, fills) = book_of(&[sell(1, 10, 5), sell(2, 12, 5), buy(3, 11, 10)]);
    assert_eq!(fills, vec![fill(Side::Buy, 3, 1, 10, 5)]);
    assert_eq!(side_vec(&book, Side::Buy), vec![(11, 3, 5)]);
    assert_eq!(side_vec(&book, Side::Sell), vec![(12, 2, 5)]);
}

#[test]
fn taker_sweeps_several_levels_exactly() {
    let (book, fills) = book_of(&[buy(1, 10, 2), buy(2, 9, 3), buy(3, 8, 4), sell(4, 8, 9)]);
    assert_eq!(fills, vec![fill(Side::Sell, 4, 1, 10, 2), fill(Side::Sell, 4, 2, 9, 3), fill(Side::Sell, 4, 3, 8, 4)]);
    assert!(book.is_empty());
    assert_eq!(book.encode(), EMPTY_STATE);
}

#[test]
fn cancel_removes_and_ignores_unknown_ids() {
    let (book, fills) = book_of(&[
        buy(1, 10, 5),
        buy(2, 10, 5),
        Order::Cancel { id: 1 },
        Order::Cancel { id: 99 },
        Order::Cancel { id: 1 },
        sell(3, 10, 3),
    ]);
    assert_eq!(fills, vec![fill(Side::Sell, 3, 2, 10, 3)]);
    assert_eq!(side_vec(&book, Side::Buy), vec![(10, 2, 2)]);
    // Cancelling the last order of a level removes the level, and the id
    // can be used again.
    let (book, _) = apply_batch(book, &[Order::Cancel { id: 2 }, buy(2, 7, 1)]).unwrap();
    assert_eq!(book.best_bid(), Some(7));
    assert_eq!(book.len(), 1);
}

#[test]
fn rejects_duplicate_ids_and_zero_quantity() {
    let mut book = Book::new();
    let mut fills = Vec::new();
    book.apply(&buy(1, 10, 5), &mut fills).unwrap();
    let before = book.clone();
    assert_eq!(book.apply(&sell(1, 20, 5), &mut fills), Err(Error::DuplicateId { id: 1 }));
    assert_eq!(book.apply(&sell(2, 5, 0), &mut fills), Err(Error::ZeroQuantity { id: 2 }));
    assert_eq!(book, before);
    // A fully filled id is no longer resting and may be reused.
    let (book, _) = book_of(&[buy(1, 10, 5), sell(2, 10, 5), buy(1, 10, 5)]);
    assert_eq!(side_vec(&book, Side::Buy), vec![(10, 1, 5)]);
}

#[test]
fn batch_codec_round_trips_and_rejects_garbage() {
    let orders = vec![buy(1, 10, 5), Order::Cancel { id: u64::MAX }, sell(7, u32::MAX, 1)];
    let bytes = encode_orders(&orders);
    assert_eq!(bytes.len(), 4 + 17 + 9 + 17);
    assert_eq!(&bytes[..5], &[3, 0, 0, 0, 0]);
    assert_eq!(decode_orders(&bytes), Ok(orders));
    assert_eq!(decode_orders(&encode_orders(&[])), Ok(vec![]));
    for cut in 0..bytes.len() {
        assert!(decode_orders(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert_eq!(decode_orders(&extra), Err(Error::TrailingBytes { offset: bytes.len() }));
    let mut bad = bytes;
    bad[4] = 3;
    assert_eq!(decode_orders(&bad), Err(Error::BadOrderKind { index: 0, kind: 3 }));
    assert!(decode_orders(&[0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn state_codec_is_canonical() {
    let (book, _) = book_of(&[buy(1, 10, 5), buy(2, 9, 5), buy(3, 10, 1), sell(4, 12, 2), sell(5, 11, 3)]);
    let bytes = book.encode();
    assert_eq!(bytes.len(), 8 + 5 * 16);
    // Bids: 10 (ids 1, 3), then 9; asks: 11, then 12.
    let ids: Vec<u64> =
        [4usize, 20, 36, 56, 72].iter().map(|&at| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())).collect();
    assert_eq!(ids, vec![1, 3, 2, 5, 4]);
    let decoded = Book::decode(&bytes).unwrap();
    assert_eq!(decoded, book);
    assert_eq!(decoded.encode(), bytes);
    assert_eq!(Book::decode(&EMPTY_STATE), Ok(Book::new()));
    assert_eq!(Book::new().encode(), EMPTY_STATE);
}

fn state(bids: &[(u64, u32, u32)], asks: &[(u64, u32, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for side in [bids, asks] {
        out.extend_from_slice(&(side.len() as u32).to_le_bytes());
        for &(id, price, quantity) in side {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&price.to_le_bytes());
            out.extend_from_slice(&quantity.to_le_bytes());
        }
    }
    out
}

#[test]
fn state_decoder_rejects_non_canonical_books() {
    assert!(Book::decode(&state(&[(1, 10, 1), (2, 9, 1)], &[(3, 11, 1), (4, 12, 1)])).is_ok());
    let bad = [
        state(&[(1, 9, 1), (2, 10, 1)], &[]),  // bids ascending
        state(&[], &[(1, 12, 1), (2, 11, 1)]), // asks descending
        state(&[(1, 10, 1)], &[(2, 10, 1)]),   // crossed (touching)
        state(&[(1, 10, 1)], &[(1, 11, 1)]),   // duplicate id
        state(&[(1, 10, 0)], &[]),             // zero quantity
    ];
    for (i, bytes) in bad.iter().enumerate() {
        assert!(matches!(Book::decode(bytes), Err(Error::BadState { .. })), "case {i}");
    }
    let good = state(&[(1, 10, 1)], &[]);
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Book::decode(&trailing).is_err());
    for cut in 0..good.len() {
        assert!(Book::decode(&good[..cut]).is_err(), "cut {cut}");
    }
    assert!(Book::decode(&[0xff; 8]).is_err());
}

#[test]
fn fills_codec_round_trips() {
    let fills = vec![fill(Side::Buy, 1, 2, 3, 4), fill(Side::Sell, u64::MAX, 0, u32::MAX, 1)];
    let bytes = encode_fills(&fills);
    assert_eq!(bytes.len(), 4 + 2 * 25);
    assert_eq!(decode_fills(&bytes), Some(fills));
    assert_eq!(decode_fills(&bytes[..bytes.len() - 1]), None);
}

#[test]
fn run_verifies_the_root_and_outputs_the_result() {
    let s0 = EMPTY_STATE.to_vec();
    let orders = vec![sell(1, 10, 5), buy(2, 11, 8)];
    let input = onchain_input(&keccak256(&s0), &orders);
    let out = run(&input, &s0, keccak256).unwrap();
    let (root, result) = coprocessor_abi::decode_stateful_result(&out).unwrap();
    let (s1, fills) = step(&s0, &encode_orders(&orders)).unwrap();
    assert_eq!(root, keccak256(&s1));
    assert_eq!(root, state_root(&s1));
    assert_eq!(result, &fills[..]);
    assert_eq!(decode_fills(result), Some(vec![fill(Side::Buy, 2, 1, 10, 5)]));
    assert_eq!(Book::decode(&s1).unwrap().best_bid(), Some(11));

    // The next batch chains on the new root.
    let input2 = onchain_input(&root, &[sell(3, 11, 3)]);
    let out2 = run(&input2, &s1, keccak256).unwrap();
    let (root2, result2) = coprocessor_abi::decode_stateful_result(&out2).unwrap();
    assert_eq!(decode_fills(result2), Some(vec![fill(Side::Sell, 3, 2, 11, 3)]));
    assert_ne!(root2, root);
}

#[test]
fn run_rejects_a_wrong_root_or_malformed_input() {
    let s0 = EMPTY_STATE.to_vec();
    let input = onchain_input(&[0u8; 32], &[buy(1, 1, 1)]);
    assert_eq!(run(&input, &s0, keccak256), Err(Error::StateRootMismatch));
    assert!(matches!(run(&[1, 2, 3], &s0, keccak256), Err(Error::Abi(_))));
    let bad_state = vec![1, 0, 0, 0];
    let input = onchain_input(&keccak256(&bad_state), &[]);
    assert!(matches!(run(&input, &bad_state, keccak256), Err(Error::BadState { .. })));
    let input = onchain_input(&keccak256(&s0), &[buy(1, 1, 1), buy(1, 1, 1)]);
    assert_eq!(run(&input, &s0, keccak256), Err(Error::DuplicateId { id: 1 }));
}

/// A deliberately naive matching engine: a flat list of resting orders with
/// arrival numbers, searched linearly for the best one each time.
#[derive(Default)]
struct NaiveBook {
    resting: Vec<(u64, Side, u64, u32, u32)>, // (arrival, side, id, price, quantity)
    arrivals: u64,
}

impl NaiveBook {
    fn apply(&mut self, order: &Order, fills: &mut Vec<Fill>) {
        match *order {
            Order::Cancel { id } => self.resting.retain(|o| o.2 != id),
            Order::Limit { side, id, price, mut quantity } => {
                assert!(!self.resting.iter().any(|o| o.2 == id));
                while quantity > 0 {
                    let best = self
                        .resting
                        .iter()
                        .enumerate()
                        .filter(|(_, o)| o.1 != side)
                        .filter(|(_, o)| match side {
                            Side::Buy => o.3 <= price,
                            Side::Sell => o.3 >= price,
                        })
                        .min_by_key(|(_, o)| match side {
                            Side::Buy => (o.3 as i64, o.0),
                            Side::Sell => (-(o.3 as i64), o.0),
                        })
                        .map(|(i, _)| i);
                    let Some(i) = best else { break };
                    let traded = quantity.min(self.resting[i].4);
                    fills.push(Fill {
                        taker_side: side,
                        taker: id,
                        maker: self.resting[i].2,
                        price: self.resting[i].3,
                        quantity: traded,
                    });
                    quantity -= traded;
                    self.resting[i].4 -= traded;
                    if self.resting[i].4 == 0 {
                        self.resting.remove(i);
                    }
                }
                if quantity > 0 {
                    self.arrivals += 1;
                    self.resting.push((self.arrivals, side, id, price, quantity));
                }
            }
        }
    }

    fn side(&self, side: Side) -> Vec<(u32, u64, u32)> {
        let mut v: Vec<_> = self.resting.iter().filter(|o| o.1 == side).copied().collect();
        v.sort_by_key(|o| match side {
            Side::Buy => (-(o.3 as i64), o.0),
            Side::Sell => (o.3 as i64, o.0),
        });
        v.iter().map(|o| (o.3, o.2, o.4)).collect()
    }
}

#[test]
fn matches_a_naive_reference_on_generated_flow() {
    let mut gen = OrderGenerator::with_live_target(42, 300);
    let mut book = Book::new();
    let mut naive = NaiveBook::default();
    let mut total_fills = 0;
    for _ in 0..20 {
        let batch = gen.next_batch(300);
        let mut fills = Vec::new();
        let mut naive_fills = Vec::new();
        for order in &batch {
            book.apply(order, &mut fills).unwrap();
            naive.apply(order, &mut naive_fills);
        }
        assert_eq!(fills, naive_fills);
        assert_eq!(side_vec(&book, Side::Buy), naive.side(Side::Buy));
        assert_eq!(side_vec(&book, Side::Sell), naive.side(Side::Sell));
        total_fills += fills.len();
    }
    assert!(total_fills > 500, "the flow should trade a lot, got {total_fills}");
}

#[test]
fn generator_is_deterministic_and_batches_compose() {
    assert_eq!(generate_orders(7, 1000), generate_orders(7, 1000));
    assert_ne!(generate_orders(7, 1000), generate_orders(8, 1000));
    let all = generate_orders(7, 1000);
    let mut gen = OrderGenerator::new(7);
    let (a, b) = (gen.next_batch(400), gen.next_batch(600));
    assert_eq!([a.clone(), b.clone()].concat(), all);

    // One big batch and two small ones give the same book and fills.
    let (whole, whole_fills) = apply_batch(Book::new(), &all).unwrap();
    let (half, mut fills) = apply_batch(Book::new(), &a).unwrap();
    let (half2, fills2) = apply_batch(half, &b).unwrap();
    fills.extend(fills2);
    assert_eq!(half2, whole);
    assert_eq!(fills, whole_fills);
}

#[test]
fn fifty_encoded_batches_keep_the_book_bounded() {
    let mut gen = OrderGenerator::new(1);
    let mut state = EMPTY_STATE.to_vec();
    let mut root = keccak256(&state);
    let mut max_len = 0;
    let mut fills_seen = 0usize;
    for _ in 0..50 {
        let orders = gen.next_batch(2000);
        let out = run(&onchain_input(&root, &orders), &state, keccak256).unwrap();
        let (new_state, fills) = step(&state, &encode_orders(&orders)).unwrap();
        let (new_root, result) = coprocessor_abi::decode_stateful_result(&out).unwrap();
        assert_eq!(new_root, keccak256(&new_state));
        assert_eq!(result, &fills[..]);
        fills_seen += decode_fills(result).unwrap().len();
        let book = Book::decode(&new_state).unwrap();
        max_len = max_len.max(book.len());
        state = new_state;
        root = new_root;
    }
    assert!(max_len <= 2 * DEFAULT_LIVE_TARGET, "book grew to {max_len}");
    assert!(max_len > DEFAULT_LIVE_TARGET / 4, "book stayed tiny: {max_len}");
    assert!(fills_seen > 5000, "only {fills_seen} fills");
    std::println!("max resting orders {max_len}, fills {fills_seen}, final state {} bytes", state.len());
}
