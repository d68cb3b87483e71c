//! Supervision as a library: how actors are started, counted, guarded and
//! restarted, and how they reach each other.
//!
//! - [`start_sync`] starts a pool of sync actors on named OS threads. A
//!   handler runs under [`guarded`]: a panic is caught, counted as an
//!   error, and stops the actor; actix's `SyncArbiter` then builds a fresh
//!   one from the factory on the same thread (dropping whatever state the
//!   panic may have corrupted, such as a VM mid-run), and the restart is
//!   counted.
//! - A started actor is a [`Handle`]: its address and its counters. Peers
//!   never get the address, only a [`Mailbox`] for one message type, which
//!   counts each message in as it is sent. So a message is counted once, by
//!   the actor it is for, and no actor names another's type.
//! - [`Panic`] is the fault-injection message: the actor panics inside
//!   [`guarded`] exactly as after a real fault. [`POISON_INPUT`] is the
//!   fault-injection job: an executor panics on it, every time.
//!
//! Fault injection exists only when the engine starts with
//! `COPROCESSOR_FAULT_INJECTION=1` in its environment: no request, guest or
//! chain event can turn it on.

use crate::metrics::{ActorMetrics, ActorName, Metrics};
use actix::dev::ToEnvelope;
use actix::{Actor, ActorContext, Addr, Handler, MailboxError, Message, Recipient, SyncContext};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A started actor: its address and its counters. Only the supervisor holds
/// one; it hands out [`Mailbox`]es.
#[derive(Debug)]
pub(crate) struct Handle<A: Actor> {
    addr: Addr<A>,
    counters: Arc<ActorMetrics>,
}

impl<A: Actor> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Handle { addr: self.addr.clone(), counters: Arc::clone(&self.counters) }
    }
}

impl<A: Actor> Handle<A> {
    /// The handle of an actor started some other way (an async actor).
    pub(crate) fn new(addr: Addr<A>, counters: Arc<ActorMetrics>) -> Self {
        Handle { addr, counters }
    }

    /// A counted mailbox for one of the messages the actor handles.
    pub(crate) fn mailbox<M>(&self) -> Mailbox<M>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        Mailbox { recipient: self.addr.clone().recipient(), counters: Arc::clone(&self.counters) }
    }
}

/// Where one kind of message goes: the receiving actor's recipient and its
/// counters. Sending counts the message in.
pub(crate) struct Mailbox<M: Message + Send>
where
    M::Result: Send,
{
    recipient: Recipient<M>,
    counters: Arc<ActorMetrics>,
}

impl<M: Message + Send> Clone for Mailbox<M>
where
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Mailbox { recipient: self.recipient.clone(), counters: Arc::clone(&self.counters) }
    }
}

impl<M: Message + Send> std::fmt::Debug for Mailbox<M>
where
    M::Result: Send,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").field("message", &std::any::type_name::<M>()).finish_non_exhaustive()
    }
}

impl<M: Message + Send + 'static> Mailbox<M>
where
    M::Result: Send,
{
    /// Sends without waiting for the answer.
    pub(crate) fn do_send(&self, msg: M) {
        self.counters.received();
        self.recipient.do_send(msg);
    }

    /// Sends and waits for the answer.
    pub(crate) async fn send(&self, msg: M) -> Result<M::Result, MailboxError> {
        self.counters.received();
        self.recipient.send(msg).await
    }
}

/// Starts `threads` sync actors on OS threads named for the actor (as `top`
/// and `perf` show them). `factory` builds each actor from its counters;
/// every build past the first `threads` is counted as a restart.
pub(crate) fn start_sync<A, F>(name: ActorName, threads: usize, metrics: &Metrics, factory: F) -> Handle<A>
where
    A: Actor<Context = SyncContext<A>>,
    F: Fn(Arc<ActorMetrics>) -> A + Send + Sync + 'static,
{
    let counters = Arc::clone(metrics.actor(name));
    let built = AtomicUsize::new(0);
    let for_factory = Arc::clone(&counters);
    let addr = actix::SyncArbiter::start_with_thread_builder(
        threads,
        move || std::thread::Builder::new().name(name.as_str().into()),
        move || {
            if built.fetch_add(1, Ordering::Relaxed) >= threads {
                for_factory.restarted();
                tracing::warn!(actor = %name, restarts = for_factory.restarts(), "actor restarted by its supervisor");
            }
            factory(Arc::clone(&for_factory))
        },
    );
    Handle { addr, counters }
}

/// A test-only message: the actor panics (fault injection must be on).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub(crate) struct Panic;

/// A job whose offchain input starts with these bytes panics the executor
/// that runs it, on every attempt (a poison job), when fault injection is
/// on (`COPROCESSOR_FAULT_INJECTION=1`); otherwise it is a job like any.
pub(crate) const POISON_INPUT: &[u8] = b"coprocessor fault injection: panic";

/// Whether `offchain_input` is the poison job's, with fault injection `on`.
pub(crate) fn poisoned(on: bool, offchain_input: &[u8]) -> bool {
    on && offchain_input.starts_with(POISON_INPUT)
}

/// Runs one message's handler: records its time and outcome, and turns a
/// panic into `None` and a restart of the actor.
pub(crate) fn guarded<A, T, E>(
    metrics: &ActorMetrics,
    ctx: &mut SyncContext<A>,
    handler: impl FnOnce() -> Result<T, E>,
) -> Option<Result<T, E>>
where
    A: Actor<Context = SyncContext<A>>,
{
    guarded_reason(metrics, ctx, handler).ok()
}

/// [`guarded`], with the panic's message when it panicked.
pub(crate) fn guarded_reason<A, T, E>(
    metrics: &ActorMetrics,
    ctx: &mut SyncContext<A>,
    handler: impl FnOnce() -> Result<T, E>,
) -> Result<Result<T, E>, String>
where
    A: Actor<Context = SyncContext<A>>,
{
    let start = Instant::now();
    match catch_unwind(AssertUnwindSafe(handler)) {
        Ok(result) => {
            metrics.handled(start.elapsed(), result.is_ok());
            Ok(result)
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
            Err(reason)
        }
    }
}

/// Handles [`Panic`]: panics inside [`guarded`], so the actor is restarted
/// exactly as after a real fault.
pub(crate) fn inject_panic<A>(metrics: &ActorMetrics, ctx: &mut SyncContext<A>)
where
    A: Actor<Context = SyncContext<A>>,
{
    let _ = guarded(metrics, ctx, || -> Result<(), std::convert::Infallible> { panic!("injected fault") });
}
