"""--redis: processes that die on other machines and are never started
again leave nothing missing from the union of the outputs.

Three processes share one job, each writing its own output file. Two say
they run on other machines (--node), so the survivor cannot read their
outputs. The first has a file size limit (RLIMIT_FSIZE) that kills it in
the middle of writing a record (SIGXFSZ): the page is marked "being
recorded" in Redis and its record is not (wholly) out. The second is
SIGKILLed mid-crawl. Once their leases expire (--claim-timeout), the
survivor queues again what they had claimed, and a claim timeout later
what they were recording (the time a process on their machine would have
had to settle it exactly from their output): the union of all the
outputs covers every page of the site. A page may then be recorded twice
(at least once for a dead process's pages in flight), but only one that a
dead process recorded."""

import os
import resource
import signal
import subprocess
import tempfile

from scraper_harness import (SKIP, Redis, Site, app_env, check, complete_records, html,
                             redis_missing, run, seconds, wait_until)

N = 40


def site(other):
    pages = {"/robots.txt": {"ctype": "text/plain", "body": "User-agent: *\nDisallow: /no\n"}}
    pages["/"] = {"body": html("root", ["/p%d" % i for i in range(0, N, 4)] + ["/no"])}
    for i in range(N):
        links = ["/p%d" % ((i + 1) % N), "/p%d" % ((i + 5) % N),
                 "http://127.0.0.%d:{port:%d}/p%d" % (other + 1, other, i)]
        pages["/p%d" % i] = {"body": html("p%d" % i, links), "delay": 0.05}
    return pages


def marks_of(redis, job, node):
    """The items the processes of node have marked "being recorded"."""
    out = redis.command("ZRANGE", "ws:%s:writing" % job, "0", "-1")
    return [line for line in out.splitlines() if '"%s:' % node in line]


def small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, resource.RLIM_INFINITY))


def test(binary):
    why = redis_missing(binary)
    if why is not None:
        print(why)
        return SKIP
    with tempfile.TemporaryDirectory() as tmp, Site([site(1), site(0)]) as s:
        redis = Redis(tmp)
        procs = []
        outs = [os.path.join(tmp, "out%d.jsonl" % i) for i in range(3)]

        def start(i, extra=(), preexec=None, log_level="warn"):
            cmd = [binary, s.url("/", 0), s.url("/", 1), "--redis",
                   "127.0.0.1:%d" % redis.port, "--job", "dead", "--output", outs[i],
                   "--concurrency", "4", "--per-host", "2", "--claim-timeout", "2s",
                   "--extract", "t=//title"] + list(extra)
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 env=app_env(log_level), preexec_fn=preexec)
            procs.append(p)
            return p

        try:
            # Killed by its file size limit in the middle of a record.
            first = start(0, ["--node", "elsewhere-a"], preexec=small_files)
            _, err = first.communicate(timeout=seconds(30))
            check(first.returncode == -signal.SIGXFSZ,
                  "the first process: exit %r: %s" % (first.returncode, err.decode()[-2000:]))
            marks = marks_of(redis, "dead", "elsewhere-a")
            check(marks, "the first process died holding no page being recorded")
            second = start(1, ["--node", "elsewhere-b"])
            survivor = start(2, log_level="info")

            def second_recorded():
                return len(complete_records(outs[1])) >= 3
            wait_until(second_recorded, 30, "records of the second process")
            second.send_signal(signal.SIGKILL)
            second.wait(seconds(10))
            _, err = survivor.communicate(timeout=seconds(40))
            err = err.decode()
            check(survivor.returncode == 0, "the survivor: %s" % err[-3000:])
            check("queued again the items of a process whose lease expired" in err,
                  "the survivor did not take the dead processes' items: %s" % err[-3000:])
            dead = complete_records(outs[0]) + complete_records(outs[1])
            mine = complete_records(outs[2])
            want = {s.url("/", h) for h in (0, 1)} | \
                {s.url("/p%d" % i, h) for i in range(N) for h in (0, 1)}
            got = {r["url"] for r in mine} | {r["url"] for r in dead}
            check(got == want, "missing %r, extra %r" % (sorted(want - got), sorted(got - want)))
            urls = [r["url"] for r in mine + dead]
            dead_urls = {r["url"] for r in dead}
            twice = {u for u in urls if urls.count(u) > 1}
            check(twice <= dead_urls, "recorded twice, not by a dead process: %r" %
                  (twice - dead_urls))
            mine_urls = {r["url"] for r in mine}
            for m in marks:
                url = m.split("\\n")[3]
                check(url in mine_urls, "the page being recorded when the first process died, "
                      "%s, is not in the survivor's output" % url)
            check(s.hit_count("/no", 0) == 0 and s.hit_count("/no", 1) == 0, "robots.txt")
            print("dead processes recorded %d pages, the survivor %d; %d twice" %
                  (len(dead), len(mine), len(twice)))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            redis.close()


if __name__ == "__main__":
    run(test)
