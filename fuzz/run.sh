#!/usr/bin/env bash
# Fuzzes every target for FUZZ_SECONDS each (default 180), starting from its
# seed corpus (a scratch copy, so the committed seeds stay as they are).
# Exits non-zero if any target crashed or found a disagreement; the failing
# input is in fuzz/artifacts/<target>/ (see README.md: it becomes a
# regression file). Prints, per target, the time and executions per second
# (libFuzzer's final stats).
#
#   FUZZ_SECONDS=600 fuzz/run.sh            # every target, 10 minutes each
#   FUZZ_TARGETS="vm_diff" fuzz/run.sh      # some targets only
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-180}
targets=${FUZZ_TARGETS:-"elf jsonrpc fast_frame abi_request vm_diff"}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

# Build every target once (the first build compiles Unicorn: minutes).
cargo fuzz build --sanitizer none

mkdir -p artifacts
summary=()
failed=()
for target in $targets; do
    [ -d "corpus/$target" ] || { echo "no seed corpus for $target" >&2; exit 2; }
    scratch=$(mktemp -d)
    cp -r "corpus/$target/." "$scratch/"
    log="artifacts/$target.log"
    echo "fuzzing $target for ${seconds}s (log: fuzz/$log)" >&2
    start=$(date +%s)
    status=0
    cargo fuzz run --sanitizer none "$target" "$scratch" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=60 >"$log" 2>&1 || status=$?
    elapsed=$(( $(date +%s) - start ))
    rm -rf "$scratch"
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    line="$target: ${elapsed}s, ${runs:-?} executions, ${rate:-?} exec/s"
    if [ "$status" -ne 0 ]; then
        line="$line, FAILED (exit $status)"
        failed+=("$target")
        grep -E "^(thread .* panicked|.*differs|SUMMARY|Test unit written to|==[0-9]+== ERROR)" "$log" | head -20 >&2 || true
    fi
    summary+=("$line")
done

echo "fuzzing summary:"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/<target>/; see fuzz/README.md)" >&2
    exit 1
fi
