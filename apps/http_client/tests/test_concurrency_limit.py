"""Load mode never has more requests in flight than -c, whatever the
number of executors: the server counts the requests it is serving at once.
The summary's counts match the requests the server saw."""

from client_harness import Fixture, check, client, run


def test(binary):
    for executors, conc in ((1, 5), (2, 8), (3, 7)):
        with Fixture() as fx:
            r = client(binary, "-c", conc, "-n", 10 * conc, "--executors", executors,
                       fx.url("/slow/30"), timeout=60)
            check(r.code == 0, "exit code: %r" % r)
            s = r.summary
            check(s["mode"] == "load" and s["requests"] == 10 * conc and s["ok"] == 10 * conc,
                  "summary %s" % s)
            check(r.lines == [], "per-request lines are off by default in load mode")
            check(fx.hits.get("/slow/30") == 10 * conc, "server saw %s" % fx.hits)
            check(fx.max_in_flight <= conc, "%d in flight with -c %d" % (fx.max_in_flight, conc))
            # The workers do run side by side (a serial client would pass
            # the bound trivially).
            check(fx.max_in_flight >= 2, "never more than %d in flight" % fx.max_in_flight)
            check(s["executors"] == min(executors, conc), "executors %s" % s)


if __name__ == "__main__":
    run(test)
