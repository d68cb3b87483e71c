// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {StatefulConsumer} from "./StatefulConsumer.sol";
import {SingleOffchainSigner} from "./SingleOffchainSigner.sol";

/// @title ClobConsumer
/// @notice Example stateful app for the `clob` guest (a central limit order
///         book). Each job matches one batch of orders against the book:
///         onchain input  abi.encode(StatefulAppOnchainInput{inputStateRoot, batch}),
///         output         abi.encode(StatefulAppResult{outputStateRoot, fills}).
///         Batches settle in order: each must start from the latest state root.
///         The empty book's state is 8 zero bytes, so the natural initial root
///         is keccak256(hex"0000000000000000").
/// @dev Not proxied: the constructor runs the initializers. The deployer is
///      the owner.
contract ClobConsumer is StatefulConsumer, SingleOffchainSigner {
    bytes private programID;
    uint64 private maxCycles;

    /// @notice How many batches have settled.
    uint256 public batchCount;
    /// @notice The fills of the last settled batch, as the guest encoded them.
    bytes public latestFills;

    event BatchSettled(bytes32 indexed jobID, bytes32 stateRoot, bytes fills);

    constructor(
        address jobManager,
        address offchainSigner,
        bytes memory _programID,
        uint64 _maxCycles,
        bytes32 initialStateRoot
    ) initializer {
        StatefulConsumer.initialize(msg.sender, jobManager, 0, initialStateRoot);
        SingleOffchainSigner.initialize(offchainSigner);
        programID = _programID;
        maxCycles = _maxCycles;
    }

    /// @notice Requests an onchain job of this app's program with raw onchain
    ///         input, abi.encode(StatefulAppOnchainInput) (every example
    ///         consumer has this function).
    function requestWithInput(bytes calldata onchainInput) external returns (bytes32 jobID) {
        return requestJob(programID, onchainInput, maxCycles);
    }

    function cancel(bytes32 jobID) external onlyOwner {
        cancelJob(jobID);
    }

    function setOffchainSigner(address _offchainSigner) external onlyOwner {
        _updateOffchainSigner(_offchainSigner);
    }

    function getProgramID() external view returns (bytes memory) {
        return programID;
    }

    function getMaxCycles() external view returns (uint64) {
        return maxCycles;
    }

    /// @dev Called by StatefulConsumer.receiveResult after the state root
    ///      check, with the batch's fills.
    function _receiveResult(bytes32 jobID, bytes memory fills) internal override {
        batchCount += 1;
        latestFills = fills;
        emit BatchSettled(jobID, latestStateRoot, fills);
    }
}
