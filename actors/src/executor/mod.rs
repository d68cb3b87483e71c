//! The executor: a pool of sync actors, one OS thread each, that run jobs
//! in the metered VM ([`vm`]) on warm instances ([`warm`]) and hand the
//! outcomes to the submitter.
//!
//! A job whose run fails the host (a panic, caught by `pool::guarded`, or
//! an engine error such as a VM that cannot be built) is not the guest's
//! failure: the attempt is recorded durably (the store's `attempts` tree)
//! and the job is tried again after a pause, on a fresh actor. After
//! `executor.max_attempts` it is quarantined: recorded `failed` with
//! "quarantined after N attempts: host panic: ...", never run again. The
//! count survives restarts, so a poison job cannot loop across them, and
//! the other jobs run on meanwhile.

pub(crate) mod vm;
mod warm;

pub(crate) use warm::WarmVms;

use crate::board::JobBoard;
use crate::job::{Failure, JobLimits, JobOutcome, JobSpec};
use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::{guarded_reason, inject_panic, Handle, Mailbox, Panic};
use crate::program::{Isa, ProgramId};
use crate::programs::Programs;
use crate::store::{Store, Write};
use crate::submitter::Executed;
use actix::{Actor, Addr, Handler, Message, SyncContext};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pause before a job whose run failed the host is tried again, times
/// the attempts so far.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Run a job. The outcome goes to the submitter, not back to the sender.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub(crate) struct Execute {
    /// The job.
    pub spec: Arc<JobSpec>,
    /// Attempts that already failed the host (recorded in the store; 0 for
    /// a new job).
    pub attempt: u8,
}

/// Run a registered program on inputs exactly as a job would run (the
/// same warm VMs, limits and meter) and answer the outcome: `coproc_call`.
/// Nothing is stored, signed or relayed, and nothing counts as a job in
/// the metrics.
#[derive(Debug, Message)]
#[rtype(result = "Result<DryRunOutcome, ExecuteError>")]
pub(crate) struct DryRun {
    /// The program.
    pub program_id: ProgramId,
    /// The onchain input.
    pub onchain_input: Vec<u8>,
    /// The offchain input.
    pub offchain_input: Vec<u8>,
    /// The job's limits.
    pub limits: JobLimits,
}

/// What a [`DryRun`] answers.
#[derive(Debug)]
pub(crate) struct DryRunOutcome {
    /// The program's instruction set.
    pub isa: Isa,
    /// The guest's outcome.
    pub outcome: JobOutcome,
    /// The run's wall time.
    pub wall: Duration,
}

/// Why a job could not be run (an engine problem, not the guest's).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecuteError {
    /// The program is not in the registry.
    #[error("program {0} is not registered")]
    UnknownProgram(ProgramId),
    /// The VM could not run it.
    #[error(transparent)]
    Vm(#[from] vm::VmError),
    /// The run panicked the host (the executor is rebuilt).
    #[error("host panic: {0}")]
    Panic(String),
}

/// One executor thread.
#[derive(Debug)]
pub(crate) struct Executor {
    programs: Arc<Programs>,
    board: Arc<JobBoard>,
    metrics: Arc<Metrics>,
    actor: Arc<ActorMetrics>,
    submitter: Mailbox<Executed>,
    vms: WarmVms,
    store: Store,
    max_attempts: u8,
    fault_injection: bool,
}

/// What every executor thread shares.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorSetup {
    /// Decoded programs.
    pub programs: Arc<Programs>,
    /// Jobs in flight.
    pub board: Arc<JobBoard>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where outcomes go.
    pub submitter: Mailbox<Executed>,
    /// Largest input, which sizes each VM's input regions.
    pub max_input_bytes: usize,
    /// Where failed attempts are recorded.
    pub store: Store,
    /// Attempts before a job that fails the host is quarantined.
    pub max_attempts: u8,
    /// `COPROCESSOR_FAULT_INJECTION=1`: the poison job panics.
    pub fault_injection: bool,
}

impl Executor {
    /// Starts `threads` executors.
    pub(crate) fn start(threads: usize, setup: ExecutorSetup) -> Handle<Executor> {
        let metrics = Arc::clone(&setup.metrics);
        crate::pool::start_sync(ActorName::Executor, threads, &metrics, move |actor| Executor {
            programs: Arc::clone(&setup.programs),
            board: Arc::clone(&setup.board),
            metrics: Arc::clone(&setup.metrics),
            actor,
            submitter: setup.submitter.clone(),
            vms: WarmVms::new(setup.max_input_bytes),
            store: setup.store.clone(),
            max_attempts: setup.max_attempts,
            fault_injection: setup.fault_injection,
        })
    }

    fn execute(&mut self, spec: &Arc<JobSpec>) -> Result<(), ExecuteError> {
        let image = self.programs.get(&spec.program_id).ok_or(ExecuteError::UnknownProgram(spec.program_id))?;
        if !self.board.set_running(&spec.id) {
            tracing::debug!(job = %spec.id, "cancelled before it ran");
            return Ok(());
        }
        if crate::pool::poisoned(self.fault_injection, &spec.offchain_input) {
            panic!("injected fault: poison job {}", spec.id);
        }
        let start = Instant::now();
        let outcome =
            self.vms.run(&spec.program_id, &image, &spec.onchain_input, &spec.offchain_input, &spec.limits())?;
        let took = start.elapsed();
        let engine = &self.metrics.engine;
        engine.executor_busy_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        engine.cycles.fetch_add(outcome.cycles, Ordering::Relaxed);
        engine.executed(image.isa, outcome.cycles);
        self.metrics.programs.observe(&spec.program_id, outcome.cycles, took);
        self.submitter.do_send(Executed { spec: Arc::clone(spec), outcome });
        Ok(())
    }

    fn dry_run(&mut self, run: &DryRun) -> Result<DryRunOutcome, ExecuteError> {
        let image = self.programs.get(&run.program_id).ok_or(ExecuteError::UnknownProgram(run.program_id))?;
        let start = Instant::now();
        let outcome = self.vms.run(&run.program_id, &image, &run.onchain_input, &run.offchain_input, &run.limits)?;
        self.metrics.engine.dry_runs.fetch_add(1, Ordering::Relaxed);
        Ok(DryRunOutcome { isa: image.isa, outcome, wall: start.elapsed() })
    }

    /// Attempt `attempts` of a job failed the host: quarantine it if that
    /// was the last one, otherwise record it and try again after a pause.
    fn failed_attempt(&self, spec: Arc<JobSpec>, attempts: u8, reason: String, me: Addr<Executor>) {
        tracing::error!(job = %spec.id, attempts, max_attempts = self.max_attempts, %reason, "a job's run failed the host");
        if attempts >= self.max_attempts {
            self.quarantine(spec, attempts, reason);
            return;
        }
        let (id, actor) = (spec.id, Arc::clone(&self.actor));
        self.store.commit(
            vec![Write::Attempt { id, attempts, reason }],
            Box::new(move |result| {
                if let Err(err) = result {
                    // Tried again all the same: the count holds in memory.
                    tracing::warn!(job = %id, %err, "a failed attempt could not be recorded");
                }
                let pause = RETRY_PAUSE * u32::from(attempts);
                let spawned = std::thread::Builder::new().name("executor-retry".into()).spawn(move || {
                    std::thread::sleep(pause);
                    // Counted in: it is another message to this pool.
                    actor.received();
                    me.do_send(Execute { spec, attempt: attempts });
                });
                if let Err(err) = spawned {
                    tracing::error!(job = %id, %err, "cannot schedule the job's next attempt; it runs at the next start");
                }
            }),
        );
    }

    /// Records the job `failed`, quarantined after `attempts` attempts.
    fn quarantine(&self, spec: Arc<JobSpec>, attempts: u8, reason: String) {
        if !self.board.contains(&spec.id) {
            return;
        }
        tracing::error!(job = %spec.id, attempts, %reason, "job quarantined");
        self.metrics.engine.quarantined.fetch_add(1, Ordering::Relaxed);
        let outcome = JobOutcome {
            output: Vec::new(),
            exit_code: None,
            cycles: 0,
            peak_memory_bytes: 0,
            failure: Some(Failure::Quarantined { attempts, reason }),
            log: Vec::new(),
        };
        self.submitter.do_send(Executed { spec, outcome });
    }
}

impl Actor for Executor {
    type Context = SyncContext<Self>;
}

impl Handler<Execute> for Executor {
    type Result = ();

    fn handle(&mut self, msg: Execute, ctx: &mut SyncContext<Self>) {
        let actor = Arc::clone(&self.actor);
        if msg.attempt >= self.max_attempts {
            // Recovered at start-up with every attempt already spent.
            actor.handled(Duration::ZERO, false);
            let reason = match self.store.attempts(&msg.spec.id) {
                Ok(Some(attempts)) => attempts.reason,
                Ok(None) => "host failure".to_owned(),
                Err(err) => format!("host failure (its record is unreadable: {err})"),
            };
            self.quarantine(msg.spec, msg.attempt, reason);
            return;
        }
        let reason = match guarded_reason(&actor, ctx, || self.execute(&msg.spec)) {
            Ok(Ok(())) => return,
            Ok(Err(err)) => format!("engine error: {err}"),
            Err(panic) => format!("host panic: {panic}"),
        };
        self.failed_attempt(msg.spec, msg.attempt.saturating_add(1), reason, ctx.address());
    }
}

impl Handler<DryRun> for Executor {
    type Result = Result<DryRunOutcome, ExecuteError>;

    fn handle(&mut self, msg: DryRun, ctx: &mut SyncContext<Self>) -> Self::Result {
        let actor = Arc::clone(&self.actor);
        guarded_reason(&actor, ctx, || self.dry_run(&msg)).unwrap_or_else(|panic| Err(ExecuteError::Panic(panic)))
    }
}

impl Handler<Panic> for Executor {
    type Result = ();

    fn handle(&mut self, _: Panic, ctx: &mut SyncContext<Self>) {
        inject_panic(&self.actor, ctx);
    }
}
