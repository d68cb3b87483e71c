// SPDX-License-Identifier: MIT OR Apache-2.0
//
// What a test needs to talk to the contracts the way the engine does:
// deploy from the committed out/*.json artifacts, encode and sign results and
// offchain requests, and assert exact revert reasons.

"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const {
  AbiCoder,
  Contract,
  ContractFactory,
  HDNodeWallet,
  Interface,
  JsonRpcProvider,
  Mnemonic,
  Signature,
  getBytes,
  keccak256,
  solidityPackedKeccak256,
  toBeHex,
  zeroPadValue,
} = require("ethers");

const OUT = path.join(__dirname, "..", "..", "out");
const MNEMONIC = "test test test test test test test test test test test junk";
const abi = AbiCoder.defaultAbiCoder();

// The wire formats (see IJobManager.sol). Each struct is encoded as ONE
// dynamic tuple, i.e. Solidity's abi.encode(structValue): the bytes start
// with the 0x20 offset word.
const RESULT = "tuple(bytes32,bytes32,uint64,bytes,bytes)";
const OFFCHAIN_RESULT = "tuple(bytes32,bytes32,bytes32,uint64,bytes,bytes,bytes32[])";
const OFFCHAIN_REQUEST = "tuple(uint64,uint64,address,bytes,bytes,bytes32)";

function artifact(name) {
  return JSON.parse(fs.readFileSync(path.join(OUT, `${name}.json`), "utf8"));
}

/** Provider plus the standard hardhat accounts, in the roles tests use. */
function connect(url) {
  // cacheTimeout -1: never serve a cached eth_getTransactionCount (nonces).
  // batchMaxCount 1: send each request at once (no JSON-RPC batches, which
  // ethers would otherwise collect for 10 ms before every request).
  const provider = new JsonRpcProvider(url, 31337, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 20, batchMaxCount: 1 });
  const mnemonic = Mnemonic.fromPhrase(MNEMONIC);
  const account = (i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(provider);
  return {
    provider,
    account,
    owner: account(0), // deploys everything; JobManager and consumer owner
    relayer: account(1), // the only caller of submitResult
    operator: account(2), // signs results (never sends a transaction)
    appSigner: account(3), // the consumers' offchain signer
    stranger: account(4), // anyone else
  };
}

async function deploy(name, signer, ...args) {
  const a = artifact(name);
  const contract = await new ContractFactory(a.abi, a.bytecode, signer).deploy(...args);
  await contract.waitForDeployment();
  return contract;
}

/**
 * Deploys JobManager the way the engine does: the implementation, then an
 * ERC1967Proxy whose constructor calls initializeJobManager.
 */
async function deployJobManager({ owner, relayer, operator }) {
  const implementation = await deploy("JobManager", owner);
  const init = implementation.interface.encodeFunctionData("initializeJobManager", [
    owner.address,
    relayer.address,
    operator.address,
  ]);
  const proxy = await deploy("ERC1967Proxy", owner, await implementation.getAddress(), init);
  const jobManager = new Contract(await proxy.getAddress(), artifact("JobManager").abi, owner);
  return { jobManager, implementation, proxy };
}

/** Sends a transaction and waits for its receipt. */
async function mined(txPromise) {
  const tx = await txPromise;
  return tx.wait();
}

/** The decoded events `name` emitted by `contract` in a receipt. */
function events(receipt, contract, name) {
  const address = contract.target.toLowerCase();
  return receipt.logs
    .filter((log) => log.address.toLowerCase() === address)
    .map((log) => contract.interface.parseLog(log))
    .filter((ev) => ev && ev.name === name);
}

// Every custom error any of our contracts (or OpenZeppelin's, through them)
// can raise, to decode revert data that ethers leaves undecoded.
let errorInterface;
function errors() {
  if (!errorInterface) {
    const seen = new Set();
    const fragments = [];
    for (const file of fs.readdirSync(OUT).sort()) {
      for (const item of JSON.parse(fs.readFileSync(path.join(OUT, file), "utf8")).abi) {
        if (item.type !== "error") continue;
        const key = `${item.name}(${item.inputs.map((i) => i.type).join(",")})`;
        if (!seen.has(key)) {
          seen.add(key);
          fragments.push(item);
        }
      }
    }
    errorInterface = new Interface(fragments);
  }
  return errorInterface;
}

/**
 * What a failed call reverted with: { name: "Error", args: [reason] } for a
 * require string, { name, args } for a custom error.
 */
function decodeRevert(e) {
  if (e && e.revert) return { name: e.revert.name, args: [...e.revert.args] };
  if (e && typeof e.reason === "string") return { name: "Error", args: [e.reason] };
  const data = e && (e.data ?? e.info?.error?.data);
  if (typeof data === "string" && data.length >= 10) {
    const parsed = errors().parseError(data);
    if (parsed) return { name: parsed.name, args: [...parsed.args] };
  }
  throw e;
}

/** The revert reason string, or the custom error's name, of a failed call. */
function revertOf(e) {
  const { name, args } = decodeRevert(e);
  return name === "Error" ? args[0] : name;
}

/**
 * Asserts that the transaction reverts with exactly `reason`: a require
 * string, or a custom error's name. Returns the decoded revert
 * ({ name, args }) so custom error arguments can be checked too.
 */
async function expectRevert(promise, reason, what) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  const label = what ? ` (${what})` : "";
  assert.ok(error, `expected a revert with "${reason}"${label}, but the call succeeded`);
  assert.equal(revertOf(error), reason, what);
  return decodeRevert(error);
}

const jobId = (nonce, consumer) => solidityPackedKeccak256(["uint64", "address"], [nonce, consumer]);

// --- encodings --------------------------------------------------------------

function encodeResult({ jobID, onchainInputHash, maxCycles, programID, result }) {
  return abi.encode([RESULT], [[jobID, onchainInputHash, maxCycles, programID, result]]);
}

function encodeOffchainResult({
  jobID,
  onchainInputHash,
  offchainInputHash,
  maxCycles,
  programID,
  result,
  versionedBlobHashes = [],
}) {
  return abi.encode(
    [OFFCHAIN_RESULT],
    [[jobID, onchainInputHash, offchainInputHash, maxCycles, programID, result, versionedBlobHashes]],
  );
}

function encodeRequest({ nonce, maxCycles, consumer, programID, onchainInput, offchainInputHash }) {
  return abi.encode([OFFCHAIN_REQUEST], [[nonce, maxCycles, consumer, programID, onchainInput, offchainInputHash]]);
}

/** EIP-191 personal_sign over the raw bytes: 65 bytes r||s||v, v = 27/28. */
function sign(wallet, encoded) {
  return wallet.signMessage(getBytes(encoded));
}

/** The operator's signed result for an onchain job. */
async function signedResult(operator, fields) {
  const encoded = encodeResult(fields);
  return { encoded, signature: await sign(operator, encoded) };
}

/**
 * A complete offchain job as the engine would settle it: the request signed
 * by the app's signer, the result signed by the operator. `overrides` change
 * single result fields after the request is fixed (to build bad results).
 */
async function offchainJob({
  consumer,
  nonce,
  programID,
  onchainInput = "0x",
  offchainInput = "0x",
  maxCycles = 1_000_000,
  result = "0x",
  appSigner,
  operator,
  overrides = {},
}) {
  const offchainInputHash = keccak256(offchainInput);
  const request = encodeRequest({ nonce, maxCycles, consumer, programID, onchainInput, offchainInputHash });
  const jobID = jobId(nonce, consumer);
  const resultEncoded = encodeOffchainResult({
    jobID,
    onchainInputHash: keccak256(onchainInput),
    offchainInputHash,
    maxCycles,
    programID,
    result,
    ...overrides,
  });
  return {
    jobID,
    request,
    requestSignature: await sign(appSigner, request),
    result: resultEncoded,
    resultSignature: await sign(operator, resultEncoded),
    // The argument list of submitResultForOffchainJob.
    get args() {
      return [this.result, this.resultSignature, this.request, this.requestSignature];
    },
  };
}

// --- batches (IBatchSettlement.submitResults) --------------------------------

/** The ResultItem of an onchain job's signed result ({ encoded, signature } from signedResult). */
function onchainItem({ encoded, signature }) {
  return [encoded, signature, "0x", "0x"];
}

/** The ResultItem of an offchain job (what offchainJob returns). */
function offchainItem(job) {
  return [job.result, job.resultSignature, job.request, job.requestSignature];
}

/**
 * A transaction gas limit under which submitResults(items, gasPerItem) tries
 * every item (JobManager.submitResults, "Gas bound"): the calldata's
 * intrinsic gas (16 per byte, an upper bound) + 100k + per item
 * gasPerItem * 64/63 + 40k, + 1 per byte of items beyond the first 10 kB.
 * eth_estimateGas is no substitute: it finds the cheapest limit that does
 * not revert, and with too little gas submitResults skips items instead.
 */
function batchGasLimit(items, gasPerItem) {
  const itemBytes = items.reduce((sum, item) => sum + item.reduce((s, b) => s + (b.length - 2) / 2, 0), 0);
  const calldataBytes = itemBytes + items.length * (4 * 64 + 64) + 4 + 96; // + heads, lengths, padding
  return (
    21_000n +
    16n * BigInt(calldataBytes) +
    100_000n +
    BigInt(items.length) * ((BigInt(gasPerItem) * 64n) / 63n + 40_000n) +
    BigInt(Math.max(0, itemBytes - 10_000))
  );
}

/**
 * What a submitResults transaction did with each item, in order:
 * { jobID, completed: true, result } or { jobID, completed: false, reason }.
 */
function batchOutcome(receipt, jobManager) {
  const address = jobManager.target.toLowerCase();
  return receipt.logs
    .filter((log) => log.address.toLowerCase() === address)
    .map((log) => jobManager.interface.parseLog(log))
    .filter((ev) => ev && (ev.name === "JobCompleted" || ev.name === "ResultSkipped"))
    .map((ev) =>
      ev.name === "JobCompleted"
        ? { jobID: ev.args.jobID, completed: true, result: ev.args.result }
        : { jobID: ev.args.jobID, completed: false, reason: ev.args.reason },
    );
}

/** The same signature with s replaced by n - s (and v flipped): valid for raw ecrecover, rejected as malleable. */
function highS(signature) {
  const sig = Signature.from(signature);
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = n - BigInt(sig.s);
  const v = sig.v === 27 ? 28 : 27;
  return sig.r + zeroPadValue(toBeHex(s), 32).slice(2) + v.toString(16);
}

// For a test file: a node started and a JobManager deployed before its
// tests, the node stopped after them (also when a test fails). `ready`
// gets { node, chain, jobManager } once they are up.
function useJobManager(ready) {
  const { before, after } = require("node:test");
  const { startNode } = require("./node");
  const stack = {};
  before(async () => {
    stack.node = await startNode();
    stack.chain = connect(stack.node.url);
    ({ jobManager: stack.jobManager } = await deployJobManager(stack.chain));
    ready(stack);
  });
  after(async () => {
    stack.chain?.provider.destroy();
    await stack.node?.stop();
  });
}

module.exports = {
  MNEMONIC,
  useJobManager,
  RESULT,
  OFFCHAIN_RESULT,
  OFFCHAIN_REQUEST,
  abi,
  artifact,
  connect,
  deploy,
  deployJobManager,
  mined,
  events,
  decodeRevert,
  revertOf,
  expectRevert,
  jobId,
  encodeResult,
  encodeOffchainResult,
  encodeRequest,
  sign,
  signedResult,
  offchainJob,
  highS,
  onchainItem,
  offchainItem,
  batchGasLimit,
  batchOutcome,
};
