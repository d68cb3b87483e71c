//! The metrics in Prometheus text format, served on a loopback address
//! with the health probes.

use super::MetricsSnapshot;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A per-actor series: its name, its Prometheus type, and the figure.
type ActorSeries = (&'static str, &'static str, fn(&super::ActorSnapshot) -> u64);

/// Renders a snapshot in the Prometheus text exposition format.
pub(crate) fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let actor_series: [ActorSeries; 7] = [
        ("coprocessor_actor_received_total", "counter", |a| a.received),
        ("coprocessor_actor_handled_total", "counter", |a| a.handled),
        ("coprocessor_actor_errors_total", "counter", |a| a.errors),
        ("coprocessor_actor_mailbox", "gauge", |a| a.mailbox),
        ("coprocessor_actor_handling_p50_micros", "gauge", |a| a.p50_micros),
        ("coprocessor_actor_handling_p99_micros", "gauge", |a| a.p99_micros),
        ("coprocessor_actor_restarts_total", "counter", |a| a.restarts),
    ];
    for (name, kind, value) in actor_series {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (actor, figures) in &snapshot.actors {
            let _ = writeln!(out, "{name}{{actor=\"{actor}\"}} {}", value(figures));
        }
    }
    let engine = &snapshot.engine;
    let engine_series: [(&str, &str, f64); 27] = [
        ("coprocessor_jobs_accepted_total", "counter", engine.jobs_accepted as f64),
        ("coprocessor_jobs_done_total", "counter", engine.jobs_done as f64),
        ("coprocessor_jobs_failed_total", "counter", engine.jobs_failed as f64),
        ("coprocessor_jobs_busy_total", "counter", engine.jobs_busy as f64),
        ("coprocessor_requests_rejected_total", "counter", engine.requests_rejected as f64),
        ("coprocessor_jobs_per_second", "gauge", engine.jobs_per_second),
        ("coprocessor_instructions_per_second", "gauge", engine.instructions_per_second),
        ("coprocessor_executor_utilization", "gauge", engine.executor_utilization),
        ("coprocessor_executors", "gauge", engine.executors as f64),
        ("coprocessor_sled_bytes", "gauge", engine.sled_bytes as f64),
        ("coprocessor_uptime_seconds", "gauge", engine.uptime_seconds as f64),
        ("coprocessor_jobs_relayed_total", "counter", engine.jobs_relayed as f64),
        ("coprocessor_relay_failures_total", "counter", engine.relay_failures as f64),
        ("coprocessor_jobs_dead_lettered_total", "counter", engine.jobs_dead_lettered as f64),
        ("coprocessor_jobs_cancelled_total", "counter", engine.jobs_cancelled as f64),
        ("coprocessor_jobs_already_settled_total", "counter", engine.jobs_already_settled as f64),
        ("coprocessor_settled_per_second", "gauge", engine.settled_per_second),
        ("coprocessor_relay_in_flight", "gauge", engine.relay_in_flight as f64),
        ("coprocessor_relay_backlog", "gauge", engine.relay_backlog as f64),
        ("coprocessor_relay_transactions_total", "counter", engine.relay_transactions as f64),
        ("coprocessor_relay_average_batch", "gauge", engine.relay_average_batch),
        ("coprocessor_relay_replacements_total", "counter", engine.relay_replacements as f64),
        ("coprocessor_relay_fee_per_result_gwei", "gauge", engine.relay_fee_per_result_gwei),
        ("coprocessor_relay_gas_per_result", "gauge", engine.relay_gas_per_result),
        ("coprocessor_relay_balance_gwei", "gauge", engine.relay_balance_gwei as f64),
        ("coprocessor_relay_low_balance", "gauge", f64::from(u8::from(engine.relay_low_balance))),
        ("coprocessor_relay_blocked_consumers", "gauge", engine.relay_blocked_consumers as f64),
    ];
    for (name, kind, value) in engine_series {
        let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
    }
    // Security refusals, by reason.
    let _ = writeln!(
        out,
        "# TYPE coprocessor_api_auth_failures_total counter\ncoprocessor_api_auth_failures_total {}",
        engine.api_auth_failures
    );
    let _ = writeln!(out, "# TYPE coprocessor_quota_refused_total counter");
    for (quota, value) in [("jobs", engine.quota_refused_jobs), ("cycles", engine.quota_refused_cycles)] {
        let _ = writeln!(out, "coprocessor_quota_refused_total{{quota=\"{quota}\"}} {value}");
    }
    // The store's disk and failures.
    for (name, kind, value) in [
        ("coprocessor_disk_full", "gauge", u64::from(engine.disk_full)),
        ("coprocessor_disk_free_bytes", "gauge", engine.disk_free_bytes),
        ("coprocessor_store_broken", "gauge", u64::from(engine.store_broken)),
        ("coprocessor_jobs_quarantined_total", "counter", engine.jobs_quarantined),
        ("coprocessor_dry_runs_total", "counter", engine.dry_runs),
    ] {
        let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
    }
    // What the VM ran, by ISA.
    for (name, figures) in [
        ("coprocessor_executor_jobs_total", &engine.executor_jobs_by_isa),
        ("coprocessor_executor_cycles_total", &engine.executor_cycles_by_isa),
    ] {
        let _ = writeln!(out, "# TYPE {name} counter");
        for (isa, value) in figures {
            let _ = writeln!(out, "{name}{{isa=\"{isa}\"}} {value}");
        }
    }
    out
}

/// Answers a health probe: `/readyz` (true) or `/healthz` (false). Resolves
/// to whether it passes and the JSON body.
pub(crate) type Probe = Arc<dyn Fn(bool) -> Pin<Box<dyn Future<Output = (bool, String)> + Send>> + Send + Sync>;

/// Serves, until the runtime stops, on `addr`: `GET /metrics` (and `/`)
/// `render(snapshot())`; `GET /healthz` and `GET /readyz` the probe's
/// answer, 200 when it passes and 503 when not; anything else 404.
pub(crate) async fn serve(
    addr: SocketAddr,
    snapshot: Arc<dyn Fn() -> MetricsSnapshot + Send + Sync>,
    probe: Probe,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving Prometheus metrics, /healthz and /readyz");
    loop {
        let (mut stream, _) = listener.accept().await?;
        let (snapshot, probe) = (Arc::clone(&snapshot), Arc::clone(&probe));
        tokio::spawn(async move {
            // Read the request head (bounded).
            let mut head = [0u8; 4096];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut head)).await;
            let Ok(Ok(n)) = read else { return };
            let (status, kind, body) = match request_path(&head[..n]) {
                Some("/metrics" | "/") => ("200 OK", "text/plain; version=0.0.4", render(&snapshot())),
                Some(path @ ("/healthz" | "/readyz")) => {
                    let (passes, body) = probe(path == "/readyz").await;
                    let status = if passes { "200 OK" } else { "503 Service Unavailable" };
                    (status, "application/json", body + "\n")
                }
                _ => ("404 Not Found", "text/plain", "not found: GET /metrics, /healthz or /readyz\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// The path of an HTTP request head's `GET` line, without its query.
fn request_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next()?;
    let mut words = std::str::from_utf8(line).ok()?.split(' ');
    let (method, target) = (words.next()?, words.next()?);
    (method == "GET").then(|| target.split('?').next().unwrap_or(target))
}

#[cfg(test)]
mod tests {
    use super::request_path;

    #[test]
    fn only_a_get_line_names_a_path() {
        assert_eq!(request_path(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n"), Some("/readyz"));
        assert_eq!(request_path(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Some("/metrics"));
        assert_eq!(request_path(b"POST /healthz HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_path(b"GET\r\n"), None);
        assert_eq!(request_path(&[0xff, 0xfe, b' ', b'/']), None);
    }
}
