"""web_harness: runs web_framework as a real process for the integration tests.

Each test script takes the path of the web_framework binary as its only
argument. The server is started on loopback with port 0; its port is read
back from its "listening on HOST:PORT" log line. Requests go over raw
sockets (so that a test controls every byte: pipelining, half requests,
smuggling shapes), through http.client, or through the curl command line.
Every wait has a timeout multiplied by WEFT_TEST_TIMEOUT_SCALE (higher under
sanitizers), so a broken server fails a test instead of hanging it. What
every application's tests share (the process, scaled timeouts, run(), the
option checks) is in apps/common/testing/weft_app.py; this file adds HTTP.

Standard library only.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

import weft_app  # noqa: E402
from weft_app import (SCALE, SKIP, TestFailure, check, check_bad_flags,  # noqa: E402,F401
                      check_config_errors, check_help, seconds, server_log_on_failure)

HERE = os.path.dirname(os.path.abspath(__file__))
APP_DIR = os.path.dirname(HERE)
STATIC_DIR = os.path.join(APP_DIR, "static")
CONFIG_FILE = os.path.join(APP_DIR, "config.json")


class Response:
    """A parsed HTTP response: status, reason, headers (a list of (name,
    value) pairs in the order received), body bytes and version."""

    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name):
        """The first value of header name (any case), or None."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def header_all(self, name):
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise TestFailure("not JSON (%s): %r" % (e, self.body[:200]))

    def closes(self):
        """True when the server said it closes the connection after this."""
        conn = (self.header("Connection") or "").lower()
        return "close" in conn

    def __repr__(self):
        return "<%d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class Reader:
    """Reads HTTP responses from a socket, buffering what comes after one
    response for the next (pipelining)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._more():
                raise TestFailure("connection closed in a response head: %r" % self.buf[:200])
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n:
            if not self._more():
                raise TestFailure("connection closed after %d of %d body bytes"
                                  % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self, head_request=False):
        """Reads one response; raises TestFailure when the connection closes
        before a whole one arrived."""
        status_line = self._line().decode("latin-1")
        parts = status_line.split(" ", 2)
        check(len(parts) >= 2 and parts[0].startswith("HTTP/"),
              "bad status line %r" % status_line)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        while True:
            line = self._line().decode("latin-1")
            if line == "":
                break
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        res = Response(version, status, reason, headers, b"")
        if head_request or status in (204, 304) or 100 <= status < 200:
            return res
        te = (res.header("Transfer-Encoding") or "").lower()
        cl = res.header("Content-Length")
        if "chunked" in te:
            body = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line() != b"":
                        pass
                    break
                body.append(self._exactly(size))
                check(self._line() == b"", "no CRLF after a chunk")
            res.body = b"".join(body)
        elif cl is not None:
            res.body = self._exactly(int(cl))
        else:
            while self._more():
                pass
            res.body, self.buf = self.buf, b""
        return res


def build_request(method, path, headers=None, body=None, version="HTTP/1.1"):
    """The bytes of a request. headers is a list of pairs or a dict; Host is
    added unless given, and Content-Length when there is a body and neither
    it nor Transfer-Encoding is given."""
    if headers is None:
        headers = []
    elif isinstance(headers, dict):
        headers = list(headers.items())
    names = {k.lower() for k, _ in headers}
    if "host" not in names:
        headers = [("Host", "127.0.0.1")] + headers
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in headers)
    data = (head + "\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode("utf-8")
    return data


def wait_closed(sock, timeout=5):
    """Reads until the peer closes; returns the bytes read before. Raises
    TestFailure when the connection stays open for timeout seconds."""
    sock.settimeout(seconds(timeout))
    got = b""
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                return got
            got += b
    except (ConnectionResetError, BrokenPipeError):
        return got
    except socket.timeout:
        raise TestFailure("the connection was not closed within %.1f s; got %r"
                          % (seconds(timeout), got[:300]))

class Server(weft_app.AppProcess):
    """A web_framework process with its stdout and stderr read by threads.

    Unless the arguments say otherwise it listens on 127.0.0.1:0 with two
    executors and serves the shipped static folder, so that tests see both
    executors at work."""

    def __init__(self, binary, *args, env=None, defaults=True):
        args = list(args)
        if defaults:
            if "--listen" not in args:
                args += ["--listen", "127.0.0.1:0"]
            if "--executors" not in args:
                args += ["--executors", "2"]
            if "--static-dir" not in args:
                args += ["--static-dir", STATIC_DIR]
        super().__init__(binary, *args, env=env)

    def base_url(self):
        """The URL of the server's root on 127.0.0.1."""
        return "http://127.0.0.1:%d" % self.port()

    def request(self, method, path, headers=None, body=None, timeout=10):
        """Sends one request on a new connection and returns the Response."""
        s = self.connect(timeout=timeout)
        try:
            s.sendall(build_request(method, path, headers, body))
            return Reader(s).read(head_request=(method == "HEAD"))
        finally:
            s.close()

    def get(self, path, headers=None):
        """GET path on a new connection; returns the Response."""
        return self.request("GET", path, headers)

    def json_request(self, method, path, doc=None, headers=None):
        """Sends doc as JSON (or no body when doc is None)."""
        hdrs = list((headers or {}).items())
        body = None
        if doc is not None:
            body = json.dumps(doc).encode("utf-8")
            hdrs.append(("Content-Type", "application/json"))
        return self.request(method, path, hdrs, body)

    def http_client(self, timeout=10):
        """An http.client connection to the server (scaled timeout)."""
        return http.client.HTTPConnection("127.0.0.1", self.port(), timeout=seconds(timeout))


def have_curl():
    """True when the curl command line is installed."""
    return shutil.which("curl") is not None


def curl(*args, timeout=10):
    """Runs curl with args (silent, errors shown, bounded in time); returns
    the CompletedProcess with bytes output."""
    cmd = ["curl", "-sS", "--max-time", str(int(seconds(timeout)))] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=seconds(timeout) + 5)


def parse_curl_headers(text):
    """Parses the headers curl -D - (or -i) wrote for the last response into
    (status, {lowercase name: value})."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.startswith("HTTP/")]
    check(blocks, "no response head from curl: %r" % text[:300])
    lines = blocks[-1].split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return status, headers

def run(test):
    """Runs test(binary) and exits 0, SKIP or 1 with the reason."""
    weft_app.run(test, "web_framework")
