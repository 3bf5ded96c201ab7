"""chat_harness: runs chat_server as a real process for the integration tests.

Each test script takes the path of the chat_server binary as its only
argument. The server is started on loopback with port 0 for its TCP and
HTTP sides; the ports are read back from the "listening on HOST:PORT ...
proto=tcp|http" log lines. What every application's tests share is in
apps/common/testing/weft_app.py; this file adds the chat clients:

  - TcpClient speaks the line protocol over a socket;
  - WsClient speaks it over WebSocket at /ws, with a small RFC 6455 client
    written here (masked frames, pings answered), so that tests can also
    send what a library would refuse to (bytes that are not UTF-8, frames
    over a limit);
  - make_token() signs a JWT with HS256 (or claims another alg).

Both clients read with a scaled timeout and keep what they read past the
message a test waits for, so nothing is lost between calls.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import resource
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

import weft_app  # noqa: E402
from weft_app import (SCALE, SKIP, TestFailure, check, check_bad_flags,  # noqa: E402,F401
                      check_config_errors, check_help, run_binary, seconds,
                      server_log_on_failure, wait_until)

LISTEN_PROTO = re.compile(r"listening on (\S+?):(\d+)\"? .*proto=(\w+)")


def run(test):
    """Runs test(binary) and exits 0, SKIP or 1 with the reason."""
    weft_app.run(test, "chat_server")


def raise_fd_limit(need):
    """Raises RLIMIT_NOFILE's soft limit to the hard one, for this process
    and the servers it starts. Returns False when even that is below need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target >= need


class Chat(weft_app.AppProcess):
    """A chat_server process with a TCP and an HTTP listener on port 0."""

    def __init__(self, binary, *args, http=True, executors=2, env=None, log_level="info"):
        base = ["--listen", "127.0.0.1:0", "--executors", str(executors)]
        if http:
            base += ["--http-listen", "127.0.0.1:0"]
        super().__init__(binary, *(base + [str(a) for a in args]), env=env,
                         log_level=log_level)
        self.http = http
        self.tcp_port = None
        self.http_port = None
        self.ready()

    def ready(self, timeout=10):
        """Waits for the listening lines and reads the ports from them."""
        want = 2 if self.http else 1

        def found():
            hits = [LISTEN_PROTO.search(l) for l in self.err_lines]
            hits = [h for h in hits if h]
            if self.proc.poll() is not None and len(hits) < want:
                raise TestFailure("server exited with %s before listening: %s"
                                  % (self.proc.returncode, "\n".join(self.err_lines)))
            return hits if len(hits) >= want else None
        for h in self.wait_for(found, timeout, "the 'listening on' lines"):
            if h.group(3) == "tcp":
                self.tcp_port = int(h.group(2))
            else:
                self.http_port = int(h.group(2))

    def tcp(self, nick=None, timeout=10):
        """A TcpClient, after hello when nick is given."""
        c = TcpClient(self.tcp_port, timeout)
        if nick is not None:
            c.hello(nick)
        return c

    def ws(self, nick=None, timeout=10, path="/ws"):
        """A WsClient, after hello when nick is given."""
        c = WsClient(self.http_port, timeout, path)
        if nick is not None:
            c.hello(nick)
        return c

    def http_get(self, path, timeout=10):
        """GET path on the HTTP side: (status, headers dict, body bytes)."""
        s = socket.create_connection(("127.0.0.1", self.http_port), seconds(timeout))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, body


class Client:
    """What both transports share: JSON messages in and out, in order."""

    def __init__(self, timeout):
        self.timeout = seconds(timeout)
        self.inbox = []      # messages read but not yet returned
        self.eof = False

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode())

    def next(self, timeout=None):
        """The next message; TestFailure when none comes in time or the
        connection ends."""
        deadline = time.monotonic() + (seconds(timeout) if timeout else self.timeout)
        while not self.inbox:
            if self.eof:
                raise TestFailure("the connection ended while a message was awaited")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("no message within the timeout")
            self._fill(left)
        return self.inbox.pop(0)

    def expect(self, type_, timeout=None, **fields):
        """The next message, which must be of type type_ with fields."""
        m = self.next(timeout)
        check(m.get("type") == type_, "expected %s, got %r" % (type_, m))
        for k, v in fields.items():
            check(m.get(k) == v, "expected %s=%r in %r" % (k, v, m))
        return m

    def wait_for(self, pred, timeout=None, what="a message"):
        """Reads until pred(message) holds; returns it, dropping the rest."""
        while True:
            try:
                m = self.next(timeout)
            except TestFailure as e:
                raise TestFailure("waiting for %s: %s" % (what, e))
            if pred(m):
                return m

    def error(self, code, timeout=None):
        """The next message must be the error code."""
        return self.expect("error", timeout, code=code)

    def hello(self, nick, token=None):
        m = {"type": "hello", "nick": nick}
        if token is not None:
            m["token"] = token
        self.send(m)
        return self.expect("welcome", nick=nick)

    def join(self, room, since=None):
        m = {"type": "join", "room": room}
        if since is not None:
            m["since"] = since
        self.send(m)
        return self.expect("joined", room=room)

    def closed(self, timeout=5):
        """True once the server has closed the connection (messages read
        before the end stay in the inbox)."""
        deadline = time.monotonic() + seconds(timeout)
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._fill(left)
        return True


class TcpClient(Client):
    def __init__(self, port, timeout=10):
        super().__init__(timeout)
        self.sock = socket.create_connection(("127.0.0.1", port), seconds(timeout))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data + b"\n")

    def send_bytes(self, data):
        self.sock.sendall(data)

    def _fill(self, left):
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            return
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            text = line.decode("utf-8")  # must be UTF-8
            self.inbox.append(json.loads(text))

    def reset(self):
        """Closes with a reset (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


class WsClient(Client):
    """A WebSocket client for tests (RFC 6455, no extensions)."""

    def __init__(self, port, timeout=10, path="/ws"):
        super().__init__(timeout)
        self.sock = socket.create_connection(("127.0.0.1", port), seconds(timeout))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            check(chunk, "the server closed during the WebSocket handshake")
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 101"), "no 101: %r" % head[:80])
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        check(accept in head, "a wrong Sec-WebSocket-Accept")
        self.close_code = None

    def frame(self, opcode, payload, fin=True):
        """Sends one masked frame."""
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.sock.sendall(head + mask + body)

    def send_raw(self, data):
        self.frame(1, data)

    def _fill(self, left):
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            return
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        while True:
            if len(self.buf) < 2:
                return
            b0, b1 = self.buf[0], self.buf[1]
            n = b1 & 0x7F
            off = 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n = struct.unpack("!H", self.buf[2:4])[0]
                off = 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n = struct.unpack("!Q", self.buf[2:10])[0]
                off = 10
            check(not (b1 & 0x80), "the server masked a frame")
            if len(self.buf) < off + n:
                return
            payload = self.buf[off:off + n]
            self.buf = self.buf[off + n:]
            op = b0 & 0x0F
            check(b0 & 0x80, "the server fragmented a message")
            if op == 1:
                self.inbox.append(json.loads(payload.decode("utf-8")))
            elif op == 9:
                self.frame(10, payload)
            elif op == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                try:
                    self.frame(8, payload[:2])
                except OSError:
                    pass
                self.eof = True
                return

    def close(self):
        try:
            self.frame(8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(secret, claims, alg="HS256", sign=True):
    """A JWT of claims, signed with secret by HMAC-SHA256 (the header says
    alg; with sign False the signature is empty, as alg "none" has it)."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing = (header + "." + payload).encode()
    sig = b64url(hmac.new(secret, signing, hashlib.sha256).digest()) if sign else ""
    return header + "." + payload + "." + sig
