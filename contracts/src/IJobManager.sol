// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

// Job status codes, as stored in JobMetadata.status. 0 means "no such job".
uint8 constant JOB_STATE_PENDING = 1;
uint8 constant JOB_STATE_CANCELLED = 2;
uint8 constant JOB_STATE_COMPLETED = 3;

/// @title IJobManager
/// @notice The coprocessor's onchain entry point. It keeps InfinityVM's
///         IJobManager ABI: the same functions, events and struct layouts, so
///         a consumer written for InfinityVM works unchanged.
interface IJobManager {
    /// @notice A job as the JobManager stores it.
    struct JobMetadata {
        bytes programID;
        uint64 maxCycles;
        address consumer;
        uint8 status;
    }

    /// @notice What the coprocessor operator signs for an onchain job
    ///         (EIP-191 personal_sign over `abi.encode(result)`).
    struct ResultWithMetadata {
        bytes32 jobID;
        bytes32 onchainInputHash;
        uint64 maxCycles;
        bytes programID;
        bytes result;
    }

    /// @notice What the coprocessor operator signs for an offchain job.
    struct OffchainResultWithMetadata {
        bytes32 jobID;
        bytes32 onchainInputHash;
        bytes32 offchainInputHash;
        uint64 maxCycles;
        bytes programID;
        bytes result;
        bytes32[] versionedBlobHashes;
    }

    /// @notice An offchain job request, signed (EIP-191 over
    ///         `abi.encode(request)`) by a key the consumer accepts (EIP-1271).
    struct OffchainJobRequest {
        uint64 nonce;
        uint64 maxCycles;
        address consumer;
        bytes programID;
        bytes onchainInput;
        bytes32 offchainInputHash;
    }

    event JobCreated(
        bytes32 indexed jobID,
        uint64 indexed nonce,
        address indexed consumer,
        uint64 maxCycles,
        bytes programID,
        bytes onchainInput
    );
    event JobCancelled(bytes32 indexed jobID);
    event JobCompleted(bytes32 indexed jobID, bytes result);

    function createJob(uint64 nonce, bytes calldata programID, bytes calldata onchainInput, uint64 maxCycles)
        external
        returns (bytes32 jobID);

    function getJobMetadata(bytes32 jobID) external view returns (JobMetadata memory);

    function cancelJob(bytes32 jobID) external;

    function submitResult(bytes calldata resultWithMetadata, bytes calldata signature) external;

    function submitResultForOffchainJob(
        bytes calldata offchainResultWithMetadata,
        bytes calldata signatureOnResult,
        bytes calldata jobRequest,
        bytes calldata signatureOnRequest
    ) external;

    function setRelayer(address _relayer) external;

    function getRelayer() external view returns (address);

    function setCoprocessorOperator(address _coprocessorOperator) external;

    function getCoprocessorOperator() external view returns (address);
}
