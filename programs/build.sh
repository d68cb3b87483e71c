#!/usr/bin/env bash
# Builds every example guest (programs/examples/*) twice, reproducibly: for
# riscv32im to programs/elf/<name>.elf and for riscv64im to
# programs/elf/rv64/<name>.elf, and checks each ELF against Guest ABI v1.
# With --twins it builds the Linux user-mode twin instead (see below).
#
# Toolchain: Debian's rustc and cargo (packages rustc-web, cargo-web,
# rust-web-src, lld) with -Zbuild-std=core,alloc, because rustup cannot fetch
# the riscv32im and riscv64im targets here. Override them with GUEST_RUSTC /
# GUEST_CARGO.
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
#        programs/build.sh --twins    build programs/twin, the guests' pure
#                                     logic as a static Linux user-mode
#                                     program, for qemu-riscv32/-riscv64, to
#                                     programs/target/twins/{rv32,rv64}/twin
#                                     (for the benchmarks; not reproducible,
#                                     not committed)
# Env:   GUEST_TARGET_DIR             cargo target dir (default programs/target)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

verify=0 twins=0
case "${1:-}" in
    "") ;;
    --verify) verify=1 ;;
    --twins) twins=1 ;;
    *) echo "usage: $0 [--verify | --twins]" >&2; exit 2 ;;
esac

# Each target and the directory (under programs/elf) its ELFs go to.
targets=(riscv32im-unknown-none-elf riscv64im-unknown-none-elf)
declare -A elf_dir=([riscv32im-unknown-none-elf]=. [riscv64im-unknown-none-elf]=rv64)
declare -A elf_class=([riscv32im-unknown-none-elf]=ELF32 [riscv64im-unknown-none-elf]=ELF64)
declare -A isa=([riscv32im-unknown-none-elf]=rv32im [riscv64im-unknown-none-elf]=rv64im)
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
)
if ((!twins)); then
    # link.x names every output section; anything else is an error. (The
    # twin links with lld's default layout, which has more sections.)
    flags+=("-Clink-arg=--orphan-handling=error")
fi
# 0x1f-separated, so that paths with spaces survive.
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; printf '%s' "${flags[*]}")"
export CARGO_ENCODED_RUSTFLAGS

if ((twins)); then
    # Its own target dir: other flags than the guests', so sharing one would
    # rebuild core and alloc at every switch.
    twin_target_dir="${GUEST_TARGET_DIR:-$here/target}/twin-build"
    twin_args=(build --release -Zbuild-std=core,alloc -p twin --features bin --bin twin)
    [[ -f Cargo.lock ]] && twin_args+=(--locked)
    for t in "${targets[@]}"; do
        twin_args+=(--target "$t")
    done
    CARGO_TARGET_DIR="$twin_target_dir" "$cargo_bin" "${twin_args[@]}"
    for t in "${targets[@]}"; do
        out="$here/target/twins/${isa[$t]:0:4}"
        mkdir -p "$out"
        cp "$twin_target_dir/$t/release/twin" "$out/twin"
        echo "build.sh: $out/twin"
    done
    exit 0
fi

guests=()
for manifest in examples/*/Cargo.toml; do
    guests+=("$(basename "$(dirname "$manifest")")")
done
cargo_args=(build --release -Zbuild-std=core,alloc --bins)
for t in "${targets[@]}"; do
    cargo_args+=(--target "$t")
done
[[ -f Cargo.lock ]] && cargo_args+=(--locked)
features=()
for g in "${guests[@]}"; do
    cargo_args+=(-p "$g")
    features+=("$g/guest")
done
cargo_args+=(--features "$(IFS=,; echo "${features[*]}")")

# build TARGET_DIR OUT_DIR: builds every guest for every target and copies
# the ELFs to OUT_DIR/<name>.elf (rv32) and OUT_DIR/rv64/<name>.elf (rv64).
build() {
    CARGO_TARGET_DIR="$1" "$cargo_bin" "${cargo_args[@]}"
    for t in "${targets[@]}"; do
        mkdir -p "$2/${elf_dir[$t]}"
        for g in "${guests[@]}"; do
            cp "$1/$t/release/$g" "$2/${elf_dir[$t]}/$g.elf"
        done
    done
}

# Guest ABI v1 checks: ELF32 (rv32im) or ELF64 (rv64im) little-endian RISC-V
# ET_EXEC; every PT_LOAD page-aligned, inside [0x10000, 0x80000000) and
# never W+X; the entry in an executable segment; only rv32im/rv64im
# instructions (no compressed, CSR, fence.i, A, F or D encodings).
readelf_bin="$(command -v readelf || command -v llvm-readelf || true)"
# check_elf ELF CLASS: CLASS is ELF32 or ELF64.
check_elf() {
    local elf=$1 class=$2 header entry segs line f vaddr memsz flags entry_ok=0
    header="$("$readelf_bin" -h "$elf")"
    grep -q "Class:[[:space:]]*$class\$" <<<"$header" || { echo "$elf: not $class" >&2; return 1; }
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
        # llvm-objdump takes rv32 or rv64 from the ELF class. With
        # +c,+a,+f,+d such encodings disassemble by name if present;
        # no-aliases shows compressed ones as c.* and CSR reads as csr*.
        bad="$(llvm-objdump -d -M no-aliases --no-show-raw-insn --mattr=+c,+a,+f,+d "$elf" |
            awk -F'\t' '/^ *[0-9a-f]+:/ {print $2}' |
            grep -E '^(c\.|csr|fence\.i|lr\.|sc\.|amo|f[a-z]|unimp|<unknown>)' | grep -vE '^fence$' |
            sort | uniq -c || true)"
        if [[ -n "$bad" ]]; then
            echo "$elf: instructions outside rv32im/rv64im:" >&2
            echo "$bad" >&2
            return 1
        fi
    else
        echo "build.sh: llvm-objdump not found; skipping the instruction check of $elf" >&2
    fi
}

start=$(date +%s)
build "${GUEST_TARGET_DIR:-$here/target}" elf
echo "build.sh: built ${#guests[@]} guests for ${#targets[@]} targets in $(($(date +%s) - start)) s"

if [[ -n "$readelf_bin" ]]; then
    for t in "${targets[@]}"; do
        for g in "${guests[@]}"; do
            check_elf "elf/${elf_dir[$t]}/$g.elf" "${elf_class[$t]}"
        done
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
    for t in "${targets[@]}"; do
        for g in "${guests[@]}"; do
            f="${elf_dir[$t]}/$g.elf"
            cmp -s "elf/$f" "$scratch/elf/$f" || { echo "build.sh: $f is not reproducible" >&2; exit 1; }
        done
    done
    echo "build.sh: the rebuild is byte-identical"
fi

(cd elf && sha256sum -- *.elf rv64/*.elf)
