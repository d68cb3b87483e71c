// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Starts a real hardhat node for a test file and stops it again.
//
//   const { startNode } = require("./helpers/node");
//   const node = await startNode();   // { url, port, pid, stop(), output() }
//   ...
//   await node.stop();
//
// The node runs in its own process group (detached), on a free port of
// 127.0.0.1, and stop() kills the whole group: SIGTERM, then SIGKILL if it is
// still there after a few seconds. If the test process exits without calling
// stop() (a crash, an uncaught error, SIGINT/SIGTERM/SIGHUP), a hook kills
// the group anyway.

"use strict";

const { spawn } = require("node:child_process");
const net = require("node:net");
const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");
const HARDHAT = path.join(ROOT, "node_modules", ".bin", "hardhat");
const CHAIN_ID = 31337;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A port the kernel just handed out on 127.0.0.1 (closed again before use;
// the tiny race with another process grabbing it is acceptable in tests).
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function rpc(url, method, params = []) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(2_000),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

// Is any process of group `pgid` still alive?
function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch (e) {
    if (e.code !== "ESRCH") throw e;
  }
}

async function startNode() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const child = spawn(HARDHAT, ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: ROOT,
    detached: true, // own process group, so stop() can kill all of it
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true" },
  });
  const pgid = child.pid;

  // Keep draining the node's output (a full pipe would stall it) and keep the
  // tail for error messages.
  let output = "";
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);

  let exited = false;
  const exit = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  child.on("error", (e) => keep(`spawn error: ${e.message}\n`));

  // Safety nets: if this process exits or is told to stop before stop() ran,
  // take the node down with it.
  const onExit = () => killGroup(pgid, "SIGKILL");
  const onSignal = (signal) => {
    killGroup(pgid, "SIGKILL");
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : 15));
  };
  process.on("exit", onExit);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, onSignal);

  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    child.stdout.destroy();
    child.stderr.destroy();
    killGroup(pgid, "SIGTERM");
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while ((!exited || groupAlive(pgid)) && Date.now() < deadline) {
      await sleep(50);
    }
    if (!exited || groupAlive(pgid)) {
      killGroup(pgid, "SIGKILL");
      await Promise.race([exit, sleep(STOP_TIMEOUT_MS)]);
    }
    process.removeListener("exit", onExit);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.removeListener(signal, onSignal);
  }

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`hardhat node exited before it was ready:\n${output}`);
    }
    try {
      const chainId = await rpc(url, "eth_chainId");
      if (Number(chainId) !== CHAIN_ID) {
        await stop();
        throw new Error(`unexpected chain id ${chainId} at ${url}`);
      }
      break;
    } catch (e) {
      if (stopped) throw e;
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`hardhat node did not answer on ${url} within ${START_TIMEOUT_MS} ms:\n${output}`);
      }
      await sleep(100);
    }
  }

  return { url, port, pid: pgid, stop, output: () => output };
}

module.exports = { startNode, freePort, rpc, CHAIN_ID };
