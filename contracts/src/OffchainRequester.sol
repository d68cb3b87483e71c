// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {OwnableUpgradeable} from "@openzeppelin/contracts-upgradeable/access/OwnableUpgradeable.sol";

/// @title OffchainRequester
/// @notice An app that accepts offchain job requests says, through EIP-1271,
///         which signatures on a request it accepts. The JobManager passes the
///         EIP-191 digest of the ABI-encoded OffchainJobRequest as `hash`.
abstract contract OffchainRequester is Initializable, OwnableUpgradeable {
    // bytes4(keccak256("isValidSignature(bytes32,bytes)"))
    bytes4 internal constant EIP1271_MAGIC_VALUE = 0x1626ba7e;
    bytes4 internal constant INVALID_SIGNATURE = 0xffffffff;

    /// @return EIP1271_MAGIC_VALUE if `signature` over `hash` is acceptable,
    ///         INVALID_SIGNATURE otherwise.
    function isValidSignature(bytes32 hash, bytes memory signature) public view virtual returns (bytes4);
}
