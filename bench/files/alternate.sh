#!/usr/bin/env bash
# bench/files/alternate.sh: file_processor and its peers taking turns.
#
#   bench/files/alternate.sh                 # every group, 5 rounds (gzip: 3)
#   FP_ALT_ONLY="hash_d1 zstd_d4" bench/files/alternate.sh
#
# run.sh times each command's runs back to back with hyperfine; on a machine
# shared with other work the load changes from one command's runs to the
# next. Here every round runs each command once, in turn (alternate.py,
# the order rotated each round), so the load weighs on all alike; the
# medians and the ratio of each peer's median to file_processor's are
# written to $FP_BENCH_DATA/alternate/GROUP.txt. Datasets and the Release
# build as run.sh makes them (FP=path to use a binary). Outputs are checked
# against the peers' before the timing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${FP_BENCH_DATA:-/tmp/fp-bench}
out=$data/alternate
only=${FP_ALT_ONLY:-}
rounds=${FP_ALT_ROUNDS:-5}
alt="python3 $here/alternate.py"

if [ -z "${FP:-}" ]; then
  cmake -S "$root" -B "$root/build-bench-fp" -DCMAKE_BUILD_TYPE=Release \
    -DWEFT_BUILD_TESTS=OFF >/dev/null
  cmake --build "$root/build-bench-fp" -j2 --target file_processor >&2
  FP=$root/build-bench-fp/apps/file_processor/file_processor
fi
export WEFT_LOG_LEVEL=warn
python3 "$here/gen.py" "$data" "${FP_BENCH_SCALE:-1}"
cd "$data"
mkdir -p "$out" scratch
want() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
warm() { find "$@" -type f -print0 | xargs -0 cat > /dev/null; }
check() { cmp -s "$2" "$3" || { echo "alternate.sh: $1: outputs differ" >&2; exit 1; }; }
group() { local g=$1 n=$2; shift 2; echo "== $g" >&2; $alt --json "$out/$g.json" "$n" "$@" | tee "$out/$g.txt"; }

if want hash_d1; then
  warm D1
  $FP hash -j2 D1 > scratch/fp.sha256; sha256sum D1/* > scratch/ref.sha256
  check hash_d1 scratch/fp.sha256 scratch/ref.sha256
  group hash_d1 "$rounds" \
    "file_processor hash -j2" "$FP hash -j2 D1 > /dev/null" \
    "xargs -P2 openssl dgst" "find D1 -type f -print0 | xargs -0 -P2 -n1 openssl dgst -sha256 > /dev/null" \
    "hashdeep -j2" "hashdeep -j2 -c sha256 -r D1 > /dev/null"
fi
if want hash_d3; then
  warm D3
  $FP hash -j2 D3 > scratch/fp3.sha256
  find D3 -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > scratch/ref3.sha256
  check hash_d3 scratch/fp3.sha256 scratch/ref3.sha256
  group hash_d3 "$rounds" \
    "file_processor hash -j2" "$FP hash -j2 D3 > /dev/null" \
    "xargs -P2 openssl dgst" "find D3 -type f -print0 | xargs -0 -P2 -n500 openssl dgst -sha256 > /dev/null"
fi
if want verify_d2; then
  warm D2
  $FP hash -j2 D2 -o scratch/d2.sha256
  hashdeep -j2 -c sha256 -r D2 > scratch/d2.hashdeep
  $FP verify -j2 -m scratch/d2.sha256 D2
  group verify_d2 "$rounds" \
    "file_processor verify -j2" "$FP verify -j2 -m scratch/d2.sha256 D2 2> /dev/null" \
    "hashdeep -j2 -a" "hashdeep -j2 -c sha256 -a -k scratch/d2.hashdeep -r D2 > /dev/null"
fi
log=D4/log.jsonl
if want gzip_d4; then
  warm D4
  $FP compress -j2 -l 6 -c $log > scratch/fp.gz; pigz -6 -p2 -c $log > scratch/pigz.gz
  gzip -dc scratch/fp.gz > scratch/back; check gzip_d4 scratch/back $log
  $FP decompress -j2 -c scratch/fp.gz > scratch/back; check gunzip_d4 scratch/back $log
  echo "sizes: input $(stat -c %s $log), file_processor $(stat -c %s scratch/fp.gz), pigz $(stat -c %s scratch/pigz.gz)" | tee "$out/gzip_sizes.txt"
  group gzip_d4 "${FP_ALT_GZIP_ROUNDS:-3}" \
    "file_processor -j2 -l6" "$FP compress -j2 -l 6 -c $log > /dev/null" \
    "pigz -6 -p2" "pigz -6 -p2 -c $log > /dev/null"
  group gunzip_d4 "$rounds" \
    "file_processor decompress -j2" "$FP decompress -j2 -c scratch/fp.gz > /dev/null" \
    "pigz -d -p2" "pigz -d -p2 -c scratch/fp.gz > /dev/null" \
    "libdeflate-gzip -d" "libdeflate-gzip -d -c scratch/fp.gz > /dev/null"
fi
if want zstd_d4; then
  warm D4
  $FP compress --codec zstd -j2 -l 3 -c $log > scratch/fp.zst; zstd -q -3 -T2 -c $log > scratch/zstd.zst
  zstd -q -dc scratch/fp.zst > scratch/back; check zstd_d4 scratch/back $log
  $FP decompress -j2 -c scratch/fp.zst > scratch/back; check unzstd_d4 scratch/back $log
  echo "sizes: input $(stat -c %s $log), file_processor $(stat -c %s scratch/fp.zst), zstd $(stat -c %s scratch/zstd.zst)" | tee "$out/zstd_sizes.txt"
  group zstd_d4 "$rounds" \
    "file_processor -j2 -l3" "$FP compress --codec zstd -j2 -l 3 -c $log > /dev/null" \
    "zstd -3 -T2" "zstd -q -3 -T2 -c $log > /dev/null"
  group unzstd_d4 "$rounds" \
    "file_processor decompress -j2" "$FP decompress -j2 -c scratch/fp.zst > /dev/null" \
    "zstd -d" "zstd -q -d -c scratch/fp.zst > /dev/null"
fi
