//! What the engine, its clients and the chain agree on: InfinityVM's ABI
//! types, job IDs, and EIP-191 signatures.

pub mod abi;
pub mod eip191;
