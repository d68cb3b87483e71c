// SPDX-License-Identifier: MIT OR Apache-2.0
//
// JobManager: deployment behind ERC1967Proxy, admin, onchain jobs
// (createJob / cancelJob / submitResult), against a real hardhat node.

"use strict";

const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { Signature, ZeroAddress, keccak256, getBytes, hexlify } = require("ethers");

const {
  abi,
  connect,
  deploy,
  deployJobManager,
  mined,
  events,
  expectRevert,
  jobId,
  signedResult,
  sign,
  highS,
  useJobManager,
} = require("./helpers/coproc");

const PENDING = 1n;
const CANCELLED = 2n;
const COMPLETED = 3n;

const PROGRAM_ID = "0x" + "ab".repeat(32);
const MAX_CYCLES = 1_000_000n;

let chain; // provider + accounts
let jobManager;

useJobManager((stack) => ({ chain, jobManager } = stack));

// A fresh MockConsumer (owner: account 0, offchain signer: appSigner).
async function mockConsumer() {
  return deploy("MockConsumer", chain.owner, await jobManager.getAddress(), chain.appSigner.address);
}

// Requests an onchain job through `consumer` and returns its ID and input.
async function requestJob(consumer, { input = abi.encode(["uint256"], [49]), programID = PROGRAM_ID, maxCycles = MAX_CYCLES } = {}) {
  const receipt = await mined(consumer.request(programID, input, maxCycles));
  const [created] = events(receipt, jobManager, "JobCreated");
  return { jobID: created.args.jobID, input, programID, maxCycles };
}

// The operator's result for a job, as the engine builds it.
function resultFor(job, result = "0xc0ffee", overrides = {}) {
  return signedResult(chain.operator, {
    jobID: job.jobID,
    onchainInputHash: keccak256(job.input),
    maxCycles: job.maxCycles,
    programID: job.programID,
    result,
    ...overrides,
  });
}

describe("deployment", () => {
  it("is initialized through the proxy constructor", async () => {
    assert.equal(await jobManager.owner(), chain.owner.address);
    assert.equal(await jobManager.getRelayer(), chain.relayer.address);
    assert.equal(await jobManager.relayer(), chain.relayer.address);
    assert.equal(await jobManager.getCoprocessorOperator(), chain.operator.address);
    assert.equal(await jobManager.coprocessorOperator(), chain.operator.address);
  });

  it("cannot be initialized a second time", async () => {
    await expectRevert(
      jobManager.initializeJobManager(chain.stranger.address, chain.stranger.address, chain.stranger.address),
      "InvalidInitialization",
    );
  });

  it("the implementation itself can never be initialized", async () => {
    const implementation = await deploy("JobManager", chain.owner);
    await expectRevert(
      implementation.initializeJobManager(chain.owner.address, chain.relayer.address, chain.operator.address),
      "InvalidInitialization",
    );
  });

  it("rejects a zero relayer or operator at initialization", async () => {
    const implementation = await deploy("JobManager", chain.owner);
    const init = (relayer, operator) =>
      implementation.interface.encodeFunctionData("initializeJobManager", [chain.owner.address, relayer, operator]);
    const impl = await implementation.getAddress();
    await expectRevert(
      deploy("ERC1967Proxy", chain.owner, impl, init(ZeroAddress, chain.operator.address)),
      "JobManager.initializeJobManager: relayer is the zero address",
    );
    await expectRevert(
      deploy("ERC1967Proxy", chain.owner, impl, init(chain.relayer.address, ZeroAddress)),
      "JobManager.initializeJobManager: coprocessor operator is the zero address",
    );
  });
});

describe("admin setters", () => {
  it("the owner sets the relayer; others cannot; zero is rejected", async () => {
    const { jobManager: jm } = await deployJobManager(chain);
    await mined(jm.setRelayer(chain.stranger.address));
    assert.equal(await jm.getRelayer(), chain.stranger.address);

    const { args } = await expectRevert(
      jm.connect(chain.stranger).setRelayer(chain.stranger.address),
      "OwnableUnauthorizedAccount",
    );
    assert.deepEqual(args, [chain.stranger.address]);
    await expectRevert(jm.setRelayer(ZeroAddress), "JobManager.setRelayer: relayer is the zero address");
  });

  it("the owner sets the coprocessor operator; others cannot; zero is rejected", async () => {
    const { jobManager: jm } = await deployJobManager(chain);
    await mined(jm.setCoprocessorOperator(chain.stranger.address));
    assert.equal(await jm.getCoprocessorOperator(), chain.stranger.address);

    await expectRevert(
      jm.connect(chain.stranger).setCoprocessorOperator(chain.stranger.address),
      "OwnableUnauthorizedAccount",
    );
    await expectRevert(
      jm.setCoprocessorOperator(ZeroAddress),
      "JobManager.setCoprocessorOperator: coprocessor operator is the zero address",
    );
  });
});

describe("createJob", () => {
  it("stores the job as pending, bumps the consumer's nonce and emits JobCreated", async () => {
    const consumer = await mockConsumer();
    const consumerAddress = await consumer.getAddress();
    assert.equal(await consumer.getNextNonce(), 1n);

    const input = abi.encode(["uint256"], [49]);
    const receipt = await mined(consumer.request(PROGRAM_ID, input, MAX_CYCLES));

    const jobID = jobId(1, consumerAddress);
    const [created] = events(receipt, jobManager, "JobCreated");
    assert.equal(created.args.jobID, jobID);
    assert.equal(created.args.nonce, 1n);
    assert.equal(created.args.consumer, consumerAddress);
    assert.equal(created.args.maxCycles, MAX_CYCLES);
    assert.equal(created.args.programID, PROGRAM_ID);
    assert.equal(created.args.onchainInput, input);

    const job = await jobManager.getJobMetadata(jobID);
    assert.deepEqual([job.programID, job.maxCycles, job.consumer, job.status], [PROGRAM_ID, MAX_CYCLES, consumerAddress, PENDING]);
    // The public mapping getter returns the same fields.
    assert.deepEqual([...(await jobManager.jobIDToMetadata(jobID))], [PROGRAM_ID, MAX_CYCLES, consumerAddress, PENDING]);

    assert.equal(await consumer.maxNonce(), 1n);
    assert.equal(await consumer.getNextNonce(), 2n);
    assert.equal(await consumer.getOnchainInputForJob(jobID), input);
  });

  it("reverts when the consumer reuses a nonce", async () => {
    const consumer = await mockConsumer();
    await mined(consumer.requestWithNonce(7, PROGRAM_ID, "0x01", MAX_CYCLES));
    await expectRevert(
      consumer.requestWithNonce(7, PROGRAM_ID, "0x02", MAX_CYCLES),
      "JobManager.createJob: job already exists with this nonce and consumer",
    );
  });

  it("cannot be called by an account without consumer code (updateLatestNonce is called back)", async () => {
    await assert.rejects(jobManager.connect(chain.stranger).createJob(1, PROGRAM_ID, "0x", MAX_CYCLES));
  });
});

describe("cancelJob", () => {
  it("the job's consumer can cancel it", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const receipt = await mined(consumer.cancel(job.jobID));
    assert.equal(events(receipt, jobManager, "JobCancelled")[0].args.jobID, job.jobID);
    assert.equal((await jobManager.getJobMetadata(job.jobID)).status, CANCELLED);
  });

  it("the JobManager owner can cancel any job", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    await mined(jobManager.connect(chain.owner).cancelJob(job.jobID));
    assert.equal((await jobManager.getJobMetadata(job.jobID)).status, CANCELLED);
  });

  it("nobody else can", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    await expectRevert(
      jobManager.connect(chain.stranger).cancelJob(job.jobID),
      "JobManager.cancelJob: caller is not the job consumer or JobManager owner",
    );
  });

  it("only a pending job can be cancelled", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    await mined(consumer.cancel(job.jobID));
    await expectRevert(consumer.cancel(job.jobID), "JobManager.cancelJob: job is not in pending state");

    const done = await requestJob(consumer);
    const { encoded, signature } = await resultFor(done);
    await mined(jobManager.connect(chain.relayer).submitResult(encoded, signature));
    await expectRevert(consumer.cancel(done.jobID), "JobManager.cancelJob: job is not in pending state");
  });
});

describe("submitResult", () => {
  it("delivers a signed result: JobCompleted, status completed, consumer gets the result", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job, "0x1234");
    // The encoding is one dynamic tuple: it starts with the 0x20 offset word.
    assert.equal(encoded.slice(0, 66), "0x" + "20".padStart(64, "0"));
    assert.equal(getBytes(signature).length, 65);

    const receipt = await mined(jobManager.connect(chain.relayer).submitResult(encoded, signature));
    const [completed] = events(receipt, jobManager, "JobCompleted");
    assert.equal(completed.args.jobID, job.jobID);
    assert.equal(completed.args.result, "0x1234");
    assert.equal(events(receipt, consumer, "MockResultReceived")[0].args.result, "0x1234");
    assert.equal((await jobManager.getJobMetadata(job.jobID)).status, COMPLETED);
    assert.equal(await consumer.getResult(job.jobID), "0x1234");
  });

  it("only the relayer may submit", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job);
    await expectRevert(
      jobManager.connect(chain.stranger).submitResult(encoded, signature),
      "JobManager.submitResult: caller is not the relayer",
    );
  });

  it("rejects a result not signed by the coprocessor operator", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded } = await resultFor(job);
    const forged = await sign(chain.stranger, encoded);
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(encoded, forged),
      "JobManager.submitResult: Invalid signature",
    );
    // Signing the keccak of the bytes (or anything but EIP-191 over the raw bytes) is also wrong.
    const wrongScheme = await chain.operator.signMessage(getBytes(keccak256(encoded)));
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(encoded, wrongScheme),
      "JobManager.submitResult: Invalid signature",
    );
  });

  it("rejects malformed signatures without reverting inside ECDSA", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job);
    const bytes = getBytes(signature);
    // The compact form with its parity bit (the top bit of vs) flipped.
    const compact = getBytes(Signature.from(signature).compactSerialized);
    compact[32] ^= 0x80;
    const cases = {
      empty: "0x",
      "63 bytes": hexlify(bytes.slice(0, 63)),
      "64 bytes, the wrong parity bit": hexlify(compact),
      "66 bytes": signature + "00",
      "v = 0/1": hexlify(Uint8Array.from([...bytes.slice(0, 64), bytes[64] - 27])),
      "high s (malleable)": highS(signature),
      "r = 0": "0x" + "00".repeat(32) + signature.slice(66),
    };
    for (const [what, sig] of Object.entries(cases)) {
      await expectRevert(
        jobManager.connect(chain.relayer).submitResult(encoded, sig),
        "JobManager.submitResult: Invalid signature",
        what,
      );
    }
    // The well-formed one still works afterwards.
    await mined(jobManager.connect(chain.relayer).submitResult(encoded, signature));
  });

  it("accepts the operator's 64-byte EIP-2098 compact signature, as InfinityVM's JobManager does", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job, "0xabcd");
    const compact = Signature.from(signature).compactSerialized;
    assert.equal(getBytes(compact).length, 64);
    const receipt = await mined(jobManager.connect(chain.relayer).submitResult(encoded, compact));
    const [completed] = events(receipt, jobManager, "JobCompleted");
    assert.equal(completed.args.jobID, job.jobID);
    assert.equal(await consumer.getResult(job.jobID), "0xabcd");
    // A compact signature by anyone else is refused like a long one.
    const other = await resultFor(await requestJob(consumer));
    const forged = Signature.from(await sign(chain.stranger, other.encoded)).compactSerialized;
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(other.encoded, forged),
      "JobManager.submitResult: Invalid signature",
    );
  });

  it("rejects a result for a job that is not pending (completed, cancelled or unknown)", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job);
    await mined(jobManager.connect(chain.relayer).submitResult(encoded, signature));
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(encoded, signature),
      "JobManager.submitResult: job is not in pending state",
    );

    const cancelled = await requestJob(consumer);
    await mined(consumer.cancel(cancelled.jobID));
    const r = await resultFor(cancelled);
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(r.encoded, r.signature),
      "JobManager.submitResult: job is not in pending state",
    );

    const unknown = await resultFor({ ...job, jobID: jobId(99, await consumer.getAddress()) });
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(unknown.encoded, unknown.signature),
      "JobManager.submitResult: job is not in pending state",
    );
  });

  it("rejects a result computed on another onchain input", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job, "0x", { onchainInputHash: keccak256("0x01") });
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(encoded, signature),
      "JobManager.submitResult: onchain input signed by coprocessor doesn't match onchain input submitted with job",
    );
  });

  it("rejects a result of another program", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job, "0x", { programID: "0x" + "cd".repeat(32) });
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(encoded, signature),
      "JobManager.submitResult: program ID signed by coprocessor doesn't match program ID submitted with job",
    );
  });

  it("rejects a result run with another cycle limit", async () => {
    const consumer = await mockConsumer();
    const job = await requestJob(consumer);
    const { encoded, signature } = await resultFor(job, "0x", { maxCycles: MAX_CYCLES + 1n });
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(encoded, signature),
      "JobManager.submitResult: max cycles signed by coprocessor doesn't match max cycles submitted with job",
    );
  });

  it("a consumer cannot re-enter submitResult from receiveResult", async () => {
    const jobManagerAddress = await jobManager.getAddress();
    const consumer = await deploy("ReentrantConsumer", chain.owner, jobManagerAddress, chain.appSigner.address);
    const request = async () => {
      const input = "0x0a";
      const receipt = await mined(consumer.request(PROGRAM_ID, input, MAX_CYCLES));
      return { jobID: events(receipt, jobManager, "JobCreated")[0].args.jobID, input, programID: PROGRAM_ID, maxCycles: MAX_CYCLES };
    };
    const first = await resultFor(await request());
    const secondJob = await request();
    const second = await resultFor(secondJob);

    // While the first result is delivered, the consumer submits the second.
    await mined(consumer.setReentryCall(jobManager.interface.encodeFunctionData("submitResult", [second.encoded, second.signature])));
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(first.encoded, first.signature),
      "ReentrancyGuardReentrantCall",
    );
    assert.equal(await consumer.resultsReceived(), 0n);

    // Without the re-entry both settle normally.
    await mined(consumer.setReentryCall("0x"));
    await mined(jobManager.connect(chain.relayer).submitResult(first.encoded, first.signature));
    await mined(jobManager.connect(chain.relayer).submitResult(second.encoded, second.signature));
    assert.equal(await consumer.resultsReceived(), 2n);
    assert.equal((await jobManager.getJobMetadata(secondJob.jobID)).status, COMPLETED);
  });

  it("a revert in the consumer reverts the submission and leaves the job pending", async () => {
    // ReentrantConsumer bubbles up whatever its call into the JobManager returns;
    // here a cancelJob of an unknown job.
    const consumer = await deploy("ReentrantConsumer", chain.owner, await jobManager.getAddress(), chain.appSigner.address);
    const receipt = await mined(consumer.request(PROGRAM_ID, "0x", MAX_CYCLES));
    const jobID = events(receipt, jobManager, "JobCreated")[0].args.jobID;
    await mined(consumer.setReentryCall(jobManager.interface.encodeFunctionData("cancelJob", [jobId(999, chain.stranger.address)])));
    const { encoded, signature } = await resultFor({ jobID, input: "0x", programID: PROGRAM_ID, maxCycles: MAX_CYCLES });
    await expectRevert(
      jobManager.connect(chain.relayer).submitResult(encoded, signature),
      "JobManager.cancelJob: caller is not the job consumer or JobManager owner",
    );
    assert.equal((await jobManager.getJobMetadata(jobID)).status, PENDING);
  });
});

describe("Consumer callbacks", () => {
  it("only the JobManager may call updateLatestNonce, setInputsForJob and receiveResult", async () => {
    const consumer = await mockConsumer();
    const stranger = consumer.connect(chain.stranger);
    const message = "Consumer.onlyJobManager: caller is not the job manager";
    await expectRevert(stranger.updateLatestNonce(5), message);
    await expectRevert(stranger.setInputsForJob(keccak256("0x"), "0x", keccak256("0x")), message);
    await expectRevert(stranger.receiveResult(keccak256("0x"), "0x"), message);
    assert.equal(await consumer.getJobManager(), await jobManager.getAddress());
  });

  it("an already constructed consumer cannot be re-initialized", async () => {
    const consumer = await mockConsumer();
    await expectRevert(
      consumer["initialize(address,address,uint64)"](chain.stranger.address, chain.stranger.address, 0),
      "NotInitializing",
    );
  });
});
