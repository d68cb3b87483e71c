//! The contracts, bound from the committed artifacts in `contracts/out/`
//! (`npm run build` in `contracts/` writes them; `make test` fails if they
//! are stale). Each module has the calls, events and, for deployable
//! contracts, the bytecode and `deploy`. Each artifact gets its own module
//! because their ABIs name the same structs (`IJobManager.JobMetadata`).

#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

/// `IJobManager`: InfinityVM's interface, calls and events.
pub mod i_job_manager {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        IJobManager,
        "../contracts/out/IJobManager.json"
    );
}
/// `IBatchSettlement`: our additions to the JobManager (batched
/// settlement, job statuses in one call, several relayers).
pub mod i_batch_settlement {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        IBatchSettlement,
        "../contracts/out/IBatchSettlement.json"
    );
}
/// `JobManager`: the implementation, deployed behind [`erc1967_proxy`].
pub mod job_manager {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        JobManager,
        "../contracts/out/JobManager.json"
    );
}
/// OpenZeppelin's `ERC1967Proxy`, which initializes the JobManager atomically.
pub mod erc1967_proxy {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        ERC1967Proxy,
        "../contracts/out/ERC1967Proxy.json"
    );
}
/// `Consumer`: nonces and inputs per job.
pub mod consumer {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        Consumer,
        "../contracts/out/Consumer.json"
    );
}
/// `OffchainRequester`: EIP-1271.
pub mod offchain_requester {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        OffchainRequester,
        "../contracts/out/OffchainRequester.json"
    );
}
/// `StatefulConsumer`: state roots.
pub mod stateful_consumer {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        StatefulConsumer,
        "../contracts/out/StatefulConsumer.json"
    );
}
/// The `square-root` example consumer.
pub mod square_root_consumer {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        SquareRootConsumer,
        "../contracts/out/SquareRootConsumer.json"
    );
}
/// The `clob` example consumer.
pub mod clob_consumer {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        ClobConsumer,
        "../contracts/out/ClobConsumer.json"
    );
}

pub use clob_consumer::ClobConsumer;
pub use consumer::Consumer;
pub use erc1967_proxy::ERC1967Proxy;
pub use i_batch_settlement::IBatchSettlement;
pub use i_job_manager::IJobManager;
pub use job_manager::JobManager;
pub use offchain_requester::OffchainRequester;
pub use square_root_consumer::SquareRootConsumer;
pub use stateful_consumer::StatefulConsumer;
