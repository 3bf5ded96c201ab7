#!/usr/bin/env bash
# run_stream_actor.sh: the stream and actor benchmarks against their peers.
#
# Builds bench/stream_handoff.c and bench/actor_tell.c (Release,
# WEFT_BUILD_BENCH=ON) and the Go peer bench/go/actor_ask.go (go build into a
# cache under /tmp, standard library only, no network), then runs them
# several times, alternating weft and Go so that both see the same machine,
# and prints the median of each figure with the ratio weft / peer and the
# targets. The results, with every raw measurement, go to
# BUILD/results/stream_actor.json.
#
# Usage: bench/run_stream_actor.sh [--quick]
#   --quick                   one run with shorter loops (a smoke test)
# Environment:
#   WEFT_BENCH_BUILD=DIR      build directory (default: build-bench)
#   WEFT_BENCH_RUNS=N         runs of each program (default: 5; the median wins)
#
# Needs: cmake, a C compiler, libuv, Go (golang-go) and python3. Without Go
# the Go rows are left empty.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_setup run_stream_actor.sh

runs=${WEFT_BENCH_RUNS:-5}
handoff_items=2000000
tell_msgs=5000000
asks=1000000

if [[ ${1:-} == --quick ]]; then
  runs=${WEFT_BENCH_RUNS:-1}
  handoff_items=200000
  tell_msgs=500000
  asks=100000
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/run_stream_actor.sh [--quick]" >&2
  exit 2
fi

# ---- Build -----------------------------------------------------------------

bench_cmake_build "weft benchmarks" weft_bench_stream_handoff weft_bench_actor_tell
stream_handoff=$build/bench/stream_handoff
actor_tell=$build/bench/actor_tell

go_peer=""
if bench_have_go "its peer"; then
  echo "== building the Go peer" >&2
  bench_go_build "$build/bench/go_actor_ask" "$root/bench/go/actor_ask.go"
  go_peer=$build/bench/go_actor_ask
fi

# ---- Run -------------------------------------------------------------------

results=$build/results
mkdir -p "$results"
raw=$results/stream_actor.raw.jsonl
: >"$raw"

load_before=$(bench_loadavg)

for run in $(seq 1 "$runs"); do
  echo "== run $run of $runs" >&2
  bench_record "$run" "$stream_handoff" "$handoff_items"
  bench_record "$run" "$actor_tell" tell "$tell_msgs"
  bench_record "$run" "$actor_tell" ask "$asks"
  if [[ -n $go_peer ]]; then
    for procs in 1 2; do
      bench_record "$run" env GOMAXPROCS=$procs "$go_peer" handoff -n "$handoff_items"
      bench_record "$run" env GOMAXPROCS=$procs "$go_peer" tell -n "$tell_msgs"
      bench_record "$run" env GOMAXPROCS=$procs "$go_peer" ask -n "$asks"
    done
  fi
done

load_after=$(bench_loadavg)

# ---- Report ----------------------------------------------------------------

bench_report "$raw" "$load_before" "$load_after" "$runs" \
  OUT="$results/stream_actor.json" <<'EOF'
table = []

# A side of a comparison: (bench, impl, match) or None. Each figure is taken
# twice: wall-clock time per operation (the latency a program sees) and CPU
# time per operation (what it costs, whatever else runs on the machine).
def figures(side, field):
    if side is None:
        return (None, 0), (None, 0)
    bench, impl, match = side
    return figure(bench, impl, field, **match), figure(bench, impl, "cpu_" + field, **match)

def add(name, unit, field, weft, peer_name, peer, target=None, limit=None):
    w, wc = figures(weft, field)
    p, pc = figures(peer, field)
    ratio = w[0] / p[0] if w[0] is not None and p[0] else None
    met = None
    if limit is not None and w[0] is not None:
        met = w[0] <= limit
    table.append({"benchmark": name, "unit": unit, "weft": w[0], "weft_cpu": wc[0],
                  "peer": peer_name, "peer_value": p[0], "peer_cpu": pc[0],
                  "ratio": ratio, "samples": w[1], "target": target, "met": met,
                  "met_cpu": (wc[0] <= limit) if limit is not None and wc[0] is not None else None})

H = "ns_per_item"
local1 = dict(mode="local", cap=1, executors=1)
spsc2 = dict(mode="spsc", cap=1, executors=2)
add("stream hand-off, blocked writer, local, cap 1", "ns/item", H,
    ("handoff", "stream", local1), "weft_chan local, cap 1", ("handoff", "chan", local1),
    "<= 200 ns", 200)
add("stream hand-off, blocked writer, local, cap 1", "ns/item", H,
    ("handoff", "stream", local1), "go chan cap 1, GOMAXPROCS=1",
    ("handoff", "go", dict(gomaxprocs=1)))
add("stream, local, cap 64 (writer seldom waits)", "ns/item", H,
    ("handoff", "stream", dict(mode="local", cap=64, executors=1)), "-", None)
add("stream hand-off, spsc, 2 executors, cap 1", "ns/item", H,
    ("handoff", "stream", spsc2), "weft_chan spsc, 2 executors", ("handoff", "chan", spsc2))
add("stream hand-off, spsc, 2 executors, cap 1", "ns/item", H,
    ("handoff", "stream", spsc2), "go chan cap 1, GOMAXPROCS=2",
    ("handoff", "go", dict(gomaxprocs=2)))

O = "ns_per_op"
def actor(bench, mailbox, executors):
    return (bench, "weft_actor", dict(mailbox=mailbox, executors=executors))
def go(bench, procs):
    return (bench, "go", dict(gomaxprocs=procs))
add("actor tell -> behaviour, local mailbox", "ns/msg", O, actor("tell", "local", 1),
    "weft_chan local (floor)", ("tell", "weft_chan", dict(mailbox="local", executors=1)),
    "<= 50 ns", 50)
add("actor tell -> behaviour, local mailbox", "ns/msg", O, actor("tell", "local", 1),
    "go chan 1024, GOMAXPROCS=1", go("tell", 1))
add("actor tell -> behaviour, shared mailbox", "ns/msg", O, actor("tell", "shared", 1),
    "go chan 1024, GOMAXPROCS=1", go("tell", 1))
add("actor tell, shared, 2 executors", "ns/msg", O, actor("tell", "shared", 2),
    "go chan 1024, GOMAXPROCS=2", go("tell", 2))
add("actor ask round trip, local mailbox", "ns/ask", O, actor("ask", "local", 1),
    "go request/reply, GOMAXPROCS=1", go("ask", 1))
add("actor ask round trip, shared mailbox", "ns/ask", O, actor("ask", "shared", 1),
    "go request/reply, GOMAXPROCS=1", go("ask", 1))
add("actor ask round trip, 2 executors", "ns/ask", O, actor("ask", "shared", 2),
    "go request/reply, GOMAXPROCS=2", go("ask", 2))

print_machine()
print(f"median of up to {os.environ['RUNS']} runs; wall = wall-clock ns per operation, "
      f"cpu = process CPU ns per operation; ratio = weft / peer, wall (below 1: weft is faster)")
print()
hdr = (f"{'benchmark':46} {'unit':8} {'weft':>9} {'(cpu)':>9}  {'peer':30} {'peer':>9} "
       f"{'(cpu)':>9} {'ratio':>6}  {'target':10} met")
print(hdr)
print("-" * len(hdr))
for t in table:
    met = "-" if t["met"] is None else ("yes" if t["met"] else "NO")
    if t["met"] is False and t["met_cpu"]:
        met = "NO (cpu: yes)"
    print(f"{t['benchmark']:46} {t['unit']:8} {fmt(t['weft'], 1):>9} {fmt(t['weft_cpu'], 1):>9}  "
          f"{t['peer']:30} {fmt(t['peer_value'], 1):>9} {fmt(t['peer_cpu'], 1):>9} "
          f"{fmt(t['ratio'], 2):>6}  {t['target'] or '':10} {met}")

write_json(os.environ["OUT"], table)
print()
print(f"written: {os.environ['OUT']}")
EOF
