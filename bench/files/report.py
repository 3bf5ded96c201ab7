#!/usr/bin/env python3
"""report.py OUT DATA: turns run.sh's results into a Markdown report.

Reads OUT/GROUP.json (hyperfine), OUT/rss.txt (/usr/bin/time: peak RSS,
user and system seconds), OUT/sizes.txt (compressed sizes) and
OUT/checks.txt (the output comparisons), and prints one table per group:
median time, the peer's time over file_processor's (above 1: we are
faster), throughput over the dataset's bytes, CPU seconds, peak RSS.
"""

import glob
import json
import os
import sys

GROUP_DATA = {
    "hash_d1": ["D1"], "hash_d3": ["D3"], "blake3_d1": ["D1"], "blake3_d2": ["D2"],
    "blake3_d3": ["D3"], "xxh128_d1": ["D1"], "verify_d2": ["D2"],
    "gzip_d4": ["D4"], "zstd_d4": ["D4"], "gunzip_d4": ["D4"], "unzstd_d4": ["D4"],
}

TITLES = {
    "hash_d1": "SHA-256 of D1 (8 x 256 MiB)",
    "hash_d3": "SHA-256 of D3 (100,000 x 4 KiB)",
    "blake3_d1": "BLAKE3 of D1", "blake3_d2": "BLAKE3 of D2 (32 x 32 MiB + 16,384 x 64 KiB)",
    "blake3_d3": "BLAKE3 of D3", "xxh128_d1": "XXH128 of D1",
    "verify_d2": "Verify of D2 against a SHA-256 manifest",
    "gzip_d4": "gzip of D4 (1 GiB of JSON lines)", "zstd_d4": "zstd of D4",
    "gunzip_d4": "Decompressing file_processor's .gz of D4 (throughput over the output)",
    "unzstd_d4": "Decompressing file_processor's .zst of D4 (throughput over the output)",
}


def tree_bytes(data, names):
    total = 0
    for name in names:
        for dirpath, _dirs, files in os.walk(os.path.join(data, name)):
            for f in files:
                if not f.startswith("."):
                    total += os.path.getsize(os.path.join(dirpath, f))
    return total


def main():
    out, data = sys.argv[1], sys.argv[2]
    rss = {}
    if os.path.exists(os.path.join(out, "rss.txt")):
        for line in open(os.path.join(out, "rss.txt")):
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 6:
                rss[(parts[0], parts[1])] = (int(parts[2]), float(parts[3]) + float(parts[4]))
    sizes = {}
    if os.path.exists(os.path.join(out, "sizes.txt")):
        for line in open(os.path.join(out, "sizes.txt")):
            g, who, raw, packed = line.split()
            sizes[(g, who)] = (int(raw), int(packed))
    print("# file_processor against its peers\n")
    print("Every command pinned to CPUs 0 and 1 (`taskset -c 0,1`), warm page "
          "cache, hyperfine with one warm-up and the median of the runs; peak RSS "
          "and CPU seconds from one more run under `/usr/bin/time`. Ratio: the "
          "peer's median over file_processor's (above 1: file_processor is faster). "
          "The machine is shared and noisy: compare the ratios, not the absolute "
          "times.\n")
    order = list(TITLES)
    for path in sorted(glob.glob(os.path.join(out, "*.json")),
                       key=lambda p: order.index(os.path.basename(p)[:-5])
                       if os.path.basename(p)[:-5] in order else 99):
        group = os.path.basename(path)[:-5]
        if group not in TITLES:
            continue
        results = json.load(open(path))["results"]
        ours = next((r for r in results if r["command"].startswith("file_processor")), results[0])
        nbytes = tree_bytes(data, GROUP_DATA.get(group, []))
        print("## %s\n" % TITLES[group])
        print("| command | median s | ratio | MB/s | CPU s | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in results:
            med = r["median"]
            ratio = med / ours["median"]
            mbps = nbytes / 1e6 / med if nbytes else 0
            peak, cpu = rss.get((group, r["command"]), (0, 0.0))
            print("| %s | %.3f | %s | %.0f | %.2f | %.1f |" % (
                r["command"], med, "1" if r is ours else "%.2fx" % ratio, mbps, cpu,
                peak / 1024))
        for (g, who), (raw, packed) in sorted(sizes.items()):
            if g == group:
                print("\n%s: ratio %.3f (%d -> %d bytes)" % (who, raw / packed, raw, packed),
                      end="")
        print("\n")
    checks = os.path.join(out, "checks.txt")
    if os.path.exists(checks):
        print("## Output checks\n")
        for line in open(checks):
            parts = line.rstrip("\n").split("\t")
            print("- %s: %s" % (parts[-1], parts[0]))


if __name__ == "__main__":
    main()
