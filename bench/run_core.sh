#!/usr/bin/env bash
# run_core.sh: the benchmarks of the weft core against their peers.
#
# Builds weft's benchmarks (Release, WEFT_BUILD_BENCH=ON), the Boost.Context
# peer (through the same CMake build) and the Go peer (go build into a cache
# under /tmp, standard library only, no network), then runs every pair
# several times, alternating weft and its peer so that both see the same
# machine, and prints the median of each figure with the ratio weft / peer.
# The results, with every raw measurement, go to BUILD/results/core.json
# (core-quick.json for --quick).
#
# Usage: bench/run_core.sh [--quick]
#   --quick                   fewer runs and shorter loops (a smoke test)
# Environment:
#   WEFT_BENCH_BUILD=DIR      build directory (default: build-bench)
#   WEFT_BENCH_RUNS=N         runs of each pair (default: 5; the median wins)
#   WEFT_BENCH_MEM_TASKS=N    sleeping tasks in the memory test (default: 100000)
#
# Needs: cmake, a C and C++ compiler, libuv, libboost-context-dev, Go
# (golang-go) and python3. A missing peer is reported and its rows skipped.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_setup run_core.sh

runs=${WEFT_BENCH_RUNS:-5}
mem_tasks=${WEFT_BENCH_MEM_TASKS:-100000}
spawn_ops=2000000
switches=20000000
checks=200000000
batches="1 100 1000"
name=core

if [[ ${1:-} == --quick ]]; then
  runs=${WEFT_BENCH_RUNS:-1}
  spawn_ops=200000
  switches=2000000
  checks=20000000
  mem_tasks=${WEFT_BENCH_MEM_TASKS:-10000}
  # A smoke test must not overwrite the last real measurement.
  name=core-quick
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/run_core.sh [--quick]" >&2
  exit 2
fi

# ---- Build -----------------------------------------------------------------

bench_cmake_build "weft benchmarks" weft_bench_weft_core weft_bench_weft_ctx_raw
weft_core=$build/bench/weft_core
weft_ctx_raw=$build/bench/weft_ctx_raw

# The Boost peer is optional in the CMake build: it exists only when
# libboost-context-dev was found.
boost_switch=""
if cmake --build "$build" -j2 --target weft_bench_boost_switch >&2 2>/dev/null; then
  boost_switch=$build/bench/boost_switch
else
  echo "run_core.sh: no Boost.Context (libboost-context-dev): skipping its peer" >&2
fi

go_core=""
if bench_have_go "its peer"; then
  echo "== building the Go peer" >&2
  bench_go_build "$build/bench/go_core" "$root/bench/go/core.go"
  go_core=$build/bench/go_core
fi

# ---- Run -------------------------------------------------------------------

results=$build/results
mkdir -p "$results"
raw=$results/$name.raw.jsonl
: >"$raw"

load_before=$(bench_loadavg)

for run in $(seq 1 "$runs"); do
  echo "== run $run of $runs" >&2
  for batch in $batches; do
    bench_record "$run" "$weft_core" spawn "$batch" "$spawn_ops"
    if [[ -n $go_core ]]; then
      bench_record "$run" env GOMAXPROCS=1 "$go_core" spawn -batch "$batch" -ops "$spawn_ops"
      bench_record "$run" env -u GOMAXPROCS "$go_core" spawn -batch "$batch" -ops "$spawn_ops"
    fi
  done
  bench_record "$run" "$weft_core" switch "$switches"
  bench_record "$run" "$weft_ctx_raw" "$switches"
  if [[ -n $boost_switch ]]; then
    bench_record "$run" "$boost_switch" "$switches"
  fi
  bench_record "$run" "$weft_core" cancelled "$checks"
  # The memory pair is slower and steadier: three runs are enough.
  if ((run <= 3)); then
    bench_record "$run" "$weft_core" memory "$mem_tasks"
    if [[ -n $go_core ]]; then
      bench_record "$run" "$go_core" memory -tasks "$mem_tasks"
    fi
  fi
done

load_after=$(bench_loadavg)

# ---- Report ----------------------------------------------------------------

boost_version=$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' \
  /usr/include/boost/version.hpp 2>/dev/null || true)

bench_report "$raw" "$load_before" "$load_after" "$runs" OUT="$results/$name.json" \
  BOOST_VERSION="${boost_version:-none}" <<'EOF'
table = []

def add(name, unit, weft, peer_name, peer, target=None, met=None):
    ratio = weft[0] / peer[0] if weft[0] is not None and peer[0] else None
    table.append({"benchmark": name, "unit": unit,
                  "weft": weft[0], "peer": peer_name, "peer_value": peer[0],
                  "ratio": ratio, "samples": min(weft[1], peer[1]) if peer[1] else weft[1],
                  "target": target, "met": met})

for batch in sorted({r["batch"] for r in rows if r["bench"] == "spawn"}):
    w = figure("spawn", "weft", "ns_per_op", batch=batch)
    for procs in (1, 2):
        g = figure("spawn", "go", "ns_per_op", batch=batch, gomaxprocs=procs)
        if g[0] is None and procs != 1:
            continue
        target = "<= 50 ns" if batch >= 100 else None
        met = (w[0] <= 50) if target and w[0] is not None else None
        add(f"spawn+join, batch {batch}", "ns/op", w,
            f"go GOMAXPROCS={procs}", g, target, met)

w = figure("switch", "weft_yield", "ns_per_switch")
b = figure("switch", "boost_fiber", "ns_per_switch")
met = None
if w[0] is not None:
    met = w[0] <= 10 and (b[0] is None or w[0] <= 1.5 * b[0])
add("context switch, weft_yield", "ns/switch", w, "boost::context::fiber", b,
    "<= 1.5x peer and <= 10 ns", met)
add("context switch, bare", "ns/switch", figure("switch", "weft_ctx_raw", "ns_per_switch"),
    "boost jump_fcontext", figure("switch", "boost_fcontext", "ns_per_switch"))

w = figure("cancelled", "weft", "ns_per_check")
add("weft_cancelled() check", "ns/check", w, "volatile read loop",
    figure("cancelled", "volatile_read", "ns_per_check"), "<= 2 ns",
    (w[0] <= 2) if w[0] is not None else None)
add("weft_cancelled(), nested scopes", "ns/check",
    figure("cancelled", "weft", "scoped_ns_per_check"), "volatile read loop",
    figure("cancelled", "volatile_read", "ns_per_check"))

add("memory per sleeping task", "KiB/task", figure("memory", "weft", "kib_per_task"),
    "go time.Sleep", figure("memory", "go", "kib_per_task"))
add("start of a sleeping task, cold", "ns/task",
    figure("memory", "weft", "spawn_ns_per_task"),
    "go time.Sleep", figure("memory", "go", "spawn_ns_per_task"))

print_machine()
print(f"median of up to {os.environ['RUNS']} runs; ratio = weft / peer (below 1: weft is faster or smaller)")
print()
hdr = f"{'benchmark':34} {'unit':10} {'weft':>9}  {'peer':24} {'peer':>9} {'ratio':>6}  {'target':26} met"
print(hdr)
print("-" * len(hdr))
for t in table:
    met = "-" if t["met"] is None else ("yes" if t["met"] else "NO")
    print(f"{t['benchmark']:34} {t['unit']:10} {fmt(t['weft']):>9}  {t['peer']:24} "
          f"{fmt(t['peer_value']):>9} {fmt(t['ratio']):>6}  {t['target'] or '':26} {met}")

mem = [r for r in rows if r["bench"] == "memory" and r["impl"] == "weft" and r.get("error")]
for r in mem:
    print(f"note: weft memory run {r['run']} stopped after {r['tasks']} tasks: {r['error']}")

write_json(os.environ["OUT"], table)
print()
print(f"written: {os.environ['OUT']}")
EOF
