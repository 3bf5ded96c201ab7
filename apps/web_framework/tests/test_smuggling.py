"""Request smuggling shapes are refused with 400 and the connection closed,
so that nothing after them is read as another request: Content-Length with
Transfer-Encoding, two Content-Lengths, a bare CR, whitespace before a
header's colon, a folded header, a bad chunk size, an invalid Content-Length.
The request hidden in each is never answered."""

from web_harness import Reader, Server, check, run, server_log_on_failure, wait_closed

# A request that would be answered if the parser were fooled.
HIDDEN = b"GET /api/hello/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

CASES = [
    ("CL and TE", b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + HIDDEN),
    ("TE and CL", b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: 4\r\n\r\n0\r\n\r\n" + HIDDEN),
    ("two Content-Lengths", b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                            b"Content-Length: 46\r\n\r\n" + HIDDEN),
    ("bare CR", b"GET /plaintext HTTP/1.1\r\nHost: x\rX-Evil: 1\r\n\r\n" + HIDDEN),
    ("space before colon", b"POST /api/echo HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length : 46\r\n\r\n" + HIDDEN),
    ("folded header", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n" + HIDDEN),
    ("bad chunk size", b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       b"\r\nzz\r\n" + HIDDEN),
    ("signed Content-Length", b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n"
                              b"\r\nabcd" + HIDDEN),
    ("TE not chunked", b"POST /api/echo HTTP/1.1\r\nHost: x\r\n"
                       b"Transfer-Encoding: gzip\r\n\r\n" + HIDDEN),
    ("NUL in a header", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + HIDDEN),
]


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        for name, data in CASES:
            s = server.connect()
            s.sendall(data)
            r = Reader(s).read()
            check(r.status == 400, "%s: expected 400, got %r" % (name, r))
            rest = wait_closed(s)
            check(b"smuggled" not in r.body + rest, "%s: the hidden request was answered" % name)
            s.close()
        # Nothing of the above hurt the server.
        check(server.get("/plaintext").status == 200, "not serving afterwards")
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
