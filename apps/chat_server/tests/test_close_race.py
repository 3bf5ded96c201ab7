"""A client's close frame is answered, and its connection closed, whatever
the server is doing when it comes. A second after its last request a
reader gives back its stack and buffers (a deadline on its wait), and a
second after its last write a connection's writer task ends; a room
message then starts a writer again through its executor's starter. Close
frames arrive here at offsets spread around that second, while a room's
messages start and stop the writers, on two executors. Each client must
get the server's close frame (its own code echoed) and the end of the
connection: a close that came just as the reader's deadline passed went
unanswered, and a connection whose writer was asked for twice before the
starter came to it could leave the connections listed after it without a
writer, so that their end waited for ever."""

import struct
import threading
import time

from chat_harness import Chat, check, run, seconds, server_log_on_failure

ROUNDS = 3
PER_ROUND = 16


def close_at(client, at, results, i):
    time.sleep(max(0.0, at - time.monotonic()))
    try:
        client.frame(8, struct.pack("!H", 1000))
        results[i] = (client.closed(timeout=5), client.close_code)
    except OSError as e:
        results[i] = (False, "send failed: %s" % e)


def test(binary):
    srv = Chat(binary, "--rate", "0")
    with server_log_on_failure(srv):
        talker = srv.ws("talker")
        talker.join("race")
        for r in range(ROUNDS):
            clients = [srv.ws("r%dc%d" % (r, i)) for i in range(PER_ROUND)]
            for c in clients:
                c.join("race")
            # A request from each (its reader's deadline is a second
            # later), and a room message (each writer lingers a second).
            for c in clients:
                c.send({"type": "ping"})
            for c in clients:
                c.wait_for(lambda m: m["type"] == "pong", what="pong")
            t0 = time.monotonic()
            talker.send({"type": "say", "room": "race", "text": "start"})
            results = [None] * PER_ROUND
            threads = []
            for i, c in enumerate(clients):
                at = t0 + 0.85 + 0.3 * i / PER_ROUND
                th = threading.Thread(target=close_at, args=(c, at, results, i))
                th.start()
                threads.append(th)
            # More room messages while the closes come in: writers that are
            # ending are asked for again.
            for k, dt in enumerate((0.9, 0.97, 1.0, 1.03, 1.1)):
                time.sleep(max(0.0, t0 + dt - time.monotonic()))
                talker.send({"type": "say", "room": "race", "text": "m%d" % k})
            for th in threads:
                th.join(seconds(10))
            for i, res in enumerate(results):
                check(res is not None, "round %d client %d: no result" % (r, i))
                ended, code = res
                check(ended, "round %d client %d: the connection did not end" % (r, i))
                check(code == 1000, "round %d client %d: close code %r" % (r, i, code))
        talker.close()
        check(srv.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
