#!/usr/bin/env bash
# bench/files/run.sh: file_processor against its peers, in the same run.
#
#   bench/files/run.sh            # everything, full sizes (about 6 GB in /tmp)
#   FP_BENCH_SCALE=0.25 bench/files/run.sh    # a quarter of every dataset
#   FP_BENCH_ONLY="hash_d1 gzip_d4" bench/files/run.sh   # some groups only
#
# Builds file_processor in Release (build-bench-fp in the tree, or FP=path
# to use a binary), writes the datasets with gen.py into FP_BENCH_DATA
# (default /tmp/fp-bench; never the tree), warms the page cache, and runs
# each group with hyperfine (one warm-up, FP_BENCH_RUNS=5 runs, medians),
# every command pinned to CPUs 0 and 1 with taskset. Peak RSS and CPU
# seconds come from one more run under /usr/bin/time. Each group's outputs
# are checked against the peers' (digests, decompressed bytes) before it is
# timed. report.py turns the results into results.md (ratios against the
# peers of the same run) and plot.py draws throughput against workers.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${FP_BENCH_DATA:-/tmp/fp-bench}
scale=${FP_BENCH_SCALE:-1}
runs=${FP_BENCH_RUNS:-5}
out=${FP_BENCH_OUT:-$data/results}
only=${FP_BENCH_ONLY:-}
pin="taskset -c 0,1"

for t in hyperfine taskset openssl sha256sum hashdeep rhash b3sum xxhsum pigz zstd \
         libdeflate-gzip igzip python3; do
  command -v "$t" >/dev/null || { echo "run.sh: $t is missing (see scripts/setup.sh)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is missing (package time)" >&2; exit 1; }

if [ -z "${FP:-}" ]; then
  echo "== building file_processor (Release) in $root/build-bench-fp" >&2
  cmake -S "$root" -B "$root/build-bench-fp" -DCMAKE_BUILD_TYPE=Release \
    -DWEFT_BUILD_TESTS=OFF >/dev/null
  cmake --build "$root/build-bench-fp" -j2 --target file_processor >&2
  FP=$root/build-bench-fp/apps/file_processor/file_processor
fi
export WEFT_LOG_LEVEL=warn

echo "== datasets in $data (scale $scale); df -h:" >&2
mkdir -p "$data" "$out"
df -h "$data" | tail -1 >&2
python3 "$here/gen.py" "$data" "$scale"
cd "$data"
scratch=$data/scratch
mkdir -p "$scratch"
# A full run starts the records afresh; FP_BENCH_ONLY replaces the lines
# of the groups it runs and keeps the others.
if [ -z "$only" ]; then
  : > "$out/rss.txt"
  : > "$out/sizes.txt"
  : > "$out/checks.txt"
fi
touch "$out/rss.txt" "$out/sizes.txt" "$out/checks.txt"

# forget GROUP: drops GROUP's lines from the records before it runs again.
forget() {
  local f
  for f in rss.txt sizes.txt checks.txt; do
    grep -v -P "^([^\t]*\t)?$1\t" "$out/$f" > "$out/$f.tmp" || true
    mv "$out/$f.tmp" "$out/$f"
  done
}

want() {
  [ -z "$only" ] || [[ " $only " == *" $1 "* ]] || return 1
  local g
  case $1 in
    blake3) for g in blake3 blake3_d1 blake3_d2 blake3_d3 xxh128_d1; do forget $g; done ;;
    gzip_d4) forget gzip_d4; forget gunzip_d4 ;;
    zstd_d4) forget zstd_d4; forget unzstd_d4 ;;
    *) forget "$1" ;;
  esac
}

warm() { find "$@" -type f -print0 | xargs -0 cat > /dev/null; }

# bench GROUP LABEL CMD [LABEL CMD...]: times the commands with hyperfine and
# records peak RSS and CPU seconds of one more run of each.
bench() {
  local group=$1
  shift
  local args=()
  local labels=() cmds=()
  while [ $# -gt 0 ]; do
    labels+=("$1")
    cmds+=("$2")
    args+=(-n "$1" "$pin $2")
    shift 2
  done
  echo "== $group" >&2
  hyperfine --warmup 1 --runs "$runs" --export-json "$out/$group.json" --style basic \
    "${args[@]}" >&2
  for i in "${!cmds[@]}"; do
    /usr/bin/time -f "$group	${labels[$i]}	%M	%U	%S	%e" -a -o "$out/rss.txt" \
      sh -c "$pin ${cmds[$i]}" > /dev/null
  done
}

# same GROUP WHAT A B: records whether files A and B are equal.
same() {
  if cmp -s "$3" "$4"; then echo "ok	$1	$2" >> "$out/checks.txt"
  else echo "DIFFERENT	$1	$2" >> "$out/checks.txt"; echo "run.sh: $2 differs" >&2; fi
}

# sorted_sums FILE: "hash  path" lines sorted by path (for comparing tools
# that print in different orders).
sorted_sums() { LC_ALL=C sort -k2 "$1"; }

if want hash_d1; then
  warm D1
  $FP hash -j2 D1 > "$scratch/fp.sha256"
  sha256sum D1/* > "$scratch/ref.sha256"
  same hash_d1 "sha256 D1 = sha256sum" "$scratch/fp.sha256" "$scratch/ref.sha256"
  bench hash_d1 \
    "file_processor -j2" "$FP hash -j2 D1 > /dev/null" \
    "xargs -P2 openssl" "find D1 -type f -print0 | xargs -0 -P2 -n1 openssl dgst -sha256 > /dev/null" \
    "sha256sum" "sha256sum D1/* > /dev/null" \
    "hashdeep -j2" "hashdeep -j2 -c sha256 -r D1 > /dev/null" \
    "rhash" "rhash --sha256 -r D1 > /dev/null"
fi

if want hash_d3; then
  warm D3
  $FP hash -j2 D3 > "$scratch/fp3.sha256"
  find D3 -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > "$scratch/ref3.sha256"
  same hash_d3 "sha256 D3 = sha256sum" "$scratch/fp3.sha256" "$scratch/ref3.sha256"
  bench hash_d3 \
    "file_processor -j2" "$FP hash -j2 D3 > /dev/null" \
    "xargs -P2 openssl" "find D3 -type f -print0 | xargs -0 -P2 -n500 openssl dgst -sha256 > /dev/null" \
    "hashdeep -j2" "hashdeep -j2 -c sha256 -r D3 > /dev/null"
fi

if want blake3; then
  warm D1 D2 D3
  for d in D1 D2 D3; do
    $FP hash -a blake3 -j2 $d > "$scratch/fp.b3"
    find $d -type f -print0 | LC_ALL=C sort -z | xargs -0 b3sum > "$scratch/ref.b3"
    same blake3 "blake3 $d = b3sum" "$scratch/fp.b3" "$scratch/ref.b3"
    bench "blake3_$(echo $d | tr A-Z a-z)" \
      "file_processor -j2" "$FP hash -a blake3 -j2 $d > /dev/null" \
      "b3sum" "find $d -type f -print0 | xargs -0 b3sum > /dev/null"
  done
  $FP hash -a xxh128 -j2 D1 > "$scratch/fp.xxh"
  xxhsum -H2 D1/* > "$scratch/ref.xxh"
  same blake3 "xxh128 D1 = xxhsum -H2" "$scratch/fp.xxh" "$scratch/ref.xxh"
  bench xxh128_d1 \
    "file_processor -j2" "$FP hash -a xxh128 -j2 D1 > /dev/null" \
    "xxhsum -H2" "xxhsum -H2 D1/* > /dev/null"
fi

if want verify_d2; then
  warm D2
  $FP hash -j2 D2 -o "$scratch/d2.sha256"
  hashdeep -j2 -c sha256 -r D2 > "$scratch/d2.hashdeep"
  $FP verify -j2 -m "$scratch/d2.sha256" D2 && echo "ok	verify_d2	verify D2 exit 0" >> "$out/checks.txt"
  bench verify_d2 \
    "file_processor -j2" "$FP verify -j2 -m $scratch/d2.sha256 D2" \
    "hashdeep -j2 -a" "hashdeep -j2 -c sha256 -a -k $scratch/d2.hashdeep -r D2 > /dev/null"
fi

if want gzip_d4; then
  warm D4
  log=D4/log.jsonl
  $FP compress -j2 -l 6 -c $log > "$scratch/fp.gz"
  pigz -6 -p2 -c $log > "$scratch/pigz.gz"
  libdeflate-gzip -6 -c $log > "$scratch/ld.gz"
  igzip -3 -c $log > "$scratch/igzip.gz"
  gzip -dc "$scratch/fp.gz" > "$scratch/back" && same gzip_d4 "gzip -dc of file_processor's .gz" "$scratch/back" $log
  $FP decompress -c "$scratch/fp.gz" > "$scratch/back" && same gzip_d4 "decompress of own .gz" "$scratch/back" $log
  for f in fp pigz ld igzip; do
    echo "gzip_d4	$f	$(stat -c %s $log)	$(stat -c %s "$scratch/$f.gz")" >> "$out/sizes.txt"
  done
  bench gzip_d4 \
    "file_processor -j2 -l6" "$FP compress -j2 -l 6 -c $log > /dev/null" \
    "pigz -6 -p2" "pigz -6 -p2 -c $log > /dev/null" \
    "libdeflate-gzip -6" "libdeflate-gzip -6 -c $log > /dev/null" \
    "igzip -3" "igzip -3 -c $log > /dev/null"
  bench gunzip_d4 \
    "file_processor decompress -j2" "$FP decompress -j2 -c $scratch/fp.gz > /dev/null" \
    "pigz -d -p2" "pigz -d -p2 -c $scratch/fp.gz > /dev/null" \
    "libdeflate-gunzip" "libdeflate-gzip -d -c $scratch/fp.gz > /dev/null"
fi

if want zstd_d4; then
  warm D4
  log=D4/log.jsonl
  $FP compress --codec zstd -j2 -l 3 -c $log > "$scratch/fp.zst"
  zstd -q -3 -T2 -c $log > "$scratch/zstd.zst"
  zstd -q -dc "$scratch/fp.zst" > "$scratch/back" && same zstd_d4 "zstd -dc of file_processor's .zst" "$scratch/back" $log
  $FP decompress -c "$scratch/fp.zst" > "$scratch/back" && same zstd_d4 "decompress of own .zst" "$scratch/back" $log
  for f in fp zstd; do
    echo "zstd_d4	$f	$(stat -c %s $log)	$(stat -c %s "$scratch/$f.zst")" >> "$out/sizes.txt"
  done
  bench zstd_d4 \
    "file_processor -j2 -l3" "$FP compress --codec zstd -j2 -l 3 -c $log > /dev/null" \
    "zstd -3 -T2" "zstd -q -3 -T2 -c $log > /dev/null"
  bench unzstd_d4 \
    "file_processor decompress -j2" "$FP decompress -j2 -c $scratch/fp.zst > /dev/null" \
    "zstd -d" "zstd -q -d -c $scratch/fp.zst > /dev/null"
fi

if want workers; then
  warm D1 D4
  echo "== workers" >&2
  hyperfine --warmup 1 --runs 3 --style basic --export-json "$out/workers_sha256.json" \
    -P j 1 4 -n "sha256 D1 -j{j}" "$pin $FP hash -j{j} D1 > /dev/null" >&2
  hyperfine --warmup 1 --runs 3 --style basic --export-json "$out/workers_gzip.json" \
    -P j 1 4 -n "gzip D4 -j{j}" "$pin $FP compress -l 6 -j{j} -c D4/log.jsonl > /dev/null" >&2
fi

python3 "$here/report.py" "$out" "$data" > "$out/results.md"
python3 "$here/plot.py" "$out" "$out/workers.svg" "$data" || true
echo "== results in $out/results.md and $out/workers.svg" >&2
cat "$out/results.md"
