//! The registry: validates, stores and caches programs.
//!
//! [`Registry`] is a one-thread sync actor, because parsing a 16 MiB ELF
//! and flushing it to sled should not stall the socket. Decoded images go
//! into the shared `Programs` cache, which executors, the listener and the
//! api read directly.

use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::{guarded, inject_panic, Handle, Panic};
use crate::program::{ElfError, Isa, ProgramId, ProgramImage};
use crate::programs::Programs;
use crate::store::{Store, StoreError};
use actix::{Actor, Handler, Message, SyncContext};
use std::sync::Arc;

/// Why a program was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    /// The ELF is not a valid guest.
    #[error("invalid program: {0}")]
    Elf(#[from] ElfError),
    /// The name is not a valid label.
    #[error("program name {0:?} must be 1 to 64 of A-Z a-z 0-9 . _ -")]
    Name(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry panicked while handling the request (it was restarted).
    #[error("registry crashed handling the request")]
    Crashed,
}

/// Validate, store and cache a program; answers its ID and instruction set.
#[derive(Debug, Message)]
#[rtype(result = "Result<Registered, RegistryError>")]
pub(crate) struct SubmitProgram {
    /// The ELF bytes.
    pub elf: Vec<u8>,
    /// Its name, if one is given.
    pub name: Option<String>,
}

/// A program the registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registered {
    /// Its ID (keccak256 of the ELF).
    pub id: ProgramId,
    /// Its instruction set (the ELF's class).
    pub isa: Isa,
    /// Its name (empty: none).
    pub name: String,
}

/// The registry actor.
#[derive(Debug)]
pub(crate) struct Registry {
    store: Store,
    programs: Arc<Programs>,
    max_program_bytes: usize,
    metrics: Arc<ActorMetrics>,
}

impl Registry {
    /// Starts the registry over the store and the shared cache on its own
    /// thread, restarted after a panic.
    pub(crate) fn start(
        store: Store,
        programs: Arc<Programs>,
        max_program_bytes: usize,
        metrics: &Metrics,
    ) -> Handle<Registry> {
        crate::pool::start_sync(ActorName::Registry, 1, metrics, move |metrics| Registry {
            store: store.clone(),
            programs: Arc::clone(&programs),
            max_program_bytes,
            metrics,
        })
    }

    fn submit(&self, elf: &[u8], name: Option<&str>) -> Result<Registered, RegistryError> {
        if let Some(name) = name.filter(|name| !valid_name(name)) {
            return Err(RegistryError::Name(name.to_owned()));
        }
        let image = ProgramImage::parse(elf, self.max_program_bytes)?;
        let id = ProgramId::of(elf);
        // The ISA is the ELF's class, so an ID already known has this one too.
        let isa = image.isa;
        let known = self.programs.contains(&id);
        let name = match (known, name) {
            // Known and no new name: nothing to write.
            (true, None) => self.store.program_info(&id)?.map(|info| info.name).unwrap_or_default(),
            _ => self.store.put_program(&id, elf, name)?.name,
        };
        if !known {
            self.programs.insert(id, Arc::new(image));
            tracing::info!(program = %id, %isa, bytes = elf.len(), name, "program registered");
        }
        Ok(Registered { id, isa, name })
    }
}

/// A program name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Actor for Registry {
    type Context = SyncContext<Self>;
}

impl Handler<SubmitProgram> for Registry {
    type Result = Result<Registered, RegistryError>;

    fn handle(&mut self, msg: SubmitProgram, ctx: &mut SyncContext<Self>) -> Self::Result {
        guarded(&self.metrics, ctx, || self.submit(&msg.elf, msg.name.as_deref()))
            .unwrap_or(Err(RegistryError::Crashed))
    }
}

impl Handler<Panic> for Registry {
    type Result = ();

    fn handle(&mut self, _: Panic, ctx: &mut SyncContext<Self>) {
        inject_panic(&self.metrics, ctx);
    }
}
