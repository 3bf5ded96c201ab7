"""--redis HOST:PORT --job NAME: three processes crawl one site together
through a redis-server the test starts on a free port. The union of their
outputs is the site, each URL once; each page is requested once in all,
robots.txt too (one process fetches it for the job, the others read it
from Redis); --per-host holds across the processes (the site counts
requests in flight per host); and the URLs a killed process had taken are taken again by the
others after --claim-timeout, those it was recording settled from its
output, so that even then each URL is recorded once."""

import os
import signal
import subprocess
import tempfile

from scraper_harness import (SKIP, Redis, Site, app_env, check, html, parse_records,
                             redis_missing, run, seconds, wait_until)

N = 30


def site(other):
    pages = {"/robots.txt": {"ctype": "text/plain", "body": "User-agent: *\nDisallow: /no\n"}}
    pages["/"] = {"body": html("root", ["/p%d" % i for i in range(N)] + ["/no"])}
    for i in range(N):
        links = ["/p%d" % ((i + 1) % N), "http://127.0.0.%d:{port:%d}/p%d" % (other + 1, other, i)]
        pages["/p%d" % i] = {"body": html("p%d" % i, links), "delay": 0.03}
    return pages


def crawl_together(binary, s, redis, tmp, job, n, extra=(), kill_first_after=None):
    outs = [os.path.join(tmp, "%s-%d.jsonl" % (job, i)) for i in range(n)]
    procs = []
    def enough():
        try:
            with open(outs[0], "rb") as f:
                return f.read().count(b"\n") >= kill_first_after
        except FileNotFoundError:
            return False
    for i in range(n):
        cmd = [binary, s.url("/", 0), s.url("/", 1), "--redis", "127.0.0.1:%d" % redis.port,
               "--job", job, "--output", outs[i], "--concurrency", "4", "--per-host", "2",
               "--extract", "t=//title"] + list(extra)
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      env=app_env("warn")))
        if i == 0 and kill_first_after is not None:
            # The first one has records before the others join (served
            # level by level, the others could otherwise leave it few).
            wait_until(enough, 20, "records of the first process")
    if kill_first_after is not None:
        procs[0].send_signal(signal.SIGKILL)
    codes = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=seconds(40))
        finally:
            if p.poll() is None:
                p.kill()
        codes.append((p.returncode, err.decode()[-1500:]))
    records = []
    for o in outs:
        if os.path.exists(o):
            with open(o, "rb") as f:
                records += parse_records(f.read())
    return codes, records


def test(binary):
    why = redis_missing(binary)
    if why is not None:
        print(why)
        return SKIP
    with tempfile.TemporaryDirectory() as tmp, Site([site(1), site(0)]) as s:
        redis = Redis(tmp)
        try:
            codes, recs = crawl_together(binary, s, redis, tmp, "three", 3)
            check(all(c == 0 for c, _ in codes), "exit codes: %r" % codes)
            urls = [r["url"] for r in recs]
            want = {s.url("/", h) for h in (0, 1)} | \
                {s.url("/p%d" % i, h) for i in range(N) for h in (0, 1)}
            dups = {u for u in urls if urls.count(u) > 1}
            check(not dups, "recorded twice: %r" % dups)
            check(set(urls) == want, "missing %r" % (want - set(urls)))
            check(all(r["status"] == 200 and r["fields"]["t"] == r["title"] for r in recs),
                  "records: %r" % recs[:3])
            with s.lock:
                twice = {k: v for k, v in s.hits.items() if v > 1 and k[1] != "/robots.txt"}
                inflight = dict(s.max_in_flight)
            check(not twice, "requested more than once: %r" % twice)
            check(s.hit_count("/no", 0) == 0 and s.hit_count("/no", 1) == 0, "robots.txt")
            robots = [s.hit_count("/robots.txt", h) for h in (0, 1)]
            check(robots == [1, 1], "robots.txt fetched %r times (per host) by three "
                  "processes: once was enough" % robots)
            check(all(v <= 2 for v in inflight.values()),
                  "--per-host 2 not held across processes: %r" % inflight)

            # A process killed mid-crawl: its claims are taken again.
            with s.lock:
                s.hits.clear()
            codes, recs = crawl_together(binary, s, redis, tmp, "killed", 2,
                                         extra=["--claim-timeout", "1s", "--timeout", "1s"],
                                         kill_first_after=5)
            check(codes[1][0] == 0, "the survivor: %r" % (codes[1],))
            urls = [r["url"] for r in recs]
            check(set(urls) == want, "missing after a kill: %r" % (want - set(urls)))
            dups = {u for u in urls if urls.count(u) > 1}
            # What the killed process was recording is settled by the
            # survivor from the killed one's output: nothing twice.
            check(not dups, "recorded twice after a kill: %r" % dups)
        finally:
            redis.close()


if __name__ == "__main__":
    run(test)
