"""--rate R holds the requests the server sees to R per second within 5%,
measured from the server's arrival times, and lets no burst through beyond
--burst; --host-rate R limits each host:port to R per second on its own."""

from client_harness import Fixture, check, client, run
from weft_app import jitter

RATE = 40.0
# Seconds of arrival jitter tolerated in the window check: a loaded machine
# delays the server's thread by a few hundred milliseconds at times, more
# under emulation.
JITTER = min(jitter(0.25), 0.5)


def arrivals_ok(times, rate, burst, what):
    """The rate over the run is within 5%, and no one-second window holds
    more than rate + burst requests, with room for JITTER seconds of arrival
    jitter at the server (a request delayed on a busy machine lands in the
    next window beside the ones sent on time). A limiter that let a burst
    through would still fail: --burst 1 with -c 10 would put 10 at once."""
    times = sorted(times)
    # The slope of a least-squares line through (arrival, index): one late
    # arrival at either end (a busy machine) cannot skew it as it would the
    # first-to-last span.
    n = len(times)
    mean_t = sum(times) / n
    mean_i = (n - 1) / 2
    cov = sum((t - mean_t) * (i - mean_i) for i, t in enumerate(times))
    var = sum((t - mean_t) ** 2 for t in times)
    measured = cov / var
    check(abs(measured - rate) <= 0.05 * rate,
          "%s: %.2f requests/s, wanted %.1f within 5%%" % (what, measured, rate))
    most = 0
    j = 0
    for i in range(len(times)):
        while times[i] - times[j] >= 1.0:
            j += 1
        most = max(most, i - j + 1)
    allowed = int(rate * (1.0 + JITTER)) + burst + 1
    check(most <= allowed, "%s: %d requests in one second, at most %d allowed"
          % (what, most, allowed))
    return measured


def test(binary):
    with Fixture() as fx:
        n = 100  # 2.5 s at 40/s
        r = client(binary, "-c", 10, "-n", n, "--rate", RATE, "--executors", 2,
                   fx.url("/ok"), timeout=60)
        check(r.code == 0 and r.summary["requests"] == n, "run: %r" % r)
        times = fx.times_by_path["/ok"]
        check(len(times) == n, "server saw %d" % len(times))
        got = arrivals_ok(times, RATE, 1, "--rate")
        print("global rate: %.2f requests/s" % got)

    # Per host:port: two servers, each held to 20/s by --host-rate.
    with Fixture() as a, Fixture() as b:
        with open_list(a, b) as path:
            r = client(binary, "-c", 10, "-n", 80, "--host-rate", RATE / 2,
                       "--executors", 2, "-i", path, timeout=60)
        check(r.code == 0 and r.summary["requests"] == 80, "run: %r" % r)
        for fx, name in ((a, "a"), (b, "b")):
            times = fx.times_by_path["/ok"]
            check(len(times) == 40, "host %s saw %d" % (name, len(times)))
            got = arrivals_ok(times, RATE / 2, 1, "--host-rate on " + name)
            print("host %s: %.2f requests/s" % (name, got))


class open_list:
    """A temporary URL file listing /ok on both fixtures."""

    def __init__(self, a, b):
        import tempfile
        self.f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        self.f.write("%s\n%s\n" % (a.url("/ok"), b.url("/ok")))
        self.f.close()

    def __enter__(self):
        return self.f.name

    def __exit__(self, *exc):
        import os
        os.unlink(self.f.name)
        return False


if __name__ == "__main__":
    run(test)
