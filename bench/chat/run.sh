#!/usr/bin/env bash
# run.sh: the chat server benchmark. apps/chat_server against broadcast
# servers of the same shape written the usual way in other stacks, each
# with one server thread pinned to the same core, driven by the same load
# generator (chat_loadgen: libuv, C) pinned to the other core:
#
#   peers: Node with ws (Debian node-ws), Go with gorilla/websocket's hub
#   (Debian golang-github-gorilla-websocket-dev, GOMAXPROCS=1), Python with
#   websockets (Debian python3-websockets); uWebSockets when UWS_DIR names
#   a built source tree (not done by this script yet: see README).
#
#   fanout: CLIENTS WebSocket clients in one room, SENDERS of them sending
#     RATE messages per second in total; reports delivered messages per
#     second and per CPU-second of the server, latency p50/p99/p99.9, gaps,
#     the server's RSS, and whether the load generator itself was saturated
#     (above 70 % CPU: such a run does not count);
#   idle: IDLE connections that send nothing: the server's RSS per
#     connection.
#
# Servers are run in turn, RUNS times each, alternating, so each sees the
# same machine. Raw rows go to BUILD/results/chat.raw.jsonl and a summary
# with the ratios chat_server / peer to stdout and BUILD/results/chat.json.
# The machine is shared and noisy: read the load average printed with the
# figures.
#
# Usage: bench/chat/run.sh [--quick]
# Environment: WEFT_BENCH_BUILD (default build-bench), WEFT_BENCH_RUNS (3),
#   WEFT_BENCH_DURATION (5), CHAT_CLIENTS (1000), CHAT_SENDERS (10),
#   CHAT_RATE (20), CHAT_SIZE (64), CHAT_IDLE (10000), CHAT_BASELINE (the
#   path of another chat_server binary, e.g. one built from an earlier
#   commit outside the tree: run as chat_server_base in the same rounds)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/chat
build=${WEFT_BENCH_BUILD:-$root/build-bench}
runs=${WEFT_BENCH_RUNS:-3}
duration=${WEFT_BENCH_DURATION:-5}
clients=${CHAT_CLIENTS:-1000}
senders=${CHAT_SENDERS:-10}
rate=${CHAT_RATE:-20}
size=${CHAT_SIZE:-64}
idle=${CHAT_IDLE:-10000}
warmup=1
if [[ ${1:-} == --quick ]]; then
  runs=1; duration=2; warmup=0.5; clients=${CHAT_CLIENTS:-200}; idle=${CHAT_IDLE:-2000}
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/chat/run.sh [--quick]" >&2
  exit 2
fi
ulimit -n "$(ulimit -Hn)"
# Debian's interpreter, which has python3-websockets.
py=/usr/bin/python3
[[ -x $py ]] || py=python3

echo "== building in $build (Release)" >&2
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_BENCH=ON \
  -DWEFT_BUILD_APPS=ON -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 --target chat_server chat_loadgen >&2
chat=$build/apps/chat_server/chat_server
loadgen=$build/bench/chat/chat_loadgen

# The Go peer is built outside the tree, against Debian's gorilla sources.
gotmp=${TMPDIR:-/tmp}/weft-bench-chat-go
gohub=""
if command -v go >/dev/null && [[ -d /usr/share/gocode/src/github.com/gorilla/websocket ]]; then
  mkdir -p "$gotmp/cache"
  (cd "$here/peers/gohub" && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE=$gotmp/cache \
     GOFLAGS='' GOPROXY=off go build -o "$gotmp/gohub" .) && gohub=$gotmp/gohub
fi

results=$build/results
mkdir -p "$results"
raw=$results/chat.raw.jsonl
: >"$raw"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# start NAME CMD...: starts a server pinned to core 0 and sets pid and port.
start() {
  local name=$1 log=$results/chat.$1.log
  shift
  taskset -c 0 "$@" >/dev/null 2>"$log" &
  pid=$!
  port=""
  for _ in $(seq 200); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | tail -1 | cut -d: -f2 || true)
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { echo "run.sh: $name did not start" >&2; cat "$log" >&2; return 1; }
}

stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

# measure NAME PROTO SCENARIO ARGS...: one run of the load generator on core 1.
measure() {
  local name=$1 proto=$2 scenario=$3 run=$4
  shift 4
  local out
  out=$(taskset -c 1 "$loadgen" --port "$port" --proto "$proto" --server-pid "$pid" \
          --warmup "$warmup" --duration "$duration" "$@" || true)
  [[ -n $out ]] && printf '%s\n' "$out" | sed "s/^{/{\"impl\":\"$name\",\"scenario\":\"$scenario\",\"run\":$run,/" >>"$raw"
}

# launch NAME: starts the server NAME (see start).
launch() {
  case $1 in
    chat_server|chat_server_base)
                 bin=$chat
                 [[ $1 == chat_server_base ]] && bin=$CHAT_BASELINE
                 start "$1" "$bin" --executors 1 --listen 127.0.0.1:0 \
                   --http-listen 127.0.0.1:0 --rate 0 --max-queue 4096 \
                   --max-connections $((idle + 1000)) ;;
    node_ws) start "$1" env NODE_PATH=/usr/share/nodejs node "$here/peers/node_ws.js" 0 ;;
    go_gorilla) start "$1" env GOMAXPROCS=1 "$gohub" 0 ;;
    python_websockets) start "$1" "$py" "$here/peers/py_websockets.py" 0 ;;
  esac
}

servers=(chat_server node_ws go_gorilla python_websockets)
[[ -n $gohub ]] || servers=(chat_server node_ws python_websockets)
[[ -n ${CHAT_BASELINE:-} ]] && servers=(chat_server chat_server_base "${servers[@]:1}")
for run in $(seq "$runs"); do
  for s in "${servers[@]}"; do
    proto=raw
    [[ $s == chat_server* ]] && proto=chat
    echo "== run $run: $s: fan-out, $clients clients, $senders senders, $rate msg/s" >&2
    launch "$s" || continue
    measure "$s" "$proto" fanout "$run" --clients "$clients" --senders "$senders" \
      --rate "$rate" --size "$size"
    stop
    echo "== run $run: $s: $idle idle connections" >&2
    launch "$s" || continue
    measure "$s" "$proto" idle "$run" --clients "$idle" --senders 1 --rate 0
    stop
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

RAW=$raw LOAD_BEFORE=$load_before LOAD_AFTER=$load_after OUT=$results/chat.json \
CMD="bench/chat/run.sh $*" python3 - <<'PY'
import json, os, statistics
rows = [json.loads(l) for l in open(os.environ["RAW"]) if l.strip()]
def med(impl, scenario, field):
    v = [r[field] for r in rows if r["impl"] == impl and r["scenario"] == scenario
         and not r.get("loadgen_saturated")]
    return statistics.median(v) if v else None
impls = []
for r in rows:
    if r["impl"] not in impls:
        impls.append(r["impl"])
table = {}
for i in impls:
    table[i] = {f: med(i, "fanout", f) for f in
                ("delivered_per_s", "delivered_per_cpu_s", "p50_us", "p99_us", "p999_us",
                 "gaps", "loadgen_cpu_pct", "expected_per_s")}
    table[i]["idle_rss_per_conn_bytes"] = med(i, "idle", "rss_per_conn_bytes")
    table[i]["idle_rss_kib"] = med(i, "idle", "server_rss_kib")
def f(v, d=0):
    return "-" if v is None else f"{v:,.{d}f}"
print()
print("command: " + os.environ["CMD"])
print("load average before: %s, after: %s (a shared machine: noisy)" %
      (os.environ["LOAD_BEFORE"], os.environ["LOAD_AFTER"]))
print("%-18s %12s %14s %9s %9s %10s %6s %12s %10s" % ("server", "deliv/s", "deliv/CPU-s",
      "p50 us", "p99 us", "p99.9 us", "gaps", "idle B/conn", "lg CPU %"))
for i in impls:
    t = table[i]
    print("%-18s %12s %14s %9s %9s %10s %6s %12s %10s" % (i, f(t["delivered_per_s"]),
          f(t["delivered_per_cpu_s"]), f(t["p50_us"]), f(t["p99_us"]), f(t["p999_us"]),
          f(t["gaps"]), f(t["idle_rss_per_conn_bytes"]), f(t["loadgen_cpu_pct"], 1)))
base = table.get("chat_server", {}).get("delivered_per_cpu_s")
print()
for i in impls:
    if i != "chat_server" and base and table[i]["delivered_per_cpu_s"]:
        print("chat_server / %s, delivered per CPU-second: %.2fx" %
              (i, base / table[i]["delivered_per_cpu_s"]))
json.dump({"command": os.environ["CMD"], "table": table, "rows": rows},
          open(os.environ["OUT"], "w"), indent=1)
PY
