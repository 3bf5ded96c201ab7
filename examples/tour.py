#!/usr/bin/env python3
"""tour.py: `make demo`'s tour of the applications, working together.

    python3 examples/tour.py [--build DIR] [--quick]

Starts every application that the build holds on 127.0.0.1 with free ports
(port 0, read back from each server's `listening on HOST:PORT` line), makes
them work together, prints each step as it happens and a table at the end:

  1. web_framework serves its example site; http_client loads it;
  2. echo_server takes a burst of connections from the echo load tool;
  3. chat_server: scripted clients over TCP and WebSocket chat in two rooms;
  4. file_processor hashes, verifies, compresses and decompresses a
     generated tree in a temporary folder;
  5. web_scraper crawls the web_framework's pages;

then stops every server with SIGTERM and checks that each exits 0. An
application that the build does not have is skipped with a line saying so;
any step that fails makes the tour exit 1, loudly.

Why a script and not a C program on weft: the tour starts processes, waits
for their log lines, parses JSON and compares files, which is what the
applications' integration tests already do through
apps/common/testing/weft_app.py. The tour reuses that harness (and its
bounded waits, scaled by WEFT_TEST_TIMEOUT_SCALE) instead of a second one.
--quick shortens the load steps for ctest.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "apps", "common", "testing"))
import weft_app  # noqa: E402
from weft_app import AppProcess, TestFailure, check, seconds  # noqa: E402


class Skipped(Exception):
    """A step whose application (or tool) the build does not have."""


def say(text):
    print(text, flush=True)


class Tour:
    def __init__(self, build, quick):
        self.build = os.path.abspath(build)
        self.quick = quick
        self.rows = []            # (application, what it did, figures)
        self.servers = []         # (name, AppProcess) to stop at the end
        self.tmp = tempfile.mkdtemp(prefix="weft-tour-")
        self.site_port = None     # web_framework's port, for the crawler

    # -- helpers ---------------------------------------------------------

    def binary(self, app):
        path = os.path.join(self.build, "apps", app, app)
        if not os.access(path, os.X_OK):
            raise Skipped("%s is not built (no %s)" % (app, path))
        return weft_app.emulated(path)

    def start(self, name, *args, count=1):
        server = AppProcess(*args, log_level="info")
        self.servers.append((name, server))
        try:
            server.wait_listening(count=count, timeout=15)
        except TestFailure:
            say(server.log())
            raise
        return server

    def run(self, *args, timeout=60, input=None, ok=(0,)):
        proc = weft_app.run_binary(*args, timeout=timeout, log_level="warn", input=input)
        if proc.returncode not in ok:
            raise TestFailure("%s exited %d\nstdout: %s\nstderr: %s" % (
                " ".join(str(a) for a in args), proc.returncode, proc.stdout[-2000:],
                proc.stderr[-2000:]))
        return proc

    # -- the steps -------------------------------------------------------

    def runtime_demo(self):
        demo = os.path.join(self.build, "examples", "demo")
        if not os.access(demo, os.X_OK):
            raise Skipped("the runtime demo is not built")
        demo = weft_app.emulated(demo)
        start = time.monotonic()
        proc = subprocess.run([demo], stdin=subprocess.DEVNULL, timeout=seconds(60))
        check(proc.returncode == 0, "examples/demo exited %d" % proc.returncode)
        return ("runtime demo", "groups, deadlines, fail-fast, TCP echo",
                "%.2f s, exit 0" % (time.monotonic() - start))

    def web(self):
        wf = self.binary("web_framework")
        site = self.start("web_framework", wf, "--listen", "127.0.0.1:0", "--executors", "1",
                          "--static-dir", os.path.join(TOP, "apps", "web_framework", "static"),
                          "--no-access-log")
        self.site_port = site.port()
        say("  web_framework serves http://127.0.0.1:%d/" % self.site_port)
        try:
            client = self.binary("http_client")
        except Skipped as e:
            return ("web_framework", "serves the example site (%s)" % e, "")
        secs = 1 if self.quick else 4
        out = self.run(client, "-z", "%ds" % secs, "-c", "50", "--summary", "json",
                       "--no-progress", "--lines", "off",
                       "http://127.0.0.1:%d/plaintext" % self.site_port, timeout=secs + 30)
        summary = json.loads([l for l in out.stdout.splitlines() if l.startswith("{")][-1])
        summary = summary.get("summary", summary)
        check(summary["ok"] > 0 and summary["failed"] == 0,
              "http_client against web_framework: %s" % summary)
        return ("web_framework + http_client",
                "%d s of GET /plaintext, 50 connections" % secs,
                "%.0f req/s, p99 %.2f ms, %d failed" % (
                    summary["requests_per_s"], summary["latency_ms"]["p99"], summary["failed"]))

    def echo(self):
        echo = self.binary("echo_server")
        loadgen = os.path.join(self.build, "bench", "echo", "echo_loadgen")
        if not os.access(loadgen, os.X_OK):
            raise Skipped("the echo load tool is not built (%s)" % loadgen)
        loadgen = weft_app.emulated(loadgen)
        server = self.start("echo_server", echo, "--listen", "127.0.0.1:0", "--executors", "1")
        secs = 1 if self.quick else 3
        out = self.run(loadgen, "--port", server.port(), "--connections", "200", "--size", "64",
                       "--duration", secs, "--warmup", "0.2", timeout=secs + 30)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        check(result["established"] == 200 and result["errors"] == 0,
              "echo load tool: %s" % result)
        return ("echo_server", "a burst of 200 connections from echo_loadgen, %d s" % secs,
                "%.0f msg/s, p99 %.0f us" % (result["messages_per_s"],
                                            result["latency_us"]["p99"]))

    def chat(self):
        chat = self.binary("chat_server")
        server = self.start("chat_server", chat, "--listen", "127.0.0.1:0",
                            "--http-listen", "127.0.0.1:0", count=2)
        ports = [int(m.group(2)) for m in
                 (weft_app.LISTENING.search(l) for l in server.err_lines) if m]
        http_port = next(p for p in ports if self.speaks_http(p))
        tcp_port = next(p for p in ports if p != http_port)
        say("  chat_server: TCP on 127.0.0.1:%d, web client at http://127.0.0.1:%d/"
            % (tcp_port, http_port))

        def client(nick):
            s = socket.create_connection(("127.0.0.1", tcp_port), timeout=seconds(10))
            f = s.makefile("rwb")
            f.write((json.dumps({"type": "hello", "nick": nick}) + "\n").encode())
            f.flush()
            check(json.loads(f.readline())["type"] == "welcome", nick + ": no welcome")
            return s, f

        def send(f, obj):
            f.write((json.dumps(obj) + "\n").encode())
            f.flush()

        def until(f, kind):
            while True:
                line = f.readline()
                check(line, "connection closed while waiting for " + kind)
                msg = json.loads(line)
                if msg["type"] == kind:
                    return msg

        rooms = {"lobby": ["ada", "bob", "cy"], "games": ["bob", "dee"]}
        clients = {n: client(n) for n in ("ada", "bob", "cy", "dee")}
        for room, nicks in rooms.items():
            for n in nicks:
                send(clients[n][1], {"type": "join", "room": room})
                until(clients[n][1], "joined")
        said = 0
        delivered = 0
        for i in range(20):
            room = "lobby" if i % 2 == 0 else "games"
            speaker = rooms[room][i % len(rooms[room])]
            send(clients[speaker][1], {"type": "say", "room": room, "text": "line %d" % i})
            said += 1
            for n in rooms[room]:
                msg = until(clients[n][1], "message")
                check(msg["text"] == "line %d" % i, "%s got %s" % (n, msg))
                delivered += 1
        ws_note = self.chat_websocket(http_port, clients["ada"][1], until)
        for s, f in clients.values():
            f.close()
            s.close()
        return ("chat_server", "4 TCP clients in 2 rooms%s" % ws_note,
                "%d said, %d delivered in order" % (said, delivered))

    @staticmethod
    def speaks_http(port):
        """Whether the server on port answers GET /healthz with HTTP."""
        with socket.create_connection(("127.0.0.1", port), timeout=seconds(5)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return s.recv(5) == b"HTTP/"
            except socket.timeout:
                return False

    def chat_websocket(self, http_port, tcp_reader, until):
        """One WebSocket client (Debian's python3-websockets) joins the lobby
        and speaks; the TCP client ada must receive it."""
        try:
            import websockets
        except ImportError:
            return " (no python3-websockets: WebSocket client skipped)"
        import asyncio

        async def speak():
            async with websockets.connect("ws://127.0.0.1:%d/ws" % http_port) as ws:
                await ws.send(json.dumps({"type": "hello", "nick": "web"}))
                await asyncio.wait_for(ws.recv(), seconds(10))
                await ws.send(json.dumps({"type": "join", "room": "lobby"}))
                while json.loads(await asyncio.wait_for(ws.recv(), seconds(10)))["type"] != "joined":
                    pass
                await ws.send(json.dumps({"type": "say", "room": "lobby", "text": "from the web"}))
                while json.loads(await asyncio.wait_for(ws.recv(), seconds(10)))["type"] != "message":
                    pass

        asyncio.run(speak())
        while True:
            msg = until(tcp_reader, "message")
            if msg.get("from") == "web":
                check(msg["text"] == "from the web", "WebSocket message: %s" % msg)
                return " and 1 over WebSocket"

    def files(self):
        fp = self.binary("file_processor")
        tree = os.path.join(self.tmp, "tree")
        rnd = random.Random(7)
        size = 0
        for d in range(8):
            os.makedirs(os.path.join(tree, "d%d" % d), exist_ok=True)
            for f in range(25):
                n = rnd.choice((0, 100, 4096, 70000, 1 << 20 if f == 0 else 3000))
                data = ("line %d of %d/%d\n" % (rnd.random(), d, f)).encode() * (n // 20 + 1)
                with open(os.path.join(tree, "d%d" % d, "f%02d.txt" % f), "wb") as out:
                    out.write(data[:n])
                size += n
        manifest = os.path.join(self.tmp, "manifest.sha256")
        start = time.monotonic()
        proc = subprocess.run([fp, "hash", "tree", "-o", manifest, "--progress", "never"],
                              cwd=self.tmp, capture_output=True, text=True, timeout=seconds(60))
        check(proc.returncode == 0, "file_processor hash exited %d: %s"
              % (proc.returncode, proc.stderr[-2000:]))
        hashed = time.monotonic() - start
        lines = open(manifest, "rb").read().splitlines()
        check(len(lines) == 200, "manifest has %d lines, not 200" % len(lines))
        first = lines[0].decode()
        digest, path = first.split("  ", 1)
        with open(os.path.join(self.tmp, path), "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == digest, "manifest line wrong: " + first)
        proc = subprocess.run([fp, "verify", "-m", manifest, "--progress", "never"],
                              cwd=self.tmp, capture_output=True, text=True, timeout=seconds(60))
        check(proc.returncode == 0, "verify exited %d: %s" % (proc.returncode, proc.stderr))
        out = os.path.join(self.tmp, "packed")
        proc = subprocess.run([fp, "compress", "tree", "--codec", "zstd", "-o", out,
                               "--progress", "never"], cwd=self.tmp, capture_output=True,
                              text=True, timeout=seconds(60))
        check(proc.returncode == 0, "compress exited %d: %s" % (proc.returncode, proc.stderr))
        back = os.path.join(self.tmp, "unpacked")
        proc = subprocess.run([fp, "decompress", os.path.join("packed", "tree"), "-o", back,
                               "--progress", "never"], cwd=self.tmp, capture_output=True,
                              text=True, timeout=seconds(60))
        check(proc.returncode == 0, "decompress exited %d: %s" % (proc.returncode, proc.stderr))
        same = 0
        for d, _, names in os.walk(tree):
            for name in names:
                rel = os.path.relpath(os.path.join(d, name), self.tmp)
                restored = os.path.join(back, "packed", rel)
                with open(os.path.join(self.tmp, rel), "rb") as a, open(restored, "rb") as b:
                    check(a.read() == b.read(), "round trip differs: " + rel)
                same += 1
        return ("file_processor", "hash, verify, zstd compress and decompress of 200 files",
                "%.1f MB hashed in %.2f s, %d files round-tripped" % (size / 1e6, hashed, same))

    def scrape(self):
        scraper = self.binary("web_scraper")
        if self.site_port is None:
            raise Skipped("web_scraper needs the web_framework's site, which did not start")
        out_file = os.path.join(self.tmp, "crawl.jsonl")
        self.run(scraper, "--max-pages", "20", "--output", out_file, "--extract",
                 "title=//title", "http://127.0.0.1:%d/" % self.site_port, timeout=60)
        records = [json.loads(l) for l in open(out_file, encoding="utf-8") if l.strip()]
        ok = [r for r in records if r.get("status") == 200]
        check(ok, "the crawl fetched no page: %s" % records[:3])
        urls = [r["url"] for r in records]
        check(len(urls) == len(set(urls)), "a URL was fetched twice")
        return ("web_scraper", "crawls the web_framework's site (robots.txt, //title)",
                "%d records, %d pages with 200" % (len(records), len(ok)))

    # -- the whole tour --------------------------------------------------

    def stop_all(self):
        failed = []
        for name, server in reversed(self.servers):
            code = server.stop(signal.SIGTERM, timeout=20)
            say("  %s stopped with SIGTERM: exit %d" % (name, code))
            if code != 0:
                failed.append("%s exited %d after SIGTERM" % (name, code))
        self.servers = []
        return failed

    def main(self):
        steps = [("runtime demo", self.runtime_demo), ("web_framework + http_client", self.web),
                 ("echo_server", self.echo), ("chat_server", self.chat),
                 ("file_processor", self.files), ("web_scraper", self.scrape)]
        failures = []
        for title, step in steps:
            say("== %s" % title)
            try:
                row = step()
                self.rows.append(row)
                say("  ok: %s" % row[2])
            except Skipped as e:
                self.rows.append((title, "skipped", str(e)))
                say("  skipped: %s" % e)
            except Exception as e:  # every failure is reported, then the tour goes on
                self.rows.append((title, "FAILED", str(e).splitlines()[0][:80]))
                failures.append("%s: %s" % (title, e))
                say("  FAILED: %s" % e)
        say("== stopping")
        failures += self.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)
        width = [max(len(r[i]) for r in self.rows + [("application", "what it did", "")])
                 for i in range(2)]
        say("")
        say("%-*s  %-*s  %s" % (width[0], "application", width[1], "what it did", "figures"))
        for r in self.rows:
            say("%-*s  %-*s  %s" % (width[0], r[0], width[1], r[1], r[2]))
        if failures:
            say("\nthe tour FAILED:\n  " + "\n  ".join(failures))
            return 1
        say("\nevery step passed")
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(TOP, "build"),
                        help="the build tree (default: build/ at the top)")
    parser.add_argument("--quick", action="store_true", help="short load steps (ctest)")
    args = parser.parse_args()
    tour = Tour(args.build, args.quick)
    try:
        return tour.main()
    finally:
        for _, server in tour.servers:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
