// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// @title IBatchSettlement
/// @notice Our addition to InfinityVM's JobManager ABI (IJobManager stays
///         exactly InfinityVM's): settling many results in one transaction,
///         each one isolated from the others, several relayers, and reading
///         many job statuses in one call. Implemented by JobManager.
interface IBatchSettlement {
    /// @notice One result to settle with `submitResults`: the arguments of
    ///         `submitResult` (onchain job) or of `submitResultForOffchainJob`
    ///         (offchain job), told apart by `jobRequest` being empty or not.
    struct ResultItem {
        /// @dev abi.encode(ResultWithMetadata) for an onchain job,
        ///      abi.encode(OffchainResultWithMetadata) for an offchain one.
        bytes resultWithMetadata;
        /// @dev The operator's EIP-191 signature over resultWithMetadata.
        bytes signature;
        /// @dev Empty for an onchain job; abi.encode(OffchainJobRequest) for
        ///      an offchain one.
        bytes jobRequest;
        /// @dev Empty for an onchain job; a signature the consumer accepts
        ///      (EIP-1271) over the EIP-191 digest of jobRequest.
        bytes signatureOnRequest;
    }

    /// @notice An offchain job request to check before admitting it
    ///         (`checkOffchainRequests`).
    struct OffchainCheck {
        /// @dev The consumer, whose isValidSignature decides (EIP-1271).
        address consumer;
        /// @dev The EIP-191 digest of abi.encode(OffchainJobRequest).
        bytes32 digest;
        /// @dev The request's signature.
        bytes signature;
        /// @dev The job ID the request takes (its nonce and consumer).
        bytes32 jobID;
    }

    /// @notice An item of `submitResults` was not settled; everything it did
    ///         was rolled back and the batch went on.
    /// @param jobID the job ID the item's resultWithMetadata claims (its bytes
    ///        [32:64]; bytes32(0) if it is shorter), not checked against
    ///        anything: a malformed item cannot make the batch revert.
    /// @param reason the revert string of the single-result function, or
    ///        "panic 0x<code>", or one of the JobManager.submitResults reasons.
    event ResultSkipped(bytes32 indexed jobID, string reason);

    /// @notice The owner authorized (or revoked) an additional relayer.
    event RelayerAuthorized(address indexed relayer, bool authorized);

    /// @notice Settles many results in one transaction, each in isolation: an
    ///         item that fails is rolled back alone (ResultSkipped) and the
    ///         next one is tried. Anyone may call; onchain items need a
    ///         relayer caller (`isRelayer`).
    /// @param items the results, settled in order
    /// @param gasPerItem the gas each item runs with (must be > 0)
    /// @return settled how many items were settled
    function submitResults(ResultItem[] calldata items, uint256 gasPerItem) external returns (uint256 settled);

    /// @notice The status of each job (0 none, 1 pending, 2 cancelled,
    ///         3 completed), in the order of `jobIDs`.
    function getJobStatuses(bytes32[] calldata jobIDs) external view returns (uint8[] memory statuses);

    /// @notice The admission checks of many offchain job requests in one
    ///         call, exactly as settlement will make them: whether each
    ///         consumer accepts its signature over the digest (OpenZeppelin's
    ///         SignatureChecker.isValidERC1271SignatureNow, as
    ///         submitResultForOffchainJob asks it), and each job's status
    ///         (0: the job ID is unused).
    function checkOffchainRequests(OffchainCheck[] calldata checks)
        external
        view
        returns (bool[] memory accepted, uint8[] memory statuses);

    /// @notice Authorizes (or revokes) an additional relayer. Owner only.
    function setRelayerAuthorized(address relayer, bool authorized) external;

    /// @notice Whether `account` may submit onchain results: the relayer
    ///         (`getRelayer`) or an authorized one.
    function isRelayer(address account) external view returns (bool);
}
