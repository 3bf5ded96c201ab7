"""Fetch mode: every URL (from arguments, a file, standard input) is
fetched once; the JSON lines and the summary match what the server saw;
refused connections and malformed URLs are reported per request without
stopping the run, and the exit code says whether all succeeded."""

import os
import tempfile

from client_harness import Fixture, check, client, free_port, run


def all_ok(binary, fx):
    urls = [fx.url("/ok/%d" % i) for i in range(5)]
    r = client(binary, *urls, "--executors", "2")
    check(r.code == 0, "exit code: %r" % r)
    check(len(r.lines) == 5, "lines: %r" % r)
    for u in urls:
        line = r.by_url(u)
        check(line["status"] == 200 and line["bytes"] == 5, "line %s" % line)
        check(line["attempts"] == 1 and line["error"] is None and line["ok"], "line %s" % line)
        check(line["ttfb_ms"] is not None and line["total_ms"] >= line["ttfb_ms"], "times %s" % line)
    s = r.summary
    check(s["mode"] == "fetch" and s["requests"] == 5 and s["ok"] == 5 and s["failed"] == 0,
          "summary %s" % s)
    check(s["status"] == {"200": 5} and s["errors"] == {}, "summary %s" % s)
    check(s["latency_ms"]["count"] == 5 and s["bytes"] == 25, "summary %s" % s)
    check(sum(b["count"] for b in s["histogram"]) == 5, "histogram %s" % s["histogram"])
    for i in range(5):
        check(fx.hits.get("/ok/%d" % i) == 1, "server hits %s" % fx.hits)


def mixed(binary, fx):
    refused = "http://127.0.0.1:%d/" % free_port()
    urls = [fx.url("/ok/m"), fx.url("/status/404"), fx.url("/status/500"), refused,
            "http//missing-colon", "ftp://127.0.0.1/file", "not a url at all",
            fx.url("/close")]
    r = client(binary, *urls, "--retries", "1", "--retry-backoff-ms", "10")
    check(r.code == 1, "exit code: %r" % r)
    check(len(r.lines) == len(urls), "lines: %r" % r)
    check(r.by_url(fx.url("/ok/m"))["status"] == 200, "ok line")
    l404 = r.by_url(fx.url("/status/404"))
    check(l404["status"] == 404 and not l404["ok"] and l404["attempts"] == 1, "404 %s" % l404)
    l500 = r.by_url(fx.url("/status/500"))
    check(l500["status"] == 500 and l500["attempts"] == 2, "500 retried once: %s" % l500)
    lref = r.by_url(refused)
    check(lref["error"] == "connection_refused" and lref["status"] == 0 and
          lref["attempts"] == 2, "refused %s" % lref)
    for bad in ("http//missing-colon", "ftp://127.0.0.1/file", "not a url at all"):
        line = r.by_url(bad)
        check(line["error"] == "malformed_url" and line["attempts"] == 0 and line["detail"],
              "malformed %s" % line)
    lclose = r.by_url(fx.url("/close"))
    check(lclose["error"] == "empty_reply" and lclose["attempts"] == 2, "close %s" % lclose)
    s = r.summary
    check(s["requests"] == 8 and s["ok"] == 1 and s["failed"] == 7, "summary %s" % s)
    check(s["status"] == {"200": 1, "404": 1, "500": 1}, "summary %s" % s)
    check(s["errors"] == {"malformed_url": 3, "connection_refused": 1, "empty_reply": 1},
          "summary %s" % s)
    # Each line's attempts are what the server saw. (libcurl itself may
    # resend once on a fresh connection when a reused one was closed, so
    # /close is left out.)
    for path in ("/ok/m", "/status/404", "/status/500"):
        check(r.by_url(fx.url(path))["attempts"] == fx.hits.get(path),
              "attempts for %s: server saw %s" % (path, fx.hits))
    check(s["attempts"] == sum(l["attempts"] for l in r.lines), "summary attempts %s" % s)


def from_file_and_stdin(binary, fx):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "urls.txt")
        with open(path, "w") as f:
            f.write("# a comment\n\n%s\n  %s  \n" % (fx.url("/ok/f1"), fx.url("/ok/f2")))
        r = client(binary, "--input", path)
        check(r.code == 0 and len(r.lines) == 2, "from a file: %r" % r)
        r = client(binary, "-", stdin="%s\n%s\n%s\n" % (fx.url("/ok/s1"), fx.url("/ok/s2"),
                                                          fx.url("/ok/s3")))
        check(r.code == 0 and len(r.lines) == 3, "from stdin: %r" % r)
        # Lines to a file: stdout keeps only the summary.
        out = os.path.join(tmp, "out.jsonl")
        r = client(binary, "-o", out, fx.url("/ok/o1"), fx.url("/ok/o2"))
        check(r.code == 0 and r.lines == [] and r.summary["requests"] == 2, "-o: %r" % r)
        with open(out) as f:
            check(len(f.read().splitlines()) == 2, "lines in the output file")
        r = client(binary, "--summary", "text", fx.url("/ok/t"))
        check(r.code == 0 and "Requests:" in r.out and "Latency" in r.out, "text: %r" % r)


def test(binary):
    with Fixture() as fx:
        all_ok(binary, fx)
        mixed(binary, fx)
        from_file_and_stdin(binary, fx)


if __name__ == "__main__":
    run(test)
