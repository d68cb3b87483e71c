// {Pascal}Consumer against a real local node (hardhat, started by the
// test): jobs requested onchain and offchain, results signed the way the
// coprocessor's operator signs them, and the program ID checked against the
// built guest.
//
//   npm test          (make test runs it after building the guest)

"use strict";

const { describe, it, before } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { keccak256 } = require("ethers");

const { abi, deploy, mined, events, expectRevert, signedResult, offchainJob, useJobManager } =
  require("./helpers/coproc");

// The guest this consumer runs, as `make guest` builds it.
const ELF = path.join(__dirname, "..", "..", "elf", "{name}.elf");
const OUTPUT = ["uint64", "uint256"];

let chain;
let jobManager;

useJobManager((stack) => ({ chain, jobManager } = stack));

describe("{Pascal}Consumer", () => {
  let app;
  before(async () => {
    app = await deploy("{Pascal}Consumer", chain.owner, await jobManager.getAddress(), chain.appSigner.address);
  });

  it("requests jobs of the guest it was built with", async () => {
    const receipt = await mined(app.connect(chain.stranger).requestSumOfSquares(3));
    const [created] = events(receipt, jobManager, "JobCreated");
    assert.equal(created.args.programID, keccak256(fs.readFileSync(ELF)));
    assert.equal(created.args.onchainInput, abi.encode(["uint64"], [3]));
    assert.equal(created.args.maxCycles, await app.MAX_CYCLES());
  });

  it("stores the result the operator signs for an onchain job", async () => {
    const receipt = await mined(app.requestSumOfSquares(1000));
    const [created] = events(receipt, jobManager, "JobCreated");
    assert.deepEqual([...(await app.getSum(1000))], [false, 0n]);

    const { encoded, signature } = await signedResult(chain.operator, {
      jobID: created.args.jobID,
      onchainInputHash: keccak256(created.args.onchainInput),
      maxCycles: created.args.maxCycles,
      programID: created.args.programID,
      result: abi.encode(OUTPUT, [1000, 333_833_500]),
    });
    const settled = await mined(jobManager.connect(chain.relayer).submitResult(encoded, signature));
    const [received] = events(settled, app, "SumReceived");
    assert.deepEqual([received.args.jobID, received.args.n, received.args.sum], [created.args.jobID, 1000n, 333_833_500n]);
    assert.deepEqual([...(await app.getSum(1000))], [true, 333_833_500n]);
  });

  it("takes offchain jobs signed by its offchain signer, and no one else's", async () => {
    const job = (appSigner, nonce) =>
      offchainJob({
        consumer: app.target,
        nonce,
        programID: keccak256(fs.readFileSync(ELF)),
        onchainInput: abi.encode(["uint64"], [24]),
        result: abi.encode(OUTPUT, [24, 4900]),
        maxCycles: 1_000_000,
        appSigner,
        operator: chain.operator,
      });
    const forged = await job(chain.stranger, 100);
    await expectRevert(
      jobManager.connect(chain.relayer).submitResultForOffchainJob(...forged.args),
      "JobManager.submitResultForOffchainJob: Invalid signature on job request",
    );
    const signed = await job(chain.appSigner, 100);
    await mined(jobManager.connect(chain.relayer).submitResultForOffchainJob(...signed.args));
    assert.deepEqual([...(await app.getSum(24))], [true, 4900n]);
  });

  it("takes results from the JobManager only", async () => {
    await expectRevert(
      app.receiveResult(keccak256("0x01"), abi.encode(OUTPUT, [1, 1])),
      "Consumer.onlyJobManager: caller is not the job manager",
    );
  });
});
