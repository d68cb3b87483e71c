//! `abi_request`: decoding an offchain request as `coproc_submitJob` does.

use crate::source::Source;
use alloy::primitives::{keccak256, Address, Bytes};
use alloy::sol_types::SolValue;
use coprocessor_actors::config::Limits;
use coprocessor_actors::job::{JobId, JobSpec, SpecError};
use coprocessor_actors::protocol::abi::OffchainJobRequest;

/// The first byte picks the mode: raw bytes decoded as an
/// `OffchainJobRequest`, or a well-formed request built from the bytes
/// (with the right offchain input hash) and then, sometimes, one byte of
/// its encoding flipped. Whatever decodes must re-encode to itself and turn
/// into a `JobSpec` (or a typed refusal) as `submit_job` does it.
pub fn abi_request(data: &[u8]) {
    let mut src = Source::new(data);
    let mode = src.u8();
    let (request, offchain_input) = if mode.is_multiple_of(2) {
        (src.rest().to_vec(), Vec::new())
    } else {
        let offchain_input = src.bytes(200);
        let request = OffchainJobRequest {
            nonce: src.u64(),
            maxCycles: if src.one_in(2) { src.u64() } else { u64::from(src.u32()) },
            consumer: Address::from_slice(&pad::<20>(src.take(20))),
            programID: Bytes::from(if src.one_in(4) { src.bytes(40) } else { pad::<32>(src.take(32)).to_vec() }),
            onchainInput: Bytes::from(src.bytes(200)),
            offchainInputHash: if src.one_in(8) { Default::default() } else { keccak256(&offchain_input) },
        };
        let mut encoded = request.abi_encode();
        if mode % 4 == 3 && !encoded.is_empty() {
            let at = src.below(encoded.len() as u32) as usize;
            encoded[at] ^= src.u8() | 1;
        }
        (encoded, offchain_input)
    };
    let Ok(decoded) = OffchainJobRequest::abi_decode(&request) else { return };
    let again = OffchainJobRequest::abi_decode(&decoded.abi_encode()).expect("a decoded request re-encodes");
    assert_eq!(again, decoded, "re-encoding changed the request");
    let limits = Limits { max_input_bytes: 128, max_job_cycles: 1 << 40, ..Limits::default() };
    match JobSpec::from_offchain(request.clone(), &decoded, offchain_input.clone(), vec![0; 65], false, &limits) {
        Ok(spec) => {
            assert_eq!(spec.id, JobId::of(decoded.nonce, decoded.consumer));
            assert_eq!(spec.program_id.0[..], decoded.programID[..]);
            assert_eq!((spec.max_cycles, &spec.onchain_input[..]), (decoded.maxCycles, &decoded.onchainInput[..]));
            assert_eq!(keccak256(&offchain_input), decoded.offchainInputHash);
            assert!(decoded.onchainInput.len() <= 128 && offchain_input.len() <= 128);
        }
        Err(err) => {
            // The first rule broken, in the order from_offchain checks them.
            let expected = if decoded.onchainInput.len() > 128 {
                SpecError::InputTooLarge { which: "onchain", len: decoded.onchainInput.len(), max: 128 }
            } else if offchain_input.len() > 128 {
                SpecError::InputTooLarge { which: "offchain", len: offchain_input.len(), max: 128 }
            } else if decoded.maxCycles > 1 << 40 {
                SpecError::TooManyCycles { requested: decoded.maxCycles, max: 1 << 40 }
            } else if keccak256(&offchain_input) != decoded.offchainInputHash {
                SpecError::OffchainInputHash
            } else {
                SpecError::ProgramIdLength(decoded.programID.len())
            };
            assert_eq!(err, expected, "refused with the wrong reason");
        }
    }
}

fn pad<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out[..bytes.len().min(N)].copy_from_slice(&bytes[..bytes.len().min(N)]);
    out
}
