// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {MockConsumer} from "./MockConsumer.sol";

/// @title RevertingConsumer (tests only)
/// @notice A MockConsumer whose receiveResult always reverts, in the way set
///         with `setFailure`: by default with the reason
///         "RevertingConsumer: result rejected".
contract RevertingConsumer is MockConsumer {
    enum Failure {
        Reason, // revert("RevertingConsumer: result rejected")
        LongReason, // revert with `reasonLength` "x"s and a "€" (3 bytes)
        Panic, // assert(false): Panic(0x01)
        CustomError // revert ResultRejected(jobID)
    }

    error ResultRejected(bytes32 jobID);

    Failure public failure;
    uint256 public reasonLength;
    /// @notice If not 0, burn gas until at most this much is left before failing.
    uint256 public burnDownTo;

    constructor(address jobManager, address offchainSigner) MockConsumer(jobManager, offchainSigner) {}

    function setFailure(Failure _failure, uint256 _reasonLength, uint256 _burnDownTo) external {
        failure = _failure;
        reasonLength = _reasonLength;
        burnDownTo = _burnDownTo;
    }

    function _receiveResult(bytes32 jobID, bytes memory) internal view override {
        Failure f = failure;
        bytes memory reason;
        if (f == Failure.LongReason) {
            bytes memory xs = new bytes(reasonLength);
            for (uint256 i = 0; i < xs.length; i += 32) {
                assembly ("memory-safe") {
                    mstore(add(add(xs, 32), i), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
                }
            }
            reason = bytes.concat(xs, unicode"€");
        }
        uint256 leave = burnDownTo;
        if (leave != 0) {
            while (gasleft() > leave) {}
        }
        if (f == Failure.Reason) revert("RevertingConsumer: result rejected");
        if (f == Failure.LongReason) revert(string(reason));
        if (f == Failure.Panic) assert(false);
        revert ResultRejected(jobID);
    }
}
