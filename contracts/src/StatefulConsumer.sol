// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Consumer} from "./Consumer.sol";

/// @title StatefulConsumer
/// @notice A consumer whose app state lives offchain and is committed to by a
///         state root. Every job's onchain input names the root it started
///         from, and its result the root it ends in; a result is accepted only
///         if it starts from the latest root, which then advances. So results
///         must be settled in order, each on top of the previous one.
abstract contract StatefulConsumer is Consumer {
    /// @notice The onchain input of every job of a stateful app.
    struct StatefulAppOnchainInput {
        bytes32 inputStateRoot;
        bytes onchainInput;
    }

    /// @notice The output of every job of a stateful app.
    struct StatefulAppResult {
        bytes32 outputStateRoot;
        bytes result;
    }

    bytes32 public latestStateRoot;

    /// @dev Reserved storage for future versions.
    uint256[49] private __gap;

    function initialize(address initialOwner, address jobManager, uint64 initialMaxNonce, bytes32 initialStateRoot)
        public
        virtual
        onlyInitializing
    {
        Consumer.initialize(initialOwner, jobManager, initialMaxNonce);
        latestStateRoot = initialStateRoot;
    }

    function getLatestStateRoot() public view returns (bytes32) {
        return latestStateRoot;
    }

    /// @notice Checks the job started from the latest state root, advances the
    ///         root, and hands the inner result to `_receiveResult`.
    function receiveResult(bytes32 jobID, bytes calldata result) external virtual override onlyJobManager {
        StatefulAppResult memory output = abi.decode(result, (StatefulAppResult));
        StatefulAppOnchainInput memory input =
            abi.decode(getOnchainInputForJob(jobID), (StatefulAppOnchainInput));
        require(input.inputStateRoot == latestStateRoot, "Invalid state root passed as input");
        latestStateRoot = output.outputStateRoot;
        _receiveResult(jobID, output.result);
    }
}
