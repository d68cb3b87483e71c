//! Faults: a full disk (a data dir on a real small tmpfs) and a poison job
//! (a job whose execution panics the host, by fault injection).
//!
//! The disk test mounts a tmpfs, so it needs root (as CI and this machine
//! run the tests); anywhere else it fails saying so, never passes silently.

mod common;

use common::engine::{u64_job, Engine};
use coprocessor::client::{Client, ClientError};
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{codes, Call, JobIdParams, JobResult, NoParams, Reply, StatusReply};
use coprocessor_actors::{Health, MetricsSnapshot, Store};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The reserve the disk test's engine keeps (`store.min_free_bytes`).
const RESERVE: u64 = 8 << 20;

/// How long the engine's drain may take (`supervisor::DRAIN_TIMEOUT`), and
/// the margin a stop gets on top of it.
const DRAIN: Duration = Duration::from_secs(30);
const STOP_MARGIN: Duration = Duration::from_secs(15);

/// A tmpfs mounted on a directory; unmounted (lazily) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a `mib` MiB tmpfs on `dir` (created), mode 0700 as the
    /// engine wants its data dir.
    fn mount(dir: &Path, mib: u64) -> Tmpfs {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        assert_eq!(uid, 0, "the full-disk test mounts a tmpfs and needs root (uid {uid}): run it as root, as CI does");
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs on {} failed: {status}", dir.display());
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A job of square-root with a 256 KiB offchain input (the size an
/// operator would fill a disk with).
fn big_job(program: ProgramId, signer: &Signer, nonce: u64) -> coprocessor::request::JobRequest {
    let mut request = u64_job(program, signer.address(), nonce, nonce * 7919 + 1);
    request.offchain_input =
        (0..256 << 10).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8 ^ nonce as u8).collect();
    request
}

fn submit(
    client: &mut Client,
    request: &coprocessor::request::JobRequest,
    signer: &Signer,
) -> Result<Vec<u8>, ClientError> {
    let reply: JobIdParams = client.call(Call::SubmitJob(request.sign(signer)))?;
    Ok(reply.job_id.0)
}

fn get_result(client: &mut Client, id: &[u8]) -> Result<JobResult, ClientError> {
    client.call(Call::GetResult(JobIdParams { job_id: coprocessor_actors::wire::HexBytes(id.to_vec()) }))
}

/// Asserts `err` is the disk-full refusal for the store under `data_dir`,
/// and returns the free bytes it reports.
fn assert_disk_full(err: &ClientError, data_dir: &Path) -> u64 {
    let ClientError::Rpc(rpc) = err else { panic!("not a refusal: {err}") };
    assert_eq!(rpc.code, codes::DISK_FULL, "{}", rpc.message);
    let suffix = format!(
        " bytes free under {}, reserve {RESERVE} (store.min_free_bytes): new jobs are refused until space is freed",
        data_dir.join("db").display()
    );
    let free = rpc
        .message
        .strip_prefix("disk full: ")
        .and_then(|rest| rest.strip_suffix(&suffix))
        .unwrap_or_else(|| panic!("unexpected refusal: {}", rpc.message));
    let free: u64 = free.parse().unwrap_or_else(|_| panic!("free bytes in {:?}", rpc.message));
    // A job is refused when writing it (about 3 x 256 KiB on disk) would
    // leave less than the reserve.
    assert!(free < RESERVE + (1 << 20), "refused with {free} bytes free, well above the reserve");
    free
}

fn metrics(client: &mut Client) -> MetricsSnapshot {
    client.call(Call::Metrics(NoParams {})).expect("metrics")
}

/// Waits (up to 10 s) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_disk_refuses_new_jobs_serves_reads_recovers_by_itself_and_stops_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _mount = Tmpfs::mount(&data, 32);
    // What the operator's other files take: freed later.
    let filler = data.join("filler");
    std::fs::write(&filler, vec![0x5a; 12 << 20]).unwrap();
    let config = format!("executors = 2\n[store]\nmin_free_bytes = {RESERVE}\ncache_bytes = 4194304\n");
    let engine = Engine::start_with(&data, Some(&config), &[]);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut client = engine.client();

    // Fill it: every job is acknowledged until the first refusal, and that
    // one says why, with the figures.
    let mut acked = Vec::new();
    let refusal = loop {
        let nonce = acked.len() as u64;
        assert!(nonce < 200, "32 MiB took 200 jobs of 256 KiB without a refusal");
        match submit(&mut client, &big_job(program, &signer, nonce), &signer) {
            Ok(id) => acked.push(id),
            Err(err) => break err,
        }
    };
    assert!(acked.len() >= 10, "refused after only {} jobs", acked.len());
    let free = assert_disk_full(&refusal, &data);
    eprintln!("disk full after {} jobs of 256 KiB: {free} bytes free, reserve {RESERVE}", acked.len());
    // Small jobs still fit above the reserve, until they do not either.
    let big = acked.len();
    let refusal = loop {
        let nonce = acked.len() as u64;
        assert!(nonce < big as u64 + 2000, "2000 small jobs fit in what was left above the reserve");
        match submit(&mut client, &u64_job(program, signer.address(), nonce, nonce), &signer) {
            Ok(id) => acked.push(id),
            Err(err) => break err,
        }
    };
    let free = assert_disk_full(&refusal, &data);
    eprintln!("then after {} small jobs: {free} bytes free", acked.len() - big);
    // The engine keeps answering: more jobs get the same refusal at once,
    // programs too.
    let mut refused = Vec::new();
    for nonce in acked.len() as u64..acked.len() as u64 + 5 {
        let request = big_job(program, &signer, nonce);
        let err = submit(&mut client, &request, &signer).expect_err("a job accepted on a full disk");
        assert_disk_full(&err, &data);
        refused.push(request.job_id().0.to_vec());
    }
    let elf = common::guest_elf("fibonacci");
    let err = client
        .call::<serde_json::Value>(Call::SubmitProgram(coprocessor_actors::wire::SubmitProgram {
            elf: coprocessor_actors::wire::HexBytes(elf),
            name: None,
        }))
        .expect_err("a program stored on a full disk");
    assert_disk_full(&err, &data);

    // Reads are served: every acknowledged job has its result, status and
    // metrics answer, and the metrics say the disk is full.
    let mut outputs = Vec::new();
    for id in &acked {
        let result = engine.wait_result(&mut client, id);
        assert_eq!(result.status, "done", "job 0x{}: {result:?}", hex::encode(id));
        outputs.push(result.output.expect("output").0);
    }
    let status: StatusReply = client.call(Call::Status(NoParams {})).expect("status");
    // Healthy (a restart would not help) but not ready, and the store check says why.
    let health: Health = client.call(Call::Health(NoParams {})).expect("health");
    assert!(health.healthy && !health.ready, "{health:?}");
    let store = &health.checks["store"];
    assert!(!store.ok && store.detail.starts_with("disk full: "), "{store:?}");
    assert!(store.detail.ends_with(&format!("reserve {RESERVE} (store.min_free_bytes): new jobs are refused")));
    assert!(!status.version.is_empty());
    eventually("metrics report the full disk", || metrics(&mut client).engine.disk_full);
    let full = metrics(&mut client).engine;
    assert!(full.disk_free_bytes < RESERVE && !full.store_broken, "{full:?}");
    assert_eq!(full.jobs_accepted, acked.len() as u64);

    // Space returns: new jobs are accepted again, with no restart.
    std::fs::remove_file(&filler).unwrap();
    let next = acked.len() as u64 + 5;
    let mut accepted = None;
    eventually("a job is accepted once space returns", || {
        match submit(&mut client, &big_job(program, &signer, next), &signer) {
            Ok(id) => accepted = Some(id),
            Err(err) => drop(assert_disk_full(&err, &data)),
        }
        accepted.is_some()
    });
    let after = accepted.expect("accepted");
    assert_eq!(engine.wait_result(&mut client, &after).status, "done");
    eventually("metrics report room again", || !metrics(&mut client).engine.disk_full);
    acked.push(after);
    outputs.push(get_result(&mut client, acked.last().unwrap()).unwrap().output.unwrap().0);

    // SIGTERM: it stops within its drain timeout, cleanly.
    drop(client);
    let stopping = Instant::now();
    let status = engine.terminate();
    let took = stopping.elapsed();
    assert!(status.success(), "the engine stopped with {status}");
    assert!(took < DRAIN + STOP_MARGIN, "the engine took {took:?} to stop");
    eprintln!("stopped in {took:?} after SIGTERM");

    // Nothing acknowledged is lost, nothing refused was stored, and the
    // store opens as it was left.
    let engine = Engine::start_with(&data, Some(&config), &[]);
    let mut client = engine.client();
    for (id, output) in acked.iter().zip(&outputs) {
        let result = get_result(&mut client, id).expect("an acknowledged job");
        assert_eq!((result.status.as_str(), result.output.as_ref().map(|o| &o.0)), ("done", Some(output)));
    }
    for id in &refused {
        let err = get_result(&mut client, id).expect_err("a refused job was stored");
        assert_eq!(err.code(), Some(codes::UNKNOWN_JOB), "{err}");
    }
    assert!(engine.terminate().success());
}

/// The poison job's offchain input (`pool::POISON_INPUT`): with
/// `COPROCESSOR_FAULT_INJECTION=1`, the executor that runs it panics.
const POISON: &[u8] = b"coprocessor fault injection: panic";

const FAULTS: [(&str, &str); 1] = [("COPROCESSOR_FAULT_INJECTION", "1")];

fn poison_job(program: ProgramId, signer: &Signer, nonce: u64) -> coprocessor::request::JobRequest {
    let mut request = u64_job(program, signer.address(), nonce, 4);
    request.offchain_input = POISON.to_vec();
    request
}

fn quarantine_reason(attempts: u8, id: &[u8]) -> String {
    format!("quarantined after {attempts} attempts: host panic: injected fault: poison job 0x{}", hex::encode(id))
}

fn executor_restarts(client: &mut Client) -> u64 {
    metrics(client).actors["executor"].restarts
}

#[test]
fn a_poison_job_is_quarantined_after_its_attempts_and_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start_with(&data, Some("executors = 2\n[executor]\nmax_attempts = 3\n"), &FAULTS);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut fast = engine.fast_client();
    // Forty jobs, the poison one in the middle.
    let mut sent = std::collections::HashMap::new();
    for nonce in 0..40u64 {
        let request = if nonce == 20 {
            poison_job(program, &signer, nonce)
        } else {
            u64_job(program, signer.address(), nonce, nonce)
        };
        sent.insert(fast.send(Call::SubmitJob(request.sign(&signer))).unwrap(), nonce);
    }
    fast.flush().unwrap();
    let mut ids = vec![Vec::new(); 40];
    for _ in 0..40 {
        let (id, reply) = fast.recv().unwrap();
        let Ok(Reply::JobId(job)) = reply else { panic!("refused: {reply:?}") };
        ids[sent[&id] as usize] = job.job_id.0;
    }
    let mut client = engine.client();
    for (nonce, id) in ids.iter().enumerate() {
        let result = engine.wait_result(&mut client, id);
        if nonce == 20 {
            assert_eq!(result.status, "failed");
            assert_eq!(result.failure_reason.as_deref(), Some(quarantine_reason(3, id).as_str()));
            assert_eq!((result.output.map(|o| o.0), result.signature), (Some(vec![]), None));
        } else {
            assert_eq!(result.status, "done", "job {nonce}: {result:?}");
        }
    }
    // Exactly three attempts, each a panic and a restart of its executor.
    let metrics = metrics(&mut client);
    assert_eq!(metrics.actors["executor"].restarts, 3);
    assert_eq!((metrics.engine.jobs_quarantined, metrics.engine.jobs_failed, metrics.engine.jobs_done), (1, 1, 39));
    // Replay compares the 39 and skips the quarantined one: the host
    // failed, there is no guest outcome to compare.
    let replay: coprocessor_actors::wire::ReplayReply =
        client.call(Call::Replay(coprocessor_actors::wire::ReplayParams::default())).expect("replay");
    assert_eq!((replay.replayed, replay.matched, replay.mismatched.len()), (39, 39, 0));
    // A failed nonce may be used again, by a job that starts from no
    // attempts: with fault injection still on, it is quarantined after
    // three more, not at once.
    let again = poison_job(program, &signer, 20);
    let id = submit(&mut client, &again, &signer).expect("the failed nonce again");
    let result = engine.wait_result(&mut client, &id);
    assert_eq!(result.failure_reason.as_deref(), Some(quarantine_reason(3, &id).as_str()));
    assert_eq!(executor_restarts(&mut client), 6);
    assert!(engine.terminate().success());
}

#[test]
fn a_poison_job_stays_quarantined_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "executors = 1\n[executor]\nmax_attempts = 4\n";
    let engine = Engine::start_with(&data, Some(config), &FAULTS);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut client = engine.client();
    let poison = poison_job(program, &signer, 0);
    let id = submit(&mut client, &poison, &signer).expect("poison job");
    // Killed mid-retries: after its second panic (the pause before the
    // third attempt is 400 ms), once that attempt is recorded.
    eventually("two attempts", || executor_restarts(&mut client) >= 2);
    let parts = engine.kill9();
    let store = Store::open(&data.join("db")).expect("the store after kill -9");
    let job_id = coprocessor_actors::job::JobId(id.clone().try_into().unwrap());
    let recorded = store.attempts(&job_id).unwrap().map_or(0, |attempts| attempts.count);
    drop(store);
    wait_store_released(&data);
    assert!((1..4).contains(&recorded), "{recorded} attempts recorded before the kill");

    // After the restart it goes on from the attempts recorded, and ends
    // quarantined; the ones before the kill counted.
    let engine = open_after_kill(parts);
    let mut client = engine.client();
    let result = engine.wait_result(&mut client, &id);
    assert_eq!(result.status, "failed");
    assert_eq!(result.failure_reason.as_deref(), Some(quarantine_reason(4, &id).as_str()));
    assert_eq!(executor_restarts(&mut client), u64::from(4 - recorded));
    // And once more: a quarantined job is never run again.
    let engine = engine.restart();
    let mut client = engine.client();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(executor_restarts(&mut client), 0);
    assert_eq!(get_result(&mut client, &id).unwrap().failure_reason, Some(quarantine_reason(4, &id)));
    let fine = u64_job(program, signer.address(), 1, 81);
    let fine_id = submit(&mut client, &fine, &signer).unwrap();
    assert_eq!(engine.wait_result(&mut client, &fine_id).status, "done");
}

/// Restarts the binary after `kill9`.
fn open_after_kill(parts: common::engine::Killed) -> Engine {
    Engine::respawn(parts)
}

/// Waits (up to 10 s) until nobody holds sled's lock on the data dir's
/// store: the threads of a store opened and dropped in this process let go
/// of it a moment after the last handle.
fn wait_store_released(data: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(data.join("db").join("db")).expect("the store's lock file");
    eventually("the store's lock is released", || {
        // SAFETY: flock on a descriptor `file` owns; the lock goes with it.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    });
}

/// With no reserve, sled meets ENOSPC itself (the case the reserve is
/// there to prevent): the store is marked broken and refuses every write
/// at once, every request is answered, SIGTERM still stops the engine in time (exit 1:
/// its store failed), and once the disk is bigger nothing acknowledged is
/// lost.
#[test]
fn a_store_that_meets_enospc_anyway_refuses_writes_and_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _mount = Tmpfs::mount(&data, 24);
    let config = "executors = 2\n[store]\nmin_free_bytes = 0\ncache_bytes = 4194304\n";
    let engine = Engine::start_with(&data, Some(config), &[]);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut client = engine.client();
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    for nonce in 0..200u64 {
        match submit(&mut client, &big_job(program, &signer, nonce), &signer) {
            Ok(id) => acked.push(id),
            Err(err) => errors.push(err),
        }
        if errors.len() == 5 {
            break;
        }
    }
    assert_eq!(errors.len(), 5, "24 MiB took 200 jobs of 256 KiB");
    for err in &errors {
        let ClientError::Rpc(rpc) = err else { panic!("not a refusal: {err}") };
        assert_eq!(rpc.code, codes::INTERNAL);
        assert!(
            rpc.message.starts_with("the store failed (")
                && rpc.message.contains("No space left on device")
                && rpc.message.ends_with("): it refuses writes until the engine restarts"),
            "{}",
            rpc.message
        );
    }
    // Every request is answered, none hangs: a failed sled refuses its own
    // reads too (it answers them with its I/O error), the rest is served.
    for id in &acked {
        match get_result(&mut client, id) {
            Ok(result) => assert!(matches!(result.status.as_str(), "done" | "pending" | "running"), "{result:?}"),
            Err(ClientError::Rpc(rpc)) => {
                assert_eq!(
                    (rpc.code, rpc.message.as_str()),
                    (codes::INTERNAL, "sled: IO error: No space left on device (os error 28)")
                )
            }
            Err(err) => panic!("{err}"),
        }
    }
    let _: StatusReply = client.call(Call::Status(NoParams {})).expect("status");
    eventually("metrics report the broken store", || metrics(&mut client).engine.store_broken);
    // The one state only a restart repairs: unhealthy, not ready.
    let health: Health = client.call(Call::Health(NoParams {})).expect("health");
    assert!(!health.healthy && !health.ready, "{health:?}");
    assert!(health.checks["store"].detail.ends_with("failed: it refuses writes until the engine restarts"));
    drop(client);
    let stopping = Instant::now();
    let status = engine.terminate();
    let took = stopping.elapsed();
    assert!(took < DRAIN + STOP_MARGIN, "the engine took {took:?} to stop");
    assert_eq!(status.code(), Some(1), "a failed store is an error at exit");
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("it refuses writes until the engine restarts"), "{log}");

    // More room, a restart: every acknowledged job is there and done.
    let status = Command::new("mount").args(["-o", "remount,size=64m"]).arg(&data).status().unwrap();
    assert!(status.success());
    let engine = Engine::start_with(&data, Some(config), &[]);
    let mut client = engine.client();
    for id in &acked {
        assert_eq!(engine.wait_result(&mut client, id).status, "done");
    }
    assert!(engine.terminate().success());
}
