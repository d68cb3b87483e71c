//! The executor: a pool of sync actors, one OS thread each, that run jobs
//! in the metered VM ([`vm`]) on warm instances ([`warm`]) and hand the
//! outcomes to the submitter.

pub(crate) mod vm;
mod warm;

pub(crate) use warm::WarmVms;

use crate::board::JobBoard;
use crate::job::JobSpec;
use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::{guarded, inject_panic, Handle, Mailbox, Panic};
use crate::program::ProgramId;
use crate::programs::Programs;
use crate::submitter::Executed;
use actix::{Actor, Handler, Message, SyncContext};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Run a job. The outcome goes to the submitter, not back to the sender.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub(crate) struct Execute {
    /// The job.
    pub spec: Arc<JobSpec>,
    /// Times this job was already attempted (a crash mid-run retries once).
    pub attempt: u8,
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
        })
    }

    fn execute(&mut self, spec: &Arc<JobSpec>) -> Result<(), ExecuteError> {
        let image = self.programs.get(&spec.program_id).ok_or(ExecuteError::UnknownProgram(spec.program_id))?;
        if !self.board.set_running(&spec.id) {
            tracing::debug!(job = %spec.id, "cancelled before it ran");
            return Ok(());
        }
        let start = Instant::now();
        let outcome =
            self.vms.run(&spec.program_id, &image, &spec.onchain_input, &spec.offchain_input, &spec.limits())?;
        let engine = &self.metrics.engine;
        engine.executor_busy_micros.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        engine.cycles.fetch_add(outcome.cycles, Ordering::Relaxed);
        self.submitter.do_send(Executed { spec: Arc::clone(spec), outcome });
        Ok(())
    }
}

impl Actor for Executor {
    type Context = SyncContext<Self>;
}

impl Handler<Execute> for Executor {
    type Result = ();

    fn handle(&mut self, msg: Execute, ctx: &mut SyncContext<Self>) {
        let actor = Arc::clone(&self.actor);
        match guarded(&actor, ctx, || self.execute(&msg.spec)) {
            Some(Ok(())) => {}
            Some(Err(err)) => {
                // The job stays pending in the store; the next start-up runs it.
                tracing::error!(job = %msg.spec.id, %err, "job could not be executed");
            }
            None if msg.attempt == 0 => {
                // Counted in again: it is a second message to this pool.
                actor.received();
                ctx.address().do_send(Execute { spec: msg.spec, attempt: 1 });
            }
            None => {
                tracing::error!(job = %msg.spec.id, "executor crashed twice on this job; left pending");
            }
        }
    }
}

impl Handler<Panic> for Executor {
    type Result = ();

    fn handle(&mut self, _: Panic, ctx: &mut SyncContext<Self>) {
        inject_panic(&self.actor, ctx);
    }
}
