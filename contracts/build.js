#!/usr/bin/env node
// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Compiles contracts/src/**/*.sol with solc-js 0.8.28 (no network, no
// hardhat) and writes one artifact per contract to out/<ContractName>.json:
//
//   {"contractName", "abi", "bytecode", "deployedBytecode"}
//
// (hardhat-style, so alloy's `sol!(Name, "contracts/out/Name.json")` binds it;
// "0x" bytecode for interfaces and abstract contracts).
//
//   node build.js           compile and (re)write out/, removing stale files
//   node build.js --check   compile in memory; exit 1 listing every missing,
//                           stale or extra artifact, 0 if out/ is up to date
//
// The output is deterministic: sources are fed to solc sorted by path, under
// relative source unit names, and the JSON is written with a fixed key order.

"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const SOLC_VERSION = "0.8.28";
const ROOT = __dirname;
const SRC = path.join(ROOT, "src");
const OUT = path.join(ROOT, "out");
const NODE_MODULES = path.join(ROOT, "node_modules");

// Contracts from dependencies that get an artifact too: [source unit, name].
const EXTERNAL_ARTIFACTS = [
  ["@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol", "ERC1967Proxy"],
];

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  // Keep the default metadata (ipfs hash appended to the bytecode); it only
  // depends on the sources and these settings, so it is reproducible.
  outputSelection: {},
};

function listSources(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...listSources(full));
    else if (entry.isFile() && entry.name.endsWith(".sol")) found.push(full);
  }
  return found;
}

// Source unit name ("src/JobManager.sol") for a file under ROOT, with forward
// slashes whatever the platform.
function unitName(file) {
  return path.relative(ROOT, file).split(path.sep).join("/");
}

// Import callback: our own files are all passed in up front, so anything solc
// asks for is a package import (e.g. "@openzeppelin/contracts/...").
function findImports(importPath) {
  if (importPath.startsWith("@openzeppelin/")) {
    const file = path.join(NODE_MODULES, ...importPath.split("/"));
    if (!file.startsWith(NODE_MODULES + path.sep)) {
      return { error: `import escapes node_modules: ${importPath}` };
    }
    try {
      return { contents: fs.readFileSync(file, "utf8") };
    } catch (e) {
      return { error: `cannot read ${importPath} (run npm ci): ${e.message}` };
    }
  }
  return { error: `unresolvable import ${importPath} (only @openzeppelin/... and relative imports inside src/ are allowed)` };
}

function compile() {
  if (!solc.version().startsWith(SOLC_VERSION + "+")) {
    throw new Error(`expected solc ${SOLC_VERSION}, got ${solc.version()} (run npm ci)`);
  }
  const files = listSources(SRC)
    .map((f) => [unitName(f), f])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const sources = {};
  const outputSelection = {};
  const wanted = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"];
  for (const [name, file] of files) {
    sources[name] = { content: fs.readFileSync(file, "utf8") };
    outputSelection[name] = { "*": wanted };
  }
  for (const [unit, contract] of EXTERNAL_ARTIFACTS) {
    outputSelection[unit] = { ...(outputSelection[unit] || {}), [contract]: wanted };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: { ...SETTINGS, outputSelection },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  const warnings = (output.errors || []).filter((e) => e.severity !== "error");
  for (const w of warnings) process.stderr.write(w.formattedMessage + "\n");
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(e.formattedMessage + "\n");
    throw new Error(`compilation failed with ${errors.length} error(s)`);
  }

  const artifacts = new Map(); // file name -> content
  const origin = new Map(); // contract name -> source unit
  const add = (unit, contractName, c) => {
    if (origin.has(contractName)) {
      throw new Error(`contract name ${contractName} is defined in both ${origin.get(contractName)} and ${unit}; artifact names must be unique`);
    }
    origin.set(contractName, unit);
    const artifact = {
      contractName,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    artifacts.set(`${contractName}.json`, JSON.stringify(artifact, null, 2) + "\n");
  };
  for (const [unit] of files) {
    const contracts = output.contracts[unit] || {};
    for (const name of Object.keys(contracts).sort()) add(unit, name, contracts[name]);
  }
  for (const [unit, name] of EXTERNAL_ARTIFACTS) {
    const c = output.contracts[unit] && output.contracts[unit][name];
    if (!c) throw new Error(`${name} was not compiled from ${unit}`);
    add(unit, name, c);
  }
  return artifacts;
}

function existingArtifacts() {
  if (!fs.existsSync(OUT)) return new Map();
  const found = new Map();
  for (const name of fs.readdirSync(OUT).sort()) {
    const file = path.join(OUT, name);
    if (fs.statSync(file).isFile()) found.set(name, fs.readFileSync(file, "utf8"));
  }
  return found;
}

function main() {
  const check = process.argv.includes("--check");
  const unknown = process.argv.slice(2).filter((a) => a !== "--check");
  if (unknown.length > 0) {
    process.stderr.write(`usage: node build.js [--check]\n`);
    process.exit(2);
  }
  const fresh = compile();
  const current = existingArtifacts();
  const problems = [];
  for (const [name, content] of fresh) {
    if (!current.has(name)) problems.push(["missing", name]);
    else if (current.get(name) !== content) problems.push(["stale", name]);
  }
  for (const name of current.keys()) {
    if (!fresh.has(name)) problems.push(["extra", name]);
  }

  if (check) {
    if (problems.length === 0) {
      console.log(`out/ is up to date (${fresh.size} artifacts)`);
      return;
    }
    for (const [kind, name] of problems) console.log(`${kind}: out/${name}`);
    console.log(`out/ is out of date: run \`npm run build\` in contracts/ and commit out/`);
    process.exit(1);
  }

  fs.mkdirSync(OUT, { recursive: true });
  for (const [kind, name] of problems) {
    const file = path.join(OUT, name);
    if (kind === "extra") fs.unlinkSync(file);
    else fs.writeFileSync(file, fresh.get(name));
    console.log(`${kind === "extra" ? "removed" : "wrote"} out/${name}`);
  }
  console.log(`${fresh.size} artifacts in out/ (${problems.length} changed)`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`build.js: ${e.message}\n`);
  process.exit(1);
}
