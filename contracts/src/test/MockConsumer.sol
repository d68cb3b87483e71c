// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Consumer} from "../Consumer.sol";
import {SingleOffchainSigner} from "../SingleOffchainSigner.sol";

/// @title MockConsumer (tests only)
/// @notice A plain consumer that exposes requestJob / cancelJob with any
///         program ID and cycle limit, and records every result.
contract MockConsumer is Consumer, SingleOffchainSigner {
    mapping(bytes32 => bytes) private results;

    event MockResultReceived(bytes32 indexed jobID, bytes result);

    constructor(address jobManager, address offchainSigner) initializer {
        Consumer.initialize(msg.sender, jobManager, 0);
        SingleOffchainSigner.initialize(offchainSigner);
    }

    function request(bytes calldata programID, bytes calldata onchainInput, uint64 maxCycles)
        external
        returns (bytes32)
    {
        return requestJob(programID, onchainInput, maxCycles);
    }

    /// @notice Calls JobManager.createJob with a chosen nonce (and stores the
    ///         input like requestJob does), e.g. to reuse a nonce.
    function requestWithNonce(uint64 nonce, bytes calldata programID, bytes calldata onchainInput, uint64 maxCycles)
        external
        returns (bytes32 jobID)
    {
        jobID = _jobManager.createJob(nonce, programID, onchainInput, maxCycles);
        jobIDToInputs[jobID] = JobInputs({onchainInput: onchainInput, offchainInputHash: bytes32(0)});
    }

    function cancel(bytes32 jobID) external {
        cancelJob(jobID);
    }

    function setOffchainSigner(address _offchainSigner) external onlyOwner {
        _updateOffchainSigner(_offchainSigner);
    }

    function getResult(bytes32 jobID) external view returns (bytes memory) {
        return results[jobID];
    }

    /// @dev Virtual so the misbehaving test consumers can replace it.
    function _receiveResult(bytes32 jobID, bytes memory result) internal virtual override {
        results[jobID] = result;
        emit MockResultReceived(jobID, result);
    }
}
