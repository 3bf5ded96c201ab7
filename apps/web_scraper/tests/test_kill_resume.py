"""SIGKILL at random points, then the same command again, until the crawl
ends: with --state (SQLite), and with --redis (one process killed and
started again on its output, a second one crawling alongside it).

A process killed after writing a page's record but before its frontier
marked the page done must not fetch that page again when it resumes: the
page was noted "being recorded" before its record was written, and the
resumed run finds the record in its output. So across all the kills:
no URL is recorded twice, every page is recorded, no URL whose record was
in the output at a kill is requested again afterwards, and every line is
valid JSON (a record cut short by the kill is cut off the file)."""

import os
import random
import signal
import subprocess
import tempfile
import time

from scraper_harness import (Redis, Site, app_env, check, html, parse_records, redis_missing,
                             run, seconds)

N = 60
KILLS = 8


def site():
    pages = {"/robots.txt": {"ctype": "text/plain", "body": "User-agent: *\nDisallow: /no\n"}}
    pages["/"] = {"body": html("root", ["/p%d" % i for i in range(0, N, 6)] + ["/no"])}
    for i in range(N):
        pages["/p%d" % i] = {"body": html("p%d" % i, ["/p%d" % ((i + k) % N) for k in (1, 2, 7)]
                                          + ["/q%d" % i]), "delay": 0.01}
        pages["/q%d" % i] = {"body": html("q%d" % i, ["/", "/p%d" % ((i * 7) % N)]),
                             "delay": 0.01}
    return pages


def recorded_urls(path):
    """The URLs of the complete records in path."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return set()
    end = raw.rfind(b"\n")
    return {r["url"] for r in parse_records(raw[:end + 1])} if end >= 0 else set()


def check_output(s, outs):
    recs = []
    for o in outs:
        with open(o, "rb") as f:
            recs += parse_records(f.read())  # every line valid JSON
    urls = [r["url"] for r in recs]
    dups = sorted({u for u in urls if urls.count(u) > 1})
    check(not dups, "recorded more than once: %r" % dups)
    want = {s.url("/")} | {s.url("/p%d" % i) for i in range(N)} | \
        {s.url("/q%d" % i) for i in range(N)}
    check(set(urls) == want, "missing %r, extra %r" % (want - set(urls), set(urls) - want))
    check(s.hit_count("/no") == 0, "robots.txt not obeyed")


def run_killed(s, cmd, out, rng, seen_at_kill):
    """One run of cmd killed after a random time (or ended on its own):
    returns its exit code; the URLs recorded at the kill go to
    seen_at_kill with the request log's length then."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=app_env("warn"))
    try:
        if rng is not None:
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.05, 0.35))
            else:
                # Right after a record is written: the moment a page is
                # recorded but perhaps not yet marked done.
                size = os.path.getsize(out) if os.path.exists(out) else 0
                grow = size + rng.randint(1, 6) * 200
                deadline = time.monotonic() + seconds(5)
                while p.poll() is None and time.monotonic() < deadline:
                    if os.path.exists(out) and os.path.getsize(out) >= grow:
                        break
                    time.sleep(0.0005)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=seconds(30))
    finally:
        if p.poll() is None:
            p.kill()
    with s.lock:
        seen_at_kill.append((len(s.log), recorded_urls(out)))
    if p.returncode != -signal.SIGKILL:
        check(p.returncode == 0, "exit %d: %s" % (p.returncode, err.decode()[-2000:]))
    return p.returncode


def check_no_refetch(s, seen_at_kill):
    with s.lock:
        log = [(h, p) for h, p, _, _ in s.log]
    for mark, urls in seen_at_kill:
        paths = {u.split(":%d" % s.ports[0], 1)[1] for u in urls}
        again = sorted({p for h, p in log[mark:] if p in paths and p != "/robots.txt"})
        check(not again, "recorded before a kill, requested again after it: %r" % again)


def crawl_with_kills(s, cmd, out, seed):
    rng = random.Random(seed)
    seen_at_kill = []
    kills = 0
    for _ in range(KILLS):
        if run_killed(s, cmd, out, rng, seen_at_kill) == 0:
            break
        kills += 1
    else:
        check(run_killed(s, cmd, out, None, seen_at_kill) == 0, "the last run")
    check_no_refetch(s, seen_at_kill)
    return kills


def test(binary):
    seed = int(os.environ.get("WEFT_TEST_SEED", str(int(time.time()))))
    print("seed %d" % seed)
    with tempfile.TemporaryDirectory() as tmp:
        with Site([site()]) as s:
            out = os.path.join(tmp, "state.jsonl")
            cmd = [binary, s.url("/"), "--state", os.path.join(tmp, "state"), "--output", out,
                   "--concurrency", "4", "--per-host", "4", "--extract", "t=//title",
                   # About 1.2 s for the whole site however fast the
                   # machine, so that the kills (at most 0.35 s into a run)
                   # find a crawl still going.
                   "--rate", "100"]
            kills = crawl_with_kills(s, cmd, out, seed)
            print("--state: %d kills" % kills)
            check(kills >= 2, "the crawl was too quick to be killed: %d kills" % kills)
            check_output(s, [out])
        why = redis_missing(binary)
        if why is not None:
            print("%s: --redis part skipped" % why)
            return
        with Site([site()]) as s:
            redis = Redis(tmp)
            try:
                outs = [os.path.join(tmp, "r0.jsonl"), os.path.join(tmp, "r1.jsonl")]

                def cmd(o):
                    return [binary, s.url("/"), "--redis", "127.0.0.1:%d" % redis.port,
                            "--job", "kills", "--output", o, "--concurrency", "4",
                            "--per-host", "4", "--claim-timeout", "2s"]
                # A second process crawls alongside the one killed, slower.
                other = subprocess.Popen(cmd(outs[1]) + ["--delay", "50ms", "--per-host", "1"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         env=app_env("warn"))
                try:
                    kills = crawl_with_kills(s, cmd(outs[0]), outs[0], seed + 1)
                    _, err = other.communicate(timeout=seconds(30))
                finally:
                    if other.poll() is None:
                        other.kill()
                print("--redis: %d kills" % kills)
                check(other.returncode == 0, "the other process: %s" % err.decode()[-2000:])
                check_output(s, outs)
            finally:
                redis.close()


if __name__ == "__main__":
    run(test)
