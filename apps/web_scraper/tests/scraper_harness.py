"""scraper_harness: a test site and a runner for web_scraper tests.

Each test script takes the path of the web_scraper binary as its only
argument. Site() serves pages from a dict on one or more loopback
addresses (127.0.0.1, 127.0.0.2, ...: different hosts to the crawler),
each on port 0, with http.server's ThreadingHTTPServer. It counts what it
sees: requests per (host, path), their times, and the requests in flight
per host at once (the most seen is max_in_flight[host]; max_total over
all hosts).

A page is a dict: body (str or bytes), status (200), ctype
("text/html; charset=utf-8"), headers (a list of pairs), delay (seconds
before answering), gzip (compress the body when the client accepts it),
and fail_first (answer that many requests with 503 and
Retry-After: retry_after first). A body may name other hosts' ports as
{port:N}, N being the index of the address (0 for 127.0.0.1); {port} is
its own.

Every wait has a timeout multiplied by WEFT_TEST_TIMEOUT_SCALE. Shared
parts (scaled timeouts, run(), the option checks) are in
apps/common/testing/weft_app.py. Standard library only.
"""

import gzip
import http.server
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

import weft_app  # noqa: E402
from weft_app import (SCALE, SKIP, TestFailure, app_env, check,  # noqa: E402,F401
                      check_bad_flags, check_config_errors, check_help, free_port,
                      run_binary, seconds, start_redis, wait_until)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        site = self.server.site
        index = self.server.index
        host = self.server.host
        path = self.path
        with site.lock:
            site.in_flight[host] = site.in_flight.get(host, 0) + 1
            site.max_in_flight[host] = max(site.max_in_flight.get(host, 0),
                                           site.in_flight[host])
            site.max_total = max(site.max_total, sum(site.in_flight.values()))
            site.hits[(host, path)] = site.hits.get((host, path), 0) + 1
            site.times.setdefault((host, path), []).append(time.monotonic())
            site.log.append((host, path, time.monotonic(), self.headers.get("User-Agent")))
            hit = site.hits[(host, path)]
        try:
            page = site.pages[index].get(path)
            if page is None:
                self._send(404, b"<html><title>Not found</title></html>",
                           "text/html", ())
                return
            if page.get("delay"):
                time.sleep(page["delay"])
            if hit <= page.get("fail_first", 0):
                self._send(503, b"busy", "text/plain",
                           [("Retry-After", str(page.get("retry_after", 1)))])
                return
            body = page.get("body", b"")
            if isinstance(body, str):
                body = site.expand(body, index).encode("utf-8")
            headers = list(page.get("headers", ()))
            if page.get("gzip") and "gzip" in (self.headers.get("Accept-Encoding") or ""):
                body = gzip.compress(body)
                with site.lock:
                    site.gzipped.append(path)
                headers.append(("Content-Encoding", "gzip"))
            self._send(page.get("status", 200), body,
                       page.get("ctype", "text/html; charset=utf-8"), headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with site.lock:
                site.in_flight[host] -= 1

    def _send(self, code, body, ctype, headers):
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, site_expand(self.server, v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def site_expand(server, text):
    return server.site.expand(text, server.index)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Site:
    """Test sites on loopback addresses: pages[i] is the dict of paths of
    the i-th address (127.0.0.(i+1))."""

    def __init__(self, pages):
        self.pages = pages
        self.lock = threading.Lock()
        self.hits = {}
        self.times = {}
        self.log = []
        self.gzipped = []
        self.in_flight = {}
        self.max_in_flight = {}
        self.max_total = 0
        self.servers = []
        self.threads = []
        for i in range(len(pages)):
            host = "127.0.0.%d" % (i + 1)
            srv = _Server((host, 0), _Handler)
            srv.site = self
            srv.index = i
            srv.host = host
            self.servers.append(srv)
        self.ports = [s.server_address[1] for s in self.servers]
        for s in self.servers:
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05},
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def expand(self, text, index):
        text = text.replace("{port}", str(self.ports[index]))
        for i, p in enumerate(self.ports):
            text = text.replace("{port:%d}" % i, str(p))
        return text

    def url(self, path, index=0):
        return "http://127.0.0.%d:%d%s" % (index + 1, self.ports[index], path)

    def hit_count(self, path, index=0):
        with self.lock:
            return self.hits.get(("127.0.0.%d" % (index + 1), path), 0)

    def requested(self, index=0):
        """The paths requested on one address, in order."""
        host = "127.0.0.%d" % (index + 1)
        with self.lock:
            return [p for h, p, _, _ in self.log if h == host]

    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def html(title, links=(), extra=""):
    """A small HTML page with a title, links and more markup."""
    anchors = "".join('<a href="%s">link</a>\n' % l for l in links)
    return ("<!DOCTYPE html><html><head><title>%s</title></head><body>\n%s%s"
            "</body></html>\n" % (title, anchors, extra))


class Crawl:
    """A finished web_scraper run: its exit code, records and stderr."""

    def __init__(self, proc, records, stderr, seconds_taken):
        self.code = proc.returncode
        self.records = records
        self.stderr = stderr
        self.seconds = seconds_taken
        self.by_url = {}
        for r in records:
            check(r["url"] not in self.by_url, "two records for %s" % r["url"])
            self.by_url[r["url"]] = r

    def summary(self):
        for line in self.stderr.splitlines():
            if "summary " in line:
                return dict(kv.split("=", 1) for kv in line.split("summary ", 1)[1].split())
        raise TestFailure("no summary line in %r" % self.stderr)

    def __repr__(self):
        return "Crawl(code=%s, %d records, stderr=%r)" % (self.code, len(self.records),
                                                           self.stderr[-2000:])


def parse_records(raw):
    """JSON lines (bytes) into records, checking each is valid UTF-8 JSON."""
    text = raw.decode("utf-8")  # raises on invalid UTF-8
    records = []
    for line in text.splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def complete_records(path):
    """The records of the complete lines of an output file (a process may
    have died writing its last one); [] when there is no file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    return parse_records(raw[:raw.rfind(b"\n") + 1])


FIELDS = ("url", "final_url", "status", "depth", "referrer", "content_type", "bytes",
          "title", "fields", "links", "fetched_at", "elapsed_ms", "error")


def crawl(binary, *args, timeout=30, log_level="warn", input=None):
    """Runs web_scraper with args to its end; returns a Crawl."""
    cmd = [binary] + [str(a) for a in args]
    started = time.monotonic()
    try:
        p = subprocess.run(cmd, input=input, capture_output=True,
                           env=app_env(log_level), timeout=seconds(timeout))
    except subprocess.TimeoutExpired:
        raise TestFailure("%s did not end within %.1f s" % (cmd, seconds(timeout)))
    records = parse_records(p.stdout)
    for r in records:
        for f in FIELDS:
            check(f in r, "record without %s: %r" % (f, r))
    return Crawl(p, records, p.stderr.decode("utf-8", "replace"),
                 time.monotonic() - started)


def redis_missing(binary):
    """Why --redis cannot be tested here (no redis-server, or a build
    without the Redis module), or None."""
    import shutil
    if shutil.which("redis-server") is None:
        return "no redis-server"
    probe = subprocess.run([binary, "--redis", "127.0.0.1:1", "--job", "x", "http://127.0.0.1:1/"],
                           capture_output=True, env=app_env("warn"))
    if probe.returncode == 2 and b"no Redis" in probe.stderr:
        return "this build has no Redis module"
    return None


class Redis:
    """A redis-server on a free port for the length of a test; close()."""

    def __init__(self, tmp):
        self.port = free_port()
        self.proc = start_redis(self.port, tmp)

    def command(self, *args):
        """A command through redis-cli: its reply as redis-cli --no-raw
        prints it (strings quoted, newlines as \\n)."""
        p = subprocess.run(["redis-cli", "--no-raw", "-p", str(self.port)] +
                           [str(a) for a in args], capture_output=True,
                           timeout=seconds(10))
        return p.stdout.decode("utf-8", "replace")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def run(test):
    weft_app.run(test, "web_scraper")
