//! What the fuzz targets (`fuzz/targets`) reach that the facade does not
//! otherwise export: the JSON-RPC and fast-path decoders, without a running
//! engine. Not a stable API.

pub use crate::api::decode_fast_request;
pub use crate::api::jsonrpc::{decode as decode_jsonrpc, split_batch, Decoded};
