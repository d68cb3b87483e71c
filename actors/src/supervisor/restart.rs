//! Supervision of the sync actors (registry, executors, submitters).
//!
//! A handler runs under [`guarded`]: a panic is caught, counted as an
//! error, and stops the actor. actix's `SyncArbiter` then builds a fresh
//! actor from its factory on the same thread (dropping whatever state the
//! panic may have corrupted, such as a VM mid-run), and the factory's
//! [`RestartCount`] records the restart.

use crate::metrics::ActorMetrics;
use actix::{Actor, ActorContext, Message, SyncContext};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Starts `threads` sync actors on OS threads named `name` (as `top` and
/// `perf` show them), rebuilt by `factory` after a panic.
pub fn start_pool<A, F>(name: &'static str, threads: usize, factory: F) -> actix::Addr<A>
where
    A: Actor<Context = SyncContext<A>>,
    F: Fn() -> A + Send + Sync + 'static,
{
    actix::SyncArbiter::start_with_thread_builder(
        threads,
        move || std::thread::Builder::new().name(name.into()),
        factory,
    )
}

/// A test-only message: the actor panics (fault injection must be on).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Panic;

/// Counts factory calls past the first `threads` as restarts.
#[derive(Debug, Clone)]
pub struct RestartCount {
    initial: usize,
    built: Arc<AtomicUsize>,
    metrics: Arc<ActorMetrics>,
}

impl RestartCount {
    /// A counter for a pool of `threads` actors.
    pub fn new(threads: usize, metrics: Arc<ActorMetrics>) -> Self {
        RestartCount { initial: threads, built: Arc::default(), metrics }
    }

    /// Call from the factory each time it builds an actor.
    pub fn started(&self) {
        if self.built.fetch_add(1, Ordering::Relaxed) >= self.initial {
            self.metrics.restarted();
            tracing::warn!(restarts = self.metrics.restarts(), "actor restarted by its supervisor");
        }
    }
}

/// Runs one message's handler: records its time and outcome, and turns a
/// panic into `None` and a restart of the actor.
pub fn guarded<A, T, E>(
    metrics: &ActorMetrics,
    ctx: &mut SyncContext<A>,
    handler: impl FnOnce() -> Result<T, E>,
) -> Option<Result<T, E>>
where
    A: Actor<Context = SyncContext<A>>,
{
    let start = Instant::now();
    match catch_unwind(AssertUnwindSafe(handler)) {
        Ok(result) => {
            metrics.handled(start.elapsed(), result.is_ok());
            Some(result)
        }
        Err(panic) => {
            metrics.handled(start.elapsed(), false);
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(actor = std::any::type_name::<A>(), %reason, "actor panicked; restarting it");
            ctx.stop();
            None
        }
    }
}

/// Handles [`Panic`]: panics inside [`guarded`], so the actor is restarted
/// exactly as after a real fault.
pub fn inject_panic<A>(metrics: &ActorMetrics, ctx: &mut SyncContext<A>)
where
    A: Actor<Context = SyncContext<A>>,
{
    let _ = guarded(metrics, ctx, || -> Result<(), std::convert::Infallible> { panic!("injected fault") });
}
