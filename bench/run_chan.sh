#!/usr/bin/env bash
# run_chan.sh: the channel benchmarks of weft against their peers.
#
# Builds weft's channel benchmarks (Release, WEFT_BUILD_BENCH=ON), the
# Concurrency Kit ring peer (bench/ck_ring_peer.c, through the same CMake
# build) and the Go peers (bench/go/chan_*.go, go build into a cache under
# /tmp, standard library only, no network). Then runs every weft benchmark
# next to its peers, several times over, alternating them so that all see
# the same machine, and prints the median of each figure with the ratio and
# whether the target is met:
#
#   SPSC, 8-byte items, two threads   weft (single and batches) vs ck_ring
#                                     spsc and a Go buffered channel
#   MPMC, 2 producers + 2 consumers   weft (single and batches) vs ck_ring
#                                     mpmc and a Go buffered channel
#   ping-pong, rendezvous channels    weft LOCAL vs Go unbuffered, GOMAXPROCS=1
#                                     (and across threads: MPMC vs GOMAXPROCS=2)
#   select over 4 channels            weft LOCAL (and MPMC) vs Go select
#   SPSC sweep                        batch 1..256 x item size 8/64/256 bytes
#
# SPSC and MPMC also run once more with a ring of 16384 items, which shows
# how much of the time at capacity 1024 goes to waking the other thread.
#
# Results, with every raw measurement, go to BUILD/results/: chan.json,
# chan-sweep.csv and chan-throughput.svg (the plot of the sweep).
#
# Usage: bench/run_chan.sh [--quick | --report | --instr]
#   --quick                   one run, shorter loops (a smoke test)
#   --report                  no build and no run: the report again, from the
#                             raw measurements of the last run
#   --instr                   instructions per operation instead of time:
#                             bench/chan_ops.c under Valgrind's callgrind,
#                             weft next to ck_ring, on one thread. Exact
#                             and repeatable where the clock is not (a
#                             loaded or shared machine); written to
#                             BUILD/results/chan-instr.json
# Environment:
#   WEFT_BENCH_BUILD=DIR      build directory (default: build-bench)
#   WEFT_BENCH_RUNS=N         runs of each group (default: 5; the median wins)
#
# Needs: cmake, a C compiler, libuv, python3; libck-dev and Go (golang-go)
# for the peers: a missing peer is reported and its rows skipped.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_setup run_chan.sh

runs=${WEFT_BENCH_RUNS:-5}
spsc_msgs=20000000
mpmc_msgs=10000000
pp_rounds=5000000
pp_cross_rounds=100000
select_iters=10000000
sweep_msgs=10000000
sweep_runs=5

report_only=0
instr_only=0
if [[ ${1:-} == --report ]]; then
  report_only=1
elif [[ ${1:-} == --instr ]]; then
  instr_only=1
elif [[ ${1:-} == --quick ]]; then
  runs=${WEFT_BENCH_RUNS:-1}
  spsc_msgs=2000000
  mpmc_msgs=1000000
  pp_rounds=500000
  pp_cross_rounds=10000
  select_iters=1000000
  sweep_msgs=1000000
  sweep_runs=1
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/run_chan.sh [--quick | --report | --instr]" >&2
  exit 2
fi
((sweep_runs > runs)) && sweep_runs=$runs

results=$build/results
raw=$results/chan.raw.jsonl
load_before="?"
load_after="?"

# ---- Instructions per operation (--instr) ----------------------------------

if ((instr_only)); then
  command -v valgrind >/dev/null || { echo "run_chan.sh: --instr needs valgrind" >&2; exit 1; }
  bench_cmake_build bench/chan_ops.c weft_bench_chan_ops
  mkdir -p "$results"
  n=102400
  out=$results/chan-instr.json
  printf '[\n' >"$out"
  sep=""
  printf '%-16s %12s\n' case "instr/iter"
  for c in spsc_pair spsc_burst spsc_try mpmc_pair mpmc_burst mpmc_try \
           ck_spsc_pair ck_spsc_burst ck_mpmc_pair ck_mpmc_burst \
           local_buffered local_pingpong; do
    # Instrumentation is on only around the measured loop (the program
    # switches it on and off), so Ir / n is the loop's cost per iteration.
    ir=$(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null \
           "$build/bench/chan_ops" "$c" "$n" 2>&1 >/dev/null |
         sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    if [[ -z $ir ]]; then
      echo "run_chan.sh: chan_ops $c failed" >&2
      continue
    fi
    per=$(awk -v ir="$ir" -v n="$n" 'BEGIN { printf "%.1f", ir / n }')
    printf '%-16s %12s\n' "$c" "$per"
    printf '%s {"case":"%s","n":%d,"instructions":%s,"per_iteration":%s}' \
      "$sep" "$c" "$n" "$ir" "$per" >>"$out"
    sep=$',\n'
  done
  printf '\n]\n' >>"$out"
  echo "written: $out" >&2
  exit 0
fi

if ((!report_only)); then

# ---- Build -----------------------------------------------------------------

bench_cmake_build "the channel benchmarks" weft_bench_chan_spsc weft_bench_chan_mpmc \
  weft_bench_chan_pingpong weft_bench_chan_select weft_bench_ck_ring_peer
bin=$build/bench

# The ck_ring peer builds as a stub that exits with 3 when libck-dev is
# missing.
ck=$bin/ck_ring_peer
if ! "$ck" spsc 1000 >/dev/null 2>&1; then
  echo "run_chan.sh: no Concurrency Kit (libck-dev): skipping the ck_ring peer" >&2
  ck=""
fi

have_go=0
if bench_have_go "the Go peers"; then
  echo "== building the Go peers" >&2
  for prog in chan_spsc chan_mpmc chan_pingpong chan_select; do
    bench_go_build "$bin/go_$prog" "$root/bench/go/$prog.go"
  done
  have_go=1
fi

# ---- Run -------------------------------------------------------------------

mkdir -p "$results"
: >"$raw"

# Each program prints a summary line on stderr too: the JSON line is enough.
bench_quiet=1
load_before=$(bench_loadavg)

for run in $(seq 1 "$runs"); do
  echo "== run $run of $runs" >&2
  # SPSC, 8-byte items, capacity 1024, two threads.
  for batch in 1 16 64 256; do
    bench_record_group "$run" spsc "$bin/chan_spsc" "$spsc_msgs" "$batch" 8 1024
  done
  [[ -n $ck ]] && bench_record_group "$run" spsc "$ck" spsc "$spsc_msgs" 1024
  ((have_go)) && bench_record_group "$run" spsc env GOMAXPROCS=2 "$bin/go_chan_spsc" -msgs "$spsc_msgs" -cap 1024

  # The same with a ring sixteen times larger: fewer waits, so fewer
  # wake-ups between the threads.
  bench_record_group "$run" spsc-big "$bin/chan_spsc" "$spsc_msgs" 1 8 16384
  [[ -n $ck ]] && bench_record_group "$run" spsc-big "$ck" spsc "$spsc_msgs" 16384
  ((have_go)) && bench_record_group "$run" spsc-big env GOMAXPROCS=2 "$bin/go_chan_spsc" -msgs "$spsc_msgs" -cap 16384

  # MPMC, 2 producers and 2 consumers, capacity 1024, two threads.
  for batch in 1 16 64; do
    bench_record_group "$run" mpmc "$bin/chan_mpmc" "$mpmc_msgs" "$batch" 1024 split
    bench_record_group "$run" mpmc "$bin/chan_mpmc" "$mpmc_msgs" "$batch" 1024 mixed
  done
  if [[ -n $ck ]]; then
    bench_record_group "$run" mpmc "$ck" mpmc "$mpmc_msgs" 1024 2 2
    bench_record_group "$run" mpmc "$ck" mpmc "$mpmc_msgs" 1024 1 1
  fi
  ((have_go)) && bench_record_group "$run" mpmc env GOMAXPROCS=2 "$bin/go_chan_mpmc" -msgs "$mpmc_msgs" -cap 1024
  bench_record_group "$run" mpmc-big "$bin/chan_mpmc" "$mpmc_msgs" 1 16384 split
  ((have_go)) && bench_record_group "$run" mpmc-big env GOMAXPROCS=2 "$bin/go_chan_mpmc" -msgs "$mpmc_msgs" -cap 16384

  # Ping-pong over rendezvous channels.
  bench_record_group "$run" pingpong "$bin/chan_pingpong" "$pp_rounds" local
  ((have_go)) && bench_record_group "$run" pingpong env GOMAXPROCS=1 "$bin/go_chan_pingpong" -rounds "$pp_rounds"
  bench_record_group "$run" pingpong "$bin/chan_pingpong" "$pp_cross_rounds" cross
  ((have_go)) && bench_record_group "$run" pingpong env GOMAXPROCS=2 "$bin/go_chan_pingpong" -rounds "$pp_cross_rounds"

  # Select over four channels, one ready.
  bench_record_group "$run" select "$bin/chan_select" "$select_iters" local
  bench_record_group "$run" select "$bin/chan_select" "$select_iters" mpmc
  ((have_go)) && bench_record_group "$run" select env GOMAXPROCS=1 "$bin/go_chan_select" -iters "$select_iters"

  # The sweep: SPSC throughput against batch and item size.
  if ((run <= sweep_runs)); then
    for size in 8 64 256; do
      for batch in 1 4 16 64 256; do
        bench_record_group "$run" sweep "$bin/chan_spsc" "$sweep_msgs" "$batch" "$size" 1024
      done
      ((have_go)) && bench_record_group "$run" sweep env GOMAXPROCS=2 "$bin/go_chan_spsc" \
        -msgs "$sweep_msgs" -cap 1024 -size "$size"
    done
  fi
done

load_after=$(bench_loadavg)
printf '%s\n%s\n' "$load_before" "$load_after" >"$results/chan.load"

fi # report_only

if [[ ! -s $raw ]]; then
  echo "run_chan.sh: no measurements in $raw" >&2
  exit 1
fi
if [[ -f $results/chan.load ]]; then
  load_before=$(sed -n 1p "$results/chan.load")
  load_after=$(sed -n 2p "$results/chan.load")
fi

# ---- Report ----------------------------------------------------------------

bench_report "$raw" "$load_before" "$load_after" "$runs" RESULTS="$results" <<'EOF'
import csv

results = os.environ["RESULTS"]
# median() gives the lowest and highest sample too: on a shared machine the
# spread says as much as the median.
table = []

def add(name, unit, weft, peer_name, peer, target=None, met=None, higher_is_better=True):
    ratio = None
    if weft[0] is not None and peer[0]:
        ratio = weft[0] / peer[0] if higher_is_better else peer[0] / weft[0]
    table.append({"benchmark": name, "unit": unit, "weft": weft[0],
                  "weft_range": [weft[2], weft[3]], "peer": peer_name,
                  "peer_value": peer[0], "peer_range": [peer[2], peer[3]],
                  "ratio": ratio, "samples": weft[1], "target": target, "met": met})

tput = "mmsgs_per_s"

# SPSC.
ck_spsc = median(tput, group="spsc", impl="ck_ring")
go_spsc = median(tput, group="spsc", impl="go")
for batch in (1, 16, 64, 256):
    w = median(tput, group="spsc", impl="weft", batch=batch)
    label = "single" if batch == 1 else f"batch {batch}"
    met = None
    if batch == 1 and w[0] is not None:
        met = (ck_spsc[0] is None or w[0] >= ck_spsc[0]) and (go_spsc[0] is None or w[0] >= 3 * go_spsc[0])
    add(f"SPSC 8 B, {label}", "M msg/s", w, "ck_ring spsc", ck_spsc,
        ">= 1.0x ck_ring, >= 3x Go" if batch == 1 else None, met)
    add(f"SPSC 8 B, {label}", "M msg/s", w, "Go chan, GOMAXPROCS=2", go_spsc)

# The same with capacity 16384.
w = median(tput, group="spsc-big", impl="weft")
add("SPSC 8 B, single, capacity 16384", "M msg/s", w, "ck_ring spsc", median(tput, group="spsc-big", impl="ck_ring"))
add("SPSC 8 B, single, capacity 16384", "M msg/s", w, "Go chan, GOMAXPROCS=2", median(tput, group="spsc-big", impl="go"))

# MPMC.
go_mpmc = median(tput, group="mpmc", impl="go")
ck_mpmc = median(tput, group="mpmc", impl="ck_ring", producers=2)
ck_mpmc11 = median(tput, group="mpmc", impl="ck_ring", producers=1)
for placement in ("split", "mixed"):
    for batch in (1, 16, 64):
        w = median(tput, group="mpmc", impl="weft", batch=batch, placement=placement)
        label = "single" if batch == 1 else f"batch {batch}"
        met = None
        if batch == 1 and w[0] is not None and go_mpmc[0]:
            met = w[0] >= 1.5 * go_mpmc[0]
        add(f"MPMC 2P/2C {placement}, {label}", "M msg/s", w, "Go chan, GOMAXPROCS=2",
            go_mpmc, ">= 1.5x Go" if batch == 1 else None, met)
        if batch == 1:
            add(f"MPMC 2P/2C {placement}, {label}", "M msg/s", w,
                "ck_ring mpmc, 4 threads", ck_mpmc)
            add(f"MPMC 2P/2C {placement}, {label}", "M msg/s", w,
                "ck_ring mpmc, 1P/1C", ck_mpmc11)

add("MPMC 2P/2C split, single, capacity 16384", "M msg/s",
    median(tput, group="mpmc-big", impl="weft"), "Go chan, GOMAXPROCS=2",
    median(tput, group="mpmc-big", impl="go"))

# Ping-pong: lower is better; the ratio is peer / weft (above 1: weft faster).
w = median("ns_per_round_trip", group="pingpong", impl="weft", where="local")
g = median("ns_per_round_trip", group="pingpong", impl="go", gomaxprocs=1)
add("ping-pong, LOCAL rendezvous", "ns/round trip", w, "Go unbuffered, GOMAXPROCS=1", g,
    "<= 50 ns", (w[0] <= 50) if w[0] is not None else None, higher_is_better=False)
w = median("ns_per_round_trip", group="pingpong", impl="weft", where="cross")
g = median("ns_per_round_trip", group="pingpong", impl="go", gomaxprocs=2)
add("ping-pong, MPMC rendezvous, 2 threads", "ns/round trip", w,
    "Go unbuffered, GOMAXPROCS=2", g, higher_is_better=False)

# Select.
g = median("ns_per_select", group="select", impl="go")
for kind in ("local", "mpmc"):
    w = median("ns_per_select", group="select", impl="weft", chan=kind)
    add(f"send + select over 4, {kind.upper()}", "ns/iteration", w, "Go select, GOMAXPROCS=1",
        g, higher_is_better=False)
g = median("ns_select_only", group="select", impl="go")
for kind in ("local", "mpmc"):
    w = median("ns_select_only", group="select", impl="weft", chan=kind)
    add(f"select alone (minus send+recv), {kind.upper()}", "ns/select", w,
        "Go select, GOMAXPROCS=1", g, higher_is_better=False)

# The sweep, as CSV and as a plot.
sizes, batches = (8, 64, 256), (1, 4, 16, 64, 256)
sweep = {}
spread = {}
with open(os.path.join(results, "chan-sweep.csv"), "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(["impl", "size_bytes", "batch", "mmsgs_per_s", "gbytes_per_s", "samples",
                 "min_mmsgs_per_s", "max_mmsgs_per_s"])
    for size in sizes:
        for batch in batches:
            m, n, lo, hi = median(tput, group="sweep", impl="weft", size=size, batch=batch)
            sweep[("weft", size, batch)] = m
            spread[(size, batch)] = (lo, hi)
            if m is not None:
                wr.writerow(["weft", size, batch, f"{m:.3f}", f"{m * size / 1000:.3f}", n,
                             f"{lo:.3f}", f"{hi:.3f}"])
        m, n, lo, hi = median(tput, group="sweep", impl="go", size=size)
        sweep[("go", size)] = m
        if m is not None:
            wr.writerow(["go", size, 1, f"{m:.3f}", f"{m * size / 1000:.3f}", n,
                         f"{lo:.3f}", f"{hi:.3f}"])

def svg_plot(path):
    # A log-2 x axis (batch) and a linear y axis (M msg/s); one line per
    # item size through the medians, a bar from the lowest to the highest
    # sample at each point, and Go's single-item median for each size as a
    # dashed line.
    W, H, L, R, T, B = 720, 440, 70, 170, 40, 60
    pw, ph = W - L - R, H - T - B
    vals = [v for v in sweep.values() if v is not None]
    vals += [hi for lo, hi in spread.values() if hi is not None]
    if not vals:
        return
    ymax = max(vals) * 1.1
    step = 10 ** len(str(int(ymax))) / 10 if ymax >= 10 else 1
    while ymax / step > 10:
        step *= 2
    ymax = step * (int(ymax / step) + 1)
    x = lambda b: L + pw * (batches.index(b)) / (len(batches) - 1)
    y = lambda v: T + ph * (1 - v / ymax)
    colors = {8: "#1f77b4", 64: "#d62728", 256: "#2ca02c"}
    # Side by side at each batch, so that the bars do not hide each other.
    offset = {8: -6, 64: 0, 256: 6}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L + pw / 2}" y="22" text-anchor="middle" font-size="14">'
           'weft SPSC channel across two threads: throughput by batch and item size</text>',
           f'<text x="{L + pw / 2}" y="{H - 4}" text-anchor="middle" font-size="10" fill="#555">'
           'lines: median; bars: lowest to highest sample; capacity 1024</text>']
    yv = 0.0
    while yv <= ymax + 1e-9:
        out.append(f'<line x1="{L}" y1="{y(yv):.1f}" x2="{L + pw}" y2="{y(yv):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y(yv) + 4:.1f}" text-anchor="end">{yv:g}</text>')
        yv += step
    for b in batches:
        out.append(f'<line x1="{x(b):.1f}" y1="{T}" x2="{x(b):.1f}" y2="{T + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x(b):.1f}" y="{T + ph + 18}" text-anchor="middle">{b}</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">'
               'batch (items per send_n / recv_n; 1 = send / recv)</text>')
    out.append(f'<text transform="translate(18,{T + ph / 2}) rotate(-90)" '
               'text-anchor="middle">million items per second</text>')
    ly = T + 10
    for size in sizes:
        c = colors[size]
        pts = [(x(b) + offset[size], y(sweep[("weft", size, b)])) for b in batches
               if sweep.get(("weft", size, b)) is not None]
        for b in batches:
            lo, hi = spread.get((size, b), (None, None))
            if lo is not None:
                bx = x(b) + offset[size]
                out.append(f'<line x1="{bx:.1f}" y1="{y(lo):.1f}" x2="{bx:.1f}" y2="{y(hi):.1f}" '
                           f'stroke="{c}" stroke-opacity="0.5" stroke-width="3"/>')
        if pts:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (c, " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)))
            for px, py in pts:
                out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{c}"/>')
        out.append(f'<line x1="{L + pw + 12}" y1="{ly}" x2="{L + pw + 36}" y2="{ly}" '
                   f'stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{L + pw + 42}" y="{ly + 4}">weft, {size} B</text>')
        ly += 20
        gv = sweep.get(("go", size))
        if gv is not None:
            out.append(f'<line x1="{L}" y1="{y(gv):.1f}" x2="{L + pw}" y2="{y(gv):.1f}" '
                       f'stroke="{c}" stroke-dasharray="5,4"/>')
            out.append(f'<line x1="{L + pw + 12}" y1="{ly}" x2="{L + pw + 36}" y2="{ly}" '
                       f'stroke="{c}" stroke-dasharray="5,4"/>')
            out.append(f'<text x="{L + pw + 42}" y="{ly + 4}">Go chan, {size} B</text>')
            ly += 20
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")

svg_plot(os.path.join(results, "chan-throughput.svg"))

def span(r):
    return "-" if r[0] is None else f"{r[0]:.4g}-{r[1]:.4g}"

print_machine()
print(f"median of up to {os.environ['RUNS']} runs; ratio: how many times better weft is "
      "(weft/peer for throughput, peer/weft for times)")
print()
hdr = (f"{'benchmark':40} {'unit':13} {'weft':>9} {'(range)':>13}  {'peer':28} {'peer':>9} "
       f"{'(range)':>13} {'ratio':>6}  {'target':26} met")
print(hdr)
print("-" * len(hdr))
for t in table:
    met = "-" if t["met"] is None else ("yes" if t["met"] else "NO")
    print(f"{t['benchmark']:40} {t['unit']:13} {fmt(t['weft']):>9} {span(t['weft_range']):>13}  "
          f"{t['peer']:28} {fmt(t['peer_value']):>9} {span(t['peer_range']):>13} "
          f"{fmt(t['ratio']):>6}  {t['target'] or '':26} {met}")
print()
print("SPSC sweep (M msg/s; rows: item size, columns: batch)")
print(f"{'size':>6} " + " ".join(f"{b:>8}" for b in batches) + f" {'Go':>8}")
for size in sizes:
    print(f"{size:>5}B " + " ".join(f"{fmt(sweep.get(('weft', size, b))):>8}" for b in batches)
          + f" {fmt(sweep.get(('go', size))):>8}")

write_json(os.path.join(results, "chan.json"), table)
print()
print(f"written: {results}/chan.json, chan-sweep.csv, chan-throughput.svg")
EOF
