"""Past max_connections, a new connection is closed at once and counted as
rejected; once a slot frees up, a new connection is served again."""

import socket

from echo_harness import Server, check, echo_roundtrip, run, seconds, server_log_on_failure

LIMIT = 5


def closed_at_once(s):
    """True when the server closes s without echoing anything."""
    s.settimeout(seconds(5))
    try:
        s.sendall(b"anyone there?")
    except OSError:
        return True  # already reset
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test(binary):
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "2",
                    "--max-connections", str(LIMIT))
    with server_log_on_failure(server):
        server.wait_listening()
        served = [server.connect() for _ in range(LIMIT)]
        for i, s in enumerate(served):
            check(echo_roundtrip(s, b"ping %d" % i) == b"ping %d" % i, "client %d not served" % i)

        extra = [server.connect() for _ in range(3)]
        for s in extra:
            check(closed_at_once(s), "a connection past the limit was served")
            s.close()
        st = server.stats()
        check(st["rejected"] == 3, "rejected=%d, not 3" % st["rejected"])
        check(st["active"] == LIMIT, "active=%d" % st["active"])
        check(st["accepted"] == LIMIT, "accepted=%d" % st["accepted"])

        # The served clients still work, and a freed slot is used again.
        check(echo_roundtrip(served[0], b"still here") == b"still here", "served client broken")
        served.pop().close()
        server.wait_stats(lambda st: st["active"] == LIMIT - 1, 5, "a free slot")
        s = server.connect()
        check(echo_roundtrip(s, b"my turn") == b"my turn", "freed slot not reused")
        served.append(s)
        for s in served:
            s.close()
        code = server.stop()
        check(code == 0, "exit code %d" % code)
        st = server.final_stats()
        check(st["rejected"] == 3 and st["accepted"] == LIMIT + 1, "final stats %s" % st)


if __name__ == "__main__":
    run(test)
