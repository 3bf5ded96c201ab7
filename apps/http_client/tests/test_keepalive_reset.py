"""A keep-alive connection that the server closes under the client does not
fail the requests sent on it: libcurl is handed the readiness it waits for,
meets the reset itself and sends the request again on a fresh connection,
as the curl command line does."""

import time

from client_harness import RawServer, check, client, read_request, run


N = 20


def answer_once_then_close(conn, server, drain):
    """Answers one request with a keep-alive 200 and closes the connection
    50 ms later: after reading what came meanwhile (the client sees the
    connection closed), or with it unread (the client sees a reset)."""
    if not read_request(conn):
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    time.sleep(0.05)
    if drain:
        conn.setblocking(False)
        try:
            conn.recv(65536)
        except OSError:
            pass


def test(binary):
    for drain in (False, True):
        with RawServer(lambda c, s: answer_once_then_close(c, s, drain)) as srv:
            r = client(binary, "-c", "1", "-n", N, "--lines", "on", srv.url("/"))
            how = "closed" if drain else "reset"
            check(len(r.lines) == N, "%s: %d lines: %r" % (how, N, r))
            failed = [l for l in r.lines if not l["ok"]]
            check(not failed, "%s: %d of %d requests failed: %s"
                  % (how, len(failed), N, failed[:3]))
            check(r.summary["ok"] == N and r.code == 0, "%s: summary %s" % (how, r.summary))
            check(srv.connections >= N, "%s: one connection per request: %d"
                  % (how, srv.connections))


if __name__ == "__main__":
    run(test)
