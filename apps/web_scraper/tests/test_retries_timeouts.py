"""Retries: a 503 with Retry-After is tried again after the delay it asks
and recorded with its final status; --retries 0 records the 503; a page
slower than --timeout is recorded with an error and the crawl goes on; a
host that answers nothing gets a record for its seed, and the crawl exits 1
when no seed could be fetched. A host whose pages keep failing is paused,
then given up after --give-up-after failures, its other URLs recorded as
such; a body past --max-body is cut and recorded with an error. A
robots.txt answering 503 disallows its host until it is fetched again
(--robots-retry): then the host's pages are crawled under its rules; when
nothing else is left to crawl the host is given up at once."""

import socket

from scraper_harness import Site, check, crawl, html, run


def test(binary):
    pages = {
        "/robots.txt": {"ctype": "text/plain", "body": "User-agent: *\nAllow: /\n"},
        "/": {"body": html("root", ["/busy", "/slow", "/ok"])},
        "/busy": {"body": html("busy at first"), "fail_first": 1, "retry_after": 1},
        "/slow": {"body": html("slow"), "delay": 2},
        "/ok": {"body": html("ok")},
    }
    with Site([pages]) as site:
        c = crawl(binary, site.url("/"), "--timeout", "500ms", "--retries", "1")
        check(c.code == 0, "exit: %r" % c)
        busy = c.by_url[site.url("/busy")]
        check(busy["status"] == 200 and busy["error"] is None, "503 then 200: %r" % busy)
        check(site.hit_count("/busy") == 2, "hits of /busy: %d" % site.hit_count("/busy"))
        t = site.times[("127.0.0.1", "/busy")]
        check(t[1] - t[0] >= 0.95, "retried %.2f s after a Retry-After of 1 s" % (t[1] - t[0]))
        check(busy["elapsed_ms"] >= 950, "elapsed_ms: %r" % busy)
        slow = c.by_url[site.url("/slow")]
        check(slow["status"] is None and "timed out" in slow["error"], "slow: %r" % slow)
        check(site.hit_count("/slow") == 2, "a timeout is retried once: %d" % site.hit_count("/slow"))
        check(c.by_url[site.url("/ok")]["status"] == 200, "the crawl went on")

    pages["/busy"]["fail_first"] = 5
    with Site([pages]) as site:
        c = crawl(binary, site.url("/busy"), "--retries", "0")
        r = c.by_url[site.url("/busy")]
        check(r["status"] == 503 and "503" in r["error"], "--retries 0: %r" % r)
        check(site.hit_count("/busy") == 1, "--retries 0 retried")
        check(c.code == 0, "a seed with a response counts as fetched: %r" % c)

    failing = {"/robots.txt": {"ctype": "text/plain", "body": ""},
               "/": {"body": html("root", ["/e%d" % i for i in range(8)])}}
    for i in range(8):
        failing["/e%d" % i] = {"status": 500, "body": "down"}
    with Site([failing]) as site:
        c = crawl(binary, site.url("/"), "--retries", "0", "--give-up-after", "3",
                  "--per-host", "1")
        check(c.code == 0, "exit: %r" % c)
        errs = [c.by_url[site.url("/e%d" % i)]["error"] for i in range(8)]
        check(errs[:3] == ["HTTP 500"] * 3, "the first failures: %r" % errs)
        check(all("given up" in e for e in errs[3:]), "given up: %r" % errs)
        check(sum(site.hit_count("/e%d" % i) for i in range(8)) == 3,
              "pages of a given-up host were requested")
        t = sorted(site.times[("127.0.0.1", "/e1")] + site.times[("127.0.0.1", "/e2")])
        check(t[1] - t[0] >= 0.45, "no pause after the second failure: %.2f s" % (t[1] - t[0]))

    big = {"/robots.txt": {"ctype": "text/plain", "body": ""},
           "/big": {"body": "<html><title>big</title>" + "y" * 300000}}
    with Site([big]) as site:
        c = crawl(binary, site.url("/big"), "--max-body", "100000")
        r = c.by_url[site.url("/big")]
        check(r["bytes"] == 100000 and "max-body" in r["error"] and r["title"] == "big",
              "--max-body: %r" % r)

    # robots.txt answering 503 disallows its host for a while, then is
    # fetched again (--robots-retry, doubling) while another host keeps the
    # crawl busy: the pages waited, are crawled, and the rules are obeyed.
    flaky = {"/robots.txt": {"ctype": "text/plain", "fail_first": 2, "retry_after": 0,
                             "body": "User-agent: *\nDisallow: /private\n"},
             "/": {"body": html("root", ["/a", "/private/x"])},
             "/a": {"body": html("a")},
             "/private/x": {"body": html("private")}}
    busy = {"/robots.txt": {"ctype": "text/plain", "body": ""},
            "/slow": {"body": html("slow"), "delay": 1.5}}
    with Site([flaky, busy]) as site:
        c = crawl(binary, site.url("/"), site.url("/slow", 1), "--retries", "0",
                  "--robots-retry", "200ms")
        check(c.code == 0, "exit: %r" % c)
        check(site.hit_count("/robots.txt") == 3,
              "robots.txt fetched %d times" % site.hit_count("/robots.txt"))
        t = site.times[("127.0.0.1", "/robots.txt")]
        check(t[1] - t[0] >= 0.18 and t[2] - t[1] >= 0.36,
              "robots.txt fetched again too soon: %r" % [b - a for a, b in zip(t, t[1:])])
        for path in ("/", "/a"):
            r = c.by_url.get(site.url(path))
            check(r is not None and r["status"] == 200 and r["error"] is None,
                  "%s after robots.txt answered: %r" % (path, r))
            check(site.times[("127.0.0.1", path)][0] > t[2], "%s fetched before robots.txt" % path)
        check(site.hit_count("/private/x") == 0 and site.url("/private/x") not in c.by_url,
              "a disallowed page was fetched: %r" % c.records)

    # When only its pages are left, a host whose robots.txt keeps failing
    # is given up at once, its seed recorded with the reason.
    flaky["/robots.txt"]["fail_first"] = 100
    with Site([flaky]) as site:
        c = crawl(binary, site.url("/"), "--retries", "0", "--robots-retry", "10s")
        r = c.by_url[site.url("/")]
        check(r["status"] is None and "robots.txt unreachable" in r["error"], "seed: %r" % r)
        check(site.hit_count("/robots.txt") == 1 and site.hit_count("/") == 0,
              "requests: %r" % site.requested())
        check(c.seconds < 5, "waited for robots.txt with nothing else to do: %.1f s" % c.seconds)

    # A port nobody listens on: the seed's record says why, exit 1.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = crawl(binary, "http://127.0.0.1:%d/" % port, "--retries", "0")
    check(c.code == 1 and len(c.records) == 1, "unreachable seed: %r" % c)
    check(c.records[0]["error"] and c.records[0]["status"] is None, "record: %r" % c.records)


if __name__ == "__main__":
    run(test)
