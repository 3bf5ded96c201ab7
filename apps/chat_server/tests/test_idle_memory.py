"""Idle connections are cheap: 1,000 WebSocket clients that said hello
(and 100 of them joined a room) add well under 16 KB of resident memory
each once they have been quiet for a second (one reader task, its stack
trimmed, no writer, no HTTP buffers: about 8 KB; it was about 30 KB with a
writer task and the request's buffers per connection). After the quiet
second they still work: a member that was trimmed gets a room message
(its writer starts on demand) and answers a ping (its buffers are made
again). The memory bound is checked only without sanitizers, which keep
freed memory in quarantine."""

import time

from chat_harness import SCALE, Chat, check, raise_fd_limit, run, seconds, server_log_on_failure
import chat_harness

N = 1000
MEMBERS = 100


def test(binary):
    if not raise_fd_limit(N + 200):
        print("the open-file limit is below %d" % (N + 200))
        return chat_harness.SKIP
    srv = Chat(binary, "--max-connections", N + 100, executors=1)
    with server_log_on_failure(srv):
        warm = [srv.ws("warm%d" % i) for i in range(20)]
        for c in warm:
            c.close()
        time.sleep(0.5)
        before = srv.rss_kib()
        clients = [srv.ws("idle%d" % i, timeout=seconds(20)) for i in range(N)]
        for c in clients[:MEMBERS]:
            c.join("quiet")
        for c in clients[:MEMBERS]:
            c.inbox.clear()  # presence of the later joiners
        # The readers trim after a second of quiet.
        time.sleep(2.0 * SCALE)
        after = srv.rss_kib()
        per_conn = (after - before) * 1024 / N
        print("%d idle WebSocket connections: RSS %d -> %d KiB, %.0f bytes each"
              % (N, before, after, per_conn))
        if SCALE == 1:
            check(per_conn < 16 * 1024, "%.0f bytes per idle connection" % per_conn)
        # Still alive after the trim: a message reaches every member (their
        # writers start again), and a trimmed reader reads again.
        talker = clients[0]
        talker.send({"type": "say", "room": "quiet", "text": "wake up", "id": "w"})
        for c in clients[:MEMBERS]:
            c.wait_for(lambda m: m["type"] == "message" and m["text"] == "wake up",
                       timeout=seconds(10), what="the room message")
        talker.wait_for(lambda m: m["type"] == "ack", timeout=seconds(10), what="the ack")
        for c in clients[MEMBERS:MEMBERS + 50]:
            c.send({"type": "ping"})
            c.expect("pong", timeout=seconds(10))
        for c in clients:
            c.close()
        check(srv.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
