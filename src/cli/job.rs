//! `coprocessor job submit|call|status|result|retry|request`.

use super::{describe, EngineArgs};
use alloy::primitives::Address;
use coprocessor::client::Client;
use coprocessor::input::{parse_bytes, to_hex};
use coprocessor::request::JobRequest;
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::wire::{
    codes, Call, CallParams, ConsumerParams, HexBytes, JobFilter, JobIdParams, JobResult, NoParams, NonceReply,
    RelayStrategy, RunReply, StatusReply,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// Job commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum JobCommand {
    /// Sign and submit an offchain job; prints its ID (or its result with --wait).
    Submit(SubmitArgs),
    /// Print a job's status (and its ISA, once it ran).
    Status {
        /// The job ID.
        id: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Push a dead-lettered job's result onchain again.
    Retry {
        /// The job ID.
        id: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Run a registered program on inputs as a job would, on the engine,
    /// and print the outcome (as `exec` does); nothing is stored, signed or
    /// relayed, and no signature is needed.
    Call(CallArgs),
    /// Print the status of given jobs now, then each change as the engine
    /// makes it durable (pushed, not polled) until each job reaches a final
    /// status; or every change of a consumer's jobs (until interrupted).
    Watch {
        /// The job IDs to follow.
        ids: Vec<String>,
        /// Follow every job of this consumer instead.
        #[arg(long, conflicts_with = "ids")]
        consumer: Option<Address>,
        /// Print each change as the `coproc_getResult` object, one JSON per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Request a job onchain through a consumer: any function of it
    /// (`--call SIG ARG…`), or an example consumer's `requestWithInput`.
    Request(super::request::RequestArgs),
    /// Print a job's result.
    Result {
        /// The job ID.
        id: String,
        /// Print the `coproc_getResult` object as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// Arguments of `job submit`.
#[derive(Debug, clap::Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    job: JobInputs,
    /// Consumer address [default: the signer's own address].
    #[arg(long)]
    consumer: Option<Address>,
    /// Nonce [default: the engine's next free nonce for the consumer].
    #[arg(long)]
    nonce: Option<u64>,
    /// Cycle limit (exact).
    #[arg(long, default_value_t = 1_000_000_000)]
    max_cycles: u64,
    /// Signing key file [default: <data-dir>/dev-consumer.key].
    #[arg(long)]
    key: Option<PathBuf>,
    /// Wait for the result and print it.
    #[arg(long)]
    wait: bool,
    /// With --wait, print the `coproc_getResult` object as JSON.
    #[arg(long)]
    json: bool,
    /// Relay the result onchain in the consumer's nonce order.
    #[arg(long)]
    ordered: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// What a job runs: `job submit`'s and `job call`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct JobInputs {
    /// The program ID.
    #[arg(long)]
    program: String,
    /// Onchain input, as hex or @FILE.
    #[arg(long, default_value = "")]
    input: String,
    /// Offchain input, as hex or @FILE.
    #[arg(long, default_value = "")]
    offchain_input: String,
}

impl JobInputs {
    /// The program ID and the two inputs, parsed.
    fn parse(&self) -> Result<(ProgramId, Vec<u8>, Vec<u8>), String> {
        let program = self.program.parse().map_err(|err| format!("--program: {err}"))?;
        let onchain = parse_bytes(&self.input).map_err(|err| format!("--input: {err}"))?;
        let offchain = parse_bytes(&self.offchain_input).map_err(|err| format!("--offchain-input: {err}"))?;
        Ok((program, onchain, offchain))
    }
}

/// Arguments of `job call`.
#[derive(Debug, clap::Args)]
pub(crate) struct CallArgs {
    #[command(flatten)]
    job: JobInputs,
    /// Cycle limit (exact) [default: the engine's limits.default_max_cycles].
    #[arg(long)]
    max_cycles: Option<u64>,
    /// Print the outcome as one JSON object (the shape of `exec --json`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(crate) fn run(command: JobCommand) -> Result<ExitCode, String> {
    match command {
        JobCommand::Submit(args) => submit(args),
        JobCommand::Call(args) => {
            let (program, onchain, offchain) = args.job.parse()?;
            let params = CallParams {
                program_id: HexBytes(program.0.to_vec()),
                onchain_input: HexBytes(onchain),
                offchain_input: HexBytes(offchain),
                max_cycles: args.max_cycles,
            };
            let reply: RunReply = args.engine.connect()?.call(Call::CallProgram(params)).map_err(describe)?;
            Ok(super::exec::print_run(&reply, args.json))
        }
        JobCommand::Status { id, engine } => {
            let result = fetch(&mut engine.connect()?, &id)?;
            match (&result.failure_reason, &result.relay_error) {
                (Some(reason), _) | (None, Some(reason)) => println!("{}: {reason}", result.status),
                (None, None) => println!("{}", result.status),
            }
            if let Some(isa) = result.isa {
                println!("isa: {isa}");
            }
            if let Some(reason) = &result.rejection {
                println!("last request refused: {reason}");
            }
            if let Some(reason) = &result.relay_waiting {
                println!("waiting: {reason}");
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Retry { id, engine } => {
            let params = JobIdParams { job_id: job_id(&id)? };
            let result: JobResult = engine.connect()?.call(Call::RetryJob(params)).map_err(describe)?;
            println!("{}", result.status);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Watch { ids, consumer, json, engine } => watch(ids, consumer, json, &engine),
        JobCommand::Request(args) => super::request::run(args),
        JobCommand::Result { id, json, engine } => {
            let result = fetch(&mut engine.connect()?, &id)?;
            print_result(&result, json)
        }
    }
}

/// `job watch`: subscribes first, then reads the jobs' current status, so
/// that no change falls between the two.
fn watch(ids: Vec<String>, consumer: Option<Address>, json: bool, engine: &EngineArgs) -> Result<ExitCode, String> {
    let ids: Vec<HexBytes> = ids.iter().map(|id| job_id(id)).collect::<Result<_, _>>()?;
    let filter = match (consumer, ids.is_empty()) {
        (Some(consumer), _) => JobFilter { consumer: Some(HexBytes(consumer.to_vec())), job_ids: None },
        (None, false) => JobFilter { consumer: None, job_ids: Some(ids.clone()) },
        (None, true) => return Err("name job IDs, or --consumer ADDRESS".to_owned()),
    };
    let mut client = engine.connect()?;
    let status: StatusReply = client.call(Call::Status(NoParams {})).map_err(describe)?;
    let settles = status.chain.is_some();
    let mut subscription = engine.connect()?.subscribe(filter).map_err(describe)?;
    let print = |result: &JobResult| -> Result<(), String> {
        if json {
            println!("{}", serde_json::to_string(result).map_err(|err| err.to_string())?);
        } else {
            println!("{} {}", to_hex(&result.job_id.0), result.status);
        }
        Ok(())
    };
    // Each job's status as last printed: a change the read above already
    // showed is not shown twice.
    let mut shown: std::collections::HashMap<Vec<u8>, String> = std::collections::HashMap::new();
    let mut open: std::collections::HashSet<Vec<u8>> = ids.iter().map(|id| id.0.clone()).collect();
    for id in &ids {
        let now: JobResult = match client.call(Call::GetResult(JobIdParams { job_id: id.clone() })) {
            Ok(now) => now,
            // Not submitted yet: its changes will come.
            Err(err) if err.code() == Some(codes::UNKNOWN_JOB) => continue,
            Err(err) => return Err(describe(err)),
        };
        print(&now)?;
        if final_status(&now.status, settles) {
            open.remove(&id.0);
        }
        shown.insert(id.0.clone(), now.status);
    }
    while consumer.is_some() || !open.is_empty() {
        let change = subscription.next_change().map_err(describe)?;
        if consumer.is_none() && !open.contains(&change.job_id.0) {
            continue; // Final already, from the read above.
        }
        if shown.get(&change.job_id.0) != Some(&change.status) {
            print(&change)?;
        }
        if final_status(&change.status, settles) {
            open.remove(&change.job_id.0);
        }
        shown.insert(change.job_id.0.clone(), change.status);
    }
    Ok(ExitCode::SUCCESS)
}

/// A status no job leaves (done is one only when the engine settles nothing).
fn final_status(status: &str, settles: bool) -> bool {
    matches!(status, "failed" | "cancelled" | "dead-lettered" | "confirmed" | "rejected")
        || (status == "done" && !settles)
}

pub(crate) fn job_id(text: &str) -> Result<HexBytes, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    match hex::decode(digits) {
        Ok(bytes) if bytes.len() == 32 => Ok(HexBytes(bytes)),
        _ => Err(format!("{text:?} is not a job ID (32 bytes of hex)")),
    }
}

fn fetch(client: &mut Client, id: &str) -> Result<JobResult, String> {
    client.call(Call::GetResult(JobIdParams { job_id: job_id(id)? })).map_err(describe)
}

fn submit(args: SubmitArgs) -> Result<ExitCode, String> {
    let (program_id, onchain_input, offchain_input) = args.job.parse()?;
    let key_path = args.key.clone().unwrap_or_else(|| args.engine.data_dir.join(keys::DEV_CONSUMER_KEY));
    let signer = keys::load(&key_path).map_err(|err| format!("signing key: {err}"))?;
    let consumer = args.consumer.unwrap_or(signer.address());
    let mut client = args.engine.connect()?;
    let nonce = match args.nonce {
        Some(nonce) => nonce,
        None => {
            let params = ConsumerParams { consumer: HexBytes(consumer.to_vec()) };
            let reply: NonceReply = client.call(Call::NextNonce(params)).map_err(describe)?;
            reply.nonce
        }
    };
    let request =
        JobRequest { nonce, max_cycles: args.max_cycles, consumer, program_id, onchain_input, offchain_input };
    let mut params = request.sign(&signer);
    if args.ordered {
        params.relay_strategy = RelayStrategy::Ordered;
    }
    if !args.wait {
        let reply: JobIdParams = client.call(Call::SubmitJob(params)).map_err(describe)?;
        println!("{}", to_hex(&reply.job_id.0));
        return Ok(ExitCode::SUCCESS);
    }
    params.wait = true;
    let result: JobResult = client.call(Call::SubmitJob(params)).map_err(describe)?;
    print_result(&result, args.json)
}

fn print_result(result: &JobResult, json: bool) -> Result<ExitCode, String> {
    if json {
        println!("{}", serde_json::to_string(result).map_err(|err| err.to_string())?);
    } else {
        println!("job      {}", to_hex(&result.job_id.0));
        println!("status   {}", result.status);
        if let Some(isa) = result.isa {
            println!("isa      {isa}");
        }
        if let Some(cycles) = result.cycles {
            let exit = result.exit_code.map_or_else(|| "none".to_owned(), |code| code.to_string());
            println!("exit     {exit}");
            println!("cycles   {cycles}");
        }
        if let Some(reason) = &result.failure_reason {
            println!("failure  {reason}");
        }
        if let Some(output) = &result.output {
            println!("output   {}", to_hex(&output.0));
        }
        if let Some(signature) = &result.signature {
            println!("signature {}", to_hex(&signature.0));
        }
        if let Some(tx) = &result.tx_hash {
            println!("tx       {}", to_hex(&tx.0));
        }
        if let Some(reason) = &result.relay_error {
            println!("relay    {reason}");
        }
    }
    Ok(if result.status == "failed" { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
