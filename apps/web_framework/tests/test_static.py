"""Static files: served byte for byte with their type, an ETag that a
matching If-None-Match turns into 304, one byte range as 206 (suffix and
open ranges too) and an unsatisfiable one as 416; paths that climb out of
the folder or name hidden files are 404; curl downloads agree."""

import hashlib
import os
import tempfile

from web_harness import (STATIC_DIR, Server, check, curl, have_curl, parse_curl_headers, run,
                         server_log_on_failure)


def read(name):
    with open(os.path.join(STATIC_DIR, name), "rb") as f:
        return f.read()


def whole_files(server):
    for name, kind in [("index.html", "text/html"), ("style.css", "text/css"),
                       ("weft.png", "image/png")]:
        r = server.get("/static/" + name)
        check(r.status == 200, "%s: %r" % (name, r))
        check(r.body == read(name), "%s: body differs (%d bytes)" % (name, len(r.body)))
        check((r.header("Content-Type") or "").startswith(kind), "%s type: %r" % (name, r))
        check(r.header("ETag"), "%s without ETag" % name)
        check(r.header("Content-Encoding") is None, "%s encoded unasked" % name)
        r = server.request("HEAD", "/static/" + name)
        check(r.status == 200 and r.header("Content-Length") == str(len(read(name))),
              "HEAD %s: %r" % (name, r))


def conditional(server):
    r = server.get("/static/style.css")
    etag = r.header("ETag")
    r = server.get("/static/style.css", {"If-None-Match": etag})
    check(r.status == 304 and r.body == b"", "If-None-Match: %r" % r)
    check(r.header("ETag") == etag, "304 without the ETag: %r" % r)
    r = server.get("/static/style.css", {"If-None-Match": '"other", ' + etag})
    check(r.status == 304, "If-None-Match list: %r" % r)
    r = server.get("/static/style.css", {"If-None-Match": '"not-it"'})
    check(r.status == 200 and r.body == read("style.css"), "stale tag: %r" % r)
    r = server.get("/static/style.css", {"If-None-Match": "*"})
    check(r.status == 304, "If-None-Match *: %r" % r)


def ranges(server):
    png = read("weft.png")
    n = len(png)
    for spec, lo, hi in [("bytes=0-99", 0, 99), ("bytes=100-", 100, n - 1),
                         ("bytes=-50", n - 50, n - 1), ("bytes=10-10", 10, 10),
                         ("bytes=%d-%d" % (n - 5, n + 1000), n - 5, n - 1)]:
        r = server.get("/static/weft.png", {"Range": spec})
        check(r.status == 206, "%s: %r" % (spec, r))
        check(r.body == png[lo:hi + 1], "%s: wrong bytes (%d)" % (spec, len(r.body)))
        check(r.header("Content-Range") == "bytes %d-%d/%d" % (lo, hi, n),
              "%s: Content-Range %r" % (spec, r.header("Content-Range")))
    for spec in ["bytes=%d-" % n, "bytes=%d-%d" % (n + 10, n + 20)]:
        r = server.get("/static/weft.png", {"Range": spec})
        check(r.status == 416, "%s: %r" % (spec, r))
        check(r.header("Content-Range") == "bytes */%d" % n, "%s: %r" % (spec, r))
    # A range in a unit the server does not know is ignored: the whole file.
    r = server.get("/static/weft.png", {"Range": "pages=1-2"})
    check(r.status == 200 and r.body == png, "unknown unit: %r" % r)


def escapes(server):
    for path in ["/static/../config.json", "/static/%2e%2e/config.json",
                 "/static/..%2fconfig.json", "/static/%2E%2E%2F%2E%2E%2FCMakeLists.txt",
                 "/static/nope.txt", "/static/.hidden", "/static/index.html/x"]:
        r = server.get(path)
        check(r.status in (400, 404), "%s: %r" % (path, r))
        check(b"listen" not in r.body, "%s leaked config.json" % path)


def hidden_and_dirs(binary):
    """A folder of its own: hidden files are not served, a directory gives
    its index.html, a subfolder's file is found."""
    with tempfile.TemporaryDirectory() as root:
        os.mkdir(os.path.join(root, "sub"))
        for rel, data in [(".secret", b"no"), ("index.html", b"<p>home</p>"),
                          ("sub/data.json", b'{"a": 1}')]:
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
        server = Server(binary, "--static-dir", root)
        with server_log_on_failure(server):
            server.wait_listening()
            check(server.get("/static/.secret").status == 404, "hidden file served")
            r = server.get("/static/sub/data.json")
            check(r.status == 200 and r.body == b'{"a": 1}', "subfolder: %r" % r)
            check((r.header("Content-Type") or "").startswith("application/json"), "json type")
            r = server.get("/static/")
            check(r.status == 200 and r.body == b"<p>home</p>", "directory index: %r" % r)
            check(server.stop() == 0, "exit code")


def with_curl(server):
    if not have_curl():
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "weft.png")
        p = curl("-D", "-", "-o", out, server.base_url() + "/static/weft.png")
        check(p.returncode == 0, "curl: %r" % p.stderr)
        status, headers = parse_curl_headers(p.stdout.decode("latin-1"))
        check(status == 200, "curl status %d" % status)
        with open(out, "rb") as f:
            got = f.read()
        check(hashlib.sha256(got).digest() == hashlib.sha256(read("weft.png")).digest(),
              "curl download differs")
        p = curl("-r", "0-9", server.base_url() + "/static/weft.png")
        check(p.stdout == read("weft.png")[:10], "curl -r: %r" % p.stdout)


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        whole_files(server)
        conditional(server)
        ranges(server)
        escapes(server)
        with_curl(server)
        check(server.stop() == 0, "exit code")
    hidden_and_dirs(binary)


if __name__ == "__main__":
    run(test)
