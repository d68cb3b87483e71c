// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {OwnableUpgradeable} from "@openzeppelin/contracts-upgradeable/access/OwnableUpgradeable.sol";
import {ReentrancyGuardUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardUpgradeable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IJobManager, JOB_STATE_PENDING, JOB_STATE_CANCELLED, JOB_STATE_COMPLETED} from "./IJobManager.sol";
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
contract JobManager is IJobManager, Initializable, OwnableUpgradeable, ReentrancyGuardUpgradeable {
    /// @notice The only account allowed to call `submitResult`.
    address public relayer;
    /// @notice The key whose signature makes a result valid.
    address public coprocessorOperator;
    /// @notice jobID => job. jobID = keccak256(abi.encodePacked(uint64 nonce, address consumer)).
    mapping(bytes32 => JobMetadata) public jobIDToMetadata;
    /// @notice jobID => EIP-4844 versioned hashes of the blobs that carried
    ///         an offchain job's input (empty when none were used).
    mapping(bytes32 => bytes32[]) public jobIDToBlobhashes;

    /// @dev Reserved storage for future versions (4 slots used + 46 = 50).
    uint256[46] private __gap;

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

    /// @notice Delivers the result of an onchain job. Only the relayer may call.
    /// @param resultWithMetadata abi.encode(ResultWithMetadata)
    /// @param signature the operator's 65-byte EIP-191 signature over resultWithMetadata
    function submitResult(bytes calldata resultWithMetadata, bytes calldata signature)
        external
        override
        nonReentrant
    {
        require(msg.sender == relayer, "JobManager.submitResult: caller is not the relayer");
        require(_signedByOperator(resultWithMetadata, signature), "JobManager.submitResult: Invalid signature");

        ResultWithMetadata memory result = abi.decode(resultWithMetadata, (ResultWithMetadata));
        _submitResult(result.jobID, result.maxCycles, result.onchainInputHash, result.programID, result.result);
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

    // ------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------

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

        // A revert in the consumer reverts the whole submission: the job
        // stays pending and the result can be submitted again.
        Consumer(consumer).receiveResult(jobID, result);
    }

    /// @dev EIP-191 personal_sign digest of the raw bytes, 65-byte r||s||v
    ///      signature (v = 27 or 28, low s), recovered signer == operator.
    ///      tryRecover never reverts: a malformed signature is just invalid.
    function _signedByOperator(bytes memory message, bytes memory signature) internal view returns (bool) {
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(MessageHashUtils.toEthSignedMessageHash(message), signature);
        return err == ECDSA.RecoverError.NoError && signer == coprocessorOperator;
    }
}
