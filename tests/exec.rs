//! `coprocessor exec`: how a guest author runs a program locally.
//! Each test starts the real binary on a built example guest.

mod common;

use common::{abi_u64, coprocessor, exec_json, guest, hex};
use serde_json::json;

#[test]
fn square_root_of_2_pow_128_plus_1() {
    let mut n = [0u8; 32];
    n[15] = 1;
    n[31] = 1;
    let (status, out) = exec_json("square-root", &["--input", &hex(&n)]);
    assert_eq!(status, 0);
    assert_eq!(out["status"], "done");
    assert_eq!(out["exitCode"], 0);
    let mut root = [0u8; 32];
    root[23] = 1; // 2^64
    assert_eq!(out["output"], hex(&[n, root].concat()));
}

#[test]
fn square_root_of_the_largest_uint256() {
    let (status, out) = exec_json("square-root", &["--input", &hex(&[0xff; 32])]);
    assert_eq!(status, 0);
    let mut root = [0u8; 32];
    root[16..].fill(0xff); // 2^128 - 1
    assert_eq!(out["output"], hex(&[[0xff; 32], root].concat()));
}

#[test]
fn fibonacci_90() {
    let (status, out) = exec_json("fibonacci", &["--input", &hex(&abi_u64(90))]);
    assert_eq!(status, 0);
    assert_eq!(out["output"], hex(&abi_u64(2_880_067_194_370_816_120)));
}

#[test]
fn xorshift_matches_its_native_build() {
    let (status, out) = exec_json("xorshift", &["--input", &hex(&abi_u64(1000))]);
    assert_eq!(status, 0);
    assert_eq!(out["output"], hex(&abi_u64(xorshift::checksum(1000))));
    assert_eq!(xorshift::checksum(1000), 735_713_119_403);
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

fn keccak256(data: &[u8]) -> [u8; 32] {
    use tiny_keccak::Hasher;
    let mut k = tiny_keccak::Keccak::v256();
    k.update(data);
    let mut out = [0u8; 32];
    k.finalize(&mut out);
    out
}

fn rounds_input(flag: u8, rounds: u32, data: &[u8]) -> String {
    let mut input = vec![flag];
    input.extend_from_slice(&rounds.to_le_bytes());
    input.extend_from_slice(data);
    hex(&input)
}

#[test]
fn sha256_rounds_in_guest_code_and_via_the_precompile_agree() {
    let data = b"The quick brown fox jumps over the lazy dog".repeat(5);
    let expected = sha256(&sha256(&sha256(&data)));
    for flag in [0u8, 1] {
        let (status, out) = exec_json("sha256-rounds", &["--input", &rounds_input(flag, 3, &data)]);
        assert_eq!(status, 0, "flag {flag}");
        assert_eq!(out["output"], hex(&expected), "flag {flag}");
    }
    // The precompile is much cheaper in cycles than hashing in guest code.
    let (_, plain) = exec_json("sha256-rounds", &["--input", &rounds_input(0, 3, &data)]);
    let (_, pre) = exec_json("sha256-rounds", &["--input", &rounds_input(1, 3, &data)]);
    assert!(pre["cycles"].as_u64() < plain["cycles"].as_u64());
}

#[test]
fn keccak_rounds_is_ethereum_keccak_not_sha3() {
    let data = b"abc";
    let expected = keccak256(&keccak256(data));
    assert_eq!(hex(&keccak256(b"")), "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    for flag in [0u8, 1] {
        let (status, out) = exec_json("keccak-rounds", &["--input", &rounds_input(flag, 2, data)]);
        assert_eq!(status, 0, "flag {flag}");
        assert_eq!(out["output"], hex(&expected), "flag {flag}");
    }
}

#[test]
fn clob_matches_its_native_build() {
    let orders = clob::generate_orders(42, 500);
    let onchain = clob::onchain_input(&clob::state_root(&clob::EMPTY_STATE), &orders);
    let expected = clob::run(&onchain, &clob::EMPTY_STATE, keccak256).expect("native clob");
    let (status, out) = exec_json("clob", &["--input", &hex(&onchain), "--offchain-input", &hex(&clob::EMPTY_STATE)]);
    assert_eq!(status, 0);
    assert_eq!(out["output"], hex(&expected));
}

#[test]
fn clob_rejects_a_state_that_does_not_match_its_root() {
    let orders = clob::generate_orders(1, 10);
    let onchain = clob::onchain_input(&[0x11; 32], &orders);
    let (status, out) = exec_json("clob", &["--input", &hex(&onchain), "--offchain-input", &hex(&clob::EMPTY_STATE)]);
    assert_eq!(status, 1);
    assert_eq!(out["status"], "failed");
    assert_eq!(out["exitCode"], 101, "a guest panic exits 101");
    assert_eq!(out["failureReason"], "guest exited with code 101");
}

#[test]
fn mem_touch_counts_each_fresh_page() {
    let (_, zero) = exec_json("mem-touch", &["--input", &hex(&abi_u64(0))]);
    let (_, hundred) = exec_json("mem-touch", &["--input", &hex(&abi_u64(100))]);
    let base = zero["peakMemoryBytes"].as_u64().expect("bytes");
    assert_eq!(hundred["peakMemoryBytes"].as_u64(), Some(base + 100 * 4096));
    assert_eq!(hundred["output"], hex(&abi_u64(100)));
}

#[test]
fn mem_touch_over_the_limit_fails_with_exit_status_1() {
    let (status, out) = exec_json("mem-touch", &["--input", &hex(&abi_u64(1000)), "--max-memory", "1048576"]);
    assert_eq!(status, 1);
    assert_eq!(
        out,
        json!({
            "status": "failed",
            "isa": "rv32im",
            "exitCode": null,
            "cycles": out["cycles"],
            "peakMemoryBytes": 1_048_576,
            "output": "0x",
            "failureReason": "memory limit exceeded",
            "wallMicros": out["wallMicros"],
        })
    );
}

#[test]
fn cycle_limit_is_exact_through_the_cli() {
    let (_, done) = exec_json("fibonacci", &["--input", &hex(&abi_u64(1000))]);
    let n = done["cycles"].as_u64().expect("cycles");
    let (status, exact) = exec_json("fibonacci", &["--input", &hex(&abi_u64(1000)), "--max-cycles", &n.to_string()]);
    assert_eq!((status, &exact["status"]), (0, &json!("done")));
    let (status, short) =
        exec_json("fibonacci", &["--input", &hex(&abi_u64(1000)), "--max-cycles", &(n - 1).to_string()]);
    assert_eq!(status, 1);
    assert_eq!(short["failureReason"], "cycle limit exceeded");
    assert_eq!(short["cycles"].as_u64(), Some(n - 1));
}

#[test]
fn human_output_names_every_field() {
    let path = guest("fibonacci");
    let out = coprocessor(&["exec", path.to_str().expect("path"), "--input", &hex(&abi_u64(10))]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for field in ["status:      done", "exit code:   0", "cycles:", "peak memory:", "wall time:", "output:      0x"] {
        assert!(text.contains(field), "missing {field:?} in:\n{text}");
    }
}

#[test]
fn a_file_that_is_not_elf_is_rejected_with_status_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not.elf");
    std::fs::write(&path, b"#!/bin/sh\necho hi\n").expect("write");
    let out = coprocessor(&["exec", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not an elf file"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_arguments_are_rejected_with_status_2() {
    let path = guest("fibonacci");
    let elf = path.to_str().expect("path");
    for args in [
        vec!["exec", elf, "--input", "0xnothex"],
        vec!["exec", elf, "--input", "@/nonexistent/input"],
        vec!["exec", "/nonexistent/program.elf"],
        vec!["exec", elf, "--max-cycles", "lots"],
    ] {
        let out = coprocessor(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn an_input_over_one_mib_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    std::fs::write(&path, vec![0u8; (1 << 20) + 1]).expect("write");
    let elf = guest("fibonacci");
    let out = coprocessor(&["exec", elf.to_str().expect("path"), "--input", &format!("@{}", path.display())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("onchain input is 1048577 bytes"));
}
