"""A timeout below one millisecond is one millisecond, not "no limit", and
a short timeout fires on time: against a server that never answers,
-t 0.0004 and -t 0.001 end with `timeout` within a few milliseconds (not
200 ms later, when libcurl would next look), and -t 0.05 after 50 ms.
A timeout that ends an attempt while it is connecting ends it cleanly."""

import time

from client_harness import RawServer, check, client, run, seconds


def silent(conn, server):
    conn.settimeout(seconds(30))
    while conn.recv(4096):
        pass


def test(binary):
    with RawServer(silent) as srv:
        for t, most_ms in (("0.0004", 150), ("0.001", 150), ("0.05", 190)):
            started = time.monotonic()
            r = client(binary, "-t", t, "--retries", 0, srv.url("/"), timeout=10)
            took_ms = (time.monotonic() - started) * 1000
            check(r.code == 1 and len(r.lines) == 1, "-t %s: %r" % (t, r))
            line = r.lines[0]
            check(line["error"] == "timeout", "-t %s: %s" % (t, line))
            check(line["elapsed_ms"] < seconds(most_ms),
                  "-t %s fired after %.1f ms" % (t, line["elapsed_ms"]))
            check(line["elapsed_ms"] >= float(t) * 1000 * 0.9 or float(t) < 0.01,
                  "-t %s fired early, after %.1f ms" % (t, line["elapsed_ms"]))
            print("-t %s: timeout after %.1f ms (run %.0f ms)" % (t, line["elapsed_ms"], took_ms))
        # A timeout that ends an attempt while it connects, many times over:
        # every run ends in its own time, with its report.
        for i in range(10):
            r = client(binary, "-t", "0.001", "--retries", 0, srv.url("/"), timeout=10)
            check(r.code == 1 and r.lines and r.lines[0]["error"] == "timeout",
                  "run %d of -t 0.001: %r" % (i, r))
        # The option log line shows the rounded value.
        r = client(binary, "-t", "0.0004", "--retries", 0, "--log-level", "debug", srv.url("/"))
        check("timeout=1ms" in r.err, "the configuration line: %s" % r.err)


if __name__ == "__main__":
    run(test)
