"""echo_harness: runs echo_server as a real process for the integration tests.

Each test script takes the path of the echo_server binary as its only
argument. The server is started on loopback with port 0; its port is read
back from its "listening on HOST:PORT" log line. What every application's
tests share (the process, scaled timeouts, run(), the option checks) is in
apps/common/testing/weft_app.py; this file adds what is echo's own: raw
payload round trips and the open-file limit the big tests need.

Standard library only.
"""

import os
import resource
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

import weft_app  # noqa: E402
from weft_app import (SCALE, SKIP, TestFailure, check, check_bad_flags,  # noqa: E402,F401
                      check_config_errors, check_help, seconds, server_log_on_failure)

# An echo_server process: every method it needs is the shared one.
Server = weft_app.AppProcess


def raise_fd_limit(need):
    """Raises RLIMIT_NOFILE's soft limit to the hard one, for this process
    and the servers it starts. Returns False when even that is below need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target >= need


def recv_exactly(sock, n):
    """Reads exactly n bytes from sock; TestFailure when it closes first."""
    chunks = []
    got = 0
    while got < n:
        b = sock.recv(min(n - got, 1 << 20))
        if not b:
            raise TestFailure("connection closed after %d of %d bytes" % (got, n))
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def echo_roundtrip(sock, payload):
    """Sends payload from a thread while reading the echo here, since the
    server stops reading from a client that does not read."""
    errors = []

    def send():
        try:
            sock.sendall(payload)
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    data = recv_exactly(sock, len(payload))
    t.join(seconds(10))
    check(not errors, "send failed: %s" % errors)
    return data


def run(test):
    """Runs test(binary) and exits 0, SKIP or 1 with the reason."""
    weft_app.run(test, "echo_server")
