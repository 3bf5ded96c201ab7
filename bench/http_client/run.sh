#!/usr/bin/env bash
# run.sh: the http_client benchmark. apps/http_client's load mode against
# wrk, hey and ab, in the same run, all driving one nginx worker on loopback
# that answers every request with a 5-byte body (`return 200 "hello"`,
# access_log off):
#
#   requests per second at 100 and 1,000 connections, each tool for the same
#   duration, in rounds where the tools take turns (the order rotates each
#   round) and the median of the rounds is reported;
#   the CPU time each tool spends per completed request (user + system, all
#   its threads, from wait4()), and nginx's (from /proc/PID/stat): on a
#   shared machine this is the figure that noise disturbs least;
#   the peak resident memory of each tool.
#
# Every tool gets the same threads: wrk -t N, hey with GOMAXPROCS=N,
# http_client --executors N (N: one per core unless WEFT_BENCH_THREADS says);
# ab has one thread whatever is asked.
#
# The targets: >= 1,000 requests/s at 100 connections under 50 MB resident,
# >= 0.5x wrk and >= 1.5x hey, <= 50 MB resident at 1,000 connections. The
# summary goes to stdout and to BUILD/results/http_client.json (every run's
# figures included).
#
# Usage: bench/http_client/run.sh [--quick]
#   --quick                     2-second runs, one round (a smoke test)
# Environment:
#   WEFT_BENCH_BUILD=DIR        build directory (default: build-bench)
#   WEFT_BENCH_DURATION=S       seconds per tool and round (default: 5)
#   WEFT_BENCH_ROUNDS=N         rounds (default: 3)
#   WEFT_BENCH_CONNECTIONS="N M"  concurrencies (default: "100 1000")
#   WEFT_BENCH_THREADS=N        threads of every tool (default: the cores)
#   WEFT_BENCH_CLIENT=PATH      an http_client binary to measure instead of
#                               building one
#   WEFT_BENCH_BASELINE=PATH    another http_client binary (an older version)
#                               that takes its turn as the tool "baseline",
#                               to compare two versions in the same runs
#
# Needs: cmake, a C compiler, libuv, libcurl, python3, nginx (nginx-light);
# wrk, hey and ab (apache2-utils) are each skipped when missing. The nginx
# configuration is written to a temporary directory and removed at exit.
# Everything runs on 127.0.0.1.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${WEFT_BENCH_BUILD:-$root/build-bench}
duration=${WEFT_BENCH_DURATION:-5}
connections=${WEFT_BENCH_CONNECTIONS:-"100 1000"}
rounds=${WEFT_BENCH_ROUNDS:-3}
threads=${WEFT_BENCH_THREADS:-$(nproc)}
if [[ ${1:-} == --quick ]]; then
  duration=2
  rounds=1
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/http_client/run.sh [--quick]" >&2
  exit 2
fi
for tool in python3 nginx; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

# ---- Build -----------------------------------------------------------------

client=${WEFT_BENCH_CLIENT:-}
if [[ -z $client ]]; then
  echo "== building in $build (Release)" >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_APPS=ON \
    -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j2 --target http_client >&2
  client=$build/apps/http_client/http_client
fi
[[ -x $client ]] || { echo "run.sh: no $client (is weft_curl built?)" >&2; exit 1; }

# 1,000 connections need more than the usual 1,024 open files in every
# process: the client's sockets, and nginx's twice over (client + listener).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 4096 )); then
  echo "run.sh: warning: only $(ulimit -n) open files allowed" >&2
fi

# ---- nginx -----------------------------------------------------------------

tmp=$(mktemp -d)
nginx_pid=""
cleanup() {
  if [[ -n $nginx_pid ]]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/logs"
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / { return 200 "hello"; }
  }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" &
nginx_pid=$!
url=http://127.0.0.1:$port/
for _ in $(seq 100); do
  curl -sf -o /dev/null "$url" 2>/dev/null && break
  sleep 0.05
done
curl -sf -o /dev/null "$url" || { echo "run.sh: nginx did not start" >&2; cat "$tmp/logs/error.log" >&2; exit 1; }
echo "== nginx $(nginx -v 2>&1 | sed 's/.*\///') on $url, 1 worker" >&2

# ---- Runs ------------------------------------------------------------------

# Every tool gets the same number of threads: wrk -t, hey's GOMAXPROCS and
# http_client's --executors (ab has one thread, always). nginx keeps its one
# worker for every run. The tools take turns within each round, and the
# order rotates from round to round, so that a burst of other work on the
# machine does not always land on the same tool.
nworker=$(pgrep -P "$nginx_pid" | head -1)
[[ -n $nworker ]] || nworker=$nginx_pid
runs=$tmp/runs
mkdir -p "$runs"

# Runs tool $1 at concurrency $2 in round $3 through measure.py, which
# records the requests, the rate, the CPU time of the tool and of nginx,
# and the tool's peak resident memory.
run_tool() {
  local tool=$1 c=$2 round=$3 out=$runs/$1-$2-$3.json
  local -a cmd
  case $tool in
  http_client)
    cmd=("$client" -c "$c" -z "${duration}s" --executors "$threads"
         --summary json --no-progress --log-level warn "$url") ;;
  baseline)
    cmd=("$WEFT_BENCH_BASELINE" -c "$c" -z "${duration}s" --executors "$threads"
         --summary json --no-progress --log-level warn "$url") ;;
  wrk) cmd=(wrk -t"$threads" -c "$c" -d "${duration}s" "$url") ;;
  hey) cmd=(env GOMAXPROCS="$threads" hey -c "$c" -z "${duration}s" "$url") ;;
  ab) cmd=(ab -q -k -c "$c" -t "$duration" -n 100000000 "$url") ;;
  esac
  python3 "$root/bench/http_client/measure.py" "$tool" "$out" "$nworker" -- "${cmd[@]}"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   %-11s %6d req/s  %6s us CPU/req  (nginx %s us/req)" % (r["tool"], r["rps"], r["cpu_us_per_req"], r["server_cpu_us_per_req"]))' "$out" >&2
}

tools=(http_client)
[[ -n ${WEFT_BENCH_BASELINE:-} ]] && tools+=(baseline)
for t in wrk hey ab; do
  if command -v "$t" >/dev/null; then tools+=("$t"); fi
done
for c in $connections; do
  for ((round = 0; round < rounds; round++)); do
    echo "== $c connections, round $((round + 1)) of $rounds, ${duration} s per tool" >&2
    n=${#tools[@]}
    for ((i = 0; i < n; i++)); do
      run_tool "${tools[$(((i + round) % n))]}" "$c" "$round"
    done
  done
done

# ---- Summary ---------------------------------------------------------------

# Medians over the rounds: the rate, the load generator's CPU time per
# completed request (user + system, all threads), nginx's, and the peak
# resident memory.
mkdir -p "$build/results"
python3 - "$runs" "$build/results/http_client.json" "$duration" "$threads" <<'PY'
import glob, json, os, statistics, sys
runs, out, duration, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
by = {}
for path in sorted(glob.glob(os.path.join(runs, "*.json"))):
    tool, c, _ = os.path.basename(path)[:-5].rsplit("-", 2)
    by.setdefault(int(c), {}).setdefault(tool, []).append(json.load(open(path)))
def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(v) if v else None
table = {}
print("%-12s %6s %11s %12s %14s %11s %7s" % ("tool", "conns", "requests/s",
      "CPU us/req", "nginx us/req", "max RSS MB", "failed"))
for c in sorted(by):
    for tool in ("http_client", "baseline", "wrk", "hey", "ab"):
        rs = by[c].get(tool)
        if not rs:
            continue
        row = {"rps": med(rs, "rps"), "cpu_us_per_req": med(rs, "cpu_us_per_req"),
               "server_cpu_us_per_req": med(rs, "server_cpu_us_per_req"),
               "max_rss_kib": max(r["max_rss_kib"] for r in rs),
               "failed": sum(r["failed"] for r in rs), "runs": rs}
        table.setdefault(c, {})[tool] = row
        fmt = lambda v: "-" if v is None else "%.1f" % v
        print("%-12s %6d %11.0f %12s %14s %11.1f %7d" % (tool, c, row["rps"] or 0,
              fmt(row["cpu_us_per_req"]), fmt(row["server_cpu_us_per_req"]),
              row["max_rss_kib"] / 1024, row["failed"]))
checks = []
for c in sorted(table):
    ours = table[c].get("http_client")
    if not ours:
        continue
    mb = ours["max_rss_kib"] / 1024
    if c == 100:
        checks.append(("%d conns: >= 1000 requests/s" % c, ours["rps"] >= 1000))
        checks.append(("%d conns: < 50 MB resident" % c, mb < 50))
    if c >= 1000:
        checks.append(("%d conns: <= 50 MB resident" % c, mb <= 50))
    for tool, want in (("baseline", 1.0), ("wrk", 0.5), ("hey", 1.5)):
        other = table[c].get(tool)
        if not other or not other["rps"]:
            continue
        r = ours["rps"] / other["rps"]
        checks.append(("%d conns: >= %gx %s in req/s (%.2fx)" % (c, want, tool, r),
                       r >= want))
        if ours["cpu_us_per_req"] and other["cpu_us_per_req"]:
            r = other["cpu_us_per_req"] / ours["cpu_us_per_req"]
            checks.append(("%d conns: >= %gx %s per CPU us (%.2fx)" % (c, want, tool, r),
                           r >= want))
    if ours["failed"]:
        checks.append(("%d conns: no failed requests (%d)" % (c, ours["failed"]), False))
print()
for what, ok in checks:
    print("%-46s %s" % (what, "met" if ok else "NOT met"))
json.dump({"duration_s": duration, "threads": int(threads), "results": table,
           "targets": {w: ok for w, ok in checks}}, open(out, "w"), indent=1)
PY
