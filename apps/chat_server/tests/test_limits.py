"""Limits: --rate/--burst answer rate_limited and keep the connection;
a line or WebSocket message past --max-line gets too_large and is closed
after it (the client reads the error, not a reset); bytes that are not
UTF-8 get bad_json over TCP and close 1007 over WebSocket;
--max-connections closes one connection more at once."""

import socket
import time

from chat_harness import Chat, check, run, seconds, server_log_on_failure


def rate(srv):
    a = srv.tcp("ratey")
    a.join("rl")
    # A burst of 5 passes at once; the rest within the same instant are
    # refused, and the connection stays usable.
    for i in range(12):
        a.send({"type": "say", "room": "rl", "text": str(i), "id": str(i)})
    got = {"ack": 0, "rate_limited": 0}
    for _ in range(12):
        m = a.wait_for(lambda m: m["type"] in ("ack", "error"))
        if m["type"] == "ack":
            got["ack"] += 1
        else:
            check(m["code"] == "rate_limited", "error %r" % m)
            got["rate_limited"] += 1
    check(5 <= got["ack"] <= 7 and got["ack"] + got["rate_limited"] == 12, "rate: %r" % got)
    # dm counts against the same bucket.
    time.sleep(1.2)
    a.send({"type": "ping"})
    a.expect("pong")
    a.send({"type": "say", "room": "rl", "text": "later", "id": "late"})
    a.wait_for(lambda m: m["type"] == "ack" and m["id"] == "late")
    a.close()


def too_large(srv, make, tag):
    a = make("big" + tag)
    a.join("tl")
    a.send({"type": "say", "room": "tl", "text": "x" * 900, "id": "fits"})
    a.expect("message")
    a.expect("ack", id="fits")
    a.send({"type": "say", "room": "tl", "text": "x" * 1100})
    a.error("too_large")
    check(a.closed(), "the connection stays open after too_large")
    if hasattr(a, "close_code") and a.close_code is not None:
        check(a.close_code == 1009, "close code %r" % a.close_code)
    # The nick is free again.
    b = make("big" + tag)
    b.close()


def tcp_long_line_without_newline(srv):
    a = srv.tcp("stream")
    # No newline at all: refused once the line passes the limit, and the
    # client gets the error even though it keeps sending.
    a.send_bytes(b"{" + b" " * 3000)
    a.error("too_large")
    try:
        a.send_bytes(b" " * 1000)
    except OSError:
        pass
    check(a.closed(), "the connection stays open")


def utf8(srv):
    a = srv.tcp("bytes")
    a.send_bytes(b'{"type":"ping","x":"\xc3\x28"}\n')
    a.error("bad_json")
    a.send_bytes(b'{"type":"ping","x":"\xed\xa0\x80"}\n')  # a surrogate
    a.error("bad_json")
    a.send({"type": "ping"})
    a.expect("pong")
    a.close()
    w = srv.ws("wbytes")
    w.frame(1, b'{"type":"ping","x":"\xff"}')
    check(w.closed(), "the WebSocket stays open after bad UTF-8")
    check(w.close_code == 1007, "close code %r" % w.close_code)


def max_connections(binary):
    srv = Chat(binary, "--max-connections", "3", http=False)
    with server_log_on_failure(srv):
        keep = [srv.tcp("k%d" % i) for i in range(3)]
        s = socket.create_connection(("127.0.0.1", srv.tcp_port), seconds(5))
        s.settimeout(seconds(5))
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        check(data == b"", "a fourth connection was served: %r" % data)
        keep[0].close()
        # Once one leaves, a new one is served.
        def served():
            try:
                c = srv.tcp("again")
                c.close()
                return True
            except Exception:
                return False
        deadline = time.monotonic() + seconds(5)
        while not served():
            check(time.monotonic() < deadline, "no room after a connection left")
            time.sleep(0.05)
        check(srv.stats()["rejected"] >= 1, "rejected not counted")
        check(srv.stop() == 0, "exit code")


def test(binary):
    srv = Chat(binary, "--rate", "2", "--burst", "5", "--max-line", "1024")
    with server_log_on_failure(srv):
        rate(srv)
        too_large(srv, srv.tcp, "")
        too_large(srv, srv.ws, "_ws")
        tcp_long_line_without_newline(srv)
        utf8(srv)
        check(srv.stop() == 0, "exit code")
    max_connections(binary)


if __name__ == "__main__":
    run(test)
