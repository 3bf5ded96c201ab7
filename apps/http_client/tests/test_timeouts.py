"""--timeout ends an attempt that takes too long (reported as timeout);
--deadline ends the whole run, cancelling what is in flight (reported as
deadline) and leaving the rest unsent."""

import time

from client_harness import Fixture, check, client, run


def test(binary):
    with Fixture() as fx:
        started = time.monotonic()
        r = client(binary, fx.url("/slow/3000"), fx.url("/ok"), "--timeout", "0.3", timeout=20)
        took = time.monotonic() - started
        check(r.code == 1, "exit code: %r" % r)
        line = r.by_url(fx.url("/slow/3000"))
        check(line["error"] == "timeout" and line["status"] == 0 and line["attempts"] == 1,
              "timed out: %s" % line)
        check(200 <= line["elapsed_ms"] < 2500, "elapsed %s" % line)
        check(r.by_url(fx.url("/ok"))["status"] == 200, "the other request")
        check(took < 2.8, "the run took %.2f s" % took)
        check(r.summary["errors"] == {"timeout": 1}, "summary %s" % r.summary)

        # The whole run at most 0.5 s: two slow requests in flight are
        # cancelled, the rest is never sent.
        started = time.monotonic()
        r = client(binary, "-c", 2, "-n", 10, "--deadline", "500ms", fx.url("/slow/3000"),
                   timeout=20)
        took = time.monotonic() - started
        s = r.summary
        check(r.code == 1, "exit code: %r" % r)
        check(s["stopped"] == "deadline" and s["errors"] == {"deadline": 2} and
              s["not_sent"] == 8, "summary %s" % s)
        check(took < 2.8, "the run took %.2f s" % took)


if __name__ == "__main__":
    run(test)
