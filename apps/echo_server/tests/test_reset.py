"""Clients that reset their connection (SO_LINGER 0) in the middle of a
stream, while the server reads or while it writes, cost the server that
connection only: it survives (SIGPIPE included), forgets them and serves
the next client."""

import random
import socket
import struct
import time

from echo_harness import Server, check, echo_roundtrip, run, seconds, server_log_on_failure


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test(binary):
    rng = random.Random(3)
    big = rng.randbytes(4 << 20)
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "2")
    with server_log_on_failure(server):
        server.wait_listening()
        for i in range(30):
            s = server.connect()
            kind = i % 3
            if kind == 0:
                # The server is blocked writing to a client that does not
                # read when the reset arrives.
                s.setblocking(False)
                sent = 0
                end = time.monotonic() + seconds(2)
                while sent < len(big) and time.monotonic() < end:
                    try:
                        sent += s.send(big[sent:sent + 65536])
                    except BlockingIOError:
                        time.sleep(0.005)
                        if sent > 1 << 20:
                            break
                reset(s)
            elif kind == 1:
                # Reset with data in flight both ways.
                try:
                    s.sendall(big[:200000])
                    s.recv(1000)
                except OSError:
                    pass
                reset(s)
            else:
                # Reset right after connecting, before sending anything.
                reset(s)
        # The server is alive and well.
        c = server.connect()
        payload = rng.randbytes(1 << 20)
        check(echo_roundtrip(c, payload) == payload, "echo after the resets differs")
        c.close()
        st = server.wait_stats(lambda st: st["active"] == 0, 10, "active=0 after the resets")
        # A connection reset before the server accepts it may never reach it.
        check(20 <= st["accepted"] <= 31, "accepted=%d" % st["accepted"])
        check(st["errors"] >= 10, "only %d connections ended with an error" % st["errors"])
        check(server.proc.poll() is None, "the server died")
        code = server.stop()
        check(code == 0, "exit code %d" % code)


if __name__ == "__main__":
    run(test)
