"""--state DIR: SIGINT, then SIGTERM, stop a crawl (the requests in flight
finish and are recorded, exit 0), and running the same command again goes
on where it stopped; across the interruptions every page is requested
once and recorded once in the appended output."""

import json
import os
import signal
import subprocess
import tempfile

from scraper_harness import (SKIP, Site, app_env, check, html, parse_records, run, seconds,
                             wait_until)

N = 40


def site():
    pages = {"/robots.txt": {"ctype": "text/plain", "body": "User-agent: *\nDisallow: /no\n"}}
    pages["/"] = {"body": html("root", ["/p%d" % i for i in range(N)] + ["/no"])}
    for i in range(N):
        # Each page links to the next few too: many duplicates to skip.
        pages["/p%d" % i] = {"body": html("p%d" % i, ["/p%d" % ((i + k) % N) for k in range(1, 4)]
                                          + ["/deep%d" % i]), "delay": 0.05}
        pages["/deep%d" % i] = {"body": html("deep%d" % i, ["/", "/p0"]), "delay": 0.05}
    return pages


def lines_in(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def test(binary):
    with Site([site()]) as s, tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        out = os.path.join(tmp, "out.jsonl")
        cmd = [binary, s.url("/"), "--state", state, "--output", out, "--concurrency", "4",
               "--per-host", "4", "--extract", "t=//title"]
        probe = subprocess.run([binary, "--state", os.path.join(tmp, "probe"), "--retries",
                                "0", "--ignore-robots", "http://127.0.0.1:1/"],
                               capture_output=True, env=app_env("warn"))
        if probe.returncode == 2 and b"SQLite" in probe.stderr:
            print("this build has no SQLite module: --state is refused")
            return SKIP
        for sig, after in ((signal.SIGINT, 8), (signal.SIGTERM, 30)):
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=app_env("info"))
            try:
                wait_until(lambda: lines_in(out) >= after or p.poll() is not None, 20,
                           "%d records" % after)
                check(p.poll() is None, "the crawl ended before the signal")
                p.send_signal(sig)
                _, err = p.communicate(timeout=seconds(15))
            finally:
                if p.poll() is None:
                    p.kill()
            err = err.decode()
            check(p.returncode == 0, "exit after %s: %d: %s" % (sig, p.returncode, err))
            check("interrupted=1" in err, "summary after %s: %s" % (sig, err))
            check(os.path.exists(os.path.join(state, "frontier.db")), "no state database")
        before = lines_in(out)
        check(before < 2 * N + 1, "the crawl was not interrupted: %d records" % before)
        p = subprocess.run(cmd, capture_output=True, env=app_env("info"),
                           timeout=seconds(40))
        check(p.returncode == 0, "the resumed crawl: %d %s" % (p.returncode, p.stderr.decode()))
        check(b"resuming" in p.stderr, "no resuming line: %s" % p.stderr.decode())
        with open(out, "rb") as f:
            recs = parse_records(f.read())
        urls = [r["url"] for r in recs]
        dups = {u for u in urls if urls.count(u) > 1}
        check(not dups, "recorded more than once: %r" % dups)
        want = {s.url("/")} | {s.url("/p%d" % i) for i in range(N)} | \
            {s.url("/deep%d" % i) for i in range(N)}
        check(set(urls) == want, "missing %r, extra %r" % (want - set(urls), set(urls) - want))
        with s.lock:
            twice = {k: v for k, v in s.hits.items() if v > 1 and k[1] != "/robots.txt"}
        check(not twice, "requested more than once: %r" % twice)
        check(s.hit_count("/no") == 0, "robots.txt not obeyed")
        check(all(r["fields"]["t"] == r["title"] for r in recs), "fields")
        depths = {r["url"]: r["depth"] for r in recs}
        check(depths[s.url("/deep5")] == 2 and depths[s.url("/p7")] == 1, "depths: %r" % depths)
        # A finished crawl run again fetches nothing.
        p = subprocess.run(cmd, capture_output=True, env=app_env("warn"), timeout=seconds(20))
        check(p.returncode == 0 and lines_in(out) == len(recs), "a third run: %r" % p)


if __name__ == "__main__":
    run(test)
