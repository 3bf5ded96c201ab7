"""Memory comes back after load: two bursts of 64 concurrent 1 MiB POSTs
to /api/echo over eight executors leave the server's resident memory close
to where it started, instead of holding on to the bodies' memory (glibc
kept it in the executors' heaps: about 20 MB more after the same load).

Skipped under sanitizers, whose allocator keeps freed memory on purpose.
Under qemu the emulator's own memory grows with the code it translates, so
a few requests of each kind go first, before the measure starts."""

import http.client
import threading
import time

from web_harness import SCALE, SKIP, Server, check, run, seconds, server_log_on_failure
from weft_app import EMULATED

BURST = 64
BODY = b"x" * (1 << 20)


def test(binary):
    if SCALE > 1 and not EMULATED:
        print("a sanitizer build: its allocator keeps freed memory")
        return SKIP
    server = Server(binary, "--executors", "8", "--access-log=false",
                    "--max-body-bytes", str(2 << 20))
    with server_log_on_failure(server):
        port = server.port()
        server.get("/plaintext")
        statuses = []

        def post():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds(30))
            c.request("POST", "/api/echo", BODY)
            r = c.getresponse()
            statuses.append((r.status, len(r.read())))
            c.close()
        if EMULATED:
            for _ in range(8):
                post()
            statuses.clear()
        start = server.rss_kib()
        for _ in range(2):
            threads = [threading.Thread(target=post) for _ in range(BURST)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(seconds(60))
        check(statuses == [(200, len(BODY))] * (2 * BURST), "answers: %s" % set(statuses))
        server.wait_stats(lambda st: st["active"] == 0, 10, "every connection closed")
        time.sleep(0.5)
        grown = (server.rss_kib() - start) / 1024.0
        print("resident memory: %.1f MiB at the start, %.1f MiB more after the load"
              % (start / 1024.0, grown))
        check(grown < 8, "%.1f MiB more after the load" % grown)
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
