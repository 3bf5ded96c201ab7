"""Compression: a large JSON answer is gzipped when the client asks for it
(curl --compressed, Accept-Encoding: gzip) with Vary: Accept-Encoding, and
not otherwise: no Accept-Encoding, gzip;q=0, a body under the threshold, an
image, or the server started with --no-gzip."""

import gzip
import json

from web_harness import (Server, check, curl, have_curl, parse_curl_headers, run,
                         server_log_on_failure)


def fill(server):
    for i in range(40):
        r = server.json_request("POST", "/api/items",
                                {"name": "a fairly ordinary item number %d" % i, "price": i})
        check(r.status == 201, "create: %r" % r)


def compressed(server):
    plain = server.get("/api/items?limit=40")
    check(plain.status == 200 and plain.header("Content-Encoding") is None,
          "compressed without Accept-Encoding: %r" % plain)
    check(len(plain.body) > 1024, "the list is too small to test: %d" % len(plain.body))

    r = server.get("/api/items?limit=40", {"Accept-Encoding": "gzip, deflate"})
    check(r.status == 200 and r.header("Content-Encoding") == "gzip", "not gzipped: %r" % r)
    check("accept-encoding" in (r.header("Vary") or "").lower(), "no Vary: %r" % r)
    check(len(r.body) < len(plain.body), "gzip made it bigger")
    check(gzip.decompress(r.body) == plain.body, "gzip body differs")

    for ae in ["gzip;q=0", "identity", "br", "deflate"]:
        r = server.get("/api/items?limit=40", {"Accept-Encoding": ae})
        check(r.header("Content-Encoding") is None, "%s: gzipped: %r" % (ae, r))
        check(r.body == plain.body, "%s: body differs" % ae)

    # Below the threshold, and a file, stay as they are.
    r = server.get("/json", {"Accept-Encoding": "gzip"})
    check(r.header("Content-Encoding") is None and r.json() == {"message": "Hello, World!"},
          "small body gzipped: %r" % r)
    r = server.get("/static/weft.png", {"Accept-Encoding": "gzip"})
    check(r.header("Content-Encoding") is None, "image gzipped: %r" % r)

    if have_curl():
        url = server.base_url() + "/api/items?limit=40"
        p = curl("--compressed", "-D", "-", url)
        check(p.returncode == 0, "curl: %r" % p.stderr)
        text = p.stdout.decode("utf-8")
        head, _, body = text.replace("\r\n", "\n").partition("\n\n")
        status, headers = parse_curl_headers(head + "\n\n")
        check(status == 200 and headers.get("content-encoding") == "gzip",
              "curl --compressed: %r" % headers)
        check(json.loads(body) == plain.json(), "curl decoded body differs")
        p = curl("-D", "-", "-o", "/dev/null", url)
        status, headers = parse_curl_headers(p.stdout.decode("latin-1"))
        check("content-encoding" not in headers, "curl without --compressed got %r" % headers)


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        fill(server)
        compressed(server)
        check(server.stop() == 0, "exit code")

    server = Server(binary, "--no-gzip")
    with server_log_on_failure(server):
        server.wait_listening()
        fill(server)
        r = server.get("/api/items?limit=40", {"Accept-Encoding": "gzip"})
        check(r.status == 200 and r.header("Content-Encoding") is None, "--no-gzip: %r" % r)
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
