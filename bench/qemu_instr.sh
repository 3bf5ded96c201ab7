#!/usr/bin/env bash
# qemu_instr.sh: instructions per operation of the core benchmarks, counted
# by qemu user mode, for the AArch64 build next to the x86-64 one.
#
# Times under emulation mean nothing, and Valgrind does not run AArch64
# programs on this machine; qemu can count what it executes instead: with
# -singlestep every translated block is one guest instruction, and with
# -d nochain,exec each execution of a block is one log line. A program is
# counted twice, with N and 2N operations, so that start-up, the dynamic
# loader and libuv's set-up cancel out:
#
#   instructions per operation = (count(2N) - count(N)) / (ops(2N) - ops(N))
#
# where ops() includes each benchmark's warm-up, which grows with N (spawn:
# a tenth more rounds, switch: a twentieth more yields). The x86-64 build
# is counted the same way under qemu-x86_64, so the two columns compare the
# same thing; the native x86-64 timings of bench/run_core.sh and
# bench/run_chan.sh stay the reference for speed.
#
# Usage: bench/qemu_instr.sh   (builds build-bench/ and build-aarch64-bench/,
#                              Release; writes build-aarch64-bench/results/
#                              qemu-instr.json)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup-aarch64.sh
command -v qemu-x86_64 >/dev/null || { echo "qemu_instr.sh: qemu-x86_64 missing (qemu-user)" >&2; exit 1; }

build_one() { # DIR [cmake args]
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_BENCH=ON -DWEFT_BUILD_TESTS=OFF \
    -DWEFT_BUILD_APPS=OFF -DWEFT_BUILD_EXAMPLES=OFF "$@" >/dev/null
  cmake --build "$dir" -j2 --target weft_bench_weft_core weft_bench_chan_ops >&2
}
build_one build-bench
build_one build-aarch64-bench -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake"

# count QEMU PROGRAM ARGS...: guest instructions executed by the program.
count() {
  local qemu=$1
  shift
  "$qemu" -singlestep -d nochain,exec -D /dev/stdout "$@" 2>/dev/null | grep -c '^Trace'
}

# per_op NAME OPS_A OPS_B PROGRAM_ARGS_A PROGRAM_ARGS_B: for both builds.
results=build-aarch64-bench/results
mkdir -p "$results"
out=$results/qemu-instr.json
printf '[\n' >"$out"
sep=""
printf '%-22s %10s %10s %8s\n' benchmark x86-64 aarch64 ratio
measure() {
  local name=$1 ops_a=$2 ops_b=$3 args_a=$4 args_b=$5
  local x a
  # shellcheck disable=SC2086 # the arguments are words on purpose.
  x=$(awk -v a="$(count qemu-x86_64 build-bench/bench/$args_a)" \
          -v b="$(count qemu-x86_64 build-bench/bench/$args_b)" \
          -v oa="$ops_a" -v ob="$ops_b" 'BEGIN { printf "%.1f", (b - a) / (ob - oa) }')
  # shellcheck disable=SC2086
  a=$(awk -v a="$(count qemu-aarch64 -L / build-aarch64-bench/bench/$args_a)" \
          -v b="$(count qemu-aarch64 -L / build-aarch64-bench/bench/$args_b)" \
          -v oa="$ops_a" -v ob="$ops_b" 'BEGIN { printf "%.1f", (b - a) / (ob - oa) }')
  printf '%-22s %10s %10s %8.2f\n' "$name" "$x" "$a" "$(awk -v x="$x" -v a="$a" 'BEGIN { print a / x }')"
  printf '%s {"benchmark":"%s","x86_64_per_op":%s,"aarch64_per_op":%s}' "$sep" "$name" "$x" "$a" >>"$out"
  sep=$',\n'
}

# spawn: batch 100, rounds R plus R/10 + 1 of warm-up: ops = 100 * 1.1 * R.
measure "spawn+join" 22000 44000 "weft_core spawn 100 20000" "weft_core spawn 100 40000"
# switch: S switches plus S/20 + 2 of warm-up.
measure "switch" 21000 42000 "weft_core switch 20000" "weft_core switch 40000"
# channels: one send and one receive per iteration, one thread (chan_ops).
for c in local_pingpong local_buffered spsc_pair mpmc_pair; do
  measure "chan $c" 20480 40960 "chan_ops $c 20480" "chan_ops $c 40960"
done
printf '\n]\n' >>"$out"
echo "written: $out" >&2
