//! One client connection: framing, pipelining and the write side.
//!
//! The first byte picks the protocol: [`FAST_PATH_MAGIC`] for bincode
//! frames, anything else for JSON-RPC (one JSON value per line; a value
//! that arrives complete without a newline is taken as is, as geth's IPC
//! clients send them). Requests run concurrently, up to
//! `api.max_requests_in_flight` per connection; beyond that the connection
//! stops reading, so a fast client is held back by its own socket and a
//! slow one (a byte a second) holds nothing but its own task.
//!
//! A TCP connection must authenticate first (`auth`): its first request,
//! read alone (at most `AUTH_MAX_BYTES`, within `AUTH_TIMEOUT`), must be
//! `coproc_auth` with the api token; otherwise it gets one error and is
//! closed, and nothing else it sent is read.

use super::auth::{self, reasons, Verdict, AUTH_TIMEOUT};
use super::subscriptions::{Outgoing, Session};
use super::wire::{codes, decode_fast_request, fast_frame, FastResponse, RpcError, AUTH_MAX_BYTES, FAST_PATH_MAGIC};
use super::{jsonrpc, methods, Shared};
use crate::keys::ApiToken;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, Semaphore};

// A response on its way out holds its request's slot until written: a
// client that pipelines without reading runs out of slots and is no longer
// read, so its unread answers cannot pile up in memory (and a
// subscription's notifications hold its backlog's).

const READ_CHUNK: usize = 64 * 1024;

/// The two encodings, picked by a connection's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json,
    Fast,
}

/// Serves one connection until the client closes it. `tcp_peer` is the
/// client's address on the TCP listener, whose connections must
/// authenticate first; `None` on the Unix socket.
pub(crate) async fn serve<S>(stream: S, shared: Rc<Shared>, tcp_peer: Option<SocketAddr>)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let (responses, queue) = mpsc::unbounded_channel::<Outgoing>();
    let writing = actix_rt::spawn(write_responses(writer, queue));
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let protocol = match (tcp_peer, &shared.token) {
        (Some(peer), Some(token)) => authenticate(&mut reader, &mut buf, token, peer, &shared, &responses).await,
        (Some(peer), None) => {
            // Api::start loads the token whenever TCP is on; never serve TCP without one.
            tracing::error!(%peer, "TCP connection without an api token loaded; closing it");
            None
        }
        (None, _) => match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(first_byte(&mut buf)),
        },
    };
    match protocol {
        Some(Protocol::Fast) => serve_fast(&mut reader, buf, &shared, &responses).await,
        Some(Protocol::Json) => serve_json(&mut reader, buf, &shared, &responses).await,
        None => {}
    }
    drop(responses);
    let _ = writing.await;
}

/// Takes the fast-path magic off `buf` if it starts with it.
fn first_byte(buf: &mut Vec<u8>) -> Protocol {
    if buf.first() == Some(&FAST_PATH_MAGIC) {
        buf.remove(0);
        Protocol::Fast
    } else {
        Protocol::Json
    }
}

/// Reads and judges a TCP connection's first request. On success the
/// protocol to go on with (what followed the request stays in `buf`);
/// on a refusal, its answer is queued, counted, and `None`.
async fn authenticate<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    token: &ApiToken,
    peer: SocketAddr,
    shared: &Shared,
    responses: &mpsc::UnboundedSender<Outgoing>,
) -> Option<Protocol> {
    let mut protocol = None;
    let judged = tokio::time::timeout(AUTH_TIMEOUT, first_request(reader, buf, token, &mut protocol)).await;
    let verdict = match judged {
        Ok(Some(verdict)) => verdict,
        // Closed before a whole first request: nothing to answer.
        Ok(None) if buf.is_empty() && protocol.is_none() => return None,
        Ok(None) => Verdict { answer: None, outcome: Err("closed before its first request was complete") },
        Err(_) => match protocol {
            Some(Protocol::Fast) => auth::fast_refusal(u64::MAX, reasons::TIMEOUT),
            _ => auth::json_refusal(&serde_json::Value::Null, reasons::TIMEOUT),
        },
    };
    if let Some(answer) = verdict.answer {
        let _ = responses.send((answer, None));
    }
    match verdict.outcome {
        Ok(()) => protocol,
        Err(reason) => {
            shared.ctx.metrics.engine.auth_failures.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, reason, "refused an unauthenticated TCP connection");
            // Let the refusal reach the client before the close: read (and
            // drop) what it already sent, for a moment, so the kernel does
            // not reset the connection over unread bytes.
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_millis(200), async {
                while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            None
        }
    }
}

/// Reads the first request (never more than `AUTH_MAX_BYTES` of it) and
/// judges it; `None` if the client closed first. Sets `protocol` once the
/// first byte is in.
async fn first_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    token: &ApiToken,
    protocol: &mut Option<Protocol>,
) -> Option<Verdict> {
    let mut framer = LineFramer::default();
    loop {
        if protocol.is_none() && !buf.is_empty() {
            *protocol = Some(first_byte(buf));
        }
        match protocol {
            Some(Protocol::Json) => match framer.next(buf, AUTH_MAX_BYTES) {
                Some(Frame::Request(frame)) => return Some(auth::check_json(&frame, token)),
                Some(Frame::TooLarge) => return Some(auth::json_refusal(&serde_json::Value::Null, reasons::TOO_LARGE)),
                None => {}
            },
            Some(Protocol::Fast) if buf.len() >= 4 => {
                let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if len > AUTH_MAX_BYTES {
                    return Some(auth::fast_refusal(u64::MAX, reasons::TOO_LARGE));
                }
                if buf.len() >= 4 + len {
                    let frame: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
                    return Some(auth::check_fast(&frame, token));
                }
            }
            _ => {}
        }
        // Never read more than the first request may take.
        let room = (AUTH_MAX_BYTES + 8).saturating_sub(buf.len()).max(1);
        let mut limited = (&mut *reader).take(room as u64);
        match limited.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn write_responses<W: AsyncWrite + Unpin>(writer: W, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    let mut writer = BufWriter::with_capacity(READ_CHUNK, writer);
    while let Some((response, _slot)) = queue.recv().await {
        if writer.write_all(&response).await.is_err() {
            return;
        }
        // Gather whatever else is ready into the same write.
        while let Ok((response, _slot)) = queue.try_recv() {
            if writer.write_all(&response).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

/// Runs `work` as its own task once the connection has a free slot; its
/// answer, if any, is queued for writing with the slot.
async fn dispatch<F>(slots: &Arc<Semaphore>, shared: &Shared, responses: &mpsc::UnboundedSender<Outgoing>, work: F)
where
    F: std::future::Future<Output = Option<Vec<u8>>> + 'static,
{
    let Ok(slot) = Arc::clone(slots).acquire_owned().await else { return };
    let api = Arc::clone(shared.ctx.metrics.actor(crate::metrics::ActorName::Api));
    api.received();
    let responses = responses.clone();
    actix_rt::spawn(async move {
        let start = Instant::now();
        let answer = work.await;
        api.handled(start.elapsed(), true);
        if let Some(answer) = answer {
            let _ = responses.send((answer, Some(slot)));
        }
    });
}

/// Waits for every request of the connection to finish.
async fn drain(slots: &Arc<Semaphore>, shared: &Shared) {
    let _ = slots.acquire_many(shared.ctx.config.api.max_requests_in_flight as u32).await;
}

async fn serve_json<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut buf: Vec<u8>,
    shared: &Rc<Shared>,
    responses: &mpsc::UnboundedSender<Outgoing>,
) {
    let slots = Arc::new(Semaphore::new(shared.ctx.config.api.max_requests_in_flight));
    let max = shared.ctx.config.api.max_frame_bytes;
    let mut framer = LineFramer::default();
    // Its subscriptions end with it (the last handle is dropped below).
    let session = Rc::new(Session::new(Rc::clone(shared), responses.clone()));
    loop {
        while let Some(frame) = framer.next(&mut buf, max) {
            let frame = match frame {
                Frame::Request(frame) => frame,
                Frame::TooLarge => {
                    let error = RpcError::new(codes::INVALID_REQUEST, format!("frame over the limit of {max} bytes"));
                    let _ = responses.send((jsonrpc::error_line(&error), None));
                    continue;
                }
            };
            let (shared2, session2) = (Rc::clone(shared), Rc::clone(&session));
            let work = async move { jsonrpc::handle_frame(&shared2, &session2, &frame).await };
            dispatch(&slots, shared, responses, work).await;
        }
        buf.reserve(READ_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // A last request without a newline before the client closed its side.
    if !framer.discarding && buf.iter().any(|b| !b.is_ascii_whitespace()) {
        let (shared2, session2) = (Rc::clone(shared), Rc::clone(&session));
        let work = async move { jsonrpc::handle_frame(&shared2, &session2, &buf).await };
        dispatch(&slots, shared, responses, work).await;
    }
    drain(&slots, shared).await;
    drop(session);
}

enum Frame {
    Request(Vec<u8>),
    TooLarge,
}

/// Splits a byte stream into JSON frames.
#[derive(Default)]
struct LineFramer {
    /// Bytes of `buf` already known to hold no newline.
    scanned: usize,
    /// Skipping the rest of an oversized frame.
    discarding: bool,
}

impl LineFramer {
    fn next(&mut self, buf: &mut Vec<u8>, max: usize) -> Option<Frame> {
        loop {
            if let Some(offset) = buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + offset;
                let frame: Vec<u8> = buf.drain(..=end).take(end).collect();
                self.scanned = 0;
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                if frame.len() > max {
                    return Some(Frame::TooLarge);
                }
                if frame.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(Frame::Request(frame));
            }
            self.scanned = buf.len();
            if self.discarding {
                buf.clear();
                self.scanned = 0;
                return None;
            }
            if buf.len() > max {
                buf.clear();
                self.scanned = 0;
                self.discarding = true;
                return Some(Frame::TooLarge);
            }
            // A complete value with no newline after it (geth-style IPC).
            let last = buf.iter().rev().find(|b| !b.is_ascii_whitespace());
            if matches!(last, Some(b'}' | b']')) && serde_json::from_slice::<serde::de::IgnoredAny>(buf).is_ok() {
                self.scanned = 0;
                return Some(Frame::Request(std::mem::take(buf)));
            }
            return None;
        }
    }
}

async fn serve_fast<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut buf: Vec<u8>,
    shared: &Rc<Shared>,
    responses: &mpsc::UnboundedSender<Outgoing>,
) {
    let slots = Arc::new(Semaphore::new(shared.ctx.config.api.max_requests_in_flight));
    let max = shared.ctx.config.api.max_frame_bytes;
    loop {
        while buf.len() < 4 {
            buf.reserve(READ_CHUNK);
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return drain(&slots, shared).await,
                Ok(_) => {}
            }
        }
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > max {
            let error = RpcError::new(codes::INVALID_REQUEST, format!("frame over the limit of {max} bytes"));
            let _ = responses.send((fast_frame(&FastResponse { id: u64::MAX, result: Err(error) }), None));
            // Skip the frame's bytes, then go on.
            let mut skip = len + 4;
            loop {
                let taken = skip.min(buf.len());
                buf.drain(..taken);
                skip -= taken;
                if skip == 0 {
                    break;
                }
                buf.reserve(READ_CHUNK);
                match reader.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return drain(&slots, shared).await,
                    Ok(_) => {}
                }
            }
            continue;
        }
        while buf.len() < 4 + len {
            buf.reserve((4 + len - buf.len()).min(max));
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return drain(&slots, shared).await,
                Ok(_) => {}
            }
        }
        let frame: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
        let shared2 = Rc::clone(shared);
        dispatch(&slots, shared, responses, async move {
            let response = match decode_fast_request(&frame) {
                Ok(request) => FastResponse { id: request.id, result: methods::call(&shared2, request.call).await },
                Err(err) => {
                    let id = bincode::decode_from_slice::<u64, _>(&frame, bincode::config::standard())
                        .map_or(u64::MAX, |(id, _)| id);
                    let error = RpcError::new(codes::INVALID_REQUEST, format!("malformed bincode request: {err}"));
                    FastResponse { id, result: Err(error) }
                }
            };
            Some(fast_frame(&response))
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> Vec<Result<String, ()>> {
        let mut framer = LineFramer::default();
        let mut buf = input.to_vec();
        let mut out = Vec::new();
        while let Some(frame) = framer.next(&mut buf, max) {
            out.push(match frame {
                Frame::Request(f) => Ok(String::from_utf8(f).unwrap()),
                Frame::TooLarge => Err(()),
            });
        }
        out
    }

    #[test]
    fn lines_blank_lines_and_a_complete_value_without_newline() {
        assert_eq!(
            frames(b"{\"a\":1}\n\n{\"b\":2}\n{\"c\":3}", 100),
            vec![Ok("{\"a\":1}".into()), Ok("{\"b\":2}".into()), Ok("{\"c\":3}".into())]
        );
        assert_eq!(frames(b"{\"a\":", 100), vec![]);
    }

    #[test]
    fn an_oversized_frame_is_reported_once_and_skipped() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\n{}\n");
        assert_eq!(frames(&input, 10), vec![Err(()), Ok("{}".into())]);
        // Arriving in pieces: reported when it passes the limit, the rest skipped.
        let mut framer = LineFramer::default();
        let mut buf = vec![b'x'; 20];
        assert!(matches!(framer.next(&mut buf, 10), Some(Frame::TooLarge)));
        buf.extend_from_slice(b"xxxx\n{}\n");
        assert!(matches!(framer.next(&mut buf, 10), Some(Frame::Request(f)) if f == b"{}"));
    }
}
