//! The full local stack for chain tests: a real hardhat node on a free
//! 127.0.0.1 port (killed by process group when the stack drops), the
//! contracts deployed from `contracts/out`, and a real engine wired to it.
#![allow(dead_code, unreachable_pub)]

use super::engine::Engine;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use coprocessor::devnet::{self, DeployParams, Deployment, ExampleConsumers, ExamplePrograms, HardhatNode};
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::bindings::{ClobConsumer, IJobManager, SquareRootConsumer};
use coprocessor_actors::wire::{Call, HexBytes, JobIdParams, JobResult};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the engine reaches the node.
pub enum Link {
    /// Straight to the node.
    Direct,
    /// Through a loopback proxy that the test can cut ([`Proxy`]).
    Proxied,
}

/// A node, the contracts, and an engine settling on them.
pub struct Stack {
    pub engine: Engine,
    pub deployment: Deployment,
    /// Where the example consumers are.
    pub examples: ExampleConsumers,
    pub square_root: ProgramId,
    pub clob: ProgramId,
    pub proxy: Option<Proxy>,
    pub runtime: tokio::runtime::Runtime,
    /// The deployer: owns the contracts and requests onchain jobs.
    pub owner: DynProvider,
    _dir: tempfile::TempDir,
    pub node: HardhatNode,
}

impl Stack {
    /// Starts everything; `chain_config` is extra `[chain]` lines.
    pub fn start(link: Link, chain_config: &str) -> Stack {
        let contracts = devnet::contracts_dir().expect("contracts dir");
        let node = HardhatNode::start(&contracts, devnet::free_port().expect("port"), None).expect("hardhat node");
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).expect("data dir");
        let key = |name: &str| keys::load_or_generate(&data_dir.join(name)).expect("key").address();
        let elf = |name: &str| std::fs::read(super::guest(name)).expect("guest");
        let (square_root, clob) = (ProgramId::of(&elf("square-root")), ProgramId::of(&elf("clob")));
        let deployer: PrivateKeySigner = devnet::DEV_DEPLOYER_KEY.parse().expect("key");
        let params = DeployParams {
            rpc_url: node.url(),
            deployer: deployer.clone(),
            operator: key(keys::OPERATOR_KEY),
            relayer: key(keys::RELAYER_KEY),
            extra_relayers: Vec::new(),
            offchain_signer: key(keys::DEV_CONSUMER_KEY),
            examples: Some(ExamplePrograms { square_root, clob }),
            max_cycles: 100_000_000,
            relayer_funds: U256::from(10u64).pow(U256::from(21u64)),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let deployment = runtime.block_on(devnet::deploy(&params)).expect("deploy");
        let examples = deployment.examples.expect("the example consumers");
        let proxy = match link {
            Link::Direct => None,
            Link::Proxied => Some(Proxy::start(node.port())),
        };
        let rpc_url = proxy.as_ref().map_or_else(|| node.url(), |p| format!("http://127.0.0.1:{}", p.port));
        // The engine's default RPC timeout (5 s): hardhat stalls for about
        // 2 s on the first blob transaction it sees (its KZG setup).
        let config = format!(
            "[chain]\nrpc_url = \"{rpc_url}\"\njob_manager = \"{}\"\npoll_interval_ms = 100\n{chain_config}",
            deployment.job_manager
        );
        let engine = Engine::start_with(&data_dir, Some(&config), &[]);
        engine.submit_program("square-root");
        engine.submit_program("clob");
        let owner = ProviderBuilder::new()
            .wallet(EthereumWallet::from(deployer))
            .connect_http(node.url().parse().expect("url"))
            .erased();
        Stack { engine, deployment, examples, square_root, clob, proxy, runtime, owner, _dir: dir, node }
    }

    pub fn block_on<F: std::future::IntoFuture>(&self, future: F) -> F::Output {
        self.runtime.block_on(future.into_future())
    }

    /// A new client for the owner's account.
    pub fn fresh_owner(&self) -> DynProvider {
        let deployer: PrivateKeySigner = devnet::DEV_DEPLOYER_KEY.parse().expect("key");
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(deployer))
            .connect_http(self.node.url().parse().expect("url"))
            .erased()
    }

    pub fn square_root_consumer(&self) -> SquareRootConsumer::SquareRootConsumerInstance<DynProvider> {
        SquareRootConsumer::new(self.examples.square_root_consumer, self.fresh_owner())
    }

    pub fn clob_consumer(&self) -> ClobConsumer::ClobConsumerInstance<DynProvider> {
        ClobConsumer::new(self.examples.clob_consumer, self.owner.clone())
    }

    pub fn job_manager(&self) -> IJobManager::IJobManagerInstance<DynProvider> {
        IJobManager::new(self.deployment.job_manager, self.owner.clone())
    }

    /// `SquareRootConsumer.requestSquareRoot(n)`: the job's ID. A request
    /// the node reset before reading (after a freeze, say) is sent again.
    pub fn request_square_root(&self, n: u64) -> B256 {
        self.block_on(async {
            let mut attempts = 0;
            let pending = loop {
                // A fresh client each time: no stale connection, no cached nonce.
                let consumer = SquareRootConsumer::new(self.examples.square_root_consumer, self.fresh_owner());
                match consumer.requestSquareRoot(U256::from(n)).send().await {
                    Ok(pending) => break pending,
                    Err(alloy::contract::Error::TransportError(err)) if attempts < 3 && err.is_transport_error() => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(err) => panic!("send request: {err}"),
                }
            };
            let receipt = pending.get_receipt().await.expect("receipt");
            assert!(receipt.status(), "request reverted");
            let created = receipt.inner.logs().iter().find_map(|log| {
                log.log_decode::<coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::JobCreated>().ok()
            });
            created.expect("JobCreated").inner.data.jobID
        })
    }

    /// The consumer's stored root of `n`, if it received one.
    pub fn stored_square_root(&self, n: u64) -> Option<U256> {
        let answer =
            self.block_on(self.square_root_consumer().getSquareRoot(U256::from(n)).call()).expect("getSquareRoot");
        answer.known.then_some(answer.root)
    }

    /// The job's onchain state (1 pending, 2 cancelled, 3 completed).
    pub fn onchain_state(&self, id: B256) -> u8 {
        self.block_on(self.job_manager().getJobMetadata(id).call()).expect("getJobMetadata").status
    }

    /// Waits until the engine reports `status` for the job.
    pub fn wait_status(&self, id: &[u8], status: &str, limit: Duration) -> JobResult {
        let start = Instant::now();
        let mut client = self.engine.client();
        loop {
            let call = Call::GetResult(JobIdParams { job_id: HexBytes(id.to_vec()) });
            if let Ok(result) = client.call::<JobResult>(call) {
                if result.status == status {
                    return result;
                }
                assert!(
                    start.elapsed() < limit,
                    "job {} is {} after {limit:?}, not {status} (relay error: {:?})",
                    super::hex(id),
                    result.status,
                    result.relay_error
                );
            } else {
                assert!(start.elapsed() < limit, "job {} unknown after {limit:?}", super::hex(id));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Number of `JobCompleted` events for a job, from the start of the chain.
    pub fn completions(&self, id: B256) -> usize {
        use alloy::sol_types::SolEvent;
        use coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::JobCompleted;
        let filter = alloy::rpc::types::Filter::new()
            .address(self.deployment.job_manager)
            .event_signature(JobCompleted::SIGNATURE_HASH)
            .topic1(id)
            .from_block(0);
        // A fresh client: the node closes keep-alive connections that idle.
        self.block_on(self.fresh_owner().get_logs(&filter)).expect("logs").len()
    }

    /// Raw JSON-RPC to the node (hardhat's `evm_*` methods).
    pub fn node_rpc(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.block_on(self.fresh_owner().raw_request::<_, serde_json::Value>(method.into(), params)).expect(method)
    }

    pub fn bytes(data: &[u8]) -> Bytes {
        Bytes::copy_from_slice(data)
    }

    pub fn address(&self, which: &str) -> Address {
        match which {
            "square-root" => self.examples.square_root_consumer,
            "clob" => self.examples.clob_consumer,
            _ => self.deployment.job_manager,
        }
    }
}

/// A loopback TCP proxy in front of the node that can be cut: while it is
/// down, connections are refused and open ones are closed, as if the node
/// had died; bringing it up listens on the same port again.
pub struct Proxy {
    pub port: u16,
    target: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    listener: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let port = devnet::free_port().expect("port");
        let mut proxy =
            Proxy { port, target, up: Arc::new(AtomicBool::new(false)), open: Arc::default(), listener: None };
        proxy.up();
        proxy
    }

    /// Accepts connections again, on the same port.
    pub fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("proxy bind");
        listener.set_nonblocking(true).expect("nonblocking");
        self.up.store(true, Ordering::SeqCst);
        let (up, open, target) = (Arc::clone(&self.up), Arc::clone(&self.open), self.target);
        self.listener = Some(std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                        let mut open = open.lock().expect("lock");
                        for stream in [&client, &server] {
                            if let Ok(clone) = stream.try_clone() {
                                open.push(clone);
                            }
                        }
                        pipe(client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    /// Refuses and closes every connection.
    pub fn down(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(thread) = self.listener.take() {
            let _ = thread.join();
        }
        for stream in self.open.lock().expect("lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Sends `requests` over `connections` pipelined fast-path connections
/// (request `i` on connection `i % connections`, at most `window`
/// outstanding on each) and returns each request's answer, in request order.
pub fn pipeline_answers(
    socket: &std::path::Path,
    connections: usize,
    window: usize,
    requests: Vec<coprocessor_actors::wire::SubmitJob>,
) -> Vec<Result<coprocessor_actors::wire::Reply, coprocessor_actors::wire::RpcError>> {
    use coprocessor::client::FastClient;
    let total = requests.len();
    let connections = connections.max(1);
    let mut lanes: Vec<Vec<(usize, coprocessor_actors::wire::SubmitJob)>> =
        (0..connections).map(|_| Vec::new()).collect();
    for (i, request) in requests.into_iter().enumerate() {
        lanes[i % connections].push((i, request));
    }
    let answered = std::thread::scope(|scope| {
        let threads: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                scope.spawn(move || {
                    let mut client = FastClient::connect(socket).expect("connect");
                    let mut index = std::collections::HashMap::new();
                    let mut answers = Vec::new();
                    let mut lane = lane.into_iter();
                    while answers.len() < index.len() || lane.len() > 0 {
                        while index.len() - answers.len() < window {
                            let Some((i, params)) = lane.next() else { break };
                            index.insert(client.send(Call::SubmitJob(params)).expect("send"), i);
                        }
                        client.flush().expect("flush");
                        let (id, reply) = client.recv().expect("recv");
                        answers.push((index[&id], reply));
                    }
                    answers
                })
            })
            .collect();
        threads.into_iter().flat_map(|thread| thread.join().expect("pipeline thread")).collect::<Vec<_>>()
    });
    let mut ordered: Vec<Option<_>> = (0..total).map(|_| None).collect();
    for (i, answer) in answered {
        assert!(ordered[i].replace(answer).is_none(), "request {i} answered twice");
    }
    ordered
        .into_iter()
        .enumerate()
        .map(|(i, answer)| answer.unwrap_or_else(|| panic!("request {i} unanswered")))
        .collect()
}
