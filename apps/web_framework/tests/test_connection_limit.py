"""Past --max-connections a new connection is answered 503 (with
Retry-After) instead of being dropped silently, counted as rejected, and
the refusal is logged once a second at most; the connections served go on
working."""

from web_harness import Reader, Server, check, run, server_log_on_failure

LIMIT = 2


def test(binary):
    server = Server(binary, "--max-connections", LIMIT, "--executors", "1")
    with server_log_on_failure(server):
        server.wait_listening()
        held = [server.connect() for _ in range(LIMIT)]
        for s in held:
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            check(Reader(s).read().status == 200, "a connection within the limit")
        for i in range(3):
            r = server.request("GET", "/plaintext")
            check(r.status == 503 and r.header("Retry-After") == "1", "over the limit: %r" % r)
            check("error" in r.json(), "503 body: %r" % r)
        st = server.stats()
        check(st["rejected"] == 3 and st["accepted"] == LIMIT, "stats %s" % st)
        check(server.log().count("connection limit reached") == 1, "not logged once: %s" % server.log())
        for s in held:
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            check(Reader(s).read().status == 200, "a held connection stopped working")
            s.close()
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
