"""1,000 clients connected at once each get their own bytes back, over two
executors; the server counts them all active, then none."""

import selectors
import socket
import time

from echo_harness import (SKIP, Server, TestFailure, check, raise_fd_limit, run, seconds,
                          server_log_on_failure)

CLIENTS = 1000


def test(binary):
    if not raise_fd_limit(CLIENTS + 200):
        print("the hard limit on open files is below %d" % (CLIENTS + 200))
        return SKIP
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "2",
                    "--max-connections", str(CLIENTS + 100), "--backlog", "2048")
    with server_log_on_failure(server):
        port = server.port()
        socks = []
        sel = selectors.DefaultSelector()
        try:
            for i in range(CLIENTS):
                s = socket.create_connection(("127.0.0.1", port), timeout=seconds(10))
                socks.append(s)
            # Every client is connected before any sends: all 1,000 are open
            # on the server at the same time.
            st = server.wait_stats(lambda st: st["active"] == CLIENTS, 10,
                                   "%d active connections" % CLIENTS)
            check(st["accepted"] == CLIENTS, "accepted=%d" % st["accepted"])

            expected = {}
            received = {}
            for i, s in enumerate(socks):
                msg = ("client %04d says hello %s" % (i, "x" * (i % 50))).encode()
                expected[s.fileno()] = msg
                received[s.fileno()] = b""
                s.sendall(msg)
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
            pending = len(socks)
            deadline = time.monotonic() + seconds(20)
            while pending:
                if time.monotonic() > deadline:
                    raise TestFailure("%d clients still wait for their echo" % pending)
                for key, _ in sel.select(timeout=0.5):
                    fd = key.fileobj.fileno()
                    data = key.fileobj.recv(4096)
                    check(data, "client fd %d closed before its echo" % fd)
                    received[fd] += data
                    if len(received[fd]) >= len(expected[fd]):
                        check(received[fd] == expected[fd], "client fd %d got %r" % (fd, received[fd]))
                        sel.unregister(key.fileobj)
                        pending -= 1
        finally:
            for s in socks:
                s.close()
            sel.close()
        st = server.wait_stats(lambda st: st["active"] == 0, 10, "active=0")
        check(st["rejected"] == 0, "rejected=%d" % st["rejected"])
        code = server.stop()
        check(code == 0, "exit code %d" % code)


if __name__ == "__main__":
    run(test)
