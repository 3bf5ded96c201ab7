"""The HTTP side: the web client at / (one self-contained page), /healthz
and /metrics, 404 and 405 elsewhere, and /ws with a real WebSocket library
(Debian's python3-websockets, which offers permessage-deflate) talking to
a TCP client in the same room."""

import asyncio
import json

from chat_harness import SKIP, Chat, check, run, server_log_on_failure

try:
    import websockets
except ImportError:  # Debian's python3-websockets
    websockets = None


async def library_client(port, tcp):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        await ws.send(json.dumps({"type": "hello", "nick": "lib"}))
        check(json.loads(await ws.recv())["type"] == "welcome", "no welcome")
        await ws.send(json.dumps({"type": "join", "room": "web"}))
        j = json.loads(await ws.recv())
        check(j["type"] == "joined" and "tcp" in j["members"], "joined: %r" % j)
        big = "compressible " * 200
        await ws.send(json.dumps({"type": "say", "room": "web", "text": big, "id": "1"}))
        m = json.loads(await ws.recv())
        check(m["type"] == "message" and m["text"] == big, "message: %r" % m)
        check(json.loads(await ws.recv())["type"] == "ack", "no ack")
        tcp.expect("presence", nick="lib", event="join")
        got = tcp.expect("message", **{"from": "lib"})
        check(got["text"] == big, "the TCP client got %r" % got["text"][:40])
        tcp.send({"type": "say", "room": "web", "text": "hi lib"})
        m = json.loads(await ws.recv())
        check(m["type"] == "message" and m["text"] == "hi lib", "message: %r" % m)
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        return ext


def test(binary):
    srv = Chat(binary)
    with server_log_on_failure(srv):
        status, headers, body = srv.http_get("/")
        check(status == 200, "GET / -> %d" % status)
        check(headers["content-type"].startswith("text/html"), "type %r" % headers)
        page = body.decode("utf-8")
        check("<script>" in page and "/ws" in page and "<style>" in page,
              "the page is not the self-contained client")
        check("src=" not in page.replace("src=\"data:", ""), "the page loads other files")

        c = srv.tcp("tcp")
        c.join("web")
        status, _, body = srv.http_get("/healthz")
        h = json.loads(body)
        check(status == 200 and h["status"] == "ok" and h["sessions"] == 1, "healthz %r" % h)

        status, headers, body = srv.http_get("/metrics")
        check(status == 200 and b"chat_sessions 1" in body, "metrics: %r" % body[:300])
        check(srv.http_get("/nothing")[0] == 404, "no 404")

        if websockets is None:
            print("python3-websockets is missing: the library check is skipped")
        else:
            ext = asyncio.run(library_client(srv.http_port, c))
            print("extensions agreed:", ext or "none")
        status, _, body = srv.http_get("/metrics")
        check(b"chat_messages_total 2" in body or websockets is None, "metrics: %r" % body[:400])
        check(srv.stop() == 0, "exit code")
    return None if websockets is not None else SKIP


if __name__ == "__main__":
    run(test)
