"""SIGTERM stops the server accepting, lets an open connection finish within
the grace period, then exits 0 with the final stats on stdout; a connection
still open when the grace period ends is closed and counted; a second
signal ends the grace period at once."""

import signal
import socket
import time

from echo_harness import (Server, TestFailure, check, echo_roundtrip, run, seconds,
                          server_log_on_failure)


def refused(server):
    """True once a new connection is refused (the listener is closed)."""
    try:
        s = socket.create_connection(("127.0.0.1", server.port()), timeout=seconds(2))
    except ConnectionRefusedError:
        return True
    s.close()
    return False


def wait_refused(server):
    deadline = time.monotonic() + seconds(5)
    while not refused(server):
        if time.monotonic() > deadline:
            raise TestFailure("still accepting after SIGTERM")
        time.sleep(0.02)


def drain_finishes(binary):
    grace_ms = int(seconds(10) * 1000)
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "2",
                    "--shutdown-grace-ms", str(grace_ms))
    with server_log_on_failure(server):
        server.wait_listening()
        a = server.connect()
        check(echo_roundtrip(a, b"before") == b"before", "no echo before SIGTERM")
        server.send_signal(signal.SIGTERM)
        server.wait_for(lambda: any("shutting down" in l for l in server.err_lines), 5,
                        "the 'shutting down' line")
        wait_refused(server)
        # The open connection is still served during the grace period.
        for i in range(5):
            msg = b"draining %d" % i
            check(echo_roundtrip(a, msg) == msg, "no echo during the grace period")
        check(server.proc.poll() is None, "exited with a connection open")
        started = time.monotonic()
        a.close()
        code = server.wait_exit(grace_ms / 1000)
        took = time.monotonic() - started
        check(code == 0, "exit code %d" % code)
        check(took < grace_ms / 1000 / 2, "exit took %.2f s after the last close" % took)
        server.stop()
        st = server.final_stats()
        # The probes of wait_refused() may reach an executor whose listener
        # is not closed yet: they count as accepted, and send nothing.
        check(st["accepted"] >= 1 and st["active"] == 0, "final stats %s" % st)
        check(st["closed_at_shutdown"] == 0, "closed_at_shutdown=%d" % st["closed_at_shutdown"])
        check(st["bytes_in"] == st["bytes_out"] == 6 + 5 * 10, "final stats %s" % st)
        check(any("msg=stopped" in l for l in server.err_lines), "no 'stopped' line")


def grace_runs_out(binary):
    grace_ms = 300
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "2",
                    "--shutdown-grace-ms", str(grace_ms))
    with server_log_on_failure(server):
        server.wait_listening()
        held = [server.connect() for _ in range(4)]
        for s in held:
            check(echo_roundtrip(s, b"hi") == b"hi", "no echo")
        started = time.monotonic()
        code = server.stop(signal.SIGTERM, timeout=10)
        took = time.monotonic() - started
        check(code == 0, "exit code %d" % code)
        check(took >= grace_ms / 1000 * 0.9, "exited after %.2f s, before the grace" % took)
        for s in held:
            s.settimeout(seconds(5))
            try:
                check(s.recv(10) == b"", "data after the shutdown")
            except ConnectionResetError:
                pass
            s.close()
        st = server.final_stats()
        check(st["closed_at_shutdown"] == 4, "closed_at_shutdown=%d" % st["closed_at_shutdown"])


def second_signal_forces(binary):
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "1",
                    "--shutdown-grace-ms", "60000")
    with server_log_on_failure(server):
        server.wait_listening()
        s = server.connect()
        check(echo_roundtrip(s, b"hi") == b"hi", "no echo")
        server.send_signal(signal.SIGINT)
        server.wait_for(lambda: any("shutting down" in l for l in server.err_lines), 5,
                        "the 'shutting down' line")
        started = time.monotonic()
        code = server.stop(signal.SIGINT, timeout=10)
        check(code == 0, "exit code %d" % code)
        check(time.monotonic() - started < seconds(5), "the second signal did not force")
        s.close()
        check(server.final_stats()["closed_at_shutdown"] == 1, "not counted")


def test(binary):
    drain_finishes(binary)
    grace_runs_out(binary)
    second_signal_forces(binary)


if __name__ == "__main__":
    run(test)
