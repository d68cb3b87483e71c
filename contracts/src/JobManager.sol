// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {OwnableUpgradeable} from "@openzeppelin/contracts-upgradeable/access/OwnableUpgradeable.sol";
import {ReentrancyGuardUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardUpgradeable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {IJobManager, JOB_STATE_PENDING, JOB_STATE_CANCELLED, JOB_STATE_COMPLETED} from "./IJobManager.sol";
import {IBatchSettlement} from "./IBatchSettlement.sol";
import {Consumer} from "./Consumer.sol";

/// @title JobManager
/// @notice Records jobs and accepts their results, signed by the coprocessor
///         operator, on behalf of consumer contracts. Deployed behind an
///         ERC1967Proxy whose constructor calls `initializeJobManager`.
/// @dev Jobs come in two ways:
///      - onchain: a consumer calls `createJob` (JobCreated is emitted, the
///        engine picks it up), and the relayer later calls `submitResult`;
///      - offchain: a client sends a signed OffchainJobRequest straight to the
///        engine, and anyone may settle it with `submitResultForOffchainJob`,
///        which creates the job and delivers its result in one transaction.
///      Results are trusted because the operator signed them (EIP-191 over the
///      ABI-encoded result struct); there is no proof verification.
///
///      Additive to InfinityVM's ABI (IBatchSettlement): `submitResults`
///      settles many results of both kinds in one transaction, each isolated
///      from the others; the owner may authorize relayers besides `relayer`;
///      `getJobStatuses` reads many statuses in one call. Every IJobManager
///      function, event, struct and revert string is unchanged.
contract JobManager is IJobManager, IBatchSettlement, Initializable, OwnableUpgradeable, ReentrancyGuardUpgradeable {
    /// @notice The main relayer (`getRelayer` / `setRelayer`). It and the
    ///         accounts in `authorizedRelayers` may call `submitResult`.
    address public relayer;
    /// @notice The key whose signature makes a result valid.
    address public coprocessorOperator;
    /// @notice jobID => job. jobID = keccak256(abi.encodePacked(uint64 nonce, address consumer)).
    mapping(bytes32 => JobMetadata) public jobIDToMetadata;
    /// @notice jobID => EIP-4844 versioned hashes of the blobs that carried
    ///         an offchain job's input (empty when none were used).
    mapping(bytes32 => bytes32[]) public jobIDToBlobhashes;
    /// @notice Relayers authorized by the owner in addition to `relayer`
    ///         (`setRelayerAuthorized`); see `isRelayer`.
    mapping(address => bool) public authorizedRelayers;

    /// @dev Reserved storage for future versions (5 slots used + 45 = 50;
    ///      authorizedRelayers took the first slot of the former 46).
    uint256[45] private __gap;

    // --- submitResults: skip reasons and gas accounting ---------------------

    string private constant BATCH_OUT_OF_GAS = "JobManager.submitResults: batch out of gas";
    string private constant ITEM_OUT_OF_GAS = "JobManager.submitResults: item ran out of gas";
    string private constant ITEM_NO_REASON = "JobManager.submitResults: item reverted without a reason";
    string private constant ITEM_CUSTOM_ERROR = "JobManager.submitResults: item reverted with custom error ";

    /// @dev Gas kept per item on top of gasPerItem * 64/63: the loop, the
    ///      call, decoding the revert data, emitting ResultSkipped with a
    ///      reason of up to MAX_REASON_LENGTH bytes, and ending the batch
    ///      after the last item (about 10k at most; test/batch.test.js runs
    ///      every item of a worst-case batch at its tightest gas limit).
    uint256 private constant BATCH_ITEM_RESERVE = 30_000;
    /// @dev Gas kept per later item, to skip it with "batch out of gas"
    ///      (measured: about 3k each).
    uint256 private constant BATCH_SKIP_GAS = 5_000;
    /// @dev Gas per 32-byte word of an item, to copy it into the call.
    uint256 private constant BATCH_GAS_PER_WORD = 12;
    /// @dev Memory words an item uses besides its own bytes (the call's
    ///      head, the kept revert data, the reason, the event).
    uint256 private constant BATCH_EXTRA_WORDS = 96;
    /// @dev Longest revert reason kept in ResultSkipped, in bytes; longer
    ///      ones are cut (at a UTF-8 character boundary).
    uint256 private constant MAX_REASON_LENGTH = 512;
    /// @dev Revert data copied at most: Error(string)'s selector, offset and
    ///      length words, the reason, and the byte after it (to cut it well).
    uint256 private constant MAX_REVERT_DATA = 4 + 32 + 32 + MAX_REASON_LENGTH + 1;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Called once, by the ERC1967Proxy constructor.
    function initializeJobManager(address initialOwner, address _relayer, address _coprocessorOperator)
        public
        initializer
    {
        require(_relayer != address(0), "JobManager.initializeJobManager: relayer is the zero address");
        require(
            _coprocessorOperator != address(0),
            "JobManager.initializeJobManager: coprocessor operator is the zero address"
        );
        __Ownable_init(initialOwner);
        __ReentrancyGuard_init();
        relayer = _relayer;
        coprocessorOperator = _coprocessorOperator;
    }

    // ------------------------------------------------------------------
    // Admin
    // ------------------------------------------------------------------

    function setRelayer(address _relayer) external override onlyOwner {
        require(_relayer != address(0), "JobManager.setRelayer: relayer is the zero address");
        relayer = _relayer;
    }

    function getRelayer() external view override returns (address) {
        return relayer;
    }

    /// @notice Authorizes (or revokes) `_relayer` as an additional relayer;
    ///         `relayer` itself is always one. Owner only.
    function setRelayerAuthorized(address _relayer, bool authorized) external override onlyOwner {
        require(_relayer != address(0), "JobManager.setRelayerAuthorized: relayer is the zero address");
        authorizedRelayers[_relayer] = authorized;
        emit RelayerAuthorized(_relayer, authorized);
    }

    /// @notice Whether `account` may submit onchain results: `relayer` or an
    ///         authorized relayer.
    function isRelayer(address account) public view override returns (bool) {
        return account == relayer || authorizedRelayers[account];
    }

    function setCoprocessorOperator(address _coprocessorOperator) external override onlyOwner {
        require(
            _coprocessorOperator != address(0),
            "JobManager.setCoprocessorOperator: coprocessor operator is the zero address"
        );
        coprocessorOperator = _coprocessorOperator;
    }

    function getCoprocessorOperator() external view override returns (address) {
        return coprocessorOperator;
    }

    function getJobMetadata(bytes32 jobID) public view override returns (JobMetadata memory) {
        return jobIDToMetadata[jobID];
    }

    /// @notice The status of each job in `jobIDs`, in order (0 = no such job).
    function getJobStatuses(bytes32[] calldata jobIDs) external view override returns (uint8[] memory statuses) {
        statuses = new uint8[](jobIDs.length);
        for (uint256 i = 0; i < jobIDs.length; ++i) {
            statuses[i] = jobIDToMetadata[jobIDs[i]].status;
        }
    }

    /// @notice Admission checks of many offchain requests in one call: the
    ///         consumer's EIP-1271 answer, exactly as settlement asks it, and
    ///         the job's status (0 = unused).
    function checkOffchainRequests(OffchainCheck[] calldata checks)
        external
        view
        override
        returns (bool[] memory accepted, uint8[] memory statuses)
    {
        accepted = new bool[](checks.length);
        statuses = new uint8[](checks.length);
        for (uint256 i = 0; i < checks.length; ++i) {
            OffchainCheck calldata check = checks[i];
            accepted[i] = SignatureChecker.isValidERC1271SignatureNow(check.consumer, check.digest, check.signature);
            statuses[i] = jobIDToMetadata[check.jobID].status;
        }
    }

    // ------------------------------------------------------------------
    // Jobs
    // ------------------------------------------------------------------

    /// @notice Creates an onchain job for the calling consumer contract, which
    ///         must implement Consumer (updateLatestNonce is called back).
    function createJob(uint64 nonce, bytes calldata programID, bytes calldata onchainInput, uint64 maxCycles)
        external
        override
        returns (bytes32 jobID)
    {
        jobID = _createJob(nonce, programID, maxCycles, msg.sender);
        emit JobCreated(jobID, nonce, msg.sender, maxCycles, programID, onchainInput);
    }

    /// @notice Cancels a pending job. The job's consumer or the JobManager
    ///         owner (an admin veto) may cancel.
    function cancelJob(bytes32 jobID) external override {
        JobMetadata storage job = jobIDToMetadata[jobID];
        require(
            msg.sender == job.consumer || msg.sender == owner(),
            "JobManager.cancelJob: caller is not the job consumer or JobManager owner"
        );
        require(job.status == JOB_STATE_PENDING, "JobManager.cancelJob: job is not in pending state");
        job.status = JOB_STATE_CANCELLED;
        emit JobCancelled(jobID);
    }

    /// @notice Delivers the result of an onchain job. Only a relayer
    ///         (`isRelayer`: `relayer` or an authorized one) may call.
    /// @param resultWithMetadata abi.encode(ResultWithMetadata)
    /// @param signature the operator's EIP-191 signature over resultWithMetadata,
    ///        65 bytes r||s||v or 64 bytes r||vs (EIP-2098)
    function submitResult(bytes calldata resultWithMetadata, bytes calldata signature)
        external
        override
        nonReentrant
    {
        _settleOnchainJob(resultWithMetadata, signature, isRelayer(msg.sender));
    }

    /// @notice Creates an offchain job and delivers its result in one call.
    ///         Anyone may call it: the consumer's signer vouches for the request
    ///         (EIP-1271) and the operator for the result.
    /// @param offchainResultWithMetadata abi.encode(OffchainResultWithMetadata)
    /// @param signatureOnResult the operator's EIP-191 signature over offchainResultWithMetadata
    /// @param jobRequest abi.encode(OffchainJobRequest)
    /// @param signatureOnRequest a signature the consumer's isValidSignature accepts for
    ///        the EIP-191 digest of jobRequest
    function submitResultForOffchainJob(
        bytes calldata offchainResultWithMetadata,
        bytes calldata signatureOnResult,
        bytes calldata jobRequest,
        bytes calldata signatureOnRequest
    ) external override nonReentrant {
        _settleOffchainJob(offchainResultWithMetadata, signatureOnResult, jobRequest, signatureOnRequest);
    }

    // ------------------------------------------------------------------
    // Batches (IBatchSettlement)
    // ------------------------------------------------------------------

    /// @notice Settles many results in one transaction, each isolated from
    ///         the others. Anyone may call; onchain items need a relayer
    ///         caller (`isRelayer(msg.sender)`), offchain items do not.
    /// @dev Each item runs in its own call to `settleBatchItem`, with exactly
    ///      `gasPerItem` gas, and goes through exactly the checks and effects
    ///      of `submitResult` (empty `jobRequest`) or of
    ///      `submitResultForOffchainJob` (the consumer sees the same
    ///      `receiveResult` call). A settled item emits JobCompleted as usual.
    ///      A failing item is rolled back alone and emits
    ///      ResultSkipped(jobID, reason), with reason:
    ///      - the revert string (e.g. "JobManager.submitResult: job is not in
    ///        pending state", or the consumer's own), cut to at most 512
    ///        bytes at a UTF-8 character boundary (a consumer's reason is
    ///        whatever bytes it reverted with: not necessarily valid UTF-8);
    ///      - "panic 0x<code>" for a Panic(uint256) (e.g. "panic 0x11");
    ///      - "JobManager.submitResults: item reverted with custom error
    ///        0x<selector>" for any other revert data (e.g. 0x3ee5aeb5,
    ///        ReentrancyGuardReentrantCall, when a consumer re-enters);
    ///      - for empty revert data, "JobManager.submitResults: item ran out of
    ///        gas" if the item used at least 15/16 of gasPerItem (an
    ///        out-of-gas inside it, e.g. in the consumer), else
    ///        "JobManager.submitResults: item reverted without a reason" (e.g.
    ///        malformed bytes that abi.decode rejects).
    ///      At most MAX_REVERT_DATA bytes of an item's revert data are copied,
    ///      so a huge revert costs the batch nothing more.
    ///
    ///      The jobID of ResultSkipped is read without any check, so that
    ///      malformed bytes cannot revert the batch: bytes [32:64] of
    ///      resultWithMetadata (the first field of the encoded tuple, after
    ///      its 0x20 offset word), for onchain and offchain items alike (for
    ///      an offchain item it is the job ID the operator signed), or
    ///      bytes32(0) if resultWithMetadata is shorter than 64 bytes.
    ///
    ///      Gas bound: before each item, the batch checks it has gas for it:
    ///      gasPerItem * 64/63 (what a call must hold back to pass gasPerItem
    ///      on) + BATCH_ITEM_RESERVE + the cost of copying the item +
    ///      BATCH_SKIP_GAS for each later item. If not, that item and every
    ///      later one are skipped with "JobManager.submitResults: batch out of
    ///      gas" (one ResultSkipped each): a too small transaction gas limit
    ///      settles a prefix of the batch instead of reverting it (unless
    ///      the limit does not even cover ~13k + ~3k per item to skip them
    ///      all). Hence eth_estimateGas (the cheapest gas limit that does not
    ///      revert) is NOT a gas limit that settles everything: give at least
    ///      the calldata's intrinsic gas + 100_000
    ///      + n * (gasPerItem * 64/63 + 40_000) + 1 gas per byte of items
    ///      beyond the first 10 kB (copying an item to memory; enough for
    ///      items of up to ~300 kB each).
    /// @param items the results, settled in order (an item may depend on an
    ///        earlier one, e.g. a StatefulConsumer's next state root)
    /// @param gasPerItem the gas each item runs with; must be > 0
    /// @return settled the number of items settled
    function submitResults(ResultItem[] calldata items, uint256 gasPerItem)
        external
        override
        nonReentrant
        returns (uint256 settled)
    {
        require(gasPerItem != 0, "JobManager.submitResults: gasPerItem is zero");
        bool callerIsRelayer = isRelayer(msg.sender);
        uint256 count = items.length;
        for (uint256 i = 0; i < count; ++i) {
            ResultItem calldata item = items[i];
            if (!_hasGasForItem(item, gasPerItem, count - i - 1)) {
                for (; i < count; ++i) {
                    emit ResultSkipped(_claimedJobID(items[i]), BATCH_OUT_OF_GAS);
                }
                break;
            }
            uint256 freeMemory = _freeMemoryPointer();
            (bool ok, string memory reason) = _runBatchItem(item, callerIsRelayer, gasPerItem);
            if (ok) {
                ++settled;
            } else {
                emit ResultSkipped(_claimedJobID(item), reason);
            }
            // Nothing allocated for this item is used again: reuse its memory,
            // so the batch's memory (and its cost) does not grow with its length.
            _resetFreeMemoryPointer(freeMemory);
        }
    }

    /// @notice One item of `submitResults`; only the JobManager itself may
    ///         call it (from `submitResults`, which holds the reentrancy lock).
    /// @param callerIsRelayer whether the caller of `submitResults` is a relayer
    function settleBatchItem(ResultItem calldata item, bool callerIsRelayer) external {
        require(msg.sender == address(this), "JobManager.settleBatchItem: caller is not the JobManager");
        if (item.jobRequest.length == 0) {
            _settleOnchainJob(item.resultWithMetadata, item.signature, callerIsRelayer);
        } else {
            _settleOffchainJob(item.resultWithMetadata, item.signature, item.jobRequest, item.signatureOnRequest);
        }
    }

    // ------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------

    /// @dev submitResult's checks and effects, shared with batch items.
    function _settleOnchainJob(bytes calldata resultWithMetadata, bytes calldata signature, bool callerIsRelayer)
        internal
    {
        require(callerIsRelayer, "JobManager.submitResult: caller is not the relayer");
        require(_signedByOperator(resultWithMetadata, signature), "JobManager.submitResult: Invalid signature");

        ResultWithMetadata memory result = abi.decode(resultWithMetadata, (ResultWithMetadata));
        _submitResult(result.jobID, result.maxCycles, result.onchainInputHash, result.programID, result.result);
    }

    /// @dev submitResultForOffchainJob's checks and effects, shared with
    ///      batch items.
    function _settleOffchainJob(
        bytes calldata offchainResultWithMetadata,
        bytes calldata signatureOnResult,
        bytes calldata jobRequest,
        bytes calldata signatureOnRequest
    ) internal {
        OffchainJobRequest memory request = abi.decode(jobRequest, (OffchainJobRequest));
        bytes32 jobID = keccak256(abi.encodePacked(request.nonce, request.consumer));

        require(
            SignatureChecker.isValidERC1271SignatureNow(
                request.consumer, MessageHashUtils.toEthSignedMessageHash(jobRequest), signatureOnRequest
            ),
            "JobManager.submitResultForOffchainJob: Invalid signature on job request"
        );
        require(
            _signedByOperator(offchainResultWithMetadata, signatureOnResult),
            "JobManager.submitResultForOffchainJob: Invalid signature on result"
        );

        OffchainResultWithMetadata memory result =
            abi.decode(offchainResultWithMetadata, (OffchainResultWithMetadata));
        require(
            result.jobID == jobID,
            "JobManager.submitResultForOffchainJob: job ID signed by coprocessor doesn't match job ID of job request"
        );
        require(
            result.offchainInputHash == request.offchainInputHash,
            "JobManager.submitResultForOffchainJob: offchain input hash signed by coprocessor doesn't match offchain input hash of job request"
        );

        // The offchain input may have been posted as EIP-4844 blobs in this
        // very transaction; the operator's signed hashes must be exactly them.
        bytes32[] memory blobHashes = result.versionedBlobHashes;
        for (uint256 i = 0; i < blobHashes.length; i++) {
            require(
                blobhash(i) == blobHashes[i], "JobManager.submitResultForOffchainJob: given blob hash does not match"
            );
        }
        if (blobHashes.length != 0) {
            jobIDToBlobhashes[jobID] = blobHashes;
        }

        // Creates the job without a JobCreated event (nobody has to execute
        // it); a nonce already used by this consumer reverts here.
        _createJob(request.nonce, request.programID, request.maxCycles, request.consumer);
        Consumer(request.consumer).setInputsForJob(jobID, request.onchainInput, request.offchainInputHash);

        _submitResult(jobID, result.maxCycles, result.onchainInputHash, result.programID, result.result);
    }

    function _createJob(uint64 nonce, bytes memory programID, uint64 maxCycles, address consumer)
        internal
        returns (bytes32 jobID)
    {
        jobID = keccak256(abi.encodePacked(nonce, consumer));
        require(
            jobIDToMetadata[jobID].status == 0, "JobManager.createJob: job already exists with this nonce and consumer"
        );
        jobIDToMetadata[jobID] = JobMetadata({
            programID: programID,
            maxCycles: maxCycles,
            consumer: consumer,
            status: JOB_STATE_PENDING
        });
        Consumer(consumer).updateLatestNonce(nonce);
    }

    function _submitResult(
        bytes32 jobID,
        uint64 maxCycles,
        bytes32 onchainInputHash,
        bytes memory programID,
        bytes memory result
    ) internal {
        JobMetadata storage job = jobIDToMetadata[jobID];
        require(job.status == JOB_STATE_PENDING, "JobManager.submitResult: job is not in pending state");
        address consumer = job.consumer;

        // The operator must have run the program on the input the job was
        // created with, with the program and cycle limit it was created with.
        require(
            keccak256(Consumer(consumer).getOnchainInputForJob(jobID)) == onchainInputHash,
            "JobManager.submitResult: onchain input signed by coprocessor doesn't match onchain input submitted with job"
        );
        require(
            keccak256(job.programID) == keccak256(programID),
            "JobManager.submitResult: program ID signed by coprocessor doesn't match program ID submitted with job"
        );
        require(
            job.maxCycles == maxCycles,
            "JobManager.submitResult: max cycles signed by coprocessor doesn't match max cycles submitted with job"
        );

        job.status = JOB_STATE_COMPLETED;
        emit JobCompleted(jobID, result);

        // A revert in the consumer reverts the whole submission (or, in
        // submitResults, the whole item): the job stays pending and the
        // result can be submitted again.
        Consumer(consumer).receiveResult(jobID, result);
    }

    /// @dev EIP-191 personal_sign digest of the raw bytes, signed as 65
    ///      bytes r||s||v (v = 27 or 28) or, as InfinityVM's JobManager also
    ///      accepts, 64 bytes r||vs (EIP-2098 compact: v - 27 in the top bit
    ///      of s); low s either way; recovered signer == operator.
    ///      tryRecover never reverts: a malformed signature is just invalid.
    function _signedByOperator(bytes memory message, bytes memory signature) internal view returns (bool) {
        bytes32 digest = MessageHashUtils.toEthSignedMessageHash(message);
        address signer;
        ECDSA.RecoverError err;
        if (signature.length == 64) {
            bytes32 r;
            bytes32 vs;
            assembly ("memory-safe") {
                r := mload(add(signature, 0x20))
                vs := mload(add(signature, 0x40))
            }
            (signer, err,) = ECDSA.tryRecover(digest, r, vs);
        } else {
            (signer, err,) = ECDSA.tryRecover(digest, signature);
        }
        return err == ECDSA.RecoverError.NoError && signer == coprocessorOperator;
    }

    // --- submitResults helpers ---------------------------------------------

    /// @dev Runs one item in its own call to settleBatchItem with exactly
    ///      gasPerItem gas (the caller checked there is enough) and says why
    ///      it failed. A low-level call rather than try/catch: it copies at
    ///      most MAX_REVERT_DATA bytes of the revert data, where try/catch
    ///      would copy (and the event would log) all of it at the batch's
    ///      expense, so a consumer reverting with huge data could exhaust it.
    function _runBatchItem(ResultItem calldata item, bool callerIsRelayer, uint256 gasPerItem)
        private
        returns (bool ok, string memory reason)
    {
        bytes memory data = abi.encodeCall(this.settleBatchItem, (item, callerIsRelayer));
        uint256 returned;
        uint256 gasBefore = gasleft();
        assembly ("memory-safe") {
            ok := call(gasPerItem, address(), 0, add(data, 0x20), mload(data), 0, 0)
            returned := returndatasize()
        }
        uint256 gasUsed = gasBefore - gasleft();
        if (ok) return (true, "");
        if (returned == 0) {
            // An out-of-gas inside the item leaves unused only the 1/64 that
            // each call frame above the failing one held back: under 1/16 of
            // gasPerItem for up to 4 frames (the JobManager's proxy and its
            // implementation are 2, the consumer a 3rd).
            return (false, gasUsed >= gasPerItem - gasPerItem / 16 ? ITEM_OUT_OF_GAS : ITEM_NO_REASON);
        }
        uint256 kept = returned < MAX_REVERT_DATA ? returned : MAX_REVERT_DATA;
        data = new bytes(kept);
        assembly ("memory-safe") {
            returndatacopy(add(data, 0x20), 0, kept)
        }
        return (false, _revertReason(data, returned));
    }

    /// @dev The skip reason for revert data `data` (the first bytes of
    ///      `size` bytes returned): Error(string) gives its string (cut to
    ///      MAX_REASON_LENGTH), Panic(uint256) "panic 0x<code>", anything else
    ///      "...custom error 0x<first 4 bytes>".
    function _revertReason(bytes memory data, uint256 size) private pure returns (string memory reason) {
        bytes4 selector = bytes4(data);
        if (selector == bytes4(0x08c379a0) && size >= 68) {
            // Error(string): selector, offset word (0x20), length, bytes.
            uint256 offset;
            uint256 length;
            assembly ("memory-safe") {
                offset := mload(add(data, 36))
                length := mload(add(data, 68))
            }
            if (offset == 32 && length <= size - 68) {
                if (length > MAX_REASON_LENGTH) {
                    // Cut before the character the limit falls into: back up
                    // over UTF-8 continuation bytes (10xxxxxx). Byte i of the
                    // string is data[68 + i]; the one after the limit is kept.
                    length = MAX_REASON_LENGTH;
                    while (length != 0 && uint8(data[68 + length]) & 0xc0 == 0x80) {
                        --length;
                    }
                }
                // The string is already in place after its length word.
                assembly ("memory-safe") {
                    reason := add(data, 68)
                    mstore(reason, length)
                }
                return reason;
            }
        } else if (selector == bytes4(0x4e487b71) && size >= 36) {
            uint256 code;
            assembly ("memory-safe") {
                code := mload(add(data, 36))
            }
            return string.concat("panic ", Strings.toHexString(code));
        }
        uint256 n = data.length < 4 ? data.length : 4;
        return string.concat(ITEM_CUSTOM_ERROR, Strings.toHexString(uint32(selector) >> (8 * (4 - n)), n));
    }

    /// @dev Whether there is gas for `item` (see submitResults): gasPerItem
    ///      must reach the item's call after the call's 1/64 is held back,
    ///      with BATCH_ITEM_RESERVE, the cost of copying the item to memory
    ///      and BATCH_SKIP_GAS for each of the `later` items left over.
    function _hasGasForItem(ResultItem calldata item, uint256 gasPerItem, uint256 later)
        private
        view
        returns (bool)
    {
        uint256 words = (
            item.resultWithMetadata.length + item.signature.length + item.jobRequest.length
                + item.signatureOnRequest.length
        ) / 32 + 4;
        // Memory expansion is charged on the total size: bound it by the cost
        // of all memory up to the item's highest word.
        uint256 memoryWords = _freeMemoryPointer() / 32 + words + BATCH_EXTRA_WORDS;
        uint256 reserve = BATCH_ITEM_RESERVE + words * BATCH_GAS_PER_WORD + 3 * memoryWords
            + memoryWords * memoryWords / 512 + later * BATCH_SKIP_GAS;
        uint256 available = gasleft();
        if (available <= reserve) return false;
        available -= reserve;
        return available - available / 64 >= gasPerItem;
    }

    /// @dev The job ID an item claims, read without reverting: bytes [32:64]
    ///      of resultWithMetadata (the tuple's first field, the job ID, after
    ///      the 0x20 offset word), bytes32(0) if it is shorter.
    function _claimedJobID(ResultItem calldata item) private pure returns (bytes32 jobID) {
        bytes calldata result = item.resultWithMetadata;
        if (result.length >= 64) jobID = bytes32(result[32:64]);
    }

    function _freeMemoryPointer() private pure returns (uint256 pointer) {
        assembly ("memory-safe") {
            pointer := mload(0x40)
        }
    }

    /// @dev Only ever moves the pointer back to a value it had earlier in the
    ///      same call, once nothing allocated since is used any more.
    function _resetFreeMemoryPointer(uint256 pointer) private pure {
        assembly {
            mstore(0x40, pointer)
        }
    }
}
