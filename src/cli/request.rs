//! `coprocessor job request`: request a job onchain through a consumer, by
//! any of its functions (`--call 'requestBalance(bytes)' 0x…`) or by the
//! `requestWithInput(bytes)` every example consumer has (`--input`); then
//! follow the `JobCreated` the transaction emitted, and with `--wait` the
//! job until the JobManager settles it.

use super::dev::block_on;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use coprocessor::devnet;
use coprocessor::input::{parse_bytes, to_hex};
use coprocessor_actors::job_state;
use coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::{JobCompleted, JobCreated};
use coprocessor_actors::protocol::bindings::{IJobManager, SquareRootConsumer};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `job request`.
#[derive(Debug, clap::Args)]
pub(crate) struct RequestArgs {
    /// The node's HTTP JSON-RPC URL.
    #[arg(long)]
    rpc: String,
    /// The consumer contract.
    #[arg(long)]
    consumer: Address,
    /// The onchain input, as hex or @FILE, for the consumer's
    /// `requestWithInput(bytes)`.
    #[arg(long, required_unless_present = "call", conflicts_with = "call")]
    input: Option<String>,
    /// The consumer's function to call instead, by signature, e.g.
    /// 'requestBalance(bytes)'; its arguments follow, parsed by type.
    #[arg(long, value_name = "SIGNATURE")]
    call: Option<String>,
    /// The arguments of --call.
    #[arg(requires = "call", allow_negative_numbers = true, value_name = "ARG")]
    args: Vec<String>,
    /// Wait until the result is settled onchain.
    #[arg(long)]
    wait: bool,
    /// Print `{jobId, txHash, status, result}` as JSON.
    #[arg(long)]
    json: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// The requester's key [default: hardhat's first dev account].
    #[arg(long)]
    key: Option<String>,
}

struct Requested {
    job_id: B256,
    tx_hash: B256,
    status: &'static str,
    result: Option<Bytes>,
}

pub(crate) fn run(args: RequestArgs) -> Result<ExitCode, String> {
    let calldata = match (&args.call, &args.input) {
        (Some(signature), _) => {
            super::calldata::encode(signature, &args.args).map_err(|err| format!("--call {err}"))?
        }
        (None, Some(input)) => {
            let input = parse_bytes(input).map_err(|err| format!("--input: {err}"))?;
            SquareRootConsumer::requestWithInputCall { onchainInput: input.into() }.abi_encode()
        }
        (None, None) => return Err("give --input or --call".to_owned()),
    };
    let requested = block_on(request(&args, calldata))??;
    if args.json {
        let json = serde_json::json!({
            "jobId": requested.job_id.to_string(),
            "txHash": requested.tx_hash.to_string(),
            "status": requested.status,
            "result": requested.result.as_ref().map(|r| to_hex(r)),
        });
        println!("{json}");
    } else {
        println!("job      {}", requested.job_id);
        println!("tx       {}", requested.tx_hash);
        println!("status   {}", requested.status);
        if let Some(result) = &requested.result {
            println!("result   {}", to_hex(result));
        }
    }
    Ok(if requested.status == "cancelled" { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn request(args: &RequestArgs, calldata: Vec<u8>) -> Result<Requested, String> {
    let key: PrivateKeySigner =
        args.key.as_deref().unwrap_or(devnet::DEV_DEPLOYER_KEY).parse().map_err(|err| format!("--key: {err}"))?;
    let url = args.rpc.parse().map_err(|err| format!("--rpc: {err}"))?;
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_http(url);
    let what = args.call.as_deref().unwrap_or("requestWithInput(bytes)");
    let call = TransactionRequest::default().to(args.consumer).input(calldata.into());
    let pending = provider.send_transaction(call).await.map_err(|err| format!("{what} on {}: {err}", args.consumer))?;
    let receipt = pending.get_receipt().await.map_err(|err| format!("request transaction: {err}"))?;
    if !receipt.status() {
        return Err(format!("request transaction {} reverted", receipt.transaction_hash));
    }
    // The JobManager is the contract that emitted it.
    let (job_manager, created) = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<JobCreated>().ok().map(|created| (log.address(), created)))
        .ok_or_else(|| format!("{what} on {} emitted no JobCreated event: no job was requested", args.consumer))?;
    let job_id = created.inner.data.jobID;
    let mut requested = Requested { job_id, tx_hash: receipt.transaction_hash, status: "pending", result: None };
    if !args.wait {
        return Ok(requested);
    }
    let manager = IJobManager::new(job_manager, &provider);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let state = manager.getJobMetadata(job_id).call().await.map_err(|err| format!("getJobMetadata: {err}"))?.status;
        match state {
            job_state::COMPLETED => break,
            job_state::CANCELLED => {
                requested.status = "cancelled";
                return Ok(requested);
            }
            _ if Instant::now() > deadline => {
                return Err(format!("job {job_id} not settled within {} s", args.timeout))
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let filter = Filter::new()
        .address(job_manager)
        .event_signature(JobCompleted::SIGNATURE_HASH)
        .topic1(job_id)
        .from_block(receipt.block_number.unwrap_or(0));
    let logs = provider.get_logs(&filter).await.map_err(|err| format!("JobCompleted logs: {err}"))?;
    let completed = logs.iter().find_map(|log| log.log_decode::<JobCompleted>().ok()).ok_or("no JobCompleted event")?;
    requested.status = "completed";
    requested.result = Some(completed.inner.data.result.clone());
    Ok(requested)
}
