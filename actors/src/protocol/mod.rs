//! What the engine, its clients and the chain agree on: InfinityVM's ABI
//! structs ([`abi`]), the contracts' calls and events ([`bindings`]),
//! EIP-191 signatures ([`eip191`]), and offchain inputs as EIP-4844 blob
//! data ([`blobs`]).

pub mod abi;
pub mod bindings;
pub mod blobs;
pub mod eip191;
