#!/usr/bin/env python3
"""plot.py OUT SVG DATA: draws throughput against worker count (-j) from
run.sh's workers_*.json as an SVG line chart (standard library only)."""

import json
import os
import sys

SERIES = [("workers_sha256.json", "SHA-256 of D1", "D1", "#1f77b4"),
          ("workers_gzip.json", "gzip -6 of D4", "D4", "#d62728")]


def tree_bytes(data, name):
    total = 0
    for dirpath, _dirs, files in os.walk(os.path.join(data, name)):
        for f in files:
            if not f.startswith("."):
                total += os.path.getsize(os.path.join(dirpath, f))
    return total


def main():
    out, svg, data = sys.argv[1], sys.argv[2], sys.argv[3]
    lines = []
    for fname, label, ds, color in SERIES:
        path = os.path.join(out, fname)
        if not os.path.exists(path):
            continue
        nbytes = tree_bytes(data, ds)
        pts = []
        for r in json.load(open(path))["results"]:
            j = int(r["parameters"]["j"])
            pts.append((j, nbytes / 1e6 / r["median"]))
        lines.append((label, color, sorted(pts)))
    if not lines:
        return 1
    w, h, left, bottom, top, right = 640, 400, 70, 50, 40, 170
    xmax = max(p[0] for _l, _c, pts in lines for p in pts)
    ymax = max(p[1] for _l, _c, pts in lines for p in pts) * 1.15
    sx = lambda x: left + (x - 1) / max(1, xmax - 1) * (w - left - right)  # noqa: E731
    sy = lambda y: h - bottom - y / ymax * (h - top - bottom)  # noqa: E731
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'font-family="sans-serif" font-size="12">' % (w, h),
             '<rect width="100%" height="100%" fill="white"/>',
             '<text x="%d" y="22" font-size="14">file_processor: throughput against '
             'workers (taskset -c 0,1: 2 CPUs)</text>' % left]
    for i in range(6):
        y = ymax * i / 5
        parts.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' %
                     (left, sy(y), w - right, sy(y)))
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%.0f</text>' %
                     (left - 6, sy(y) + 4, y))
    for x in range(1, xmax + 1):
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' %
                     (sx(x), h - bottom + 18, x))
    parts.append('<text x="%d" y="%d" text-anchor="middle">workers (-j)</text>' %
                 ((left + w - right) // 2, h - 10))
    parts.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" '
                 'text-anchor="middle">MB/s</text>' % (h // 2, h // 2))
    for k, (label, color, pts) in enumerate(lines):
        d = " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", sx(x), sy(y))
                     for i, (x, y) in enumerate(pts))
        parts.append('<path d="%s" fill="none" stroke="%s" stroke-width="2"/>' % (d, color))
        for x, y in pts:
            parts.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (sx(x), sy(y), color))
        parts.append('<text x="%d" y="%d" fill="%s">%s</text>' %
                     (w - right + 10, top + 20 + 18 * k, color, label))
    parts.append("</svg>")
    with open(svg, "w") as f:
        f.write("\n".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
