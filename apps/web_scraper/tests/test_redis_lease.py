"""--redis --claim-timeout: the lease of each process.

A process SIGKILLed while it holds every page of a level (slow pages, in
flight) holds that level only until its lease expires: a process started
after the kill fetches those pages within --claim-timeout (and a poll) of
the kill, and goes on to the next level. And the other way: a live
process whose page takes longer than --claim-timeout keeps its claim (it
renews its lease), so the page is requested once, not taken by another
process when the timeout passes."""

import os
import signal
import subprocess
import tempfile
import time

from scraper_harness import (SKIP, Redis, Site, app_env, check, complete_records, html,
                             redis_missing, run, seconds, wait_until)

K = 5


def dead_level_site():
    pages = {"/robots.txt": {"ctype": "text/plain", "body": ""}}
    pages["/"] = {"body": html("root", ["/s%d" % k for k in range(K)])}
    for k in range(K):
        pages["/s%d" % k] = {"body": html("s%d" % k, ["/d%d" % k]), "delay": 1.5}
        pages["/d%d" % k] = {"body": html("d%d" % k)}
    return pages


def slow_page_site():
    pages = {"/robots.txt": {"ctype": "text/plain", "body": ""}}
    pages["/"] = {"body": html("root", ["/slow"] + ["/f%d" % k for k in range(K)])}
    pages["/slow"] = {"body": html("slow", ["/after"]), "delay": 2.5}
    pages["/after"] = {"body": html("after")}
    for k in range(K):
        pages["/f%d" % k] = {"body": html("f%d" % k), "delay": 0.05}
    return pages


def start(binary, s, redis, job, out):
    return subprocess.Popen(
        [binary, s.url("/"), "--redis", "127.0.0.1:%d" % redis.port, "--job", job,
         "--output", out, "--concurrency", "8", "--per-host", "8",
         "--claim-timeout", "1s", "--timeout", "10s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=app_env("warn"))


def finish(p):
    try:
        _, err = p.communicate(timeout=seconds(30))
    finally:
        if p.poll() is None:
            p.kill()
    check(p.returncode == 0, "exit %r: %s" % (p.returncode, err.decode()[-2000:]))


def test(binary):
    why = redis_missing(binary)
    if why is not None:
        print(why)
        return SKIP
    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(tmp)
        try:
            with Site([dead_level_site()]) as s:
                outs = [os.path.join(tmp, "level%d.jsonl" % i) for i in range(2)]
                victim = start(binary, s, redis, "level", outs[0])
                try:
                    wait_until(lambda: all(s.hit_count("/s%d" % k) for k in range(K)), 20,
                               "the slow pages of level 1 in flight")
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(seconds(10))
                finally:
                    if victim.poll() is None:
                        victim.kill()
                killed = time.monotonic()
                with s.lock:
                    s.hits.clear()
                    s.log.clear()
                survivor = start(binary, s, redis, "level", outs[1])
                finish(survivor)
                with s.lock:
                    retaken = [t for h, p, t, _ in s.log if p.startswith("/s")]
                check(len(retaken) == K, "level 1 fetched again: %r" % retaken)
                late = min(retaken) - killed
                # The lease (1 s) and a poll (0.2 s), with the start of the
                # process: well short of the default claim timeout (10 s).
                check(late <= seconds(1.2) + 2.0,
                      "level 1 taken again %.2f s after the kill" % late)
                got = {r["url"]: r["depth"]
                       for r in complete_records(outs[0]) + complete_records(outs[1])}
                want = {s.url("/"): 0}
                want.update({s.url("/s%d" % k): 1 for k in range(K)})
                want.update({s.url("/d%d" % k): 2 for k in range(K)})
                check(got == want, "records: %r" % got)
                print("level 1 taken again %.2f s after the kill" % late)

            with Site([slow_page_site()]) as s:
                outs = [os.path.join(tmp, "slow%d.jsonl" % i) for i in range(2)]
                procs = [start(binary, s, redis, "slow", o) for o in outs]
                for p in procs:
                    finish(p)
                check(s.hit_count("/slow") == 1,
                      "a page slower than --claim-timeout requested %d times" %
                      s.hit_count("/slow"))
                urls = [r["url"] for o in outs for r in complete_records(o)]
                want = {s.url(p) for p in ["/", "/slow", "/after"] +
                        ["/f%d" % k for k in range(K)]}
                check(sorted(urls) == sorted(want), "records: %r" % urls)
        finally:
            redis.close()


if __name__ == "__main__":
    run(test)
