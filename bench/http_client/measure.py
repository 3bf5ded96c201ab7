#!/usr/bin/env python3
"""measure.py: runs one load generator and reports what it cost.

    measure.py TOOL OUT_JSON SERVER_PID -- COMMAND ARGS...

Runs COMMAND with its standard output in OUT_JSON.stdout, under GNU time
when it is installed, so that the CPU time of all its threads (user +
system) and its peak resident set come from the kernel's own accounting
(wait4()), reads the CPU time the server process SERVER_PID used meanwhile
from /proc/PID/stat, parses the number of completed requests and the rate
out of the tool's output (TOOL is http_client, baseline (another
http_client binary), wrk, hey or ab), and writes one JSON object to
OUT_JSON:

    {"tool", "requests", "rps", "failed", "cpu_s", "cpu_us_per_req",
     "server_cpu_us_per_req", "max_rss_kib", "wall_s"}

The CPU time per completed request is the figure that a busy machine
disturbs least: it counts what the load generator itself spent, not how
much of the machine it happened to get.
"""
import json
import os
import re
import subprocess
import sys
import time

TIME = "/usr/bin/time"

def proc_cpu_s(pid):
    """User + system CPU seconds of pid so far (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of stat(5); index 0 here is field 3 (state).
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def parse(tool, text):
    """(requests, rps, failed) from the tool's output."""
    if tool in ("http_client", "baseline"):
        s = json.loads(text.strip().splitlines()[-1])["summary"]
        return s["requests"], s["requests_per_s"], s["failed"]
    if tool == "wrk":
        n = int(re.search(r"(\d+) requests in", text).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                      r"timeout (\d+)", text)
        failed = (int(m.group(1)) if m else 0) + \
            (sum(int(x) for x in e.groups()) if e else 0)
        return n, rps, failed
    if tool == "hey":
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        ok = sum(int(x) for x in re.findall(r"\[2\d\d\]\s+(\d+) responses",
                                            text))
        total = sum(int(x) for x in re.findall(r"\[\d+\]\s+(\d+) responses",
                                               text))
        errs = sum(int(x) for x in re.findall(r"^\s+\[(\d+)\]\s+Get ", text,
                                              re.M))
        return total, rps, total - ok + errs
    if tool == "ab":
        n = int(re.search(r"Complete requests:\s+(\d+)", text).group(1))
        rps = float(re.search(r"Requests per second:\s+([\d.]+)",
                              text).group(1))
        failed = int(re.search(r"Failed requests:\s+(\d+)", text).group(1))
        return n, rps, failed
    raise SystemExit("measure.py: unknown tool %s" % tool)


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        raise SystemExit(__doc__)
    tool, out, server = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cmd = sys.argv[5:]
    # GNU time, when there is one, runs the tool from a small process: the
    # peak resident set that wait4() reports is inherited across exec, and
    # a child forked from this Python would start at Python's size.
    timed = os.access(TIME, os.X_OK)
    if timed:
        cmd = [TIME, "-f", "%U %S %M", "-o", out + ".time"] + cmd
    server_before = proc_cpu_s(server)
    start = time.monotonic()
    with open(out + ".stdout", "w") as so:
        p = subprocess.Popen(cmd, stdout=so, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    server_cpu = proc_cpu_s(server) - server_before
    user, system, rss = ru.ru_utime, ru.ru_stime, ru.ru_maxrss
    if timed:
        try:
            user, system, rss = open(out + ".time").read().split()[-3:]
            user, system, rss = float(user), float(system), int(rss)
        except (OSError, ValueError):
            pass
    text = open(out + ".stdout").read()
    try:
        requests, rps, failed = parse(tool, text)
    except (AttributeError, ValueError, IndexError, KeyError):
        requests, rps, failed = 0, 0.0, 0
    cpu = user + system
    per = lambda s: round(s * 1e6 / requests, 2) if requests else None
    json.dump({"tool": tool, "requests": requests, "rps": rps,
               "failed": failed, "exit": os.waitstatus_to_exitcode(status),
               "cpu_s": round(cpu, 3), "user_s": round(user, 3),
               "sys_s": round(system, 3), "cpu_us_per_req": per(cpu),
               "server_cpu_us_per_req": per(server_cpu),
               "max_rss_kib": rss, "wall_s": round(wall, 3)},
              open(out, "w"))


if __name__ == "__main__":
    main()
