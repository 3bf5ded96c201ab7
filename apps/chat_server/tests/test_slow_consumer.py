"""A client that never reads while a room is flooded (3,000 messages of 4 KB) is cut off with
slow_consumer (it reads the error once it wakes up, then the end of the
connection); the other members get every message, in order, while it
happens, and the server's memory stays flat."""

import re
import socket
import threading
import time

from chat_harness import SCALE, Chat, TcpClient, check, run, seconds, server_log_on_failure

MESSAGES = 3000
TEXT = "f" * 4000
# Messages per second: what the test's readers and a slow (sanitizer)
# build keep up with, far more than the slow reader's buffers hold.
RATE = 2000 / SCALE
SEQ = re.compile(rb'"type":"message".*?"seq":(\d+)')


def reader(client, count, out):
    """Collects the seqs of count room messages (ignoring the rest)."""
    seqs = []
    try:
        # The raw bytes, without a JSON parse per message, so that the
        # test's readers keep up with the server: each complete message
        # (TCP: up to the last newline; WebSocket: the frames are not
        # compressed, so up to the last "}") is searched for its seq.
        client.sock.settimeout(seconds(20))
        tcp = isinstance(client, TcpClient)
        buf = client.buf
        while len(seqs) < count:
            chunk = client.sock.recv(1 << 20)
            check(chunk, "the connection ended")
            buf += chunk
            end = (buf.rfind(b"\n") if tcp else buf.rfind(b"}")) + 1
            seqs += [int(s) for s in SEQ.findall(buf, 0, end)]
            buf = buf[end:]
    except Exception as e:  # reported by the main thread
        out["error"] = repr(e)
    out["seqs"] = seqs


def wake_when_cut(srv, slow, out):
    """The slow reader wakes as soon as the server has cut it off, and
    reads what its socket holds, then the error, then the end. The server
    gives a cut-off connection 5 s to take its error; on a busy machine a
    sanitizer build's flood outlasts that, so waking only after the flood
    would find the connection closed before the error."""
    seen = []
    try:
        srv.wait_for(lambda: any("slow consumer cut off" in l for l in srv.err_lines),
                     60, "the cut-off log line")
        while not slow.eof:
            try:
                seen.append(slow.next(timeout=10))
            except Exception:
                break
    except Exception as e:  # reported by the main thread
        out["error"] = repr(e)
    out["seen"] = seen


def test(binary):
    srv = Chat(binary, "--max-queue", "500", "--rate", "0", "--history", "10")
    with server_log_on_failure(srv):
        slow = srv.tcp("slow")
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.join("flood")
        fast = [srv.tcp("fast%d" % i) for i in range(2)] + [srv.ws("fastws")]
        for f in fast:
            f.join("flood")
        talker = srv.tcp("talker")
        talker.join("flood")
        time.sleep(0.2)
        for f in fast + [slow]:
            f.inbox.clear()  # presence of the later joiners
        results = [dict() for _ in fast + [talker]]
        threads = [threading.Thread(target=reader, args=(c, MESSAGES, r))
                   for c, r in zip(fast + [talker], results)]
        slow_out = {}
        threads.append(threading.Thread(target=wake_when_cut, args=(srv, slow, slow_out)))
        for t in threads:
            t.start()
        rss_before = srv.rss_kib()
        started = time.monotonic()
        batch = []
        for i in range(MESSAGES):
            batch.append(('{"type":"say","room":"flood","text":"%s"}\n' % TEXT).encode())
            if len(batch) == 50:
                talker.sock.sendall(b"".join(batch))
                batch = []
                time.sleep(50 / RATE)
        if batch:
            talker.sock.sendall(b"".join(batch))
        for t in threads:
            t.join(seconds(60))
        elapsed = time.monotonic() - started
        rss_after = srv.rss_kib()
        for c, r in zip(fast + [talker], results):
            check("error" not in r, "a fast reader failed: %s" % r.get("error"))
            check(r["seqs"] == list(range(1, MESSAGES + 1)),
                  "a fast reader missed messages: got %d" % len(r["seqs"]))
        # The slow one was cut off (wake_when_cut saw the log line), and
        # memory did not follow the flood (12 MB of text per member).
        check("error" not in slow_out, "the slow reader: %s" % slow_out.get("error"))
        # (Under sanitizers, which keep freed memory in quarantine, RSS says
        # nothing about the server's own.)
        growth = rss_after - rss_before
        if SCALE == 1:
            check(growth < 8 * 1024, "RSS grew by %d KiB during the flood" % growth)
        # It read what the socket held, then the error, then the end.
        seen = slow_out.get("seen", [])
        check(seen and seen[-1].get("type") == "error" and seen[-1]["code"] == "slow_consumer",
              "the slow reader's last message: %r" % (seen[-1:] if seen else None))
        check(slow.closed(), "the slow reader's connection stays open")
        st = srv.stats()
        check(st["slow_consumers"] == 1, "slow_consumers=%s" % st["slow_consumers"])
        print("flood of %d messages to %d readers in %.2f s; RSS %d -> %d KiB"
              % (MESSAGES, len(fast) + 1, elapsed, rss_before, rss_after))
        check(srv.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
