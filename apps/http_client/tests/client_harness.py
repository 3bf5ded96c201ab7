"""client_harness: a fixture HTTP server and a runner for http_client tests.

Each test script takes the path of the http_client binary as its only
argument. The fixture server listens on 127.0.0.1 port 0 in this process
(http.server.ThreadingHTTPServer, HTTP/1.1 keep-alive) and counts what it
sees: requests per path, their arrival times, and the requests in flight at
once. Its paths choose the behaviour:

  /ok[/...]                 200 "hello"
  /slow/MS[/...]            200 after MS milliseconds
  /status/CODE[/...]        that status
  /flaky/KEY/N/HOW          the first N hits of KEY answer 429 (HOW starts
                            with s: Retry-After seconds, d: an HTTP date that
                            many seconds ahead, n: no Retry-After, 5: 503
                            with no Retry-After), then 200
  /redirect/N               302 to /redirect/N-1; /redirect/0 is 200
  /close                    closes the connection without a response

Every wait has a timeout multiplied by WEFT_TEST_TIMEOUT_SCALE, so a broken
client fails a test instead of hanging it. What every application's tests
share (scaled timeouts, run(), the option checks) is in
apps/common/testing/weft_app.py. Standard library only.
"""

import email.utils
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

import weft_app  # noqa: E402
from weft_app import (SCALE, SKIP, TestFailure, app_env, check, free_port,  # noqa: E402,F401
                      check_bad_flags, check_config_errors, check_help, run_binary,
                      seconds, wait_until)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: no Nagle/delayed-ACK stalls.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, body=b"hello", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        fx = self.server.fixture
        body = self._body()
        path = self.path.split("?")[0]
        now = time.monotonic()
        with fx.lock:
            fx.in_flight += 1
            fx.max_in_flight = max(fx.max_in_flight, fx.in_flight)
            fx.hits[path] = fx.hits.get(path, 0) + 1
            fx.times.append(now)
            fx.times_by_path.setdefault(path, []).append(now)
            fx.requests.append((self.command, path, dict(self.headers), body))
        try:
            parts = [p for p in path.split("/") if p]
            kind = parts[0] if parts else ""
            if kind == "ok":
                self._send(200)
            elif kind == "slow":
                time.sleep(int(parts[1]) / 1000.0)
                self._send(200)
            elif kind == "status":
                self._send(int(parts[1]), b"status %s" % parts[1].encode())
            elif kind == "flaky":
                key, n, how = parts[1], int(parts[2]), parts[3]
                with fx.lock:
                    seen = fx.flaky.get(key, 0) + 1
                    fx.flaky[key] = seen
                if seen > n:
                    self._send(200)
                elif how.startswith("s"):
                    self._send(429, b"slow down", [("Retry-After", how[1:])])
                elif how.startswith("d"):
                    when = time.time() + int(how[1:])
                    self._send(429, b"slow down",
                               [("Retry-After", email.utils.formatdate(when, usegmt=True))])
                elif how.startswith("5"):
                    self._send(503, b"unavailable")
                else:
                    self._send(429, b"slow down")
            elif kind == "redirect":
                n = int(parts[1])
                if n <= 0:
                    self._send(200, b"landed")
                else:
                    self._send(302, b"", [("Location", "/redirect/%d" % (n - 1))])
            elif kind == "close":
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)
            else:
                self._send(404, b"no such path")
        finally:
            with fx.lock:
                fx.in_flight -= 1

    do_GET = _handle
    do_POST = _handle
    do_HEAD = _handle
    do_PUT = _handle
    do_DELETE = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


class Fixture:
    """The fixture HTTP server, started on 127.0.0.1 port 0."""

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.hits = {}
        self.times = []
        self.times_by_path = {}
        self.requests = []
        self.flaky = {}
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fixture = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def total_hits(self):
        with self.lock:
            return sum(self.hits.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Result:
    """What a finished http_client run printed."""

    def __init__(self, code, out, err):
        self.code = code
        self.out = out
        self.err = err
        self.lines = []
        self.summary = None
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            doc = json.loads(line)
            if "summary" in doc:
                self.summary = doc["summary"]
            else:
                self.lines.append(doc)

    def by_url(self, url):
        hits = [l for l in self.lines if l["url"] == url]
        check(len(hits) == 1, "%d lines for %s: %s" % (len(hits), url, self.out))
        return hits[0]

    def __repr__(self):
        return "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.code, self.out, self.err)


class RawServer:
    """A TCP server on 127.0.0.1 port 0 whose every connection is handed to
    serve(conn, server) in a thread of its own, for answers that no HTTP
    server library sends (bytes that are not HTTP, a body cut short, a
    connection closed under a keep-alive client, silence). It counts the
    connections it accepted."""

    def __init__(self, serve):
        import socket
        self.serve = serve
        self.lock = threading.Lock()
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.closing:
                conn.close()
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.serve(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        import socket
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def read_request(conn, timeout=10):
    """Reads one request head (up to the blank line) from conn; returns it,
    or b"" when the peer closed first."""
    conn.settimeout(seconds(timeout))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        data += chunk
    return data




def client(binary, *args, timeout=30, stdin=None, env=None):
    """Runs http_client to its end (stdin, a string, on its standard input)
    and returns a Result."""
    p = run_binary(binary, *args, timeout=timeout, log_level="warn", env=env, input=stdin)
    return Result(p.returncode, p.stdout, p.stderr)


class Running:
    """An http_client process started in the background (for signals)."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary] + [str(a) for a in args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=app_env("info"))

    def signal(self, sig=signal.SIGINT):
        """Sends sig to the client."""
        self.proc.send_signal(sig)

    def finish(self, timeout):
        """Waits for the client to exit and returns its Result."""
        try:
            out, err = self.proc.communicate(timeout=seconds(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise TestFailure("http_client did not exit within %.1f s\n%s" % (
                seconds(timeout), err))
        return Result(self.proc.returncode, out, err)

    def kill(self):
        """Kills the client unless it has exited (the cleanup of a test)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def run(test):
    """Runs test(binary) and exits 0, SKIP or 1 with the reason."""
    weft_app.run(test, "http_client")
