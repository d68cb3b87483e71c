// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {OwnableUpgradeable} from "@openzeppelin/contracts-upgradeable/access/OwnableUpgradeable.sol";

import {JobManager} from "./JobManager.sol";

/// @title Consumer
/// @notice Base contract for an app that uses the coprocessor. It requests
///         jobs from the JobManager, keeps each job's inputs (so the
///         JobManager can check the operator ran the right input) and receives
///         results through `receiveResult`, which only the JobManager may call.
/// @dev Apps implement `_receiveResult`. Apps that accept offchain requests
///      also inherit an OffchainRequester (e.g. SingleOffchainSigner).
///      Works behind a proxy (call `initialize` from the app's initializer) or
///      directly (call it from an `initializer` constructor).
abstract contract Consumer is Initializable, OwnableUpgradeable {
    struct JobInputs {
        bytes onchainInput;
        bytes32 offchainInputHash;
    }

    JobManager internal _jobManager;
    /// @notice The highest nonce used by a job of this consumer so far.
    uint64 public maxNonce;
    mapping(bytes32 => JobInputs) internal jobIDToInputs;

    /// @dev Reserved storage for future versions.
    uint256[47] private __gap;

    modifier onlyJobManager() {
        require(msg.sender == address(_jobManager), "Consumer.onlyJobManager: caller is not the job manager");
        _;
    }

    function initialize(address initialOwner, address jobManager, uint64 initialMaxNonce)
        public
        virtual
        onlyInitializing
    {
        __Ownable_init(initialOwner);
        _jobManager = JobManager(jobManager);
        maxNonce = initialMaxNonce;
    }

    function getJobManager() public view virtual returns (address) {
        return address(_jobManager);
    }

    function getOnchainInputForJob(bytes32 jobID) public view virtual returns (bytes memory) {
        return jobIDToInputs[jobID].onchainInput;
    }

    function getOffchainInputHashForJob(bytes32 jobID) public view virtual returns (bytes32) {
        return jobIDToInputs[jobID].offchainInputHash;
    }

    /// @notice The nonce for this consumer's next job. Nonces must be unique
    ///         per consumer but need not be sequential; offchain clients
    ///         usually take this value.
    function getNextNonce() public view virtual returns (uint64) {
        return maxNonce + 1;
    }

    /// @notice Stores an offchain job's inputs; called by the JobManager when
    ///         the job is settled.
    function setInputsForJob(bytes32 jobID, bytes memory onchainInput, bytes32 offchainInputHash)
        public
        virtual
        onlyJobManager
    {
        jobIDToInputs[jobID] = JobInputs({onchainInput: onchainInput, offchainInputHash: offchainInputHash});
    }

    /// @notice maxNonce = max(maxNonce, nonce); called by the JobManager for
    ///         every job it creates for this consumer.
    function updateLatestNonce(uint64 nonce) public virtual onlyJobManager {
        if (nonce > maxNonce) {
            maxNonce = nonce;
        }
    }

    /// @notice Requests an onchain job with the next nonce; the JobManager
    ///         emits JobCreated and the engine executes it.
    function requestJob(bytes memory programID, bytes memory onchainInput, uint64 maxCycles)
        internal
        virtual
        returns (bytes32)
    {
        bytes32 jobID = _jobManager.createJob(getNextNonce(), programID, onchainInput, maxCycles);
        jobIDToInputs[jobID] = JobInputs({onchainInput: onchainInput, offchainInputHash: bytes32(0)});
        return jobID;
    }

    function cancelJob(bytes32 jobID) internal virtual {
        _jobManager.cancelJob(jobID);
    }

    /// @notice Delivers a job's result; only the JobManager may call.
    function receiveResult(bytes32 jobID, bytes calldata result) external virtual onlyJobManager {
        _receiveResult(jobID, result);
    }

    /// @dev The app's handler for a job's result (the guest's output bytes).
    function _receiveResult(bytes32 jobID, bytes memory result) internal virtual;
}
