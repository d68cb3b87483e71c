// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Batch settlement (IBatchSettlement, our addition to InfinityVM's ABI):
// submitResults settles many results, onchain and offchain, in one
// transaction, each item isolated from the others: a failing item is rolled
// back alone and reported with ResultSkipped(jobID, reason). Also: several
// relayers (setRelayerAuthorized / isRelayer), getJobStatuses, and the
// admission checks of many offchain requests in one call
// (checkOffchainRequests).

"use strict";

const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { ZeroAddress, ZeroHash, getBytes, hashMessage, id, keccak256, toBeHex, zeroPadValue } = require("ethers");

const {
  abi,
  deploy,
  mined,
  events,
  expectRevert,
  signedResult,
  offchainJob,
  sign,
  onchainItem,
  offchainItem,
  batchGasLimit,
  batchOutcome,
  useJobManager,
} = require("./helpers/coproc");
const { rpc } = require("./helpers/node");

const NONE = 0n;
const PENDING = 1n;
const CANCELLED = 2n;
const COMPLETED = 3n;

const PROGRAM_ID = "0x" + "ab".repeat(32);
const MAX_CYCLES = 1_000_000n;
const GAS_PER_ITEM = 500_000n;

// The reasons submitResults reports itself...
const BATCH_OUT_OF_GAS = "JobManager.submitResults: batch out of gas";
const ITEM_OUT_OF_GAS = "JobManager.submitResults: item ran out of gas";
const NO_REASON = "JobManager.submitResults: item reverted without a reason";
const CUSTOM_ERROR = "JobManager.submitResults: item reverted with custom error ";
const REENTRANT_CALL = CUSTOM_ERROR + id("ReentrancyGuardReentrantCall()").slice(0, 10);
// ...and some of the single functions' revert strings, which items report as is.
const NOT_RELAYER = "JobManager.submitResult: caller is not the relayer";
const NOT_PENDING = "JobManager.submitResult: job is not in pending state";
const BAD_SIGNATURE = "JobManager.submitResult: Invalid signature";
const BAD_REQUEST_SIGNATURE = "JobManager.submitResultForOffchainJob: Invalid signature on job request";
const NONCE_USED = "JobManager.createJob: job already exists with this nonce and consumer";
const REJECTED = "RevertingConsumer: result rejected";

// RevertingConsumer.Failure
const Failure = { Reason: 0, LongReason: 1, Panic: 2, CustomError: 3 };

let node;
let chain;
let jobManager;

useJobManager((stack) => ({ node, chain, jobManager } = stack));

// A MockConsumer, or one of its misbehaving variants.
async function consumer(name = "MockConsumer") {
  return deploy(name, chain.owner, await jobManager.getAddress(), chain.appSigner.address);
}

// Requests an onchain job through `app` (any consumer with request()) and
// returns its ID, the operator's signed result and its ResultItem.
async function onchainJob(app, { input = "0x0a", result = "0xc0ffee", signer = chain.operator } = {}) {
  const [created] = events(await mined(app.request(PROGRAM_ID, input, MAX_CYCLES)), jobManager, "JobCreated");
  const signed = await signedResult(signer, {
    jobID: created.args.jobID,
    onchainInputHash: keccak256(input),
    maxCycles: MAX_CYCLES,
    programID: PROGRAM_ID,
    result,
  });
  return { jobID: created.args.jobID, signed, item: onchainItem(signed) };
}

// A signed offchain job for `app` with `nonce`, and its ResultItem.
async function offchain(app, nonce, extra = {}) {
  const job = await offchainJob({
    consumer: await app.getAddress(),
    nonce,
    programID: PROGRAM_ID,
    onchainInput: "0x0b",
    offchainInput: "0x" + "77".repeat(64),
    maxCycles: MAX_CYCLES,
    result: "0xbeef",
    appSigner: chain.appSigner,
    operator: chain.operator,
    ...extra,
  });
  return { jobID: job.jobID, job, item: offchainItem(job) };
}

// Sends submitResults (from the relayer unless `from` says otherwise) with a
// gas limit under which every item runs. Checks `settled` against what
// staticCall returns first, and returns the receipt and what happened to
// each item (batchOutcome).
async function submit(items, { from = chain.relayer, gasPerItem = GAS_PER_ITEM, gasLimit, settled } = {}) {
  const jm = jobManager.connect(from);
  gasLimit ??= batchGasLimit(items, gasPerItem);
  const returned = await jm.submitResults.staticCall(items, gasPerItem, { gasLimit });
  if (settled !== undefined) assert.equal(returned, BigInt(settled), "submitResults' return value");
  const receipt = await mined(jm.submitResults(items, gasPerItem, { gasLimit }));
  return { receipt, settled: returned, outcome: batchOutcome(receipt, jobManager) };
}

// 21000 + 16 gas per non-zero byte of calldata + 4 per zero byte.
const intrinsicGas = (data) => 21_000n + BigInt(getBytes(data).reduce((sum, byte) => sum + (byte === 0 ? 4 : 16), 0));

const completed = (job, result) => ({ jobID: job.jobID, completed: true, result });
const skipped = (job, reason) => ({ jobID: job.jobID ?? job, completed: false, reason });
const statuses = async (...jobs) => [...(await jobManager.getJobStatuses(jobs.map((j) => j.jobID)))];

describe("submitResults", () => {
  it("settles onchain and offchain results in one transaction, exactly as the single functions do", async () => {
    // The same four jobs for two consumers: one gets them in a batch, the
    // other through submitResult / submitResultForOffchainJob.
    const batched = await consumer();
    const single = await consumer();
    const jobsFor = async (app) => [
      await onchainJob(app, { input: "0x01", result: "0x1111" }),
      await offchain(app, 10, { result: "0x2222" }),
      await onchainJob(app, { input: "0x03", result: "0x3333" }),
      await offchain(app, 11, { result: "0x4444", offchainInput: "0x" }),
    ];
    const a = await jobsFor(batched);
    const b = await jobsFor(single);
    const results = ["0x1111", "0x2222", "0x3333", "0x4444"];

    // One transaction, any order of onchain and offchain items; items is
    // IBatchSettlement.ResultItem[]: [resultWithMetadata, signature, jobRequest, signatureOnRequest].
    const { receipt, outcome } = await submit(
      a.map((j) => j.item),
      { settled: 4 },
    );
    assert.deepEqual(outcome, a.map((j, i) => completed(j, results[i])));
    assert.equal(events(receipt, jobManager, "JobCreated").length, 0);

    const singleReceipts = [];
    for (const j of b) {
      const jm = jobManager.connect(chain.relayer);
      singleReceipts.push(
        await mined(j.job ? jm.submitResultForOffchainJob(...j.job.args) : jm.submitResult(j.signed.encoded, j.signed.signature)),
      );
    }

    // Both consumers got the same receiveResult calls, in the same order...
    const callbacks = (receipts, app) =>
      receipts.flatMap((r) => events(r, app, "MockResultReceived")).map((e) => [e.args.jobID, e.args.result]);
    assert.deepEqual(callbacks([receipt], batched), a.map((j, i) => [j.jobID, results[i]]));
    assert.deepEqual(callbacks(singleReceipts, single), b.map((j, i) => [j.jobID, results[i]]));

    // ...and hold the same state; the jobs are the same in the JobManager.
    for (let i = 0; i < 4; i++) {
      for (const getter of ["getResult", "getOnchainInputForJob", "getOffchainInputHashForJob"]) {
        assert.equal(await batched[getter](a[i].jobID), await single[getter](b[i].jobID), `${getter} of job ${i}`);
      }
      const [x, y] = [await jobManager.getJobMetadata(a[i].jobID), await jobManager.getJobMetadata(b[i].jobID)];
      assert.deepEqual([x.programID, x.maxCycles, x.status], [y.programID, y.maxCycles, y.status]);
      assert.equal(x.status, COMPLETED);
    }
    assert.equal(await batched.getNextNonce(), await single.getNextNonce());
  });

  it("isolates each failing item: it is skipped with its reason and rolled back, the others settle", async () => {
    const app = await consumer();
    const reverting = await consumer("RevertingConsumer"); // receiveResult reverts with REJECTED
    const burner = await consumer("GasBurnerConsumer"); // receiveResult never returns

    const good1 = await onchainJob(app, { result: "0x01" });
    const done = await onchainJob(app);
    await mined(jobManager.connect(chain.relayer).submitResult(done.signed.encoded, done.signed.signature));
    const cancelled = await onchainJob(app);
    await mined(app.cancel(cancelled.jobID));
    const forged = await onchainJob(app, { signer: chain.stranger });
    const good2 = await offchain(app, 100, { result: "0x02" });
    const badRequest = await offchain(app, 101);
    badRequest.item[3] = await sign(chain.stranger, badRequest.job.request);
    const replayed = await offchain(app, 102);
    await mined(jobManager.connect(chain.stranger).submitResultForOffchainJob(...replayed.job.args));
    const rejectedOnchain = await onchainJob(reverting);
    const rejectedOffchain = await offchain(reverting, 5);
    const burning = await onchainJob(burner);
    const good3 = await onchainJob(app, { result: "0x03" });

    const { outcome } = await submit(
      [good1, done, cancelled, forged, good2, badRequest, replayed, rejectedOnchain, rejectedOffchain, burning, good3].map((j) => j.item),
      { settled: 3 },
    );
    assert.deepEqual(outcome, [
      completed(good1, "0x01"),
      skipped(done, NOT_PENDING),
      skipped(cancelled, NOT_PENDING),
      skipped(forged, BAD_SIGNATURE),
      completed(good2, "0x02"),
      skipped(badRequest, BAD_REQUEST_SIGNATURE),
      skipped(replayed, NONCE_USED),
      skipped(rejectedOnchain, REJECTED),
      skipped(rejectedOffchain, REJECTED),
      skipped(burning, ITEM_OUT_OF_GAS),
      completed(good3, "0x03"),
    ]);

    // The skipped ones are as they were: a failed offchain item did not even
    // create its job, nor move its consumer's nonce.
    assert.deepEqual(
      await statuses(good1, done, cancelled, forged, good2, badRequest, replayed, rejectedOnchain, rejectedOffchain, burning, good3),
      [COMPLETED, COMPLETED, CANCELLED, PENDING, COMPLETED, NONE, COMPLETED, PENDING, NONE, PENDING, COMPLETED],
    );
    assert.equal(await reverting.getNextNonce(), 2n);
    assert.equal(await app.getResult(good3.jobID), "0x03");

    // A skipped job can still be settled later, e.g. with the operator's own signature.
    const signature = await sign(chain.operator, forged.signed.encoded);
    const retry = await submit([[forged.signed.encoded, signature, "0x", "0x"]], { settled: 1 });
    assert.deepEqual(retry.outcome, [completed(forged, "0xc0ffee")]);
  });

  it("reports a consumer's panic, custom error and long reasons (cut to 512 bytes, however long the revert)", async () => {
    const app = await consumer("RevertingConsumer");
    const cases = [
      [Failure.Panic, 0, "panic 0x01"],
      [Failure.CustomError, 0, CUSTOM_ERROR + id("ResultRejected(bytes32)").slice(0, 10)],
      // LongReason: n "x"s and a 3-byte "€". Cut to 512 bytes, before the
      // character the limit falls into.
      [Failure.LongReason, 100, "x".repeat(100) + "€"],
      [Failure.LongReason, 509, "x".repeat(509) + "€"],
      [Failure.LongReason, 510, "x".repeat(510)],
      [Failure.LongReason, 600, "x".repeat(512)],
      [Failure.LongReason, 20_000, "x".repeat(512)],
    ];
    for (const [failure, length, reason] of cases) {
      // The consumer burns its gas down to 30k before it reverts, so the item
      // uses about all of gasPerItem.
      await mined(app.setFailure(failure, length, 30_000));
      const job = await onchainJob(app);
      const { outcome, receipt } = await submit([job.item], { settled: 0 });
      assert.deepEqual(outcome, [skipped(job, reason)]);
      assert.deepEqual(await statuses(job), [PENDING]);

      // Whatever the item reverts with, the batch pays at most gasPerItem
      // and its reserve on top of the transaction's intrinsic gas: it copies
      // and logs at most 512 bytes of a 20 kB reason.
      const intrinsic = intrinsicGas((await chain.provider.getTransaction(receipt.hash)).data);
      assert.ok(receipt.gasUsed - intrinsic <= GAS_PER_ITEM + 30_000n, `gas used ${receipt.gasUsed}`);
    }
  });

  it("skips malformed items without reverting the batch; their job ID is read from bytes [32:64] or is zero", async () => {
    const app = await consumer();
    const good = await onchainJob(app);
    const offchainGood = await offchain(app, 50);
    const garbage = "0x" + "5a".repeat(100);
    const items = [
      ["0x", "0x", "0x", "0x"], // nothing at all: job ID 0, and no signature
      ["0x1234", await sign(chain.operator, "0x1234"), "0x", "0x"], // signed, but no ABI-encoded result
      [garbage, await sign(chain.operator, garbage), "0x", "0x"], // the same, long enough for a job ID
      [...offchainGood.item.slice(0, 2), "0x01", offchainGood.item[3]], // a request that is no ABI-encoded request
      good.item,
    ];
    const { outcome } = await submit(items, { settled: 1 });
    assert.deepEqual(outcome, [
      skipped(ZeroHash, BAD_SIGNATURE),
      skipped(ZeroHash, NO_REASON),
      skipped("0x" + "5a".repeat(32), NO_REASON),
      skipped(offchainGood, NO_REASON), // the job ID the operator signed
      completed(good, "0xc0ffee"),
    ]);
    assert.deepEqual(await statuses(offchainGood), [NONE]);
  });

  it("may be sent by anyone: offchain items settle, onchain items need a relayer", async () => {
    const app = await consumer();
    const onchain = await onchainJob(app);
    const off = await offchain(app, 20);
    const { outcome } = await submit([onchain.item, off.item], { from: chain.stranger, settled: 1 });
    assert.deepEqual(outcome, [skipped(onchain, NOT_RELAYER), completed(off, "0xbeef")]);
    assert.deepEqual(await statuses(onchain, off), [PENDING, COMPLETED]);

    // The relayer can then settle the onchain one.
    assert.deepEqual((await submit([onchain.item], { settled: 1 })).outcome, [completed(onchain, "0xc0ffee")]);
  });

  it("rejects gasPerItem 0; an empty batch does nothing and returns 0", async () => {
    const app = await consumer();
    const job = await onchainJob(app);
    await expectRevert(
      jobManager.connect(chain.relayer).submitResults([job.item], 0),
      "JobManager.submitResults: gasPerItem is zero",
    );
    const { outcome, receipt } = await submit([], { settled: 0 });
    assert.deepEqual(outcome, []);
    assert.equal(receipt.logs.length, 0);
  });

  it("settles the same item only once, onchain or offchain, also twice in one batch", async () => {
    const app = await consumer();
    const onchain = await onchainJob(app);
    const off = await offchain(app, 30);
    const { outcome } = await submit([onchain.item, off.item, onchain.item, off.item], { settled: 2 });
    assert.deepEqual(outcome, [
      completed(onchain, "0xc0ffee"),
      completed(off, "0xbeef"),
      skipped(onchain, NOT_PENDING),
      skipped(off, NONCE_USED),
    ]);
  });

  it("a consumer re-entering from its callback cannot settle anything (twice or at all)", async () => {
    const hostile = await consumer("ReentrantConsumer");
    const app = await consumer();
    let nonce = 40;
    // What the hostile consumer tries from its receiveResult, given the item
    // of an honest job that is in the same batch after the hostile one.
    const attempts = [
      ["submitResults", (target) => [[target.item], GAS_PER_ITEM], REENTRANT_CALL],
      ["submitResult", (target) => [target.signed.encoded, target.signed.signature], REENTRANT_CALL],
      ["settleBatchItem", (target) => [target.item, true], "JobManager.settleBatchItem: caller is not the JobManager"],
      ["submitResultForOffchainJob", null, REENTRANT_CALL],
    ];
    for (const [fn, argsFor, reason] of attempts) {
      const hostileJob = await onchainJob(hostile);
      const target = argsFor ? await onchainJob(app) : await offchain(app, nonce++);
      const args = argsFor ? argsFor(target) : target.job.args;
      await mined(hostile.setReentryCall(jobManager.interface.encodeFunctionData(fn, args)));

      const { outcome, receipt } = await submit([hostileJob.item, target.item], { settled: 1 });
      assert.deepEqual(outcome, [skipped(hostileJob, reason), completed(target, target.job ? "0xbeef" : "0xc0ffee")], fn);
      assert.equal(events(receipt, app, "MockResultReceived").length, 1, fn);
      assert.deepEqual(await statuses(hostileJob, target), [PENDING, COMPLETED], fn);
    }
    assert.equal(await hostile.resultsReceived(), 0n);

    // Without the re-entry the hostile consumer's job settles normally.
    await mined(hostile.setReentryCall("0x"));
    const job = await onchainJob(hostile);
    assert.deepEqual((await submit([job.item], { settled: 1 })).outcome, [completed(job, "0xc0ffee")]);
  });

  it("settleBatchItem is for the JobManager itself only", async () => {
    const app = await consumer();
    const job = await onchainJob(app);
    for (const caller of [chain.relayer, chain.owner, chain.stranger]) {
      await expectRevert(
        jobManager.connect(caller).settleBatchItem(job.item, true),
        "JobManager.settleBatchItem: caller is not the JobManager",
      );
    }
  });
});

describe("submitResults: the gas bound", () => {
  it("a gas limit too small for every item settles the first ones and skips the rest; the transaction succeeds", async () => {
    const app = await consumer();
    const jobs = [];
    for (let i = 0; i < 6; i++) jobs.push(await onchainJob(app));
    const items = jobs.map((j) => j.item);
    const gasPerItem = 100_000n;
    // Each item needs about gasPerItem * 64/63 + 30k when it starts (and
    // 5k for each one after it), although it uses far less: 300k on top of
    // the intrinsic gas is enough for the first few only.
    const jm = jobManager.connect(chain.relayer);
    const gasLimit = intrinsicGas(jm.interface.encodeFunctionData("submitResults", [items, gasPerItem])) + 300_000n;
    const settled = await jm.submitResults.staticCall(items, gasPerItem, { gasLimit });
    const receipt = await mined(jm.submitResults(items, gasPerItem, { gasLimit }));
    assert.equal(receipt.status, 1);

    const k = Number(settled);
    assert.ok(k >= 1 && k < jobs.length, `settled ${k}`);
    assert.deepEqual(
      batchOutcome(receipt, jobManager),
      jobs.map((j, i) => (i < k ? completed(j, "0xc0ffee") : skipped(j, BATCH_OUT_OF_GAS))),
    );
    assert.deepEqual(await statuses(...jobs), jobs.map((_, i) => (i < k ? COMPLETED : PENDING)));

    // The rest go in the next batch.
    const rest = await submit(items.slice(k), { gasPerItem, settled: jobs.length - k });
    assert.equal(rest.outcome.length, jobs.length - k);
  });

  it("eth_estimateGas is not a gas limit for a batch: it finds the cheapest run that does not revert, which skips items", async () => {
    const app = await consumer();
    const items = [];
    for (let i = 0; i < 3; i++) items.push((await onchainJob(app)).item);
    const jm = jobManager.connect(chain.relayer);
    const estimate = await jm.submitResults.estimateGas(items, GAS_PER_ITEM);
    const gasLimit = batchGasLimit(items, GAS_PER_ITEM);
    assert.ok(estimate < gasLimit);
    assert.ok((await jm.submitResults.staticCall(items, GAS_PER_ITEM, { gasLimit: estimate })) < 3n);
    assert.equal(await jm.submitResults.staticCall(items, GAS_PER_ITEM, { gasLimit }), 3n);
  });

  it("a gasPerItem no transaction can give skips every item (no overflow)", async () => {
    const app = await consumer();
    const job = await onchainJob(app);
    const { outcome } = await submit([job.item], { gasPerItem: 2n ** 255n, gasLimit: 1_000_000n, settled: 0 });
    assert.deepEqual(outcome, [skipped(job, BATCH_OUT_OF_GAS)]);
  });

  it("at the tightest gas limit for each item the batch still succeeds (the reserves suffice)", async () => {
    // The items that need the most of the reserves, last (where no later
    // item's reserve is left over): one that runs out of gas, one that uses
    // nearly all of its gas and then reverts with a 512-byte reason; before
    // them an 8 kB revert, a 2 kB result, malformed bytes and ordinary items.
    const app = await consumer();
    const bomb = await consumer("RevertingConsumer");
    await mined(bomb.setFailure(Failure.LongReason, 8_000, 0));
    const burner = await consumer("GasBurnerConsumer");
    const longReason = await consumer("RevertingConsumer");
    await mined(longReason.setFailure(Failure.LongReason, 600, 3_000));
    const gasPerItem = 200_000n;
    const items = [
      (await onchainJob(app)).item,
      (await onchainJob(bomb)).item,
      ["0x", "0x", "0x", "0x"],
      (await offchain(app, 60)).item,
      (await onchainJob(app, { result: "0x" + "ee".repeat(2_000) })).item,
      (await onchainJob(burner)).item,
      (await onchainJob(longReason)).item,
    ];
    const n = items.length;

    // Runs the batch with `gasLimit` and rolls the chain back. (Plain
    // JSON-RPC for speed, without ethers' request batching: the node's
    // accounts are unlocked and it mines at once.)
    const send = (method, params) => rpc(node.url, method, params);
    const tx = {
      from: chain.relayer.address,
      to: await jobManager.getAddress(),
      data: jobManager.interface.encodeFunctionData("submitResults", [items, gasPerItem]),
    };
    async function probe(gasLimit) {
      const snapshot = await send("evm_snapshot", []);
      try {
        let hash;
        try {
          hash = await send("eth_sendTransaction", [{ ...tx, gas: toBeHex(gasLimit) }]);
        } catch {
          return { ok: false, tried: -1 };
        }
        const receipt = await send("eth_getTransactionReceipt", [hash]);
        if (receipt.status !== "0x1") return { ok: false, tried: -1 };
        const outcome = batchOutcome(receipt, jobManager);
        assert.equal(outcome.length, n);
        return { ok: true, tried: outcome.filter((o) => o.reason !== BATCH_OUT_OF_GAS).length, gasUsed: BigInt(receipt.gasUsed) };
      } finally {
        await send("evm_revert", [snapshot]);
      }
    }
    // The lowest gas limit in (lo, hi] under which the batch succeeds and tries >= k items.
    async function lowest(k, lo, hi) {
      while (hi - lo > 1n) {
        const mid = (lo + hi) / 2n;
        const r = await probe(mid);
        if (r.ok && r.tried >= k) hi = mid;
        else lo = mid;
      }
      return hi;
    }

    const full = batchGasLimit(items, gasPerItem);
    assert.equal((await probe(full)).tried, n);
    // The least a batch of n items needs: every item skipped.
    const floor = await lowest(0, 21_000n, full);
    const rows = [["all skipped", floor, (await probe(floor)).gasUsed]];
    let previous = floor;
    for (let k = 1; k <= n; k++) {
      const tightest = await lowest(k, previous, full);
      const at = await probe(tightest);
      const below = await probe(tightest - 1n);
      // Just enough gas for item k: it runs, and the batch succeeds.
      assert.ok(at.ok && at.tried === k, `item ${k} at ${tightest}: ${JSON.stringify(at, (_, v) => (typeof v === "bigint" ? String(v) : v))}`);
      // One gas less: item k and the rest are skipped, and the batch still succeeds.
      assert.ok(below.ok && below.tried === k - 1, `below item ${k}'s tightest limit ${tightest}`);
      rows.push([`item ${k} tried`, tightest, at.gasUsed]);
      previous = tightest;
    }
    console.log(`# gas bound, ${n} items, gasPerItem ${gasPerItem}: tightest gas limit / gas used / unused`);
    for (const [what, limit, used] of rows) console.log(`#   ${what.padEnd(13)} ${limit} / ${used} / ${limit - used}`);
  });
});

describe("relayers", () => {
  it("the owner authorizes more relayers; each may submit onchain results until revoked", async () => {
    const extra = chain.account(5);
    const app = await consumer();
    assert.equal(await jobManager.isRelayer(chain.relayer.address), true);
    assert.equal(await jobManager.isRelayer(extra.address), false);

    const { args } = await expectRevert(
      jobManager.connect(chain.stranger).setRelayerAuthorized(extra.address, true),
      "OwnableUnauthorizedAccount",
    );
    assert.deepEqual(args, [chain.stranger.address]);
    await expectRevert(
      jobManager.setRelayerAuthorized(ZeroAddress, true),
      "JobManager.setRelayerAuthorized: relayer is the zero address",
    );

    const granted = await mined(jobManager.setRelayerAuthorized(extra.address, true));
    assert.deepEqual(events(granted, jobManager, "RelayerAuthorized").map((e) => [...e.args]), [[extra.address, true]]);
    assert.equal(await jobManager.isRelayer(extra.address), true);
    assert.equal(await jobManager.authorizedRelayers(extra.address), true);
    assert.equal(await jobManager.getRelayer(), chain.relayer.address); // unchanged

    // It can submit, one by one or in a batch; so can the relayer.
    const one = await onchainJob(app);
    await mined(jobManager.connect(extra).submitResult(one.signed.encoded, one.signed.signature));
    const two = await onchainJob(app);
    assert.deepEqual((await submit([two.item], { from: extra, settled: 1 })).outcome, [completed(two, "0xc0ffee")]);
    const three = await onchainJob(app);
    await mined(jobManager.connect(chain.relayer).submitResult(three.signed.encoded, three.signed.signature));

    const revoked = await mined(jobManager.setRelayerAuthorized(extra.address, false));
    assert.deepEqual(events(revoked, jobManager, "RelayerAuthorized").map((e) => [...e.args]), [[extra.address, false]]);
    assert.equal(await jobManager.isRelayer(extra.address), false);
    const four = await onchainJob(app);
    await expectRevert(jobManager.connect(extra).submitResult(four.signed.encoded, four.signed.signature), NOT_RELAYER);
    assert.deepEqual((await submit([four.item], { from: extra, settled: 0 })).outcome, [skipped(four, NOT_RELAYER)]);
    assert.deepEqual(await statuses(one, two, three, four), [COMPLETED, COMPLETED, COMPLETED, PENDING]);
  });

  it("keeps the storage layout: authorizedRelayers took the first __gap slot (slot 4)", async () => {
    const extra = chain.account(6);
    const proxy = await jobManager.getAddress();
    const word = (slot) => chain.provider.getStorage(proxy, slot);
    assert.equal(await word(0), zeroPadValue(chain.relayer.address, 32).toLowerCase());
    assert.equal(await word(1), zeroPadValue(chain.operator.address, 32).toLowerCase());
    const slotOf = keccak256(abi.encode(["address", "uint256"], [extra.address, 4]));
    assert.equal(BigInt(await word(slotOf)), 0n);
    await mined(jobManager.setRelayerAuthorized(extra.address, true));
    assert.equal(BigInt(await word(slotOf)), 1n);
    await mined(jobManager.setRelayerAuthorized(extra.address, false));
    assert.equal(BigInt(await word(slotOf)), 0n);
  });
});

describe("getJobStatuses", () => {
  it("returns each job's status in order, 0 for an unknown job", async () => {
    const app = await consumer();
    const pending = await onchainJob(app);
    const cancelled = await onchainJob(app);
    await mined(app.cancel(cancelled.jobID));
    const done = await onchainJob(app);
    await mined(jobManager.connect(chain.relayer).submitResult(done.signed.encoded, done.signed.signature));
    const unknown = { jobID: keccak256("0x") };
    assert.deepEqual(await statuses(unknown, pending, cancelled, done, pending), [NONE, PENDING, CANCELLED, COMPLETED, PENDING]);
    assert.deepEqual([...(await jobManager.getJobStatuses([]))], []);
  });
});

describe("checkOffchainRequests", () => {
  it("answers, for many requests in one call, whether each consumer accepts its signature and whether its job ID is used", async () => {
    const app = await consumer();
    const eip191 = (request) => hashMessage(getBytes(request));
    const check = ({ job }, { consumer: to, signature = job.requestSignature } = {}) => [
      to,
      eip191(job.request),
      signature,
      job.jobID,
    ];
    const address = await app.getAddress();
    const fresh = await offchain(app, 7n);
    const used = await offchain(app, 8n);
    await mined(jobManager.connect(chain.stranger).submitResultForOffchainJob(...used.job.args));
    const stranger = await sign(chain.stranger, fresh.job.request);
    const onchain = await onchainJob(app);
    const [accepted, states] = await jobManager.checkOffchainRequests([
      check(fresh, { consumer: address }),
      check(used, { consumer: address }),
      check(fresh, { consumer: address, signature: stranger }),
      // An account with no code accepts nothing.
      check(fresh, { consumer: chain.stranger.address }),
      [address, eip191(fresh.job.request), fresh.job.requestSignature, onchain.jobID],
    ]);
    assert.deepEqual([...accepted], [true, true, false, false, true]);
    assert.deepEqual([...states], [NONE, COMPLETED, NONE, NONE, PENDING]);
    const [none, noStates] = await jobManager.checkOffchainRequests([]);
    assert.deepEqual([[...none], [...noStates]], [[], []]);
  });
});

describe("gas per settled result", () => {
  it("single vs batched, square-root jobs (printed; batching is cheaper per result from 10 items)", async () => {
    const isqrt = (n) => {
      let x = n;
      let y = (x + 1n) / 2n;
      while (y < x) [x, y] = [y, (y + n / y) / 2n];
      return x;
    };
    const jobManagerAddress = await jobManager.getAddress();
    const sqrtApp = () =>
      deploy("SquareRootConsumer", chain.owner, jobManagerAddress, chain.appSigner.address, PROGRAM_ID, MAX_CYCLES);
    const onchainApp = await sqrtApp();
    const offchainApp = await sqrtApp();
    let n = 1_000_000n; // a fresh input (and offchain nonce) for every job
    const output = (x) => abi.encode(["uint256", "uint256"], [x, isqrt(x)]);

    async function onchainSqrt() {
      const x = n++;
      const [created] = events(await mined(onchainApp.requestSquareRoot(x)), jobManager, "JobCreated");
      const signed = await signedResult(chain.operator, {
        jobID: created.args.jobID,
        onchainInputHash: keccak256(created.args.onchainInput),
        maxCycles: MAX_CYCLES,
        programID: PROGRAM_ID,
        result: output(x),
      });
      return { signed, item: onchainItem(signed) };
    }
    async function offchainSqrt() {
      const x = n++;
      const job = await offchainJob({
        consumer: await offchainApp.getAddress(),
        nonce: x,
        programID: PROGRAM_ID,
        onchainInput: abi.encode(["uint256"], [x]),
        maxCycles: MAX_CYCLES,
        result: output(x),
        appSigner: chain.appSigner,
        operator: chain.operator,
      });
      return { job, item: offchainItem(job) };
    }

    const jm = jobManager.connect(chain.relayer);
    const kinds = {
      onchain: [onchainSqrt, (j) => jm.submitResult(j.signed.encoded, j.signed.signature)],
      offchain: [offchainSqrt, (j) => jm.submitResultForOffchainJob(...j.job.args)],
    };
    const table = {};
    for (const [kind, [make, single]] of Object.entries(kinds)) {
      // Warm up (the app's first result writes its first slots), then 5 single results.
      await mined(single(await make()));
      let total = 0n;
      for (let i = 0; i < 5; i++) total += (await mined(single(await make()))).gasUsed;
      const row = { single: total / 5n };
      for (const size of [1, 10, 50]) {
        const jobs = [];
        for (let i = 0; i < size; i++) jobs.push(await make());
        const { receipt, settled } = await submit(
          jobs.map((j) => j.item),
          { gasPerItem: 300_000n },
        );
        assert.equal(settled, BigInt(size));
        row[`batch of ${size}`] = receipt.gasUsed / BigInt(size);
      }
      table[kind] = row;
    }
    console.log("# gas per settled result (transaction gasUsed / results, including 21000 + calldata)");
    for (const [kind, row] of Object.entries(table)) {
      console.log(`#   ${kind.padEnd(8)} ${Object.entries(row).map(([k, v]) => `${k}: ${v}`).join(", ")}`);
      assert.ok(row["batch of 10"] < row.single, `${kind}: batch of 10`);
      assert.ok(row["batch of 50"] < row.single, `${kind}: batch of 50`);
    }
  });
});
