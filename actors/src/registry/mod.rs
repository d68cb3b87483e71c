//! The registry: validates, stores and caches programs.
//!
//! [`Registry`] is a one-thread sync actor, because parsing a 16 MiB ELF
//! and flushing it to sled should not stall the socket. Decoded images go
//! into [`Programs`], which executors and the api read directly.

pub mod elf;

use crate::metrics::ActorMetrics;
use crate::store::{Store, StoreError};
use crate::supervisor::{guarded, inject_panic, Panic, RestartCount};
use actix::{Actor, Handler, Message, SyncContext};
use elf::{ElfError, ProgramId, ProgramImage};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The decoded images of every stored program.
#[derive(Debug, Default)]
pub struct Programs {
    images: RwLock<HashMap<ProgramId, Arc<ProgramImage>>>,
}

impl Programs {
    /// Loads and decodes every program in the store.
    pub fn load(store: &Store, max_program_bytes: usize) -> Result<Programs, StoreError> {
        let programs = Programs::default();
        for id in store.program_ids()? {
            let Some(elf) = store.program(&id)? else { continue };
            match ProgramImage::parse(&elf, max_program_bytes.max(elf.len())) {
                Ok(image) => programs.insert(id, Arc::new(image)),
                Err(err) => tracing::error!(program = %id, %err, "stored program no longer decodes; skipped"),
            }
        }
        Ok(programs)
    }

    /// A program's image.
    pub fn get(&self, id: &ProgramId) -> Option<Arc<ProgramImage>> {
        self.images.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Whether a program is known.
    pub fn contains(&self, id: &ProgramId) -> bool {
        self.images.read().unwrap_or_else(|p| p.into_inner()).contains_key(id)
    }

    /// Every program ID, sorted.
    pub fn ids(&self) -> Vec<ProgramId> {
        let mut ids: Vec<ProgramId> = self.images.read().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn insert(&self, id: ProgramId, image: Arc<ProgramImage>) {
        self.images.write().unwrap_or_else(|p| p.into_inner()).insert(id, image);
    }
}

/// Why a program was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The ELF is not a valid guest.
    #[error("invalid program: {0}")]
    Elf(#[from] ElfError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry panicked while handling the request (it was restarted).
    #[error("registry crashed handling the request")]
    Crashed,
}

/// Validate, store and cache a program; answers its ID.
#[derive(Debug, Message)]
#[rtype(result = "Result<ProgramId, RegistryError>")]
pub struct SubmitProgram {
    /// The ELF bytes.
    pub elf: Vec<u8>,
}

/// The registry actor.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
    programs: Arc<Programs>,
    max_program_bytes: usize,
    metrics: Arc<ActorMetrics>,
}

impl Registry {
    /// A registry over the store and the shared cache.
    pub fn new(store: Store, programs: Arc<Programs>, max_program_bytes: usize, metrics: Arc<ActorMetrics>) -> Self {
        Registry { store, programs, max_program_bytes, metrics }
    }

    /// Starts the registry on its own thread, restarted after a panic.
    pub fn start(self) -> actix::Addr<Registry> {
        let restarts = RestartCount::new(1, Arc::clone(&self.metrics));
        crate::supervisor::start_pool("registry", 1, move || {
            restarts.started();
            self.clone()
        })
    }

    fn submit(&self, elf: &[u8]) -> Result<ProgramId, RegistryError> {
        let image = ProgramImage::parse(elf, self.max_program_bytes)?;
        let id = ProgramId::of(elf);
        if !self.programs.contains(&id) {
            self.store.put_program(&id, elf)?;
            self.programs.insert(id, Arc::new(image));
            tracing::info!(program = %id, bytes = elf.len(), "program registered");
        }
        Ok(id)
    }
}

impl Actor for Registry {
    type Context = SyncContext<Self>;
}

impl Handler<SubmitProgram> for Registry {
    type Result = Result<ProgramId, RegistryError>;

    fn handle(&mut self, msg: SubmitProgram, ctx: &mut SyncContext<Self>) -> Self::Result {
        guarded(&self.metrics, ctx, || self.submit(&msg.elf)).unwrap_or(Err(RegistryError::Crashed))
    }
}

impl Handler<Panic> for Registry {
    type Result = ();

    fn handle(&mut self, _: Panic, ctx: &mut SyncContext<Self>) {
        inject_panic(&self.metrics, ctx);
    }
}
