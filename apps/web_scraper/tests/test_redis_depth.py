"""--redis: three processes on one job serve the shared frontier breadth
first, so every page's depth is its shortest link distance from the seed.

The site has traps for a crawl that is not served level by level: the seed
links to slow pages /a0../a4 on one host (0.4 s each) and to fast chains
/b0_1 -> /b0_2 -> ... on a second host. Each /aK links to /xK at depth 2;
each chain reaches /xK too, but four links further. A crawler that lets a
process go deeper while another still fetches a shallower level finds /xK
through the chain first and records it at depth 5. The depths recorded must
be those a breadth-first search of the site gives."""

import collections
import os
import subprocess
import tempfile

from scraper_harness import (SKIP, Redis, Site, app_env, check, html, parse_records,
                             redis_missing, run, seconds)

K = 5
CHAIN = 4


def sites():
    a = {"/robots.txt": {"ctype": "text/plain", "body": "User-agent: *\nAllow: /\n"}}
    b = {"/robots.txt": {"ctype": "text/plain", "body": ""}}
    a["/"] = {"body": html("root", ["/a%d" % k for k in range(K)] +
                           ["http://127.0.0.2:{port:1}/b%d_1" % k for k in range(K)])}
    for k in range(K):
        a["/a%d" % k] = {"body": html("a%d" % k, ["/x%d" % k]), "delay": 0.4}
        a["/x%d" % k] = {"body": html("x%d" % k, ["/y%d" % k])}
        a["/y%d" % k] = {"body": html("y%d" % k)}
        for i in range(1, CHAIN + 1):
            nxt = ("/b%d_%d" % (k, i + 1) if i < CHAIN
                   else "http://127.0.0.1:{port:0}/x%d" % k)
            b["/b%d_%d" % (k, i)] = {"body": html("b%d_%d" % (k, i), [nxt])}
    return [a, b]


def bfs_depths(site):
    """Shortest link distances from the seed, from the pages' own links."""
    import re
    graph = {}
    for index, pages in enumerate(site.pages):
        for path, page in pages.items():
            if path == "/robots.txt":
                continue
            body = site.expand(page["body"], index)
            links = []
            for href in re.findall(r'href="([^"]+)"', body):
                links.append(href if href.startswith("http") else site.url(href, index))
            graph[site.url(path, index)] = links
    seed = site.url("/")
    depth = {seed: 0}
    q = collections.deque([seed])
    while q:
        u = q.popleft()
        for v in graph.get(u, ()):
            if v not in depth:
                depth[v] = depth[u] + 1
                q.append(v)
    return depth


def test(binary):
    why = redis_missing(binary)
    if why is not None:
        print(why)
        return SKIP
    with tempfile.TemporaryDirectory() as tmp, Site(sites()) as s:
        want = bfs_depths(s)
        check(want[s.url("/x0")] == 2, "the site: %r" % want)
        redis = Redis(tmp)
        try:
            outs = [os.path.join(tmp, "out%d.jsonl" % i) for i in range(3)]
            procs = [subprocess.Popen(
                [binary, s.url("/"), "--redis", "127.0.0.1:%d" % redis.port, "--job", "depth",
                 "--output", o, "--concurrency", "4", "--per-host", "4",
                 "--allow-domain", "127.0.0.1", "--allow-domain", "127.0.0.2"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=app_env("warn"))
                for o in outs]
            errs = []
            for p in procs:
                try:
                    _, err = p.communicate(timeout=seconds(40))
                finally:
                    if p.poll() is None:
                        p.kill()
                errs.append(err.decode()[-1500:])
            check(all(p.returncode == 0 for p in procs),
                  "exit codes: %r %r" % ([p.returncode for p in procs], errs))
            recs = []
            for o in outs:
                with open(o, "rb") as f:
                    recs += parse_records(f.read())
            urls = [r["url"] for r in recs]
            check(len(urls) == len(set(urls)), "recorded twice: %r" %
                  [u for u in set(urls) if urls.count(u) > 1])
            check(set(urls) == set(want), "missing %r, extra %r" %
                  (set(want) - set(urls), set(urls) - set(want)))
            wrong = {r["url"]: (r["depth"], want[r["url"]]) for r in recs
                     if r["depth"] != want[r["url"]]}
            check(not wrong, "depths (recorded, shortest): %r" % wrong)
            check(sum(1 for o in outs if os.path.getsize(o) > 0) >= 2,
                  "the processes did not share the crawl")
        finally:
            redis.close()


if __name__ == "__main__":
    run(test)
