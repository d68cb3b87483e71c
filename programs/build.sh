#!/usr/bin/env bash
# Builds every example guest (programs/examples/*) to programs/elf/<name>.elf,
# reproducibly, and checks each ELF against Guest ABI v1.
#
# Toolchain: Debian's rustc and cargo (packages rustc-web, cargo-web,
# rust-web-src, lld) with -Zbuild-std=core,alloc, because rustup cannot fetch
# the riscv32im target here. Override them with GUEST_RUSTC / GUEST_CARGO.
# -Zbuild-std fetches the standard library's own dependencies from crates.io
# on the first build.
#
# Reproducibility: the release profile of programs/Cargo.toml (opt-level 3,
# codegen-units 1, fat LTO, panic abort), --locked, every source path
# remapped (this checkout, the Rust sources, the cargo home) so that no path
# of the build machine reaches the binary, and no build-id. Builds in any
# directory, with any target dir, give byte-identical ELFs.
#
# Usage: programs/build.sh            build and check all guests
#        programs/build.sh --verify   also rebuild from scratch in a
#                                     temporary target dir and require
#                                     byte-identical ELFs
# Env:   GUEST_TARGET_DIR             cargo target dir (default programs/target)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

verify=0
case "${1:-}" in
    "") ;;
    --verify) verify=1 ;;
    *) echo "usage: $0 [--verify]" >&2; exit 2 ;;
esac

target=riscv32im-unknown-none-elf
rustc_bin="${GUEST_RUSTC:-/usr/bin/rustc}"
cargo_bin="${GUEST_CARGO:-/usr/bin/cargo}"
for tool in "$rustc_bin" "$cargo_bin" ld.lld; do
    command -v "$tool" >/dev/null || {
        echo "build.sh: $tool not found (apt-get install rustc-web cargo-web rust-web-src lld)" >&2
        exit 1
    }
done

sysroot="$("$rustc_bin" --print sysroot)"
cargo_home="${CARGO_HOME:-${HOME:-/root}/.cargo}"

export RUSTC="$rustc_bin"
export RUSTC_BOOTSTRAP=1
unset RUSTFLAGS RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET
flags=(
    "--remap-path-prefix=$here=/programs"
    "--remap-path-prefix=$sysroot/lib/rustlib/src/rust=/rust"
    "--remap-path-prefix=$cargo_home=/cargo"
    "-Clink-arg=--build-id=none"
    # link.x names every output section; anything else is an error.
    "-Clink-arg=--orphan-handling=error"
)
# 0x1f-separated, so that paths with spaces survive.
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; printf '%s' "${flags[*]}")"
export CARGO_ENCODED_RUSTFLAGS

guests=()
for manifest in examples/*/Cargo.toml; do
    guests+=("$(basename "$(dirname "$manifest")")")
done
cargo_args=(build --release --target "$target" -Zbuild-std=core,alloc --bins)
[[ -f Cargo.lock ]] && cargo_args+=(--locked)
features=()
for g in "${guests[@]}"; do
    cargo_args+=(-p "$g")
    features+=("$g/guest")
done
cargo_args+=(--features "$(IFS=,; echo "${features[*]}")")

# build TARGET_DIR OUT_DIR: builds every guest and copies the ELFs to OUT_DIR.
build() {
    CARGO_TARGET_DIR="$1" "$cargo_bin" "${cargo_args[@]}"
    mkdir -p "$2"
    for g in "${guests[@]}"; do
        cp "$1/$target/release/$g" "$2/$g.elf"
    done
}

# Guest ABI v1 checks: ELF32 little-endian RISC-V ET_EXEC; every PT_LOAD
# page-aligned, inside [0x10000, 0x80000000) and never W+X; the entry in an
# executable segment; only rv32im instructions (no compressed, CSR, fence.i,
# A, F or D encodings).
readelf_bin="$(command -v readelf || command -v llvm-readelf || true)"
check_elf() {
    local elf=$1 header entry segs line f vaddr memsz flags entry_ok=0
    header="$("$readelf_bin" -h "$elf")"
    grep -q 'Class:[[:space:]]*ELF32' <<<"$header" || { echo "$elf: not ELF32" >&2; return 1; }
    grep -q 'Data:.*little endian' <<<"$header" || { echo "$elf: not little-endian" >&2; return 1; }
    grep -q 'Machine:[[:space:]]*RISC-V' <<<"$header" || { echo "$elf: not RISC-V" >&2; return 1; }
    grep -q 'Type:[[:space:]]*EXEC' <<<"$header" || { echo "$elf: not ET_EXEC" >&2; return 1; }
    entry=$(($(awk '/Entry point address/ {print $4}' <<<"$header")))
    segs="$("$readelf_bin" -lW "$elf" | awk '$1 == "LOAD"')"
    [[ -n "$segs" ]] || { echo "$elf: no PT_LOAD segment" >&2; return 1; }
    while read -r line; do
        # LOAD offset vaddr paddr filesz memsz FLAGS... align
        read -ra f <<<"$line"
        vaddr=$((f[2])) memsz=$((f[5]))
        flags="${f[*]:6:${#f[@]}-7}"
        flags="${flags// /}"
        if [[ $flags == *W* && $flags == *E* ]]; then
            echo "$elf: segment at ${f[2]} is writable and executable" >&2; return 1
        fi
        if ((vaddr < 0x10000 || vaddr + memsz > 0x80000000)); then
            echo "$elf: segment ${f[2]}+${f[5]} is outside [0x10000, 0x80000000)" >&2; return 1
        fi
        if ((vaddr % 4096)); then
            echo "$elf: segment at ${f[2]} is not page-aligned" >&2; return 1
        fi
        if [[ $flags == *E* ]] && ((vaddr <= entry && entry < vaddr + memsz)); then
            entry_ok=1
        fi
    done <<<"$segs"
    ((entry_ok)) || { echo "$elf: entry $entry is not in an executable segment" >&2; return 1; }
    if command -v llvm-objdump >/dev/null; then
        local bad
        # With +c,+a,+f,+d such encodings disassemble by name if present;
        # no-aliases shows compressed ones as c.* and CSR reads as csr*.
        bad="$(llvm-objdump -d -M no-aliases --no-show-raw-insn --mattr=+c,+a,+f,+d "$elf" |
            awk -F'\t' '/^ *[0-9a-f]+:/ {print $2}' |
            grep -E '^(c\.|csr|fence\.i|lr\.|sc\.|amo|f[a-z]|unimp|<unknown>)' | grep -vE '^fence$' |
            sort | uniq -c || true)"
        if [[ -n "$bad" ]]; then
            echo "$elf: non-rv32im instructions:" >&2
            echo "$bad" >&2
            return 1
        fi
    else
        echo "build.sh: llvm-objdump not found; skipping the instruction check of $elf" >&2
    fi
}

start=$(date +%s)
build "${GUEST_TARGET_DIR:-$here/target}" elf
echo "build.sh: built ${#guests[@]} guests in $(($(date +%s) - start)) s"

if [[ -n "$readelf_bin" ]]; then
    for g in "${guests[@]}"; do
        check_elf "elf/$g.elf"
    done
    echo "build.sh: every ELF passes the Guest ABI v1 checks"
else
    echo "build.sh: readelf not found; skipping the ELF checks" >&2
fi

if ((verify)); then
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    echo "build.sh: rebuilding from scratch in $scratch to verify reproducibility"
    build "$scratch/target" "$scratch/elf"
    for g in "${guests[@]}"; do
        cmp -s "elf/$g.elf" "$scratch/elf/$g.elf" || { echo "build.sh: $g.elf is not reproducible" >&2; exit 1; }
    done
    echo "build.sh: the rebuild is byte-identical"
fi

(cd elf && sha256sum -- *.elf)
