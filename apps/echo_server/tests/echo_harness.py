"""echo_harness: runs echo_server as a real process for the integration tests.

Each test script takes the path of the echo_server binary as its only
argument. The server is started on loopback with port 0; its port is read
back from its "listening on HOST:PORT" log line. Every wait has a timeout,
multiplied by WEFT_TEST_TIMEOUT_SCALE (higher under sanitizers), so a broken
server fails a test instead of hanging it.

Standard library only.
"""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

SCALE = max(1.0, float(os.environ.get("WEFT_TEST_TIMEOUT_SCALE", "1") or "1"))

# Exit code that ctest counts as "skipped" (SKIP_RETURN_CODE).
SKIP = 77

LISTENING = re.compile(r"listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+|[\w.-]+):(\d+)")


def seconds(s):
    """A timeout of s seconds, scaled for slow (sanitizer) builds."""
    return s * SCALE


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


class Server:
    """An echo_server process with its stdout and stderr read by threads.

    stderr (the logfmt log) and stdout (JSON stats) are collected line by
    line so that the server never blocks on a full pipe."""

    def __init__(self, binary, *args, env=None):
        full_env = dict(os.environ)
        full_env.setdefault("WEFT_LOG_LEVEL", "info")
        if env:
            full_env.update(env)
        self.args = [binary] + list(args)
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=full_env)
        self.pid = self.proc.pid
        self.lock = threading.Condition()
        self.out_lines = []
        self.err_lines = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out_lines),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err_lines),
                             daemon=True),
        ]
        for t in self.readers:
            t.start()
        self.ports = {}

    def _read(self, stream, lines):
        for raw in iter(stream.readline, b""):
            with self.lock:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate() (called under the lock) is true."""
        deadline = time.monotonic() + seconds(timeout)
        with self.lock:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("timed out waiting for " + what)
                self.lock.wait(min(left, 0.1))

    def wait_listening(self, count=1, timeout=10):
        """Waits for count "listening on" lines; returns {host: port}."""
        def found():
            hits = [LISTENING.search(l) for l in self.err_lines]
            hits = [h for h in hits if h]
            if self.proc.poll() is not None and len(hits) < count:
                raise TestFailure("server exited with %s before listening" % self.proc.returncode)
            return hits if len(hits) >= count else None
        hits = self.wait_for(found, timeout, "the 'listening on' line")
        for h in hits:
            self.ports[h.group(1).strip("[]")] = int(h.group(2))
        return self.ports

    def port(self, host="127.0.0.1"):
        if host not in self.ports:
            self.wait_listening()
        return self.ports[host]

    def connect(self, host="127.0.0.1", timeout=10):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(seconds(timeout))
        s.connect((host, self.port(host)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stats(self, timeout=5):
        """Sends SIGUSR1 and returns the JSON line it prints."""
        with self.lock:
            before = len(self.out_lines)
        self.proc.send_signal(signal.SIGUSR1)

        def new_json():
            for line in self.out_lines[before:]:
                if line.startswith("{"):
                    return json.loads(line)
            return None
        return self.wait_for(new_json, timeout, "the stats JSON after SIGUSR1")

    def wait_stats(self, predicate, timeout, what):
        """Polls stats until predicate(stats) holds; returns the stats."""
        deadline = time.monotonic() + seconds(timeout)
        while True:
            st = self.stats()
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise TestFailure("timed out waiting for %s; last stats: %s" % (what, st))
            time.sleep(0.05)

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise TestFailure("no VmRSS for the server")

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(seconds(timeout))
        except subprocess.TimeoutExpired:
            raise TestFailure("server did not exit within %.1f s" % seconds(timeout))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.wait_exit(timeout)
        for t in self.readers:
            t.join(seconds(5))
        return code

    def final_stats(self):
        """The last JSON line of stdout (the stats printed at exit)."""
        with self.lock:
            lines = [l for l in self.out_lines if l.startswith("{")]
        check(lines, "no stats JSON on stdout")
        return json.loads(lines[-1])

    def log(self):
        with self.lock:
            return "\n".join(self.err_lines)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


def raise_fd_limit(need):
    """Raises RLIMIT_NOFILE's soft limit to the hard one, for this process
    and the servers it starts. Returns False when even that is below need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target >= need


def recv_exactly(sock, n):
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
    if len(sys.argv) != 2:
        print("usage: %s PATH_TO_ECHO_SERVER" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    binary = sys.argv[1]
    started = time.monotonic()
    try:
        result = test(binary)
    except Exception:
        traceback.print_exc()
        print("FAILED after %.2f s" % (time.monotonic() - started))
        sys.exit(1)
    if result == SKIP:
        print("SKIPPED")
        sys.exit(SKIP)
    print("passed in %.2f s" % (time.monotonic() - started))
    sys.exit(0)


def server_log_on_failure(server):
    """A context manager that prints the server's log when the body fails."""
    class Guard:
        def __enter__(self):
            return server

        def __exit__(self, kind, value, tb):
            if kind is not None:
                print("---- server log ----")
                print(server.log())
                print("---- end of server log ----")
            server.kill()
            return False
    return Guard()
