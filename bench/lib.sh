# shellcheck shell=bash
# lib.sh: the parts the benchmark drivers (bench/run_core.sh,
# bench/run_chan.sh, bench/run_stream_actor.sh) share. Sourced, never run:
#
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh"
#   bench_setup run_foo.sh
#
# bench_setup sets `root` (the source tree), `build` (WEFT_BENCH_BUILD, by
# default build-bench in the tree) and `me` (the driver's name, for
# messages). The functions below read `build`, `root`, `me` and, for
# bench_record, `raw` (the file that collects the measurements).

# bench_setup NAME: sets root, build and me, and checks for python3, which
# every driver's report needs.
bench_setup() {
  me=$1
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  build=${WEFT_BENCH_BUILD:-$root/build-bench}
  command -v python3 >/dev/null || { echo "$me: python3 is needed" >&2; exit 1; }
}

# bench_cmake_build WHAT TARGET...: configures the Release build of the
# benchmarks in $build and builds the targets, saying it builds WHAT.
bench_cmake_build() {
  local what=$1
  shift
  echo "== building $what in $build (Release)" >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_BENCH=ON \
    -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_APPS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j2 --target "$@" >&2
}

# bench_have_go WHAT: succeeds when there is a Go toolchain; otherwise says
# that WHAT is skipped and fails.
bench_have_go() {
  command -v go >/dev/null && return 0
  echo "$me: no Go toolchain (golang-go): skipping $1" >&2
  return 1
}

# bench_go_build OUT SOURCE: builds the Go program SOURCE into OUT. A cache
# of its own under /tmp keeps the build away from the user's Go setup; the
# peers use the standard library only, so nothing is fetched.
bench_go_build() {
  local gotmp=${TMPDIR:-/tmp}/weft-bench-go
  mkdir -p "$gotmp/gopath" "$gotmp/cache" "$(dirname "$1")"
  GOPATH=$gotmp/gopath GOCACHE=$gotmp/cache GOFLAGS='' GOPROXY=off \
    go build -o "$1" "$2"
}

# Set to 1 to drop the programs' own messages on stderr (their one-line
# summaries), keeping the driver's output to its own progress lines.
bench_quiet=0

# bench_record_group RUN GROUP CMD...: runs CMD and appends each JSON line it
# prints to $raw, tagged with the run number and, unless GROUP is empty, the
# group it belongs to. A failing program is reported; whatever it printed
# before failing is kept.
bench_record_group() {
  local run=$1 group=$2 tags out
  shift 2
  tags="\"run\":$run,"
  [[ -n $group ]] && tags+="\"group\":\"$group\","
  if ((bench_quiet)); then
    out=$("$@" 2>/dev/null) || echo "$me: failed: $*" >&2
  else
    out=$("$@") || echo "$me: failed: $*" >&2
  fi
  printf '%s\n' "$out" | sed -n "s/^{\(.*\)}\$/{$tags\1}/p" >>"${raw:?}"
}

# bench_record RUN CMD...: bench_record_group without a group.
bench_record() {
  local run=$1
  shift
  bench_record_group "$run" "" "$@"
}

# Prints the load average. The machine may be shared: the load before and
# after a run is kept with the figures, so that a noisy run can be
# recognised as one.
bench_loadavg() {
  cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"
}

# The start of every report, run by bench_report before the driver's own
# Python: reads the raw rows, and defines
#   median(field, **match)  the median of the rows that match, the number of
#                           samples, the lowest and the highest (None, 0,
#                           None, None when no row matches)
#   figure(bench, impl, field, **match)
#                           the same for the rows of one program and impl
#   fmt(v, digits)          a figure for the table, "-" for none
#   print_machine()         the machine and load lines that head the table
#   write_json(path, table) the results file: machine, runs, table, raw rows
bench_report_prelude=$(cat <<'EOF'
import json, os, statistics

rows = [json.loads(l) for l in open(os.environ["RAW"]) if l.strip()]

def median(field, **match):
    vals = [r[field] for r in rows
            if field in r and all(r.get(k) == v for k, v in match.items())]
    if not vals:
        return (None, 0, None, None)
    return (statistics.median(vals), len(vals), min(vals), max(vals))

def figure(bench, impl, field, **match):
    return median(field, bench=bench, impl=impl, **match)

def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"

def print_machine():
    print()
    print(f"machine: {os.environ['MODEL']}, {os.environ['CPUS']} CPUs, {os.environ['KERNEL']}")
    print(f"load average before: {os.environ['LOAD_BEFORE']}, after: {os.environ['LOAD_AFTER']}")

def write_json(path, table):
    machine = {"model": os.environ["MODEL"], "cpus": os.environ["CPUS"],
               "kernel": os.environ["KERNEL"], "cc": os.environ["CC_VERSION"],
               "go": os.environ["GO_VERSION"]}
    if "BOOST_VERSION" in os.environ:
        machine["boost"] = os.environ["BOOST_VERSION"]
    machine["load_before"] = os.environ["LOAD_BEFORE"]
    machine["load_after"] = os.environ["LOAD_AFTER"]
    json.dump({"machine": machine, "runs": int(os.environ["RUNS"]), "table": table,
               "raw": rows}, open(path, "w"), indent=1)
EOF
)

# bench_report RAW LOAD_BEFORE LOAD_AFTER RUNS [NAME=VALUE...] < SCRIPT: runs
# the driver's Python report SCRIPT after bench_report_prelude, with the raw
# measurements, the load averages, the number of runs, the machine's
# description and the extra NAME=VALUE pairs in its environment.
bench_report() {
  local raw_file=$1 load_before=$2 load_after=$3 runs=$4 script
  shift 4
  script=$(cat)
  env RAW="$raw_file" RUNS="$runs" LOAD_BEFORE="$load_before" LOAD_AFTER="$load_after" \
    MODEL="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)" \
    CPUS="$(nproc 2>/dev/null || echo '?')" KERNEL="$(uname -sr)" \
    CC_VERSION="$(cc --version 2>/dev/null | head -n 1)" \
    GO_VERSION="$(go version 2>/dev/null || echo none)" \
    "$@" python3 -c "$bench_report_prelude"$'\n'"$script"
}
