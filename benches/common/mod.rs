//! Helpers shared by the benchmarks.
#![allow(dead_code, unreachable_pub)]

use coprocessor::client::FastClient;
use coprocessor_actors::wire::{Call, Reply, SubmitJob};

/// `abi.encode(uint64 n)`: one big-endian 32-byte word.
pub fn abi_u64(n: u64) -> Vec<u8> {
    let mut word = vec![0u8; 32];
    word[24..].copy_from_slice(&n.to_be_bytes());
    word
}

/// The ELF of a built example guest.
pub fn guest_elf(guest: &str) -> Vec<u8> {
    let path = format!("{}/programs/elf/{guest}.elf", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err} (run `make guests`)"))
}

/// Sends `requests` over `connections` pipelined fast-path connections,
/// with at most `window` outstanding on each; returns when every answer is
/// in (each must be a job ID or a result).
pub fn pipeline(socket: &std::path::Path, connections: usize, window: usize, requests: Vec<SubmitJob>) {
    let per = requests.len().div_ceil(connections);
    let mut chunks: Vec<Vec<SubmitJob>> = Vec::new();
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        chunks.push(requests.by_ref().take(per).collect());
    }
    std::thread::scope(|scope| {
        for chunk in chunks {
            scope.spawn(move || {
                let mut client = FastClient::connect(socket).expect("connect");
                let total = chunk.len();
                let (mut sent, mut received) = (0, 0);
                let mut chunk = chunk.into_iter();
                while received < total {
                    while sent < total && sent - received < window {
                        let Some(params) = chunk.next() else { break };
                        client.send(Call::SubmitJob(params)).expect("send");
                        sent += 1;
                    }
                    client.flush().expect("flush");
                    let (_, reply) = client.recv().expect("recv");
                    assert!(matches!(reply, Ok(Reply::JobId(_) | Reply::Result(_))), "{reply:?}");
                    received += 1;
                }
            });
        }
    });
}
