// The {name} app on the local chain `coprocessor dev` runs, for the engine
// whose data dir is DATA_DIR (its deployment.json says where the node and
// the JobManager are):
//
//   node scripts/app.js deploy DATA_DIR        deploys {Pascal}Consumer, prints its address
//   node scripts/app.js sum DATA_DIR ADDR N    prints "KNOWN SUM": the result stored for n
//
// The deployer is hardhat's first dev account unless DEPLOYER_KEY is set.

"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { Contract, ContractFactory, JsonRpcProvider, Wallet } = require("ethers");

const HARDHAT_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ARTIFACT = path.join(__dirname, "..", "out", "{Pascal}Consumer.json");

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

function stack(dataDir) {
  const file = path.join(dataDir, "deployment.json");
  if (!fs.existsSync(file)) fail(`${file} is missing: is \`coprocessor dev --data-dir ${dataDir}\` running?`);
  const deployment = JSON.parse(fs.readFileSync(file, "utf8"));
  const provider = new JsonRpcProvider(deployment.rpcUrl, deployment.chainId, { staticNetwork: true });
  return { deployment, provider, artifact: JSON.parse(fs.readFileSync(ARTIFACT, "utf8")) };
}

async function main([command, dataDir, ...args]) {
  if (!dataDir) fail("usage: app.js deploy DATA_DIR | app.js sum DATA_DIR ADDRESS N");
  const { deployment, provider, artifact } = stack(dataDir);
  try {
    if (command === "deploy") {
      const deployer = new Wallet(process.env.DEPLOYER_KEY || HARDHAT_DEV_KEY, provider);
      const factory = new ContractFactory(artifact.abi, artifact.bytecode, deployer);
      const consumer = await factory.deploy(deployment.jobManager, deployment.offchainSigner);
      await consumer.waitForDeployment();
      console.log(await consumer.getAddress());
    } else if (command === "sum" && args.length === 2) {
      const [known, sum] = await new Contract(args[0], artifact.abi, provider).getSum(BigInt(args[1]));
      console.log(`${known} ${sum}`);
    } else {
      fail(`unknown command: ${[command, ...args].join(" ")}`);
    }
  } finally {
    provider.destroy();
  }
}

main(process.argv.slice(2)).catch((e) => fail(e.shortMessage || e.message));
