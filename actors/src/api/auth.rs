//! The first request of a TCP connection: `coproc_auth {token}` with the
//! engine's api token (`<data_dir>/api.token`).
//!
//! `connection` reads that one request (at most [`AUTH_MAX_BYTES`], within
//! [`AUTH_TIMEOUT`]) before anything else; these functions judge it. A
//! refusal is answered with [`codes::UNAUTHORIZED`] and the connection is
//! closed: nothing else the client sent is read, decoded or run. The
//! presented token is never echoed, logged or kept.

use super::wire::{codes, AuthParams, Call, Empty, FastRequest, FastResponse, Reply, RpcError};
use crate::keys::ApiToken;
use serde_json::Value;
use std::time::Duration;

/// How long a TCP client has to authenticate.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the first request earned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// What to send back (nothing for an accepted JSON-RPC notification).
    pub(crate) answer: Option<Vec<u8>>,
    /// `Err(reason)` when refused: the connection is closed.
    pub(crate) outcome: Result<(), &'static str>,
}

/// Why a first request is refused, as the client reads it.
pub(crate) mod reasons {
    /// Something other than `coproc_auth`.
    pub(crate) const NOT_AUTH: &str = "unauthorized: the first request of a TCP connection must be coproc_auth \
                                       {\"token\": ...} with the engine's api token (<data_dir>/api.token)";
    /// `coproc_auth` with a token that is not the engine's.
    pub(crate) const WRONG_TOKEN: &str = "unauthorized: wrong api token";
    /// A first request over `AUTH_MAX_BYTES`.
    pub(crate) const TOO_LARGE: &str = "unauthorized: the first request of a TCP connection (coproc_auth) must \
                                        fit in 4096 bytes";
    /// Nothing complete within [`super::AUTH_TIMEOUT`].
    pub(crate) const TIMEOUT: &str = "unauthorized: no coproc_auth within 10 s";
}

fn error(code: i32, message: &str) -> RpcError {
    RpcError::new(code, message)
}

/// A refusal in JSON-RPC, with `id` (null when unknown).
pub(crate) fn json_refusal(id: &Value, reason: &'static str) -> Verdict {
    let response = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error(codes::UNAUTHORIZED, reason)});
    let mut line = serde_json::to_vec(&response).unwrap_or_default();
    line.push(b'\n');
    Verdict { answer: Some(line), outcome: Err(reason) }
}

/// A refusal on the fast path, with `id` (`u64::MAX` when unknown).
pub(crate) fn fast_refusal(id: u64, reason: &'static str) -> Verdict {
    let response = FastResponse { id, result: Err(error(codes::UNAUTHORIZED, reason)) };
    Verdict { answer: Some(super::wire::fast_frame(&response)), outcome: Err(reason) }
}

/// Judges a JSON-RPC first request (one line, not a batch).
pub(crate) fn check_json(frame: &[u8], token: &ApiToken) -> Verdict {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(frame) else {
        return json_refusal(&Value::Null, reasons::NOT_AUTH);
    };
    let id = match request.get("id") {
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id.clone()),
        _ => None,
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    let is_auth = request.get("jsonrpc") == Some(&Value::from("2.0"))
        && request.get("method") == Some(&Value::from("coproc_auth"));
    let params = request.get("params").cloned().and_then(|params| serde_json::from_value::<AuthParams>(params).ok());
    let Some(params) = params.filter(|_| is_auth) else {
        return json_refusal(&reply_id, reasons::NOT_AUTH);
    };
    if !token.matches(&params.token) {
        return json_refusal(&reply_id, reasons::WRONG_TOKEN);
    }
    let answer = id.map(|id| {
        let mut line =
            serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {}})).unwrap_or_default();
        line.push(b'\n');
        line
    });
    Verdict { answer, outcome: Ok(()) }
}

/// Judges a fast-path first frame (its bytes after the length prefix).
pub(crate) fn check_fast(frame: &[u8], token: &ApiToken) -> Verdict {
    let request = super::wire::decode_fast_request(frame);
    let (id, params) = match request {
        Ok(FastRequest { id, call: Call::Auth(params) }) => (id, params),
        Ok(FastRequest { id, .. }) => return fast_refusal(id, reasons::NOT_AUTH),
        Err(_) => return fast_refusal(u64::MAX, reasons::NOT_AUTH),
    };
    if !token.matches(&params.token) {
        return fast_refusal(id, reasons::WRONG_TOKEN);
    }
    let response = FastResponse { id, result: Ok(Reply::Empty(Empty {})) };
    Verdict { answer: Some(super::wire::fast_frame(&response)), outcome: Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::NoParams;

    fn answer(verdict: &Verdict) -> Value {
        serde_json::from_slice(verdict.answer.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn json_first_requests() {
        let token = ApiToken::random();
        let auth = |t: &str| format!(r#"{{"jsonrpc":"2.0","id":7,"method":"coproc_auth","params":{{"token":"{t}"}}}}"#);
        let ok = check_json(auth(&token.to_hex()).as_bytes(), &token);
        assert_eq!(ok.outcome, Ok(()));
        assert_eq!(answer(&ok), serde_json::json!({"jsonrpc": "2.0", "id": 7, "result": {}}));

        let wrong = check_json(auth(&ApiToken::random().to_hex()).as_bytes(), &token);
        assert_eq!(wrong.outcome, Err(reasons::WRONG_TOKEN));
        let body = answer(&wrong);
        assert_eq!((body["id"].clone(), body["error"]["code"].clone()), (7.into(), codes::UNAUTHORIZED.into()));
        assert_eq!(body["error"]["message"], reasons::WRONG_TOKEN);
        assert!(!String::from_utf8_lossy(wrong.answer.as_ref().unwrap()).contains(&token.to_hex()[..8]));

        for other in [
            r#"{"jsonrpc":"2.0","id":1,"method":"coproc_status"}"#.to_owned(),
            format!(r#"[{}]"#, auth(&token.to_hex())),
            auth(&token.to_hex()).replace("2.0", "1.0"),
            auth(&token.to_hex()).replace("\"token\"", "\"tok\""),
            "not json".to_owned(),
        ] {
            let verdict = check_json(other.as_bytes(), &token);
            assert_eq!(verdict.outcome, Err(reasons::NOT_AUTH), "{other}");
            assert_eq!(answer(&verdict)["error"]["code"], codes::UNAUTHORIZED, "{other}");
        }
        // A notification that authenticates gets no answer.
        let note = format!(r#"{{"jsonrpc":"2.0","method":"coproc_auth","params":{{"token":"{}"}}}}"#, token.to_hex());
        assert_eq!(check_json(note.as_bytes(), &token), Verdict { answer: None, outcome: Ok(()) });
    }

    #[test]
    fn fast_first_frames() {
        let token = ApiToken::random();
        let frame = |call: Call| super::super::wire::fast_frame(&FastRequest { id: 3, call })[4..].to_vec();
        let ok = check_fast(&frame(Call::Auth(AuthParams { token: token.to_hex() })), &token);
        assert_eq!(ok.outcome, Ok(()));
        let decode = |verdict: &Verdict| {
            bincode::serde::decode_from_slice::<FastResponse, _>(
                &verdict.answer.as_ref().unwrap()[4..],
                bincode::config::standard(),
            )
            .unwrap()
            .0
        };
        assert_eq!(decode(&ok), FastResponse { id: 3, result: Ok(Reply::Empty(Empty {})) });
        let wrong = check_fast(&frame(Call::Auth(AuthParams { token: "00".repeat(32) })), &token);
        assert_eq!(
            decode(&wrong),
            FastResponse { id: 3, result: Err(error(codes::UNAUTHORIZED, reasons::WRONG_TOKEN)) }
        );
        let other = check_fast(&frame(Call::Status(NoParams {})), &token);
        assert_eq!(decode(&other), FastResponse { id: 3, result: Err(error(codes::UNAUTHORIZED, reasons::NOT_AUTH)) });
        let garbage = check_fast(&[0xff; 9], &token);
        assert_eq!(decode(&garbage).id, u64::MAX);
        assert_eq!(garbage.outcome, Err(reasons::NOT_AUTH));
    }
}
