"""-c is bounded by the work: no more workers start than there are
requests (load mode: -n; fetch mode: the URLs), and they start as work
comes, so -c 100000 -n 3 is as quick and small as -c 3."""

import resource
import time

from client_harness import Fixture, check, client, run, seconds


def test(binary):
    with Fixture() as fx:
        started = time.monotonic()
        r = client(binary, "-c", 100000, "-n", 3, "--executors", 2, fx.url("/ok"),
                   timeout=30)
        took = time.monotonic() - started
        rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        check(r.code == 0 and r.summary["ok"] == 3, "exit code: %r" % r)
        check(r.summary["workers"] <= 3, "workers %s" % r.summary)
        check(r.summary["concurrency"] == 100000, "concurrency %s" % r.summary)
        check(took < seconds(3), "-c 100000 -n 3 took %.2f s" % took)
        check(rss_mib < 300, "-c 100000 -n 3 peaked at %.0f MiB" % rss_mib)

        # Fetch mode: one worker per URL at most.
        urls = [fx.url("/ok/%d" % i) for i in range(3)]
        r = client(binary, "-c", 50, *urls)
        check(r.code == 0 and len(r.lines) == 3, "fetch: %r" % r)
        check(1 <= r.summary["workers"] <= 3, "fetch workers %s" % r.summary)

        # Workers still run side by side when there is work for them.
        r = client(binary, "-c", 4, "-n", 40, "--executors", 1, fx.url("/slow/20"))
        check(r.code == 0 and r.summary["ok"] == 40, "load: %r" % r)
        check(r.summary["workers"] == 4, "load workers %s" % r.summary)
        check(fx.max_in_flight >= 2, "never more than %d in flight" % fx.max_in_flight)


if __name__ == "__main__":
    run(test)
