// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Consumer} from "./coprocessor/Consumer.sol";
import {SingleOffchainSigner} from "./coprocessor/SingleOffchainSigner.sol";
import {ProgramID} from "./ProgramID.sol";

/// @title {Pascal}Consumer
/// @notice The {name} app onchain: it requests the sum of the squares
///         1..=n from the coprocessor and stores each result it receives.
///         Jobs are requested onchain (`requestSumOfSquares`) or offchain,
///         signed by the offchain signer and settled by the engine.
/// @dev The guest's program ID comes from `ProgramID.sol`, which the build
///      generates from the built ELF (`make contracts`): contract and guest
///      cannot drift apart.
contract {Pascal}Consumer is Consumer, SingleOffchainSigner {
    /// @notice The cycle limit of every job this consumer requests.
    uint64 public constant MAX_CYCLES = 10_000_000;

    struct Sum {
        bool known;
        uint256 sum;
    }

    mapping(uint64 => Sum) private sums;

    event SumReceived(bytes32 indexed jobID, uint64 n, uint256 sum);

    /// @dev Not proxied: the constructor runs the initializers; the
    ///      deployer owns the contract.
    constructor(address jobManager, address offchainSigner) initializer {
        Consumer.initialize(msg.sender, jobManager, 0);
        SingleOffchainSigner.initialize(offchainSigner);
    }

    /// @notice Requests 1² + 2² + … + n² as an onchain job.
    function requestSumOfSquares(uint64 n) external returns (bytes32 jobID) {
        return requestJob(ProgramID.{CONST}, abi.encode(n), MAX_CYCLES);
    }

    /// @notice Requests a job with raw onchain input (what
    ///         `coprocessor job request` calls).
    function requestWithInput(bytes calldata onchainInput) external returns (bytes32 jobID) {
        return requestJob(ProgramID.{CONST}, onchainInput, MAX_CYCLES);
    }

    function setOffchainSigner(address _offchainSigner) external onlyOwner {
        _updateOffchainSigner(_offchainSigner);
    }

    /// @return known whether a result for n was received
    /// @return sum 1² + 2² + … + n², as the guest computed it
    function getSum(uint64 n) external view returns (bool known, uint256 sum) {
        Sum storage s = sums[n];
        return (s.known, s.sum);
    }

    /// @dev The guest's output: abi.encode(uint64 n, uint256 sum).
    function _receiveResult(bytes32 jobID, bytes memory result) internal override {
        (uint64 n, uint256 sum) = abi.decode(result, (uint64, uint256));
        sums[n] = Sum({known: true, sum: sum});
        emit SumReceived(jobID, n, sum);
    }
}
