#!/usr/bin/env bash
# The {name} app on a local chain:
#
#   scripts/local.sh run    start it and keep it running (Ctrl-C stops it)
#   scripts/local.sh test   start it, prove a job end to end onchain and
#                           offchain, stop it
#
# `coprocessor dev` runs a hardhat node, deploys the JobManager and runs an
# engine wired to it; this script then registers the guest, deploys the
# consumer, and (test) requests a job onchain and submits one offchain,
# each followed until the consumer has stored its result.
set -euo pipefail
cd "$(dirname "$0")/.."
COPROCESSOR=${COPROCESSOR:-coprocessor}
mode=${1:-run}
data=.dev/data

# The node's port: 8545 to keep running (wallets expect it), any free one
# for a test.
port=${RPC_PORT:-$([ "$mode" = test ] && echo 0 || echo 8545)}

rm -rf .dev
mkdir -p .dev
"$COPROCESSOR" dev --data-dir "$data" --rpc-port "$port" >.dev/dev.log 2>&1 &
dev=$!
trap 'kill "$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true' EXIT

# Up once the engine is ready: its store, its socket, and the chain.
for _ in $(seq 600); do
    "$COPROCESSOR" status --data-dir "$data" >/dev/null 2>&1 && break
    if ! kill -0 "$dev" 2>/dev/null; then
        cat .dev/dev.log >&2
        echo "error: coprocessor dev exited" >&2
        exit 1
    fi
    sleep 0.2
done
"$COPROCESSOR" status --data-dir "$data" >/dev/null || { cat .dev/dev.log >&2; exit 1; }

program=$("$COPROCESSOR" program submit elf/{name}.elf --data-dir "$data" | cut -d' ' -f1)
consumer=$(node contracts/scripts/app.js deploy "$data")
rpc=$(node -p 'require("./'"$data"'/deployment.json").rpcUrl')
echo "node      $rpc"
echo "program   $program"
echo "consumer  $consumer"

# abi.encode(uint64 n)
input() { printf '0x%064x' "$1"; }
expect_sum() {
    local stored
    stored=$(node contracts/scripts/app.js sum "$data" "$consumer" "$1")
    [ "$stored" = "true $2" ] || { echo "error: the consumer stored \"$stored\" for n = $1, not \"true $2\"" >&2; exit 1; }
    echo "the consumer stored sum($1) = $2"
}

if [ "$mode" = test ]; then
    # Onchain: the consumer's requestWithInput emits JobCreated; the engine
    # runs the job and relays the result, and the consumer stores it.
    "$COPROCESSOR" job request --rpc "$rpc" --consumer "$consumer" --input "$(input 1000)" --wait
    expect_sum 1000 333833500
    # Offchain: a request signed by the consumer's offchain signer (the dev
    # key in the data dir), answered by the engine at once and settled onchain.
    id=$("$COPROCESSOR" job submit --program "$program" --consumer "$consumer" --input "$(input 24)" --data-dir "$data")
    "$COPROCESSOR" job watch "$id" --data-dir "$data"
    expect_sum 24 4900
    echo "end to end: ok"
else
    echo
    echo "try:  $COPROCESSOR job request --rpc $rpc --consumer $consumer --input $(input 7) --wait"
    echo "      $COPROCESSOR job submit --program $program --consumer $consumer --input $(input 7) --data-dir $data --wait"
    echo "Ctrl-C stops the node and the engine."
    wait "$dev"
fi
