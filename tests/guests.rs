//! Example guests through the VM API: determinism and warm reuse.

mod common;

use coprocessor_actors::job::JobLimits;
use coprocessor_actors::program::{ProgramImage, DEFAULT_MAX_PROGRAM_BYTES};
use coprocessor_actors::{Vm, DEFAULT_MAX_INPUT_BYTES};

fn vm(name: &str) -> Vm {
    let elf = std::fs::read(common::guest(name)).expect("read guest");
    let image = ProgramImage::parse(&elf, DEFAULT_MAX_PROGRAM_BYTES).expect("valid guest");
    Vm::new(&image, DEFAULT_MAX_INPUT_BYTES).expect("vm")
}

#[test]
fn clob_gives_identical_output_and_cycles_on_100_runs() {
    let orders = clob::generate_orders(9, 2000);
    let onchain = clob::onchain_input(&clob::state_root(&clob::EMPTY_STATE), &orders);
    let mut warm = vm("clob");
    let first = warm.run(&onchain, &clob::EMPTY_STATE, &JobLimits::default()).expect("run");
    assert_eq!(first.failure, None);
    for i in 0..100 {
        // Alternate warm reuse and fresh instances.
        let outcome = if i % 10 == 0 {
            vm("clob").run(&onchain, &clob::EMPTY_STATE, &JobLimits::default()).expect("run")
        } else {
            warm.run(&onchain, &clob::EMPTY_STATE, &JobLimits::default()).expect("run")
        };
        assert_eq!(outcome, first, "run {i}");
    }
}

#[test]
fn fifty_clob_batches_chain_their_state() {
    let mut generator = clob::OrderGenerator::new(3);
    let mut state = clob::EMPTY_STATE.to_vec();
    let mut vm = vm("clob");
    for batch in 0..50 {
        let orders = generator.next_batch(200);
        let onchain = clob::onchain_input(&clob::state_root(&state), &orders);
        let outcome = vm.run(&onchain, &state, &JobLimits::default()).expect("run");
        assert_eq!(outcome.failure, None, "batch {batch}");
        let (new_state, _fills) = clob::step(&state, &clob::encode_orders(&orders)).expect("native step");
        // The result's first word after the tuple offset is the new root.
        assert_eq!(outcome.output[32..64], clob::state_root(&new_state)[..], "batch {batch}");
        state = new_state;
    }
}

#[test]
fn a_warm_instance_gives_each_job_fresh_memory() {
    let mut vm = vm("mem-touch");
    let big = vm.run(&common::abi_u64(500), &[], &JobLimits::default()).expect("run");
    let small = vm.run(&common::abi_u64(1), &[], &JobLimits::default()).expect("run");
    let big_again = vm.run(&common::abi_u64(500), &[], &JobLimits::default()).expect("run");
    assert_eq!(big, big_again);
    assert_eq!(big.peak_memory_bytes - small.peak_memory_bytes, 499 * 4096);
}
