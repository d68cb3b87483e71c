//! Cluster mode (`[cluster]`): engines sharing one NATS JetStream cluster
//! act as one node. Real `nats-server` processes on loopback, real engines.
//!
//! The engines share their programs (a program registered on any engine is
//! in the cluster before its client hears so, and every engine registers
//! it, validating it itself) and their jobs (a job accepted by any engine
//! is claimed and queued in the cluster, run once by whichever engine
//! pulls it, and its result answered by every engine).

mod common;

use common::engine::{u64_job, Engine};
use common::nats::NatsCluster;
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{
    codes, Call, ContainsProgram, ContainsReply, HexBytes, JobIdParams, ProgramIdReply, SubmitProgram,
};
use coprocessor_actors::wire::{BatchJob, BatchReply, ConsumerParams, JobResult, NoParams, NonceReply};
use coprocessor_actors::wire::{ProgramsReply, StatusReply, SubmitJobs};
use std::path::Path;
use std::time::{Duration, Instant};

/// The consumer signer every engine of a test cluster accepts.
fn app_signer() -> Signer {
    Signer::from_bytes(&[0x42; 32]).unwrap()
}

/// `n` engines on `nats`, signing as one operator and accepting
/// [`app_signer`]'s requests; `extra` goes into each `[cluster]` section.
fn engines(nats: &NatsCluster, dir: &Path, n: usize, extra: &str) -> Vec<Engine> {
    (0..n).map(|i| engine_at(nats, dir, i, extra)).collect()
}

/// [`engines`], with `guest` registered on the first and held by all.
fn engines_with(nats: &NatsCluster, dir: &Path, n: usize, extra: &str, guest: &str) -> (Vec<Engine>, ProgramId) {
    let cluster = engines(nats, dir, n, extra);
    let program = cluster[0].submit_program(guest);
    for engine in &cluster {
        assert!(engine.holds_within(&program, Duration::from_secs(30)), "{}", engine.log());
    }
    (cluster, program)
}

/// Engine `i` of [`engines`] (one that joins later, say).
fn engine_at(nats: &NatsCluster, dir: &Path, i: usize, extra: &str) -> Engine {
    let operator = dir.join("operator.key");
    keys::load_or_generate(&operator).unwrap();
    let data = dir.join(format!("node-{i}"));
    coprocessor_actors::create_data_dir(&data).unwrap();
    std::fs::copy(&operator, data.join(keys::OPERATOR_KEY)).unwrap();
    let config = format!(
        "[offchain]\nallowed_signers = [\"{}\"]\n{}{extra}",
        app_signer().address(),
        nats.engine_config(&format!("node-{i}"))
    );
    Engine::start_with(&data, Some(&config), &[])
}

/// Jobs the engine ran itself (its own sled log).
fn ran_here(engine: &Engine) -> u64 {
    let reply: ProgramsReply = engine.client().call(Call::ListPrograms(NoParams {})).unwrap();
    reply.programs.iter().map(|program| program.jobs).sum()
}

/// A job's result as `engine` answers it, once it is no longer pending.
fn result_on(engine: &Engine, id: &[u8]) -> JobResult {
    let start = Instant::now();
    loop {
        let params = JobIdParams { job_id: HexBytes(id.to_vec()) };
        // Unknown here until it is claimed, or run here.
        let status = match engine.client().call::<JobResult>(Call::GetResult(params)) {
            Ok(result) if !matches!(result.status.as_str(), "pending" | "running") => return result,
            Ok(result) => result.status,
            Err(err) if err.code() == Some(codes::UNKNOWN_JOB) => "unknown".to_owned(),
            Err(err) => panic!("job 0x{}: {err}", hex::encode(id)),
        };
        assert!(start.elapsed() < Duration::from_secs(120), "job 0x{} still {status}", hex::encode(id));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_program_registered_on_one_engine_runs_on_every_engine() {
    let nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let engine = |i: usize| engine_at(&nats, dir.path(), i, "");
    let (first, second) = (engine(0), engine(1));

    // Registered on the first engine: the second registers it too.
    let program = first.submit_program("square-root");
    assert!(second.holds_within(&program, Duration::from_secs(30)), "the second engine never registered it");
    // An engine that joins later finds it at start-up.
    let third = engine(2);
    assert!(third.holds_within(&program, Duration::from_secs(30)), "a late engine never registered it");

    // And takes jobs of it as if it had been registered there.
    for (nonce, node) in [&second, &third].into_iter().enumerate() {
        let signer = app_signer();
        let job = u64_job(program, signer.address(), nonce as u64, 81);
        let mut client = node.client();
        let _: JobIdParams = client.call(Call::SubmitJob(job.sign(&signer))).unwrap();
        let result = node.wait_result(&mut client, &job.job_id().0);
        assert_eq!(result.status, "done");
        assert_eq!(
            result.output.map(|out| out.0),
            Some(common::abi_u64(81).into_iter().chain(common::abi_u64(9)).collect())
        );
    }
    // Under the name it was registered with.
    let listed: coprocessor_actors::wire::ProgramsReply =
        third.client().call(Call::ListPrograms(coprocessor_actors::wire::NoParams {})).unwrap();
    let names: Vec<&str> = listed.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["square-root"]);
}

#[test]
fn a_program_no_engine_can_vouch_for_is_refused_by_every_engine() {
    let nats = NatsCluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start_with(&dir.path().join("node-0"), Some(&nats.engine_config("node-0")), &[]);

    // Someone with access to the servers puts three objects an engine must
    // not register: bytes that are not a guest, a guest under another
    // program's ID, and a name that is no program ID; then a good one.
    let not_a_guest = b"#!/bin/sh\necho hello\n".to_vec();
    let guest = common::guest_elf("fibonacci");
    let other = ProgramId::of(&common::guest_elf("square-root"));
    let good = common::guest_elf("clob");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.urls()[0].as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let store = js.get_object_store("coprocessor-programs").await.unwrap();
        for (name, bytes) in [
            (ProgramId::of(&not_a_guest).to_string(), &not_a_guest),
            (other.to_string(), &guest),
            ("fibonacci".to_owned(), &guest),
            (ProgramId::of(&good).to_string(), &good),
        ] {
            store.put(name.as_str(), &mut bytes.as_slice()).await.unwrap();
        }
    });
    let good_id = ProgramId::of(&good);
    assert!(engine.holds_within(&good_id, Duration::from_secs(30)), "the good program was never registered");
    // The objects before it were read first, and refused.
    for refused in [ProgramId::of(&not_a_guest), other, ProgramId::of(&guest)] {
        assert!(!engine.holds_within(&refused, Duration::ZERO), "{refused} was registered");
    }
    let log = std::fs::read_to_string(dir.path().join("node-0.log")).unwrap();
    assert!(log.contains("refused a program another engine shared"), "{log}");
    assert!(log.contains("its bytes hash to"), "{log}");
    assert!(log.contains("not a program ID"), "{log}");
    assert!(log.contains("invalid program"), "{log}");
}

#[test]
fn an_engine_that_cannot_reach_its_cluster_refuses_to_start_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("config.toml");
    let text = format!(
        "[cluster]\nservers = [\"nats://127.0.0.1:{port}\"]\nnode_name = \"alone\"\nrequest_timeout_ms = 1000\n"
    );
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");
    let out = common::coprocessor(&["run", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&format!("cannot reach the NATS servers nats://127.0.0.1:{port}")), "{stderr}");

    // And a [cluster] section that cannot work is refused before anything starts.
    std::fs::write(&config, "[cluster]\nservers = []\nnode_name = \"alone\"\n").unwrap();
    let out = common::coprocessor(&["run", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("cluster.servers must name at least one NATS server"), "{stderr}");
}

#[test]
fn an_outage_of_every_nats_server_refuses_new_jobs_keeps_acknowledged_ones_and_resumes() {
    let mut nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let extra = "ack_wait_ms = 2000\nrequest_timeout_ms = 1000\n";
    let (cluster, program) = engines_with(&nats, dir.path(), 2, extra, "fibonacci");
    // 600 jobs acknowledged by the two engines; then every server dies
    // (kill -9), whatever the engines were running.
    let signer = app_signer();
    let jobs: Vec<_> = (0..600u64).map(|nonce| u64_job(program, signer.address(), nonce, 45_000 + nonce)).collect();
    std::thread::scope(|scope| {
        for (i, engine) in cluster.iter().enumerate() {
            let mine: Vec<_> = jobs.iter().skip(i).step_by(2).map(|job| job.sign(&signer)).collect();
            let socket = engine.socket();
            scope.spawn(move || common::pipeline(&socket, 2, 64, mine));
        }
    });
    let outage = Instant::now();
    for i in 0..3 {
        nats.kill(i);
    }
    let recorded: u64 = cluster.iter().map(|engine| engine.metrics().engine.cluster_jobs_run).sum();
    assert!(recorded < 600, "every job had run before the outage: nothing was held through it");
    // For 10 s: a new job is refused, saying why; the engines stay up.
    let late = u64_job(program, signer.address(), 1_000_000, 7);
    while outage.elapsed() < Duration::from_secs(10) {
        for engine in &cluster {
            let err = engine.client().call::<JobIdParams>(Call::SubmitJob(late.sign(&signer))).unwrap_err();
            assert_eq!(err.code(), Some(codes::CLUSTER_UNAVAILABLE), "{err}");
            let id = late.job_id();
            assert!(
                err.to_string()
                    .starts_with(&format!("cluster unavailable: job {id} was not accepted: NATS JetStream, ")),
                "{err}"
            );
        }
    }
    // The servers come back: every acknowledged job gets its result, and
    // the job refused during the outage is accepted now (its claim was not
    // left behind).
    nats.restart_killed();
    for job in &jobs {
        let result = result_on(&cluster[0], &job.job_id().0);
        assert_eq!(result.status, "done", "{:?}", result.failure_reason);
    }
    let mut again = late.sign(&signer);
    again.wait = true;
    let done: JobResult = cluster[1].client().call(Call::SubmitJob(again)).unwrap();
    assert_eq!(done.status, "done");
}

#[test]
fn a_subscriber_on_one_engine_sees_every_result_of_its_consumer_whichever_engine_ran_it() {
    let nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let (cluster, program) = engines_with(&nats, dir.path(), 3, "", "square-root");
    let signer = app_signer();
    let (mine, theirs) = (alloy::primitives::Address::repeat_byte(0xaa), alloy::primitives::Address::repeat_byte(0xbb));
    let filter = |consumer: alloy::primitives::Address| coprocessor_actors::wire::JobFilter {
        consumer: Some(HexBytes(consumer.to_vec())),
        job_ids: None,
    };
    let mut subscription = cluster[0].client().subscribe(filter(mine)).unwrap();
    // A change never told fails the test instead of hanging it.
    subscription.set_timeout(Some(Duration::from_secs(60))).unwrap();

    // 100 jobs of ours and 30 of another consumer's, sent round-robin to
    // the three engines; any engine may run each.
    let mut ours = std::collections::HashSet::new();
    for nonce in 0..130u64 {
        let owner = if matches!(nonce % 13, 2 | 5 | 11) { theirs } else { mine };
        let job = u64_job(program, owner, nonce, nonce + 1);
        let _: JobIdParams = cluster[nonce as usize % 3].client().call(Call::SubmitJob(job.sign(&signer))).unwrap();
        if owner == mine {
            ours.insert(job.job_id().0.to_vec());
        }
    }
    assert_eq!(ours.len(), 100);
    // Each of ours is told done exactly once, with its result; the ones
    // engine 0 ran itself are told pending first. Nothing of theirs.
    let mut done = std::collections::HashSet::new();
    while done.len() < 100 {
        let change = subscription.next_change().unwrap();
        assert!(ours.contains(&change.job_id.0), "a job of another consumer: {change:?}");
        match change.status.as_str() {
            "pending" => {}
            "done" => {
                assert!(done.insert(change.job_id.0.clone()), "told done twice: {change:?}");
                assert_eq!(change.output, result_on(&cluster[1], &change.job_id.0).output);
            }
            other => panic!("job {:?} is {other}", change.job_id),
        }
    }
    // Nothing else is waiting: the next change is a new job's.
    let last = u64_job(program, mine, 500, 7);
    let _: JobIdParams = cluster[2].client().call(Call::SubmitJob(last.sign(&signer))).unwrap();
    let change = subscription.next_change().unwrap();
    assert_eq!(change.job_id.0, last.job_id().0.to_vec());
}

#[test]
fn a_program_the_cluster_cannot_take_is_refused_with_why() {
    let mut nats = NatsCluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let config = nats.engine_config("node-0") + "request_timeout_ms = 1000\n";
    let engine = Engine::start_with(&dir.path().join("node-0"), Some(&config), &[]);
    nats.kill(0);
    let elf = common::guest_elf("square-root");
    let id = ProgramId::of(&elf);
    let submit = SubmitProgram { elf: HexBytes(elf), name: None };
    let err = engine.client().call::<ProgramIdReply>(Call::SubmitProgram(submit)).unwrap_err();
    assert_eq!(err.code(), Some(codes::CLUSTER_UNAVAILABLE));
    assert_eq!(
        err.to_string(),
        format!(
            "program {id} is registered here but not shared with the cluster: NATS JetStream, put program {id} in \
             coprocessor-programs: no answer within 1000 ms"
        )
    );
}

#[test]
fn jobs_sent_round_robin_to_three_engines_each_run_once_with_a_single_engines_results() {
    let nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let (cluster, program) = engines_with(&nats, dir.path(), 3, "", "square-root");

    // 5,000 jobs, each sent to engine (nonce mod 3), pipelined.
    const JOBS: u64 = 5000;
    let signer = app_signer();
    let jobs: Vec<_> = (0..JOBS).map(|nonce| u64_job(program, signer.address(), nonce, nonce * 7 + 1)).collect();
    std::thread::scope(|scope| {
        for (i, engine) in cluster.iter().enumerate() {
            let mine: Vec<_> = jobs.iter().skip(i).step_by(3).map(|job| job.sign(&signer)).collect();
            let socket = engine.socket();
            scope.spawn(move || common::pipeline(&socket, 2, 64, mine));
        }
    });

    // A single engine with the same operator key runs the same jobs.
    let alone_dir = dir.path().join("alone");
    coprocessor_actors::create_data_dir(&alone_dir).unwrap();
    std::fs::copy(dir.path().join("operator.key"), alone_dir.join(keys::OPERATOR_KEY)).unwrap();
    let alone_config = format!("[offchain]\nallowed_signers = [\"{}\"]\n", signer.address());
    let alone = Engine::start_with(&alone_dir, Some(&alone_config), &[]);
    alone.submit_program("square-root");
    common::pipeline(&alone.socket(), 2, 64, jobs.iter().map(|job| job.sign(&signer)).collect());

    // Every engine answers every job with the single engine's result.
    for (n, job) in jobs.iter().enumerate() {
        let id = job.job_id().0;
        let expected = result_on(&alone, &id);
        assert_eq!(expected.status, "done");
        let answered = result_on(&cluster[(n + 1) % 3], &id);
        assert_eq!(
            (&answered.status, answered.cycles, &answered.output, &answered.result_with_metadata, &answered.signature),
            (&expected.status, expected.cycles, &expected.output, &expected.result_with_metadata, &expected.signature),
            "job {n}"
        );
    }
    // Each ran exactly once, somewhere.
    let ran: Vec<u64> = cluster.iter().map(ran_here).collect();
    assert_eq!(ran.iter().sum::<u64>(), JOBS, "runs per engine: {ran:?}");

    // What each engine says of its part, and of the queue (empty once its
    // next sample is taken).
    std::thread::sleep(Duration::from_millis(1500));
    let mut recorded = 0;
    for (i, engine) in cluster.iter().enumerate() {
        let status: StatusReply = engine.client().call(Call::Status(NoParams {})).unwrap();
        let part = status.cluster.expect("a cluster section");
        assert_eq!((part.node.as_str(), part.servers.len(), part.jobs_queued), (format!("node-{i}").as_str(), 3, 0));
        assert_eq!(part.jobs_run_here, ran[i]);
        recorded += part.results_recorded_here;
    }
    assert_eq!(recorded, JOBS);
    let out = common::coprocessor(&["status", "--data-dir", cluster[0].data_dir.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("cluster     0 jobs queued; here: {} run, ", ran[0])), "{text}");
}

#[test]
fn the_same_request_sent_to_three_engines_at_once_is_accepted_once() {
    let nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let (cluster, program) = engines_with(&nats, dir.path(), 3, "", "square-root");
    let signer = app_signer();
    for nonce in 1..=20u64 {
        let request = u64_job(program, signer.address(), nonce, 49).sign(&signer);
        let answers: Vec<Result<JobIdParams, String>> = std::thread::scope(|scope| {
            let sent: Vec<_> = cluster
                .iter()
                .map(|engine| {
                    let request = request.clone();
                    scope.spawn(move || {
                        engine.client().call::<JobIdParams>(Call::SubmitJob(request)).map_err(|err| {
                            assert_eq!(err.code(), Some(codes::NONCE_USED), "{err}");
                            err.to_string()
                        })
                    })
                })
                .collect();
            sent.into_iter().map(|answer| answer.join().unwrap()).collect()
        });
        let accepted = answers.iter().filter(|answer| answer.is_ok()).count();
        assert_eq!(accepted, 1, "nonce {nonce}: {answers:?}");
        for refused in answers.iter().filter_map(|answer| answer.as_ref().err()) {
            // Word for word what one engine answers.
            let consumer = signer.address().to_string().to_lowercase();
            assert_eq!(refused, &format!("nonce {nonce} already used by consumer {consumer}"));
        }
    }

    // A batch on one engine: each request enters the cluster on its own;
    // the two whose nonces another engine took are refused.
    let jobs: Vec<BatchJob> = (19..=28u64)
        .map(|nonce| {
            let signed = u64_job(program, signer.address(), nonce, nonce * nonce).sign(&signer);
            BatchJob {
                request: signed.request,
                signature: signed.signature,
                offchain_input: signed.offchain_input,
                relay_strategy: signed.relay_strategy,
            }
        })
        .collect();
    let reply: BatchReply = cluster[1].client().call(Call::SubmitJobs(SubmitJobs { jobs })).unwrap();
    let refused: Vec<Option<i32>> = reply.results.iter().map(|item| item.error.as_ref().map(|err| err.code)).collect();
    assert_eq!(&refused[..2], [Some(codes::NONCE_USED), Some(codes::NONCE_USED)]);
    assert!(refused[2..].iter().all(Option::is_none), "{:?}", reply.results);
    // Waiting for the result works from any engine, whichever runs the job.
    let mut waited = u64_job(program, signer.address(), 29, 144).sign(&signer);
    waited.wait = true;
    let result: JobResult = cluster[2].client().call(Call::SubmitJob(waited)).unwrap();
    assert_eq!(result.status, "done");
    assert_eq!(result.output.map(|out| out.0), Some([common::abi_u64(144), common::abi_u64(12)].concat()));

    // Each accepted job runs once, somewhere: 20 + 8 + 1.
    let start = Instant::now();
    let mut total: u64 = cluster.iter().map(ran_here).sum();
    while total < 29 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
        total = cluster.iter().map(ran_here).sum();
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cluster.iter().map(ran_here).sum::<u64>(), 29);

    // Whichever engines took a consumer's jobs in (1 to 29), each offers
    // the same next nonce, as one engine would; a consumer no engine has
    // seen starts at 0.
    let next_nonce = |engine: &Engine, consumer: Vec<u8>| {
        let params = ConsumerParams { consumer: HexBytes(consumer) };
        engine.client().call::<NonceReply>(Call::NextNonce(params)).unwrap().nonce
    };
    let offered: Vec<u64> = cluster.iter().map(|engine| next_nonce(engine, signer.address().to_vec())).collect();
    assert_eq!(offered, [30, 30, 30]);
    assert_eq!(next_nonce(&cluster[0], vec![0x5a; 20]), 0);
}

#[test]
fn kill_9_of_an_engine_then_of_a_server_loses_no_acknowledged_job() {
    let mut nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    // A short ack wait, so that the dead engine's jobs move on quickly.
    let (mut cluster, program) = engines_with(&nats, dir.path(), 3, "ack_wait_ms = 2000\n", "fibonacci");

    // 1,500 jobs of some 100k cycles each, acknowledged by the two engines
    // that will live; all three pull and run them. Once the first engine
    // has run some, it is killed (-9) with jobs pulled and not acked.
    let signer = app_signer();
    let jobs: Vec<_> = (0..1500u64).map(|nonce| u64_job(program, signer.address(), nonce, 20_000 + nonce)).collect();
    let dead = cluster.remove(0);
    let dead_data = dead.data_dir.clone();
    std::thread::scope(|scope| {
        for (i, engine) in cluster.iter().enumerate() {
            let mine: Vec<_> = jobs.iter().skip(i).step_by(2).map(|job| job.sign(&signer)).collect();
            let socket = engine.socket();
            scope.spawn(move || common::pipeline(&socket, 2, 64, mine));
        }
        let start = Instant::now();
        while ran_here(&dead) < 100 {
            assert!(start.elapsed() < Duration::from_secs(120), "the first engine never ran 100 jobs");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = dead.kill9();
    });
    // Then one NATS server.
    nats.kill(0);

    // Every acknowledged job gets a result, answered by both survivors alike.
    for job in &jobs {
        let id = job.job_id().0;
        let first = result_on(&cluster[0], &id);
        assert_eq!(first.status, "done", "job 0x{}", hex::encode(id));
        let second = result_on(&cluster[1], &id);
        assert_eq!((&first.output, &first.signature), (&second.output, &second.signature));
    }
    // Whatever the dead engine ran before it died is the very result the
    // cluster recorded: no job has two different results.
    let store = coprocessor_actors::Store::open(&dead_data.join("db")).unwrap();
    let mut ran_there = 0;
    for job in &jobs {
        if let Some(result) = store.result(&job.job_id()).unwrap() {
            ran_there += 1;
            let recorded = result_on(&cluster[0], &job.job_id().0);
            assert_eq!(recorded.output.map(|out| out.0), Some(result.output));
            assert_eq!(recorded.signature.map(|sig| sig.0), Some(result.signature));
        }
    }
    // The survivors ran all the rest.
    let survivors: u64 = cluster.iter().map(ran_here).sum();
    assert!(ran_there >= 100 && ran_there + survivors >= 1500, "{ran_there} + {survivors}");
}

#[test]
fn dev_cluster_runs_three_engines_as_one_node_on_a_chain_and_ctrl_c_stops_all_of_it() {
    let _turn = NatsCluster::turn();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    // Nine ports in a row: three clients, three routes, three monitors.
    let base = loop {
        let base = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let free = (0..9u16)
            .all(|i| base.checked_add(i).is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()));
        if free {
            break base;
        }
    };
    let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
    let mut dev = std::process::Command::new(env!("CARGO_BIN_EXE_coprocessor"))
        .args(["dev", "--cluster", "3", "--data-dir", data.to_str().unwrap(), "--nats-port", &base.to_string()])
        .args(["--rpc-port", "0"])
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let client = |i: usize| coprocessor::client::Client::connect(&data.join(format!("node-{i}/coprocessor.ipc")));
    let start = Instant::now();
    while (0..3).any(|i| client(i).is_err()) {
        assert!(dev.try_wait().unwrap().is_none(), "{}", std::fs::read_to_string(dir.path().join("dev.log")).unwrap());
        assert!(start.elapsed() < Duration::from_secs(120), "the cluster did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }

    // In the repository the example guests are registered, on every engine.
    let square_root = ProgramId::of(&common::guest_elf("square-root"));
    let has = |i: usize| {
        let params = ContainsProgram { program_id: HexBytes(square_root.0.to_vec()) };
        client(i).unwrap().call::<ContainsReply>(Call::ContainsProgram(params)).unwrap().contains
    };
    let start = Instant::now();
    while !(0..3).all(has) {
        assert!(start.elapsed() < Duration::from_secs(60), "the example guests were not registered everywhere");
        std::thread::sleep(Duration::from_millis(100));
    }
    // One dev key signs for every engine (the example consumers' offchain
    // signer): a job sent to one is answered by another, and settles onchain.
    let deployment: coprocessor::devnet::Deployment =
        serde_json::from_str(&std::fs::read_to_string(data.join("deployment.json")).unwrap()).unwrap();
    let consumer = deployment.examples.expect("the example consumers").square_root_consumer;
    let signer = keys::load(&data.join(keys::DEV_CONSUMER_KEY)).unwrap();
    let mut job = u64_job(square_root, consumer, 1, 1_000_000).sign(&signer);
    job.wait = true;
    let done: JobResult = client(1).unwrap().call(Call::SubmitJob(job)).unwrap();
    let id = done.job_id.0.clone();
    let answered: JobResult =
        client(2).unwrap().call(Call::GetResult(JobIdParams { job_id: HexBytes(id.clone()) })).unwrap();
    assert_eq!((done.status.as_str(), &answered.output), ("done", &done.output));
    let start = Instant::now();
    loop {
        let params = JobIdParams { job_id: HexBytes(id.clone()) };
        let seen: JobResult = client(0).unwrap().call(Call::GetResult(params)).unwrap();
        if seen.status == "confirmed" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the job is {} on engine 0", seen.status);
        std::thread::sleep(Duration::from_millis(100));
    }

    // Ctrl-C (SIGINT): everything stops, the dev process exits 0.
    // SAFETY: signals the child this test started.
    unsafe { libc::kill(dev.id() as i32, libc::SIGINT) };
    let status = common::engine::wait_for_exit(&mut dev, Duration::from_secs(60)).expect("dev exits after Ctrl-C");
    assert!(status.success(), "{status}");
    assert!(client(0).is_err() && std::net::TcpStream::connect(("127.0.0.1", base)).is_err());
}

#[test]
fn a_job_no_engine_would_accept_is_never_run_from_the_queue() {
    use alloy::sol_types::SolValue;
    use coprocessor_actors::job::JobSpec;
    use coprocessor_actors::protocol::abi::OffchainJobRequest;
    let nats = NatsCluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let cluster = engines(&nats, dir.path(), 1, "");
    let program = cluster[0].submit_program("square-root");
    let limits = coprocessor_actors::config::Config::embedded().unwrap().limits;
    let spec = |signer: &Signer, nonce: u64| {
        let signed = u64_job(program, signer.address(), nonce, 16).sign(signer);
        let decoded = OffchainJobRequest::abi_decode(&signed.request.0).unwrap();
        JobSpec::from_offchain(signed.request.0, &decoded, vec![], signed.signature.0, false, &limits).unwrap()
    };
    // Someone with access to the servers queues jobs directly: bytes that
    // are no job, a signed job whose input was changed, a job signed by a
    // signer the engine does not allow; then a good one.
    let mut changed = spec(&app_signer(), 1);
    changed.onchain_input = common::abi_u64(17);
    let stranger = spec(&Signer::from_bytes(&[7; 32]).unwrap(), 2);
    let good = spec(&app_signer(), 3);
    let encode = |spec: &JobSpec| bincode::serde::encode_to_vec(spec, bincode::config::standard()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.urls()[0].as_str()).await.unwrap());
        for payload in [b"not a job".to_vec(), encode(&changed), encode(&stranger), encode(&good)] {
            js.publish("coprocessor.jobs", payload.into()).await.unwrap().await.unwrap();
        }
    });
    let done = result_on(&cluster[0], &good.id.0);
    assert_eq!(done.status, "done");
    // The good one ran; the three before it were refused, never run.
    assert_eq!(ran_here(&cluster[0]), 1);
    let log = cluster[0].log();
    assert!(log.contains("refused: a message in COPROCESSOR_JOBS: not a job"), "{log}");
    assert!(log.contains(&format!("refused: job {}: not the job its signed request asks for", changed.id)), "{log}");
    // No engine allows that signer: each leaves it for another, until the
    // servers stop offering it.
    let stranger_address = Signer::from_bytes(&[7; 32]).unwrap().address();
    let left = format!(
        "left for another engine: job {}: signer {stranger_address} is not allowed for offchain jobs here",
        stranger.id
    );
    assert!(log.contains(&left), "{log}");
}
