// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Consumer} from "../Consumer.sol";
import {SingleOffchainSigner} from "../SingleOffchainSigner.sol";

/// @title ReentrantConsumer (tests only)
/// @notice A hostile consumer: when it receives a result it calls back into
///         the JobManager with calldata chosen beforehand (for example a
///         second submitResult), and bubbles up any revert.
contract ReentrantConsumer is Consumer, SingleOffchainSigner {
    bytes private reentryCall;
    uint256 public resultsReceived;

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

    /// @notice Calldata to send to the JobManager from `_receiveResult`
    ///         (empty: do not re-enter).
    function setReentryCall(bytes calldata data) external {
        reentryCall = data;
    }

    function _receiveResult(bytes32, bytes memory) internal override {
        resultsReceived += 1;
        bytes memory data = reentryCall;
        if (data.length == 0) return;
        (bool ok, bytes memory ret) = address(_jobManager).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
