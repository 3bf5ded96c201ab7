"""SIGINT in the middle of a run stops new requests, lets those in flight
finish within the grace period, writes the summary and exits promptly; a
request still in flight when the grace period ends is cancelled and
reported; a second SIGINT cancels at once."""

import signal
import time

from client_harness import Fixture, Running, check, run, seconds, wait_until


def interrupt(binary, fx, hits, *args, twice=False):
    """Runs http_client with args, sends SIGINT once the fixture has seen
    hits requests (twice: a second SIGINT 0.2 s later) and returns the
    Result and the seconds from the last signal to the exit."""
    p = Running(binary, *args)
    try:
        wait_until(lambda: fx.total_hits() >= hits, 10, "requests to arrive")
        if twice:
            p.signal(signal.SIGINT)
            time.sleep(0.2)
            started = time.monotonic()
            p.signal(signal.SIGINT)
        else:
            p.signal(signal.SIGINT)
            started = time.monotonic()
        r = p.finish(10)
        took = time.monotonic() - started
    finally:
        p.kill()
    return r, took


def drain(binary, fx):
    r, took = interrupt(binary, fx, 12, "-c", 4, "-z", "60s", "--executors", 2,
                        "--lines", "on", fx.url("/slow/100"))
    check(r.code == 0, "exit code: %r" % r)
    check(took < seconds(2), "exit took %.2f s after SIGINT" % took)
    s = r.summary
    check(s is not None and s["stopped"] == "signal", "summary %s" % s)
    # The requests in flight finished: every request the server saw is in
    # the report, and all succeeded.
    check(s["requests"] == fx.total_hits() and s["ok"] == s["requests"] and
          s["failed"] == 0, "summary %s, server saw %d" % (s, fx.total_hits()))
    check(len(r.lines) == s["requests"], "%d lines" % len(r.lines))


def grace_runs_out(binary, fx):
    r, took = interrupt(binary, fx, 3, "-c", 3, "-n", 100, "--shutdown-grace-ms", 300,
                        fx.url("/slow/20000"))
    check(took < seconds(3), "exit took %.2f s" % took)
    s = r.summary
    check(r.code == 1, "exit code: %r" % r)
    check(s["stopped"] == "signal" and s["errors"] == {"cancelled": 3} and
          s["not_sent"] == 97, "summary %s" % s)


def second_signal(binary, fx):
    r, took = interrupt(binary, fx, 2, "-c", 2, "-n", 10, "--shutdown-grace-ms", 60000,
                        fx.url("/slow/20000"), twice=True)
    check(took < seconds(3), "exit took %.2f s after the second SIGINT" % took)
    check(r.code == 1 and r.summary["errors"] == {"cancelled": 2}, "second: %r" % r)


def test(binary):
    with Fixture() as fx:
        drain(binary, fx)
    with Fixture() as fx:
        grace_runs_out(binary, fx)
    with Fixture() as fx:
        second_signal(binary, fx)


if __name__ == "__main__":
    run(test)
