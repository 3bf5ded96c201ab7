#!/usr/bin/env bash
# run.sh: the HTTP server benchmark. weft's HTTP server against nginx and h2o,
# all driven by wrk on 127.0.0.1, TechEmpower style:
#
#   GET /plaintext   "Hello, World!" as text/plain
#   GET /json        {"message":"Hello, World!"} as application/json
#
# with 100 and 1,000 keep-alive connections, one request in flight per
# connection (no pipelining). For each server, path and number of
# connections a fresh server is started, wrk warms it up, then wrk measures
# requests per second and the latency p50 and p99 (wrk --latency). The
# server's CPU time per request is recorded too (steadier than requests per
# second on a shared machine), and after the 1,000-connection run its
# resident memory: VmHWM (the peak), and VmRSS and PSS sampled while the
# connections were open, summed over the server's processes (PSS charges
# shared pages once, which is fair to nginx's master and workers).
#
# The servers, each with the same number of threads (--threads, default 1):
#
#   nginx        nginx -c CONF -p TMP -g 'daemon off;', worker_processes N,
#                access_log off, `return 200 "..."` from a location: no file
#   h2o          Debian's h2o 2.2, num-threads N, file.file: the same bytes
#                served from a static file (h2o's C path without a script;
#                it also sends last-modified and accept-ranges)
#   h2o-mruby    h2o again, the body from an mruby handler (only with
#                --servers ...,h2o-mruby: h2o has no fixed-body directive)
#   weft         bench/http/weft_plain.c: weft_http on apps/common's server
#                (a listener per executor, SO_REUSEPORT), --executors N
#   custom       --server CMD (or $WEFT_HTTP_SERVER): any weft-style server,
#                started as `CMD --listen 127.0.0.1:0 --executors N`; it
#                must print "listening on HOST:PORT". The web_framework
#                example is built in BUILD and added this way automatically
#                (with --no-access-log).
#
# A server that does not answer a path with 200 is skipped for that path,
# with a message. Ratios in the table are server / nginx. Raw results go to
# BUILD/results/http.raw.jsonl, the summary to BUILD/results/http.json.
#
# Usage: bench/http/run.sh [options]
#   --threads N           server threads (workers, executors) (default: 1)
#   --duration S          seconds measured per run (default: 5)
#   --warmup S            seconds of warm-up before each run (default: 2)
#   --runs N              runs of each figure; the median is kept (default: 1)
#   --connections "A B"   connection counts (default: "100 1000")
#   --paths "A B"         paths (default: "plaintext json")
#   --servers LIST        comma-separated: nginx,h2o,h2o-mruby,weft,custom
#                         (default: nginx,h2o,weft and custom when given)
#   --server CMD          the custom server's command (see above)
#   --server-name NAME    its name in the table (default: its file name)
#   --wrk-threads N       wrk threads (default: 2)
#   --quick               one short run of everything (a smoke test)
# Environment:
#   WEFT_BENCH_BUILD=DIR  build directory (default: build-bench)
#   WEFT_HTTP_SERVER=CMD  the custom server, as --server
#
# Needs: cmake, a C compiler, libuv, node-llhttp, libcjson-dev, wrk, python3;
# nginx (nginx-light) and h2o for the peers, each skipped when missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${WEFT_BENCH_BUILD:-$root/build-bench}
threads=1
duration=5
warmup=2
runs=1
conn_list="100 1000"
path_list="plaintext json"
servers_opt=""
custom_cmd=${WEFT_HTTP_SERVER:-}
custom_name=""
wrk_threads=2

# usage [CODE]: prints the usage part of this header; exits CODE (2).
usage() {
  sed -n '/^# Usage:/,/^# Needs:/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d' >&2
  exit "${1:-2}"
}

# need_value FLAG VALUE: refuses a flag given without its value.
need_value() {
  if [[ $# -lt 2 || -z $2 ]]; then
    echo "run.sh: $1 needs a value" >&2
    exit 2
  fi
}

# need_int FLAG VALUE: refuses a value that is not a positive integer.
need_int() {
  if ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: $1 wants a positive integer, not '$2'" >&2
    exit 2
  fi
}

# need_secs FLAG VALUE: refuses a value that is not a positive number.
need_secs() {
  if ! [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ $2 =~ ^0+(\.0+)?$ ]]; then
    echo "run.sh: $1 wants a positive number of seconds, not '$2'" >&2
    exit 2
  fi
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) need_value "$@"; need_int "$1" "$2"; threads=$2; shift 2 ;;
    --duration) need_value "$@"; need_secs "$1" "$2"; duration=$2; shift 2 ;;
    --warmup) need_value "$@"; need_secs "$1" "$2"; warmup=$2; shift 2 ;;
    --runs) need_value "$@"; need_int "$1" "$2"; runs=$2; shift 2 ;;
    --connections) need_value "$@"; conn_list=$2; shift 2 ;;
    --paths) need_value "$@"; path_list=$2; shift 2 ;;
    --servers) need_value "$@"; servers_opt=$2; shift 2 ;;
    --server) need_value "$@"; custom_cmd=$2; shift 2 ;;
    --server-name) need_value "$@"; custom_name=$2; shift 2 ;;
    --wrk-threads) need_value "$@"; need_int "$1" "$2"; wrk_threads=$2; shift 2 ;;
    --quick) duration=2; warmup=1; runs=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage ;;
  esac
done
for c in $conn_list; do need_int --connections "$c"; done
for p in $path_list; do
  if ! [[ $p =~ ^(plaintext|json)$ ]]; then
    echo "run.sh: --paths takes plaintext and json, not '$p'" >&2
    exit 2
  fi
done

command -v python3 >/dev/null || { echo "run.sh: python3 is needed" >&2; exit 1; }
command -v wrk >/dev/null || { echo "run.sh: wrk is needed (Debian package wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "run.sh: curl is needed" >&2; exit 1; }

# ---- Build -----------------------------------------------------------------

echo "== building in $build (Release)" >&2
# weft_plain compiles apps/common itself; the web framework's example is
# built in the same tree and takes part when it builds, without its access
# log (one log line per request is not what the other servers do).
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_BENCH=ON \
  -DWEFT_BUILD_APPS=ON -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 --target weft_plain >&2
weft_plain=$build/bench/http/weft_plain
if [[ -z $custom_cmd ]]; then
  if cmake --build "$build" -j2 --target web_framework >&2; then
    custom_cmd="$build/apps/web_framework/web_framework --no-access-log"
    custom_name=web_framework
  else
    echo "run.sh: the web_framework example did not build; left out" >&2
  fi
fi
if [[ -n $custom_cmd && -z $custom_name ]]; then
  custom_name=$(basename "${custom_cmd%% *}")
fi

# ---- Which servers ---------------------------------------------------------

if [[ -z $servers_opt ]]; then
  servers_opt=nginx,h2o,weft
  if [[ -n $custom_cmd ]]; then servers_opt+=,custom; fi
fi
servers=()
IFS=, read -r -a wanted <<<"$servers_opt"
for s in "${wanted[@]}"; do
  case $s in
    nginx)
      if command -v nginx >/dev/null; then servers+=(nginx)
      else echo "run.sh: no nginx (nginx-light): skipping it" >&2; fi ;;
    h2o|h2o-mruby)
      if command -v h2o >/dev/null; then servers+=("$s")
      else echo "run.sh: no h2o: skipping $s" >&2; fi ;;
    weft) servers+=(weft) ;;
    custom)
      if [[ -n $custom_cmd ]]; then servers+=(custom)
      else echo "run.sh: custom needs --server CMD or WEFT_HTTP_SERVER" >&2; exit 2; fi ;;
    *) echo "run.sh: unknown server '$s' (nginx, h2o, h2o-mruby, weft, custom)" >&2; exit 2 ;;
  esac
done
if [[ ${#servers[@]} -eq 0 ]]; then
  echo "run.sh: no server to measure" >&2
  exit 1
fi

# ---- Open files ------------------------------------------------------------

# Every connection is a descriptor in wrk and one in the server; the servers
# inherit this shell's limit. A count the limit cannot hold is skipped.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
conns=()
for c in $conn_list; do
  if [[ $nofile != unlimited ]] && ((c + 200 > nofile)); then
    echo "run.sh: the open files limit ($nofile) cannot hold $c connections" \
         "(and the server's own descriptors): skipping $c" >&2
  else
    conns+=("$c")
  fi
done
if [[ ${#conns[@]} -eq 0 ]]; then
  echo "run.sh: no connection count fits the open files limit" >&2
  exit 1
fi
max_conns=0
for c in "${conns[@]}"; do
  if ((c > max_conns)); then max_conns=$c; fi
done

# ---- Servers ---------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-http-bench.XXXXXX")
server_pid=""
wrk_pid=""

# Stops the server: SIGTERM to its whole process group (nginx's workers
# too), SIGKILL to what is left after 5 s.
stop_server() {
  [[ -z $server_pid ]] && return 0
  kill -TERM -- "-$server_pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 -- "-$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL -- "-$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

cleanup() {
  if [[ -n $wrk_pid ]]; then kill -TERM "$wrk_pid" 2>/dev/null || true; fi
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port free at this moment, from the kernel. nginx and h2o bind it without
# SO_REUSEPORT, so a port taken in between makes them fail, never share it.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

printf 'Hello, World!' >"$tmp/plaintext.txt"
printf '{"message":"Hello, World!"}' >"$tmp/json.json"

# write_nginx PORT: nginx's configuration, for max_conns connections.
write_nginx() {
  mkdir -p "$tmp/nginx"
  cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $threads;
worker_rlimit_nofile $((max_conns * 2 + 1024));
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events {
  worker_connections $((max_conns * 2 + 1024));
}
http {
  access_log off;
  keepalive_requests 1000;
  client_body_temp_path $tmp/nginx/tmp;
  proxy_temp_path $tmp/nginx/tmp;
  fastcgi_temp_path $tmp/nginx/tmp;
  uwsgi_temp_path $tmp/nginx/tmp;
  scgi_temp_path $tmp/nginx/tmp;
  server {
    listen 127.0.0.1:$1 backlog=4096;
    location /plaintext {
      default_type text/plain;
      return 200 "Hello, World!";
    }
    location /json {
      default_type application/json;
      return 200 '{"message":"Hello, World!"}';
    }
  }
}
EOF
}

# write_h2o PORT MODE: h2o's configuration; MODE file or mruby.
write_h2o() {
  mkdir -p "$tmp/h2o"
  {
    echo "listen:"
    echo "  host: 127.0.0.1"
    echo "  port: $1"
    echo "num-threads: $threads"
    echo "max-connections: $((max_conns * 2 + 1024))"
    echo "pid-file: $tmp/h2o/h2o.pid"
    echo "error-log: $tmp/h2o/error.log"
    # Started as root, h2o would switch to nobody, who cannot read the
    # private temp dir; the benchmark keeps the user it was started as.
    if [[ $(id -u) -eq 0 ]]; then echo "user: root"; fi
    echo "file.etag: OFF"
    echo "hosts:"
    echo "  default:"
    echo "    paths:"
    if [[ $2 == file ]]; then
      echo "      /plaintext:"
      echo "        file.file: $tmp/plaintext.txt"
      echo "      /json:"
      echo "        file.file: $tmp/json.json"
    else
      echo "      /plaintext:"
      echo "        mruby.handler: |"
      echo "          Proc.new do |env|"
      echo "            [200, {\"content-type\" => \"text/plain\"}, [\"Hello, World!\"]]"
      echo "          end"
      echo "      /json:"
      echo "        mruby.handler: |"
      echo "          Proc.new do |env|"
      echo "            [200, {\"content-type\" => \"application/json\"}, ['{\"message\":\"Hello, World!\"}']]"
      echo "          end"
    fi
  } >"$tmp/h2o/h2o.conf"
}

# start_server NAME: starts it in a process group of its own (setsid) and
# sets server_pid and server_port; returns 1 when it does not come up.
start_server() {
  local name=$1 port="" cmd=()
  rm -f "$tmp/server.log"
  case $name in
    nginx)
      port=$(free_port)
      write_nginx "$port"
      mkdir -p "$tmp/nginx/tmp"
      cmd=(nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;')
      ;;
    h2o|h2o-mruby)
      port=$(free_port)
      write_h2o "$port" "$([[ $name == h2o ]] && echo file || echo mruby)"
      cmd=(h2o -c "$tmp/h2o/h2o.conf")
      ;;
    weft)
      cmd=("$weft_plain" --listen 127.0.0.1:0 --executors "$threads" --log-level info)
      ;;
    custom)
      # The command may carry arguments of its own: split on spaces.
      read -r -a cmd <<<"$custom_cmd"
      cmd+=(--listen 127.0.0.1:0 --executors "$threads")
      ;;
  esac
  setsid "${cmd[@]}" >"$tmp/server.log" 2>&1 </dev/null &
  server_pid=$!
  server_port=""
  for _ in $(seq 200); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if [[ -z $port ]]; then
      server_port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$tmp/server.log" 2>/dev/null |
                    head -n 1 | cut -d: -f2 || true)
    elif curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
      server_port=$port
    fi
    [[ -n $server_port ]] && break
    sleep 0.05
  done
  if [[ -z $server_port ]]; then
    echo "run.sh: $([[ $name == custom ]] && echo "$custom_name" || echo "$name") did not start:" >&2
    cat "$tmp/server.log" >&2
    [[ -f $tmp/nginx/error.log ]] && cat "$tmp/nginx/error.log" >&2
    [[ -f $tmp/h2o/error.log ]] && cat "$tmp/h2o/error.log" >&2
    stop_server
    return 1
  fi
  return 0
}

# The process ids of the running server (its whole process group).
server_pids() {
  pgrep -g "$server_pid" 2>/dev/null || echo "$server_pid"
}

# mem_kib FIELD: a /proc status field (VmRSS, VmHWM) summed over the
# server's processes, in KiB. Shared pages count once per process.
mem_kib() {
  local sum=0 v pid
  for pid in $(server_pids); do
    v=$(awk -v f="$1:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# pss_kib: the proportional set size summed over the server's processes, in
# KiB: a page shared by n processes counts 1/n in each, so nginx's master and
# workers are not charged twice for the same binary and libraries.
pss_kib() {
  local sum=0 v pid
  for pid in $(server_pids); do
    v=$(awk '$1 == "Pss:" {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# The server's CPU time so far, in nanoseconds, all processes and threads.
cpu_ns() {
  local pid
  for pid in $(server_pids); do
    cat /proc/"$pid"/task/*/schedstat 2>/dev/null || true
  done | awk '{s += $1} END {printf "%.0f\n", s}'
}

# ---- Runs ------------------------------------------------------------------

results=$build/results
mkdir -p "$results"
raw=$results/http.raw.jsonl
: >"$raw"

# wrk sends a GET with Host only, keep-alive, one request at a time per
# connection; --latency prints the percentiles.
wrk_args=(--latency)

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# measure RUN SERVER PATH CONNS: one warm-up and one measured wrk run on a
# fresh server; appends one JSON line to the raw results.
measure() {
  local run=$1 name=$2 path=$3 c=$4
  local label=$name
  [[ $name == custom ]] && label=$custom_name
  echo "== run $run/$runs: $label /$path, $c connections" >&2
  start_server "$name" || return 0
  local url=http://127.0.0.1:$server_port/$path
  local status
  status=$(curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 "$url" || true)
  if [[ $status != 200 ]]; then
    echo "run.sh: $label answers /$path with ${status:-nothing}, not 200: skipped" >&2
    stop_server
    return 0
  fi
  local wt=$wrk_threads
  if ((wt > c)); then wt=$c; fi
  wrk "${wrk_args[@]}" -t "$wt" -c "$c" -d "${warmup}s" "$url" >/dev/null 2>&1 || true
  local cpu0 cpu1 rss_during=0 pss_during=0 hwm rss_after
  cpu0=$(cpu_ns)
  wrk "${wrk_args[@]}" -t "$wt" -c "$c" -d "${duration}s" "$url" >"$tmp/wrk.out" 2>&1 &
  wrk_pid=$!
  # The resident size is sampled near the end, while every connection is
  # open; VmHWM afterwards gives the peak.
  sleep "$(python3 -c "print(max(0.5, $duration * 0.8))")"
  rss_during=$(mem_kib VmRSS)
  pss_during=$(pss_kib)
  wait "$wrk_pid" || echo "run.sh: wrk failed on $url" >&2
  wrk_pid=""
  cpu1=$(cpu_ns)
  hwm=$(mem_kib VmHWM)
  rss_after=$(mem_kib VmRSS)
  stop_server
  RUN=$run SERVER=$label PATH_=$path CONNS=$c CPU_NS=$((cpu1 - cpu0)) \
  RSS_DURING=$rss_during PSS_DURING=$pss_during HWM=$hwm RSS_AFTER=$rss_after WRK_OUT=$tmp/wrk.out \
  BODY=$tmp/body python3 - >>"$raw" <<'EOF'
import json, os, re

text = open(os.environ["WRK_OUT"]).read()
unit = {"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6}

def latency(pct):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
    return float(m.group(1)) * unit[m.group(2)] if m else None

def number(pattern):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else None

errors = 0
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    errors += sum(int(g) for g in m.groups())
non2xx = number(r"Non-2xx or 3xx responses: (\d+)")
requests = number(r"^\s*(\d+) requests in")
rps = number(r"^Requests/sec:\s*([\d.]+)")
row = {"run": int(os.environ["RUN"]), "server": os.environ["SERVER"],
       "path": os.environ["PATH_"], "connections": int(os.environ["CONNS"]),
       "requests_per_s": rps, "requests": requests,
       "latency_us": {"p50": latency(50), "p75": latency(75),
                      "p90": latency(90), "p99": latency(99)},
       "socket_errors": errors, "non_2xx": int(non2xx or 0),
       "server_cpu_ns": int(os.environ["CPU_NS"]),
       "cpu_us_per_request": (int(os.environ["CPU_NS"]) / 1000 / requests
                              if requests else None),
       "rss_during_kib": int(os.environ["RSS_DURING"]),
       "pss_during_kib": int(os.environ["PSS_DURING"]),
       "hwm_kib": int(os.environ["HWM"]), "rss_after_kib": int(os.environ["RSS_AFTER"]),
       "body_bytes": os.path.getsize(os.environ["BODY"])}
if rps is None:
    row["wrk_output"] = text[-2000:]
print(json.dumps(row))
EOF
}

for run in $(seq 1 "$runs"); do
  for path in $path_list; do
    for c in "${conns[@]}"; do
      # The servers alternate within each cell, so that each sees the same
      # machine, as far as a shared machine allows.
      for s in "${servers[@]}"; do
        measure "$run" "$s" "$path" "$c"
      done
    done
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---- Report ----------------------------------------------------------------

labels=()
for s in "${servers[@]}"; do
  if [[ $s == custom ]]; then labels+=("$custom_name"); else labels+=("$s"); fi
done

RAW=$raw OUT=$results/http.json RUNS=$runs DURATION=$duration WARMUP=$warmup \
THREADS=$threads WRK_THREADS=$wrk_threads SERVERS="${labels[*]}" \
MODEL="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)" \
CPUS="$(nproc)" KERNEL="$(uname -sr)" \
NGINX_VERSION="$(nginx -v 2>&1 | sed 's/.*: //' || echo none)" \
H2O_VERSION="$(h2o --version 2>/dev/null | head -n 1 || echo none)" \
WRK_VERSION="$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2 || true)" \
LOAD_BEFORE="$load_before" LOAD_AFTER="$load_after" python3 - <<'EOF'
import json, os, statistics

rows = [json.loads(l) for l in open(os.environ["RAW"]) if l.strip()]
servers = os.environ["SERVERS"].split()

def med(server, path, conns, get):
    vals = []
    for r in rows:
        if r["server"] == server and r["path"] == path and r["connections"] == conns:
            v = get(r)
            if v is not None:
                vals.append(v)
    return statistics.median(vals) if vals else None

def fmt(v, d=0):
    return "-" if v is None else f"{v:,.{d}f}"

def ratio(a, b):
    return None if a is None or not b else a / b

print()
print(f"machine: {os.environ['MODEL']}, {os.environ['CPUS']} CPUs, {os.environ['KERNEL']}")
print(f"load average before: {os.environ['LOAD_BEFORE']}, after: {os.environ['LOAD_AFTER']}")
print(f"{os.environ['NGINX_VERSION']}, {os.environ['H2O_VERSION']}, {os.environ['WRK_VERSION']}")
print(f"server threads: {os.environ['THREADS']}; wrk -t{os.environ['WRK_THREADS']}, "
      f"{os.environ['WARMUP']} s warm-up, {os.environ['DURATION']} s measured, "
      f"median of {os.environ['RUNS']} run(s); no pipelining")
print("ratio = server / nginx (requests/s: above 1 is faster; memory: below 1 is smaller)")
print("memory of all the server's processes: VmHWM at the end, VmRSS and PSS at 80% of the run")
print()
print("| path | conns | server | requests/s | vs nginx | p50 ms | p99 ms | CPU us/req "
      "| VmHWM MiB | VmRSS MiB | PSS MiB | PSS vs nginx | errors |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
table = []
paths = sorted({r["path"] for r in rows}, key=lambda p: ("plaintext", "json").index(p))
for path in paths:
    for conns in sorted({r["connections"] for r in rows}):
        base_rps = med("nginx", path, conns, lambda r: r["requests_per_s"])
        base_pss = med("nginx", path, conns, lambda r: r.get("pss_during_kib"))
        for s in servers:
            rps = med(s, path, conns, lambda r: r["requests_per_s"])
            if rps is None and not any(r["server"] == s and r["path"] == path
                                       and r["connections"] == conns for r in rows):
                continue
            p50 = med(s, path, conns, lambda r: r["latency_us"]["p50"])
            p99 = med(s, path, conns, lambda r: r["latency_us"]["p99"])
            cpu = med(s, path, conns, lambda r: r["cpu_us_per_request"])
            hwm = med(s, path, conns, lambda r: r["hwm_kib"])
            rss = med(s, path, conns, lambda r: r["rss_during_kib"])
            pss = med(s, path, conns, lambda r: r.get("pss_during_kib"))
            err = med(s, path, conns, lambda r: r["socket_errors"] + r["non_2xx"])
            print(f"| /{path} | {conns:,} | {s} | {fmt(rps)} | {fmt(ratio(rps, base_rps), 2)} "
                  f"| {fmt(p50 and p50 / 1000, 2)} | {fmt(p99 and p99 / 1000, 2)} "
                  f"| {fmt(cpu, 1)} | {fmt(hwm and hwm / 1024, 1)} | {fmt(rss and rss / 1024, 1)} "
                  f"| {fmt(pss and pss / 1024, 1)} | {fmt(ratio(pss, base_pss), 2)} | {fmt(err)} |")
            table.append({"path": path, "connections": conns, "server": s,
                          "requests_per_s": rps, "rps_vs_nginx": ratio(rps, base_rps),
                          "p50_us": p50, "p99_us": p99, "cpu_us_per_request": cpu,
                          "hwm_kib": hwm, "rss_during_kib": rss, "pss_during_kib": pss,
                          "pss_vs_nginx": ratio(pss, base_pss), "errors": err})
for r in rows:
    if r.get("wrk_output"):
        print(f"\nwrk gave no figure for {r['server']} /{r['path']} {r['connections']}:\n"
              + r["wrk_output"])
json.dump({"machine": {"model": os.environ["MODEL"], "cpus": os.environ["CPUS"],
                       "kernel": os.environ["KERNEL"]},
           "versions": {"nginx": os.environ["NGINX_VERSION"], "h2o": os.environ["H2O_VERSION"],
                        "wrk": os.environ["WRK_VERSION"]},
           "threads": int(os.environ["THREADS"]), "runs": int(os.environ["RUNS"]),
           "duration_s": float(os.environ["DURATION"]), "warmup_s": float(os.environ["WARMUP"]),
           "load_before": os.environ["LOAD_BEFORE"], "load_after": os.environ["LOAD_AFTER"],
           "table": table, "raw": rows},
          open(os.environ["OUT"], "w"), indent=1)
print(f"\nresults: {os.environ['OUT']}")
EOF
