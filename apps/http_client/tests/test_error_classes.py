"""Failures are classed by what happened, and retried only when that is
safe: a reply that is not HTTP is `protocol`, a body cut short is
`truncated`, and neither is retried (the server answered); a connection
closed without a reply is retried for a GET but not for a POST, which the
server may have acted on."""

from client_harness import Fixture, RawServer, check, client, read_request, run


def not_http(conn, server):
    if read_request(conn):
        conn.sendall(b"garbage that is not HTTP\r\n")


def truncated(conn, server):
    if read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")


def one(binary, url, *args, code=1):
    r = client(binary, "--retries", 3, "--retry-backoff-ms", 1, *args, url)
    check(r.code == code and len(r.lines) == 1, "%r" % r)
    return r.lines[0], r.summary


def test(binary):
    with RawServer(not_http) as srv:
        line, summary = one(binary, srv.url("/"))
        check(line["error"] == "protocol" and line["attempts"] == 1, "not HTTP: %s" % line)
        check(summary["errors"] == {"protocol": 1}, "summary %s" % summary)
        check(srv.connections == 1, "not HTTP: %d connections" % srv.connections)
    with RawServer(truncated) as srv:
        line, summary = one(binary, srv.url("/"))
        check(line["error"] == "truncated" and line["attempts"] == 1, "truncated: %s" % line)
        check(summary["errors"] == {"truncated": 1}, "summary %s" % summary)
        check(srv.connections == 1, "truncated: %d connections" % srv.connections)
    with Fixture() as fx:
        line, _ = one(binary, fx.url("/close"))
        check(line["error"] == "empty_reply" and line["attempts"] == 4, "GET: %s" % line)
        line, _ = one(binary, fx.url("/close"), "--method", "POST", "--body", "x=1")
        check(line["error"] == "empty_reply" and line["attempts"] == 1, "POST: %s" % line)
        # A 503 says nothing was done: a POST gets it retried too.
        line, _ = one(binary, fx.url("/flaky/p/1/5"), "--method", "POST", "--body", "x=1",
                      code=0)
        check(line["ok"] and line["attempts"] == 2, "POST after a 503: %s" % line)


if __name__ == "__main__":
    run(test)
