//! The metrics as OpenMetrics text (`prometheus-client`), served on a
//! loopback address with the health probes.
//!
//! Names carry their unit and type as OpenMetrics wants them: counters end
//! in `_total`, times in `_seconds`, sizes in `_bytes` (fees in `_gwei`).
//! The engine's figures are read at each scrape from a [`MetricsSnapshot`]
//! (a collector); the per-program histograms of job cycles and durations
//! are live (`ProgramHistograms`, filled by the executors).

use super::{MetricsSnapshot, ProgramHistograms};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The content type of [`render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the metrics listener reads at each scrape.
pub(crate) type Snapshot = Arc<dyn Fn() -> MetricsSnapshot + Send + Sync>;

/// The registry the listener serves: the engine's figures, read from a
/// snapshot at each scrape, and the live per-program histograms.
pub(crate) fn registry(snapshot: Snapshot, programs: Option<&ProgramHistograms>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures(snapshot)));
    if let Some(programs) = programs {
        registry.register(
            "coprocessor_program_job_cycles",
            "Cycles each job of a program used (a histogram per program)",
            programs.cycles.clone(),
        );
        registry.register_with_unit(
            "coprocessor_program_job",
            "Time each job of a program ran in the VM (a histogram per program)",
            Unit::Seconds,
            programs.seconds.clone(),
        );
    }
    registry
}

/// Encodes `registry` as OpenMetrics text.
pub(crate) fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// A snapshot's figures as OpenMetrics text (no histograms).
#[cfg(test)]
pub(crate) fn render(snapshot: &MetricsSnapshot) -> String {
    let snapshot = snapshot.clone();
    encode(&registry(Arc::new(move || snapshot.clone()), None))
}

/// The engine's figures, read from a snapshot at each scrape.
struct Figures(Snapshot);

impl fmt::Debug for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Figures")
    }
}

/// A per-actor series: its name, help, type, unit, and the figure.
type ActorSeries = (&'static str, &'static str, MetricType, Option<Unit>, fn(&super::ActorSnapshot) -> f64);

impl Collector for Figures {
    fn encode(&self, mut out: DescriptorEncoder) -> fmt::Result {
        let snapshot = (self.0)();
        let actor_series: [ActorSeries; 7] = [
            ("coprocessor_actor_received", "Messages sent to the actor", MetricType::Counter, None, |a| {
                a.received as f64
            }),
            ("coprocessor_actor_handled", "Messages the actor handled", MetricType::Counter, None, |a| {
                a.handled as f64
            }),
            ("coprocessor_actor_errors", "Messages whose handling failed", MetricType::Counter, None, |a| {
                a.errors as f64
            }),
            ("coprocessor_actor_mailbox", "Messages waiting in the actor's mailbox", MetricType::Gauge, None, |a| {
                a.mailbox as f64
            }),
            ("coprocessor_actor_handling_p50", "Median handling time", MetricType::Gauge, Some(Unit::Seconds), |a| {
                a.p50_micros as f64 / 1e6
            }),
            (
                "coprocessor_actor_handling_p99",
                "99th percentile handling time",
                MetricType::Gauge,
                Some(Unit::Seconds),
                |a| a.p99_micros as f64 / 1e6,
            ),
            (
                "coprocessor_actor_restarts",
                "Times the actor was rebuilt after a panic",
                MetricType::Counter,
                None,
                |a| a.restarts as f64,
            ),
        ];
        for (name, help, kind, unit, value) in &actor_series {
            let mut family = out.encode_descriptor(name, help, unit.as_ref(), *kind)?;
            for (actor, figures) in &snapshot.actors {
                let labels = [("actor", actor.as_str())];
                figure(family.encode_family(&labels)?, kind, value(figures))?;
            }
        }
        let e = &snapshot.engine;
        let counters: [(&str, &str, u64); 19] = [
            ("coprocessor_jobs_accepted", "Jobs acknowledged", e.jobs_accepted),
            ("coprocessor_jobs_done", "Jobs done", e.jobs_done),
            ("coprocessor_jobs_failed", "Jobs failed", e.jobs_failed),
            ("coprocessor_jobs_busy", "Jobs refused with busy (queue full)", e.jobs_busy),
            ("coprocessor_requests_rejected", "Requests refused for any other reason", e.requests_rejected),
            ("coprocessor_jobs_relayed", "Results confirmed onchain", e.jobs_relayed),
            ("coprocessor_relay_failures", "Failed settlement submissions", e.relay_failures),
            ("coprocessor_jobs_dead_lettered", "Jobs moved to the dead-letter tree", e.jobs_dead_lettered),
            ("coprocessor_jobs_cancelled", "Jobs cancelled onchain", e.jobs_cancelled),
            ("coprocessor_jobs_already_settled", "Jobs found settled by someone else", e.jobs_already_settled),
            ("coprocessor_relay_transactions", "Settlement transactions sent", e.relay_transactions),
            ("coprocessor_relay_replacements", "Stuck transactions replaced", e.relay_replacements),
            ("coprocessor_api_auth_failures", "TCP connections refused for their token", e.api_auth_failures),
            ("coprocessor_jobs_quarantined", "Jobs quarantined after host panics", e.jobs_quarantined),
            ("coprocessor_dry_runs", "coproc_call dry runs", e.dry_runs),
            ("coprocessor_cluster_jobs_run", "Cluster jobs this engine pulled and ran", e.cluster_jobs_run),
            (
                "coprocessor_cluster_results_recorded",
                "Cluster jobs whose recorded result is this engine's",
                e.cluster_results_recorded,
            ),
            ("coprocessor_cluster_redeliveries", "Cluster jobs offered to this engine again", e.cluster_redeliveries),
            (
                "coprocessor_cluster_relays_ended",
                "Cluster results this engine relayed to their end",
                e.cluster_relays_ended,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(out.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let gauges: [(&str, &str, Option<Unit>, f64); 21] = [
            ("coprocessor_uptime", "Time since start-up", Some(Unit::Seconds), e.uptime_seconds as f64),
            ("coprocessor_jobs_per_second", "Jobs executed per second, last seconds", None, e.jobs_per_second),
            ("coprocessor_instructions_per_second", "Guest instructions per second", None, e.instructions_per_second),
            (
                "coprocessor_executor_utilization",
                "Share of executor time running guests (0 to 1)",
                None,
                e.executor_utilization,
            ),
            ("coprocessor_executors", "Executor threads", None, e.executors as f64),
            ("coprocessor_sled", "Bytes the store takes on disk", Some(Unit::Bytes), e.sled_bytes as f64),
            ("coprocessor_settled_per_second", "Results confirmed per second", None, e.settled_per_second),
            ("coprocessor_relay_in_flight", "Settlement transactions not yet mined", None, e.relay_in_flight as f64),
            ("coprocessor_relay_backlog", "Results not yet confirmed or dead-lettered", None, e.relay_backlog as f64),
            (
                "coprocessor_cluster_jobs_queued",
                "Jobs in the cluster's queue, not yet acked",
                None,
                e.cluster_jobs_queued as f64,
            ),
            (
                "coprocessor_cluster_relays_held",
                "Cluster results whose relay this engine holds",
                None,
                e.cluster_relays_held as f64,
            ),
            (
                "coprocessor_cluster_leases_held",
                "Consumers whose ordered results this engine relays (leases held)",
                None,
                e.cluster_leases_held as f64,
            ),
            (
                "coprocessor_cluster_relays_queued",
                "Results in the cluster's relay queue, not yet acked",
                None,
                e.cluster_relays_queued as f64,
            ),
            ("coprocessor_relay_average_batch", "Results per settlement transaction", None, e.relay_average_batch),
            (
                "coprocessor_relay_fee_per_result",
                "Fee per settled result",
                Some(Unit::Other("gwei".into())),
                e.relay_fee_per_result_gwei,
            ),
            ("coprocessor_relay_gas_per_result", "Gas per settled result", None, e.relay_gas_per_result),
            (
                "coprocessor_relay_balance",
                "Lowest relayer key balance",
                Some(Unit::Other("gwei".into())),
                e.relay_balance_gwei as f64,
            ),
            (
                "coprocessor_relay_low_balance",
                "1 while that balance covers few batches",
                None,
                f64::from(u8::from(e.relay_low_balance)),
            ),
            (
                "coprocessor_relay_blocked_consumers",
                "Consumers whose ordered relay waits",
                None,
                e.relay_blocked_consumers as f64,
            ),
            ("coprocessor_disk_free", "Free bytes on the store's disk", Some(Unit::Bytes), e.disk_free_bytes as f64),
            (
                "coprocessor_disk_full",
                "1 while the disk is below store.min_free_bytes",
                None,
                f64::from(u8::from(e.disk_full)),
            ),
        ];
        for (name, help, unit, value) in &gauges {
            let gauge = ConstGauge::new(*value);
            gauge.encode(out.encode_descriptor(name, help, unit.as_ref(), gauge.metric_type())?)?;
        }
        let broken = ConstGauge::new(i64::from(e.store_broken));
        broken.encode(out.encode_descriptor(
            "coprocessor_store_broken",
            "1 once sled failed",
            None,
            broken.metric_type(),
        )?)?;
        let mut quota = out.encode_descriptor(
            "coprocessor_quota_refused",
            "Jobs refused over a signer quota",
            None,
            MetricType::Counter,
        )?;
        for (which, value) in [("jobs", e.quota_refused_jobs), ("cycles", e.quota_refused_cycles)] {
            ConstCounter::new(value).encode(quota.encode_family(&[("quota", which)])?)?;
        }
        for (name, help, figures) in [
            ("coprocessor_executor_jobs", "Jobs the VM ran, by ISA", &e.executor_jobs_by_isa),
            ("coprocessor_executor_cycles", "Guest instructions those jobs ran, by ISA", &e.executor_cycles_by_isa),
        ] {
            let mut family = out.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (isa, value) in figures {
                ConstCounter::new(*value).encode(family.encode_family(&[("isa", isa.as_str())])?)?;
            }
        }
        Ok(())
    }
}

/// One sample of a labelled series.
fn figure(encoder: prometheus_client::encoding::MetricEncoder<'_>, kind: &MetricType, value: f64) -> fmt::Result {
    match kind {
        MetricType::Counter => ConstCounter::new(value as u64).encode(encoder),
        _ => ConstGauge::new(value).encode(encoder),
    }
}

/// Answers a health probe: `/readyz` (true) or `/healthz` (false). Resolves
/// to whether it passes and the JSON body.
pub(crate) type Probe = Arc<dyn Fn(bool) -> Pin<Box<dyn Future<Output = (bool, String)> + Send>> + Send + Sync>;

/// Serves, until the runtime stops, on `addr`: `GET /metrics` (and `/`)
/// the registry as OpenMetrics text; `GET /healthz` and `GET /readyz` the
/// probe's answer, 200 when it passes and 503 when not; anything else 404.
pub(crate) async fn serve(addr: SocketAddr, registry: Registry, probe: Probe) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving OpenMetrics, /healthz and /readyz");
    let registry = Arc::new(registry);
    loop {
        let (mut stream, _) = listener.accept().await?;
        let (registry, probe) = (Arc::clone(&registry), Arc::clone(&probe));
        tokio::spawn(async move {
            // Read the request head (bounded).
            let mut head = [0u8; 4096];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut head)).await;
            let Ok(Ok(n)) = read else { return };
            let (status, kind, body) = match request_path(&head[..n]) {
                Some("/metrics" | "/") => ("200 OK", CONTENT_TYPE, encode(&registry)),
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
