// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Hardhat is used here ONLY to run a local EVM node (`npx hardhat node`).
// Contracts are compiled by build.js with solc-js, never by hardhat, so this
// config points every hardhat path at an empty, git-ignored folder: the node
// never compiles, downloads a compiler, or finds anything to watch.

// Hardhat 2 has no config key for telemetry. It only asks for consent on an
// interactive terminal, and only sends anything after an explicit "yes".
// The config is loaded before that question is asked, so setting the
// variable here suppresses the prompt for every way the node is started.
process.env.HARDHAT_DISABLE_TELEMETRY_PROMPT = "true";
process.env.HARDHAT_HIDE_SOLIDITY_SURVEY_MESSAGE = "true";

const path = require("path");

const scratch = path.join(__dirname, ".hardhat");

/** @type {import('hardhat/config').HardhatUserConfig} */
module.exports = {
  defaultNetwork: "hardhat",
  // Never used (nothing is compiled), but pinned so hardhat does not pick a
  // default version of its own.
  solidity: "0.8.28",
  paths: {
    root: __dirname,
    sources: path.join(scratch, "no-sources"),
    tests: path.join(scratch, "no-tests"),
    cache: path.join(scratch, "cache"),
    artifacts: path.join(scratch, "artifacts"),
  },
  networks: {
    hardhat: {
      chainId: 31337,
      // Cancun: EIP-4844 blob transactions and the BLOBHASH opcode, matching
      // the evmVersion the contracts are compiled for.
      hardfork: "cancun",
      allowUnlimitedContractSize: false,
      // Default accounts: the standard hardhat test mnemonic
      // ("test test test test test test test test test test test junk"),
      // 20 accounts with 10000 ETH each.
      // Logging every JSON-RPC call is off unless HARDHAT_NODE_LOG=1, so a
      // parent process that does not drain the node's stdout cannot stall it.
      loggingEnabled: process.env.HARDHAT_NODE_LOG === "1",
    },
  },
};
