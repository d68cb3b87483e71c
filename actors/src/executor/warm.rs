//! Warm VM instances, one per program, least recently used first out.

use super::vm::{Vm, VmError};
use crate::job::{JobLimits, JobOutcome};
use crate::program::{ProgramId, ProgramImage};

/// Programs kept warm per executor thread. Each instance holds its touched
/// guest pages, so the cap bounds memory.
const MAX_WARM: usize = 8;

/// An executor thread's warm VMs.
#[derive(Debug)]
pub(crate) struct WarmVms {
    /// Most recently used last.
    vms: Vec<(ProgramId, Vm)>,
    max_input_bytes: usize,
}

impl WarmVms {
    pub(crate) fn new(max_input_bytes: usize) -> Self {
        WarmVms { vms: Vec::with_capacity(MAX_WARM), max_input_bytes }
    }

    /// Runs a job on the program's warm VM, creating it if needed. A VM
    /// that fails is dropped, so the next job gets a fresh one.
    pub(crate) fn run(
        &mut self,
        id: &ProgramId,
        image: &ProgramImage,
        onchain: &[u8],
        offchain: &[u8],
        limits: &JobLimits,
    ) -> Result<JobOutcome, VmError> {
        let mut entry = match self.vms.iter().position(|(warm, _)| warm == id) {
            Some(index) => self.vms.remove(index),
            None => {
                if self.vms.len() == MAX_WARM {
                    self.vms.remove(0);
                }
                (*id, Vm::new(image, self.max_input_bytes)?)
            }
        };
        let result = entry.1.run(onchain, offchain, limits);
        if result.is_ok() {
            self.vms.push(entry);
        }
        result
    }
}
