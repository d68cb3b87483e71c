//! JSON-RPC 2.0: envelopes, batches, notifications and error objects.

use super::subscriptions::Session;
use super::wire::{codes, Call, Method, RpcError};
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
pub(crate) async fn handle_frame(shared: &Shared, session: &Session, frame: &[u8]) -> Option<Vec<u8>> {
    let items = match split_batch(frame) {
        Ok(None) => return handle_one(shared, session, frame).await,
        Ok(Some(items)) => items,
        Err(error) => return Some(error_line(&error)),
    };
    let mut responses = Vec::new();
    for item in items {
        if let Some(response) = handle_one(shared, session, item.get().as_bytes()).await {
            responses.push(response);
        }
    }
    if responses.is_empty() {
        return None;
    }
    let values: Vec<Value> = responses.iter().filter_map(|line| serde_json::from_slice(line).ok()).collect();
    let mut line = serde_json::to_vec(&values).unwrap_or_default();
    line.push(b'\n');
    Some(line)
}

/// A frame's batch items: `Ok(None)` if the frame is a single request, an
/// error for a batch that does not parse or is empty. Public (hidden) for
/// the fuzz targets.
#[doc(hidden)]
pub fn split_batch(frame: &[u8]) -> Result<Option<Vec<&RawValue>>, RpcError> {
    let first = frame.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'[') {
        return Ok(None);
    }
    let items: Vec<&RawValue> = serde_json::from_slice(frame).map_err(|err| parse_error(&err))?;
    if items.is_empty() {
        return Err(RpcError::new(codes::INVALID_REQUEST, "empty batch"));
    }
    Ok(Some(items))
}

/// One request, decoded before any work is done.
#[doc(hidden)]
#[derive(Debug)]
pub struct Decoded {
    /// The id to answer with (`null` when absent or invalid).
    pub reply_id: Value,
    /// A valid request without an id: it gets no answer.
    pub notification: bool,
    /// The call, or the error to answer with.
    pub call: Result<Call, RpcError>,
}

/// Decodes one request: the envelope (version, method, id), then the
/// params with `Method::parse`. Public (hidden) for the fuzz targets.
#[doc(hidden)]
pub fn decode(frame: &[u8]) -> Decoded {
    let envelope: Envelope<'_> = match serde_json::from_slice(frame) {
        Ok(envelope) => envelope,
        Err(err) => {
            let error = if err.is_syntax() || err.is_eof() {
                parse_error(&err)
            } else {
                RpcError::new(codes::INVALID_REQUEST, format!("invalid request: {err}"))
            };
            return Decoded { reply_id: Value::Null, notification: false, call: Err(error) };
        }
    };
    let id = envelope.id;
    let valid_id = matches!(id, None | Some(Value::Null | Value::Number(_) | Value::String(_)));
    let reply_id = if valid_id { id.clone().unwrap_or(Value::Null) } else { Value::Null };
    let method = match (&envelope.method, envelope.jsonrpc) {
        _ if !valid_id => Err("id must be a string, a number or null"),
        (_, version) if version != Some("2.0") => Err("jsonrpc must be \"2.0\""),
        (Some(Value::String(method)), _) => Ok(method.as_str()),
        _ => Err("method must be a string"),
    };
    let notification = id.is_none() && method.is_ok();
    let call = match method {
        Err(reason) => Err(RpcError::new(codes::INVALID_REQUEST, format!("invalid request: {reason}"))),
        Ok(method) => Method::parse(method, envelope.params),
    };
    Decoded { reply_id, notification, call }
}

fn parse_error(err: &serde_json::Error) -> RpcError {
    RpcError::new(codes::PARSE_ERROR, format!("parse error: {err}"))
}

async fn handle_one(shared: &Shared, session: &Session, frame: &[u8]) -> Option<Vec<u8>> {
    let decoded = decode(frame);
    let outcome = match decoded.call {
        Ok(Call::Subscribe(params)) => session.subscribe(params),
        Ok(Call::Unsubscribe(params)) => session.unsubscribe(params),
        Ok(call) => methods::call(shared, call).await,
        Err(error) => Err(error),
    };
    if decoded.notification {
        return None;
    }
    let reply_id = &decoded.reply_id;
    Some(match outcome {
        Ok(reply) => match reply.to_json() {
            Ok(value) => encode(reply_id, Ok(value)),
            Err(err) => encode(reply_id, Err(&RpcError::new(codes::INTERNAL, err.to_string()))),
        },
        Err(error) => encode(reply_id, Err(&error)),
    })
}
