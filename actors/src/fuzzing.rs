//! What the fuzz targets (`fuzz/targets`) reach that the facade does not
//! otherwise export: the JSON-RPC decoder, without a running engine. Not a
//! stable API.

pub use crate::api::jsonrpc::{decode as decode_jsonrpc, split_batch, Decoded};
