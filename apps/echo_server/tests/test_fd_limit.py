"""Out of file descriptors, new connections are closed at once, counted
(shed_fd_limit) and logged (once a second at most), instead of being shed
unseen; the connections served go on working, and once descriptors free up
new connections are served again. The server runs under `ulimit -n 64`."""

import socket

from echo_harness import Server, check, echo_roundtrip, run, seconds, server_log_on_failure

LIMIT = 64
CLIENTS = 200


def served(s):
    """True when s gets its echo back; False when the server closed it."""
    try:
        s.sendall(b"ping")
        s.settimeout(seconds(5))
        return s.recv(16) == b"ping"
    except (ConnectionResetError, BrokenPipeError):
        return False


def test(binary):
    server = Server("/bin/sh", "-c", 'ulimit -n %d && exec "$0" "$@"' % LIMIT, binary,
                    "--listen", "127.0.0.1:0", "--executors", "1")
    with server_log_on_failure(server):
        server.wait_listening()
        socks = [server.connect() for _ in range(CLIENTS)]
        st = server.wait_stats(lambda st: st.get("accepted", 0) + st.get("shed_fd_limit", 0)
                               + st.get("accept_errors", 0) >= CLIENTS, 10,
                               "every connection accepted or shed")
        print("stats under the limit:", st)
        check(st["accept_errors"] == 0, "accept errors: %s" % st)
        check(st["accepted"] + st["shed_fd_limit"] == CLIENTS, "not all counted: %s" % st)
        check(20 <= st["accepted"] < LIMIT, "accepted %d under a limit of %d" % (st["accepted"], LIMIT))
        ok = [s for s in socks if served(s)]
        check(len(ok) == st["accepted"], "%d served, %d accepted" % (len(ok), st["accepted"]))
        log = server.log()
        check(log.count("out of file descriptors") == 1, "not logged once: %s" % log)
        for s in socks:
            s.close()
        server.wait_stats(lambda st: st["active"] == 0, 10, "every connection closed")
        # Descriptors are free again: connections are served.
        again = [server.connect() for _ in range(10)]
        for i, s in enumerate(again):
            check(echo_roundtrip(s, b"again %d" % i) == b"again %d" % i, "not served again")
            s.close()
        check(server.stop() == 0, "exit code")
        st = server.final_stats()
        check(st["accepted"] + st["shed_fd_limit"] == CLIENTS + 10, "final %s" % st)


if __name__ == "__main__":
    run(test)
