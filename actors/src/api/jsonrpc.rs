//! JSON-RPC 2.0: envelopes, batches, notifications and error objects.

use super::wire::{codes, Method, RpcError};
use super::{methods, Shared};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a str>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    /// `None` when absent (a notification); `Some(Null)` for `"id": null`.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[derive(Serialize)]
struct Response<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

/// The response line for an error that has no request id (parse errors,
/// oversized frames).
pub(crate) fn error_line(error: &RpcError) -> Vec<u8> {
    encode(&Value::Null, Err(error))
}

fn encode(id: &Value, outcome: Result<Value, &RpcError>) -> Vec<u8> {
    let (result, error) = match outcome {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(error)),
    };
    let mut line = serde_json::to_vec(&Response { jsonrpc: "2.0", id, result, error }).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Handles one frame (a request or a batch) and returns the response line,
/// or `None` when there is nothing to answer (notifications only).
pub(crate) async fn handle_frame(shared: &Shared, frame: &[u8]) -> Option<Vec<u8>> {
    let first = frame.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'[') {
        let items: Vec<&RawValue> = match serde_json::from_slice(frame) {
            Ok(items) => items,
            Err(err) => return Some(error_line(&parse_error(&err))),
        };
        if items.is_empty() {
            return Some(error_line(&RpcError::new(codes::INVALID_REQUEST, "empty batch")));
        }
        let mut responses = Vec::new();
        for item in items {
            if let Some(response) = handle_one(shared, item.get().as_bytes()).await {
                responses.push(response);
            }
        }
        if responses.is_empty() {
            return None;
        }
        let values: Vec<Value> = responses.iter().filter_map(|line| serde_json::from_slice(line).ok()).collect();
        let mut line = serde_json::to_vec(&values).unwrap_or_default();
        line.push(b'\n');
        return Some(line);
    }
    handle_one(shared, frame).await
}

fn parse_error(err: &serde_json::Error) -> RpcError {
    RpcError::new(codes::PARSE_ERROR, format!("parse error: {err}"))
}

async fn handle_one(shared: &Shared, frame: &[u8]) -> Option<Vec<u8>> {
    let envelope: Envelope<'_> = match serde_json::from_slice(frame) {
        Ok(envelope) => envelope,
        Err(err) if err.is_syntax() || err.is_eof() => return Some(error_line(&parse_error(&err))),
        Err(err) => {
            let error = RpcError::new(codes::INVALID_REQUEST, format!("invalid request: {err}"));
            return Some(error_line(&error));
        }
    };
    let id = envelope.id.clone();
    let valid_id = matches!(id, None | Some(Value::Null | Value::Number(_) | Value::String(_)));
    let reply_id = if valid_id { id.clone().unwrap_or(Value::Null) } else { Value::Null };
    let method = match (&envelope.method, envelope.jsonrpc) {
        _ if !valid_id => Err("id must be a string, a number or null"),
        (_, version) if version != Some("2.0") => Err("jsonrpc must be \"2.0\""),
        (Some(Value::String(method)), _) => Ok(method.as_str()),
        _ => Err("method must be a string"),
    };
    let outcome = match method {
        Err(reason) => Err(RpcError::new(codes::INVALID_REQUEST, format!("invalid request: {reason}"))),
        Ok(method) => match Method::parse(method, envelope.params) {
            Ok(call) => methods::call(shared, call).await,
            Err(error) => Err(error),
        },
    };
    let is_notification = id.is_none() && method.is_ok();
    if is_notification {
        return None;
    }
    Some(match outcome {
        Ok(reply) => match reply.to_json() {
            Ok(value) => encode(&reply_id, Ok(value)),
            Err(err) => encode(&reply_id, Err(&RpcError::new(codes::INTERNAL, err.to_string()))),
        },
        Err(error) => encode(&reply_id, Err(&error)),
    })
}
