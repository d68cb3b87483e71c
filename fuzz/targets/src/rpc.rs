//! `jsonrpc` and `fast_frame`: the two request decoders of the socket API.

use coprocessor_actors::fuzzing::{decode_fast_request, decode_jsonrpc, split_batch, Decoded};
use coprocessor_actors::wire::{codes, FastRequest, Method};

/// Decodes `data` as one JSON-RPC frame (a request or a batch), as the
/// socket does before any work. A decoded call must survive
/// `Method::encode` and `Method::parse` unchanged; a refusal must carry a
/// JSON-RPC error code.
pub fn jsonrpc(data: &[u8]) {
    let items = match split_batch(data) {
        Ok(None) => vec![data],
        Ok(Some(items)) => {
            assert!(!items.is_empty());
            items.iter().map(|item| item.get().as_bytes()).collect()
        }
        Err(error) => {
            assert!([codes::PARSE_ERROR, codes::INVALID_REQUEST].contains(&error.code), "{error:?}");
            return;
        }
    };
    for item in items {
        let Decoded { reply_id, notification, call } = decode_jsonrpc(item);
        assert!(matches!(
            reply_id,
            serde_json::Value::Null | serde_json::Value::Number(_) | serde_json::Value::String(_)
        ));
        match call {
            Ok(call) => {
                let (method, params) = Method::encode(&call);
                let raw = serde_json::value::to_raw_value(&params).expect("params serialize");
                let again = Method::parse(method, Some(&raw)).expect("an encoded call parses");
                assert_eq!(again, call, "{method} changed through encode and parse");
            }
            Err(error) => {
                assert!(!notification || error.code != codes::INVALID_REQUEST, "{error:?}");
                assert!((-32768..=-32000).contains(&error.code), "not a JSON-RPC error code: {error:?}");
            }
        }
    }
}

/// Decodes `data` as the body of a fast-path frame with the engine's
/// decoder (`connection.rs`). A decoded request must round-trip through
/// `fast_frame` unchanged.
pub fn fast_frame(data: &[u8]) {
    let config = bincode::config::standard();
    let Ok(request) = decode_fast_request(data) else {
        // The id of a malformed request, for its error response.
        let _ = bincode::decode_from_slice::<u64, _>(data, config);
        return;
    };
    let frame = coprocessor_actors::fast_frame(&request);
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(len, frame.len() - 4, "the length prefix");
    let (again, used) =
        bincode::serde::decode_from_slice::<FastRequest, _>(&frame[4..], config).expect("an encoded request decodes");
    assert_eq!((again, used), (request, len), "the request changed through a frame");
}
