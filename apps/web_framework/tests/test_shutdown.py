"""Graceful shutdown: SIGTERM during a slow request stops new connections,
lets the request finish (its answer arrives whole), then the process exits
0; an idle keep-alive connection does not hold the exit past the grace
period. A second signal ends the wait at once."""

import signal
import socket
import threading
import time

from web_harness import (Reader, Server, TestFailure, build_request, check, run, seconds,
                         server_log_on_failure, wait_closed)


def started(server, rid):
    return lambda: any("slow request started" in l and rid in l for l in server.err_lines)


def in_flight_finishes(binary):
    grace_ms = int(seconds(20) * 1000)
    server = Server(binary, "--shutdown-grace-ms", str(grace_ms))
    with server_log_on_failure(server):
        server.wait_listening()
        s = server.connect(timeout=30)
        s.sendall(build_request("GET", "/api/slow?ms=1500", {"X-Request-Id": "slow-1"}))
        server.wait_for(started(server, "slow-1"), 10, "the slow request to start")
        server.send_signal(signal.SIGTERM)

        reader = Reader(s)
        r = reader.read()
        check(r.status == 200 and r.json() == {"slept_ms": 1500}, "in-flight answer: %r" % r)
        # A keep-alive connection ends after its response once stopping.
        check(r.closes(), "the last answer does not say Connection: close: %r" % r)
        check(reader.buf == b"" and wait_closed(s) == b"", "data after the last answer")
        s.close()
        code = server.wait_exit(10)
        check(code == 0, "exit code %d" % code)


def idle_connection_bounded(binary):
    """An idle keep-alive connection does not keep the process past the
    grace period (it may be closed sooner)."""
    grace_ms = 500
    server = Server(binary, "--shutdown-grace-ms", str(grace_ms))
    with server_log_on_failure(server):
        server.wait_listening()
        idle = server.connect()
        reader = Reader(idle)
        idle.sendall(build_request("GET", "/plaintext"))
        check(reader.read().status == 200, "the idle connection's request")
        server.send_signal(signal.SIGTERM)
        check(server.wait_exit(10) == 0, "exit code")
        check(reader.buf == b"" and wait_closed(idle) == b"", "the idle connection got data")
        idle.close()


def refuses_new_work(binary):
    server = Server(binary, "--shutdown-grace-ms", str(int(seconds(20) * 1000)))
    with server_log_on_failure(server):
        server.wait_listening()
        port = server.port()
        s = server.connect(timeout=30)
        s.sendall(build_request("GET", "/api/slow?ms=3000", {"X-Request-Id": "slow-2"}))
        server.wait_for(started(server, "slow-2"), 10, "the slow request to start")
        server.send_signal(signal.SIGTERM)
        # New connections are refused once the listeners close (a probe
        # that still reaches one may be answered, and closed).
        deadline = time.monotonic() + seconds(5)
        while True:
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=seconds(2))
            except ConnectionRefusedError:
                break
            c.close()
            if time.monotonic() > deadline:
                raise TestFailure("still accepting after SIGTERM")
            time.sleep(0.02)
        check(server.proc.poll() is None, "exited with a request in flight")
        r = Reader(s).read()
        check(r.status == 200 and r.json() == {"slept_ms": 3000}, "in-flight answer: %r" % r)
        s.close()
        check(server.wait_exit(10) == 0, "exit code")


def second_signal_forces(binary):
    server = Server(binary, "--shutdown-grace-ms", "600000")
    with server_log_on_failure(server):
        server.wait_listening()
        s = server.connect(timeout=30)
        s.sendall(build_request("GET", "/api/slow?ms=10000", {"X-Request-Id": "slow-3"}))
        server.wait_for(started(server, "slow-3"), 10, "the slow request to start")
        server.send_signal(signal.SIGTERM)
        server.wait_for(lambda: any("shutting down" in l for l in server.err_lines), 5,
                        "the 'shutting down' line")
        got = []

        def reader():
            try:
                got.append(wait_closed(s, timeout=30))
            except Exception as e:  # noqa: BLE001 - checked below
                got.append(e)
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        code = server.stop(signal.SIGTERM, timeout=10)
        check(code == 0, "exit code %d" % code)
        t.join(seconds(10))
        check(got and not isinstance(got[0], Exception), "the connection was not closed: %r" % got)
        check(b"slept_ms" not in got[0], "the cancelled request was answered 200")
        s.close()


def test(binary):
    in_flight_finishes(binary)
    idle_connection_bounded(binary)
    refuses_new_work(binary)
    second_signal_forces(binary)


if __name__ == "__main__":
    run(test)
