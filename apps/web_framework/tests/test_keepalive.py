"""Connections: many requests on one keep-alive connection; pipelined
requests sent in one write are answered in order, even when an early one
is slow; chunked request bodies (in one piece or trickled, with extensions
and trailers) reach the handler decoded; HTTP/1.0 closes unless asked to
keep alive; Connection: close is honoured; the per-connection request
limit ends with Connection: close."""

import json

from web_harness import (Reader, Server, build_request, check, run, server_log_on_failure,
                         wait_closed)


def sequential(server):
    s = server.connect()
    reader = Reader(s)
    for i in range(50):
        s.sendall(build_request("GET", "/api/hello/n%d" % i))
        r = reader.read()
        check(r.status == 200 and r.json()["hello"] == "n%d" % i, "request %d: %r" % (i, r))
        check(not r.closes(), "closed after %d requests: %r" % (i, r))
    s.close()


def pipelined(server):
    s = server.connect()
    reader = Reader(s)
    # The second request is slow: the ones after it must wait for it.
    paths = ["/api/hello/p0", "/api/slow?ms=50"] + ["/api/hello/p%d" % i for i in range(2, 30)]
    methods = []
    batch = b""
    for i, path in enumerate(paths):
        if i % 7 == 3:
            batch += build_request("POST", "/api/echo", {"Content-Type": "text/plain"},
                                   ("body %d" % i).encode())
            methods.append(("echo", i))
        elif i % 7 == 5:
            batch += build_request("HEAD", "/plaintext")
            methods.append(("head", i))
        else:
            batch += build_request("GET", path)
            methods.append(("get", i))
    s.sendall(batch)
    for kind, i in methods:
        r = reader.read(head_request=(kind == "head"))
        check(r.status == 200, "pipelined %d: %r" % (i, r))
        if kind == "echo":
            check(r.body == ("body %d" % i).encode(), "pipelined echo %d: %r" % (i, r))
        elif kind == "head":
            check(r.body == b"" and r.header("Content-Length") == "13", "pipelined HEAD %d" % i)
        elif i == 1:
            check(r.json() == {"slept_ms": 50}, "pipelined slow: %r" % r)
        else:
            check(r.json()["hello"] == "p%d" % i, "out of order at %d: %r" % (i, r))
    # Requests split at every byte still parse.
    one = build_request("GET", "/api/hello/split")
    for b in one:
        s.sendall(bytes([b]))
    check(reader.read().json()["hello"] == "split", "byte-by-byte request")
    s.close()


def chunked(server):
    s = server.connect()
    reader = Reader(s)
    payload = bytes(range(256)) * 40
    chunks = [payload[i:i + 1000] for i in range(0, len(payload), 1000)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    s.sendall(build_request("POST", "/api/echo",
                            [("Transfer-Encoding", "chunked"),
                             ("Content-Type", "application/octet-stream")], body))
    r = reader.read()
    check(r.status == 200 and r.body == payload, "chunked echo: %d bytes" % len(r.body))

    # Chunk extensions and trailers are allowed and dropped.
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    s.sendall(build_request("POST", "/api/echo", [("Transfer-Encoding", "chunked")], body))
    check(reader.read().body == b"hello world", "extensions and trailers")

    # A JSON create sent chunked and trickled piece by piece.
    doc = json.dumps({"name": "chunked tea", "price": 2}).encode()
    s.sendall(build_request("POST", "/api/items", [("Transfer-Encoding", "chunked"),
                                                   ("Content-Type", "application/json")]))
    for i in range(0, len(doc), 4):
        piece = doc[i:i + 4]
        s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
    s.sendall(b"0\r\n\r\n")
    r = reader.read()
    check(r.status == 201 and r.json()["name"] == "chunked tea", "chunked create: %r" % r)
    s.close()


def http10(server):
    s = server.connect()
    s.sendall(build_request("GET", "/plaintext", version="HTTP/1.0"))
    r = Reader(s).read()
    check(r.status == 200 and r.body == b"Hello, World!", "HTTP/1.0: %r" % r)
    wait_closed(s)
    s.close()

    s = server.connect()
    reader = Reader(s)
    for _ in range(3):
        s.sendall(build_request("GET", "/plaintext", {"Connection": "keep-alive"},
                                version="HTTP/1.0"))
        r = reader.read()
        check(r.status == 200 and (r.header("Connection") or "").lower() == "keep-alive",
              "HTTP/1.0 keep-alive: %r" % r)
    s.close()

    s = server.connect()
    s.sendall(build_request("GET", "/plaintext", {"Connection": "close"}))
    r = Reader(s).read()
    check(r.status == 200 and r.closes(), "Connection: close not answered: %r" % r)
    wait_closed(s)
    s.close()


def request_limit(binary):
    server = Server(binary, "--max-requests-per-connection", "3")
    with server_log_on_failure(server):
        server.wait_listening()
        s = server.connect()
        s.sendall(build_request("GET", "/plaintext") * 5)
        reader = Reader(s)
        for i in range(3):
            r = reader.read()
            check(r.status == 200, "request %d: %r" % (i, r))
        check(r.closes(), "the last request is not marked: %r" % r)
        check(reader.buf == b"" and wait_closed(s) == b"", "answers after the limit")
        s.close()
        check(server.stop() == 0, "exit code")


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        sequential(server)
        pipelined(server)
        chunked(server)
        http10(server)
        check(server.stop() == 0, "exit code")
    request_limit(binary)


if __name__ == "__main__":
    run(test)
