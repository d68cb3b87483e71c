//! The Grafana dashboard (`deploy/grafana/coprocessor.json`) only queries
//! metrics the engine exports: a renamed metric fails this test.

mod common;

use common::engine::{u64_job, Engine};
use coprocessor::devnet::free_port;
use coprocessor_actors::wire::{Call, JobIdParams};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Every `coprocessor_*` name in a PromQL expression.
fn metric_names(expr: &str) -> impl Iterator<Item = String> + '_ {
    expr.match_indices("coprocessor_").map(move |(start, _)| {
        let rest = &expr[start..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        rest[..end].to_owned()
    })
}

/// The sample names of an OpenMetrics text.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next().map(str::to_owned))
        .collect()
}

#[test]
fn every_dashboard_query_names_a_metric_the_engine_exports() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let engine = Engine::start_with(
        &dir.path().join("data"),
        Some(&format!("[metrics]\nprometheus = \"127.0.0.1:{port}\"\n")),
        &[],
    );
    // One job, so that the per-program histograms have a series.
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut client = engine.client();
    let job = u64_job(program, signer.address(), 0, 49);
    let accepted: JobIdParams = client.call(Call::SubmitJob(job.sign(&signer))).unwrap();
    engine.wait_result(&mut client, &accepted.job_id.0);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.contains("content-type: application/openmetrics-text; version=1.0.0"), "{response}");
    assert!(response.trim_end().ends_with("# EOF"), "{response}");
    let exported = exported(&response);
    let label = format!("{{program=\"0x{}\"}}", hex::encode(program.0));
    assert!(response.contains(&format!("coprocessor_program_job_cycles_count{label} 1\n")), "{response}");
    assert!(response.contains(&format!("coprocessor_program_job_seconds_count{label} 1\n")), "{response}");

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/coprocessor.json");
    let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Throughput",
        "quantiles",
        "Queue depth",
        "utilization",
        "Cycles per program",
        "Relay backlog",
        "fees",
        "Restarts",
    ] {
        assert!(titles.iter().any(|title| title.contains(wanted)), "no panel about {wanted}: {titles:?}");
    }
    let mut queried = BTreeSet::new();
    for target in panels.iter().flat_map(|p| p["targets"].as_array().expect("targets")) {
        queried.extend(metric_names(target["expr"].as_str().expect("expr")));
    }
    assert!(queried.len() > 20, "{queried:?}");
    let missing: Vec<&String> = queried.iter().filter(|name| !exported.contains(*name)).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics the engine does not export: {missing:?}");
}
