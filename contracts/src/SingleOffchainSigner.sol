// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {OffchainRequester} from "./OffchainRequester.sol";

/// @title SingleOffchainSigner
/// @notice Accepts offchain job requests signed by one key.
abstract contract SingleOffchainSigner is OffchainRequester {
    address internal offchainSigner;

    /// @dev Reserved storage for future versions.
    uint256[49] private __gap;

    function initialize(address _offchainSigner) public virtual onlyInitializing {
        offchainSigner = _offchainSigner;
    }

    function getOffchainSigner() external view returns (address) {
        return offchainSigner;
    }

    /// @dev `hash` is already the EIP-191 digest (the JobManager prefixes it),
    ///      so it is recovered as is.
    function isValidSignature(bytes32 hash, bytes memory signature) public view virtual override returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && signer == offchainSigner) {
            return EIP1271_MAGIC_VALUE;
        }
        return INVALID_SIGNATURE;
    }

    function _updateOffchainSigner(address _offchainSigner) internal {
        offchainSigner = _offchainSigner;
    }
}
