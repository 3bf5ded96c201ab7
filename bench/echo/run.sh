#!/usr/bin/env bash
# run.sh: the echo server benchmarks. weft's apps/echo_server against an
# echo server on raw libuv callbacks (the floor for weft's overhead) and one
# on Go's net package, all driven by the same load generator (libuv, C):
#
#   messages per second, 100 and 1,000 connections, 64-byte messages, one in
#     flight per connection: echo_server with 1 and 2 executors, raw libuv
#     with 1 and 2 loops, Go with GOMAXPROCS 1 and 2;
#   new connections per second (connect, echo 64 bytes, close);
#   resident memory (VmRSS) of each server holding 10,000 idle connections.
#
# Runs alternate between the servers so that each sees the same machine; the
# median of the runs is reported, with the ratios weft / raw libuv and
# weft / Go and whether the targets are met. Raw results go to
# BUILD/results/echo.raw.jsonl, the summary to BUILD/results/echo.json.
#
# Usage: bench/echo/run.sh [--quick]
#   --quick                     one short run of everything (a smoke test)
# Environment:
#   WEFT_BENCH_BUILD=DIR        build directory (default: build-bench)
#   WEFT_BENCH_RUNS=N           runs of each figure (default: 3)
#   WEFT_BENCH_DURATION=S       seconds measured per run (default: 5)
#   WEFT_BENCH_IDLE=N           idle connections in the memory test (default: 10000)
#   WEFT_BENCH_IDLE_PROCS=N     load generator processes holding them (default:
#                               as few as the open files limit allows)
#   WEFT_BENCH_LOADGEN_THREADS=N  load generator threads (default: 1)
#
# Needs: cmake, a C compiler, libuv, python3; Go (golang-go) for its peer,
# which is skipped when missing. Everything runs on 127.0.0.1.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${WEFT_BENCH_BUILD:-$root/build-bench}
runs=${WEFT_BENCH_RUNS:-3}
duration=${WEFT_BENCH_DURATION:-5}
idle=${WEFT_BENCH_IDLE:-10000}
lg_threads=${WEFT_BENCH_LOADGEN_THREADS:-1}
warmup=1
if [[ ${1:-} == --quick ]]; then
  runs=1
  duration=2
  warmup=0.5
  idle=${WEFT_BENCH_IDLE:-2000}
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/echo/run.sh [--quick]" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "run.sh: python3 is needed" >&2; exit 1; }

# ---- Build -----------------------------------------------------------------

echo "== building in $build (Release)" >&2
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_BENCH=ON \
  -DWEFT_BUILD_APPS=ON -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 --target echo_server echo_loadgen uv_echo_server >&2
echo_server=$build/apps/echo_server/echo_server
loadgen=$build/bench/echo/echo_loadgen
uv_server=$build/bench/echo/uv_echo_server

go_server=""
if command -v go >/dev/null; then
  # A cache of its own under /tmp keeps the build away from the user's Go
  # setup; the program uses the standard library only, so nothing is fetched.
  gotmp=${TMPDIR:-/tmp}/weft-bench-go
  mkdir -p "$gotmp/gopath" "$gotmp/cache"
  echo "== building the Go peer" >&2
  GOPATH=$gotmp/gopath GOCACHE=$gotmp/cache GOFLAGS= GOPROXY=off \
    go build -o "$build/bench/echo/go_echo_server" "$root/bench/echo/go/echo_server.go"
  go_server=$build/bench/echo/go_echo_server
else
  echo "run.sh: no Go toolchain (golang-go): skipping its peer" >&2
fi

# 10,000 connections take 10,000 descriptors in the server, and as many in
# the load generators (spread over several processes if need be).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < idle + 100)); then
  echo "run.sh: the open files limit ($(ulimit -n)) is below $((idle + 100)):" \
       "the memory test uses $(($(ulimit -n) - 100)) connections" >&2
  idle=$(($(ulimit -n) - 100))
fi

# ---- Servers ---------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-echo-bench.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# server_cmd NAME: the command line (with env) of a server by name.
server_cmd() {
  local common=(--listen 127.0.0.1:0 --stats-interval-ms 0 --idle-timeout-ms 0
                --max-connections $((idle + 1000)) --backlog 4096 --log-level info)
  case $1 in
    weft-e1) echo "$echo_server ${common[*]} --executors 1" ;;
    weft-e2) echo "$echo_server ${common[*]} --executors 2" ;;
    libuv-t1) echo "$uv_server --threads 1" ;;
    libuv-t2) echo "$uv_server --threads 2" ;;
    go-p1) echo "env GOMAXPROCS=1 $go_server" ;;
    go-p2) echo "env GOMAXPROCS=2 $go_server" ;;
  esac
}

# start_server NAME: starts it, sets server_pid and server_port.
start_server() {
  local cmd
  cmd=$(server_cmd "$1")
  # The previous server's log must not be read for this one's port.
  rm -f "$tmp/server.err"
  # shellcheck disable=SC2086
  $cmd 2>"$tmp/server.err" >/dev/null &
  server_pid=$!
  server_port=""
  for _ in $(seq 200); do
    server_port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$tmp/server.err" 2>/dev/null |
                  head -n 1 | cut -d: -f2 || true)
    [[ -n $server_port ]] && break
    sleep 0.05
  done
  if [[ -z $server_port ]]; then
    echo "run.sh: $1 did not start:" >&2
    cat "$tmp/server.err" >&2
    exit 1
  fi
  # With `env`, the server is the child of the process we started.
  local child
  child=$(pgrep -P "$server_pid" || true)
  server_rss_pid=${child:-$server_pid}
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_rss_pid/status"; }

servers=(weft-e1 weft-e2 libuv-t1 libuv-t2)
[[ -n $go_server ]] && servers+=(go-p1 go-p2)

results=$build/results
mkdir -p "$results"
raw=$results/echo.raw.jsonl
: >"$raw"

# The server's CPU time so far, in nanoseconds, all threads: on a shared
# machine, CPU time per message is steadier than messages per second.
cpu_ns() {
  cat /proc/"$server_rss_pid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'
}

# record RUN SERVER BENCH LOADGEN-ARGS...: one load generator run, tagged,
# with the server's CPU time per message (or connection) over the whole run.
record() {
  local run=$1 server=$2 bench=$3
  shift 3
  local out cpu0 cpu1
  cpu0=$(cpu_ns)
  out=$("$loadgen" --port "$server_port" "$@") || { echo "run.sh: loadgen failed: $*" >&2; return 0; }
  cpu1=$(cpu_ns)
  printf '%s\n' "$out" |
    sed -n "s/^{\(.*\)}\$/{\"run\":$run,\"server\":\"$server\",\"bench\":\"$bench\",\"server_cpu_ns\":$((cpu1 - cpu0)),\1}/p" >>"$raw"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---- Messages per second and connections per second --------------------------

for run in $(seq 1 "$runs"); do
  for conns in 100 1000; do
    for s in "${servers[@]}"; do
      echo "== run $run/$runs: $s, $conns connections" >&2
      start_server "$s"
      record "$run" "$s" "echo$conns" --mode echo --connections "$conns" --size 64 --depth 1 \
        --duration "$duration" --warmup "$warmup" --threads "$lg_threads"
      stop_server
    done
  done
  for s in "${servers[@]}"; do
    echo "== run $run/$runs: $s, connection rate" >&2
    start_server "$s"
    record "$run" "$s" "connect" --mode connect --connections 32 --size 64 \
      --duration "$duration" --warmup "$warmup" --threads "$lg_threads"
    stop_server
  done
done

# ---- Memory with idle connections ------------------------------------------

# The idle connections come from several load generator processes when one
# process may not hold them all (its open files limit).
per_proc=$(($(ulimit -n) - 100))
procs=${WEFT_BENCH_IDLE_PROCS:-$(((idle + per_proc - 1) / per_proc))}
for s in "${servers[@]}"; do
  echo "== memory: $s with $idle idle connections ($procs load process(es))" >&2
  start_server "$s"
  before=$(rss_kib)
  lgs=()
  for p in $(seq 1 "$procs"); do
    n=$((idle / procs + (p <= idle % procs ? 1 : 0)))
    "$loadgen" --port "$server_port" --mode idle --connections "$n" --duration 600 \
      >"$tmp/idle.$p.out" &
    lgs+=($!)
  done
  for _ in $(seq 600); do
    [[ $(cat "$tmp"/idle.*.out 2>/dev/null | grep -c established) -ge $procs ]] && break
    sleep 0.1
  done
  sleep 1 # let the server settle
  after=$(rss_kib)
  established=$(sed -n 's/.*"established":\([0-9]*\).*/\1/p' "$tmp"/idle.*.out |
                awk '{s += $1} END {print s + 0}')
  kill -TERM "${lgs[@]}" 2>/dev/null || true
  wait "${lgs[@]}" 2>/dev/null || true
  rm -f "$tmp"/idle.*.out
  stop_server
  printf '{"run":1,"server":"%s","bench":"memory","connections":%s,"established":%s,"rss_before_kib":%s,"rss_kib":%s}\n' \
    "$s" "$idle" "${established:-0}" "$before" "$after" >>"$raw"
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---- Report ----------------------------------------------------------------

RAW=$raw OUT=$results/echo.json RUNS=$runs DURATION=$duration IDLE=$idle \
MODEL="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)" \
CPUS="$(nproc)" KERNEL="$(uname -sr)" GO_VERSION="$(go version 2>/dev/null || echo none)" \
LOAD_BEFORE="$load_before" LOAD_AFTER="$load_after" python3 - <<'EOF'
import json, os, statistics

rows = [json.loads(l) for l in open(os.environ["RAW"]) if l.strip()]

def med(server, bench, get):
    vals = []
    for r in rows:
        if r["server"] == server and r["bench"] == bench:
            try:
                v = get(r)
            except (KeyError, ZeroDivisionError):
                continue
            if v is not None:
                vals.append(v)
    return statistics.median(vals) if vals else None

def field(name):
    return lambda r: r[name]

def cpu_us(r):
    """Server CPU microseconds per message (or connection), whole run."""
    return r["server_cpu_ns"] / 1000 / r["all"] if r.get("all") else None

def ratio(a, b):
    return a / b if a is not None and b else None

def fmt(v, d=0):
    return "-" if v is None else f"{v:,.{d}f}"

def yes(met):
    return "-" if met is None else ("yes" if met else "no")

table = []
print()
print(f"machine: {os.environ['MODEL']}, {os.environ['CPUS']} CPUs, {os.environ['KERNEL']}")
print(f"load average before: {os.environ['LOAD_BEFORE']}, after: {os.environ['LOAD_AFTER']}")
print(f"median of {os.environ['RUNS']} runs of {os.environ['DURATION']} s; "
      "64-byte messages, one in flight per connection")
print()
print("Throughput (ratio = weft / peer; higher is better for weft):")
print()
print("| benchmark | weft | raw libuv | weft/libuv | Go | weft/Go | target | met |")
print("|---|---:|---:|---:|---:|---:|---|---|")
for conns in (100, 1000):
    for n in (1, 2):
        b = f"echo{conns}"
        w = med(f"weft-e{n}", b, field("messages_per_s"))
        u = med(f"libuv-t{n}", b, field("messages_per_s"))
        g = med(f"go-p{n}", b, field("messages_per_s"))
        ru, rg = ratio(w, u), ratio(w, g)
        met = None if ru is None else (ru >= 0.95 and (rg is None or rg >= 1.2))
        name = f"messages/s, {conns} conns, {n} executor{'s' if n > 1 else ''}"
        print(f"| {name} | {fmt(w)} | {fmt(u)} | {fmt(ru, 2)} | {fmt(g)} | {fmt(rg, 2)} "
              f"| >= 0.95x libuv, >= 1.2x Go | {yes(met)} |")
        table.append({"benchmark": name, "unit": "messages/s", "weft": w, "libuv": u, "go": g,
                      "weft_over_libuv": ru, "weft_over_go": rg, "met": met})
for n in (1, 2):
    w = med(f"weft-e{n}", "connect", field("connections_per_s"))
    u = med(f"libuv-t{n}", "connect", field("connections_per_s"))
    g = med(f"go-p{n}", "connect", field("connections_per_s"))
    met = None if w is None else w >= 10000
    name = f"new connections/s, {n} executor{'s' if n > 1 else ''}"
    print(f"| {name} | {fmt(w)} | {fmt(u)} | {fmt(ratio(w, u), 2)} | {fmt(g)} | "
          f"{fmt(ratio(w, g), 2)} | >= 10,000/s | {yes(met)} |")
    table.append({"benchmark": name, "unit": "connections/s", "weft": w, "libuv": u, "go": g,
                  "weft_over_libuv": ratio(w, u), "weft_over_go": ratio(w, g), "met": met})
idle = int(os.environ["IDLE"])
for n in (1, 2):
    mib = lambda s: (lambda v: None if v is None else v / 1024)(med(s, "memory", field("rss_kib")))
    w, u, g = mib(f"weft-e{n}"), mib(f"libuv-t{n}"), mib(f"go-p{n}")
    met = None if w is None else w <= 64 * idle / 10000
    name = f"VmRSS MiB, {idle} idle conns, {n} executor{'s' if n > 1 else ''}"
    print(f"| {name} | {fmt(w, 1)} | {fmt(u, 1)} | {fmt(ratio(w, u), 2)} | {fmt(g, 1)} | "
          f"{fmt(ratio(w, g), 2)} | <= {64 * idle // 10000} MiB | {yes(met)} |")
    table.append({"benchmark": name, "unit": "MiB", "weft": w, "libuv": u, "go": g,
                  "weft_over_libuv": ratio(w, u), "weft_over_go": ratio(w, g), "met": met})

print()
print("Server CPU time per message or connection, in microseconds (lower is better;")
print("efficiency = peer CPU / weft CPU, so 0.95 means weft spends 5% more):")
print()
print("| benchmark | weft | raw libuv | efficiency vs libuv | Go | efficiency vs Go |")
print("|---|---:|---:|---:|---:|---:|")
for b, label in (("echo100", "message, 100 conns"), ("echo1000", "message, 1000 conns"),
                 ("connect", "new connection")):
    for n in (1, 2):
        w = med(f"weft-e{n}", b, cpu_us)
        u = med(f"libuv-t{n}", b, cpu_us)
        g = med(f"go-p{n}", b, cpu_us)
        name = f"{label}, {n} executor{'s' if n > 1 else ''}"
        print(f"| {name} | {fmt(w, 2)} | {fmt(u, 2)} | {fmt(ratio(u, w), 2)} | {fmt(g, 2)} | "
              f"{fmt(ratio(g, w), 2)} |")
        table.append({"benchmark": "server CPU us per " + name, "unit": "us", "weft": w,
                      "libuv": u, "go": g, "libuv_over_weft": ratio(u, w),
                      "go_over_weft": ratio(g, w)})

print()
print("Latency, p50 / p99 in microseconds (median of runs):")
for b in ("echo100", "echo1000", "connect"):
    parts = []
    for s in ("weft-e1", "weft-e2", "libuv-t1", "libuv-t2", "go-p1", "go-p2"):
        p50 = med(s, b, lambda r: r["latency_us"]["p50"])
        p99 = med(s, b, lambda r: r["latency_us"]["p99"])
        if p50 is not None:
            parts.append(f"{s} {p50:.0f}/{p99:.0f}")
    print(f"  {b}: " + ", ".join(parts))
errors = [(r["server"], r["bench"], r["errors"], r.get("first_error"))
          for r in rows if r.get("errors")]
if errors:
    print("\nload generator errors (server, benchmark, count, first):")
    for e in errors:
        print("  %s %s %d %s" % e)
json.dump({"machine": {"model": os.environ["MODEL"], "cpus": os.environ["CPUS"],
                       "kernel": os.environ["KERNEL"], "go": os.environ["GO_VERSION"]},
           "load_before": os.environ["LOAD_BEFORE"], "load_after": os.environ["LOAD_AFTER"],
           "runs": int(os.environ["RUNS"]), "table": table, "raw": rows},
          open(os.environ["OUT"], "w"), indent=1)
print(f"\nresults: {os.environ['OUT']}")
EOF
