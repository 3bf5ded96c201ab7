"""HTTP/2 is used where the server offers it, and multiplexed.

nginx (nginx-light) is started on loopback with three listeners: cleartext
HTTP/2 (h2c, prior knowledge only), HTTP/1.1, and, when the openssl command
can make a self-signed certificate, HTTP/2 over TLS (ALPN). Its access log records
$server_protocol and $connection (nginx's connection serial number) for
every request, so the test sees what went over the wire, not only what the
client reports:

  --http-version 2-prior-knowledge over cleartext: every response is HTTP/2
  by the client's "http_version" and by nginx's log; -c 20 in load mode on
  one executor sends 200 requests as streams over few connections (one
  weft_curl client per 32 workers, so 1 is expected, and at most 2 are
  accepted), except with libcurl before 8.0.0, which cannot reuse such a
  connection: then a connection per request, and every request succeeds;
  HTTP/1.1 takes one connection per worker;
  over TLS, --http-version 2 and the default (auto) both negotiate HTTP/2
  and multiplex the 200 requests over at most 2 connections.

Skipped (exit 77) when nginx is not installed.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from client_harness import (SKIP, check, client, free_port, run, seconds,
                            wait_until)

CONF = """
worker_processes 1;
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format proto '$server_protocol $connection $status $request_uri';
  access_log {tmp}/access.log proto;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{h2c} http2;
    location / {{ return 200 "hello"; }}
  }}
  server {{
    listen 127.0.0.1:{h1};
    location / {{ return 200 "hello"; }}
  }}
  {tls_server}
}}
"""

TLS_SERVER = """server {{
    listen 127.0.0.1:{tls} ssl http2;
    ssl_certificate {tmp}/cert.pem;
    ssl_certificate_key {tmp}/key.pem;
    location / {{ return 200 "hello"; }}
  }}"""


def find_nginx():
    for path in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def make_cert(tmp):
    """A self-signed certificate for 127.0.0.1; False without openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        return False
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", os.path.join(tmp, "key.pem"),
                        "-out", os.path.join(tmp, "cert.pem"), "-days", "1",
                        "-subj", "/CN=127.0.0.1"],
                       capture_output=True, timeout=seconds(30))
    return p.returncode == 0


class Nginx:
    """nginx on free loopback ports, in a temporary directory."""

    def __init__(self, binary, tmp, tls):
        self.tmp = tmp
        self.proc = None
        for _ in range(3):
            self.h2c = free_port()
            self.h1 = free_port()
            self.tls = free_port() if tls else None
            tls_server = TLS_SERVER.format(tls=self.tls, tmp=tmp) if tls else ""
            with open(os.path.join(tmp, "nginx.conf"), "w") as f:
                f.write(CONF.format(tmp=tmp, h2c=self.h2c, h1=self.h1,
                                    tls_server=tls_server))
            self.proc = subprocess.Popen(
                [binary, "-p", tmp, "-c", os.path.join(tmp, "nginx.conf")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            if self._listening():
                return
            self.stop()
        raise AssertionError("nginx did not start: %s" % self.errors())

    def _listening(self):
        deadline = time.monotonic() + seconds(10)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # a port was taken meanwhile: try others
            try:
                with socket.create_connection(("127.0.0.1", self.h2c), timeout=1):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def errors(self):
        try:
            return open(os.path.join(self.tmp, "error.log")).read()
        except OSError:
            return ""

    def log(self):
        """(protocol, connection, status, uri) of every request so far."""
        path = os.path.join(self.tmp, "access.log")
        if not os.path.exists(path):
            return []
        return [tuple(l.split()) for l in open(path) if l.strip()]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=seconds(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stderr.close()


def entries_since(ng, before, uri):
    """The log entries after the first `before` ones for uri."""
    return [e for e in ng.log()[before:] if e[3] == uri]


def load(binary, ng, url, uri, version, tmp):
    """-c 20 -n 200 on one executor; returns (result, lines, log entries)."""
    before = len(ng.log())
    out = os.path.join(tmp, "lines-%s.jsonl" % version)
    args = ["-c", 20, "-n", 200, "--executors", 1, "--summary", "json",
            "-o", out, "-k", url + uri]
    if version != "auto":
        args += ["--http-version", version]
    r = client(binary, *args, timeout=60)
    check(r.code == 0 and r.summary and r.summary["ok"] == 200,
          "load over %s: %r" % (version, r))
    lines = [json.loads(l) for l in open(out) if l.strip()]
    # nginx logs a request once its response is sent; the client may have
    # it a moment earlier.
    wait_until(lambda: len(entries_since(ng, before, uri)) >= 200, 10,
               "nginx to log 200 requests for " + uri)
    return r, lines, entries_since(ng, before, uri)


def test(binary):
    nginx = find_nginx()
    if nginx is None:
        print("nginx is not installed (nginx-light)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="http_client-h2-")
    ng = None
    try:
        tls = make_cert(tmp)
        if not tls:
            print("no openssl command: the TLS part is skipped")
        ng = Nginx(nginx, tmp, tls)
        h2c = "http://127.0.0.1:%d" % ng.h2c

        # One fetch: the client and nginx agree it was HTTP/2.
        r = client(binary, "--http-version", "2-prior-knowledge", h2c + "/one")
        line = r.by_url(h2c + "/one")
        check(r.code == 0 and line["status"] == 200 and line["bytes"] == 5 and
              line["http_version"] == "2", "h2c fetch: %r" % r)
        wait_until(lambda: entries_since(ng, 0, "/one"), 10, "nginx's log of /one")
        check(entries_since(ng, 0, "/one")[0][0] == "HTTP/2.0",
              "nginx saw %s" % ng.log())

        # Load: 200 requests from 20 workers as streams over few connections.
        # libcurl before 8.0.0 cannot reuse a prior-knowledge connection
        # (curl bug 10634): http_client then says so and opens one per
        # request, which must still all succeed over HTTP/2.
        r, lines, log = load(binary, ng, h2c, "/multi", "2-prior-knowledge", tmp)
        check(len(lines) == 200 and all(l["http_version"] == "2" for l in lines),
              "h2c load lines: %s" % lines[:3])
        check(all(e[0] == "HTTP/2.0" and e[2] == "200" for e in log),
              "nginx saw %s" % log[:5])
        conns = {e[1] for e in log}
        if "cannot reuse HTTP/2 prior-knowledge" in r.err:
            print("old libcurl: h2c without reuse (%d connections)" % len(conns))
            check(len(conns) == 200, "h2c without reuse: %d connections" % len(conns))
        else:
            check(1 <= len(conns) <= 2,
                  "200 HTTP/2 requests over %d connections" % len(conns))

        # The same over HTTP/1.1 needs a connection per worker: the contrast
        # shows that the count above is multiplexing.
        h1 = "http://127.0.0.1:%d" % ng.h1
        r, lines, log = load(binary, ng, h1, "/plain", "1.1", tmp)
        check(r.code == 0 and r.summary["ok"] == 200, "HTTP/1.1 load: %r" % r)
        check(all(l["http_version"] == "1.1" for l in lines) and
              all(e[0] == "HTTP/1.1" for e in log), "HTTP/1.1 lines: %s" % lines[:3])
        conns = {e[1] for e in log}
        check(len(conns) >= 10, "20 HTTP/1.1 workers used %d connections" % len(conns))

        if tls:
            https = "https://127.0.0.1:%d" % ng.tls
            for version in ("2", "auto"):
                uri = "/tls-" + version
                r, lines, log = load(binary, ng, https, uri, version, tmp)
                check(r.code == 0 and r.summary["ok"] == 200,
                      "TLS load (%s): %r" % (version, r))
                check(all(l["http_version"] == "2" for l in lines),
                      "TLS lines (%s): %s" % (version, lines[:3]))
                check(all(e[0] == "HTTP/2.0" for e in log),
                      "nginx saw (%s) %s" % (version, log[:5]))
                conns = {e[1] for e in log}
                check(1 <= len(conns) <= 2,
                      "TLS (%s): 200 requests over %d connections" % (version, len(conns)))
    finally:
        if ng is not None:
            ng.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(test)
