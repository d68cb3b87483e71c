//! rv64im guests: the same example guest built as an ELF32 (rv32im) and as
//! an ELF64 (rv64im, `programs/elf/rv64/`) gives the same output through
//! `coprocessor exec` and through the engine, which registers and runs an
//! rv64im program like any other.

mod common;

use common::engine::{u64_job, Engine};
use common::{abi_u64, coprocessor, exec_json, guest, hex};
use coprocessor_actors::wire::Call;

#[test]
fn exec_runs_fibonacci_both_ways_with_the_same_output_and_shows_the_isa() {
    let input = hex(&abi_u64(90));
    let (rv32_code, rv32) = exec_json("fibonacci", &["--input", &input]);
    let (rv64_code, rv64) = exec_json("rv64/fibonacci", &["--input", &input]);
    assert_eq!((rv32_code, rv64_code), (0, 0));
    assert_eq!((rv32["isa"].as_str(), rv64["isa"].as_str()), (Some("rv32im"), Some("rv64im")));
    assert_eq!(rv64["status"], "done");
    assert_eq!(rv64["output"], hex(&abi_u64(2_880_067_194_370_816_120)));
    assert_eq!(rv64["output"], rv32["output"]);
    let cycles = |v: &serde_json::Value| v["cycles"].as_u64().expect("cycles");
    assert!(cycles(&rv64) < cycles(&rv32), "u64 arithmetic takes fewer rv64 instructions");

    let path = guest("rv64/fibonacci");
    let out = coprocessor(&["exec", path.to_str().expect("utf-8 path"), "--input", &input]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|line| line == "isa:         rv64im"), "{text}");
}

#[test]
fn the_engine_registers_and_runs_an_rv64_program_like_an_rv32_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let rv32 = engine.submit_program("fibonacci");
    let rv64 = engine.submit_program("rv64/fibonacci");
    assert_ne!(rv32, rv64);
    let signer = engine.dev_signer();
    let mut client = engine.client();
    let mut results = Vec::new();
    for (nonce, program) in [rv32, rv64].into_iter().enumerate() {
        let request = u64_job(program, signer.address(), nonce as u64, 90);
        client.call::<serde_json::Value>(Call::SubmitJob(request.sign(&signer))).expect("job accepted");
        results.push(engine.wait_result(&mut client, &request.job_id().0));
    }
    let (rv32, rv64) = (&results[0], &results[1]);
    assert_eq!((rv32.status.as_str(), rv64.status.as_str()), ("done", "done"));
    assert_eq!(rv64.output.as_ref().map(|o| &o.0), Some(&abi_u64(2_880_067_194_370_816_120)));
    assert_eq!(rv64.output, rv32.output);
    let (_, exec) = exec_json("rv64/fibonacci", &["--input", &hex(&abi_u64(90))]);
    assert_eq!(rv64.cycles, exec["cycles"].as_u64(), "the engine and exec count the same cycles");
    assert_eq!(rv64.peak_memory_bytes, exec["peakMemoryBytes"].as_u64());
}
