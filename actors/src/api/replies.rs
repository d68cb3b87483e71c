//! The pieces of `coproc_getResult` objects and error answers that more
//! than one method builds.

use super::wire::{codes, HexBytes, JobResult, RpcError};
use crate::job::{JobId, Status};
use crate::store::ResultRecord;

/// An internal error: something that should not fail did.
pub(crate) fn internal(err: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::INTERNAL, err.to_string())
}

pub(crate) fn empty_reply(id: JobId, rejection: Option<String>) -> JobResult {
    JobResult {
        job_id: HexBytes(id.0.to_vec()),
        status: String::new(),
        exit_code: None,
        cycles: None,
        peak_memory_bytes: None,
        output: None,
        result_with_metadata: None,
        signature: None,
        failure_reason: None,
        tx_hash: None,
        relay_error: None,
        relay_waiting: None,
        rejection,
        isa: None,
    }
}

/// Fills in what an executed job's result says; a failed job's result is
/// not signed, so it has no signed result to show.
pub(crate) fn fill_result(reply: &mut JobResult, status: Status, result: &ResultRecord) {
    reply.status = status.as_str().to_owned();
    reply.exit_code = result.exit_code;
    reply.cycles = Some(result.cycles);
    reply.peak_memory_bytes = Some(result.peak_memory_bytes);
    reply.output = Some(HexBytes(result.output.clone()));
    reply.failure_reason = result.failure.as_ref().map(|f| f.to_string());
    if status != Status::Failed {
        reply.result_with_metadata = Some(HexBytes(result.result_with_metadata.clone()));
        reply.signature = Some(HexBytes(result.signature.clone()));
    }
}
