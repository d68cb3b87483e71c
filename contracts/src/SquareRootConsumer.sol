// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Consumer} from "./Consumer.sol";
import {SingleOffchainSigner} from "./SingleOffchainSigner.sol";

/// @title SquareRootConsumer
/// @notice Example app for the `square-root` guest, whose onchain input is
///         abi.encode(uint256 n) and whose output is
///         abi.encode(uint256 n, uint256 floor(sqrt(n))).
///         Jobs can be requested onchain (requestSquareRoot, requestWithInput)
///         or offchain, signed by the offchain signer.
/// @dev Not proxied: the constructor runs the initializers. The deployer is
///      the owner.
contract SquareRootConsumer is Consumer, SingleOffchainSigner {
    struct Root {
        bool known;
        uint256 root;
    }

    bytes private programID;
    uint64 private maxCycles;
    mapping(uint256 => Root) private roots;

    event SquareRootReceived(bytes32 indexed jobID, uint256 n, uint256 root);

    constructor(address jobManager, address offchainSigner, bytes memory _programID, uint64 _maxCycles)
        initializer
    {
        Consumer.initialize(msg.sender, jobManager, 0);
        SingleOffchainSigner.initialize(offchainSigner);
        programID = _programID;
        maxCycles = _maxCycles;
    }

    /// @notice Requests floor(sqrt(n)) as an onchain job.
    function requestSquareRoot(uint256 n) external returns (bytes32 jobID) {
        return requestJob(programID, abi.encode(n), maxCycles);
    }

    /// @notice Requests an onchain job of this app's program with raw onchain
    ///         input (every example consumer has this function).
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

    /// @return known whether a result for n was received
    /// @return root floor(sqrt(n)) as the guest computed it
    function getSquareRoot(uint256 n) external view returns (bool known, uint256 root) {
        Root storage r = roots[n];
        return (r.known, r.root);
    }

    function _receiveResult(bytes32 jobID, bytes memory result) internal override {
        (uint256 n, uint256 root) = abi.decode(result, (uint256, uint256));
        roots[n] = Root({known: true, root: root});
        emit SquareRootReceived(jobID, n, root);
    }
}
