#!/usr/bin/env bash
# run.sh: the chat server benchmark. apps/chat_server against broadcast
# servers of the same shape written the usual way in other stacks, each
# with one server thread pinned to the same core, driven by the same load
# generator (chat_loadgen: libuv, C) pinned to the other core:
#
#   peers: Node with ws (Debian node-ws), Go with gorilla/websocket's hub
#   (Debian golang-github-gorilla-websocket-dev, GOMAXPROCS=1), Python with
#   websockets (Debian python3-websockets); uWebSockets (C++, one topic
#   that every client subscribes to: peers/uws_broadcast.cpp) when UWS_DIR
#   names a uWebSockets source tree with uSockets in UWS_DIR/uSockets
#   (github.com/uNetworking/uWebSockets, cloned outside this tree; its
#   uSockets.a is made there when missing, without TLS, and the peer is
#   built under TMPDIR).
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
# More scenarios, named on the command line (each prints its own table and
# appends its rows to BUILD/results/chat.scenarios.jsonl):
#
#   sweep: the fan-out room raised step by step (open loop: CHAT_SWEEP
#     messages per second, each to CLIENTS members) until p99 passes
#     250 ms, for chat_server and each peer; the peak is the last rate
#     under it, and the p99 at half that rate is measured again;
#   slow: chat_server's fan-out with and without CHAT_SLOW receivers that
#     never read (--max-queue 1024 cuts them off): the others' p99;
#   drop: 10 % of the receivers close their connection in the middle of
#     the run and come back 200 ms later, joining with since their last
#     seq: gaps must be 0;
#   idle: for each server, CHAT_IDLE_STEPS (default 1000 5000 10000)
#     WebSocket connections that send nothing once they are in (chat
#     clients say hello), each count a fresh server: its resident memory
#     (RSS, baseline included) and the bytes per connection, both over
#     all connections and between the smallest and the largest count;
#   store: chat_server with --store on a file in a temporary directory,
#     CHAT_STORE_CLIENTS clients each alone in its room sending at
#     CHAT_STORE_RATE messages per second in total: acked (committed)
#     messages per second, next to the same load without --store.
#
# Usage: bench/chat/run.sh [--quick] [fanout] [sweep] [slow] [drop] [idle] [store]
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
scenarios=()
for a in "$@"; do
  case $a in
    --quick) runs=1; duration=2; warmup=0.5; clients=${CHAT_CLIENTS:-200}; idle=${CHAT_IDLE:-2000} ;;
    fanout|sweep|slow|drop|idle|store) scenarios+=("$a") ;;
    *) echo "usage: bench/chat/run.sh [--quick] [fanout] [sweep] [slow] [drop] [idle] [store]" >&2
       exit 2 ;;
  esac
done
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(fanout)
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

# The uWebSockets peer, built outside the tree from UWS_DIR.
uws=""
if [[ -n ${UWS_DIR:-} ]]; then
  uwstmp=${TMPDIR:-/tmp}/weft-bench-chat-uws
  mkdir -p "$uwstmp"
  [[ -f $UWS_DIR/uSockets/uSockets.a ]] || make -C "$UWS_DIR/uSockets" WITH_LTO=0 >&2
  g++ -std=c++20 -O2 -DLIBUS_NO_SSL -DUWS_NO_ZLIB -I"$UWS_DIR/src" -I"$UWS_DIR/uSockets/src" \
    "$here/peers/uws_broadcast.cpp" "$UWS_DIR/uSockets/uSockets.a" -lz \
    -o "$uwstmp/uws_broadcast" >&2 && uws=$uwstmp/uws_broadcast
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

# launch NAME [ARGS...]: starts the server NAME (see start); ARGS go to
# chat_server.
launch() {
  local name=$1
  shift
  case $name in
    chat_server|chat_server_base)
                 bin=$chat
                 [[ $name == chat_server_base ]] && bin=$CHAT_BASELINE
                 start "$name" "$bin" --executors 1 --listen 127.0.0.1:0 \
                   --http-listen 127.0.0.1:0 --rate 0 --max-queue 4096 \
                   --max-connections $((idle + 1000)) "$@" ;;
    node_ws) start "$name" env NODE_PATH=/usr/share/nodejs node "$here/peers/node_ws.js" 0 ;;
    go_gorilla) start "$name" env GOMAXPROCS=1 "$gohub" 0 ;;
    python_websockets) start "$name" "$py" "$here/peers/py_websockets.py" 0 ;;
    uws) start "$name" "$uws" 0 ;;
  esac
}

servers=(chat_server node_ws go_gorilla python_websockets)
[[ -n $gohub ]] || servers=(chat_server node_ws python_websockets)
[[ -n $uws ]] && servers+=(uws)
[[ -n ${CHAT_BASELINE:-} ]] && servers=(chat_server chat_server_base "${servers[@]:1}")

scen=$results/chat.scenarios.jsonl
: >"$scen"
# one NAME SCENARIO PROTO LOADGEN_ARGS... -- SERVER_ARGS...: launches NAME
# with SERVER_ARGS, runs the load generator once, records the row (with
# "label": $label) in $scen and prints it.
one() {
  local name=$1 scenario=$2 proto=$3
  shift 3
  local lg=()
  while [[ $# -gt 0 && $1 != -- ]]; do lg+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  launch "$name" "$@" || return 0
  local out
  out=$(taskset -c 1 "$loadgen" --port "$port" --proto "$proto" --server-pid "$pid" \
          --warmup "$warmup" --duration "$duration" "${lg[@]}" || true)
  stop
  [[ -n $out ]] || return 0
  out=$(printf '%s\n' "$out" | sed "s|^{|{\"impl\":\"$name\",\"scenario\":\"$scenario\",\"label\":\"${label:-}\",|")
  printf '%s\n' "$out" >>"$scen"
  printf '%s\n' "$out"
}

# Prints the fields of each JSON row on stdin as a table row.
row() {
  python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print("%-12s %-10s %-22s %10.0f %12.0f %10.1f %10.1f %6d %9.0f %8s %6.1f" % (
        r["impl"], r["scenario"], r.get("label", ""), r.get("expected_per_s", 0),
        r["delivered_per_s"], r["p50_us"] / 1000, r["p99_us"] / 1000, r["gaps"],
        r.get("acks_per_s", 0), "%d/%d" % (r.get("resumed", 0), r.get("dropped", 0)),
        r["loadgen_cpu_pct"]))'
}

header() {
  printf '%-12s %-10s %-22s %10s %12s %10s %10s %6s %9s %8s %6s\n' server scenario label \
    offered/s delivered/s "p50 ms" "p99 ms" gaps acks/s resumed "lg %"
}

run_sweep() {
  local rates=(${CHAT_SWEEP:-5 10 20 40 80 160 320})
  header
  for s in "${servers[@]}"; do
    [[ $s == python_websockets || $s == chat_server_base ]] && continue
    local proto=raw peak=""
    [[ $s == chat_server* ]] && proto=chat
    for r in "${rates[@]}"; do
      label="rate $r" out=$(one "$s" sweep "$proto" --clients "$clients" --senders "$senders" \
                               --rate "$r" --size "$size")
      [[ -n $out ]] || break
      printf '%s\n' "$out" | row
      local ok
      ok=$(printf '%s\n' "$out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print(1 if r["p99_us"] < 250000 and r["delivered_per_s"] >= 0.9 * r["expected_per_s"] else 0)')
      [[ $ok == 1 ]] || break
      peak=$r
    done
    if [[ -n $peak ]]; then
      local half
      half=$(python3 -c "print($peak / 2)")
      label="half of peak $peak" out=$(one "$s" sweep_half "$proto" --clients "$clients" \
                                        --senders "$senders" --rate "$half" --size "$size")
      [[ -n $out ]] && printf '%s\n' "$out" | row
    fi
  done
}

run_slow() {
  local slow=${CHAT_SLOW:-10}
  header
  for run in $(seq "$runs"); do
    for k in 0 "$slow"; do
      label="$k slow, run $run" one chat_server slow chat --clients "$clients" \
        --senders "$senders" --rate "$rate" --size "$size" --slow "$k" -- \
        --max-queue 1024 | row
    done
  done
}

run_drop() {
  header
  for run in $(seq "$runs"); do
    label="10% dropped, run $run" one chat_server drop chat --clients "$clients" \
      --senders "$senders" --rate "$rate" --size "$size" --drop 0.1 --drop-at 1 \
      --drop-ms 200 | row
  done
}

run_idle() {
  local steps=(${CHAT_IDLE_STEPS:-1000 5000 10000})
  local rows
  rows=$(mktemp)
  for s in "${servers[@]}"; do
    local proto=raw
    [[ $s == chat_server* ]] && proto=chat
    for n in "${steps[@]}"; do
      idle=$n label="$n idle" one "$s" idle "$proto" --clients "$n" --senders 1 \
        --rate 0 >>"$rows"
    done
  done
  python3 - "$rows" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("%-18s %8s %8s %10s %12s" % ("server", "clients", "ready", "RSS KiB", "bytes/conn"))
by = {}
for r in rows:
    print("%-18s %8d %8d %10d %12.0f" % (r["impl"], r["clients"], r["ready"], r["server_rss_kib"],
                                         r["rss_per_conn_bytes"]))
    by.setdefault(r["impl"], []).append(r)
print()
base = None
for impl, rs in by.items():
    rs.sort(key=lambda r: r["clients"])
    lo, hi = rs[0], rs[-1]
    if hi["ready"] > lo["ready"]:
        d = (hi["server_rss_kib"] - lo["server_rss_kib"]) * 1024 / (hi["ready"] - lo["ready"])
        print("%-18s %.0f bytes per added connection (%d -> %d)" % (impl, d, lo["ready"], hi["ready"]))
        if impl == "chat_server":
            base = d
        elif base:
            print("%-18s chat_server uses %.2fx of its memory per connection" % ("", base / d))
PY
  rm -f "$rows"
}

run_store() {
  local n=${CHAT_STORE_CLIENTS:-200} srate=${CHAT_STORE_RATE:-20000 50000 80000}
  local tmp
  tmp=$(mktemp -d)
  header
  for r in $srate; do
    for mode in store memory; do
      rm -f "$tmp"/chat.db*
      local extra=()
      [[ $mode == store ]] && extra=(--store "$tmp/chat.db")
      label="$mode, $r msg/s" one chat_server store chat --clients "$n" --senders "$n" \
        --rooms "$n" --rate "$r" --size "$size" -- "${extra[@]}" | row
    done
  done
  rm -rf "$tmp"
}

for sc in "${scenarios[@]}"; do
  case $sc in
    sweep) echo "== sweep: $clients clients in one room, $senders senders" >&2; run_sweep ;;
    slow) echo "== slow consumers: $clients clients, $rate msg/s" >&2; run_slow ;;
    drop) echo "== drop and resume: $clients clients, $rate msg/s" >&2; run_drop ;;
    idle) echo "== idle connections: resident memory" >&2; run_idle ;;
    store) echo "== store: acked messages per second" >&2; run_store ;;
  esac
done
[[ " ${scenarios[*]} " == *" fanout "* ]] || exit 0

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
