"""template_app as a real process on loopback: its options (--help, refused
flags, a faulty configuration file), the line protocol (greeting, PING,
ECHO, an unknown command, CRLF, a line too long, QUIT), the idle timeout,
the stats on SIGUSR1, and a clean exit 0 on SIGTERM with the final stats.

Standard library only; the shared helpers are in
apps/common/testing/weft_app.py.
"""

import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

from weft_app import (AppProcess, TestFailure, check, check_bad_flags,  # noqa: E402
                      check_config_errors, check_help, run, seconds,
                      server_log_on_failure)

PROGRAM = "template_app"
OPTIONS = ["--config", "--listen", "--executors", "--max-connections",
           "--idle-timeout-ms", "--max-line-bytes", "--greeting",
           "--stats-interval-ms", "--shutdown-grace-ms", "--log-level", "--help"]
BAD_FLAGS = [
    (["--bogus"], "--bogus"),
    (["--max-line-bytes", "8"], "out of range"),
    (["--listen", "127.0.0.1"], "HOST:PORT"),
    (["--log-level", "chatty"], "chatty"),
    (["stray"], "stray"),
]
BAD_CONFIGS = [
    ('{\n  "max_line_bytes": "big"\n}\n', "2:21", "expected an integer"),
    ('{\n  "greting": "hi"\n}\n', "2:3", "unknown key"),
]


class Client:
    """A line-oriented connection to the service."""

    def __init__(self, server):
        self.sock = server.connect()
        self.pending = b""

    def line(self):
        """The next line the server sends, without its newline; None when the
        server closes the connection first."""
        while b"\n" not in self.pending:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode("utf-8", "replace")

    def ask(self, request):
        """Sends request (bytes, line end included) and returns the answer."""
        self.sock.sendall(request)
        return self.line()

    def close(self):
        self.sock.close()


def check_protocol(server, greeting):
    c = Client(server)
    check(c.line() == greeting, "no greeting")
    check(c.ask(b"PING\n") == "PONG", "PING")
    check(c.ask(b"ECHO hello there\n") == "hello there", "ECHO")
    check(c.ask(b"PING\r\n") == "PONG", "a CRLF line end")
    check(c.ask(b"FLY\n") == "ERR unknown command", "an unknown command")
    # Two requests in one write get two answers, in order.
    c.sock.sendall(b"ECHO one\nECHO two\n")
    check(c.line() == "one" and c.line() == "two", "two pipelined requests")
    check(c.ask(b"QUIT\n") == "BYE", "QUIT")
    check(c.line() is None, "the connection stays open after QUIT")
    c.close()

    # A line longer than --max-line-bytes is refused and the connection closed.
    c = Client(server)
    c.line()
    c.sock.sendall(b"ECHO " + b"x" * 200)
    check(c.line() == "ERR line too long", "a line too long")
    check(c.line() is None, "the connection stays open after a line too long")
    c.close()


def check_idle_timeout(server):
    c = Client(server)
    c.line()
    c.sock.settimeout(seconds(10))
    try:
        check(c.line() is None, "an idle connection got a line")
    except socket.timeout:
        raise TestFailure("an idle connection was not closed")
    c.close()


def test(binary):
    check_help(binary, OPTIONS, shown=["default: 127.0.0.1:7070"])
    check_bad_flags(binary, BAD_FLAGS, program=PROGRAM)
    with tempfile.TemporaryDirectory() as tmp:
        check_config_errors(binary, BAD_CONFIGS, tmp)

    greeting = "hello from the test"
    server = AppProcess(binary, "--listen", "127.0.0.1:0", "--max-line-bytes", "64",
                        "--idle-timeout-ms", str(int(1000 * seconds(1))),
                        "--greeting", greeting)
    with server_log_on_failure(server):
        server.wait_listening()
        check_protocol(server, greeting)
        check_idle_timeout(server)
        st = server.wait_stats(lambda s: s["timed_out"] >= 1, 5, "the idle close")
        check(st["lines"] == 7, "lines answered: %s" % st["lines"])
        check(st["errors"] == 2, "errors: %s" % st["errors"])
        code = server.stop()
        check(code == 0, "exit code %d after SIGTERM" % code)
        final = server.final_stats()
        check(final["app"] == PROGRAM and final["accepted"] == 3,
              "final stats: %s" % final)


if __name__ == "__main__":
    run(test, PROGRAM)
