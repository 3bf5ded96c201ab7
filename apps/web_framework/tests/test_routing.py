"""Routing: the demo routes answer with the right types and bodies, path and
query parameters are decoded, an unknown path is 404 and a known path with
another method 405 with an Allow header, a target in absolute form is
served as its path, HEAD is served by the GET route,
and the same answers come through http.client and curl."""

import json

from web_harness import (Server, check, curl, have_curl, parse_curl_headers, run,
                         server_log_on_failure)


def allowed(res):
    return {m.strip() for m in (res.header("Allow") or "").split(",") if m.strip()}


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()

        r = server.get("/plaintext")
        check(r.status == 200 and r.body == b"Hello, World!", "plaintext: %r" % r)
        check((r.header("Content-Type") or "").startswith("text/plain"), "plaintext type: %r" % r)
        check(r.header("Content-Length") == "13", "plaintext length: %r" % r)

        r = server.get("/json")
        check(r.status == 200 and r.json() == {"message": "Hello, World!"}, "json: %r" % r)
        check((r.header("Content-Type") or "").startswith("application/json"), "json type: %r" % r)

        # A target in absolute form is served as its path (RFC 9112 3.2.2).
        r = server.get("http://x.example/plaintext")
        check(r.status == 200 and r.body == b"Hello, World!", "absolute form: %r" % r)
        r = server.get("HTTP://x.example/api/hello/bob?greeting=hi")
        check(r.status == 200 and r.json() == {"greeting": "hi", "hello": "bob"},
              "absolute form with a query: %r" % r)

        r = server.get("/healthz")
        check(r.status == 200 and r.json().get("status") == "ok", "healthz: %r" % r)

        r = server.get("/")
        check(r.status == 302 and r.header("Location") == "/static/index.html", "index: %r" % r)

        # HEAD runs the GET route and sends no body, with the GET's length.
        r = server.request("HEAD", "/plaintext")
        check(r.status == 200 and r.body == b"", "HEAD: %r" % r)
        check(r.header("Content-Length") == "13", "HEAD length: %r" % r)

        # Path parameters are percent-decoded; query parameters too, with '+'.
        r = server.get("/api/hello/w%C3%A9ft%20runtime")
        check(r.status == 200 and r.json() == {"greeting": "hello", "hello": "wéft runtime"},
              "decoded param: %r" % r)
        r = server.get("/api/hello/x?greeting=good+day%21")
        check(r.json() == {"greeting": "good day!", "hello": "x"}, "query: %r" % r)
        r = server.get("/api/hello/%22quoted%22%5C")
        check(r.json()["hello"] == '"quoted"\\', "escaping: %r" % r)

        # No such path: 404 with a JSON error, through every middleware.
        for path in ["/nope", "/api", "/api/hello", "/api/hello/a/b", "/plaintext/x",
                     "/api/items/1/extra"]:
            r = server.get(path)
            check(r.status == 404, "%s: %r" % (path, r))
            check("error" in r.json(), "%s: no error member: %r" % (path, r))
            check(r.header("X-Request-Id"), "%s: no request id on a 404" % path)

        # A known path with another method: 405 and the methods it has.
        r = server.request("DELETE", "/plaintext")
        check(r.status == 405, "DELETE /plaintext: %r" % r)
        check("GET" in allowed(r), "Allow of /plaintext: %r" % r)
        r = server.request("POST", "/api/items/1", body=b"{}")
        check(r.status == 405, "POST /api/items/1: %r" % r)
        check({"GET", "PUT", "PATCH", "DELETE"} <= allowed(r), "Allow of an item: %r" % r)
        check("POST" not in allowed(r), "Allow lists POST: %r" % r)
        r = server.request("PUT", "/api/items", body=b"{}")
        check(r.status == 405 and {"GET", "POST"} <= allowed(r), "PUT /api/items: %r" % r)

        # The same through http.client (which speaks for itself).
        hc = server.http_client()
        hc.request("GET", "/json")
        resp = hc.getresponse()
        check(resp.status == 200 and json.loads(resp.read()) == {"message": "Hello, World!"},
              "http.client /json")
        hc.request("GET", "/plaintext")
        resp = hc.getresponse()
        check(resp.read() == b"Hello, World!", "http.client /plaintext on the same connection")
        hc.close()

        if have_curl():
            p = curl("-D", "-", "-o", "/dev/null", server.base_url() + "/api/hello/curl")
            check(p.returncode == 0, "curl failed: %r" % p.stderr)
            status, headers = parse_curl_headers(p.stdout.decode("latin-1"))
            check(status == 200 and headers.get("content-type", "").startswith("application/json"),
                  "curl: %s %r" % (status, headers))
            p = curl(server.base_url() + "/plaintext")
            check(p.stdout == b"Hello, World!", "curl body: %r" % p.stdout)

        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
