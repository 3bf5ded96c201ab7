"""SIGTERM (and SIGINT): every client, TCP or WebSocket, in a room or not,
before hello or after, gets {"type":"bye","reason":"shutdown"} before its
connection closes (a WebSocket then gets close 1001); a client that reads
nothing does not hold the exit past the grace period; the exit code is 0."""

import signal
import socket
import time

from chat_harness import Chat, check, run, seconds, server_log_on_failure


def test(binary):
    srv = Chat(binary, "--shutdown-grace-ms", "1500", "--rate", "0", "--max-queue", "5000")
    with server_log_on_failure(srv):
        clients = [srv.tcp("t%d" % i) for i in range(5)] + [srv.ws("w%d" % i) for i in range(5)]
        clients.append(srv.tcp())   # no hello yet
        clients.append(srv.ws())
        for c in clients[:10]:
            c.join("lobby")
        # A member that reads nothing while the room talks.
        deaf = srv.tcp("deaf")
        deaf.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deaf.join("lobby")
        talker = clients[0]
        for i in range(1000):
            talker.send({"type": "say", "room": "lobby", "text": "x" * 500})
        # The others read it all; the deaf one's writer stays blocked.
        for c in clients[:10]:
            c.wait_for(lambda m: m["type"] == "message" and m["seq"] == 1000, what="seq 1000")
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for c in clients:
            m = c.wait_for(lambda m: m["type"] == "bye", timeout=10, what="bye")
            check(m == {"type": "bye", "reason": "shutdown"}, "bye: %r" % m)
            check(c.closed(), "a connection stays open after bye")
            check(not c.inbox, "something after bye: %r" % c.inbox[:1])
            if hasattr(c, "close_code"):
                check(c.close_code == 1001, "close code %r" % c.close_code)
        code = srv.wait_exit(10)
        took = time.monotonic() - started
        check(code == 0, "exit code %d" % code)
        check(took < seconds(5), "the exit took %.2f s" % took)
        st = srv.final_stats()
        check(st["active"] == 0, "active at exit: %r" % st["active"])

    # SIGINT is the same.
    srv = Chat(binary)
    with server_log_on_failure(srv):
        c = srv.tcp("solo")
        srv.proc.send_signal(signal.SIGINT)
        c.expect("bye", reason="shutdown")
        check(c.closed(), "open after bye")
        check(srv.wait_exit(10) == 0, "exit code after SIGINT")


if __name__ == "__main__":
    run(test)
