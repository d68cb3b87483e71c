// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {MockConsumer} from "./MockConsumer.sol";

/// @title GasBurnerConsumer (tests only)
/// @notice A MockConsumer whose receiveResult loops forever: it burns all the
///         gas it is given and fails with an out-of-gas (no revert data).
contract GasBurnerConsumer is MockConsumer {
    constructor(address jobManager, address offchainSigner) MockConsumer(jobManager, offchainSigner) {}

    function _receiveResult(bytes32, bytes memory) internal pure override {
        for (;;) {}
    }
}
