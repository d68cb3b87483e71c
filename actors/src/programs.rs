//! The decoded images of every registered program, shared by the actors
//! that read them (executors, the listener, the api). Only the registry
//! adds to it, after the program is durable.

use crate::program::{Isa, ProgramId, ProgramImage};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The decoded images of every stored program.
#[derive(Debug, Default)]
pub(crate) struct Programs {
    images: RwLock<HashMap<ProgramId, Arc<ProgramImage>>>,
}

impl Programs {
    /// Loads and decodes every program in the store.
    pub(crate) fn load(store: &Store, max_program_bytes: usize) -> Result<Programs, StoreError> {
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
    pub(crate) fn get(&self, id: &ProgramId) -> Option<Arc<ProgramImage>> {
        self.images.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Whether a program is known.
    pub(crate) fn contains(&self, id: &ProgramId) -> bool {
        self.images.read().unwrap_or_else(|p| p.into_inner()).contains_key(id)
    }

    /// A program's instruction set, if the program is known.
    pub(crate) fn isa(&self, id: &ProgramId) -> Option<Isa> {
        self.images.read().unwrap_or_else(|p| p.into_inner()).get(id).map(|image| image.isa)
    }

    /// Every program with its instruction set, sorted by ID.
    pub(crate) fn list(&self) -> Vec<(ProgramId, Isa)> {
        let mut list: Vec<(ProgramId, Isa)> =
            self.images.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(id, image)| (*id, image.isa)).collect();
        list.sort_unstable_by_key(|(id, _)| *id);
        list
    }

    /// Adds a decoded program (the registry does, once it is stored).
    pub(crate) fn insert(&self, id: ProgramId, image: Arc<ProgramImage>) {
        self.images.write().unwrap_or_else(|p| p.into_inner()).insert(id, image);
    }
}
