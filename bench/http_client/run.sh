#!/usr/bin/env bash
# run.sh: the http_client benchmark. apps/http_client's load mode against
# wrk, hey and ab, in the same run, all driving one nginx worker on loopback
# that answers every request with a 5-byte body (`return 200 "hello"`,
# access_log off):
#
#   requests per second at 100 and 1,000 connections, each tool for the same
#   duration, one after the other, so that each sees the same machine;
#   http_client's peak resident memory (VmHWM, from /usr/bin/time -v or
#   /proc) at each concurrency.
#
# The targets: >= 1,000 requests/s at 100 connections under 50 MB resident,
# >= 0.5x wrk and >= 1.5x hey, <= 50 MB resident at 1,000 connections. The
# summary goes to stdout and to BUILD/results/http_client.json.
#
# Usage: bench/http_client/run.sh [--quick]
#   --quick                     2-second runs (a smoke test)
# Environment:
#   WEFT_BENCH_BUILD=DIR        build directory (default: build-bench)
#   WEFT_BENCH_DURATION=S       seconds per tool and concurrency (default: 5)
#   WEFT_BENCH_CONNECTIONS="N M"  concurrencies (default: "100 1000")
#   WEFT_BENCH_EXECUTORS=N      http_client executors (default: 0, one per core)
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
executors=${WEFT_BENCH_EXECUTORS:-0}
if [[ ${1:-} == --quick ]]; then
  duration=2
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/http_client/run.sh [--quick]" >&2
  exit 2
fi
for tool in python3 nginx; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

# ---- Build -----------------------------------------------------------------

echo "== building in $build (Release)" >&2
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_APPS=ON \
  -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 --target http_client >&2
client=$build/apps/http_client/http_client
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

results=$tmp/results.txt
: >"$results"

# Runs http_client for the duration at concurrency $1 and records its rate
# and peak resident memory.
run_ours() {
  local c=$1 out=$tmp/ours.json rss=""
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -v -o "$tmp/time.txt" "$client" -c "$c" -z "${duration}s" \
      --executors "$executors" --summary json --no-progress --log-level warn "$url" >"$out"
    rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$tmp/time.txt")
  else
    # Without GNU time, sample VmHWM from /proc just before the end.
    "$client" -c "$c" -z "${duration}s" --executors "$executors" --summary json \
      --no-progress --log-level warn "$url" >"$out" &
    local pid=$!
    sleep "$(python3 -c "print($duration - 0.3)")"
    rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    wait $pid || true
  fi
  local rps
  rps=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print("%.0f %d" % (s["requests_per_s"], s["failed"]))' "$out")
  echo "http_client $c ${rps% *} ${rss:-0} ${rps#* }" >>"$results"
}

run_wrk() {
  local c=$1
  command -v wrk >/dev/null || return 0
  local rps
  rps=$(wrk -t2 -c "$c" -d "${duration}s" "$url" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  echo "wrk $c $rps 0 0" >>"$results"
}

run_hey() {
  local c=$1
  command -v hey >/dev/null || return 0
  local rps
  rps=$(hey -c "$c" -z "${duration}s" "$url" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  echo "hey $c $rps 0 0" >>"$results"
}

run_ab() {
  local c=$1
  command -v ab >/dev/null || return 0
  local rps
  rps=$(ab -q -k -c "$c" -t "$duration" -n 100000000 "$url" 2>/dev/null |
        awk '/Requests per second/ {printf "%.0f", $4}')
  echo "ab $c ${rps:-0} 0 0" >>"$results"
}

for c in $connections; do
  echo "== $c connections, ${duration} s each" >&2
  run_ours "$c"
  run_wrk "$c"
  run_hey "$c"
  run_ab "$c"
done

# ---- Summary ---------------------------------------------------------------

mkdir -p "$build/results"
python3 - "$results" "$build/results/http_client.json" "$duration" <<'PY'
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for tool, c, rps, rss, failed in rows:
    by.setdefault(int(c), {})[tool] = {"rps": float(rps or 0), "rss_kib": int(rss or 0),
                                       "failed": int(failed or 0)}
print("%-12s %12s %12s %12s" % ("tool", "connections", "requests/s", "max RSS MB"))
for c in sorted(by):
    for tool, v in by[c].items():
        rss = "%.1f" % (v["rss_kib"] / 1024) if v["rss_kib"] else "-"
        print("%-12s %12d %12.0f %12s" % (tool, c, v["rps"], rss))
checks = []
for c in sorted(by):
    ours = by[c].get("http_client")
    if not ours:
        continue
    mb = ours["rss_kib"] / 1024
    if c == 100:
        checks.append(("%d conns: >= 1000 requests/s" % c, ours["rps"] >= 1000))
        checks.append(("%d conns: < 50 MB resident" % c, mb < 50))
    if c >= 1000:
        checks.append(("%d conns: <= 50 MB resident" % c, mb <= 50))
    if "wrk" in by[c] and by[c]["wrk"]["rps"]:
        r = ours["rps"] / by[c]["wrk"]["rps"]
        checks.append(("%d conns: >= 0.5x wrk (%.2fx)" % (c, r), r >= 0.5))
    if "hey" in by[c] and by[c]["hey"]["rps"]:
        r = ours["rps"] / by[c]["hey"]["rps"]
        checks.append(("%d conns: >= 1.5x hey (%.2fx)" % (c, r), r >= 1.5))
    if ours["failed"]:
        checks.append(("%d conns: no failed requests (%d)" % (c, ours["failed"]), False))
print()
for what, ok in checks:
    print("%-40s %s" % (what, "met" if ok else "NOT met"))
json.dump({"duration_s": float(sys.argv[3]), "results": by,
           "targets": {w: ok for w, ok in checks}}, open(sys.argv[2], "w"), indent=1)
PY
