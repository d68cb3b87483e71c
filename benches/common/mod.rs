//! Helpers shared by the benchmarks.
#![allow(dead_code, unreachable_pub)]

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
