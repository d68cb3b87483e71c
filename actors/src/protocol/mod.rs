//! What the engine, its clients and the chain agree on: InfinityVM's ABI
//! structs ([`abi`]), the contracts' calls and events ([`bindings`]), and
//! EIP-191 signatures ([`eip191`]).

pub mod abi;
pub mod bindings;
pub mod eip191;
