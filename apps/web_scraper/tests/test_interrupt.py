"""SIGINT stops taking URLs, lets the requests in flight finish and
records them, gives the seeds never fetched a record saying so, and exits
130; everything written is whole JSON lines. A second signal stops at
once."""

import signal
import subprocess
import time

from scraper_harness import (Site, app_env, check, html, parse_records, run, seconds,
                             wait_until)


def site(delay):
    pages = {"/robots.txt": {"ctype": "text/plain", "body": ""}}
    pages["/"] = {"body": html("root", ["/p%d" % i for i in range(40)])}
    for i in range(40):
        pages["/p%d" % i] = {"body": html("p%d" % i), "delay": delay}
    return pages


def start(binary, *args):
    return subprocess.Popen([binary] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=app_env("info"))


def test(binary):
    with Site([site(0.3), site(3.0)]) as s:
        p = start(binary, s.url("/"), "--concurrency", "4", "--per-host", "4",
                  "--extract", "t=//title")
        # Wait until pages are in flight, then interrupt.
        wait_until(lambda: len(s.requested(0)) >= 5, 10, "pages in flight")
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=seconds(10))
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        err = err.decode()
        check(p.returncode == 130, "exit %d: %s" % (p.returncode, err))
        recs = parse_records(out)
        with s.lock:
            fetched = {path for (h, path) in s.hits if path.startswith("/p")}
        got = {r["url"].rsplit("/", 1)[1] for r in recs if r["status"] == 200}
        # Every page requested before the signal was finished and recorded.
        check({"/" + g for g in got if g} == fetched, "fetched %r, recorded %r" % (fetched, got))
        check(len(fetched) < 40, "the crawl did not stop: %d pages" % len(fetched))
        check("interrupted=1" in err, "summary: %s" % err)

        # A second signal stops at once, without waiting for the slow pages.
        p = start(binary, s.url("/", 1), "--concurrency", "4", "--per-host", "4",
                  "--grace", "30s")
        wait_until(lambda: len(s.requested(1)) >= 5, 10, "pages in flight")
        p.send_signal(signal.SIGINT)
        time.sleep(0.05)
        started = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=seconds(10))
        check(time.monotonic() - started < 1.0, "the second signal did not stop it at once")
        check(p.returncode == 130, "exit after two signals: %d" % p.returncode)
        parse_records(out)


if __name__ == "__main__":
    run(test)
