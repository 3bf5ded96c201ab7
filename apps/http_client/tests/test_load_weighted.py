"""Load mode spreads -n requests over a weighted URL list exactly by weight;
per-request lines are off by default and go to --output when asked; the
method, headers and body are sent as configured."""

import json
import os
import tempfile

from client_harness import Fixture, check, client, run


def test(binary):
    with Fixture() as fx, tempfile.TemporaryDirectory() as tmp:
        urls = os.path.join(tmp, "targets.txt")
        with open(urls, "w") as f:
            f.write("3 %s\n1 %s\n" % (fx.url("/ok/a"), fx.url("/ok/b")))
        out = os.path.join(tmp, "lines.jsonl")
        r = client(binary, "-n", 80, "-c", 6, "-i", urls, "-o", out)
        check(r.code == 0 and r.lines == [], "run: %r" % r)
        s = r.summary
        check(s["mode"] == "load" and s["requests"] == 80 and s["status"] == {"200": 80},
              "summary %s" % s)
        check(fx.hits == {"/ok/a": 60, "/ok/b": 20}, "server saw %s" % fx.hits)
        with open(out) as f:
            lines = [json.loads(l) for l in f]
        check(len(lines) == 80 and all(l["status"] == 200 for l in lines), "lines file")
        check(sum(1 for l in lines if l["url"].endswith("/ok/a")) == 60, "lines by URL")

        # Duration mode: issues until -z ends, then stops.
        r = client(binary, "-z", "0.5s", "-c", 2, fx.url("/ok/z"))
        check(r.code == 0 and r.summary["requests"] > 0 and r.summary["not_sent"] == 0 and
              0.4 < r.summary["elapsed_s"] < 3, "duration: %r" % r)
        check(fx.hits["/ok/z"] == r.summary["requests"], "server saw %s" % fx.hits)

        # Method, headers and a body from a file.
        body = os.path.join(tmp, "body.json")
        with open(body, "wb") as f:
            f.write(b'{"k": 1}')
        r = client(binary, "-m", "PUT", "-H", "X-Test: yes", "-T", "application/json",
                   "-D", body, fx.url("/ok/put"))
        check(r.code == 0, "put: %r" % r)
        method, path, headers, sent = fx.requests[-1]
        check(method == "PUT" and path == "/ok/put" and sent == b'{"k": 1}' and
              headers.get("X-Test") == "yes" and
              headers.get("Content-Type") == "application/json", "request %s" % (fx.requests[-1],))


if __name__ == "__main__":
    run(test)
