"""The web client in a real browser: headless Chromium, driven through the
DevTools protocol (over a WebSocket, with python3-websockets), loads /,
picks a nick and joins a room; a message sent from the page reaches a TCP
client, and a message the TCP client sends shows in the page (as text, not
markup). Then the page's connection drops: it comes back by itself and
shows what was said meanwhile exactly once (join with since). Skipped when
Chromium is not installed."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from chat_harness import SKIP, Chat, TestFailure, check, run, seconds, server_log_on_failure

try:
    import websockets
except ImportError:
    websockets = None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", "about:blank"]
DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")


class Page:
    """One page of the browser, driven with DevTools commands."""

    def __init__(self, ws, session):
        self.ws = ws
        self.session = session
        self.next_id = 0

    async def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        await self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), seconds(10)))
            if reply.get("id") == self.next_id:
                check("error" not in reply, "%s failed: %r" % (method, reply.get("error")))
                return reply["result"]

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        check("exceptionDetails" not in r, "%s threw %r" % (expr, r.get("exceptionDetails")))
        return r["result"].get("value")

    async def until(self, expr, what, timeout=10):
        deadline = time.monotonic() + seconds(timeout)
        while True:
            value = await self.eval(expr)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TestFailure("the page did not show %s" % what)
            await asyncio.sleep(0.05)


LOG_TEXTS = "[...document.querySelectorAll('#log li')].map(li => li.textContent)"
LOG_SEQS = "[...document.querySelectorAll('#log li[data-seq]')].map(li => +li.dataset.seq)"


async def drive(browser_url, page_url, tcp):
    async with websockets.connect(browser_url, max_size=None) as ws:
        boot = Page(ws, None)
        target = await boot.call("Target.createTarget", {"url": page_url}, session=False)
        attached = await boot.call("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True},
                                   session=False)
        page = Page(ws, attached["sessionId"])
        page.next_id = boot.next_id
        await page.until("document.readyState === 'complete' && !!document.getElementById('nick')",
                         "the page")
        await page.eval("document.getElementById('nick').value = 'webby';"
                        "document.getElementById('login').requestSubmit(); true")
        await page.until("document.getElementById('status').textContent.startsWith('online as webby')",
                         "that it is online")
        await page.eval("document.getElementById('room').value = 'lobby';"
                        "document.getElementById('joinform').requestSubmit(); true")
        await page.until("[...document.querySelectorAll('#members li')]"
                         ".some(li => li.textContent === 'webby')", "itself in the members")

        tcp.join("lobby")
        await page.until("[...document.querySelectorAll('#members li')]"
                         ".some(li => li.textContent === 'tcpy')", "the TCP client's presence")

        # From the page to the TCP client.
        await page.eval("document.getElementById('text').value = 'hello from the browser ✓';"
                        "document.getElementById('sendform').requestSubmit(); true")
        m = tcp.wait_for(lambda m: m["type"] == "message", what="the page's message")
        check(m["from"] == "webby" and m["text"] == "hello from the browser ✓", "got %r" % m)

        # From the TCP client to the page, shown as text.
        tcp.send({"type": "say", "room": "lobby", "text": "hi page <b>not bold</b>"})
        await page.until("%s.includes('tcpyhi page <b>not bold</b>')" % LOG_TEXTS,
                         "the TCP client's message")
        check(await page.eval("document.querySelector('#log b') === null"),
              "the message was rendered as markup")

        # A dropped connection: the page reconnects with backoff and asks for
        # what it missed since its last seq.
        await page.eval("state.ws.close(); true")
        await page.until("!document.getElementById('status').textContent.startsWith('online')",
                         "that it went offline")
        for i in range(3):
            tcp.send({"type": "say", "room": "lobby", "text": "while away %d" % i})
        await page.until("%s.includes('tcpywhile away 2')" % LOG_TEXTS,
                         "the messages said while it was away", timeout=20)
        check(await page.eval("document.getElementById('status').textContent")
              == "online as webby", "not back online")
        seqs = await page.eval(LOG_SEQS)
        check(seqs == sorted(set(seqs)) and seqs == list(range(1, len(seqs) + 1)),
              "the page shows seqs %r" % seqs)
        check(len(seqs) == 5, "the page shows %d messages, not 5" % len(seqs))
        await boot.call("Target.closeTarget", {"targetId": target["targetId"]}, session=False)


def test(binary):
    if CHROMIUM is None:
        print("chromium is not installed")
        return SKIP
    if websockets is None:
        print("python3-websockets is not installed")
        return SKIP
    srv = Chat(binary)
    with server_log_on_failure(srv), tempfile.TemporaryDirectory() as profile:
        tcp = srv.tcp("tcpy")
        browser = subprocess.Popen([CHROMIUM, "--user-data-dir=" + profile] + FLAGS,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        found = {}
        lines = []

        def read_stderr():
            for l in browser.stderr:
                lines.append(l)
                m = DEVTOOLS.search(l)
                if m:
                    found["url"] = m.group(1)
        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + seconds(30)
            while "url" not in found:
                check(browser.poll() is None, "chromium exited: %s" % "".join(lines[-20:]))
                check(time.monotonic() < deadline, "no DevTools endpoint: %s" % "".join(lines[-20:]))
                time.sleep(0.05)
            asyncio.run(drive(found["url"], "http://127.0.0.1:%d/" % srv.http_port, tcp))
        finally:
            browser.terminate()
            try:
                browser.wait(seconds(10))
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
        check(srv.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
