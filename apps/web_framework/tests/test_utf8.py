"""Every JSON answer is valid UTF-8: a body that is not UTF-8 is refused
with 400 and the position of the first bad byte (nothing is stored), and
bytes from the request that end up in an answer (an unknown id in the path)
are written as U+FFFD."""

import json

from web_harness import Reader, Server, check, run, server_log_on_failure


def strict_json(r):
    """The body of r as JSON, decoded as strict UTF-8."""
    try:
        return json.loads(r.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AssertionError("not valid UTF-8 JSON (%s): %r" % (e, r.body[:200]))


def raw_get(server, target):
    s = server.connect()
    try:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return Reader(s).read()
    finally:
        s.close()


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        for body in (b'{"name": "caf\xe9", "price": 1}', b'{"name": "\xed\xa0\x80", "price": 1}',
                     b'{"name": "ok", "price": 1, "\xff": 2}'):
            r = server.request("POST", "/api/items", [("Content-Type", "application/json")], body)
            doc = strict_json(r)
            check(r.status == 400 and "UTF-8" in doc["error"], "%r: %r" % (body, r))
            check("column" in doc["error"], "no position: %r" % doc)
        for target in (b"/api/items/%FF%FE", b"/api/items/caf%E9"):
            r = raw_get(server, target)
            doc = strict_json(r)
            check(r.status == 404, "%r: %r" % (target, r))
        check(server.get("/api/items").json()["total"] == 0, "a refused body was stored")
        # Valid UTF-8 goes through untouched.
        r = server.json_request("POST", "/api/items", {"name": "caf\u00e9 \U0001F375", "price": 1})
        check(r.status == 201 and strict_json(r)["name"] == "caf\u00e9 \U0001F375", "%r" % r)
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
