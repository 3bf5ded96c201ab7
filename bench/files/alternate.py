#!/usr/bin/env python3
"""alternate.py ROUNDS LABEL CMD [LABEL CMD...]: times shell commands taking
turns, so that a shared, noisy machine weighs on each alike.

Each round runs every command once (the order rotated from round to round),
pinned to CPUs 0 and 1 (taskset), with output to wherever CMD sends it; one
untimed warm-up round comes first. Prints, per command, the median wall
seconds, the median CPU seconds (user + system, from wait4), and the ratio
of the first command's median against each other's: above 1 means the first
is faster. With --json FILE the runs are written there too.

Standard library only.
"""

import json
import os
import statistics
import subprocess
import sys
import time


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(["taskset", "-c", "0,1", "sh", "-c", cmd],
                         stdin=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit("alternate.py: %r failed (%d)" % (cmd, os.waitstatus_to_exitcode(status)))
    return wall, usage.ru_utime + usage.ru_stime


def main(argv):
    out_json = None
    if len(argv) > 2 and argv[1] == "--json":
        out_json = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) < 4 or len(argv) % 2 != 0:
        sys.exit(__doc__)
    rounds = int(argv[1])
    pairs = list(zip(argv[2::2], argv[3::2]))
    for _label, cmd in pairs:
        timed(cmd)  # warm-up
    walls = {label: [] for label, _ in pairs}
    cpus = {label: [] for label, _ in pairs}
    for r in range(rounds):
        order = pairs[r % len(pairs):] + pairs[:r % len(pairs)]
        for label, cmd in order:
            w, c = timed(cmd)
            walls[label].append(w)
            cpus[label].append(c)
    first = pairs[0][0]
    mw = {k: statistics.median(v) for k, v in walls.items()}
    mc = {k: statistics.median(v) for k, v in cpus.items()}
    print("%-34s %9s %9s %9s %9s" % ("command", "wall s", "CPU s", "ratio", "CPU ratio"))
    for label, _ in pairs:
        print("%-34s %9.3f %9.3f %9.2f %9.2f" % (label, mw[label], mc[label],
                                               mw[label] / mw[first], mc[label] / mc[first]))
    print("(ratio: this command's median over %s's; per round: %s)" % (
        first, ", ".join("%s %s" % (label, " ".join("%.2f" % (w / f) for w, f in
                                                     zip(walls[label], walls[first])))
                         for label, _ in pairs[1:])))
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"walls": walls, "cpus": cpus, "commands": dict(pairs)}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
