// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The example consumers: SquareRootConsumer (a plain Consumer) and
// ClobConsumer (a StatefulConsumer), end to end with results signed the way
// the engine signs them.

"use strict";

const { describe, it, before } = require("node:test");
const assert = require("node:assert/strict");
const { keccak256 } = require("ethers");

const { abi, deploy, mined, events, expectRevert, signedResult, offchainJob, useJobManager } =
  require("./helpers/coproc");

const SQRT_PROGRAM = "0x" + "51".repeat(32);
const CLOB_PROGRAM = "0x" + "c1".repeat(32);
const MAX_CYCLES = 10_000_000n;
// The empty order book's state is 8 zero bytes.
const EMPTY_BOOK_ROOT = keccak256("0x0000000000000000");

const STATEFUL_INPUT = "tuple(bytes32 inputStateRoot, bytes onchainInput)";
const STATEFUL_RESULT = "tuple(bytes32 outputStateRoot, bytes result)";

let chain;
let jobManager;

useJobManager((stack) => ({ chain, jobManager } = stack));

// The relayer delivers the operator-signed `output` for an onchain job.
async function settleOnchain(created, output) {
  const { encoded, signature } = await signedResult(chain.operator, {
    jobID: created.args.jobID,
    onchainInputHash: keccak256(created.args.onchainInput),
    maxCycles: created.args.maxCycles,
    programID: created.args.programID,
    result: output,
  });
  return mined(jobManager.connect(chain.relayer).submitResult(encoded, signature));
}

describe("SquareRootConsumer", () => {
  let app;
  before(async () => {
    app = await deploy(
      "SquareRootConsumer",
      chain.owner,
      await jobManager.getAddress(),
      chain.appSigner.address,
      SQRT_PROGRAM,
      MAX_CYCLES,
    );
  });

  it("is configured by its constructor; the deployer owns it", async () => {
    assert.equal(await app.owner(), chain.owner.address);
    assert.equal(await app.getJobManager(), await jobManager.getAddress());
    assert.equal(await app.getOffchainSigner(), chain.appSigner.address);
    assert.equal(await app.getProgramID(), SQRT_PROGRAM);
    assert.equal(await app.getMaxCycles(), MAX_CYCLES);
    assert.equal(await app.getNextNonce(), 1n);
  });

  it("requestSquareRoot(n) creates a job with input abi.encode(n); the result is stored", async () => {
    const receipt = await mined(app.connect(chain.stranger).requestSquareRoot(1_000_000));
    const [created] = events(receipt, jobManager, "JobCreated");
    assert.equal(created.args.onchainInput, abi.encode(["uint256"], [1_000_000]));
    assert.equal(created.args.programID, SQRT_PROGRAM);
    assert.equal(created.args.maxCycles, MAX_CYCLES);
    assert.deepEqual([...(await app.getSquareRoot(1_000_000))], [false, 0n]);

    // The guest outputs abi.encode(n, floor(sqrt(n))).
    const settled = await settleOnchain(created, abi.encode(["uint256", "uint256"], [1_000_000, 1_000]));
    const [received] = events(settled, app, "SquareRootReceived");
    assert.deepEqual([received.args.jobID, received.args.n, received.args.root], [created.args.jobID, 1_000_000n, 1_000n]);
    assert.deepEqual([...(await app.getSquareRoot(1_000_000))], [true, 1_000n]);
  });

  it("requestWithInput takes the raw onchain input", async () => {
    const input = abi.encode(["uint256"], [17]);
    const [created] = events(await mined(app.requestWithInput(input)), jobManager, "JobCreated");
    assert.equal(created.args.onchainInput, input);
    await settleOnchain(created, abi.encode(["uint256", "uint256"], [17, 4]));
    assert.deepEqual([...(await app.getSquareRoot(17))], [true, 4n]);
  });

  it("settles offchain requests signed by its offchain signer", async () => {
    const j = await offchainJob({
      consumer: await app.getAddress(),
      nonce: await app.getNextNonce(),
      programID: SQRT_PROGRAM,
      onchainInput: abi.encode(["uint256"], [81]),
      maxCycles: MAX_CYCLES,
      result: abi.encode(["uint256", "uint256"], [81, 9]),
      appSigner: chain.appSigner,
      operator: chain.operator,
    });
    await mined(jobManager.connect(chain.relayer).submitResultForOffchainJob(...j.args));
    assert.deepEqual([...(await app.getSquareRoot(81))], [true, 9n]);
  });

  it("only the owner may cancel or change the signer", async () => {
    const [created] = events(await mined(app.requestSquareRoot(2)), jobManager, "JobCreated");
    await expectRevert(app.connect(chain.stranger).cancel(created.args.jobID), "OwnableUnauthorizedAccount");
    await expectRevert(app.connect(chain.stranger).setOffchainSigner(chain.stranger.address), "OwnableUnauthorizedAccount");
    const receipt = await mined(app.cancel(created.args.jobID));
    assert.equal(events(receipt, jobManager, "JobCancelled")[0].args.jobID, created.args.jobID);
  });

  it("cannot be initialized again", async () => {
    await expectRevert(app["initialize(address)"](chain.stranger.address), "NotInitializing");
  });
});

describe("ClobConsumer (StatefulConsumer)", () => {
  let app;
  before(async () => {
    app = await deploy(
      "ClobConsumer",
      chain.owner,
      await jobManager.getAddress(),
      chain.appSigner.address,
      CLOB_PROGRAM,
      MAX_CYCLES,
      EMPTY_BOOK_ROOT,
    );
  });

  // Onchain input of a batch: abi.encode(StatefulAppOnchainInput{root, batch}).
  const batchInput = (root, batch) => abi.encode([STATEFUL_INPUT], [[root, batch]]);
  // Guest output: abi.encode(StatefulAppResult{newRoot, fills}).
  const batchOutput = (root, fills) => abi.encode([STATEFUL_RESULT], [[root, fills]]);

  it("starts from the empty book's root", async () => {
    assert.equal(await app.getLatestStateRoot(), EMPTY_BOOK_ROOT);
    assert.equal(await app.latestStateRoot(), EMPTY_BOOK_ROOT);
    assert.equal(await app.batchCount(), 0n);
    assert.equal(await app.owner(), chain.owner.address);
    assert.equal(await app.getProgramID(), CLOB_PROGRAM);
    assert.equal(await app.getMaxCycles(), MAX_CYCLES);
  });

  it("a batch that starts from the latest root settles and advances the root", async () => {
    const root1 = keccak256("0x01");
    const [created] = events(await mined(app.requestWithInput(batchInput(EMPTY_BOOK_ROOT, "0xaa"))), jobManager, "JobCreated");
    const receipt = await settleOnchain(created, batchOutput(root1, "0xf111"));

    const [settled] = events(receipt, app, "BatchSettled");
    assert.deepEqual([settled.args.jobID, settled.args.stateRoot, settled.args.fills], [created.args.jobID, root1, "0xf111"]);
    assert.equal(await app.getLatestStateRoot(), root1);
    assert.equal(await app.batchCount(), 1n);
    assert.equal(await app.latestFills(), "0xf111");
  });

  it("a batch that starts from a stale root is rejected", async () => {
    const stale = await app.getLatestStateRoot();
    // Two batches computed on the same root: only the first can settle.
    const [a] = events(await mined(app.requestWithInput(batchInput(stale, "0x01"))), jobManager, "JobCreated");
    const [b] = events(await mined(app.requestWithInput(batchInput(stale, "0x02"))), jobManager, "JobCreated");
    await settleOnchain(a, batchOutput(keccak256("0x02"), "0x"));
    await expectRevert(settleOnchain(b, batchOutput(keccak256("0x03"), "0x")), "Invalid state root passed as input");
    assert.equal(await app.getLatestStateRoot(), keccak256("0x02"));
  });

  it("offchain batches settle in order, each on the previous root", async () => {
    let root = await app.getLatestStateRoot();
    const count = await app.batchCount();
    for (let i = 0; i < 3; i++) {
      const next = keccak256(abi.encode(["uint256"], [100 + i]));
      const j = await offchainJob({
        consumer: await app.getAddress(),
        nonce: await app.getNextNonce(),
        programID: CLOB_PROGRAM,
        onchainInput: batchInput(root, "0x"),
        offchainInput: "0x" + "0b".repeat(40), // the orders
        maxCycles: MAX_CYCLES,
        result: batchOutput(next, abi.encode(["uint256"], [i])),
        appSigner: chain.appSigner,
        operator: chain.operator,
      });
      await mined(jobManager.connect(chain.relayer).submitResultForOffchainJob(...j.args));
      root = next;
    }
    assert.equal(await app.getLatestStateRoot(), root);
    assert.equal(await app.batchCount(), count + 3n);
    assert.equal(await app.latestFills(), abi.encode(["uint256"], [2]));

    // Replaying an old batch (new nonce, stale root) fails.
    const replay = await offchainJob({
      consumer: await app.getAddress(),
      nonce: await app.getNextNonce(),
      programID: CLOB_PROGRAM,
      onchainInput: batchInput(EMPTY_BOOK_ROOT, "0x"),
      maxCycles: MAX_CYCLES,
      result: batchOutput(keccak256("0x"), "0x"),
      appSigner: chain.appSigner,
      operator: chain.operator,
    });
    await expectRevert(
      jobManager.connect(chain.relayer).submitResultForOffchainJob(...replay.args),
      "Invalid state root passed as input",
    );
  });
});
