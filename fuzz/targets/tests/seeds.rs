//! Writes the seed corpus (`fuzz/corpus/<target>/`). Ignored: run it by
//! hand when the seeds should change:
//! `cargo test -p coprocessor-fuzz-targets --test seeds -- --ignored`.

use alloy::primitives::{keccak256, Address, Bytes};
use alloy::sol_types::SolValue;
use coprocessor_actors::protocol::abi::OffchainJobRequest;
use coprocessor_actors::wire::{FastRequest, Method};
use coprocessor_fuzz_targets::elf_writer;
use coprocessor_fuzz_targets::source::pseudo_random_bytes;
use rv32im_reference::asm::{li, ECALL};
use rv32im_reference::{Perms, Program, Segment, Xlen};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus(target).join(name), bytes).expect("write seed");
}

const JSON: [(&str, &str); 9] = [
    ("status", r#"{"jsonrpc":"2.0","id":1,"method":"coproc_status"}"#),
    ("metrics", r#"{"jsonrpc":"2.0","id":"m","method":"coproc_metrics","params":{}}"#),
    (
        "contains",
        r#"{"jsonrpc":"2.0","id":2,"method":"coproc_containsProgram","params":{"programId":"0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"}}"#,
    ),
    (
        "submit-program",
        r#"{"jsonrpc":"2.0","id":3,"method":"coproc_submitProgram","params":{"elf":"0x7f454c46010101"}}"#,
    ),
    (
        "get-result",
        r#"{"jsonrpc":"2.0","id":4,"method":"coproc_getResult","params":{"jobId":"0x0101010101010101010101010101010101010101010101010101010101010101"}}"#,
    ),
    (
        "pending",
        r#"{"jsonrpc":"2.0","id":5,"method":"coproc_getPendingJobs","params":{"consumer":"0x00000000000000000000000000000000000000aa"}}"#,
    ),
    ("replay", r#"{"jsonrpc":"2.0","id":6,"method":"coproc_replay","params":{"from":1,"to":9}}"#),
    (
        "batch",
        r#"[{"jsonrpc":"2.0","id":7,"method":"coproc_status"},{"jsonrpc":"2.0","method":"coproc_metrics"},{"jsonrpc":"1.0","id":8,"method":"x"}]"#,
    ),
    ("invalid", r#"{"jsonrpc":"2.0","id":[1],"method":7,"params":"x"}"#),
];

fn request() -> (OffchainJobRequest, Vec<u8>) {
    let offchain = b"offchain input".to_vec();
    let request = OffchainJobRequest {
        nonce: 7,
        maxCycles: 1_000_000,
        consumer: Address::repeat_byte(0xaa),
        programID: Bytes::from(vec![0x11; 32]),
        onchainInput: Bytes::from_static(b"onchain input"),
        offchainInputHash: keccak256(&offchain),
    };
    (request, offchain)
}

#[test]
#[ignore = "writes the seed corpus"]
fn write_seeds() {
    // elf: a minimal program, one with read-only data, and real guests.
    let mut text: Vec<u32> = li(10, 0).into_iter().chain(li(17, 93)).collect();
    text.push(ECALL);
    let code: Vec<u8> = text.iter().flat_map(|w| w.to_le_bytes()).collect();
    let rx = Perms { read: true, write: false, exec: true };
    let exit = Program {
        xlen: Xlen::Rv32,
        entry: 0x1_0000,
        segments: vec![Segment { vaddr: 0x1_0000, mem_size: code.len() as u32, data: code.clone(), perms: rx }],
    };
    write("elf", "exit-0", &elf_writer::write(&exit));
    let mut two = exit.clone();
    two.segments.push(Segment {
        vaddr: 0x2_0000,
        mem_size: 0x2000,
        data: b"data".to_vec(),
        perms: Perms { read: true, write: true, exec: false },
    });
    write("elf", "text-and-bss", &elf_writer::write(&two));
    write("elf", "exit-0-rv64", &elf_writer::write(&Program { xlen: Xlen::Rv64, ..exit.clone() }));
    write("elf", "text-and-bss-rv64", &elf_writer::write(&Program { xlen: Xlen::Rv64, ..two.clone() }));
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../programs/elf");
    for name in ["fibonacci", "xorshift"] {
        if let Ok(bytes) = std::fs::read(guests.join(format!("{name}.elf"))) {
            write("elf", name, &bytes);
        }
    }

    // jsonrpc and fast_frame: the same calls in both encodings.
    let (request, offchain) = request();
    let submit = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"coproc_submitJob","params":{{"request":"0x{}","signature":"0x{}","offchainInput":"0x{}"}}}}"#,
        hex(&request.abi_encode()),
        hex(&[0x1b; 65]),
        hex(&offchain)
    );
    let lines: Vec<(&str, String)> =
        JSON.iter().map(|(n, l)| (*n, l.to_string())).chain([("submit-job", submit)]).collect();
    for (id, (name, line)) in lines.iter().enumerate() {
        write("jsonrpc", name, line.as_bytes());
        let value: serde_json::Value = serde_json::from_str(line).expect("seed is JSON");
        let Some(method) = value.get("method").and_then(|m| m.as_str()) else { continue };
        let params = value.get("params").map(|p| serde_json::value::to_raw_value(p).expect("raw"));
        if let Ok(call) = Method::parse(method, params.as_deref()) {
            let frame = coprocessor_actors::fast_frame(&FastRequest { id: id as u64, call });
            write("fast_frame", name, &frame[4..]);
        }
    }

    // abi_request: mode 0 (raw ABI bytes) and mode 1 (built from fields).
    let mut raw = vec![0u8];
    raw.extend(request.abi_encode());
    write("abi_request", "valid-request", &raw);
    write(
        "abi_request",
        "fields",
        &pseudo_random_bytes(1, 400)
            .into_iter()
            .enumerate()
            .map(|(i, b)| if i == 0 { 1 } else { b })
            .collect::<Vec<_>>(),
    );
    write("abi_request", "fields-flipped", &[3u8; 300]);

    // vm_diff: any bytes are a program; a few of different lengths, for
    // each ISA (the first byte: 0 for rv32im, 1 for rv64im).
    for (seed, len) in [(1u64, 200usize), (2, 800), (3, 1500), (4, 3000), (5, 6000)] {
        for (isa, prefix) in [(0u8, "random"), (1, "rv64-random")] {
            let mut bytes = vec![isa];
            bytes.extend(pseudo_random_bytes(seed + 1000, len));
            write("vm_diff", &format!("{prefix}-{seed}"), &bytes);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
