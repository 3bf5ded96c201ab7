"""Limits: each is answered with its status and the connection closed,
never a crash: a body over max_body_bytes is 413 (by Content-Length before
it is sent, and when a chunked body grows past it), headers over
max_header_bytes or more than max_headers are 431 (a target longer than
max_header_bytes is 414), a client that sends
half its headers or half its body and waits gets 408. The server serves
new connections after every one of them. Small limits keep it fast."""

from web_harness import (Reader, Server, build_request, check, run, seconds,
                         server_log_on_failure, wait_closed)


def answered_and_closed(server, data, status, what):
    s = server.connect()
    s.sendall(data)
    r = Reader(s).read()
    check(r.status == status, "%s: expected %d, got %r" % (what, status, r))
    wait_closed(s)
    s.close()
    # Still serving.
    check(server.get("/plaintext").status == 200, "%s: server not serving after it" % what)
    return r


def test(binary):
    timeout_ms = int(seconds(0.4) * 1000)
    server = Server(binary, "--max-body-bytes", "1024", "--max-header-bytes", "1024",
                    "--max-headers", "10", "--header-timeout-ms", str(timeout_ms),
                    "--body-timeout-ms", str(timeout_ms))
    with server_log_on_failure(server):
        server.wait_listening()

        # At the limit is fine.
        r = server.request("POST", "/api/echo", body=b"x" * 1024)
        check(r.status == 200 and len(r.body) == 1024, "1024-byte body: %r" % r)

        # 413 from the Content-Length alone: the body is never sent.
        head = build_request("POST", "/api/echo", [("Content-Length", "5000")])
        answered_and_closed(server, head, 413, "Content-Length over the limit")
        # 413 when chunks add up past it.
        chunks = b"".join(b"200\r\n" + b"y" * 0x200 + b"\r\n" for _ in range(3))
        answered_and_closed(server, build_request("POST", "/api/echo",
                                                  [("Transfer-Encoding", "chunked")]) + chunks,
                            413, "chunked body over the limit")

        # 431: one long header, and too many headers.
        answered_and_closed(server, build_request("GET", "/plaintext",
                                                  [("X-Big", "z" * 2000)]),
                            431, "a 2000-byte header")
        answered_and_closed(server, build_request("GET", "/plaintext",
                                                  [("X-H%d" % i, "v") for i in range(20)]),
                            431, "20 headers")
        # 414: a target longer than the whole limit (as nginx answers).
        answered_and_closed(server, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                            414, "a 2000-byte request line")

        # 408: half the headers, then silence.
        answered_and_closed(server, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n", 408,
                            "half a request head")
        # 408: the headers, half the body, then silence.
        answered_and_closed(server, build_request("POST", "/api/echo",
                                                  [("Content-Length", "100")]) + b"x" * 10,
                            408, "half a body")

        # A keep-alive connection that answered before is also bounded.
        s = server.connect()
        reader = Reader(s)
        s.sendall(build_request("GET", "/plaintext"))
        check(reader.read().status == 200, "first request")
        s.sendall(b"GET /plaintext HTTP/1.1\r\n")
        r = reader.read()
        check(r.status == 408, "second, half request: %r" % r)
        wait_closed(s)
        s.close()

        check(server.proc.poll() is None, "the server died")
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
