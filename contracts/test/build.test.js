// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The committed artifacts in out/ are what the Rust side binds (alloy sol!)
// and deploys, and what the other tests deploy: they must match src/.

"use strict";

const { it } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { keccak256 } = require("ethers");

const { abi, artifact, encodeResult, encodeOffchainResult, encodeRequest } = require("./helpers/coproc");

it("out/ is up to date with src/ (node build.js --check)", () => {
  // Throws, with build.js's list of stale artifacts, if it exits non-zero.
  const out = execFileSync(process.execPath, [path.join(__dirname, "..", "build.js"), "--check"], { encoding: "utf8" });
  assert.match(out, /up to date/);
});

it("artifacts have exactly the keys alloy's sol! reads", () => {
  for (const file of fs.readdirSync(path.join(__dirname, "..", "out"))) {
    const name = path.basename(file, ".json");
    const a = artifact(name);
    assert.deepEqual(Object.keys(a), ["contractName", "abi", "bytecode", "deployedBytecode"]);
    assert.equal(a.contractName, name);
    assert.match(a.bytecode, /^0x([0-9a-f]{2})*$/);
    assert.match(a.deployedBytecode, /^0x([0-9a-f]{2})*$/);
  }
  // Interfaces and abstract contracts have no bytecode.
  for (const name of ["IJobManager", "Consumer", "OffchainRequester", "SingleOffchainSigner", "StatefulConsumer"]) {
    assert.equal(artifact(name).bytecode, "0x");
    assert.equal(artifact(name).deployedBytecode, "0x");
  }
});

it("the test encoders produce the struct layouts the contracts declare", () => {
  const h = (x) => keccak256(x);

  const result = { jobID: h("0x01"), onchainInputHash: h("0x02"), maxCycles: 3n, programID: "0x04", result: "0x05" };
  const [r] = abi.decode(
    ["tuple(bytes32 jobID, bytes32 onchainInputHash, uint64 maxCycles, bytes programID, bytes result)"],
    encodeResult(result),
  );
  assert.deepEqual(r.toObject(), result);

  const offchain = { ...result, offchainInputHash: h("0x06"), versionedBlobHashes: [h("0x07")] };
  const [o] = abi.decode(
    ["tuple(bytes32 jobID, bytes32 onchainInputHash, bytes32 offchainInputHash, uint64 maxCycles, bytes programID, bytes result, bytes32[] versionedBlobHashes)"],
    encodeOffchainResult(offchain),
  );
  assert.deepEqual({ ...o.toObject(), versionedBlobHashes: [...o.versionedBlobHashes] }, offchain);

  const request = { nonce: 1n, maxCycles: 2n, consumer: "0x" + "11".repeat(20), programID: "0x03", onchainInput: "0x04", offchainInputHash: h("0x05") };
  const encoded = encodeRequest(request);
  assert.equal(encoded.slice(0, 66), "0x" + "20".padStart(64, "0")); // one dynamic tuple
  const [q] = abi.decode(
    ["tuple(uint64 nonce, uint64 maxCycles, address consumer, bytes programID, bytes onchainInput, bytes32 offchainInputHash)"],
    encoded,
  );
  assert.deepEqual({ ...q.toObject(), consumer: q.consumer.toLowerCase() }, request);
});
