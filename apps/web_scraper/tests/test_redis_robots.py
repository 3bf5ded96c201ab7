"""--redis: robots.txt is read once per host for the whole job, failures
included. Two processes crawl two hosts; the first host's robots.txt
answers 503 once (Retry-After: 1) and then its rules. The process that
fetched it stores in Redis that the host waits (--robots-retry), the
other reads that instead of asking the host, and after the wait one of
them fetches it again for both: robots.txt is requested twice on the
first host and once on the second, in all, and its rules hold in both
processes."""

import os
import subprocess
import tempfile

from scraper_harness import (SKIP, Redis, Site, app_env, check, html, parse_records,
                             redis_missing, run, seconds)

N = 12


def site(other, fail_robots):
    robots = {"ctype": "text/plain", "body": "User-agent: *\nDisallow: /no\n"}
    if fail_robots:
        robots.update(fail_first=1, retry_after=1)
    pages = {"/robots.txt": robots}
    pages["/"] = {"body": html("root", ["/p%d" % i for i in range(N)] + ["/no"])}
    for i in range(N):
        links = ["http://127.0.0.%d:{port:%d}/p%d" % (other + 1, other, i), "/no"]
        pages["/p%d" % i] = {"body": html("p%d" % i, links), "delay": 0.02}
    return pages


def test(binary):
    why = redis_missing(binary)
    if why is not None:
        print(why)
        return SKIP
    with tempfile.TemporaryDirectory() as tmp, Site([site(1, True), site(0, False)]) as s:
        redis = Redis(tmp)
        try:
            outs = [os.path.join(tmp, "out%d.jsonl" % i) for i in range(2)]
            procs = [subprocess.Popen(
                [binary, s.url("/", 0), s.url("/", 1), "--redis", "127.0.0.1:%d" % redis.port,
                 "--job", "robots", "--output", o, "--concurrency", "4",
                 "--robots-retry", "1s"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=app_env("warn"))
                for o in outs]
            errs = []
            for p in procs:
                try:
                    _, err = p.communicate(timeout=seconds(30))
                finally:
                    if p.poll() is None:
                        p.kill()
                errs.append(err.decode()[-1500:])
            check(all(p.returncode == 0 for p in procs), "exit codes: %r" % errs)
            recs = []
            for o in outs:
                with open(o, "rb") as f:
                    recs += parse_records(f.read())
            urls = [r["url"] for r in recs]
            want = {s.url("/", h) for h in (0, 1)} | \
                {s.url("/p%d" % i, h) for i in range(N) for h in (0, 1)}
            check(sorted(urls) == sorted(want), "missing %r, twice %r" % (
                want - set(urls), {u for u in urls if urls.count(u) > 1}))
            check(all(r["status"] == 200 for r in recs), "statuses: %r" % recs[:3])
            robots = [s.hit_count("/robots.txt", h) for h in (0, 1)]
            check(robots == [2, 1], "robots.txt requests per host: %r" % robots)
            check(s.hit_count("/no", 0) == 0 and s.hit_count("/no", 1) == 0,
                  "a URL robots.txt disallows was fetched")
        finally:
            redis.close()


if __name__ == "__main__":
    run(test)
