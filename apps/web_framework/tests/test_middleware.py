"""Middleware: X-Request-Id is echoed when sane and made otherwise, on every
answer (404, 405, 500 too); a handler's error becomes 500 with a JSON body
carrying the request id, logged, and the connection stays usable; CORS
answers preflights and marks allowed origins only; the /api timeout
answers 503; the access log has one line per request with its id."""

import re

from web_harness import (Reader, Server, build_request, check, run, seconds,
                         server_log_on_failure)

ORIGIN = "http://app.example"


def request_ids(server):
    r = server.get("/plaintext", {"X-Request-Id": "abc-123.x:y_z"})
    check(r.header("X-Request-Id") == "abc-123.x:y_z", "not echoed: %r" % r)
    made = set()
    for path in ["/plaintext", "/nope", "/api/fail"]:
        r = server.get(path)
        rid = r.header("X-Request-Id")
        check(rid and re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", rid), "%s: made id %r" % (path, rid))
        made.add(rid)
    r = server.request("DELETE", "/json")
    check(r.status == 405 and r.header("X-Request-Id"), "405 without an id: %r" % r)
    made.add(r.header("X-Request-Id"))
    check(len(made) == 4, "made ids repeat: %r" % made)
    # An id that is not sane is replaced, not echoed.
    for bad in ["has space", "x" * 200, "semi;colon", "<script>"]:
        r = server.get("/plaintext", {"X-Request-Id": bad})
        got = r.header("X-Request-Id")
        check(got and got != bad, "insane id %r echoed" % bad)


def recover(server):
    s = server.connect()
    reader = Reader(s)
    s.sendall(build_request("GET", "/api/fail", {"X-Request-Id": "fail-1"}))
    r = reader.read()
    check(r.status == 500, "fail: %r" % r)
    doc = r.json()
    check(doc.get("request_id") == "fail-1" and doc.get("error"), "500 body: %r" % doc)
    check(r.header("X-Request-Id") == "fail-1", "500 without the id: %r" % r)
    # wf_recover answered it: the connection is still good.
    if not r.closes():
        s.sendall(build_request("GET", "/plaintext"))
        check(reader.read().body == b"Hello, World!", "connection unusable after a 500")
    s.close()
    server.wait_for(lambda: any("fail-1" in l and "level=error" in l for l in server.err_lines),
                    5, "the error log line of the 500")


def cors(server):
    # A preflight from an allowed origin is answered by the middleware.
    r = server.request("OPTIONS", "/api/items", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-request-id"})
    check(r.status == 204, "preflight: %r" % r)
    check(r.header("Access-Control-Allow-Origin") == ORIGIN, "preflight origin: %r" % r)
    check("POST" in (r.header("Access-Control-Allow-Methods") or ""), "preflight methods: %r" % r)
    check("content-type" in (r.header("Access-Control-Allow-Headers") or "").lower(),
          "preflight headers: %r" % r)
    check(r.header("X-Request-Id"), "the preflight passed no request id middleware: %r" % r)
    # A simple request from an allowed origin is marked; others are not.
    r = server.get("/json", {"Origin": ORIGIN})
    check(r.status == 200 and r.header("Access-Control-Allow-Origin") == ORIGIN,
          "simple request: %r" % r)
    r = server.get("/json", {"Origin": "http://evil.example"})
    check(r.status == 200 and r.header("Access-Control-Allow-Origin") is None,
          "a foreign origin was allowed: %r" % r)
    r = server.request("OPTIONS", "/api/items", {
        "Origin": "http://evil.example", "Access-Control-Request-Method": "DELETE"})
    check(r.header("Access-Control-Allow-Origin") is None, "foreign preflight allowed: %r" % r)
    # Errors carry CORS headers too, so a browser can read them.
    r = server.get("/nope", {"Origin": ORIGIN})
    check(r.status == 404 and r.header("Access-Control-Allow-Origin") == ORIGIN,
          "404 without CORS: %r" % r)
    r = server.get("/api/fail", {"Origin": ORIGIN})
    check(r.status == 500 and r.header("Access-Control-Allow-Origin") == ORIGIN,
          "500 without CORS: %r" % r)
    check("x-request-id" in (r.header("Access-Control-Expose-Headers") or "").lower(),
          "the request id is not exposed to scripts: %r" % r)


def no_cors(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        r = server.get("/json", {"Origin": ORIGIN})
        check(r.header("Access-Control-Allow-Origin") is None, "CORS without origins: %r" % r)
        check(server.stop() == 0, "exit code")


def api_timeout(binary):
    # The handler waits far longer than the deadline (10 s, the most
    # /api/slow takes), so the 503 is certain.
    timeout_ms = min(5000, int(seconds(1) * 1000))
    server = Server(binary, "--request-timeout-ms", str(timeout_ms), "--access-log=false")
    with server_log_on_failure(server):
        server.wait_listening()
        r = server.get("/api/slow?ms=10000")
        check(r.status == 503 and "error" in r.json(), "timeout: %r" % r)
        r = server.get("/api/slow?ms=0")
        check(r.status == 200 and r.json() == {"slept_ms": 0}, "no wait: %r" % r)
        r = server.get("/api/slow?ms=99999")
        check(r.status == 400, "ms out of range: %r" % r)
        # Outside /api there is no deadline group; the route still answers.
        check(server.get("/plaintext").status == 200, "plaintext")
        check(not any("msg=request " in l for l in server.err_lines), "access log while off")
        check(server.stop() == 0, "exit code")


def test(binary):
    server = Server(binary, "--cors-origins", ORIGIN, "--cors-origins", "http://other.example")
    with server_log_on_failure(server):
        server.wait_listening()
        request_ids(server)
        recover(server)
        cors(server)
        server.get("/json", {"X-Request-Id": "logged-1", "User-Agent": "tester/1.0 (x)"})
        line = server.wait_for(lambda: [l for l in server.err_lines
                                        if "logged-1" in l and "status=200" in l],
                               5, "the access log line")[0]
        # Who asked: the client's address and its user agent.
        check(re.search(r"client=127\.0\.0\.1:\d+ ", line) is not None, "no client: %s" % line)
        check('user_agent="tester/1.0 (x)"' in line, "no user agent: %s" % line)
        check(server.stop() == 0, "exit code")
    no_cors(binary)
    api_timeout(binary)


if __name__ == "__main__":
    run(test)
