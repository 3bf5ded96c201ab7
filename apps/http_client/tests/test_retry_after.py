"""Retries: a 429 or 503 is tried again after its Retry-After (seconds or
an HTTP date), otherwise after an exponential backoff; retries stop at
--retries, and a Retry-After beyond --retry-after-max ends them."""

from client_harness import Fixture, check, client, run


def gaps(fx, path):
    t = fx.times_by_path[path]
    return [b - a for a, b in zip(t, t[1:])]


def test(binary):
    with Fixture() as fx:
        # Retry-After in seconds: two 429s, then 200.
        path = "/flaky/sec/2/s1"
        r = client(binary, fx.url(path), "--retries", 3, "--retry-backoff-ms", 10)
        line = r.by_url(fx.url(path))
        check(r.code == 0 and line["status"] == 200 and line["attempts"] == 3, "seconds: %r" % r)
        g = gaps(fx, path)
        check(len(g) == 2 and all(x >= 0.95 for x in g), "gaps after Retry-After: 1: %s" % g)
        check(line["elapsed_ms"] >= 1900, "elapsed %s" % line)

        # Retry-After as an HTTP date two seconds ahead (whole seconds: the
        # wait is between one and two seconds).
        path = "/flaky/date/1/d2"
        r = client(binary, fx.url(path), "--retries", 2, "--retry-backoff-ms", 10)
        line = r.by_url(fx.url(path))
        check(r.code == 0 and line["attempts"] == 2, "date: %r" % r)
        g = gaps(fx, path)
        check(len(g) == 1 and g[0] >= 0.9, "gap after a Retry-After date: %s" % g)

        # No Retry-After: backoff of 200 ms, then 400 ms, each with jitter
        # down to half.
        path = "/flaky/backoff/2/n"
        r = client(binary, fx.url(path), "--retries", 2, "--retry-backoff-ms", 200)
        check(r.code == 0 and r.by_url(fx.url(path))["attempts"] == 3, "backoff: %r" % r)
        g = gaps(fx, path)
        check(len(g) == 2 and g[0] >= 0.095 and g[1] >= 0.195, "backoff gaps %s" % g)

        # Retries run out: the last 503 is the result.
        path = "/flaky/out/9/5"
        r = client(binary, fx.url(path), "--retries", 2, "--retry-backoff-ms", 10)
        line = r.by_url(fx.url(path))
        check(r.code == 1 and line["status"] == 503 and line["attempts"] == 3 and
              fx.hits[path] == 3, "retries run out: %r" % r)

        # A Retry-After longer than --retry-after-max is not waited for.
        path = "/flaky/far/9/s100"
        r = client(binary, fx.url(path), "--retries", 3, "--retry-after-max", "1s", timeout=20)
        line = r.by_url(fx.url(path))
        check(r.code == 1 and line["status"] == 429 and line["attempts"] == 1, "far: %r" % r)

        # Load mode makes no retries unless asked.
        path = "/flaky/load/1/s0"
        r = client(binary, "-n", 1, fx.url(path))
        check(r.code == 1 and r.summary["attempts"] == 1 and r.summary["status"] == {"429": 1},
              "load mode: %r" % r)


if __name__ == "__main__":
    run(test)
