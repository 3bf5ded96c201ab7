"""Politeness: --per-host holds on each host while several hosts are
crawled at once (the test site counts the requests in flight per host);
robots.txt's Crawl-delay and --delay space the requests to one host; the
--user-agent is sent and picks its own robots.txt group; --rate holds
over all hosts; every request counts toward the limits."""

from scraper_harness import Site, check, crawl, html, run
from weft_app import jitter


def slow_host(n, delay, extra_robots=""):
    pages = {"/robots.txt": {"ctype": "text/plain",
                             "body": "User-agent: *\nDisallow: /never\n" + extra_robots}}
    pages["/"] = {"body": html("index", ["/p%d" % i for i in range(n)] + ["/never"]),
                  "delay": delay}
    for i in range(n):
        pages["/p%d" % i] = {"body": html("page %d" % i), "delay": delay}
    return pages


def gaps(site, index, prefix="/p"):
    host = "127.0.0.%d" % (index + 1)
    with site.lock:
        times = sorted(t for h, p, t, _ in site.log if h == host and p.startswith(prefix))
    return [b - a for a, b in zip(times, times[1:])]


def test(binary):
    # Two hosts at once, 2 in flight on each at most, 8 workers. Each page
    # takes 0.25 s to answer, so that even a sanitizer build on a busy
    # machine has a host's second request out before its first returns.
    with Site([slow_host(12, 0.25), slow_host(12, 0.25)]) as site:
        c = crawl(binary, site.url("/", 0), site.url("/", 1), "--per-host", "2",
                  "--concurrency", "8")
        check(c.code == 0, "exit: %r" % c)
        check(len(c.records) == 26, "records: %d" % len(c.records))
        for host in ("127.0.0.1", "127.0.0.2"):
            check(site.max_in_flight[host] <= 2,
                  "%s had %d in flight" % (host, site.max_in_flight[host]))
            check(site.max_in_flight[host] == 2, "%s never had 2 in flight" % host)
        check(site.hit_count("/never", 0) == 0 and site.hit_count("/never", 1) == 0,
              "robots.txt not obeyed")
        # Both hosts at once: more than 2 requests in flight in all.
        check(site.max_total >= 3, "the hosts were not crawled in parallel: %d in flight"
              % site.max_total)

    # Crawl-delay from robots.txt for our agent's group, and the agent sent.
    robots = ("User-agent: *\nDisallow: /never\n\nUser-agent: testbot\n"
              "Disallow: /p3\nCrawl-delay: 0.3\n")
    pages = slow_host(4, 0)
    pages["/robots.txt"]["body"] = robots
    with Site([pages]) as site:
        c = crawl(binary, site.url("/"), "--user-agent", "testbot/1.0 (+http://x)",
                  "--concurrency", "4", "--per-host", "4")
        check(c.code == 0, "exit: %r" % c)
        check(site.hit_count("/p3") == 0, "testbot's Disallow: /p3 not obeyed")
        check(site.hit_count("/never") == 1, "the * group applied to testbot")
        with site.lock:
            agents = {a for _, _, _, a in site.log}
        check(agents == {"testbot/1.0 (+http://x)"}, "user agents sent: %r" % agents)
        g = gaps(site, 0, "/")[1:]  # after robots.txt
        check(len(g) >= 3 and min(g) >= 0.3 - jitter(0.05) and sum(g) / len(g) >= 0.29,
              "Crawl-delay 0.3 s not kept: %r" % g)

    # --delay without robots.txt: every request to the host spaced.
    with Site([slow_host(4, 0)]) as site:
        c = crawl(binary, site.url("/"), "--delay", "200ms", "--ignore-robots",
                  "--per-host", "2")
        check(c.code == 0 and len(c.records) == 6, "exit: %r" % c)
        check(site.hit_count("/robots.txt") == 0, "--ignore-robots fetched robots.txt")
        check(site.hit_count("/never") == 1, "--ignore-robots still obeyed it")
        g = gaps(site, 0, "/")
        # Arrivals at the server spread by tens of milliseconds on a busy
        # machine (more under emulation): one late arrival shortens the gap
        # after it, but the mean gap cannot fall short of the delay.
        check(len(g) == 5 and min(g) >= 0.2 - jitter(0.04) and sum(g) / len(g) >= 0.19,
              "--delay 200ms not kept: %r" % g)

    # --rate over all hosts: 10 requests a second in all, robots.txt too.
    with Site([slow_host(3, 0), slow_host(3, 0)]) as site:
        c = crawl(binary, site.url("/", 0), site.url("/", 1), "--rate", "10",
                  "--per-host", "4")
        check(c.code == 0 and len(c.records) == 8, "exit: %r" % c)
        with site.lock:
            times = sorted(t for _, _, t, _ in site.log)
        check(len(times) == 10, "requests: %d" % len(times))
        # A bucket of one token: 10 requests take at least 0.9 s.
        check(times[-1] - times[0] >= 0.9 - jitter(0.05), "--rate 10: %.2f s" % (times[-1] - times[0]))


if __name__ == "__main__":
    run(test)
