//! Deploys the JobManager (behind an `ERC1967Proxy` that initializes it in
//! the same transaction) and, where their guests are built, the example
//! consumers, and funds the relayers (authorizing those beyond the first).

use super::DevnetError;
use alloy::network::EthereumWallet;
use alloy::primitives::{keccak256, Address, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::bindings::{
    ClobConsumer, ERC1967Proxy, IBatchSettlement, JobManager, SquareRootConsumer,
};
use serde::{Deserialize, Serialize};

/// Hardhat's first default account (the well-known test mnemonic): it
/// deploys and owns the contracts on a local node. Never use it elsewhere.
pub const DEV_DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// What to deploy, and for whom.
#[derive(Debug, Clone)]
pub struct DeployParams {
    /// The node.
    pub rpc_url: String,
    /// Pays for the deployment and owns the contracts.
    pub deployer: PrivateKeySigner,
    /// The engine's operator (signs results).
    pub operator: Address,
    /// The engine's relayer (sends results); it gets `relayer_funds`.
    pub relayer: Address,
    /// More relayers (the other engines of a cluster), authorized by the
    /// owner (`setRelayerAuthorized`); each gets `relayer_funds` too.
    pub extra_relayers: Vec<Address>,
    /// The consumers' offchain signer (EIP-1271): the engine's dev consumer key.
    pub offchain_signer: Address,
    /// The example consumers' guests; `None` deploys the JobManager alone
    /// (an app from `coprocessor new` deploys its own consumer).
    pub examples: Option<ExamplePrograms>,
    /// The cycle limit the example consumers ask for.
    pub max_cycles: u64,
    /// Wei sent to each relayer.
    pub relayer_funds: U256,
}

/// The program IDs of the example guests.
#[derive(Debug, Clone, Copy)]
pub struct ExamplePrograms {
    /// The `square-root` guest.
    pub square_root: ProgramId,
    /// The `clob` guest.
    pub clob: ProgramId,
}

/// Where everything is: `<data_dir>/deployment.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The node.
    pub rpc_url: String,
    /// Its chain ID.
    pub chain_id: u64,
    /// The JobManager (its proxy).
    pub job_manager: Address,
    /// The offchain signer the consumers were deployed with.
    pub offchain_signer: Address,
    /// The example consumers, if they were deployed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub examples: Option<ExampleConsumers>,
}

/// Where the example consumers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExampleConsumers {
    /// The `square-root` example consumer.
    pub square_root_consumer: Address,
    /// The `clob` example consumer.
    pub clob_consumer: Address,
}

/// The state root of the empty CLOB book (8 zero bytes).
pub fn empty_clob_root() -> alloy::primitives::B256 {
    keccak256([0u8; 8])
}

/// Deploys everything and funds the relayers.
pub async fn deploy(params: &DeployParams) -> Result<Deployment, DevnetError> {
    let url = params.rpc_url.parse().map_err(|err| DevnetError::Node(format!("{}: {err}", params.rpc_url)))?;
    let owner = params.deployer.address();
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(params.deployer.clone())).connect_http(url);
    let chain_id = provider.get_chain_id().await.map_err(|err| DevnetError::Node(err.to_string()))?;

    let implementation = JobManager::deploy(&provider).await.map_err(failed("JobManager"))?;
    let init = JobManager::initializeJobManagerCall {
        initialOwner: owner,
        _relayer: params.relayer,
        _coprocessorOperator: params.operator,
    }
    .abi_encode();
    let proxy = ERC1967Proxy::deploy(&provider, *implementation.address(), Bytes::from(init))
        .await
        .map_err(failed("ERC1967Proxy"))?;
    let job_manager = *proxy.address();

    let examples = match params.examples {
        Some(programs) => Some(deploy_examples(&provider, params, programs, job_manager).await?),
        None => None,
    };

    let batch = IBatchSettlement::new(job_manager, &provider);
    for relayer in &params.extra_relayers {
        let authorized =
            batch.setRelayerAuthorized(*relayer, true).send().await.map_err(failed("setRelayerAuthorized"))?;
        authorized
            .get_receipt()
            .await
            .map_err(|err| DevnetError::Deploy { what: "setRelayerAuthorized", reason: err.to_string() })?;
    }
    for relayer in std::iter::once(&params.relayer).chain(&params.extra_relayers) {
        let funding = TransactionRequest::default().to(*relayer).value(params.relayer_funds);
        let pending = provider
            .send_transaction(funding)
            .await
            .map_err(|err| DevnetError::Deploy { what: "relayer funding", reason: err.to_string() })?;
        pending
            .get_receipt()
            .await
            .map_err(|err| DevnetError::Deploy { what: "relayer funding", reason: err.to_string() })?;
    }

    Ok(Deployment {
        rpc_url: params.rpc_url.clone(),
        chain_id,
        job_manager,
        offchain_signer: params.offchain_signer,
        examples,
    })
}

/// A failed deployment of `what`.
fn failed(what: &'static str) -> impl Fn(alloy::contract::Error) -> DevnetError {
    move |err| DevnetError::Deploy { what, reason: err.to_string() }
}

async fn deploy_examples<P: Provider>(
    provider: &P,
    params: &DeployParams,
    programs: ExamplePrograms,
    job_manager: Address,
) -> Result<ExampleConsumers, DevnetError> {
    let square_root = SquareRootConsumer::deploy(
        provider,
        job_manager,
        params.offchain_signer,
        Bytes::copy_from_slice(&programs.square_root.0),
        params.max_cycles,
    )
    .await
    .map_err(failed("SquareRootConsumer"))?;
    let clob = ClobConsumer::deploy(
        provider,
        job_manager,
        params.offchain_signer,
        Bytes::copy_from_slice(&programs.clob.0),
        params.max_cycles,
        empty_clob_root(),
    )
    .await
    .map_err(failed("ClobConsumer"))?;
    Ok(ExampleConsumers { square_root_consumer: *square_root.address(), clob_consumer: *clob.address() })
}
