// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Offchain jobs: a client signs an OffchainJobRequest for a consumer, the
// engine executes it and signs the result, and anyone settles both with
// submitResultForOffchainJob. Also: consumer nonces and EIP-1271.

"use strict";

const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { Signature, keccak256, getBytes, hashMessage } = require("ethers");

const { abi, deploy, mined, events, expectRevert, jobId, offchainJob, sign, useJobManager } =
  require("./helpers/coproc");

const COMPLETED = 3n;
const PROGRAM_ID = "0x" + "ab".repeat(32);
const MAGIC = "0x1626ba7e";
const INVALID = "0xffffffff";

let chain;
let jobManager;

useJobManager((stack) => ({ chain, jobManager } = stack));

async function mockConsumer() {
  return deploy("MockConsumer", chain.owner, await jobManager.getAddress(), chain.appSigner.address);
}

// A signed offchain job for `consumer`; `extra` overrides any field.
async function job(consumer, nonce, extra = {}) {
  return offchainJob({
    consumer: await consumer.getAddress(),
    nonce,
    programID: PROGRAM_ID,
    onchainInput: "0x0102",
    offchainInput: "0x" + "77".repeat(100),
    maxCycles: 5_000_000,
    result: "0xbeef",
    appSigner: chain.appSigner,
    operator: chain.operator,
    ...extra,
  });
}

// Anyone may settle: the stranger pays the gas here.
const settle = (j) => jobManager.connect(chain.stranger).submitResultForOffchainJob(...j.args);

describe("submitResultForOffchainJob", () => {
  it("creates the job and delivers its result in one transaction, for any caller", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1);
    const receipt = await mined(settle(j));

    // No JobCreated: nothing is left to execute.
    assert.equal(events(receipt, jobManager, "JobCreated").length, 0);
    const [completed] = events(receipt, jobManager, "JobCompleted");
    assert.equal(completed.args.jobID, j.jobID);
    assert.equal(completed.args.result, "0xbeef");

    const meta = await jobManager.getJobMetadata(j.jobID);
    assert.deepEqual([meta.programID, meta.maxCycles, meta.consumer, meta.status], [PROGRAM_ID, 5_000_000n, await consumer.getAddress(), COMPLETED]);
    assert.equal(await consumer.getResult(j.jobID), "0xbeef");
    assert.equal(await consumer.getOnchainInputForJob(j.jobID), "0x0102");
    assert.equal(await consumer.getOffchainInputHashForJob(j.jobID), keccak256("0x" + "77".repeat(100)));
    assert.equal(await consumer.getNextNonce(), 2n);
  });

  it("accepts an empty offchain input (its hash is keccak256 of nothing)", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1, { offchainInput: "0x" });
    await mined(settle(j));
    assert.equal(
      await consumer.getOffchainInputHashForJob(j.jobID),
      "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
    );
  });

  it("rejects a request the consumer's signer did not sign (EIP-1271 fails)", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1);
    j.requestSignature = await sign(chain.stranger, j.request);
    await expectRevert(settle(j), "JobManager.submitResultForOffchainJob: Invalid signature on job request");
  });

  it("rejects a request signed over anything but the EIP-191 digest of its ABI bytes", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1);
    j.requestSignature = chain.appSigner.signingKey.sign(keccak256(j.request)).serialized; // no EIP-191 prefix
    await expectRevert(settle(j), "JobManager.submitResultForOffchainJob: Invalid signature on job request");
  });

  it("rejects a request for a consumer that has no code", async () => {
    const j = await offchainJob({
      consumer: chain.stranger.address,
      nonce: 1,
      programID: PROGRAM_ID,
      appSigner: chain.stranger,
      operator: chain.operator,
    });
    await expectRevert(settle(j), "JobManager.submitResultForOffchainJob: Invalid signature on job request");
  });

  it("accepts the operator's result signature in its 64-byte EIP-2098 compact form", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1);
    j.resultSignature = Signature.from(j.resultSignature).compactSerialized;
    const receipt = await mined(settle(j));
    assert.equal(events(receipt, jobManager, "JobCompleted").length, 1);
    assert.equal(await consumer.getResult(j.jobID), "0xbeef");
  });

  it("rejects a result the operator did not sign", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1);
    j.resultSignature = await sign(chain.stranger, j.result);
    await expectRevert(settle(j), "JobManager.submitResultForOffchainJob: Invalid signature on result");
    j.resultSignature = "0x" + "00".repeat(65);
    await expectRevert(settle(j), "JobManager.submitResultForOffchainJob: Invalid signature on result");
  });

  it("rejects a result for another job ID", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1, { overrides: { jobID: jobId(2, await consumer.getAddress()) } });
    await expectRevert(
      settle(j),
      "JobManager.submitResultForOffchainJob: job ID signed by coprocessor doesn't match job ID of job request",
    );
  });

  it("rejects a result computed on another offchain input", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1, { overrides: { offchainInputHash: keccak256("0x00") } });
    await expectRevert(
      settle(j),
      "JobManager.submitResultForOffchainJob: offchain input hash signed by coprocessor doesn't match offchain input hash of job request",
    );
  });

  it("runs the onchain job checks too (input, program, cycles)", async () => {
    const consumer = await mockConsumer();
    const cases = [
      [{ onchainInputHash: keccak256("0x") }, "JobManager.submitResult: onchain input signed by coprocessor doesn't match onchain input submitted with job"],
      [{ programID: "0x01" }, "JobManager.submitResult: program ID signed by coprocessor doesn't match program ID submitted with job"],
      [{ maxCycles: 1 }, "JobManager.submitResult: max cycles signed by coprocessor doesn't match max cycles submitted with job"],
    ];
    for (const [overrides, reason] of cases) {
      await expectRevert(settle(await job(consumer, 1, { overrides })), reason);
    }
  });

  it("rejects a replayed request (the nonce is already used)", async () => {
    const consumer = await mockConsumer();
    const j = await job(consumer, 1);
    await mined(settle(j));
    await expectRevert(settle(j), "JobManager.createJob: job already exists with this nonce and consumer");

    // A nonce taken by an onchain job cannot be used offchain either.
    await mined(consumer.requestWithNonce(2, PROGRAM_ID, "0x", 1));
    await expectRevert(settle(await job(consumer, 2)), "JobManager.createJob: job already exists with this nonce and consumer");
  });

  it("checks blob hashes against the transaction's blobs", async () => {
    const consumer = await mockConsumer();
    // This transaction carries no blobs, so blobhash(0) is zero.
    const j = await job(consumer, 1, { overrides: { versionedBlobHashes: ["0x01" + "11".repeat(31)] } });
    await expectRevert(settle(j), "JobManager.submitResultForOffchainJob: given blob hash does not match");
    await assert.rejects(jobManager.jobIDToBlobhashes(j.jobID, 0)); // nothing stored
  });

  it("cannot be re-entered from the consumer", async () => {
    const consumer = await deploy("ReentrantConsumer", chain.owner, await jobManager.getAddress(), chain.appSigner.address);
    const first = await job(consumer, 1);
    const second = await job(consumer, 2);
    await mined(
      consumer.setReentryCall(jobManager.interface.encodeFunctionData("submitResultForOffchainJob", second.args)),
    );
    await expectRevert(settle(first), "ReentrancyGuardReentrantCall");

    await mined(consumer.setReentryCall("0x"));
    await mined(settle(first));
    await mined(settle(second));
    assert.equal(await consumer.resultsReceived(), 2n);
  });
});

describe("consumer nonces", () => {
  it("start at 1 and follow the highest nonce used; gaps are fine, reuse is not", async () => {
    const consumer = await mockConsumer();
    assert.equal(await consumer.maxNonce(), 0n);
    assert.equal(await consumer.getNextNonce(), 1n);

    await mined(settle(await job(consumer, 10)));
    assert.equal(await consumer.getNextNonce(), 11n);

    // An older, unused nonce still settles but does not move the counter back.
    await mined(settle(await job(consumer, 5)));
    assert.equal(await consumer.maxNonce(), 10n);
    assert.equal(await consumer.getNextNonce(), 11n);

    // Onchain requests take getNextNonce().
    const receipt = await mined(consumer.request(PROGRAM_ID, "0x", 1));
    assert.equal(events(receipt, jobManager, "JobCreated")[0].args.nonce, 11n);
    assert.equal(await consumer.getNextNonce(), 12n);
  });
});

describe("SingleOffchainSigner (EIP-1271)", () => {
  it("accepts the signer's signature over the given digest, and nothing else", async () => {
    const consumer = await mockConsumer();
    const request = abi.encode(["uint256"], [1]);
    // The JobManager passes the EIP-191 digest; the signer signed the raw bytes with personal_sign.
    const digest = hashMessage(getBytes(request));
    const good = await sign(chain.appSigner, request);
    assert.equal(await consumer.isValidSignature(digest, good), MAGIC);
    assert.equal(await consumer.isValidSignature(digest, await sign(chain.stranger, request)), INVALID);
    assert.equal(await consumer.isValidSignature(keccak256(request), good), INVALID);
    assert.equal(await consumer.isValidSignature(digest, "0x1234"), INVALID);
    assert.equal(await consumer.getOffchainSigner(), chain.appSigner.address);
  });

  it("the owner can rotate the signer; requests signed by the old key then fail", async () => {
    const consumer = await mockConsumer();
    await mined(consumer.setOffchainSigner(chain.stranger.address));
    assert.equal(await consumer.getOffchainSigner(), chain.stranger.address);
    await expectRevert(settle(await job(consumer, 1)), "JobManager.submitResultForOffchainJob: Invalid signature on job request");
    await mined(settle(await job(consumer, 1, { appSigner: chain.stranger })));

    await expectRevert(consumer.connect(chain.stranger).setOffchainSigner(chain.stranger.address), "OwnableUnauthorizedAccount");
  });
});
