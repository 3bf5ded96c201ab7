"""The output fails (here a file size limit, with SIGXFSZ ignored, so that
write() fails with EFBIG as on a full disk): the crawl stops at once and
exits 1 naming the fault. With --redis it does not count the page it could
not record as recorded: run again on the same output with room to write,
it settles that page against the output, fetches it again, and goes on to
the end: every page recorded, each once, every line valid JSON. (--state
is not tried: the limit would stop SQLite's files too.)"""

import os
import resource
import signal
import subprocess
import tempfile

from scraper_harness import (Redis, Site, app_env, check, html, parse_records, redis_missing,
                             run, seconds)

N = 30


def site():
    pages = {"/robots.txt": {"ctype": "text/plain", "body": ""}}
    pages["/"] = {"body": html("root", ["/p%d" % i for i in range(N)])}
    for i in range(N):
        pages["/p%d" % i] = {"body": html("p%d" % i, ["/p%d" % ((i + 1) % N)])}
    return pages


def small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, resource.RLIM_INFINITY))


def run_to_end(cmd, preexec=None):
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=app_env("warn"), preexec_fn=preexec, timeout=seconds(30))
    return p.returncode, p.stderr.decode("utf-8", "replace")


def check_crawl(s, cmd, out):
    code, err = run_to_end(cmd, small_files)
    check(code == 1 and "cannot write the output" in err,
          "with the output failing: exit %d: %s" % (code, err[-2000:]))
    check(os.path.getsize(out) <= 3000, "the file size limit did not hold")
    code, err = run_to_end(cmd)
    check(code == 0, "run again: exit %d: %s" % (code, err[-2000:]))
    with open(out, "rb") as f:
        recs = parse_records(f.read())
    urls = [r["url"] for r in recs]
    want = {s.url("/")} | {s.url("/p%d" % i) for i in range(N)}
    check(sorted(urls) == sorted(want), "missing %r, twice %r" %
          (want - set(urls), {u for u in urls if urls.count(u) > 1}))


def test(binary):
    with tempfile.TemporaryDirectory() as tmp:
        with Site([site()]) as s:
            out = os.path.join(tmp, "memory.jsonl")
            code, err = run_to_end([binary, s.url("/"), "--output", out, "--concurrency", "2",
                                    "--delay", "20ms"], small_files)
            check(code == 1 and "cannot write the output" in err,
                  "with the output failing: exit %d: %s" % (code, err[-2000:]))
            with s.lock:
                pages = len([1 for h, p, _, _ in s.log if p != "/robots.txt"])
            check(pages < N, "the crawl went on after the output failed: %d pages" % pages)
        why = redis_missing(binary)
        if why is not None:
            print("%s: --redis part skipped" % why)
            return
        with Site([site()]) as s:
            redis = Redis(tmp)
            try:
                out = os.path.join(tmp, "redis.jsonl")
                check_crawl(s, [binary, s.url("/"), "--redis", "127.0.0.1:%d" % redis.port,
                                "--job", "out", "--output", out, "--concurrency", "2"], out)
            finally:
                redis.close()


if __name__ == "__main__":
    run(test)
