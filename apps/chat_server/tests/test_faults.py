"""Faults: connections reset in the middle of a request and while members
of a room; a half-open client cut by --idle-timeout (TCP: bye with reason
idle); 10,000 connections opened and dropped at once, 1,000 of them in a
room, after which the server serves as before and holds no member."""

import socket
import struct
import time

from chat_harness import (SKIP, Chat, check, raise_fd_limit, run, seconds,
                          server_log_on_failure)

MANY = 10000
IN_ROOM = 1000


def resets(srv):
    watcher = srv.tcp("watcher")
    watcher.join("faults")
    for i in range(20):
        c = srv.tcp("reset%d" % i)
        c.join("faults")
        watcher.expect("presence", nick="reset%d" % i, event="join")
        # Half a request, then a reset.
        c.send_bytes(b'{"type":"say","room":"fau')
        c.reset()
        watcher.expect("presence", nick="reset%d" % i, event="leave")
    w = srv.ws("wsreset")
    w.join("faults")
    watcher.expect("presence", nick="wsreset", event="join")
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.sock.close()
    watcher.expect("presence", nick="wsreset", event="leave")
    watcher.close()


def idle(binary):
    srv = Chat(binary, "--idle-timeout", "600ms")
    with server_log_on_failure(srv):
        t = srv.tcp("sleepy")
        t.join("idle")
        w = srv.ws("wsleepy")  # our client answers pings, so it stays
        started = time.monotonic()
        m = t.next(timeout=5)
        check(m == {"type": "bye", "reason": "idle"}, "idle TCP client got %r" % m)
        check(t.closed(), "the idle connection stays open")
        waited = time.monotonic() - started
        check(0.4 < waited < seconds(3), "closed after %.2f s" % waited)
        # A half-open WebSocket (nothing read, no pong) goes too.
        time.sleep(1.0)  # nothing read: the server's pings go unanswered
        check(w.closed(timeout=5), "the silent WebSocket stays open")
        check(w.close_code == 1001, "close code %r" % w.close_code)
        check(srv.stop() == 0, "exit code")


def many(binary):
    if not raise_fd_limit(MANY + 2000):
        print("the open-file limit is below %d" % (MANY + 2000))
        return SKIP
    srv = Chat(binary, "--max-connections", str(MANY + 100), "--rate", "0", http=False)
    with server_log_on_failure(srv):
        watcher = srv.tcp("watcher")
        watcher.join("crowd")
        socks = []
        for i in range(MANY):
            s = socket.socket()
            s.settimeout(seconds(10))
            s.connect(("127.0.0.1", srv.tcp_port))
            socks.append(s)
        # A thousand say hello and join, pipelined, without waiting.
        for i in range(IN_ROOM):
            socks[i].sendall(b'{"type":"hello","nick":"c%d"}\n{"type":"join","room":"crowd"}\n' % i)
        srv.wait_stats(lambda st: st["active"] >= MANY + 1, 30, "every connection served")
        joined = 0
        while joined < IN_ROOM:
            m = watcher.next(timeout=20)
            if m["type"] == "presence" and m["event"] == "join":
                joined += 1
        # All dropped at once: half with a reset, half with a FIN.
        for i, s in enumerate(socks):
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        left = 0
        while left < IN_ROOM:
            m = watcher.next(timeout=30)
            if m["type"] == "presence" and m["event"] == "leave":
                left += 1
        srv.wait_stats(lambda st: st["active"] == 1, 30, "the connections to end")
        watcher.send({"type": "rooms"})
        rooms = watcher.expect("rooms")["rooms"]
        check(rooms == [{"room": "crowd", "members": 1}], "rooms after the drop: %r" % rooms)
        # And it serves as before.
        again = srv.tcp("c0")
        again.join("crowd")
        check(srv.stop() == 0, "exit code")


def test(binary):
    srv = Chat(binary)
    with server_log_on_failure(srv):
        resets(srv)
        check(srv.stop() == 0, "exit code")
    idle(binary)
    return many(binary)


if __name__ == "__main__":
    run(test)
